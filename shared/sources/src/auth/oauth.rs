//! The token endpoint of an OAuth 2.0 provider (RFC 6749 sections 4.1.3 and 6, RFC 7636 PKCE):
//! code exchanges and refreshes, as the `TokenEndpoint` port of the domain.
//!
//! The `oauth2` crate builds each grant request (its parameters, the PKCE verifier, client
//! authentication per RFC 6749 section 2.3.1, Basic or in the body). Our own client sends it: the
//! shared one, which never follows a redirect, so a secret is never replayed elsewhere. The
//! answer is then read here, not by `oauth2`: providers put tokens where the source's settings
//! say (a JSON pointer, e.g. Slack's user token at `/authed_user/access_token`), Slack answers
//! failures as HTTP 200 `{"ok": false}`, GitHub answers some as HTTP 200 `{"error": ...}`, and a
//! 429's `Retry-After` header is needed; `oauth2`'s typed response and errors carry none of that.
//!
//! No error, and no log line, ever holds a code, a token, a verifier or a client secret: at most
//! the provider's error code, and only when it looks like one.

use crate::upstream::{read_capped, retry_after, Answer, CHECK_BODY_LIMIT};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::catalog::{ClientAuth, OAuthSettings};
use domain::oauth::{OAuthApp, OAuthEndpoints, PkceVerifier, TokenEndpoint, TokenError, TokenSet};
use oauth2::basic::BasicClient;
use oauth2::{
    AsyncHttpClient, AuthType, AuthorizationCode, ClientId, ClientSecret, EndpointNotSet,
    EndpointSet, HttpRequest, HttpResponse, PkceCodeVerifier, RedirectUrl, RefreshToken, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

/// The longest `expires_in` taken as given (ten years); beyond it the value is nonsense.
const MAX_EXPIRES_IN: i64 = 10 * 365 * 24 * 3600;

/// Error codes that say the grant or the client is no good: retrying the same request can never
/// succeed, the user must authorize again (or the operator fix the app). RFC 6749 section 5.2,
/// and what GitHub and Slack answer instead.
const REFUSED_CODES: &[&str] = &[
    "invalid_grant",
    "invalid_client",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "access_denied",
    // GitHub
    "bad_verification_code",
    "incorrect_client_credentials",
    "redirect_uri_mismatch",
    "bad_refresh_token",
    // Slack
    "invalid_code",
    "code_already_used",
    "invalid_refresh_token",
    "invalid_client_id",
    "bad_client_secret",
    "bad_redirect_uri",
    "invalid_grant_type",
    "token_revoked",
    "token_expired",
];

/// Error codes of a provider that is busy or broken for now.
const TRANSIENT_CODES: &[&str] = &[
    "temporarily_unavailable",
    "server_error",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
];

/// Error codes that mean "slow down".
const RATE_LIMIT_CODES: &[&str] = &["slow_down", "ratelimited", "rate_limited"];

type Oauth2Client =
    BasicClient<EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// The token endpoint over the shared HTTP client.
#[derive(Clone)]
pub struct OAuthTokens {
    client: reqwest::Client,
}

impl OAuthTokens {
    /// `client` must never follow redirects ([`crate::http_client`] does not).
    pub fn new(client: reqwest::Client) -> Self {
        Self { client }
    }
}

/// Sends the requests `oauth2` builds and keeps the answer for us to read.
struct Sender<'a> {
    client: &'a reqwest::Client,
    kept: Mutex<Option<Result<Answer, TokenError>>>,
}

/// What the sender gives back to `oauth2` instead of the answer, so that `oauth2` parses nothing
/// (the answer is read by [`read_answer`]).
#[derive(Debug, thiserror::Error)]
#[error("the answer is read by the caller")]
struct Kept;

impl<'a> Sender<'a> {
    fn new(client: &'a reqwest::Client) -> Self {
        Self {
            client,
            kept: Mutex::new(None),
        }
    }

    /// The answer kept; none means `oauth2` could not build the request.
    fn answer(self) -> Result<Answer, TokenError> {
        self.kept
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .unwrap_or_else(|| {
                Err(TokenError::Unavailable(
                    "the token request could not be built".to_owned(),
                ))
            })
    }
}

impl<'c> AsyncHttpClient<'c> for Sender<'_> {
    type Error = Kept;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, Kept>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let outcome = exchange(self.client, request).await;
            *self.kept.lock().expect("kept answer lock") = Some(outcome);
            Err(Kept)
        })
    }
}

/// Sends one request and reads its answer. A failed exchange is `Unavailable`, its message
/// naming neither the URL nor anything sent.
async fn exchange(client: &reqwest::Client, request: HttpRequest) -> Result<Answer, TokenError> {
    let request = reqwest::Request::try_from(request)
        .map_err(|_| TokenError::Unavailable("the token request could not be built".to_owned()))?;
    let response = client.execute(request).await.map_err(|e| {
        let e = e.without_url();
        tracing::warn!(error = %e, "the token endpoint could not be reached");
        transport_error(&e)
    })?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = read_capped(response, CHECK_BODY_LIMIT).await.map_err(|e| {
        let e = e.without_url();
        tracing::warn!(status = status.as_u16(), error = %e, "the token endpoint's answer could not be read");
        transport_error(&e)
    })?;
    Ok(Answer {
        status,
        headers,
        body,
    })
}

fn transport_error(err: &reqwest::Error) -> TokenError {
    TokenError::Unavailable(if err.is_timeout() {
        "the token endpoint did not answer in time".to_owned()
    } else if err.is_connect() {
        "could not connect to the token endpoint".to_owned()
    } else {
        "the request to the token endpoint failed".to_owned()
    })
}

/// The `oauth2` client of one app at one token endpoint.
fn oauth2_client(
    settings: &OAuthSettings,
    endpoints: &OAuthEndpoints,
    app: &OAuthApp,
) -> Result<Oauth2Client, TokenError> {
    let token_url = TokenUrl::new(endpoints.token_url.clone()).map_err(|_| {
        TokenError::Unavailable("the configured token endpoint is not a valid URL".to_owned())
    })?;
    let auth_type = match settings.client_auth {
        ClientAuth::Basic => AuthType::BasicAuth,
        ClientAuth::RequestBody => AuthType::RequestBody,
    };
    Ok(BasicClient::new(ClientId::new(app.client_id.clone()))
        .set_client_secret(ClientSecret::new(
            app.client_secret.expose_secret().to_owned(),
        ))
        .set_auth_type(auth_type)
        .set_token_uri(token_url))
}

#[async_trait]
impl TokenEndpoint for OAuthTokens {
    async fn exchange_code(
        &self,
        settings: &OAuthSettings,
        endpoints: &OAuthEndpoints,
        app: &OAuthApp,
        code: &str,
        redirect_uri: &str,
        pkce_verifier: Option<&PkceVerifier>,
    ) -> Result<TokenSet, TokenError> {
        let client = oauth2_client(settings, endpoints, app)?;
        // The exact string the authorize request carried: `RedirectUrl` sends it unchanged.
        let redirect_uri = RedirectUrl::new(redirect_uri.to_owned()).map_err(|_| {
            TokenError::Unavailable("the redirect URI is not a valid URL".to_owned())
        })?;
        let mut request = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_redirect_uri(Cow::Owned(redirect_uri));
        if let Some(verifier) = pkce_verifier {
            request =
                request.set_pkce_verifier(PkceCodeVerifier::new(verifier.expose().to_owned()));
        }
        let sender = Sender::new(&self.client);
        let _ = request.request_async(&sender).await;
        let answer = sender.answer()?;
        read_answer(settings, &answer, Utc::now())
    }

    async fn refresh(
        &self,
        settings: &OAuthSettings,
        endpoints: &OAuthEndpoints,
        app: &OAuthApp,
        refresh_token: &SecretString,
    ) -> Result<TokenSet, TokenError> {
        let client = oauth2_client(settings, endpoints, app)?;
        let refresh_token = RefreshToken::new(refresh_token.expose_secret().to_owned());
        let request = client.exchange_refresh_token(&refresh_token);
        let sender = Sender::new(&self.client);
        let _ = request.request_async(&sender).await;
        let answer = sender.answer()?;
        read_answer(settings, &answer, Utc::now())
    }
}

/// Reads a token endpoint's answer: the tokens where the settings point, or why there are none.
fn read_answer(
    settings: &OAuthSettings,
    answer: &Answer,
    now: DateTime<Utc>,
) -> Result<TokenSet, TokenError> {
    let status = answer.status;
    let code = status.as_u16();
    if code == 429 {
        tracing::warn!(status = code, "the token endpoint rate-limited the request");
        return Err(TokenError::RateLimited {
            retry_after: retry_after(&answer.headers, now),
        });
    }
    if status.is_server_error() {
        tracing::warn!(status = code, "the token endpoint failed");
        return Err(TokenError::Unavailable(format!(
            "the token endpoint answered HTTP {code}"
        )));
    }
    let body: Option<Value> = serde_json::from_slice(&answer.body).ok();
    if status.is_success() {
        let Some(body) = body else {
            return Err(TokenError::Malformed(format!(
                "the token endpoint answered HTTP {code} with a body that is not JSON"
            )));
        };
        // Slack: HTTP 200 `{"ok": false, "error": "invalid_code"}`. Its failures are refusals
        // unless the code says the provider is busy.
        if body.get("ok") == Some(&Value::Bool(false)) {
            let error = error_code(&body).unwrap_or_else(|| "unknown_error".to_owned());
            return Err(match classify(&error, answer, now) {
                TokenError::Malformed(_) => refused(error),
                other => other,
            });
        }
        return match string_at(&body, settings.access_token_pointer) {
            Some(access_token) => Ok(TokenSet {
                access_token: SecretString::from(access_token),
                refresh_token: settings
                    .refresh_token_pointer
                    .and_then(|pointer| string_at(&body, pointer))
                    .map(SecretString::from),
                expires_at: expires_in(&body, settings.access_token_pointer)
                    .map(|seconds| now + chrono::Duration::seconds(seconds)),
            }),
            // GitHub: HTTP 200 `{"error": "bad_verification_code", ...}`.
            None => Err(match error_code(&body) {
                Some(error) => classify(&error, answer, now),
                None => TokenError::Malformed(format!(
                    "the token endpoint answered HTTP {code} without an access token"
                )),
            }),
        };
    }
    if status.is_client_error() {
        return Err(match body.as_ref().and_then(error_code) {
            Some(error) => classify(&error, answer, now),
            // A token endpoint that refuses the client without saying why.
            None if code == 401 || code == 403 => refused(format!("http_{code}")),
            None => TokenError::Malformed(format!(
                "the token endpoint answered HTTP {code} without an error code"
            )),
        });
    }
    // 1xx, or a redirect: never followed, a credential must not go where it points.
    Err(TokenError::Malformed(format!(
        "the token endpoint answered HTTP {code}, not a token response"
    )))
}

fn refused(error: String) -> TokenError {
    tracing::warn!(error = %error, "the token endpoint refused the grant");
    TokenError::Refused(error)
}

/// What a provider's error code means for us.
fn classify(error: &str, answer: &Answer, now: DateTime<Utc>) -> TokenError {
    if REFUSED_CODES.contains(&error) {
        refused(error.to_owned())
    } else if RATE_LIMIT_CODES.contains(&error) {
        TokenError::RateLimited {
            retry_after: retry_after(&answer.headers, now),
        }
    } else if TRANSIENT_CODES.contains(&error) {
        TokenError::Unavailable(format!("the token endpoint is unavailable ({error})"))
    } else {
        tracing::warn!(status = answer.status.as_u16(), error = %error, "the token endpoint answered an unexpected error");
        TokenError::Malformed(format!(
            "the token endpoint answered HTTP {} with error {error}",
            answer.status.as_u16()
        ))
    }
}

/// The `error` member of an answer, when it looks like an error code (a short word of
/// `[A-Za-z0-9_.-]`): anything else could carry what was sent, so it is never repeated.
fn error_code(body: &Value) -> Option<String> {
    let error = body.get("error")?;
    let Some(error) = error.as_str() else {
        return Some("unreadable_error".to_owned());
    };
    let looks_like_a_code = !error.is_empty()
        && error.len() <= 64
        && error
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    Some(if looks_like_a_code {
        error.to_owned()
    } else {
        "unreadable_error".to_owned()
    })
}

/// A non-empty string at a JSON pointer.
fn string_at(body: &Value, pointer: &str) -> Option<String> {
    body.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// `expires_in` beside the access token (top level for `/access_token`, Slack's
/// `/authed_user/expires_in` for its user token), as seconds (a number, or digits in a string as
/// some providers send it).
fn expires_in(body: &Value, access_token_pointer: &str) -> Option<i64> {
    let parent = access_token_pointer
        .rsplit_once('/')
        .map_or("", |(parent, _)| parent);
    let value = body.pointer(&format!("{parent}/expires_in"))?;
    let seconds = match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    (seconds >= 0).then_some(seconds.min(MAX_EXPIRES_IN))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;
    use reqwest::StatusCode;
    use serde_json::json;
    use std::time::Duration;

    fn settings(access: &'static str, refresh: Option<&'static str>) -> OAuthSettings {
        OAuthSettings {
            authorize_url: "https://provider.example/authorize",
            token_url: "https://provider.example/token",
            scopes: vec![],
            user_scopes: vec![],
            scope_separator: " ",
            pkce: true,
            client_auth: ClientAuth::RequestBody,
            access_token_pointer: access,
            refresh_token_pointer: refresh,
            extra_authorize_params: vec![],
        }
    }

    fn answer(status: u16, body: &Value) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: body.to_string().into_bytes(),
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn read(status: u16, body: Value) -> Result<TokenSet, TokenError> {
        read_answer(
            &settings("/access_token", Some("/refresh_token")),
            &answer(status, &body),
            now(),
        )
    }

    #[test]
    fn the_standard_fields_give_the_tokens_and_the_expiry() {
        let set = read(
            200,
            json!({"access_token": "at", "refresh_token": "rt", "expires_in": 3600, "token_type": "Bearer"}),
        )
        .unwrap();
        assert_eq!(set.access_token.expose_secret(), "at");
        assert_eq!(set.refresh_token.unwrap().expose_secret(), "rt");
        assert_eq!(set.expires_at, Some(now() + chrono::Duration::hours(1)));
        let set = read(200, json!({"access_token": "at", "expires_in": "60"})).unwrap();
        assert!(set.refresh_token.is_none());
        assert_eq!(set.expires_at, Some(now() + chrono::Duration::minutes(1)));
    }

    #[test]
    fn a_nested_pointer_reads_the_token_and_its_own_expiry() {
        let body = json!({
            "ok": true, "access_token": "xoxb-bot", "expires_in": 99,
            "authed_user": {"access_token": "xoxp-user", "refresh_token": "xoxe-r", "expires_in": 43200},
        });
        let set = read_answer(
            &settings(
                "/authed_user/access_token",
                Some("/authed_user/refresh_token"),
            ),
            &answer(200, &body),
            now(),
        )
        .unwrap();
        assert_eq!(set.access_token.expose_secret(), "xoxp-user");
        assert_eq!(set.refresh_token.unwrap().expose_secret(), "xoxe-r");
        assert_eq!(set.expires_at, Some(now() + chrono::Duration::hours(12)));
    }

    #[test]
    fn failures_are_classified_by_status_and_error_code() {
        let refused = |c: &str| TokenError::Refused(c.to_owned());
        assert_eq!(
            read(400, json!({"error": "invalid_grant"})).err(),
            Some(refused("invalid_grant"))
        );
        assert_eq!(read(401, json!({})).err(), Some(refused("http_401")));
        assert_eq!(
            read(200, json!({"error": "bad_verification_code"})).err(),
            Some(refused("bad_verification_code"))
        );
        assert_eq!(
            read(200, json!({"ok": false, "error": "invalid_code"})).err(),
            Some(refused("invalid_code"))
        );
        assert_eq!(
            read(200, json!({"ok": false, "error": "something_new"})).err(),
            Some(refused("something_new"))
        );
        assert!(matches!(
            read(200, json!({"ok": false, "error": "ratelimited"})),
            Err(TokenError::RateLimited { .. })
        ));
        assert!(matches!(
            read(400, json!({"error": "invalid_request"})),
            Err(TokenError::Malformed(_))
        ));
        assert!(matches!(
            read(503, json!({})),
            Err(TokenError::Unavailable(_))
        ));
        assert!(matches!(
            read(302, json!({})),
            Err(TokenError::Malformed(_))
        ));
        assert!(matches!(
            read(200, json!({"token_type": "Bearer"})),
            Err(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn a_429_carries_its_wait() {
        let mut a = answer(429, &json!({"error": "slow_down"}));
        a.headers.insert("retry-after", "7".parse().unwrap());
        assert_eq!(
            read_answer(&settings("/access_token", None), &a, now()).err(),
            Some(TokenError::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            })
        );
    }

    #[test]
    fn an_error_that_is_not_a_code_is_never_repeated() {
        let err = read(
            400,
            json!({"error": "code abc123 is not valid for secret s3cr3t"}),
        )
        .err()
        .unwrap();
        let shown = err.to_string();
        assert!(
            !shown.contains("abc123") && !shown.contains("s3cr3t"),
            "{shown}"
        );
    }
}

//! Pipedream's Connect REST API (pipedream.com/docs/connect/api-reference): a client-credentials
//! token per OAuth client, kept until five minutes before it expires, and the project's
//! environment in `x-pd-environment`; whether an OAuth client is good, and an account's
//! credentials.

use super::accounts::{
    app_slug, as_request, endpoint, exchange, failure, found_credentials, json_object, no_app,
    seconds, shown, unreadable, CredentialKeys, MAX_LIFETIME_SECS,
};
use crate::base_url::BaseUrl;
use crate::upstream::{bearer, Answer};
use chrono::{DateTime, Utc};
use domain::auth::AuthenticationRequest;
use domain::auth_provider::{AccountRef, ProviderError, ProviderKind};
use domain::catalog::SourceSpec;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::PoisonError;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Pipedream's public API.
pub(super) const PIPEDREAM_DEFAULT_BASE_URL: &str = "https://api.pipedream.com";

/// A cached token is replaced this long before it expires, so that no run starts with a token
/// about to lapse.
const TOKEN_MARGIN: Duration = Duration::from_secs(5 * 60);

const PIPEDREAM_KEYS: CredentialKeys = CredentialKeys {
    token: &["oauth_access_token"],
    key: &["api_key", "api_token", "token"],
};

/// A Pipedream token of one OAuth client, handed out again only to the same secret.
pub(super) struct CachedToken {
    client_secret: SecretString,
    access_token: SecretString,
    replace_at: Instant,
}

/// Pipedream's API on the shared client, with its token cache; clones share the cache.
#[derive(Clone)]
pub(super) struct Pipedream {
    client: reqwest::Client,
    pub(super) base: BaseUrl,
    /// Tokens by client id.
    tokens: Arc<Mutex<HashMap<String, CachedToken>>>,
}

impl Pipedream {
    pub(super) fn new(client: reqwest::Client, base: BaseUrl) -> Self {
        Self {
            client,
            base,
            tokens: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A Pipedream token of this client: the cached one when `cached` allows and the secret is
    /// the one it was issued to, a new one otherwise. Says whether it came from the cache.
    pub(super) async fn token(
        &self,
        client_id: &str,
        client_secret: &SecretString,
        cached: bool,
    ) -> Result<(SecretString, bool), ProviderError> {
        if cached {
            let tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(token) = tokens.get(client_id) {
                if token.replace_at > Instant::now()
                    && same_secret(&token.client_secret, client_secret)
                {
                    return Ok((token.access_token.clone(), true));
                }
            }
        }
        let kind = ProviderKind::Pipedream;
        let request = self
            .client
            .post(self.base.endpoint("v1/oauth/token"))
            .json(&json!({
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": client_secret.expose_secret(),
            }));
        let answer = exchange(kind, "Pipedream token request", request).await?;
        if !answer.status.is_success() {
            return Err(token_refusal(&answer));
        }
        let body = json_object(kind, &answer)?;
        let access_token = body
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ProviderError::Unavailable(
                    "Pipedream answered the token request without a token".into(),
                )
            })?;
        let access_token = SecretString::from(access_token.to_owned());
        let lifetime = body
            .get("expires_in")
            .and_then(seconds)
            .filter(|s| (1..=MAX_LIFETIME_SECS).contains(s))
            .map(|s| Duration::from_secs(s.unsigned_abs()));
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        tokens.retain(|_, t| t.replace_at > now);
        match lifetime.and_then(|l| l.checked_sub(TOKEN_MARGIN)) {
            Some(usable) if !usable.is_zero() => {
                tokens.insert(
                    client_id.to_owned(),
                    CachedToken {
                        client_secret: client_secret.clone(),
                        access_token: access_token.clone(),
                        replace_at: now + usable,
                    },
                );
            }
            // Too short-lived (or of unknown life) to keep: used once.
            _ => {
                tokens.remove(client_id);
            }
        }
        Ok((access_token, false))
    }

    fn forget_token(&self, client_id: &str) {
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(client_id);
    }

    async fn account(
        &self,
        token: &SecretString,
        project_id: &str,
        environment: &str,
        account_id: &str,
    ) -> Result<Answer, ProviderError> {
        let kind = ProviderKind::Pipedream;
        let url = endpoint(
            kind,
            &self.base,
            &["v1", "connect", project_id, "accounts", account_id],
        )?;
        let bearer = bearer(token.expose_secret()).map_err(|_| {
            ProviderError::Unavailable("Pipedream issued a token no header can carry".into())
        })?;
        let request = self
            .client
            .get(url)
            .query(&[("include_credentials", "true")])
            .header(reqwest::header::AUTHORIZATION, bearer)
            .header("x-pd-environment", environment);
        exchange(kind, "Pipedream account fetch", request).await
    }

    pub(super) async fn fetch(
        &self,
        client_id: &str,
        client_secret: &SecretString,
        project_id: &str,
        environment: &str,
        source: &SourceSpec,
        account: &AccountRef,
    ) -> Result<AuthenticationRequest, ProviderError> {
        let kind = ProviderKind::Pipedream;
        let app = app_slug(kind, source.short_name).ok_or_else(|| no_app(kind, source))?;
        let (token, cached) = self.token(client_id, client_secret, true).await?;
        let mut answer = self
            .account(&token, project_id, environment, &account.account_id)
            .await?;
        if answer.status == StatusCode::UNAUTHORIZED {
            self.forget_token(client_id);
            // A cached token may have been revoked early: one new token, one more try.
            if cached {
                let (token, _) = self.token(client_id, client_secret, false).await?;
                answer = self
                    .account(&token, project_id, environment, &account.account_id)
                    .await?;
                if answer.status == StatusCode::UNAUTHORIZED {
                    self.forget_token(client_id);
                }
            }
        }
        match answer.status {
            s if s.is_success() => {}
            StatusCode::UNAUTHORIZED => {
                return Err(ProviderError::CredentialsRejected(format!(
                    "Pipedream refused the OAuth client's token; check client_id and \
                     client_secret at {}",
                    kind.settings_url()
                )))
            }
            StatusCode::FORBIDDEN => {
                return Err(ProviderError::CredentialsRejected(format!(
                    "Pipedream refused the OAuth client access to the project; check project_id \
                     and that the client belongs to the project's workspace at {}",
                    kind.settings_url()
                )))
            }
            StatusCode::NOT_FOUND | StatusCode::GONE => {
                return Err(ProviderError::AccountGone(format!(
                    "Pipedream has no account {} in the project's {} environment; check \
                     provider_config.account_id, the project_id and the environment, or connect \
                     the account again at {}",
                    shown(&account.account_id),
                    shown(environment),
                    kind.settings_url()
                )))
            }
            _ => return Err(failure(kind, &answer)),
        }
        let body = json_object(kind, &answer)?;
        pipedream_credentials(&body, app, source, account, Utc::now())
    }
}

/// The account's credentials, once it is the source's app's, the user's, and alive.
fn pipedream_credentials(
    body: &Map<String, Value>,
    app: &str,
    source: &SourceSpec,
    account: &AccountRef,
    now: DateTime<Utc>,
) -> Result<AuthenticationRequest, ProviderError> {
    let kind = ProviderKind::Pipedream;
    let id = shown(&account.account_id);
    let settings = kind.settings_url();
    // Some answers wrap the account in `data`.
    let body = match body.get("data").and_then(Value::as_object) {
        Some(inner) if !body.contains_key("id") => inner,
        _ => body,
    };
    let slug = body
        .get("app")
        .and_then(|a| a.get("name_slug"))
        .and_then(Value::as_str)
        .ok_or_else(|| unreadable(kind, "an account without its app"))?;
    if !slug.eq_ignore_ascii_case(app) {
        return Err(ProviderError::WrongApp(format!(
            "the Pipedream account {id} is for {}, not {}; name an account of the {} app",
            shown(slug),
            source.name,
            app
        )));
    }
    if let Some(wanted) = &account.external_user_id {
        if body.get("external_id").and_then(Value::as_str) != Some(wanted.as_str()) {
            return Err(ProviderError::WrongApp(format!(
                "the Pipedream account {id} belongs to another external user than \
                 provider_config.external_user_id"
            )));
        }
    }
    if body.get("dead").and_then(Value::as_bool) == Some(true) {
        return Err(ProviderError::AccountGone(format!(
            "the Pipedream account {id} is dead (its credentials stopped working); the user must \
             connect it again at {settings}"
        )));
    }
    if body.get("healthy").and_then(Value::as_bool) == Some(false) {
        return Err(ProviderError::AccountGone(format!(
            "the Pipedream account {id} is unhealthy; the user must connect it again at \
             {settings}"
        )));
    }
    let unusable = || {
        ProviderError::CredentialsUnusable(format!(
            "Pipedream gave no usable credentials for account {id}: it returns them only for \
             accounts connected through your own OAuth client for the app, when asked with \
             include_credentials; set up your own OAuth client in the project at {settings} and \
             connect the account again"
        ))
    };
    let found = body
        .get("credentials")
        .and_then(Value::as_object)
        .and_then(|fields| found_credentials(fields, &PIPEDREAM_KEYS, body.get("expires_at"), now));
    as_request(kind, found.ok_or_else(unusable)?, source)
}

/// Why a Pipedream token request failed.
fn token_refusal(answer: &Answer) -> ProviderError {
    let kind = ProviderKind::Pipedream;
    let code = serde_json::from_slice::<Value>(&answer.body)
        .ok()
        .and_then(|b| b.get("error").and_then(Value::as_str).map(str::to_owned));
    let refused = answer.status == StatusCode::UNAUTHORIZED
        || (answer.status == StatusCode::BAD_REQUEST
            && matches!(
                code.as_deref(),
                Some("invalid_client" | "unauthorized_client" | "invalid_grant")
            ));
    if refused {
        ProviderError::CredentialsRejected(format!(
            "Pipedream refused the OAuth client; check client_id and client_secret (an OAuth \
             client of the workspace's API settings) at {}",
            kind.settings_url()
        ))
    } else {
        failure(kind, answer)
    }
}

/// Equal secrets, compared in time that does not depend on where they differ.
fn same_secret(a: &SecretString, b: &SecretString) -> bool {
    let (a, b) = (a.expose_secret().as_bytes(), b.expose_secret().as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::super::accounts::fixtures::{account, catalog, object};
    use super::*;
    use crate::testing::test_now as now;
    use domain::ports::SourceDirectory;

    #[test]
    fn a_pipedream_account_is_read_bare_or_wrapped_and_checked() {
        let catalog = catalog();
        let slack = catalog.spec("slack").unwrap();
        let bare = json!({
            "id": "apn_1", "name": "Acme", "external_id": "user-1", "healthy": true, "dead": false,
            "app": {"name_slug": "slack", "auth_type": "oauth"},
            "credentials": {"oauth_access_token": "xoxp-live", "oauth_refresh_token": "r"},
            "expires_at": "2026-11-25T13:00:00Z",
        });
        let mut wanted = account("apn_1");
        wanted.external_user_id = Some("user-1".into());
        for body in [bare.clone(), json!({"data": bare.clone()})] {
            let got = pipedream_credentials(&object(body), "slack", slack, &wanted, now()).unwrap();
            let AuthenticationRequest::OauthToken(token) = got else {
                panic!("a token: {got:?}");
            };
            assert_eq!(token.access_token.expose_secret(), "xoxp-live");
            assert!(token.refresh_token.is_none());
            assert_eq!(
                token.expires_at,
                Some(now() + chrono::Duration::seconds(3600))
            );
        }

        let mut other_user = wanted.clone();
        other_user.external_user_id = Some("user-2".into());
        let err = pipedream_credentials(&object(bare.clone()), "slack", slack, &other_user, now())
            .unwrap_err();
        assert!(matches!(err, ProviderError::WrongApp(_)), "{err:?}");

        let mut dead = bare.clone();
        dead["dead"] = json!(true);
        let err = pipedream_credentials(&object(dead), "slack", slack, &wanted, now()).unwrap_err();
        assert!(matches!(err, ProviderError::AccountGone(_)), "{err:?}");

        let mut bare_of_credentials = bare;
        bare_of_credentials["credentials"] = Value::Null;
        let err =
            pipedream_credentials(&object(bare_of_credentials), "slack", slack, &wanted, now())
                .unwrap_err();
        assert!(
            matches!(&err, ProviderError::CredentialsUnusable(m) if m.contains("own OAuth client")),
            "{err:?}"
        );
    }

    #[test]
    fn a_cached_token_is_only_handed_to_its_secret() {
        let a = SecretString::from("secret-a".to_owned());
        assert!(same_secret(&a, &SecretString::from("secret-a".to_owned())));
        assert!(!same_secret(&a, &SecretString::from("secret-b".to_owned())));
        assert!(!same_secret(
            &a,
            &SecretString::from("secret-a2".to_owned())
        ));
    }
}

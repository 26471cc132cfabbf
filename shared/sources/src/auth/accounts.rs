//! What both auth providers' clients share: each source's app at each provider, one request's
//! exchange, how an account's credentials are found and handed to the source, and how failures
//! read. Each provider's API is its own module ([`super::composio`], [`super::pipedream`]); the
//! port they serve together is [`super::providers`].
//!
//! No error and no log line holds a key, a secret, a token or a provider's answer: at most an
//! HTTP status, an account id, and an account status or app slug when it looks like one.

use crate::base_url::BaseUrl;
use crate::upstream::{read_capped, retry_after, transport_error, Answer};
use chrono::{DateTime, Utc};
use domain::auth::{AuthenticationRequest, Credentials, OauthToken};
use domain::auth_provider::{ProviderError, ProviderKind};
use domain::catalog::{AuthMethod, SourceSpec};
use domain::ports::CheckError;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Map, Value};
use std::fmt;

/// The most read of a provider's answer: one account or one token is a few kilobytes.
const ANSWER_LIMIT: usize = 256 * 1024;
/// The longest lifetime taken as given (ten years); beyond it the value is nonsense.
pub(super) const MAX_LIFETIME_SECS: i64 = 10 * 365 * 24 * 3600;

/// The app of each source at each provider: (source short name, Composio toolkit slug,
/// Pipedream app slug). A source not listed has no app at either.
const APPS: &[(&str, &str, &str)] = &[
    ("github", "github", "github"),
    ("linear", "linear", "linear_app"),
    ("notion", "notion", "notion"),
    ("slack", "slack", "slack"),
    ("google_drive", "googledrive", "google_drive"),
];

/// Where an account's credentials sit in a provider's answer: an OAuth access token, or a key.
pub(super) struct CredentialKeys {
    pub token: &'static [&'static str],
    pub key: &'static [&'static str],
}

/// The app slug of a source at a provider.
pub(super) fn app_slug(kind: ProviderKind, short_name: &str) -> Option<&'static str> {
    APPS.iter()
        .find(|(source, _, _)| *source == short_name)
        .map(|(_, composio, pipedream)| match kind {
            ProviderKind::Composio => *composio,
            ProviderKind::Pipedream => *pipedream,
        })
}

/// What an account's credentials hold. `Debug` never shows the token or the key.
#[derive(PartialEq)]
pub(super) enum Found {
    Token {
        access_token: String,
        expires_at: Option<DateTime<Utc>>,
    },
    Key(String),
}

impl fmt::Debug for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token { expires_at, .. } => f
                .debug_struct("Token")
                .field("access_token", &"<redacted>")
                .field("expires_at", expires_at)
                .finish(),
            Self::Key(_) => f.write_str("Key(<redacted>)"),
        }
    }
}

pub(super) fn has_any(fields: &Map<String, Value>, keys: &CredentialKeys) -> bool {
    keys.token
        .iter()
        .chain(keys.key)
        .any(|k| fields.get(*k).is_some_and(|v| !v.is_null()))
}

/// The first credential present, in the order of `keys` (a token before a key); `None` when
/// there is none or it is masked. `fallback_expiry` is the account's own `expires_at`.
pub(super) fn found_credentials(
    fields: &Map<String, Value>,
    keys: &CredentialKeys,
    fallback_expiry: Option<&Value>,
    now: DateTime<Utc>,
) -> Option<Found> {
    let first = |names: &[&str]| {
        names
            .iter()
            .find_map(|k| fields.get(*k).filter(|v| !v.is_null()))
    };
    if let Some(token) = first(keys.token) {
        let token = token.as_str().filter(|t| !is_masked(t))?;
        let expires_at = expiry(fields, now).or_else(|| fallback_expiry.and_then(instant));
        return Some(Found::Token {
            access_token: token.to_owned(),
            expires_at,
        });
    }
    let key = first(keys.key)?.as_str().filter(|k| !is_masked(k))?;
    Some(Found::Key(key.to_owned()))
}

/// Whether a value is a provider's stand-in for a secret it will not show: empty, `REDACTED`,
/// stars, or cut short with an ellipsis (Composio's "mask secrets" setting).
pub(super) fn is_masked(value: &str) -> bool {
    let value = value.trim();
    let bare = value.trim_matches(|c| matches!(c, '[' | ']' | '<' | '>' | '*'));
    value.is_empty()
        || bare.eq_ignore_ascii_case("redacted")
        || bare.eq_ignore_ascii_case("masked")
        || value.contains("***")
        || value.ends_with("...")
        || value.ends_with('\u{2026}')
}

/// `expires_at` (RFC 3339 or epoch seconds) or `expires_in` (seconds from now) of a token.
pub(super) fn expiry(fields: &Map<String, Value>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if let Some(at) = fields.get("expires_at").and_then(instant) {
        return Some(at);
    }
    let secs = fields.get("expires_in").and_then(seconds)?;
    (0..=MAX_LIFETIME_SECS)
        .contains(&secs)
        .then(|| now + chrono::Duration::seconds(secs))
}

/// An instant as RFC 3339 or epoch seconds (milliseconds when it is that large).
pub(super) fn instant(value: &Value) -> Option<DateTime<Utc>> {
    if let Some(text) = value.as_str() {
        if let Ok(at) = DateTime::parse_from_rfc3339(text.trim()) {
            return Some(at.with_timezone(&Utc));
        }
    }
    let epoch = seconds(value)?;
    if epoch > 100_000_000_000 {
        DateTime::from_timestamp_millis(epoch)
    } else {
        DateTime::from_timestamp(epoch, 0)
    }
}

/// A whole number, given as a number or a string of digits.
pub(super) fn seconds(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The credentials as the source takes them.
pub(super) fn as_request(
    kind: ProviderKind,
    found: Found,
    source: &SourceSpec,
) -> Result<AuthenticationRequest, ProviderError> {
    let provider = kind.display_name();
    match found {
        Found::Token {
            access_token,
            expires_at,
        } => {
            if !source.supports(AuthMethod::OauthToken) {
                return Err(ProviderError::CredentialsUnusable(format!(
                    "the {provider} account holds an OAuth token, and {} does not connect with one",
                    source.name
                )));
            }
            // No refresh token: the provider refreshes, and is asked again at every run.
            Ok(AuthenticationRequest::OauthToken(OauthToken {
                access_token: SecretString::from(access_token),
                refresh_token: None,
                expires_at,
            }))
        }
        Found::Key(key) => {
            let field = source
                .auth_fields
                .first()
                .filter(|_| source.supports(AuthMethod::Direct));
            let Some(field) = field else {
                return Err(ProviderError::CredentialsUnusable(format!(
                    "the {provider} account holds an API key, and {} connects only with an OAuth \
                     token; connect an OAuth account of the app",
                    source.name
                )));
            };
            let mut fields = Map::new();
            fields.insert(field.name.to_owned(), Value::String(key));
            Ok(AuthenticationRequest::Direct(Credentials::new(fields)))
        }
    }
}

/// A provider's failure that is neither about the account nor the credentials: 429, 5xx, or a
/// status this client does not expect.
pub(super) fn failure(kind: ProviderKind, answer: &Answer) -> ProviderError {
    let provider = kind.display_name();
    let status = answer.status.as_u16();
    if answer.status == StatusCode::TOO_MANY_REQUESTS {
        ProviderError::RateLimited {
            retry_after: retry_after(&answer.headers, Utc::now()),
        }
    } else if answer.status.is_server_error() {
        ProviderError::Unavailable(format!(
            "{provider} answered HTTP {status}; try again later"
        ))
    } else {
        ProviderError::Unavailable(format!(
            "{provider} answered with an unexpected HTTP {status}"
        ))
    }
}

pub(super) fn no_app(kind: ProviderKind, source: &SourceSpec) -> ProviderError {
    ProviderError::WrongApp(format!(
        "{} has no app for {}",
        kind.display_name(),
        source.name
    ))
}

pub(super) fn unreadable(kind: ProviderKind, what: &str) -> ProviderError {
    ProviderError::Unavailable(format!("{} answered with {what}", kind.display_name()))
}

pub(super) fn unreachable(provider: &str, err: &reqwest::Error) -> ProviderError {
    match transport_error(provider, err) {
        CheckError::Unavailable(m) | CheckError::Rejected(m) => ProviderError::Unavailable(m),
        CheckError::RateLimited { retry_after } => ProviderError::RateLimited { retry_after },
    }
}

/// The answer as a JSON object, or `Unavailable` quoting nothing of it.
pub(super) fn json_object(
    kind: ProviderKind,
    answer: &Answer,
) -> Result<Map<String, Value>, ProviderError> {
    match serde_json::from_slice(&answer.body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(unreadable(kind, "something that is not a JSON object")),
    }
}

/// A URL below `base` from path segments, each percent-encoded; `.` and `..` are refused so that
/// an id can never climb out of its place.
pub(super) fn endpoint(
    kind: ProviderKind,
    base: &BaseUrl,
    segments: &[&str],
) -> Result<url::Url, ProviderError> {
    if segments
        .iter()
        .any(|s| s.is_empty() || *s == "." || *s == "..")
    {
        return Err(ProviderError::AccountGone(format!(
            "{} has no such account: an id of the account or project is empty or a dot",
            kind.display_name()
        )));
    }
    let mut url = url::Url::parse(base.as_str())
        .map_err(|_| unreadable(kind, "a base URL that is not one"))?;
    url.path_segments_mut()
        .map_err(|_| unreadable(kind, "a base URL that is not one"))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// A provider's or a caller's identifier as a message may show it: only when it looks like one.
pub(super) fn shown(value: &str) -> &str {
    let plain = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if plain {
        value
    } else {
        "(unreadable)"
    }
}

/// Sends one request and reads its answer. A failed exchange is `Unavailable`, its message
/// naming neither the URL nor anything sent; the log line has the status, never the body.
pub(super) async fn exchange(
    kind: ProviderKind,
    what: &'static str,
    request: reqwest::RequestBuilder,
) -> Result<Answer, ProviderError> {
    let provider = kind.display_name();
    let response = request.send().await.map_err(|e| {
        let e = e.without_url();
        tracing::warn!(provider, error = %e, "{what}: the provider could not be reached");
        unreachable(provider, &e)
    })?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = read_capped(response, ANSWER_LIMIT).await.map_err(|e| {
        let e = e.without_url();
        tracing::warn!(provider, status = status.as_u16(), error = %e, "{what}: the answer could not be read");
        unreachable(provider, &e)
    })?;
    tracing::info!(provider, status = status.as_u16(), "{what}");
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// What the providers' tests share: the catalog, an account reference, a JSON object.
#[cfg(test)]
pub(super) mod fixtures {
    use crate::catalog::Catalog;
    use domain::auth_provider::AccountRef;
    use serde_json::{Map, Value};

    pub fn catalog() -> Catalog {
        Catalog::from_lookup(|_| None).expect("the defaults are valid")
    }

    pub fn account(id: &str) -> AccountRef {
        AccountRef {
            account_id: id.to_owned(),
            auth_config_id: None,
            external_user_id: None,
        }
    }

    pub fn object(value: Value) -> Map<String, Value> {
        value.as_object().expect("an object").clone()
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{catalog, object};
    use super::*;
    use crate::testing::test_now as now;
    use domain::ports::SourceDirectory;
    use serde_json::json;

    #[test]
    fn debug_of_found_credentials_never_shows_the_token_or_the_key() {
        let token = Found::Token {
            access_token: "at-provider-secret-1".into(),
            expires_at: Some(now()),
        };
        let key = Found::Key("ak-provider-secret-2".into());
        let shown = format!("{token:?} {token:#?} {key:?} {key:#?}");
        assert!(!shown.contains("at-provider-secret-1") && !shown.contains("ak-provider-secret-2"));
        assert!(
            shown.contains("expires_at"),
            "what is not secret still shows"
        );
    }

    #[test]
    fn every_source_with_an_app_is_in_the_catalog_and_the_stub_has_none() {
        let catalog = catalog();
        for (source, _, _) in APPS {
            assert!(catalog.spec(source).is_some(), "{source}");
        }
        assert_eq!(
            app_slug(ProviderKind::Composio, "google_drive"),
            Some("googledrive")
        );
        assert_eq!(
            app_slug(ProviderKind::Pipedream, "linear"),
            Some("linear_app")
        );
        assert_eq!(app_slug(ProviderKind::Pipedream, "stub"), None);
        let err = no_app(ProviderKind::Composio, catalog.spec("stub").unwrap());
        assert_eq!(
            err,
            ProviderError::WrongApp("Composio has no app for Stub".into())
        );
    }

    #[test]
    fn masked_values_are_told_from_secrets() {
        for masked in [
            "REDACTED",
            "[redacted]",
            "<REDACTED>",
            "gho_ab***",
            "****",
            "gho_abcd...",
            "lin_api_\u{2026}",
            "",
            "  ",
        ] {
            assert!(is_masked(masked), "{masked:?}");
        }
        for secret in [
            "gho_16C7e42F292c6912E7710c838347Ae178B4a",
            "lin_api_x.y",
            "redacted-ish_key",
        ] {
            assert!(!is_masked(secret), "{secret:?}");
        }
    }

    #[test]
    fn expiry_reads_instants_epochs_and_lifetimes() {
        let at = |v: Value| expiry(&object(v), now());
        let in_an_hour = now() + chrono::Duration::seconds(3600);
        assert_eq!(at(json!({"expires_in": 3600})), Some(in_an_hour));
        assert_eq!(at(json!({"expires_in": "3600"})), Some(in_an_hour));
        assert_eq!(
            at(json!({"expires_at": "2026-11-25T13:00:00Z"})),
            Some(in_an_hour)
        );
        assert_eq!(
            at(json!({"expires_at": in_an_hour.timestamp()})),
            Some(in_an_hour)
        );
        assert_eq!(
            at(json!({"expires_at": in_an_hour.timestamp_millis()})),
            Some(in_an_hour)
        );
        assert_eq!(at(json!({"expires_in": -5})), None);
        assert_eq!(at(json!({"expires_at": "soon"})), None);
        assert_eq!(at(json!({})), None);
    }

    #[test]
    fn ids_that_are_not_plain_are_not_shown_nor_allowed_to_climb() {
        assert_eq!(shown("ca_1-x.y"), "ca_1-x.y");
        assert_eq!(shown("a b"), "(unreadable)");
        assert_eq!(shown(&"x".repeat(65)), "(unreadable)");
        let base = BaseUrl::parse("http://127.0.0.1:9/prefix").unwrap();
        let url = endpoint(ProviderKind::Pipedream, &base, &["v1", "a/b?c"]).unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:9/prefix/v1/a%2Fb%3Fc");
        assert!(endpoint(ProviderKind::Pipedream, &base, &["v1", ".."]).is_err());
    }
}

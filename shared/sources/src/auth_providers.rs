//! The external auth providers' APIs as the domain's [`AuthProviders`] port: whether an
//! organization's provider credentials are good, and the fresh credentials of one connected
//! account, checked to be alive and to belong to the source's app.
//!
//! Composio: API v3 (docs.composio.dev), the project's API key in `x-api-key`. Pipedream: the
//! Connect REST API (pipedream.com/docs/connect/api-reference), a client-credentials token per
//! OAuth client, kept until five minutes before it expires, and the project's environment in
//! `x-pd-environment`.
//!
//! No error and no log line holds a key, a secret, a token or a provider's answer: at most an
//! HTTP status, an account id, and an account status or app slug when it looks like one.

use crate::base_url::BaseUrl;
use crate::catalog::{configured_url, CatalogError};
use crate::upstream::{http_client, read_capped, retry_after, transport_error, Answer};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::auth::{AuthenticationRequest, Credentials, OauthToken};
use domain::auth_provider::{AccountRef, ProviderCredentials, ProviderError, ProviderKind};
use domain::catalog::{AuthMethod, SourceSpec};
use domain::ports::{AuthProviders, CheckError};
use reqwest::header::HeaderValue;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Composio's public API.
pub const COMPOSIO_DEFAULT_BASE_URL: &str = "https://backend.composio.dev";
/// Pipedream's public API.
pub const PIPEDREAM_DEFAULT_BASE_URL: &str = "https://api.pipedream.com";

/// The most read of a provider's answer: one account or one token is a few kilobytes.
const ANSWER_LIMIT: usize = 256 * 1024;
/// A cached Pipedream token is replaced this long before it expires, so that no run starts with
/// a token about to lapse.
const TOKEN_MARGIN: Duration = Duration::from_secs(5 * 60);
/// The longest lifetime taken as given (ten years); beyond it the value is nonsense.
const MAX_LIFETIME_SECS: i64 = 10 * 365 * 24 * 3600;

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
struct CredentialKeys {
    token: &'static [&'static str],
    key: &'static [&'static str],
}

const COMPOSIO_KEYS: CredentialKeys = CredentialKeys {
    token: &["access_token"],
    key: &["api_key", "generic_api_key", "token"],
};

const PIPEDREAM_KEYS: CredentialKeys = CredentialKeys {
    token: &["oauth_access_token"],
    key: &["api_key", "api_token", "token"],
};

/// The app slug of a source at a provider.
fn app_slug(kind: ProviderKind, short_name: &str) -> Option<&'static str> {
    APPS.iter()
        .find(|(source, _, _)| *source == short_name)
        .map(|(_, composio, pipedream)| match kind {
            ProviderKind::Composio => *composio,
            ProviderKind::Pipedream => *pipedream,
        })
}

/// A Pipedream token of one OAuth client, handed out again only to the same secret.
struct CachedToken {
    client_secret: SecretString,
    access_token: SecretString,
    replace_at: Instant,
}

/// Composio and Pipedream over the shared HTTP client; cheap to clone (clones share the token
/// cache), built once per cold start.
#[derive(Clone)]
pub struct ProviderClients {
    client: reqwest::Client,
    composio: BaseUrl,
    pipedream: BaseUrl,
    /// Pipedream tokens by client id.
    tokens: Arc<Mutex<HashMap<String, CachedToken>>>,
}

impl fmt::Debug for ProviderClients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderClients")
            .field("composio", &self.composio)
            .field("pipedream", &self.pipedream)
            .finish_non_exhaustive()
    }
}

impl ProviderClients {
    /// `client` must never follow redirects ([`crate::http_client`] does not).
    pub fn new(client: reqwest::Client, composio: BaseUrl, pipedream: BaseUrl) -> Self {
        Self {
            client,
            composio,
            pipedream,
            tokens: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// From the process environment: `AUTH_PROVIDER_<KIND>_BASE_URL` overrides a provider's
    /// API (unset or empty means its public one).
    pub fn from_env() -> Result<Self, CatalogError> {
        Self::from_lookup(crate::catalog::env_var)
    }

    /// As [`ProviderClients::from_env`], reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, CatalogError> {
        Self::from_lookup_with(http_client().map_err(CatalogError::HttpClient)?, lookup)
    }

    /// As [`ProviderClients::from_lookup`], on a client the process already built.
    pub fn from_lookup_with(
        client: reqwest::Client,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, CatalogError> {
        let url = |kind: ProviderKind, default: &str| {
            configured_url(&lookup, Self::base_url_variable(kind), default)
        };
        let composio = url(ProviderKind::Composio, COMPOSIO_DEFAULT_BASE_URL)?;
        let pipedream = url(ProviderKind::Pipedream, PIPEDREAM_DEFAULT_BASE_URL)?;
        Ok(Self::new(client, composio, pipedream))
    }

    /// `AUTH_PROVIDER_COMPOSIO_BASE_URL` for Composio.
    pub fn base_url_variable(kind: ProviderKind) -> String {
        format!(
            "AUTH_PROVIDER_{}_BASE_URL",
            kind.short_name().to_ascii_uppercase()
        )
    }

    /// Sends one request and reads its answer. A failed exchange is `Unavailable`, its message
    /// naming neither the URL nor anything sent; the log line has the status, never the body.
    async fn exchange(
        &self,
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

    async fn verify_composio(&self, api_key: &SecretString) -> Result<(), ProviderError> {
        let request = self
            .client
            .get(self.composio.endpoint("api/v3/auth_configs"))
            .query(&[("limit", "1")])
            .header("x-api-key", secret_header(ProviderKind::Composio, api_key)?);
        let answer = self
            .exchange(ProviderKind::Composio, "Composio API key check", request)
            .await?;
        match answer.status {
            s if s.is_success() => json_object(ProviderKind::Composio, &answer).map(|_| ()),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(composio_key_rejected()),
            _ => Err(failure(ProviderKind::Composio, &answer)),
        }
    }

    async fn fetch_composio(
        &self,
        api_key: &SecretString,
        source: &SourceSpec,
        account: &AccountRef,
    ) -> Result<AuthenticationRequest, ProviderError> {
        let kind = ProviderKind::Composio;
        let toolkit = app_slug(kind, source.short_name).ok_or_else(|| no_app(kind, source))?;
        let url = endpoint(
            kind,
            &self.composio,
            &["api", "v3", "connected_accounts", &account.account_id],
        )?;
        let request = self
            .client
            .get(url)
            .header("x-api-key", secret_header(kind, api_key)?);
        let answer = self
            .exchange(kind, "Composio connected account fetch", request)
            .await?;
        match answer.status {
            s if s.is_success() => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => return Err(composio_key_rejected()),
            StatusCode::NOT_FOUND | StatusCode::GONE => {
                return Err(ProviderError::AccountGone(format!(
                    "Composio has no connected account {}; check provider_config.account_id, or \
                     connect the account again at {}",
                    shown(&account.account_id),
                    kind.settings_url()
                )))
            }
            _ => return Err(failure(kind, &answer)),
        }
        let body = json_object(kind, &answer)?;
        composio_credentials(&body, toolkit, source, account, Utc::now())
    }

    /// A Pipedream token of this client: the cached one when `cached` allows and the secret is
    /// the one it was issued to, a new one otherwise. Says whether it came from the cache.
    async fn pipedream_token(
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
            .post(self.pipedream.endpoint("v1/oauth/token"))
            .json(&json!({
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": client_secret.expose_secret(),
            }));
        let answer = self
            .exchange(kind, "Pipedream token request", request)
            .await?;
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

    fn forget_pipedream_token(&self, client_id: &str) {
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(client_id);
    }

    async fn pipedream_account(
        &self,
        token: &SecretString,
        project_id: &str,
        environment: &str,
        account_id: &str,
    ) -> Result<Answer, ProviderError> {
        let kind = ProviderKind::Pipedream;
        let url = endpoint(
            kind,
            &self.pipedream,
            &["v1", "connect", project_id, "accounts", account_id],
        )?;
        let mut bearer = HeaderValue::try_from(format!("Bearer {}", token.expose_secret()))
            .map_err(|_| {
                ProviderError::Unavailable("Pipedream issued a token no header can carry".into())
            })?;
        bearer.set_sensitive(true);
        let request = self
            .client
            .get(url)
            .query(&[("include_credentials", "true")])
            .header(reqwest::header::AUTHORIZATION, bearer)
            .header("x-pd-environment", environment);
        self.exchange(kind, "Pipedream account fetch", request)
            .await
    }

    async fn fetch_pipedream(
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
        let (token, cached) = self.pipedream_token(client_id, client_secret, true).await?;
        let mut answer = self
            .pipedream_account(&token, project_id, environment, &account.account_id)
            .await?;
        if answer.status == StatusCode::UNAUTHORIZED {
            self.forget_pipedream_token(client_id);
            // A cached token may have been revoked early: one new token, one more try.
            if cached {
                let (token, _) = self
                    .pipedream_token(client_id, client_secret, false)
                    .await?;
                answer = self
                    .pipedream_account(&token, project_id, environment, &account.account_id)
                    .await?;
                if answer.status == StatusCode::UNAUTHORIZED {
                    self.forget_pipedream_token(client_id);
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

#[async_trait]
impl AuthProviders for ProviderClients {
    async fn verify(&self, credentials: &ProviderCredentials) -> Result<(), ProviderError> {
        match credentials {
            ProviderCredentials::Composio { api_key } => self.verify_composio(api_key).await,
            // Always a new token: a check says what the provider thinks now.
            ProviderCredentials::Pipedream {
                client_id,
                client_secret,
                ..
            } => self
                .pipedream_token(client_id, client_secret, false)
                .await
                .map(|_| ()),
        }
    }

    async fn fetch(
        &self,
        credentials: &ProviderCredentials,
        source: &SourceSpec,
        account: &AccountRef,
    ) -> Result<AuthenticationRequest, ProviderError> {
        match credentials {
            ProviderCredentials::Composio { api_key } => {
                self.fetch_composio(api_key, source, account).await
            }
            ProviderCredentials::Pipedream {
                client_id,
                client_secret,
                project_id,
                environment,
            } => {
                self.fetch_pipedream(
                    client_id,
                    client_secret,
                    project_id,
                    environment,
                    source,
                    account,
                )
                .await
            }
        }
    }
}

/// The connected account's credentials, once the account is the source's, ACTIVE and enabled.
fn composio_credentials(
    body: &Map<String, Value>,
    toolkit: &str,
    source: &SourceSpec,
    account: &AccountRef,
    now: DateTime<Utc>,
) -> Result<AuthenticationRequest, ProviderError> {
    let kind = ProviderKind::Composio;
    let id = shown(&account.account_id);
    let settings = kind.settings_url();
    let slug = body
        .get("toolkit")
        .and_then(|t| t.get("slug"))
        .and_then(Value::as_str)
        .ok_or_else(|| unreadable(kind, "a connected account without its toolkit"))?;
    if !slug.eq_ignore_ascii_case(toolkit) {
        return Err(ProviderError::WrongApp(format!(
            "the Composio connected account {id} is for {}, not {}; name an account of the {} \
             toolkit",
            shown(slug),
            source.name,
            toolkit
        )));
    }
    if let Some(wanted) = &account.auth_config_id {
        let actual = body
            .get("auth_config")
            .and_then(|c| c.get("id"))
            .and_then(Value::as_str);
        if actual != Some(wanted.as_str()) {
            return Err(ProviderError::WrongApp(format!(
                "the Composio connected account {id} does not belong to auth config {}; check \
                 provider_config.auth_config_id",
                shown(wanted)
            )));
        }
    }
    let status = body
        .get("status")
        .and_then(Value::as_str)
        .ok_or_else(|| unreadable(kind, "a connected account without its status"))?;
    if !status.eq_ignore_ascii_case("ACTIVE") {
        return Err(ProviderError::AccountGone(format!(
            "the Composio connected account {id} is {}, not ACTIVE; reconnect it at {settings}",
            shown(status)
        )));
    }
    if body.get("is_disabled").and_then(Value::as_bool) == Some(true) {
        return Err(ProviderError::AccountGone(format!(
            "the Composio connected account {id} is disabled; enable it at {settings}"
        )));
    }
    // Today's shape keeps the credentials in `state.val`; older answers in `data`.
    let candidates = [
        body.get("state").and_then(|s| s.get("val")),
        body.get("data"),
    ];
    let fields = candidates
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .find(|fields| has_any(fields, &COMPOSIO_KEYS));
    let unusable = || {
        ProviderError::CredentialsUnusable(format!(
            "the Composio connected account {id} gives no usable credentials (they are missing \
             or masked); turn off secret masking in the Composio project settings at {settings}, \
             or reconnect the account"
        ))
    };
    let found = fields.and_then(|f| found_credentials(f, &COMPOSIO_KEYS, None, now));
    as_request(kind, found.ok_or_else(unusable)?, source)
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

/// What an account's credentials hold.
#[derive(Debug, PartialEq)]
enum Found {
    Token {
        access_token: String,
        expires_at: Option<DateTime<Utc>>,
    },
    Key(String),
}

fn has_any(fields: &Map<String, Value>, keys: &CredentialKeys) -> bool {
    keys.token
        .iter()
        .chain(keys.key)
        .any(|k| fields.get(*k).is_some_and(|v| !v.is_null()))
}

/// The first credential present, in the order of `keys` (a token before a key); `None` when
/// there is none or it is masked. `fallback_expiry` is the account's own `expires_at`.
fn found_credentials(
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
fn is_masked(value: &str) -> bool {
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
fn expiry(fields: &Map<String, Value>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if let Some(at) = fields.get("expires_at").and_then(instant) {
        return Some(at);
    }
    let secs = fields.get("expires_in").and_then(seconds)?;
    (0..=MAX_LIFETIME_SECS)
        .contains(&secs)
        .then(|| now + chrono::Duration::seconds(secs))
}

/// An instant as RFC 3339 or epoch seconds (milliseconds when it is that large).
fn instant(value: &Value) -> Option<DateTime<Utc>> {
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
fn seconds(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The credentials as the source takes them.
fn as_request(
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
fn failure(kind: ProviderKind, answer: &Answer) -> ProviderError {
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

fn composio_key_rejected() -> ProviderError {
    ProviderError::CredentialsRejected(format!(
        "Composio refused the API key; check it in the Composio project settings at {}, or create \
         a new one",
        ProviderKind::Composio.settings_url()
    ))
}

fn no_app(kind: ProviderKind, source: &SourceSpec) -> ProviderError {
    ProviderError::WrongApp(format!(
        "{} has no app for {}",
        kind.display_name(),
        source.name
    ))
}

fn unreadable(kind: ProviderKind, what: &str) -> ProviderError {
    ProviderError::Unavailable(format!("{} answered with {what}", kind.display_name()))
}

fn unreachable(provider: &str, err: &reqwest::Error) -> ProviderError {
    match transport_error(provider, err) {
        CheckError::Unavailable(m) | CheckError::Rejected(m) => ProviderError::Unavailable(m),
        CheckError::RateLimited { retry_after } => ProviderError::RateLimited { retry_after },
    }
}

/// The answer as a JSON object, or `Unavailable` quoting nothing of it.
fn json_object(kind: ProviderKind, answer: &Answer) -> Result<Map<String, Value>, ProviderError> {
    match serde_json::from_slice(&answer.body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(unreadable(kind, "something that is not a JSON object")),
    }
}

/// A URL below `base` from path segments, each percent-encoded; `.` and `..` are refused so that
/// an id can never climb out of its place.
fn endpoint(
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

/// A secret as a header value that logs never show.
fn secret_header(kind: ProviderKind, secret: &SecretString) -> Result<HeaderValue, ProviderError> {
    let mut value = HeaderValue::try_from(secret.expose_secret()).map_err(|_| {
        ProviderError::CredentialsRejected(format!(
            "the {} API key contains characters a key cannot have",
            kind.display_name()
        ))
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// Equal secrets, compared in time that does not depend on where they differ.
fn same_secret(a: &SecretString, b: &SecretString) -> bool {
    let (a, b) = (a.expose_secret().as_bytes(), b.expose_secret().as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A provider's or a caller's identifier as a message may show it: only when it looks like one.
fn shown(value: &str) -> &str {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use domain::ports::SourceDirectory;

    fn catalog() -> Catalog {
        Catalog::from_lookup(|_| None).expect("the defaults are valid")
    }

    fn account(id: &str) -> AccountRef {
        AccountRef {
            account_id: id.to_owned(),
            auth_config_id: None,
            external_user_id: None,
        }
    }

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().expect("an object").clone()
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn composio_account(toolkit: &str, status: &str, val: Value) -> Map<String, Value> {
        object(json!({
            "id": "ca_1",
            "status": status,
            "is_disabled": false,
            "toolkit": {"slug": toolkit},
            "auth_config": {"id": "ac_1", "auth_scheme": "OAUTH2", "is_composio_managed": true},
            "state": {"authScheme": "OAUTH2", "val": val},
        }))
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
    fn a_composio_oauth_account_gives_its_token_without_a_refresh_token() {
        let catalog = catalog();
        let body = composio_account(
            "github",
            "ACTIVE",
            json!({"status": "ACTIVE", "access_token": "gho_live", "refresh_token": "ghr_x", "expires_in": 600}),
        );
        let got = composio_credentials(
            &body,
            "github",
            catalog.spec("github").unwrap(),
            &account("ca_1"),
            now(),
        )
        .unwrap();
        let AuthenticationRequest::OauthToken(token) = got else {
            panic!("a token: {got:?}");
        };
        assert_eq!(token.access_token.expose_secret(), "gho_live");
        assert!(token.refresh_token.is_none());
        assert_eq!(
            token.expires_at,
            Some(now() + chrono::Duration::seconds(600))
        );
    }

    #[test]
    fn a_composio_key_account_gives_the_key_under_the_sources_first_field() {
        let catalog = catalog();
        let mut body = composio_account("linear", "ACTIVE", json!({}));
        body.remove("state");
        body.insert("data".into(), json!({"generic_api_key": "lin_api_live"}));
        let got = composio_credentials(
            &body,
            "linear",
            catalog.spec("linear").unwrap(),
            &account("ca_1"),
            now(),
        )
        .unwrap();
        let AuthenticationRequest::Direct(credentials) = got else {
            panic!("direct: {got:?}");
        };
        assert_eq!(credentials.string("api_key"), Some("lin_api_live"));
    }

    #[test]
    fn a_composio_account_must_be_the_sources_active_and_unmasked() {
        let catalog = catalog();
        let github = catalog.spec("github").unwrap();
        let token = json!({"access_token": "gho_live"});
        let check = |body: &Map<String, Value>, account: &AccountRef| {
            composio_credentials(body, "github", github, account, now()).unwrap_err()
        };
        let err = check(
            &composio_account("gitlab", "ACTIVE", token.clone()),
            &account("ca_1"),
        );
        assert!(
            matches!(&err, ProviderError::WrongApp(m) if m.contains("gitlab")),
            "{err:?}"
        );

        let mut wanted = account("ca_1");
        wanted.auth_config_id = Some("ac_other".into());
        let err = check(
            &composio_account("github", "ACTIVE", token.clone()),
            &wanted,
        );
        assert!(matches!(err, ProviderError::WrongApp(_)), "{err:?}");

        let err = check(
            &composio_account("github", "EXPIRED", token),
            &account("ca_1"),
        );
        assert!(
            matches!(&err, ProviderError::AccountGone(m) if m.contains("EXPIRED")),
            "{err:?}"
        );

        let err = check(
            &composio_account("github", "ACTIVE", json!({"access_token": "gho_l..."})),
            &account("ca_1"),
        );
        assert!(
            matches!(&err, ProviderError::CredentialsUnusable(m) if m.contains("masking")),
            "{err:?}"
        );
        let err = check(
            &composio_account("github", "ACTIVE", json!({})),
            &account("ca_1"),
        );
        assert!(
            matches!(err, ProviderError::CredentialsUnusable(_)),
            "{err:?}"
        );
    }

    #[test]
    fn a_key_for_an_oauth_only_source_is_unusable() {
        let catalog = catalog();
        let body = composio_account("googledrive", "ACTIVE", json!({"api_key": "AIza-live"}));
        let err = composio_credentials(
            &body,
            "googledrive",
            catalog.spec("google_drive").unwrap(),
            &account("ca_1"),
            now(),
        )
        .unwrap_err();
        assert!(
            matches!(err, ProviderError::CredentialsUnusable(_)),
            "{err:?}"
        );
    }

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
    fn ids_that_are_not_plain_are_not_shown_nor_allowed_to_climb() {
        assert_eq!(shown("ca_1-x.y"), "ca_1-x.y");
        assert_eq!(shown("a b"), "(unreadable)");
        assert_eq!(shown(&"x".repeat(65)), "(unreadable)");
        let base = BaseUrl::parse("http://127.0.0.1:9/prefix").unwrap();
        let url = endpoint(ProviderKind::Pipedream, &base, &["v1", "a/b?c"]).unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:9/prefix/v1/a%2Fb%3Fc");
        assert!(endpoint(ProviderKind::Pipedream, &base, &["v1", ".."]).is_err());
    }

    #[test]
    fn base_urls_come_from_the_environment_and_are_checked() {
        let clients = ProviderClients::from_lookup(|name| {
            (name == "AUTH_PROVIDER_PIPEDREAM_BASE_URL").then(|| "http://127.0.0.1:4800".into())
        })
        .unwrap();
        assert_eq!(clients.composio.as_str(), "https://backend.composio.dev/");
        assert_eq!(clients.pipedream.as_str(), "http://127.0.0.1:4800/");
        let err = ProviderClients::from_lookup(|name| {
            (name == "AUTH_PROVIDER_COMPOSIO_BASE_URL").then(|| "http://composio.internal".into())
        })
        .unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("AUTH_PROVIDER_COMPOSIO_BASE_URL "),
            "{message}"
        );
        assert!(!message.contains("composio.internal"), "{message}");
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

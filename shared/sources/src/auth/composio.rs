//! Composio's API v3 (docs.composio.dev), the project's API key in `x-api-key`: whether a key
//! is good, and a connected account's credentials.

use super::accounts::{
    app_slug, as_request, endpoint, exchange, failure, found_credentials, has_any, json_object,
    no_app, shown, unreadable, CredentialKeys,
};
use crate::base_url::BaseUrl;
use crate::upstream::secret_header;
use chrono::{DateTime, Utc};
use domain::auth::AuthenticationRequest;
use domain::auth_provider::{AccountRef, ProviderError, ProviderKind};
use domain::catalog::SourceSpec;
use reqwest::header::HeaderValue;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

/// Composio's public API.
pub(super) const COMPOSIO_DEFAULT_BASE_URL: &str = "https://backend.composio.dev";

const COMPOSIO_KEYS: CredentialKeys = CredentialKeys {
    token: &["access_token"],
    key: &["api_key", "generic_api_key", "token"],
};

/// Composio's API on the shared client.
#[derive(Clone)]
pub(super) struct Composio {
    client: reqwest::Client,
    pub(super) base: BaseUrl,
}

impl Composio {
    pub(super) fn new(client: reqwest::Client, base: BaseUrl) -> Self {
        Self { client, base }
    }

    pub(super) async fn verify(&self, api_key: &SecretString) -> Result<(), ProviderError> {
        let request = self
            .client
            .get(self.base.endpoint("api/v3/auth_configs"))
            .query(&[("limit", "1")])
            .header("x-api-key", api_key_header(api_key)?);
        let answer = exchange(ProviderKind::Composio, "Composio API key check", request).await?;
        match answer.status {
            s if s.is_success() => json_object(ProviderKind::Composio, &answer).map(|_| ()),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(composio_key_rejected()),
            _ => Err(failure(ProviderKind::Composio, &answer)),
        }
    }

    pub(super) async fn fetch(
        &self,
        api_key: &SecretString,
        source: &SourceSpec,
        account: &AccountRef,
    ) -> Result<AuthenticationRequest, ProviderError> {
        let kind = ProviderKind::Composio;
        let toolkit = app_slug(kind, source.short_name).ok_or_else(|| no_app(kind, source))?;
        let url = endpoint(
            kind,
            &self.base,
            &["api", "v3", "connected_accounts", &account.account_id],
        )?;
        let request = self
            .client
            .get(url)
            .header("x-api-key", api_key_header(api_key)?);
        let answer = exchange(kind, "Composio connected account fetch", request).await?;
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

fn composio_key_rejected() -> ProviderError {
    ProviderError::CredentialsRejected(format!(
        "Composio refused the API key; check it in the Composio project settings at {}, or create \
         a new one",
        ProviderKind::Composio.settings_url()
    ))
}

/// The project's API key as a header value that logs never show.
fn api_key_header(api_key: &SecretString) -> Result<HeaderValue, ProviderError> {
    secret_header(api_key.expose_secret()).map_err(|_| {
        ProviderError::CredentialsRejected(format!(
            "the {} API key contains characters a key cannot have",
            ProviderKind::Composio.display_name()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::super::accounts::fixtures::{account, catalog, object};
    use super::*;
    use crate::testing::test_now as now;
    use domain::ports::SourceDirectory;
    use serde_json::json;

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
}

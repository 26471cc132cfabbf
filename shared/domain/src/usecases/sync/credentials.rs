//! A run's credentials (DESIGN section 6): what a run calls its source with.
//!
//! - Direct credentials and tokens come from the vault.
//! - OAuth tokens with a refresh token are refreshed ahead of their expiry (max(5 min, 20% of
//!   their lifetime)) and once when the source answers 401. One refresher per connection at a
//!   time (a lease); the others wait and read the new tokens. New tokens are always written,
//!   also when the lease ran out during the token call, and become current only if they follow
//!   the version they were refreshed from (`usecases::secrets`): tokens from a provider are
//!   never thrown away, and older ones never overwrite newer ones. A refresh token refused
//!   because another run rotated it reads that run's tokens. A provider that sends no refresh
//!   token keeps the old one. `invalid_grant` and the like end the run as needing re-authorization; a token
//!   endpoint that is down or rate-limits defers the run without counting as an auth failure.
//! - Auth provider accounts are fetched fresh from Composio or Pipedream at every run; the
//!   platform never refreshes them.

use super::SyncError;
use crate::auth::{AuthenticationRequest, OauthToken, StoredCredential};
use crate::auth_provider::ProviderError;
use crate::catalog::{AuthMethod, SourceSpec};
use crate::error::DomainError;
use crate::error_category::ErrorCategory;
use crate::ids::{ConnectionId, OrganizationId};
use crate::oauth::TokenError;
use crate::ports::{SecretVersion, Succession, VaultError, SECRET_VALUE_LIMIT};
use crate::usecases::secrets::{self, SecretsError};
use crate::usecases::{auth_providers, oauth_flow, Platform};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use std::time::Duration;
use tracing::{info, warn};

/// How long a refresher holds the lease: far longer than a token call may take.
pub const REFRESH_LEASE: Duration = Duration::from_secs(60);
/// How long a run waits for another refresher before it defers.
const WAIT_FOR_REFRESHER: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(250);
/// How long a run waits when the token endpoint or the auth provider is down.
const UNAVAILABLE_WAIT: Duration = Duration::from_secs(60);
/// The least time before its expiry a token is refreshed.
const MIN_AHEAD: chrono::Duration = chrono::Duration::minutes(5);

/// What a run calls its source with, or why it cannot.
pub(crate) enum Credential {
    Ready {
        auth: AuthenticationRequest,
        /// Whether a 401 is worth one refresh.
        refreshable: bool,
    },
    Unusable(Unusable),
}

/// Why a run cannot call its source now.
pub(crate) enum Unusable {
    /// The run fails; with a category, the connection needs re-authorization.
    Failed {
        error: String,
        category: Option<ErrorCategory>,
    },
    /// The token endpoint or the auth provider is unavailable: try again after this.
    Wait(Duration),
}

/// The credentials of one connection's run.
pub(crate) struct Credentials<'a> {
    pub platform: &'a Platform,
    pub org: OrganizationId,
    pub connection: ConnectionId,
    pub spec: &'a SourceSpec,
}

impl Credentials<'_> {
    /// The credentials for a run's start: refreshed when due, fetched from a provider.
    pub(crate) async fn for_run(&self) -> Result<Credential, SyncError> {
        let (stored, version) = match self.stored().await? {
            Ok(stored) => stored,
            Err(error) => return Ok(failed(error)),
        };
        match stored {
            StoredCredential::Direct(_) => Ok(ready(&stored, false)),
            StoredCredential::AwaitingAuthorization { .. } => {
                Ok(failed("the connection has not been authorized yet".into()))
            }
            StoredCredential::Provider {
                ref provider_readable_id,
                ref account,
            } => {
                self.fetch_from_provider(provider_readable_id, account)
                    .await
            }
            StoredCredential::Tokens { ref token, .. } => {
                if self.refresh_due(&stored, self.platform.clock.now()) {
                    self.refresh(&stored, &version, false).await
                } else {
                    let refreshable = token.refresh_token.is_some() && self.spec.oauth.is_some();
                    Ok(ready(&stored, refreshable))
                }
            }
        }
    }

    /// After the source refused `rejected`: one refresh, unless another run already replaced it.
    pub(crate) async fn after_rejection(
        &self,
        rejected: &AuthenticationRequest,
    ) -> Result<Credential, SyncError> {
        let (stored, version) = match self.stored().await? {
            Ok(stored) => stored,
            Err(error) => return Ok(failed(error)),
        };
        if let AuthenticationRequest::OauthToken(old) = rejected {
            if changed(&stored, old) {
                info!("another run refreshed the token meanwhile; retrying with it");
                return Ok(ready(&stored, false));
            }
        }
        self.refresh(&stored, &version, true).await
    }

    /// The stored credential and the version of the secret it was read from.
    async fn stored(&self) -> Result<Result<(StoredCredential, SecretVersion), String>, SyncError> {
        let secret = secrets::read(self.platform, self.org, self.connection).await?;
        Ok(match secret {
            None => Err("the connection's credentials are missing from the vault".into()),
            Some(secret) => StoredCredential::parse(&secret.value).map(|c| (c, secret.version)),
        })
    }

    /// Whether the token expires within max(5 min, 20% of its lifetime).
    fn refresh_due(&self, stored: &StoredCredential, now: DateTime<Utc>) -> bool {
        let StoredCredential::Tokens {
            token, obtained_at, ..
        } = stored
        else {
            return false;
        };
        let (Some(_), Some(expires_at)) = (&token.refresh_token, token.expires_at) else {
            return false;
        };
        let lifetime = obtained_at.map(|at| expires_at - at).unwrap_or_default();
        let ahead = (lifetime / 5).max(MIN_AHEAD);
        expires_at - ahead <= now
    }

    /// One refresh under the connection's lease. `forced`: the source refused the token.
    async fn refresh(
        &self,
        stored: &StoredCredential,
        version: &SecretVersion,
        forced: bool,
    ) -> Result<Credential, SyncError> {
        let StoredCredential::Tokens {
            method,
            token,
            client,
            ..
        } = stored
        else {
            // The secret changed kind since the run read it (new direct credentials).
            return Ok(Credential::Unusable(Unusable::Failed {
                error: format!("{} rejected the credentials", self.spec.name),
                category: Some(ErrorCategory::of_rejected(stored.method())),
            }));
        };
        let still_valid = !forced
            && token
                .expires_at
                .is_none_or(|at| at > self.platform.clock.now());
        // A token imported with no client of its own would be refreshed with the platform's
        // app: only when the operator allows it (a refresh oracle for a stolen token otherwise).
        let imported = *method == AuthMethod::OauthToken && client.is_none();
        if imported && !self.platform.refresh_imported_tokens_with_platform_app {
            if still_valid {
                return Ok(ready(stored, false));
            }
            return Ok(Credential::Unusable(Unusable::Failed {
                error: format!(
                    "the imported {} access token {}; imported tokens are not refreshed with the \
                     platform's OAuth app: import a fresh token or authorize in the browser",
                    self.spec.name,
                    if forced { "was rejected" } else { "expired" },
                ),
                category: Some(ErrorCategory::OauthCredentialsExpired),
            }));
        }
        let (Some(refresh_token), Some(settings), Some(endpoints)) = (
            token.refresh_token.as_ref(),
            self.spec.oauth.as_ref(),
            self.platform.sources.oauth_endpoints(self.spec.short_name),
        ) else {
            if still_valid {
                return Ok(ready(stored, false));
            }
            return Ok(Credential::Unusable(Unusable::Failed {
                error: format!(
                    "{} rejected the access token, and there is no refresh token: authorize again",
                    self.spec.name
                ),
                category: Some(ErrorCategory::OauthCredentialsExpired),
            }));
        };

        let holder = uuid::Uuid::new_v4().to_string();
        if !self.acquire(&holder, token).await? {
            // Another run refreshed, or is still at it.
            return match self.stored().await? {
                Ok((now, _)) if changed(&now, token) => Ok(ready(&now, false)),
                _ if still_valid => Ok(ready(stored, false)),
                _ => Ok(Credential::Unusable(Unusable::Wait(POLL * 8))),
            };
        };
        let refresh = Refresh {
            from: version,
            stored,
            refresh_token,
            settings,
            endpoints: &endpoints,
            method: *method,
            token,
            client: client.clone(),
            still_valid,
        };
        let result = self.refresh_holding(refresh).await;
        if let Err(e) = self
            .platform
            .store
            .release_refresh_lease(self.connection, &holder)
            .await
        {
            warn!(error = %e, "could not release the refresh lease; it runs out by itself");
        }
        result
    }

    /// Takes the lease, or waits for the holder's new tokens: `false` when the tokens changed
    /// meanwhile or the wait ran out.
    async fn acquire(&self, holder: &str, token: &OauthToken) -> Result<bool, SyncError> {
        let started = tokio::time::Instant::now();
        loop {
            let now = self.platform.clock.now();
            let until = now + chrono::Duration::from_std(REFRESH_LEASE).unwrap_or_default();
            if self
                .platform
                .store
                .acquire_refresh_lease(self.connection, holder, now, until)
                .await?
                .is_some()
            {
                return Ok(true);
            }
            if started.elapsed() >= WAIT_FOR_REFRESHER {
                return Ok(false);
            }
            tokio::time::sleep(POLL).await;
            if matches!(self.stored().await?, Ok((ref now, _)) if changed(now, token)) {
                return Ok(false);
            }
        }
    }

    async fn refresh_holding(&self, refresh: Refresh<'_>) -> Result<Credential, SyncError> {
        let Refresh {
            from,
            stored,
            refresh_token,
            settings,
            endpoints,
            method,
            token,
            client,
            still_valid,
        } = refresh;
        // Another run may have refreshed between our read and the lease.
        if let Ok((now, _)) = self.stored().await? {
            if changed(&now, token) {
                return Ok(ready(&now, false));
            }
        }
        let app = match oauth_flow::oauth_app(self.platform, self.spec, client.as_ref()).await {
            Ok(app) => app,
            // Nothing to refresh with: a token that still works is used; one that does not
            // needs the user.
            Err(DomainError::BadRequest(_)) if still_valid => return Ok(ready(stored, false)),
            Err(DomainError::BadRequest(m)) => {
                return Ok(Credential::Unusable(Unusable::Failed {
                    error: m,
                    category: Some(ErrorCategory::OauthCredentialsExpired),
                }))
            }
            Err(e) => {
                warn!(error = %e, "could not read the OAuth app to refresh with");
                return Err(SyncError::Credentials(format!(
                    "the OAuth app to refresh the {} token with could not be read",
                    self.spec.name
                )));
            }
        };
        let answer = self
            .platform
            .tokens
            .refresh(settings, endpoints, &app, refresh_token)
            .await;
        let tokens = match answer {
            Ok(tokens) => tokens,
            Err(TokenError::Refused(code)) => {
                // A rotated refresh token is refused once another run used it: that run's
                // tokens are the connection's now.
                if let Ok((now, _)) = self.stored().await? {
                    if changed(&now, token) {
                        info!("the refresh token was used by another run; using its tokens");
                        return Ok(ready(&now, false));
                    }
                }
                info!(error = %code, "the provider refused the refresh token");
                return Ok(Credential::Unusable(Unusable::Failed {
                    error: format!(
                        "{} refused the refresh token ({code}): authorize again",
                        self.spec.name
                    ),
                    category: Some(ErrorCategory::OauthCredentialsExpired),
                }));
            }
            Err(e) => {
                warn!(error = %e, "the token refresh failed; not an auth failure");
                let wait = match e {
                    TokenError::RateLimited { retry_after } => {
                        retry_after.unwrap_or(UNAVAILABLE_WAIT)
                    }
                    _ => UNAVAILABLE_WAIT,
                };
                return Ok(if still_valid {
                    ready(stored, false)
                } else {
                    Credential::Unusable(Unusable::Wait(wait))
                });
            }
        };
        let now = self.platform.clock.now();
        let fresh = oauth_flow::tokens_credential(method, tokens, Some(token), client, now);
        // Written even when the lease ran out during the token call: with a provider that
        // rotates refresh tokens, the old one is dead now. It becomes current only if nothing
        // newer did meanwhile.
        let written = secrets::write(
            self.platform,
            self.org,
            self.connection,
            &fresh.document(),
            Succession::Follows(from),
        )
        .await;
        match written {
            Ok(Some(_)) => {}
            Ok(None) => {
                info!("newer credentials were stored during the refresh; this run's tokens are kept as a staged version and the newer ones are used");
                return match self.stored().await? {
                    Ok((now, _)) if now.auth().is_some() => Ok(ready(&now, false)),
                    Ok(_) | Err(_) => Ok(Credential::Unusable(Unusable::Wait(POLL * 8))),
                };
            }
            Err(SecretsError::Vault(VaultError::TooLarge { bytes })) => {
                return Ok(Credential::Unusable(Unusable::Failed {
                    error: format!(
                        "the provider's new tokens take {bytes} bytes; the secret store holds at \
                         most {SECRET_VALUE_LIMIT}"
                    ),
                    category: None,
                }));
            }
            Err(e) => return Err(e.into()),
        }
        info!("OAuth token refreshed");
        Ok(ready(&fresh, false))
    }

    async fn fetch_from_provider(
        &self,
        id: &crate::names::ReadableId,
        account: &crate::auth_provider::AccountRef,
    ) -> Result<Credential, SyncError> {
        let (kind, credentials) =
            match auth_providers::provider_credentials(self.platform, self.org, id).await {
                Ok(found) => found,
                Err(DomainError::NotFound(m)) => {
                    return Ok(Credential::Unusable(Unusable::Failed {
                        error: m,
                        category: Some(ErrorCategory::AuthProviderAccountGone),
                    }))
                }
                Err(e) => {
                    warn!(error = %e, "could not read the auth provider connection's credentials");
                    return Err(SyncError::Credentials(format!(
                        "the credentials of auth provider connection '{id}' could not be read \
                         (is its secret missing?)"
                    )));
                }
            };
        let fetched = self
            .platform
            .auth_providers
            .fetch(&credentials, self.spec, account)
            .await;
        let name = kind.display_name();
        Ok(match fetched {
            Ok(auth) => Credential::Ready {
                auth,
                refreshable: false,
            },
            Err(ProviderError::AccountGone(m)) => Credential::Unusable(Unusable::Failed {
                error: format!("{name}: {m}"),
                category: Some(ErrorCategory::AuthProviderAccountGone),
            }),
            Err(
                ProviderError::CredentialsRejected(m)
                | ProviderError::WrongApp(m)
                | ProviderError::CredentialsUnusable(m),
            ) => Credential::Unusable(Unusable::Failed {
                error: format!("{name}: {m}"),
                category: Some(ErrorCategory::AuthProviderCredentialsInvalid),
            }),
            Err(ProviderError::RateLimited { retry_after }) => {
                Credential::Unusable(Unusable::Wait(retry_after.unwrap_or(UNAVAILABLE_WAIT)))
            }
            Err(ProviderError::Unavailable(m)) => {
                warn!(provider = kind.short_name(), reason = %m, "the auth provider is unavailable; the run waits");
                Credential::Unusable(Unusable::Wait(UNAVAILABLE_WAIT))
            }
        })
    }
}

/// One refresh, under the connection's lease, of the tokens read from version `from`.
struct Refresh<'a> {
    from: &'a SecretVersion,
    stored: &'a StoredCredential,
    refresh_token: &'a secrecy::SecretString,
    settings: &'a crate::catalog::OAuthSettings,
    endpoints: &'a crate::oauth::OAuthEndpoints,
    method: AuthMethod,
    token: &'a OauthToken,
    client: Option<crate::oauth::OAuthApp>,
    /// Whether the current token still works (a failed refresh then keeps it).
    still_valid: bool,
}

fn ready(stored: &StoredCredential, refreshable: bool) -> Credential {
    Credential::Ready {
        auth: stored
            .auth()
            .expect("tokens and direct credentials are usable"),
        refreshable,
    }
}

fn failed(error: String) -> Credential {
    Credential::Unusable(Unusable::Failed {
        error,
        category: None,
    })
}

/// Whether the stored tokens are not the ones this run had. Not the access token alone: a
/// provider may hand the same access token back on a refresh, with a new expiry or a rotated
/// refresh token.
fn changed(stored: &StoredCredential, had: &OauthToken) -> bool {
    fn exposed(t: &OauthToken) -> Option<&str> {
        t.refresh_token.as_ref().map(|r| r.expose_secret())
    }
    matches!(stored, StoredCredential::Tokens { token, .. }
        if token.access_token.expose_secret() != had.access_token.expose_secret()
            || exposed(token) != exposed(had)
            || token.expires_at != had.expires_at)
}

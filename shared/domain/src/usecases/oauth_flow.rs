//! Browser OAuth flows (DESIGN section 6, RFC 6749 section 4.1, RFC 7636, RFC 9700): the
//! authorize URL a create or a reinitiate answers, and the callback that ends the flow.
//!
//! A flow's `state` is 256 random bits given to the browser once; only its SHA-256 is stored,
//! with the connection, the PKCE verifier and the redirect URL, for 10 minutes. The callback
//! consumes it with one conditional delete, so it works once, and only while it is the
//! connection's current flow (its expiry is the connection's `auth_url_expires`): a reinitiate
//! retires the previous one.

use super::connections::not_found;
use super::secrets::{self, SecretsError};
use super::Platform;
use crate::auth::StoredCredential;
use crate::catalog::{AuthMethod, SourceSpec};
use crate::connection::{ConnectionStatus, SourceConnection};
use crate::error::DomainError;
use crate::ids::{ConnectionId, JobId, OrganizationId};
use crate::job::{Job, Trigger};
use crate::oauth::{
    random_bytes, FlowState, OAuthApp, PendingFlow, PkceVerifier, TokenError, TokenSet,
    STATE_LIFETIME,
};
use crate::ports::{CheckError, StoreError, Succession, VaultError};
use crate::redact::Redacted;
use crate::usecases::webhooks::outbox::{JobContext, Outbox};
use crate::webhooks::{Event, EventType};
use chrono::{DateTime, DurationRound, Utc};
use tracing::{error, info, instrument, warn};

/// A started flow: where to send the user, and until when that link works.
#[derive(Debug, Clone)]
pub struct StartedFlow {
    pub auth_url: String,
    pub expires_at: DateTime<Utc>,
}

/// The OAuth app a flow of this connection uses: the customer's (BYOC), else the platform's.
pub(crate) async fn oauth_app(
    platform: &Platform,
    spec: &SourceSpec,
    customer: Option<&OAuthApp>,
) -> Result<OAuthApp, DomainError> {
    if let Some(app) = customer {
        return Ok(app.clone());
    }
    platform
        .vault
        .get_oauth_app(spec.short_name)
        .await
        .map_err(DomainError::internal)?
        .ok_or_else(|| {
            DomainError::BadRequest(format!(
                "the platform has no OAuth app for {}: bring your own client (client_id and client_secret) or ask the operator to configure one",
                spec.name
            ))
        })
}

/// The redirect URI every flow uses, or why browser flows are off.
pub(crate) fn redirect_uri(platform: &Platform) -> Result<&str, DomainError> {
    platform.oauth_redirect_uri.as_deref().ok_or_else(|| {
        DomainError::BadRequest(
            "browser OAuth flows are not available: the API has no public base URL (API_BASE_URL)"
                .into(),
        )
    })
}

/// What a new flow is for.
pub(crate) struct FlowRequest<'a> {
    pub org: OrganizationId,
    pub connection_id: ConnectionId,
    pub client_id: &'a str,
    pub redirect_url: Option<&'a str>,
    /// The expiry of the flow this one replaces, if any: the new one expires strictly later,
    /// so the two never look alike.
    pub after: Option<DateTime<Utc>>,
}

/// Stores a new pending flow and builds its authorize URL.
pub(crate) async fn begin(
    platform: &Platform,
    spec: &SourceSpec,
    request: FlowRequest<'_>,
    now: DateTime<Utc>,
) -> Result<StartedFlow, DomainError> {
    let FlowRequest {
        org,
        connection_id,
        client_id,
        redirect_url,
        after,
    } = request;
    let settings = spec.oauth.as_ref().ok_or_else(|| {
        DomainError::BadRequest(format!("{} does not take a browser OAuth flow", spec.name))
    })?;
    let endpoints = platform
        .sources
        .oauth_endpoints(spec.short_name)
        .ok_or_else(|| {
            DomainError::BadRequest(format!("{} does not take a browser OAuth flow", spec.name))
        })?;
    let redirect_uri = redirect_uri(platform)?;

    // Stored with whole seconds, and compared with the connection's `auth_url_expires`.
    let mut expires_at = (now + STATE_LIFETIME)
        .duration_trunc(chrono::Duration::seconds(1))
        .unwrap_or(now + STATE_LIFETIME);
    if let Some(previous) = after {
        if expires_at <= previous {
            expires_at = previous + chrono::Duration::seconds(1);
        }
    }
    let state = FlowState::from_random(random_bytes());
    let verifier = settings
        .pkce
        .then(|| PkceVerifier::from_random(random_bytes()));

    let mut url = url::Url::parse(&endpoints.authorize_url).map_err(DomainError::internal)?;
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect_uri);
        if !settings.scopes.is_empty() {
            query.append_pair("scope", &settings.scopes.join(settings.scope_separator));
        }
        if !settings.user_scopes.is_empty() {
            query.append_pair(
                "user_scope",
                &settings.user_scopes.join(settings.scope_separator),
            );
        }
        query.append_pair("state", state.expose());
        if let Some(verifier) = &verifier {
            query
                .append_pair("code_challenge", &verifier.challenge())
                .append_pair("code_challenge_method", "S256");
        }
        for (name, value) in &settings.extra_authorize_params {
            query.append_pair(name, value);
        }
    }

    let flow = PendingFlow {
        state: state.hash(),
        organization_id: org,
        connection_id,
        pkce_verifier: verifier,
        redirect_url: redirect_url.map(str::to_owned),
        expires_at,
    };
    platform
        .store
        .put_flow(&flow)
        .await
        .map_err(DomainError::internal)?;
    Ok(StartedFlow {
        auth_url: url.into(),
        expires_at,
    })
}

/// Whether the organization's redirect allowlist (its own, or the platform's default when it has
/// none) lets a browser flow send its user back to `redirect`: a 422 naming `redirect_url` if not.
pub(crate) async fn check_redirect_allowed(
    platform: &Platform,
    org: OrganizationId,
    redirect: &str,
) -> Result<(), DomainError> {
    let organization = platform
        .store
        .get_organization(org)
        .await
        .map_err(DomainError::internal)?
        .ok_or_else(|| DomainError::internal(std::io::Error::other("organization missing")))?;
    let url = url::Url::parse(redirect).map_err(DomainError::internal)?;
    if organization.allows_redirect(&url, &platform.default_redirect_origins) {
        return Ok(());
    }
    Err(DomainError::invalid_field(
        "redirect_url",
        "is not on the organization's redirect allowlist (scheme, host and port must match an allowed origin)",
    ))
}

/// `POST /source-connections/{id}/reinitiate-oauth`: a fresh authorize URL for a connection
/// waiting for authorization or needing it again; the previous link stops working.
#[instrument(skip_all, fields(organization_id = %org, source_connection_id = %id))]
pub async fn reinitiate_oauth(
    platform: &Platform,
    org: OrganizationId,
    id: &str,
) -> Result<SourceConnection, DomainError> {
    let connection_id: ConnectionId = id.parse().map_err(|_| not_found(id))?;
    // Read once per attempt: the checks hold for the version that is replaced.
    let mut app: Option<OAuthApp> = None;
    for _ in 0..5 {
        let now = platform.clock.now();
        let read = platform
            .store
            .get_versioned(org, connection_id)
            .await
            .map_err(DomainError::internal)?
            .ok_or_else(|| not_found(id))?;
        let current = &read.value;
        let spec = platform.sources.spec(&current.short_name).ok_or_else(|| {
            DomainError::NotFound(format!("source '{}' not found", current.short_name))
        })?;
        if !matches!(
            current.auth.method,
            AuthMethod::OauthBrowser | AuthMethod::OauthByoc
        ) {
            return Err(DomainError::BadRequest(format!(
                "the connection authenticates with {}, not a browser OAuth flow",
                current.auth.method.as_str()
            )));
        }
        if !matches!(
            current.status,
            ConnectionStatus::PendingAuth | ConnectionStatus::NeedsReauth
        ) {
            return Err(DomainError::BadRequest(
                "the connection is authorized and healthy; there is nothing to re-authorize".into(),
            ));
        }
        // The allowlist may have changed since the connection was created.
        if let Some(redirect) = current.auth.redirect_url.as_deref() {
            check_redirect_allowed(platform, org, redirect).await?;
        }
        let app = match app {
            Some(ref app) => app,
            None => {
                let stored = secrets::read(platform, org, connection_id)
                    .await
                    .map_err(DomainError::internal)?
                    .map(|secret| StoredCredential::parse(&secret.value))
                    .transpose()
                    .map_err(|m| DomainError::internal(std::io::Error::other(m)))?;
                let customer = stored.as_ref().and_then(|s| s.client());
                app.insert(oauth_app(platform, spec, customer).await?)
            }
        };
        let request = FlowRequest {
            org,
            connection_id,
            client_id: &app.client_id,
            redirect_url: current.auth.redirect_url.as_deref(),
            after: current.auth.auth_url_expires,
        };
        let started = begin(platform, spec, request, now).await?;
        let mut connection = current.clone();
        connection.auth.auth_url_expires = Some(started.expires_at);
        connection.modified_at = now;
        match platform
            .store
            .replace_connection(&connection, read.version, &[])
            .await
        {
            Ok(()) => {
                info!("OAuth flow reinitiated");
                connection.auth.auth_url = Some(started.auth_url);
                return Ok(connection);
            }
            Err(StoreError::VersionConflict) => continue,
            Err(e) => return Err(DomainError::internal(e)),
        }
    }
    Err(DomainError::Conflict(
        "the connection kept changing; retry".into(),
    ))
}

/// What arrived at `GET /oauth/callback`, untrusted. `Debug` never shows the state or the code.
#[derive(Default, Clone)]
pub struct CallbackInput {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
}

impl std::fmt::Debug for CallbackInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackInput")
            .field("state", &Redacted(&self.state))
            .field("code", &Redacted(&self.code))
            .field("error", &self.error)
            .finish()
    }
}

/// How a callback ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// Unknown, used, expired or superseded state: no redirect (it could be anyone's).
    InvalidState,
    Authorized {
        connection_id: ConnectionId,
        redirect_url: Option<String>,
    },
    Failed {
        connection_id: ConnectionId,
        redirect_url: Option<String>,
        /// A short code for the redirect (`access_denied`, `token_exchange_failed`, ...).
        error: String,
        /// What happened, for the page shown without a redirect_url. Never a secret.
        message: String,
    },
}

/// `GET /oauth/callback`: consume the state, exchange the code, store the tokens, activate
/// the connection with its first job, enqueue it. Every failure after a valid state is an
/// outcome with the connection's redirect; only a failure to read the state is an error.
#[instrument(skip_all, fields(source_connection_id = tracing::field::Empty))]
pub async fn complete_oauth(
    platform: &Platform,
    input: CallbackInput,
) -> Result<CallbackOutcome, DomainError> {
    let now = platform.clock.now();
    let Some(state) = input
        .state
        .as_deref()
        .filter(|s| !s.is_empty() && s.len() <= 128)
    else {
        info!("OAuth callback without a usable state refused");
        return Ok(CallbackOutcome::InvalidState);
    };
    let Some(flow) = platform
        .store
        .take_flow(&FlowState::from_callback(state).hash(), now)
        .await
        .map_err(DomainError::internal)?
    else {
        info!("OAuth callback with an unknown, used or expired state refused");
        return Ok(CallbackOutcome::InvalidState);
    };
    tracing::Span::current().record(
        "source_connection_id",
        tracing::field::display(flow.connection_id),
    );
    let read = platform
        .store
        .get_versioned(flow.organization_id, flow.connection_id)
        .await
        .map_err(DomainError::internal)?;
    let current = match read {
        Some(read)
            if read.value.auth.auth_url_expires.map(|t| t.timestamp())
                == Some(flow.expires_at.timestamp()) =>
        {
            read
        }
        Some(_) => {
            info!("OAuth callback of a flow a newer one replaced refused");
            return Ok(CallbackOutcome::InvalidState);
        }
        None => {
            return Ok(failed(
                &flow.connection_id,
                flow.redirect_url,
                "connection_not_found",
                "The source connection no longer exists.",
            ))
        }
    };

    let fail = |error: &str, message: String| {
        failed(
            &flow.connection_id,
            flow.redirect_url.clone(),
            error,
            &message,
        )
    };
    if let Some(code) = input.error.as_deref() {
        let code = provider_error_code(code);
        info!(error = %code, "the provider ended the OAuth flow with an error");
        let message = match code.as_str() {
            "access_denied" => "Access was denied at the provider.".to_owned(),
            other => format!("The provider ended the authorization with '{other}'."),
        };
        return Ok(fail(&code, message));
    }
    let Some(code) = input
        .code
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 4096)
    else {
        return Ok(fail(
            "invalid_request",
            "The provider sent no authorization code.".into(),
        ));
    };

    match authorize(platform, &flow, current, code, now).await {
        Ok(()) => Ok(CallbackOutcome::Authorized {
            connection_id: flow.connection_id,
            redirect_url: flow.redirect_url,
        }),
        Err((error, message)) => Ok(fail(error, message)),
    }
}

fn failed(
    connection_id: &ConnectionId,
    redirect_url: Option<String>,
    error: &str,
    message: &str,
) -> CallbackOutcome {
    CallbackOutcome::Failed {
        connection_id: *connection_id,
        redirect_url,
        error: error.to_owned(),
        message: message.to_owned(),
    }
}

/// A provider's `error` parameter as we repeat it: RFC 6749's codes are lowercase words.
fn provider_error_code(value: &str) -> String {
    let clean = !value.is_empty()
        && value.len() <= 64
        && value.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    if clean {
        value.to_owned()
    } else {
        "provider_error".to_owned()
    }
}

type Failure = (&'static str, String);

/// The exchange, the check, the secret, the activation and the first job.
async fn authorize(
    platform: &Platform,
    flow: &PendingFlow,
    current: crate::ports::Versioned<SourceConnection>,
    code: &str,
    now: DateTime<Utc>,
) -> Result<(), Failure> {
    let internal = |what: &str, e: &dyn std::fmt::Display| {
        error!(error = %e, "{what}");
        (
            "server_error",
            "The platform could not finish the authorization; try again.".to_owned(),
        )
    };
    let org = flow.organization_id;
    let spec = platform
        .sources
        .spec(&current.value.short_name)
        .ok_or_else(|| internal("the connection's source is no longer offered", &"no spec"))?;
    let (Some(settings), Some(endpoints), Ok(redirect_uri)) = (
        spec.oauth.as_ref(),
        platform.sources.oauth_endpoints(spec.short_name),
        redirect_uri(platform),
    ) else {
        return Err(internal(
            "the source has no OAuth settings",
            &spec.short_name,
        ));
    };
    let gone = || {
        info!("the connection was deleted during its authorization; nothing stored");
        (
            "connection_not_found",
            "The source connection no longer exists.".to_owned(),
        )
    };
    let stored = secrets::read(platform, org, flow.connection_id)
        .await
        .map_err(|e| internal("could not read the connection's secret", &e))?;
    let current = match stored {
        Some(_) => current,
        None => {
            // A platform-app flow has no secret yet: it gets one now, while its connection
            // exists, so that the tokens are only ever staged into an existing secret (a
            // DELETE during the token exchange removes it, and the tokens go nowhere).
            let waiting = StoredCredential::AwaitingAuthorization {
                method: current.value.auth.method,
                client: None,
            };
            created_secret(platform, flow, &waiting)
                .await
                .map_err(|e| internal("could not create the connection's secret", &e))?;
            match platform
                .store
                .get_versioned(org, flow.connection_id)
                .await
                .map_err(|e| internal("could not read the connection", &e))?
            {
                Some(read) => read,
                None => {
                    let _ = platform
                        .vault
                        .delete_connection_secret(org, flow.connection_id)
                        .await;
                    return Err(gone());
                }
            }
        }
    };
    let connection = &current.value;
    let customer = stored
        .and_then(|s| StoredCredential::parse(&s.value).ok())
        .and_then(|s| s.client().cloned());
    let app = oauth_app(platform, spec, customer.as_ref())
        .await
        .map_err(|e| internal("no OAuth app for the flow", &e))?;

    let tokens = platform
        .tokens
        .exchange_code(
            settings,
            &endpoints,
            &app,
            code,
            redirect_uri,
            flow.pkce_verifier.as_ref(),
        )
        .await
        .map_err(|e| token_failure(spec.name, &e))?;

    let method = connection.auth.method;
    let credential = tokens_credential(method, tokens, None, customer, now);
    let auth = credential.auth().expect("tokens are usable credentials");
    platform
        .sources
        .check_credentials(
            spec.short_name,
            &auth,
            &connection.config.clone().unwrap_or_default(),
        )
        .await
        .map_err(|e| match e {
            CheckError::Rejected(m) => {
                info!(reason = %m, "the source rejected the new token");
                (
                    "credentials_rejected",
                    format!("{} rejected the new token: {m}", spec.name),
                )
            }
            CheckError::RateLimited { .. } | CheckError::Unavailable(_) => (
                "provider_unavailable",
                format!(
                    "{} could not be reached to check the new token; try again.",
                    spec.name
                ),
            ),
        })?;
    // The tokens replace whatever the secret holds; a connection deleted meanwhile has no
    // secret to stage them in, or refuses the mark.
    match secrets::write(
        platform,
        org,
        flow.connection_id,
        &credential.document(),
        Succession::Replaces,
    )
    .await
    {
        Ok(Some(_)) => {}
        Ok(None) | Err(SecretsError::Vault(VaultError::Missing)) => return Err(gone()),
        Err(e) => return Err(internal("could not store the tokens", &e)),
    }

    activate(platform, flow, current, &credential, now)
        .await
        .map_err(|e| internal("could not activate the connection", &e))
}

/// Creates the secret of a connection that has none yet, holding `waiting`.
async fn created_secret(
    platform: &Platform,
    flow: &PendingFlow,
    waiting: &StoredCredential,
) -> Result<(), VaultError> {
    let result = platform
        .vault
        .put_connection_secret(
            flow.organization_id,
            flow.connection_id,
            &waiting.document(),
            &uuid::Uuid::new_v4().to_string(),
        )
        .await;
    match result {
        // Another request created it meanwhile: it exists, which is all that is needed.
        Err(VaultError::TokenReused) => Ok(()),
        other => other,
    }
}

/// How a token endpoint failure reads at the callback.
fn token_failure(source_name: &str, e: &TokenError) -> Failure {
    warn!(error = %e, "the OAuth code exchange failed");
    match e {
        TokenError::Refused(_) | TokenError::Malformed(_) => (
            "token_exchange_failed",
            format!("{source_name} did not accept the authorization code; start again."),
        ),
        TokenError::RateLimited { .. } | TokenError::Unavailable(_) => (
            "provider_unavailable",
            format!("{source_name}'s token endpoint is unavailable; try again."),
        ),
    }
}

/// The stored credential of freshly obtained tokens. A refresh token the provider did not
/// send again is kept from `previous`.
pub(crate) fn tokens_credential(
    method: AuthMethod,
    tokens: TokenSet,
    previous: Option<&crate::auth::OauthToken>,
    client: Option<OAuthApp>,
    now: DateTime<Utc>,
) -> StoredCredential {
    let refresh_token = tokens
        .refresh_token
        .or_else(|| previous.and_then(|p| p.refresh_token.clone()));
    StoredCredential::Tokens {
        method,
        token: crate::auth::OauthToken {
            access_token: tokens.access_token,
            refresh_token,
            expires_at: tokens.expires_at,
        },
        obtained_at: Some(now),
        client,
    }
}

/// The connection becomes active, with its first job in the same transaction, then the job is
/// enqueued. A connection paused meanwhile (while its user was on the consent page) keeps the
/// tokens but stays paused: no job, out of the schedule. A concurrent change of the connection
/// is read again, and the pause decided on what was read.
async fn activate(
    platform: &Platform,
    flow: &PendingFlow,
    mut current: crate::ports::Versioned<SourceConnection>,
    credential: &StoredCredential,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let expires_at = match credential {
        StoredCredential::Tokens { token, .. } => token.expires_at,
        _ => None,
    };
    let outbox = Outbox::of(platform, flow.organization_id).await;
    for _ in 0..5 {
        let before = current.value.clone();
        let paused = before.status == ConnectionStatus::Inactive;
        let mut connection = before.clone();
        if !paused {
            connection.status = ConnectionStatus::Active;
        }
        connection.auth.authenticated = true;
        connection.auth.authenticated_at = Some(now);
        connection.auth.expires_at = expires_at;
        connection.auth.auth_url = None;
        connection.auth.auth_url_expires = None;
        connection.error_category = None;
        connection.error_message = None;
        connection.modified_at = now;
        connection.replan_schedule(&before, now);
        let job = Job::pending(
            JobId::new(),
            flow.organization_id,
            flow.connection_id,
            Trigger::Initial,
            now,
        );
        connection
            .sync
            .get_or_insert_with(Default::default)
            .last_job = Some((&job).into());
        let authorized = outbox
            .record(|| Event::connection(EventType::ConnectionAuthCompleted, &connection, now));
        let started = if paused {
            Err(StoreError::JobActive)
        } else {
            let context = JobContext::of(platform, outbox, &connection).await;
            let mut events = authorized.clone();
            events.extend(context.iter().map(|c| c.event(&job)));
            platform
                .store
                .start_scheduled_job(&job, &connection, current.version, &events)
                .await
        };
        // The first job goes with the activation, unless one of an earlier authorization runs.
        let with_job = !matches!(started, Err(StoreError::JobActive));
        let result = match started {
            Err(StoreError::JobActive) => {
                // Paused, or a job of an earlier authorization still runs (it picks up the new
                // tokens): the activation without a job.
                connection.sync = before.sync.clone();
                platform
                    .store
                    .replace_connection(&connection, current.version, &authorized)
                    .await
                    .map(|()| None)
            }
            other => other.map(|()| Some(job.message())),
        };
        let result = match result {
            Err(e) if !matches!(e, StoreError::VersionConflict) => {
                // A timeout or a 5xx after the write: whether it committed is read back (this
                // callback's activation is the one authenticated at `now`).
                let read = platform
                    .store
                    .get_versioned(flow.organization_id, flow.connection_id)
                    .await;
                let committed = matches!(&read, Ok(Some(c))
                    if c.value.auth.authenticated_at == Some(now));
                if !committed {
                    return Err(e);
                }
                warn!(error = %e, "the activation reported a failure but committed");
                Ok(with_job.then(|| job.message()))
            }
            other => other,
        };
        match result {
            Ok(message) => {
                info!("OAuth flow completed; connection active");
                if let Some(message) = message {
                    if let Err(e) = platform.queue.enqueue(&message).await {
                        warn!(job_id = %message.job_id, error = %e, "could not enqueue the first sync; the sweep will");
                    }
                }
                return Ok(());
            }
            Err(StoreError::VersionConflict) => {
                current = platform
                    .store
                    .get_versioned(flow.organization_id, flow.connection_id)
                    .await?
                    .ok_or(StoreError::VersionConflict)?;
            }
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::VersionConflict)
}

#[cfg(test)]
mod tests {
    use super::provider_error_code;

    #[test]
    fn only_plain_error_codes_are_repeated() {
        assert_eq!(provider_error_code("access_denied"), "access_denied");
        assert_eq!(
            provider_error_code("<script>alert(1)</script>"),
            "provider_error"
        );
        assert_eq!(provider_error_code("a&b=c"), "provider_error");
        assert_eq!(provider_error_code(""), "provider_error");
    }
}

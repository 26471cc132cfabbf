//! How a create's authentication becomes what the connection stores and shows: direct
//! credentials or an imported token checked with the source (refreshed first where allowed), a
//! browser flow started, or an auth provider's account fetched.

use super::Plan;
use crate::auth::{AuthenticationRequest, StoredCredential};
use crate::auth_provider::{AccountRef, ProviderKind};
use crate::catalog::{AuthMethod, SourceSpec};
use crate::connection::{AuthDetails, ConnectionStatus};
use crate::error::DomainError;
use crate::ids::{ConnectionId, OrganizationId};
use crate::names::{ReadableId, RedirectUrl};
use crate::oauth::{OAuthApp, TokenError};
use crate::usecases::oauth_flow;
use crate::usecases::upstream_errors::{auth_provider_failed, credential_check_failed};
use crate::usecases::Platform;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tracing::info;

/// What a create stores and shows of its credentials, once they are resolved and checked.
pub(super) struct Resolved {
    /// The connection's secret; `None` for a browser flow with the platform's app (its secret
    /// is written by the callback).
    pub(super) secret: Option<StoredCredential>,
    pub(super) status: ConnectionStatus,
    pub(super) auth: AuthDetails,
    /// The browser flow's authorize URL: answered, never stored.
    pub(super) auth_url: Option<String>,
    pub(super) provider: Option<ProviderKind>,
}

pub(super) fn authenticated(
    method: AuthMethod,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> AuthDetails {
    AuthDetails {
        method,
        authenticated: true,
        authenticated_at: Some(now),
        expires_at,
        auth_url: None,
        auth_url_expires: None,
        redirect_url: None,
        provider_readable_id: None,
    }
}

/// Direct credentials or an imported token, checked with the source. An expired token with a
/// refresh token is refreshed first (with the platform's OAuth app), then checked.
pub(super) async fn checked_credentials(
    platform: &Platform,
    plan: &Plan<'_>,
    auth: &AuthenticationRequest,
    now: DateTime<Utc>,
) -> Result<StoredCredential, DomainError> {
    let secret = match auth {
        AuthenticationRequest::Direct(c) => StoredCredential::Direct(c.clone()),
        AuthenticationRequest::OauthToken(token) => {
            let expired = token.expires_at.is_some_and(|at| at <= now + IMPORT_MARGIN);
            // Refreshed with the platform's app only where the operator allows it; otherwise
            // the token is checked as it is.
            let may_refresh = platform.refresh_imported_tokens_with_platform_app;
            match (&token.refresh_token, expired && may_refresh) {
                (Some(refresh_token), true) => {
                    refreshed_import(platform, plan.spec, token, refresh_token, now).await?
                }
                _ => StoredCredential::Tokens {
                    method: AuthMethod::OauthToken,
                    token: token.clone(),
                    obtained_at: None,
                    client: None,
                },
            }
        }
        _ => {
            return Err(DomainError::BadRequest(
                "these credentials cannot be stored".into(),
            ))
        }
    };
    let usable = secret
        .auth()
        .expect("direct credentials and tokens are usable");
    platform
        .sources
        .check_credentials(plan.spec.short_name, &usable, &plan.config)
        .await
        .map_err(|e| credential_check_failed(plan.spec, e))?;
    Ok(secret)
}

/// An imported token this close to its expiry is refreshed before it is checked.
pub(super) const IMPORT_MARGIN: chrono::Duration = chrono::Duration::minutes(1);

pub(super) async fn refreshed_import(
    platform: &Platform,
    spec: &SourceSpec,
    token: &crate::auth::OauthToken,
    refresh_token: &secrecy::SecretString,
    now: DateTime<Utc>,
) -> Result<StoredCredential, DomainError> {
    let (Some(settings), Some(endpoints)) = (
        spec.oauth.as_ref(),
        platform.sources.oauth_endpoints(spec.short_name),
    ) else {
        return Err(DomainError::BadRequest(format!(
            "the access token has expired and {} tokens cannot be refreshed",
            spec.name
        )));
    };
    let app = oauth_flow::oauth_app(platform, spec, None).await?;
    let tokens = platform
        .tokens
        .refresh(settings, &endpoints, &app, refresh_token)
        .await
        .map_err(|e| match e {
            TokenError::Refused(code) => DomainError::BadRequest(format!(
                "{} refused the refresh token ({code}); authorize again",
                spec.name
            )),
            TokenError::RateLimited { retry_after } => DomainError::UpstreamRateLimited {
                source_name: spec.name.to_owned(),
                retry_after,
            },
            TokenError::Unavailable(m) | TokenError::Malformed(m) => DomainError::UpstreamFailed(
                format!("{} could not refresh the token: {m}", spec.name),
            ),
        })?;
    info!("imported token refreshed before its check");
    Ok(oauth_flow::tokens_credential(
        AuthMethod::OauthToken,
        tokens,
        Some(token),
        None,
        now,
    ))
}

/// A browser flow: the redirect allowlist, the app, the customer's client (BYOC) and the flow.
pub(super) async fn start_browser_flow(
    platform: &Platform,
    org: OrganizationId,
    plan: &Plan<'_>,
    connection_id: ConnectionId,
    now: DateTime<Utc>,
) -> Result<Resolved, DomainError> {
    if let Some(redirect) = &plan.redirect_url {
        oauth_flow::check_redirect_allowed(platform, org, redirect.as_str()).await?;
    }
    oauth_flow::redirect_uri(platform)?;
    let customer = match &plan.auth {
        AuthenticationRequest::OauthByoc {
            client_id,
            client_secret,
        } => Some(OAuthApp {
            client_id: client_id.clone(),
            client_secret: client_secret.clone(),
        }),
        _ => None,
    };
    let app = oauth_flow::oauth_app(platform, plan.spec, customer.as_ref()).await?;
    let request = oauth_flow::FlowRequest {
        org,
        connection_id,
        client_id: &app.client_id,
        redirect_url: plan.redirect_url.as_ref().map(RedirectUrl::as_str),
        after: None,
    };
    let started = oauth_flow::begin(platform, plan.spec, request, now).await?;
    Ok(Resolved {
        secret: customer.map(|client| StoredCredential::AwaitingAuthorization {
            method: AuthMethod::OauthByoc,
            client: Some(client),
        }),
        status: ConnectionStatus::PendingAuth,
        auth: AuthDetails {
            method: plan.auth.method(),
            authenticated: false,
            authenticated_at: None,
            expires_at: None,
            auth_url: None,
            auth_url_expires: Some(started.expires_at),
            redirect_url: plan.redirect_url.as_ref().map(|u| u.as_str().to_owned()),
            provider_readable_id: None,
        },
        auth_url: Some(started.auth_url),
        provider: None,
    })
}

/// Credentials held by an auth provider: the provider connection, the account, its fresh
/// credentials, and the source's check of them.
pub(super) async fn through_provider(
    platform: &Platform,
    org: OrganizationId,
    plan: &Plan<'_>,
    provider_readable_id: &ReadableId,
    provider_config: Option<&Map<String, Value>>,
    now: DateTime<Utc>,
) -> Result<Resolved, DomainError> {
    let (kind, credentials) =
        crate::usecases::auth_providers::provider_credentials(platform, org, provider_readable_id)
            .await?;
    if !plan
        .spec
        .supported_auth_providers
        .contains(&kind.short_name())
    {
        return Err(DomainError::BadRequest(format!(
            "{} connections cannot come from {}",
            plan.spec.name,
            kind.display_name()
        )));
    }
    let account = AccountRef::parse(kind, provider_config).map_err(DomainError::invalid)?;
    let auth = platform
        .auth_providers
        .fetch(&credentials, plan.spec, &account)
        .await
        .map_err(|e| auth_provider_failed(kind, e))?;
    platform
        .sources
        .check_credentials(plan.spec.short_name, &auth, &plan.config)
        .await
        .map_err(|e| credential_check_failed(plan.spec, e))?;
    let mut details = authenticated(AuthMethod::AuthProvider, None, now);
    details.provider_readable_id = Some(provider_readable_id.as_str().to_owned());
    Ok(Resolved {
        secret: Some(StoredCredential::Provider {
            provider_readable_id: provider_readable_id.clone(),
            account,
        }),
        status: ConnectionStatus::Active,
        auth: details,
        auth_url: None,
        provider: Some(kind),
    })
}

//! Use cases: what the API does, written against the ports only.

pub mod auth_providers;
pub mod changes;
pub mod collections;
pub mod connections;
pub mod create_connection;
pub mod delete_connection;
pub mod jobs;
pub mod oauth_flow;
pub mod runs;
pub mod scheduler;
pub mod secrets;
pub mod sync;
pub mod tenancy;
pub mod update_connection;
mod upstream_errors;
pub mod webhooks;

use crate::clock::Clock;
use crate::error::DomainError;
use crate::fingerprint::FingerprintKey;
use crate::oauth::TokenEndpoint;
use crate::ports::{
    AuthProviders, CredentialVault, DeliveryQueue, EntityStore, SourceDirectory, Store, StoreError,
    SyncQueue, WebhookSecrets, WebhookStore, WebhookTargets, WebhookTransport,
};
use std::sync::Arc;

/// Everything a use case may touch, built once per cold start and shared by all requests.
#[derive(Clone)]
pub struct Platform {
    pub store: Arc<dyn Store>,
    pub entities: Arc<dyn EntityStore>,
    pub vault: Arc<dyn CredentialVault>,
    /// The key of idempotency fingerprints; only keyed creates ask for it.
    pub fingerprint_key: Arc<dyn FingerprintKey>,
    pub queue: Arc<dyn SyncQueue>,
    pub sources: Arc<dyn SourceDirectory>,
    pub clock: Arc<dyn Clock>,
    /// The providers' token endpoints (code exchanges, refreshes).
    pub tokens: Arc<dyn TokenEndpoint>,
    /// Composio and Pipedream.
    pub auth_providers: Arc<dyn AuthProviders>,
    /// `{API_BASE_URL}/oauth/callback`, the exact redirect URI of every browser flow; `None`
    /// when the API has no public base URL (then browser flows are refused).
    pub oauth_redirect_uri: Option<String>,
    /// The redirect allowlist of organizations without their own.
    pub default_redirect_origins: Vec<crate::tenancy::RedirectOrigin>,
    /// Whether a token imported with `oauth_token` (no client of its own) is refreshed with the
    /// platform's OAuth app (`REFRESH_IMPORTED_TOKENS_WITH_PLATFORM_APP`, off by default: the
    /// platform's client secret must not refresh a token it never issued, e.g. a stolen one).
    /// Off, an imported token that expires asks for re-authorization.
    pub refresh_imported_tokens_with_platform_app: bool,
    /// The change feed's settle delay and deletion record retention.
    pub feed: crate::feed::FeedSettings,
    /// Webhook subscriptions and the message log.
    pub webhooks: Arc<dyn WebhookStore>,
    /// Subscriptions' signing secrets.
    pub webhook_secrets: Arc<dyn WebhookSecrets>,
    /// Where an endpoint's URL may lead.
    pub webhook_targets: Arc<dyn WebhookTargets>,
    /// The delivery queue: one task per attempt of a message to a subscription.
    pub deliveries: Arc<dyn DeliveryQueue>,
    /// Makes attempts (only the sender does).
    pub webhook_transport: Arc<dyn WebhookTransport>,
}

/// A store error of a list call, as the caller sees it: a cursor we did not issue is bad input.
pub(crate) fn list_error(e: StoreError) -> DomainError {
    match e {
        StoreError::InvalidCursor => {
            DomainError::invalid_field("cursor", "is not a cursor this API issued")
        }
        other => DomainError::internal(other),
    }
}

#[cfg(test)]
mod tests;

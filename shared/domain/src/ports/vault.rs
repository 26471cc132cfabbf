//! The credential vault: one secret per connection, named from the organization and connection
//! ids, and the platform's other secrets (OAuth apps, auth provider credentials).
//!
//! A connection's secret is created once, by its create; a later value is staged as a new
//! version, which becomes current only when it is promoted. Secrets Manager has no conditional
//! write, so which version should be current is decided in the state store
//! ([`super::SecretVersionStore`]) and promoted after: see `usecases::secrets`.

use super::BoxError;
use crate::ids::{ConnectionId, OrganizationId};
use crate::names::ReadableId;
use crate::oauth::OAuthApp;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::SecretString;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("a different secret was already written with this request token")]
    TokenReused,
    /// Over [`SECRET_VALUE_LIMIT`]: refused before it was sent.
    #[error("the secret takes {bytes} bytes; at most {SECRET_VALUE_LIMIT} fit")]
    TooLarge { bytes: usize },
    /// The connection's secret does not exist (its connection was deleted): nothing re-creates
    /// it.
    #[error("the connection's secret does not exist")]
    Missing,
    #[error("secret store failed")]
    Backend(#[source] BoxError),
}

/// The most bytes one secret value holds in Secrets Manager (the emulator does not enforce it:
/// both the use cases and the vault adapter check it themselves).
pub const SECRET_VALUE_LIMIT: usize = 65_536;

/// Whether a secret document fits the vault; if not, the error for `field`, the input it came
/// from.
pub fn check_secret_size(document: &SecretString, field: &str) -> Result<(), crate::FieldError> {
    VaultError::check_size(secrecy::ExposeSecret::expose_secret(document)).map_err(|e| {
        crate::FieldError::new(
            field,
            match e {
                VaultError::TooLarge { bytes } => format!(
                    "takes {bytes} bytes once stored; the secret store holds at most \
                     {SECRET_VALUE_LIMIT}"
                ),
                other => other.to_string(),
            },
        )
    })
}

impl VaultError {
    /// `TooLarge` when `value` is over [`SECRET_VALUE_LIMIT`]: what Secrets Manager refuses,
    /// checked by every vault (the emulator does not) and by the use cases before a write.
    pub fn check_size(value: &str) -> Result<(), VaultError> {
        match value.len() {
            bytes if bytes > SECRET_VALUE_LIMIT => Err(VaultError::TooLarge { bytes }),
            _ => Ok(()),
        }
    }
}

/// One version of a connection's secret, by the id the vault gave it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretVersion(String);

impl SecretVersion {
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A value of a connection's secret and the version it is.
#[derive(Debug, Clone)]
pub struct VersionedSecret {
    pub value: SecretString,
    pub version: SecretVersion,
}

#[async_trait]
pub trait CredentialVault: Send + Sync {
    /// Creates the connection's secret; its first version's id is `request_token`. Idempotent
    /// for the same `request_token` and value.
    async fn put_connection_secret(
        &self,
        org: OrganizationId,
        id: ConnectionId,
        value: &SecretString,
        request_token: &str,
    ) -> Result<(), VaultError>;
    /// The current value and its version.
    async fn get_connection_secret(
        &self,
        org: OrganizationId,
        id: ConnectionId,
    ) -> Result<Option<VersionedSecret>, VaultError>;
    /// One version's value; `None` when the secret or that version is gone.
    async fn get_connection_secret_version(
        &self,
        org: OrganizationId,
        id: ConnectionId,
        version: &SecretVersion,
    ) -> Result<Option<SecretString>, VaultError>;
    /// Writes `value` as a new version that is not current: [`Self::promote_connection_secret`]
    /// makes it so. `Missing` when the secret does not exist: a deleted connection never gets a
    /// new one.
    async fn stage_connection_secret(
        &self,
        org: OrganizationId,
        id: ConnectionId,
        value: &SecretString,
    ) -> Result<SecretVersion, VaultError>;
    /// The version that is current; `None` when the secret does not exist.
    async fn current_connection_secret_version(
        &self,
        org: OrganizationId,
        id: ConnectionId,
    ) -> Result<Option<SecretVersion>, VaultError>;
    /// Makes `to` current if `from` still is (a compare-and-swap): `false` when another version
    /// became current meanwhile. `Missing` when the secret is gone.
    async fn promote_connection_secret(
        &self,
        org: OrganizationId,
        id: ConnectionId,
        from: &SecretVersion,
        to: &SecretVersion,
    ) -> Result<bool, VaultError>;
    /// Deletes at once, without a recovery window; deleting a missing secret succeeds.
    async fn delete_connection_secret(
        &self,
        org: OrganizationId,
        id: ConnectionId,
    ) -> Result<(), VaultError>;
    /// The platform's OAuth app for a source (`{prefix}/oauth-apps/{short_name}`), if one is
    /// configured.
    async fn get_oauth_app(&self, short_name: &str) -> Result<Option<OAuthApp>, VaultError>;
    /// Stores (or replaces) the platform's OAuth app for a source.
    async fn put_oauth_app(&self, short_name: &str, app: &OAuthApp) -> Result<(), VaultError>;
    /// The organization's credentials for one of its auth provider connections
    /// (`{prefix}/auth-providers/{org}/{readable_id}`).
    async fn get_provider_secret(
        &self,
        org: OrganizationId,
        readable_id: &ReadableId,
    ) -> Result<Option<SecretString>, VaultError>;
    /// Stores them: `TokenReused` when a different value is already stored under this name.
    async fn put_provider_secret(
        &self,
        org: OrganizationId,
        readable_id: &ReadableId,
        value: &SecretString,
    ) -> Result<(), VaultError>;
    /// Deletes them at once; a missing secret is no error.
    async fn delete_provider_secret(
        &self,
        org: OrganizationId,
        readable_id: &ReadableId,
    ) -> Result<(), VaultError>;
    /// One page of the connection secrets, in the vault's order; `after` is the previous page's
    /// `next`. Names the vault did not write are left out.
    async fn list_connection_secrets(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<SecretsPage, VaultError>;
}

/// A secret as listed, without its value: a connection's, or (`I = SubscriptionId`) a webhook
/// subscription's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretEntry<I = ConnectionId> {
    pub organization_id: OrganizationId,
    /// The id of what the secret belongs to.
    pub id: I,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretsPage<I = ConnectionId> {
    pub secrets: Vec<SecretEntry<I>>,
    /// Where the next page starts; `None` after the last.
    pub next: Option<String>,
}

//! Who is calling: an `x-api-key` resolves to its organization. And the operator's side of
//! it: revoking a key by its id, or all of an organization's keys.

use super::Platform;
use crate::error::DomainError;
use crate::ids::OrganizationId;
use crate::ports::{StoreError, TenantStore};
use crate::tenancy::{ApiKeyHash, ApiKeyId};
use secrecy::{ExposeSecret, SecretString};

/// The organization behind an API key; 401 for a missing, unknown or revoked key.
pub async fn authenticate(
    platform: &Platform,
    key: Option<&SecretString>,
) -> Result<OrganizationId, DomainError> {
    let key = key
        .filter(|k| !k.expose_secret().is_empty())
        .ok_or_else(|| DomainError::Unauthorized("missing x-api-key header".into()))?;
    platform
        .store
        .organization_for_key(&ApiKeyHash::of(key))
        .await
        .map_err(DomainError::internal)?
        .ok_or_else(|| DomainError::Unauthorized("invalid or revoked API key".into()))
}

/// Why an operator's revocation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    #[error("no API key has the id {0}; nothing was revoked")]
    NoSuchKey(ApiKeyId),
    /// Two keys' hashes begin alike: revoking both would revoke a key nobody asked to.
    #[error(
        "more than one API key has the id {0}; nothing was revoked (revoke it by the key itself)"
    )]
    AmbiguousId(ApiKeyId),
    #[error("no organization {0}")]
    NoSuchOrganization(OrganizationId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Revokes the key whose id is `id`, without its plaintext (a lost or leaked key), and answers
/// its organization. The key item is what `authenticate` reads, so a warm function's key cache
/// bounds how long it still works. Revoking a revoked key again changes nothing and succeeds.
pub async fn revoke_api_key_by_id(
    store: &dyn TenantStore,
    id: &ApiKeyId,
) -> Result<OrganizationId, RevokeError> {
    revoke_one(store, id, None).await
}

/// Revokes the one key with id `id` (of `org`, when given): never two, never another
/// organization's.
async fn revoke_one(
    store: &dyn TenantStore,
    id: &ApiKeyId,
    org: Option<OrganizationId>,
) -> Result<OrganizationId, RevokeError> {
    let found: Vec<_> = store
        .api_keys_with_id(id)
        .await?
        .into_iter()
        .filter(|key| org.is_none_or(|org| key.organization_id == org))
        .collect();
    let key = match found.as_slice() {
        [] => return Err(RevokeError::NoSuchKey(id.clone())),
        [key] => key,
        [_, _, ..] => return Err(RevokeError::AmbiguousId(id.clone())),
    };
    if store.revoke_api_key(&key.hash).await? {
        Ok(key.organization_id)
    } else {
        Err(RevokeError::NoSuchKey(id.clone()))
    }
}

/// What revoking an organization's keys did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrganizationKeysRevoked {
    /// Keys this call revoked.
    pub revoked: usize,
    /// Keys that were revoked before.
    pub already_revoked: usize,
}

/// Revokes every key of `org`, those stored before keys had ids too. Stops at the first key it
/// cannot revoke; the keys revoked until then stay revoked, and running it again goes on.
pub async fn revoke_organization_api_keys(
    store: &dyn TenantStore,
    org: OrganizationId,
) -> Result<OrganizationKeysRevoked, RevokeError> {
    if store.get_organization(org).await?.is_none() {
        return Err(RevokeError::NoSuchOrganization(org));
    }
    let keys = store.list_api_keys(org).await?;
    let (already, live): (Vec<_>, Vec<_>) = keys.iter().partition(|k| k.revoked_at.is_some());
    for key in &live {
        revoke_one(store, &key.key_id, Some(org)).await?;
    }
    Ok(OrganizationKeysRevoked {
        revoked: live.len(),
        already_revoked: already.len(),
    })
}

//! Who is calling: an `x-api-key` resolves to its organization.

use super::Platform;
use crate::error::DomainError;
use crate::ids::OrganizationId;
use crate::tenancy::ApiKeyHash;
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

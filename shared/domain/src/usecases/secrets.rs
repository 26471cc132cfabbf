//! A connection's secret after its create. Secrets Manager has no conditional write, so a new
//! value is never written over the current one:
//!
//! 1. it is staged as a new version (never re-creating a deleted connection's secret);
//! 2. the state store marks it current, under a condition ([`Succession`]): new credentials
//!    from the user replace whatever is current, in the same transaction as the connection's
//!    versioned write when there is one; refreshed tokens follow only the version they were
//!    refreshed from, so older tokens never overwrite newer ones;
//! 3. it is promoted in the vault, by a compare-and-swap, and only while it is still the marked
//!    version.
//!
//! A version that loses step 2 is kept in the vault (staged, never current): tokens a provider
//! issued are not thrown away, they just do not win. A crash between steps 2 and 3 leaves the
//! marked version staged: every read goes by the mark ([`read`]) and promotes it.

use super::Platform;
use crate::ids::{ConnectionId, OrganizationId};
use crate::ports::{SecretVersion, StoreError, Succession, VaultError, VersionedSecret};
use secrecy::SecretString;
use tracing::{info, warn};

/// How often a promotion tries its compare-and-swap while other writers promote.
const ATTEMPTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The connection's current secret: the marked version, promoted if a writer stopped before
/// it did.
pub(crate) async fn read(
    platform: &Platform,
    org: OrganizationId,
    id: ConnectionId,
) -> Result<Option<VersionedSecret>, SecretsError> {
    let Some(current) = platform.vault.get_connection_secret(org, id).await? else {
        return Ok(None);
    };
    let Some(marked) = platform.store.marked_secret_version(id).await? else {
        return Ok(Some(current));
    };
    if marked == current.version {
        return Ok(Some(current));
    }
    let Some(value) = platform
        .vault
        .get_connection_secret_version(org, id, &marked)
        .await?
    else {
        warn!("the marked version of the connection's secret is gone; reading the current one");
        return Ok(Some(current));
    };
    info!("the connection's secret was marked but not promoted; promoting it");
    if let Err(e) = promote(platform, org, id, &marked).await {
        warn!(error = %e, "could not promote the marked version; the next read tries again");
    }
    Ok(Some(VersionedSecret {
        value,
        version: marked,
    }))
}

/// Stages `value`, marks it as `succession` allows, and promotes it: `Ok(None)` when the mark
/// was refused (a newer version is current, or the connection is gone); the staged version
/// stays in the vault.
pub(crate) async fn write(
    platform: &Platform,
    org: OrganizationId,
    id: ConnectionId,
    value: &SecretString,
    succession: Succession<'_>,
) -> Result<Option<SecretVersion>, SecretsError> {
    let version = platform
        .vault
        .stage_connection_secret(org, id, value)
        .await?;
    if !platform
        .store
        .mark_secret_version(org, id, &version, succession)
        .await?
    {
        return Ok(None);
    }
    promote(platform, org, id, &version).await?;
    Ok(Some(version))
}

/// Makes `version` current in the vault while it is the marked one. Returns when it is
/// current, or when another version was marked since (its writer promotes it).
pub(crate) async fn promote(
    platform: &Platform,
    org: OrganizationId,
    id: ConnectionId,
    version: &SecretVersion,
) -> Result<(), SecretsError> {
    for _ in 0..ATTEMPTS {
        // The current version is read before the mark: a promotion by another writer after
        // this read makes the swap below fail, and the loop reads again.
        let current = platform
            .vault
            .current_connection_secret_version(org, id)
            .await?
            .ok_or(VaultError::Missing)?;
        if current == *version {
            return Ok(());
        }
        if platform.store.marked_secret_version(id).await?.as_ref() != Some(version) {
            return Ok(());
        }
        if platform
            .vault
            .promote_connection_secret(org, id, &current, version)
            .await?
        {
            return Ok(());
        }
    }
    // Other writers kept promoting: the next read promotes the marked version.
    warn!("the connection's secret kept changing during a promotion");
    Ok(())
}

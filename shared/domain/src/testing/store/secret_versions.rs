//! Which version of each connection's secret is marked current.

use super::MemoryStore;
use crate::ids::{ConnectionId, OrganizationId};
use crate::ports::{SecretVersion, SecretVersionStore, StoreError, Succession};
use crate::testing::lock;
use async_trait::async_trait;

#[async_trait]
impl SecretVersionStore for MemoryStore {
    async fn marked_secret_version(
        &self,
        id: ConnectionId,
    ) -> Result<Option<SecretVersion>, StoreError> {
        Ok(lock(&self.state).secret_versions.get(&id).cloned())
    }

    async fn mark_secret_version(
        &self,
        org: OrganizationId,
        id: ConnectionId,
        to: &SecretVersion,
        succession: Succession<'_>,
    ) -> Result<bool, StoreError> {
        let mut state = lock(&self.state);
        if !state.connections.contains_key(&(org, id)) {
            return Ok(false);
        }
        let marked = state.secret_versions.get(&id);
        let allowed = match succession {
            Succession::Replaces => true,
            Succession::Follows(from) => marked.is_none_or(|m| m == from),
        };
        if allowed {
            state.secret_versions.insert(id, to.clone());
        }
        Ok(allowed)
    }
}

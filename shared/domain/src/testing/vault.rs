//! The credential vault: one secret per (organization, connection).

use super::{injected, lock};
use crate::ids::{ConnectionId, OrganizationId};
use crate::ports::{CredentialVault, VaultError};
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

struct StoredSecret {
    value: String,
    request_token: String,
}

#[derive(Default)]
struct VaultState {
    secrets: BTreeMap<(OrganizationId, ConnectionId), StoredSecret>,
    puts: usize,
    deletes: usize,
}

/// The credential vault: one secret per (organization, connection).
#[derive(Default)]
pub struct MemoryVault {
    state: Mutex<VaultState>,
    fail_put: AtomicBool,
}

/// A secret as the vault holds it, exposed for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRecord {
    pub organization_id: OrganizationId,
    pub connection_id: ConnectionId,
    pub value: String,
    pub request_token: String,
}

impl MemoryVault {
    /// Makes every put fail with a backend error until switched off.
    pub fn fail_put(&self, fail: bool) {
        self.fail_put.store(fail, Ordering::SeqCst);
    }

    pub fn secrets(&self) -> Vec<SecretRecord> {
        lock(&self.state)
            .secrets
            .iter()
            .map(|((org, id), s)| SecretRecord {
                organization_id: *org,
                connection_id: *id,
                value: s.value.clone(),
                request_token: s.request_token.clone(),
            })
            .collect()
    }

    /// Successful puts, including idempotent repeats and secrets deleted since.
    pub fn puts(&self) -> usize {
        lock(&self.state).puts
    }

    /// Deletes of a secret that existed.
    pub fn deletes(&self) -> usize {
        lock(&self.state).deletes
    }
}

#[async_trait]
impl CredentialVault for MemoryVault {
    async fn put_connection_secret(
        &self,
        org: OrganizationId,
        id: ConnectionId,
        value: &SecretString,
        request_token: &str,
    ) -> Result<(), VaultError> {
        if self.fail_put.load(Ordering::SeqCst) {
            return Err(VaultError::Backend(injected("put_connection_secret")));
        }
        let mut state = lock(&self.state);
        let value = value.expose_secret();
        if let Some(existing) = state.secrets.get(&(org, id)) {
            if existing.request_token == request_token && existing.value != value {
                return Err(VaultError::TokenReused);
            }
        }
        state.secrets.insert(
            (org, id),
            StoredSecret {
                value: value.to_owned(),
                request_token: request_token.to_owned(),
            },
        );
        state.puts += 1;
        Ok(())
    }

    async fn get_connection_secret(
        &self,
        org: OrganizationId,
        id: ConnectionId,
    ) -> Result<Option<SecretString>, VaultError> {
        Ok(lock(&self.state)
            .secrets
            .get(&(org, id))
            .map(|s| SecretString::from(s.value.clone())))
    }

    async fn delete_connection_secret(
        &self,
        org: OrganizationId,
        id: ConnectionId,
    ) -> Result<(), VaultError> {
        let mut state = lock(&self.state);
        if state.secrets.remove(&(org, id)).is_some() {
            state.deletes += 1;
        }
        Ok(())
    }
}

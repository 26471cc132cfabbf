//! The credential vault: one secret per (organization, connection).

use super::{injected, lock};
use crate::ids::{ConnectionId, OrganizationId};
use crate::ports::{CredentialVault, SecretVersion, SecretsPage, VaultError, VersionedSecret};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// A connection secret: its versions by id, and which one is current.
struct StoredSecret {
    versions: BTreeMap<String, String>,
    /// The staged versions' ids, in the order they were written.
    staged: Vec<String>,
    current: String,
    request_token: String,
    created_at: DateTime<Utc>,
}

impl StoredSecret {
    fn value(&self) -> &str {
        &self.versions[&self.current]
    }
}

#[derive(Default)]
struct VaultState {
    secrets: BTreeMap<(OrganizationId, ConnectionId), StoredSecret>,
    /// The platform's OAuth apps by source, as their documents.
    apps: BTreeMap<String, String>,
    providers: BTreeMap<(OrganizationId, String), String>,
    puts: usize,
    deletes: usize,
}

/// The credential vault: one secret per (organization, connection).
#[derive(Default)]
pub struct MemoryVault {
    state: Mutex<VaultState>,
    fail_put: AtomicBool,
    fail_get: AtomicBool,
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

    /// Makes every read of a connection secret fail with a backend error until switched off.
    pub fn fail_get(&self, fail: bool) {
        self.fail_get.store(fail, Ordering::SeqCst);
    }

    pub fn secrets(&self) -> Vec<SecretRecord> {
        lock(&self.state)
            .secrets
            .iter()
            .map(|((org, id), s)| SecretRecord {
                organization_id: *org,
                connection_id: *id,
                value: s.value().to_owned(),
                request_token: s.request_token.clone(),
            })
            .collect()
    }

    /// Every value a connection's secret has held or holds staged, but its first, in order.
    pub fn staged_values(&self, org: OrganizationId, id: ConnectionId) -> Vec<String> {
        let state = lock(&self.state);
        let Some(secret) = state.secrets.get(&(org, id)) else {
            return Vec::new();
        };
        secret
            .staged
            .iter()
            .map(|v| secret.versions[v].clone())
            .collect()
    }

    /// Successful puts, including idempotent repeats and secrets deleted since.
    pub fn puts(&self) -> usize {
        lock(&self.state).puts
    }

    /// Backdates a secret, as if it had been written at `at`.
    pub fn set_created_at(&self, org: OrganizationId, id: ConnectionId, at: DateTime<Utc>) {
        if let Some(s) = lock(&self.state).secrets.get_mut(&(org, id)) {
            s.created_at = at;
        }
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
        VaultError::check_size(value.expose_secret())?;
        let mut state = lock(&self.state);
        let value = value.expose_secret();
        if let Some(existing) = state.secrets.get(&(org, id)) {
            // As Secrets Manager: a retry finds its own version; anything else was another
            // request's.
            return match existing.versions.get(request_token) {
                Some(v) if v == value => Ok(()),
                _ => Err(VaultError::TokenReused),
            };
        }
        state.secrets.insert(
            (org, id),
            StoredSecret {
                versions: BTreeMap::from([(request_token.to_owned(), value.to_owned())]),
                staged: Vec::new(),
                current: request_token.to_owned(),
                request_token: request_token.to_owned(),
                created_at: super::now(),
            },
        );
        state.puts += 1;
        Ok(())
    }

    async fn get_connection_secret(
        &self,
        org: OrganizationId,
        id: ConnectionId,
    ) -> Result<Option<VersionedSecret>, VaultError> {
        if self.fail_get.load(Ordering::SeqCst) {
            return Err(VaultError::Backend(injected("get_connection_secret")));
        }
        Ok(lock(&self.state)
            .secrets
            .get(&(org, id))
            .map(|s| VersionedSecret {
                value: SecretString::from(s.value().to_owned()),
                version: SecretVersion::new(s.current.clone()),
            }))
    }

    async fn get_connection_secret_version(
        &self,
        org: OrganizationId,
        id: ConnectionId,
        version: &SecretVersion,
    ) -> Result<Option<SecretString>, VaultError> {
        Ok(lock(&self.state)
            .secrets
            .get(&(org, id))
            .and_then(|s| s.versions.get(version.as_str()))
            .map(|v| SecretString::from(v.clone())))
    }

    async fn stage_connection_secret(
        &self,
        org: OrganizationId,
        id: ConnectionId,
        value: &SecretString,
    ) -> Result<SecretVersion, VaultError> {
        if self.fail_put.load(Ordering::SeqCst) {
            return Err(VaultError::Backend(injected("stage_connection_secret")));
        }
        VaultError::check_size(value.expose_secret())?;
        let mut state = lock(&self.state);
        let secret = state
            .secrets
            .get_mut(&(org, id))
            .ok_or(VaultError::Missing)?;
        let version = uuid::Uuid::new_v4().to_string();
        secret
            .versions
            .insert(version.clone(), value.expose_secret().to_owned());
        secret.staged.push(version.clone());
        state.puts += 1;
        Ok(SecretVersion::new(version))
    }

    async fn current_connection_secret_version(
        &self,
        org: OrganizationId,
        id: ConnectionId,
    ) -> Result<Option<SecretVersion>, VaultError> {
        Ok(lock(&self.state)
            .secrets
            .get(&(org, id))
            .map(|s| SecretVersion::new(s.current.clone())))
    }

    async fn promote_connection_secret(
        &self,
        org: OrganizationId,
        id: ConnectionId,
        from: &SecretVersion,
        to: &SecretVersion,
    ) -> Result<bool, VaultError> {
        let mut state = lock(&self.state);
        let secret = state
            .secrets
            .get_mut(&(org, id))
            .ok_or(VaultError::Missing)?;
        if secret.current != from.as_str() || !secret.versions.contains_key(to.as_str()) {
            return Ok(false);
        }
        secret.current = to.as_str().to_owned();
        Ok(true)
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

    async fn get_oauth_app(
        &self,
        short_name: &str,
    ) -> Result<Option<crate::oauth::OAuthApp>, VaultError> {
        Ok(lock(&self.state).apps.get(short_name).and_then(|doc| {
            crate::oauth::OAuthApp::from_document(&SecretString::from(doc.clone()))
        }))
    }

    async fn put_oauth_app(
        &self,
        short_name: &str,
        app: &crate::oauth::OAuthApp,
    ) -> Result<(), VaultError> {
        lock(&self.state).apps.insert(
            short_name.to_owned(),
            app.document().expose_secret().to_owned(),
        );
        Ok(())
    }

    async fn get_provider_secret(
        &self,
        org: OrganizationId,
        readable_id: &crate::names::ReadableId,
    ) -> Result<Option<SecretString>, VaultError> {
        Ok(lock(&self.state)
            .providers
            .get(&(org, readable_id.as_str().to_owned()))
            .map(|v| SecretString::from(v.clone())))
    }

    async fn put_provider_secret(
        &self,
        org: OrganizationId,
        readable_id: &crate::names::ReadableId,
        value: &SecretString,
    ) -> Result<(), VaultError> {
        VaultError::check_size(value.expose_secret())?;
        let mut state = lock(&self.state);
        let key = (org, readable_id.as_str().to_owned());
        match state.providers.get(&key) {
            Some(existing) if existing != value.expose_secret() => Err(VaultError::TokenReused),
            _ => {
                state
                    .providers
                    .insert(key, value.expose_secret().to_owned());
                Ok(())
            }
        }
    }

    async fn delete_provider_secret(
        &self,
        org: OrganizationId,
        readable_id: &crate::names::ReadableId,
    ) -> Result<(), VaultError> {
        lock(&self.state)
            .providers
            .remove(&(org, readable_id.as_str().to_owned()));
        Ok(())
    }

    async fn list_connection_secrets(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<SecretsPage, VaultError> {
        let state = lock(&self.state);
        let entries = state
            .secrets
            .iter()
            .map(|((org, id), s)| (format!("{org}/{id}"), *org, *id, s.created_at));
        Ok(super::secrets_page(entries, after, limit))
    }
}

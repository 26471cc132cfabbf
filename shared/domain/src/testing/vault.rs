//! The credential vault: one secret per (organization, connection).

use super::{injected, lock};
use crate::ids::{ConnectionId, OrganizationId};
use crate::ports::{CredentialVault, SecretEntry, SecretsPage, VaultError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

struct StoredSecret {
    value: String,
    request_token: String,
    created_at: DateTime<Utc>,
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
            if existing.request_token == request_token && existing.value != value {
                return Err(VaultError::TokenReused);
            }
        }
        // Replacing a value keeps the secret's creation time, as Secrets Manager does.
        let created_at = state
            .secrets
            .get(&(org, id))
            .map_or_else(super::now, |s| s.created_at);
        state.secrets.insert(
            (org, id),
            StoredSecret {
                value: value.to_owned(),
                request_token: request_token.to_owned(),
                created_at,
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

    async fn replace_connection_secret(
        &self,
        org: OrganizationId,
        id: ConnectionId,
        value: &SecretString,
    ) -> Result<(), VaultError> {
        if self.fail_put.load(Ordering::SeqCst) {
            return Err(VaultError::Backend(injected("replace_connection_secret")));
        }
        VaultError::check_size(value.expose_secret())?;
        let mut state = lock(&self.state);
        let created_at = state
            .secrets
            .get(&(org, id))
            .map_or_else(super::now, |s| s.created_at);
        state.secrets.insert(
            (org, id),
            StoredSecret {
                value: value.expose_secret().to_owned(),
                request_token: uuid::Uuid::new_v4().to_string(),
                created_at,
            },
        );
        state.puts += 1;
        Ok(())
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
        let mut rest = state
            .secrets
            .iter()
            .map(|((org, id), s)| (format!("{org}/{id}"), *org, *id, s.created_at))
            .filter(|(key, ..)| after.is_none_or(|a| key.as_str() > a));
        let taken: Vec<_> = rest.by_ref().take(limit).collect();
        let next = match rest.next() {
            Some(_) => taken.last().map(|(key, ..)| key.clone()),
            None => None,
        };
        Ok(SecretsPage {
            secrets: taken
                .into_iter()
                .map(
                    |(_, organization_id, connection_id, created_at)| SecretEntry {
                        organization_id,
                        connection_id,
                        created_at,
                    },
                )
                .collect(),
            next,
        })
    }
}

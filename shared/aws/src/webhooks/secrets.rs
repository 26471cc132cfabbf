//! Subscriptions' signing secrets in Secrets Manager, `{prefix}/webhooks/{org}/{id}`: only the
//! api and webhook-sender functions may read that path.
//!
//! A subscription's secret never changes (a new secret is a new subscription), so a read is
//! kept for a few minutes: the sender then asks Secrets Manager once per subscription and warm
//! process, not at every attempt. A subscription deleted meanwhile is seen as gone by its own
//! read, which the sender makes first.

use crate::vault::backend;
use crate::SecretsVault;
use async_trait::async_trait;
use domain::ids::{OrganizationId, SubscriptionId};
use domain::ports::{SecretsPage, VaultError, WebhookSecrets};
use domain::webhooks::WebhookSecret;
use secrecy::ExposeSecret;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a read secret is reused.
const CACHE_TTL: Duration = Duration::from_secs(300);
/// Most secrets kept; past it, the expired ones are dropped, then all.
const CACHE_MAX: usize = 10_000;

/// The secrets kept, by subscription, with when each was read.
type Kept = HashMap<(OrganizationId, SubscriptionId), (WebhookSecret, Instant)>;

/// Secrets read recently, by subscription. Its `Debug` shows only how many.
#[derive(Clone, Default)]
pub(crate) struct SecretCache(Arc<Mutex<Kept>>);

impl std::fmt::Debug for SecretCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretCache({} kept)", self.lock().len())
    }
}

impl SecretCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, key: (OrganizationId, SubscriptionId)) -> Option<WebhookSecret> {
        self.lock()
            .get(&key)
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(secret, _)| secret.clone())
    }

    fn put(&self, key: (OrganizationId, SubscriptionId), secret: &WebhookSecret) {
        let mut cache = self.lock();
        if cache.len() >= CACHE_MAX {
            cache.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(key, (secret.clone(), Instant::now()));
    }

    fn forget(&self, key: (OrganizationId, SubscriptionId)) {
        self.lock().remove(&key);
    }
}

impl SecretsVault {
    pub fn webhook_secret_name(&self, org: OrganizationId, id: SubscriptionId) -> String {
        format!("{}/webhooks/{org}/{id}", self.prefix())
    }
}

#[async_trait]
impl WebhookSecrets for SecretsVault {
    async fn create_webhook_secret(
        &self,
        org: OrganizationId,
        id: SubscriptionId,
        secret: &WebhookSecret,
    ) -> Result<(), VaultError> {
        self.client()
            .create_secret()
            .name(self.webhook_secret_name(org, id))
            .secret_string(secret.expose())
            // A retried call is the same version, never a second one.
            .client_request_token(id.to_string())
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn webhook_secret(
        &self,
        org: OrganizationId,
        id: SubscriptionId,
    ) -> Result<Option<WebhookSecret>, VaultError> {
        if let Some(secret) = self.webhook_secrets.get((org, id)) {
            return Ok(Some(secret));
        }
        let Some(value) = self.read(&self.webhook_secret_name(org, id)).await? else {
            return Ok(None);
        };
        let secret = WebhookSecret::parse(value.expose_secret())
            .map_err(|_| VaultError::Backend("a stored webhook secret is malformed".into()))?;
        self.webhook_secrets.put((org, id), &secret);
        Ok(Some(secret))
    }

    async fn delete_webhook_secret(
        &self,
        org: OrganizationId,
        id: SubscriptionId,
    ) -> Result<(), VaultError> {
        self.webhook_secrets.forget((org, id));
        self.remove(&self.webhook_secret_name(org, id)).await
    }

    async fn list_webhook_secrets(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<SecretsPage<SubscriptionId>, VaultError> {
        self.list_under("webhooks", after, limit).await
    }
}

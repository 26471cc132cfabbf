//! Subscriptions' signing secrets in Secrets Manager, `{prefix}/webhooks/{org}/{id}`: only the
//! api and webhook-sender functions may read that path.

use crate::vault::backend;
use crate::SecretsVault;
use async_trait::async_trait;
use domain::ids::{OrganizationId, SubscriptionId};
use domain::ports::{SecretsPage, VaultError, WebhookSecrets};
use domain::webhooks::WebhookSecret;
use secrecy::ExposeSecret;

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
        let Some(value) = self.read(&self.webhook_secret_name(org, id)).await? else {
            return Ok(None);
        };
        WebhookSecret::parse(value.expose_secret())
            .map(Some)
            .map_err(|_| VaultError::Backend("a stored webhook secret is malformed".into()))
    }

    async fn delete_webhook_secret(
        &self,
        org: OrganizationId,
        id: SubscriptionId,
    ) -> Result<(), VaultError> {
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

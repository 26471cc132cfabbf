//! What webhooks need from the outside world: the subscriptions and the message log (a DynamoDB
//! table of their own), the subscriptions' signing secrets (the vault), and a check of where an
//! endpoint's URL leads.

use super::{StoreError, VaultError, Versioned};
use crate::ids::{MessageId, OrganizationId, SubscriptionId};
use crate::page::{Page, PageRequest};
use crate::webhooks::{DeliveryAttempt, Message, Subscription, WebhookSecret, WebhookUrl};
use async_trait::async_trait;

/// Subscriptions (`ORG#id | SUB#id`) and the message log (`ORG#id | MSG#<uuidv7>`, attempts
/// under their message and subscription), kept 30 days.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Whether the organization has any subscription, enabled or not: events are recorded only
    /// then. May answer from a cache a few seconds old (except in the process that changed it).
    async fn has_subscriptions(&self, org: OrganizationId) -> Result<bool, StoreError>;
    /// `AlreadyExists` when the id is taken.
    async fn insert_subscription(&self, subscription: &Subscription) -> Result<(), StoreError>;
    async fn get_subscription(
        &self,
        org: OrganizationId,
        id: SubscriptionId,
    ) -> Result<Option<Versioned<Subscription>>, StoreError>;
    /// Every subscription of the organization, oldest first.
    async fn list_subscriptions(
        &self,
        org: OrganizationId,
    ) -> Result<Vec<Subscription>, StoreError>;
    /// Replaces the subscription if it is still at `version` (`VersionConflict` otherwise, also
    /// when it was deleted).
    async fn replace_subscription(
        &self,
        subscription: &Subscription,
        version: u64,
    ) -> Result<(), StoreError>;
    /// Removes the subscription; answers it as it was, or `None` when there was none.
    async fn delete_subscription(
        &self,
        org: OrganizationId,
        id: SubscriptionId,
    ) -> Result<Option<Subscription>, StoreError>;
    /// Messages, newest first, optionally only of these event types.
    async fn list_messages(
        &self,
        org: OrganizationId,
        event_types: &[String],
        page: &PageRequest,
    ) -> Result<Page<Message>, StoreError>;
    async fn get_message(
        &self,
        org: OrganizationId,
        id: MessageId,
    ) -> Result<Option<Message>, StoreError>;
    /// Every attempt of the message, newest first.
    async fn message_attempts(
        &self,
        org: OrganizationId,
        id: MessageId,
    ) -> Result<Vec<DeliveryAttempt>, StoreError>;
    /// The subscription's latest attempts, newest first, at most `limit`.
    async fn subscription_attempts(
        &self,
        org: OrganizationId,
        id: SubscriptionId,
        limit: usize,
    ) -> Result<Vec<DeliveryAttempt>, StoreError>;
}

/// Subscriptions' signing secrets, at `{prefix}/webhooks/{org}/{subscription_id}`.
#[async_trait]
pub trait WebhookSecrets: Send + Sync {
    /// Creates the secret of a new subscription.
    async fn create_webhook_secret(
        &self,
        org: OrganizationId,
        id: SubscriptionId,
        secret: &WebhookSecret,
    ) -> Result<(), VaultError>;
    async fn webhook_secret(
        &self,
        org: OrganizationId,
        id: SubscriptionId,
    ) -> Result<Option<WebhookSecret>, VaultError>;
    /// Deletes the secret at once (a missing one is no error).
    async fn delete_webhook_secret(
        &self,
        org: OrganizationId,
        id: SubscriptionId,
    ) -> Result<(), VaultError>;
}

/// Where an endpoint leads: https, resolving only to public addresses (unless the operator
/// allows private targets, for local work).
#[async_trait]
pub trait WebhookTargets: Send + Sync {
    /// `Err` with what is wrong, fit for the caller ("resolves to a non-public address").
    async fn check(&self, url: &WebhookUrl) -> Result<(), String>;
}

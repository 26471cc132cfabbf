//! What webhooks need from the outside world: the subscriptions and the message log (a DynamoDB
//! table of their own), the subscriptions' signing secrets (the vault), and a check of where an
//! endpoint's URL leads.

use super::{QueueError, SecretsPage, StoreError, VaultError, Versioned};
use crate::ids::{MessageId, OrganizationId, SubscriptionId};
use crate::page::{Page, PageRequest};
use crate::webhooks::{
    AttemptResult, DeliveryAttempt, DeliveryState, DeliveryTask, Message, Outgoing, Subscription,
    WebhookSecret, WebhookUrl,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// Subscriptions (`ORG#id | SUB#id`) and the message log (`ORG#id | MSG#<uuidv7>`, attempts
/// under their message and subscription), kept 30 days.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Whether the organization has any subscription, enabled or not: events are recorded only
    /// then. May answer from a cache a few seconds old (except in the process that changed it).
    async fn has_subscriptions(&self, org: OrganizationId) -> Result<bool, StoreError>;
    /// Those of `orgs` that have any subscription, in as few requests as the store allows (the
    /// scheduler asks once per page of claims, not once per organization).
    async fn organizations_with_subscriptions(
        &self,
        orgs: &[OrganizationId],
    ) -> Result<std::collections::HashSet<OrganizationId>, StoreError> {
        let mut with = std::collections::HashSet::new();
        for org in orgs {
            if self.has_subscriptions(*org).await? {
                with.insert(*org);
            }
        }
        Ok(with)
    }
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

    /// Where the delivery of a message to a subscription stands (a consistent read); `None`
    /// before its first attempt.
    async fn delivery(
        &self,
        org: OrganizationId,
        message: MessageId,
        subscription: SubscriptionId,
    ) -> Result<Option<DeliveryState>, StoreError>;
    /// Records an attempt and the delivery's state after it, together, when that state is a
    /// step on from the stored one: none yet, or a pending one with fewer attempts. `false`
    /// when it is not (the attempt repeated one already recorded): nothing is written.
    async fn record_attempt(
        &self,
        org: OrganizationId,
        attempt: &DeliveryAttempt,
        state: &DeliveryState,
    ) -> Result<bool, StoreError>;
    /// Ends a delivery without an attempt (`state` is failed: its subscription is disabled),
    /// when no state is stored or the stored one is pending with at most `state.attempts`.
    async fn fail_delivery(
        &self,
        org: OrganizationId,
        state: &DeliveryState,
    ) -> Result<bool, StoreError>;
    /// The subscription's deliveries that did not succeed, of messages recorded in
    /// `[since, until)`, oldest first.
    async fn unsuccessful_deliveries(
        &self,
        org: OrganizationId,
        subscription: SubscriptionId,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<DeliveryState>, StoreError>;
    /// Starts a delivery over (pending, no attempts, at `at`) if it is still exactly as `read`;
    /// `false` when it changed since.
    async fn restart_delivery(
        &self,
        org: OrganizationId,
        read: &DeliveryState,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// The message's dispatch is done: it leaves the outbox index (a message already gone is
    /// no error).
    async fn mark_dispatched(
        &self,
        org: OrganizationId,
        message: MessageId,
    ) -> Result<(), StoreError>;
    /// Messages not dispatched yet that were recorded before `before`, of every organization,
    /// at most `limit`.
    async fn undispatched(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError>;
}

/// The delivery queue (`WEBHOOK_QUEUE_URL`): one task per attempt of a message to a
/// subscription.
#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    /// Queues the tasks, each delivered no sooner than `delay` from now (at most
    /// [`MAX_QUEUE_DELAY`](super::MAX_QUEUE_DELAY): a longer wait is chained by the sender).
    async fn enqueue_deliveries(
        &self,
        tasks: &[DeliveryTask],
        delay: Duration,
    ) -> Result<(), QueueError>;
}

/// Makes one attempt: a signed POST to the endpoint, checked again at this delivery.
#[async_trait]
pub trait WebhookTransport: Send + Sync {
    async fn post(&self, outgoing: Outgoing<'_>) -> AttemptResult;
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
    /// One page of the subscriptions' secrets, in the vault's order; `after` is the previous
    /// page's `next` (the orphan sweep's).
    async fn list_webhook_secrets(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<SecretsPage<SubscriptionId>, VaultError>;
}

/// Where an endpoint leads: https, resolving only to public addresses (unless the operator
/// allows private targets, for local work).
#[async_trait]
pub trait WebhookTargets: Send + Sync {
    /// `Err` with what is wrong, fit for the caller ("resolves to a non-public address").
    async fn check(&self, url: &WebhookUrl) -> Result<(), String>;
}

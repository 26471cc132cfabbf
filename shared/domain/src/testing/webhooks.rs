//! In-memory webhooks: subscriptions, the message log and secrets, plus a target check that
//! refuses what the real one would for the hosts the tests use.

use super::lock;
use crate::ids::{MessageId, OrganizationId, SubscriptionId};
use crate::page::{Page, PageRequest};
use crate::ports::{
    SecretsPage, StoreError, VaultError, Versioned, WebhookSecrets, WebhookStore, WebhookTargets,
};
use crate::webhooks::{
    AttemptStatus, DeliveryAttempt, DeliveryState, Message, Subscription, WebhookSecret, WebhookUrl,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

#[derive(Default)]
struct State {
    subscriptions: BTreeMap<(OrganizationId, SubscriptionId), (Subscription, u64)>,
    messages: BTreeMap<(OrganizationId, MessageId), Message>,
    attempts: Vec<(OrganizationId, DeliveryAttempt)>,
    /// With when each was created (the fixed clock's instant: the tests move theirs past it).
    secrets: BTreeMap<(OrganizationId, SubscriptionId), (WebhookSecret, DateTime<Utc>)>,
    deliveries: BTreeMap<(OrganizationId, MessageId, SubscriptionId), DeliveryState>,
    dispatched: BTreeSet<(OrganizationId, MessageId)>,
}

#[derive(Default)]
pub struct MemoryWebhooks {
    state: Mutex<State>,
}

impl MemoryWebhooks {
    pub fn secrets_count(&self) -> usize {
        lock(&self.state).secrets.len()
    }

    pub fn put_message(&self, message: Message) {
        lock(&self.state)
            .messages
            .insert((message.organization_id, message.id), message);
    }

    /// Every attempt recorded, oldest first.
    pub fn attempts(&self) -> Vec<DeliveryAttempt> {
        let mut all: Vec<DeliveryAttempt> = lock(&self.state)
            .attempts
            .iter()
            .map(|(_, a)| a.clone())
            .collect();
        all.sort_by_key(|a| a.id);
        all
    }

    pub fn is_dispatched(&self, org: OrganizationId, message: MessageId) -> bool {
        lock(&self.state).dispatched.contains(&(org, message))
    }

    pub fn subscription(&self, org: OrganizationId, id: SubscriptionId) -> Option<Subscription> {
        lock(&self.state)
            .subscriptions
            .get(&(org, id))
            .map(|(s, _)| s.clone())
    }
}

/// Whether `next` may replace `stored`: none stored, or a pending one with fewer attempts
/// (`or_equal`: as many are enough).
fn steps_on(stored: Option<&DeliveryState>, next: &DeliveryState, or_equal: bool) -> bool {
    stored.is_none_or(|s| {
        s.status == AttemptStatus::Pending
            && (s.attempts < next.attempts || (or_equal && s.attempts == next.attempts))
    })
}

#[async_trait]
impl WebhookStore for MemoryWebhooks {
    async fn has_subscriptions(&self, org: OrganizationId) -> Result<bool, StoreError> {
        Ok(lock(&self.state)
            .subscriptions
            .keys()
            .any(|(o, _)| *o == org))
    }

    async fn insert_subscription(&self, subscription: &Subscription) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        let key = (subscription.organization_id, subscription.id);
        if state.subscriptions.contains_key(&key) {
            return Err(StoreError::AlreadyExists);
        }
        state.subscriptions.insert(key, (subscription.clone(), 1));
        Ok(())
    }

    async fn get_subscription(
        &self,
        org: OrganizationId,
        id: SubscriptionId,
    ) -> Result<Option<Versioned<Subscription>>, StoreError> {
        Ok(lock(&self.state)
            .subscriptions
            .get(&(org, id))
            .map(|(s, v)| Versioned {
                value: s.clone(),
                version: *v,
            }))
    }

    async fn list_subscriptions(
        &self,
        org: OrganizationId,
    ) -> Result<Vec<Subscription>, StoreError> {
        let mut found: Vec<Subscription> = lock(&self.state)
            .subscriptions
            .iter()
            .filter(|((o, _), _)| *o == org)
            .map(|(_, (s, _))| s.clone())
            .collect();
        found.sort_by_key(|s| s.created_at);
        Ok(found)
    }

    async fn replace_subscription(
        &self,
        subscription: &Subscription,
        version: u64,
    ) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        match state
            .subscriptions
            .get_mut(&(subscription.organization_id, subscription.id))
        {
            Some((stored, v)) if *v == version => {
                *stored = subscription.clone();
                *v += 1;
                Ok(())
            }
            _ => Err(StoreError::VersionConflict),
        }
    }

    async fn delete_subscription(
        &self,
        org: OrganizationId,
        id: SubscriptionId,
    ) -> Result<Option<Subscription>, StoreError> {
        Ok(lock(&self.state)
            .subscriptions
            .remove(&(org, id))
            .map(|(s, _)| s))
    }

    async fn list_messages(
        &self,
        org: OrganizationId,
        event_types: &[String],
        page: &PageRequest,
    ) -> Result<Page<Message>, StoreError> {
        let state = lock(&self.state);
        // Newest first: keys that sort in reverse id order.
        let items = state
            .messages
            .iter()
            .rev()
            .filter(|((o, _), m)| {
                *o == org && (event_types.is_empty() || event_types.contains(&m.event_type))
            })
            .map(|((_, id), m)| {
                (
                    format!("{:032x}", u128::MAX - id.as_uuid().as_u128()),
                    m.clone(),
                )
            })
            .collect();
        Ok(super::page_of(items, page))
    }

    async fn get_message(
        &self,
        org: OrganizationId,
        id: MessageId,
    ) -> Result<Option<Message>, StoreError> {
        Ok(lock(&self.state).messages.get(&(org, id)).cloned())
    }

    async fn message_attempts(
        &self,
        org: OrganizationId,
        id: MessageId,
    ) -> Result<Vec<DeliveryAttempt>, StoreError> {
        let mut found: Vec<DeliveryAttempt> = lock(&self.state)
            .attempts
            .iter()
            .filter(|(o, a)| *o == org && a.message_id == id)
            .map(|(_, a)| a.clone())
            .collect();
        found.sort_by_key(|a| std::cmp::Reverse(a.id));
        Ok(found)
    }

    async fn subscription_attempts(
        &self,
        org: OrganizationId,
        id: SubscriptionId,
        limit: usize,
    ) -> Result<Vec<DeliveryAttempt>, StoreError> {
        let mut found: Vec<DeliveryAttempt> = lock(&self.state)
            .attempts
            .iter()
            .filter(|(o, a)| *o == org && a.endpoint_id == id)
            .map(|(_, a)| a.clone())
            .collect();
        found.sort_by_key(|a| std::cmp::Reverse(a.id));
        found.truncate(limit);
        Ok(found)
    }

    async fn delivery(
        &self,
        org: OrganizationId,
        message: MessageId,
        subscription: SubscriptionId,
    ) -> Result<Option<DeliveryState>, StoreError> {
        Ok(lock(&self.state)
            .deliveries
            .get(&(org, message, subscription))
            .cloned())
    }

    async fn record_attempt(
        &self,
        org: OrganizationId,
        attempt: &DeliveryAttempt,
        state: &DeliveryState,
    ) -> Result<bool, StoreError> {
        let mut all = lock(&self.state);
        let key = (org, state.message_id, state.subscription_id);
        if !steps_on(all.deliveries.get(&key), state, false) {
            return Ok(false);
        }
        all.deliveries.insert(key, state.clone());
        all.attempts.push((org, attempt.clone()));
        Ok(true)
    }

    async fn fail_delivery(
        &self,
        org: OrganizationId,
        state: &DeliveryState,
    ) -> Result<bool, StoreError> {
        let mut all = lock(&self.state);
        let key = (org, state.message_id, state.subscription_id);
        if !steps_on(all.deliveries.get(&key), state, true) {
            return Ok(false);
        }
        all.deliveries.insert(key, state.clone());
        Ok(true)
    }

    async fn unsuccessful_deliveries(
        &self,
        org: OrganizationId,
        subscription: SubscriptionId,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<DeliveryState>, StoreError> {
        let (low, high) = (MessageId::lowest_at(since), MessageId::lowest_at(until));
        Ok(lock(&self.state)
            .deliveries
            .iter()
            .filter(|((o, m, s), d)| {
                *o == org
                    && *s == subscription
                    && *m >= low
                    && *m < high
                    && d.status != AttemptStatus::Success
            })
            .map(|(_, d)| d.clone())
            .collect())
    }

    async fn restart_delivery(
        &self,
        org: OrganizationId,
        read: &DeliveryState,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut all = lock(&self.state);
        let key = (org, read.message_id, read.subscription_id);
        match all.deliveries.get_mut(&key) {
            Some(stored) if stored == read => {
                stored.status = AttemptStatus::Pending;
                stored.attempts = 0;
                stored.updated_at = at;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn mark_dispatched(
        &self,
        org: OrganizationId,
        message: MessageId,
    ) -> Result<(), StoreError> {
        lock(&self.state).dispatched.insert((org, message));
        Ok(())
    }

    async fn undispatched(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        let all = lock(&self.state);
        Ok(all
            .messages
            .iter()
            .filter(|(key, m)| m.timestamp < before && !all.dispatched.contains(key))
            .map(|(_, m)| m.clone())
            .take(limit)
            .collect())
    }
}

#[async_trait]
impl WebhookSecrets for MemoryWebhooks {
    async fn create_webhook_secret(
        &self,
        org: OrganizationId,
        id: SubscriptionId,
        secret: &WebhookSecret,
    ) -> Result<(), VaultError> {
        lock(&self.state)
            .secrets
            .insert((org, id), (secret.clone(), super::now()));
        Ok(())
    }

    async fn webhook_secret(
        &self,
        org: OrganizationId,
        id: SubscriptionId,
    ) -> Result<Option<WebhookSecret>, VaultError> {
        Ok(lock(&self.state)
            .secrets
            .get(&(org, id))
            .map(|(s, _)| s.clone()))
    }

    async fn delete_webhook_secret(
        &self,
        org: OrganizationId,
        id: SubscriptionId,
    ) -> Result<(), VaultError> {
        lock(&self.state).secrets.remove(&(org, id));
        Ok(())
    }

    async fn list_webhook_secrets(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<SecretsPage<SubscriptionId>, VaultError> {
        let state = lock(&self.state);
        let entries = state
            .secrets
            .iter()
            .map(|((org, id), (_, at))| (format!("{org}/{id}"), *org, *id, *at));
        Ok(super::secrets_page(entries, after, limit))
    }
}

/// Refuses http, and hosts under `.internal` (as if they resolved to private addresses).
#[derive(Default)]
pub struct FakeTargets;

#[async_trait]
impl WebhookTargets for FakeTargets {
    async fn check(&self, url: &WebhookUrl) -> Result<(), String> {
        let parsed = url::Url::parse(url.as_str()).map_err(|e| e.to_string())?;
        if parsed.scheme() != "https" {
            return Err("must use https".into());
        }
        if parsed.host_str().is_some_and(|h| h.ends_with(".internal")) {
            return Err("resolves to a non-public address (10.0.0.1)".into());
        }
        Ok(())
    }
}

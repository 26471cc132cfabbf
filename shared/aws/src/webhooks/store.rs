//! Subscriptions and the message log (reads); see the module's documentation for the items.

use super::keys::{
    attempts_of_message, message_of, message_sk, org_pk, subscription_index_pk, subscription_sk,
    ATTEMPT_PREFIX, BY_SUBSCRIPTION_INDEX, MESSAGE_PREFIX, SUBSCRIBED, SUBSCRIPTION_COUNT,
    SUBSCRIPTION_PREFIX,
};
use crate::batch::{read_all, Read, MAX_READ_BATCH};
use crate::store::paging::{list_items, Filter, Order};
use crate::store::{
    backend, build_error, failed_conditions, from_item, get_item, is_condition_failure, key, n, s,
    to_item, version_of, Item, VERSION,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use domain::ids::{MessageId, OrganizationId, SubscriptionId};
use domain::page::{Page, PageRequest};
use domain::ports::{StoreError, Versioned, WebhookStore};
use domain::webhooks::{DeliveryAttempt, DeliveryState, Message, Subscription};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long an answer of [`WebhookStore::has_subscriptions`] is reused, as API keys are.
const PRESENCE_TTL: Duration = Duration::from_secs(5);
/// How often a delete reads the subscription again when it kept changing underneath.
const DELETE_ATTEMPTS: usize = 5;

/// Implements [`WebhookStore`] on the webhooks table.
#[derive(Debug, Clone)]
pub struct DynamoWebhooks {
    pub(super) client: Client,
    pub(super) table: String,
    /// Whether an organization has subscriptions, and when that was read.
    presence: Arc<Mutex<HashMap<OrganizationId, (bool, Instant)>>>,
}

impl DynamoWebhooks {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            presence: Arc::default(),
        }
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }

    fn remember(&self, org: OrganizationId, present: bool) {
        let mut cache = self.presence.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded: a function serving many organizations forgets the stale answers.
        if cache.len() > 10_000 {
            cache.retain(|_, (_, at)| at.elapsed() < PRESENCE_TTL);
        }
        cache.insert(org, (present, Instant::now()));
    }

    fn recalled(&self, org: OrganizationId) -> Option<bool> {
        let cache = self.presence.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(&org)
            .filter(|(_, at)| at.elapsed() < PRESENCE_TTL)
            .map(|(present, _)| *present)
    }

    /// Adds `by` to the organization's count of subscriptions, in a transaction.
    fn count_subscriptions(
        &self,
        org: OrganizationId,
        by: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(org_pk(org), SUBSCRIBED)))
            .update_expression("ADD #count :by")
            .expression_attribute_names("#count", SUBSCRIPTION_COUNT)
            .expression_attribute_values(":by", n(by))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        get_item(&self.client, &self.table, pk, sk).await
    }

    /// Every item of a partition (or of an index partition) with this sort key prefix.
    async fn query_all(
        &self,
        index: Option<&str>,
        pk: String,
        prefix: &str,
        newest_first: bool,
        limit: Option<usize>,
    ) -> Result<Vec<Item>, StoreError> {
        let (pk_name, sk_name) = match index {
            Some(_) => ("sub_pk", "sub_sk"),
            None => ("pk", "sk"),
        };
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.map(str::to_owned))
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#pk", pk_name)
                .expression_attribute_names("#sk", sk_name)
                .expression_attribute_values(":pk", s(pk.clone()))
                .expression_attribute_values(":prefix", s(prefix))
                .scan_index_forward(!newest_first)
                .set_limit(limit.map(|l| l.min(1000) as i32))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(backend)?;
            items.extend(out.items.unwrap_or_default());
            if limit.is_some_and(|l| items.len() >= l) {
                items.truncate(limit.unwrap_or(usize::MAX));
                break;
            }
            match out.last_evaluated_key {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => break,
            }
        }
        Ok(items)
    }
}

#[async_trait]
impl WebhookStore for DynamoWebhooks {
    async fn has_subscriptions(&self, org: OrganizationId) -> Result<bool, StoreError> {
        Ok(self
            .organizations_with_subscriptions(&[org])
            .await?
            .contains(&org))
    }

    async fn organizations_with_subscriptions(
        &self,
        orgs: &[OrganizationId],
    ) -> Result<HashSet<OrganizationId>, StoreError> {
        let mut with = HashSet::new();
        let mut unknown = Vec::new();
        for org in orgs {
            match self.recalled(*org) {
                Some(true) => {
                    with.insert(*org);
                }
                Some(false) => {}
                None if !unknown.contains(org) => unknown.push(*org),
                None => {}
            }
        }
        let names = HashMap::from([("#count".to_owned(), SUBSCRIPTION_COUNT.to_owned())]);
        for chunk in unknown.chunks(MAX_READ_BATCH) {
            let keys = chunk
                .iter()
                .map(|org| key(org_pk(*org), SUBSCRIBED))
                .collect();
            let read = Read::Attributes {
                projection: "pk, #count",
                names: &names,
            };
            let markers = read_all(&self.client, &self.table, keys, read).await?;
            let counted: HashSet<String> = markers
                .iter()
                .filter(|item| {
                    item.get(SUBSCRIPTION_COUNT)
                        .and_then(|c| c.as_n().ok())
                        .and_then(|c| c.parse::<i64>().ok())
                        .is_some_and(|c| c > 0)
                })
                .filter_map(|item| item.get("pk")?.as_s().ok().cloned())
                .collect();
            for org in chunk {
                let present = counted.contains(&org_pk(*org));
                self.remember(*org, present);
                if present {
                    with.insert(*org);
                }
            }
        }
        Ok(with)
    }

    async fn insert_subscription(&self, subscription: &Subscription) -> Result<(), StoreError> {
        let org = subscription.organization_id;
        let mut item = to_item(subscription, org_pk(org), &subscription_sk(subscription.id))?;
        item.insert(VERSION.to_owned(), n(1));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error)?;
        let items = vec![
            TransactWriteItem::builder().put(put).build(),
            self.count_subscriptions(org, 1)?,
        ];
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => {
                self.remember(org, true);
                Ok(())
            }
            Err(e) if failed_conditions(&e).first() == Some(&true) => {
                Err(StoreError::AlreadyExists)
            }
            Err(e) => Err(backend(e)),
        }
    }

    async fn get_subscription(
        &self,
        org: OrganizationId,
        id: SubscriptionId,
    ) -> Result<Option<Versioned<Subscription>>, StoreError> {
        let Some(item) = self.get(org_pk(org), &subscription_sk(id)).await? else {
            return Ok(None);
        };
        let version = version_of(&item);
        Ok(Some(Versioned {
            value: from_item(item)?,
            version,
        }))
    }

    async fn list_subscriptions(
        &self,
        org: OrganizationId,
    ) -> Result<Vec<Subscription>, StoreError> {
        let items = self
            .query_all(None, org_pk(org), SUBSCRIPTION_PREFIX, false, None)
            .await?;
        let mut found: Vec<Subscription> =
            items.into_iter().map(from_item).collect::<Result<_, _>>()?;
        found.sort_by_key(|s| s.created_at);
        self.remember(org, !found.is_empty());
        Ok(found)
    }

    async fn replace_subscription(
        &self,
        subscription: &Subscription,
        version: u64,
    ) -> Result<(), StoreError> {
        let mut item = to_item(
            subscription,
            org_pk(subscription.organization_id),
            &subscription_sk(subscription.id),
        )?;
        item.insert(VERSION.to_owned(), n(version + 1));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("#version = :version")
            .expression_attribute_names("#version", VERSION)
            .expression_attribute_values(":version", n(version))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(StoreError::VersionConflict),
            Err(e) => Err(backend(e)),
        }
    }

    async fn delete_subscription(
        &self,
        org: OrganizationId,
        id: SubscriptionId,
    ) -> Result<Option<Subscription>, StoreError> {
        // The subscription as it was, then its delete with the count's decrement, on the
        // condition that it is still that version (else read again).
        for _ in 0..DELETE_ATTEMPTS {
            let Some(current) = self.get_subscription(org, id).await? else {
                return Ok(None);
            };
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(org_pk(org), &subscription_sk(id))))
                .condition_expression("#version = :version")
                .expression_attribute_names("#version", VERSION)
                .expression_attribute_values(":version", n(current.version))
                .build()
                .map_err(build_error)?;
            let items = vec![
                TransactWriteItem::builder().delete(delete).build(),
                self.count_subscriptions(org, -1)?,
            ];
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await;
            // The next check reads again: this may have been the last one.
            self.presence
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&org);
            match result {
                Ok(_) => return Ok(Some(current.value)),
                Err(e) if failed_conditions(&e).first() == Some(&true) => continue,
                Err(e) => return Err(backend(e)),
            }
        }
        Err(StoreError::VersionConflict)
    }

    async fn list_messages(
        &self,
        org: OrganizationId,
        event_types: &[String],
        page: &PageRequest,
    ) -> Result<Page<Message>, StoreError> {
        let filter = (!event_types.is_empty()).then(|| {
            let placeholders: Vec<String> =
                (0..event_types.len()).map(|i| format!(":t{i}")).collect();
            Filter {
                expression: format!("#event_type IN ({})", placeholders.join(", ")),
                names: HashMap::from([("#event_type".to_owned(), "event_type".to_owned())]),
                values: placeholders
                    .into_iter()
                    .zip(event_types)
                    .map(|(p, t)| (p, s(t)))
                    .collect(),
            }
        });
        let page = list_items(
            &self.client,
            &self.table,
            org_pk(org),
            MESSAGE_PREFIX,
            filter,
            page,
            Order::Descending,
        )
        .await?;
        page.try_map(|item| message_of(&item))
    }

    async fn get_message(
        &self,
        org: OrganizationId,
        id: MessageId,
    ) -> Result<Option<Message>, StoreError> {
        self.get(org_pk(org), &message_sk(id))
            .await?
            .map(|item| message_of(&item))
            .transpose()
    }

    async fn message_attempts(
        &self,
        org: OrganizationId,
        id: MessageId,
    ) -> Result<Vec<DeliveryAttempt>, StoreError> {
        self.query_all(None, org_pk(org), &attempts_of_message(id), true, None)
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }

    async fn subscription_attempts(
        &self,
        org: OrganizationId,
        id: SubscriptionId,
        limit: usize,
    ) -> Result<Vec<DeliveryAttempt>, StoreError> {
        let items = self
            .query_all(
                Some(BY_SUBSCRIPTION_INDEX),
                subscription_index_pk(id),
                ATTEMPT_PREFIX,
                true,
                Some(limit),
            )
            .await?;
        // The index is keyed by subscription only: keep the organization's own.
        let own = org_pk(org);
        items
            .into_iter()
            .filter(|item| item.get("pk").and_then(|v| v.as_s().ok()) == Some(&own))
            .map(from_item)
            .collect()
    }

    async fn delivery(
        &self,
        org: OrganizationId,
        message: MessageId,
        subscription: SubscriptionId,
    ) -> Result<Option<DeliveryState>, StoreError> {
        self.read_delivery(org, message, subscription).await
    }

    async fn record_attempt(
        &self,
        org: OrganizationId,
        attempt: &DeliveryAttempt,
        state: &DeliveryState,
    ) -> Result<bool, StoreError> {
        self.write_attempt(org, attempt, state).await
    }

    async fn fail_delivery(
        &self,
        org: OrganizationId,
        state: &DeliveryState,
    ) -> Result<bool, StoreError> {
        self.write_failed(org, state).await
    }

    async fn unsuccessful_deliveries(
        &self,
        org: OrganizationId,
        subscription: SubscriptionId,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<DeliveryState>, StoreError> {
        self.query_unsuccessful(org, subscription, since, until)
            .await
    }

    async fn restart_delivery(
        &self,
        org: OrganizationId,
        read: &DeliveryState,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.write_restart(org, read, at).await
    }

    async fn mark_dispatched(
        &self,
        org: OrganizationId,
        message: MessageId,
    ) -> Result<(), StoreError> {
        self.leave_outbox(org, message).await
    }

    async fn undispatched(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        self.read_outbox(before, limit).await
    }
}

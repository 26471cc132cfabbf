//! The state store: one DynamoDB table with string keys `pk`/`sk` (DESIGN section 7). Items are
//! the domain structs' own fields (via serde_dynamo) plus their key attributes, so the table
//! stays readable in the console.

mod collections;
mod connections;
mod flows;
mod idempotency;
mod jobs;
mod keys;
mod marks;
pub(crate) mod paging;
mod providers;
mod refresh;
mod schedule;
mod secret_versions;
mod tenancy;

pub(crate) use keys::VERSION;
pub use keys::{schedule_bucket, SCHEDULE_INDEX, SWEEP_INDEX};

use crate::error::{boxed, service_code};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use domain::ports::StoreError;
use domain::webhooks::{Event, Message};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;

pub(crate) type Item = HashMap<String, AttributeValue>;

/// Implements the domain's `Store` (tenants, collections, connections, idempotency keys).
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// The webhooks table, where the events of changes are recorded (the outbox).
    outbox: Option<String>,
    /// How long an ended job is kept: its item expires by TTL (`ttl`) this long after its end.
    job_retention: chrono::Duration,
}

/// How long an ended job is kept unless configured (`JOB_RETENTION_DAYS`).
pub const DEFAULT_JOB_RETENTION_DAYS: u64 = 90;

impl DynamoStore {
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        Self {
            client,
            table: table_name.into(),
            outbox: None,
            job_retention: chrono::Duration::days(DEFAULT_JOB_RETENTION_DAYS as i64),
        }
    }

    /// Keeps ended jobs `days` (TTL on their items) instead of the default 90.
    pub fn with_job_retention(mut self, days: u64) -> Self {
        self.job_retention = chrono::Duration::days(days as i64);
        self
    }

    /// Records events of changes in `webhooks_table`, in the transactions of the changes.
    pub fn with_outbox(mut self, webhooks_table: impl Into<String>) -> Self {
        self.outbox = Some(webhooks_table.into());
        self
    }

    /// The outbox items of `events`: one new message item each, in the webhooks table.
    pub(crate) fn outbox_items(
        &self,
        events: &[Event],
    ) -> Result<Vec<aws_sdk_dynamodb::types::TransactWriteItem>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let Some(table) = &self.outbox else {
            // Never drop an event: a store without an outbox cannot take the change.
            return Err(StoreError::Backend(boxed(std::io::Error::other(
                "events to record, but the store has no webhooks table",
            ))));
        };
        events
            .iter()
            .map(|event| {
                let item = crate::webhooks::message_item(&Message::from(event.clone()))?;
                let put = aws_sdk_dynamodb::types::Put::builder()
                    .table_name(table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()
                    .map_err(build_error)?;
                Ok(aws_sdk_dynamodb::types::TransactWriteItem::builder()
                    .put(put)
                    .build())
            })
            .collect()
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// One item by its key, read consistently: reads here usually follow a write.
    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        get_item(&self.client, &self.table, pk, sk).await
    }

    /// Writes `items` in one transaction: `Ok(false)` when one of their conditions failed.
    pub(crate) async fn transact(
        &self,
        items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if failed_conditions(&e).contains(&true) => Ok(false),
            Err(e) => Err(backend(e)),
        }
    }

    /// Puts an item that must not exist yet (`AlreadyExists`).
    pub(crate) async fn put_new(&self, item: Item) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(StoreError::AlreadyExists),
            Err(e) => Err(backend(e)),
        }
    }
}

/// Whether a conditional write failed its condition (as opposed to failing).
pub(crate) fn is_condition_failure<E, R>(e: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    service_code(e) == Some("ConditionalCheckFailedException")
}

/// Whether a conditional write was applied: `false` when its condition failed, an error when
/// it failed otherwise.
pub(crate) fn applied<T, E, R>(result: Result<T, SdkError<E, R>>) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if is_condition_failure(&e) => Ok(false),
        Err(e) => Err(backend(e)),
    }
}

/// Which of a transaction's items failed their condition.
pub(crate) fn failed_conditions<R>(
    e: &aws_sdk_dynamodb::error::SdkError<TransactWriteItemsError, R>,
) -> Vec<bool> {
    match e.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => cancelled
            .cancellation_reasons()
            .iter()
            .map(|r| r.code() == Some("ConditionalCheckFailed"))
            .collect(),
        _ => Vec::new(),
    }
}

/// One item of `table` by its key, read consistently.
pub(crate) async fn get_item(
    client: &Client,
    table: &str,
    pk: String,
    sk: &str,
) -> Result<Option<Item>, StoreError> {
    let out = client
        .get_item()
        .table_name(table)
        .set_key(Some(key(pk, sk)))
        .consistent_read(true)
        .send()
        .await
        .map_err(backend)?;
    Ok(out.item)
}

/// The optimistic-locking version of an item (`version`; 1 when it has none yet).
pub(crate) fn version_of(item: &Item) -> u64 {
    item.get(keys::VERSION)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

pub(crate) fn key(pk: String, sk: &str) -> Item {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(pk)),
        ("sk".to_owned(), AttributeValue::S(sk.to_owned())),
    ])
}

/// A domain value as item attributes, with its key added.
pub(crate) fn to_item<T: Serialize>(value: &T, pk: String, sk: &str) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(value).map_err(|e| StoreError::Backend(boxed(e)))?;
    item.extend(key(pk, sk));
    Ok(item)
}

/// An item as a domain value; attributes the value does not know (keys, counters) are ignored.
pub(crate) fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Backend(boxed(e)))
}

pub(crate) fn backend<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    StoreError::Backend(boxed(e))
}

pub(crate) fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Backend(boxed(e))
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

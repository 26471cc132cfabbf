//! The webhooks table's keys and item shapes.

use crate::store::{n, s, Item};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use domain::ids::{AttemptId, MessageId, OrganizationId, SubscriptionId};
use domain::ports::StoreError;
use domain::webhooks::Message;
use std::time::Duration;

/// How long messages, attempts and deliveries are kept.
pub const MESSAGE_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// Attempts and deliveries by subscription (`sub_pk`, `sub_sk`).
pub const BY_SUBSCRIPTION_INDEX: &str = "by_subscription";

pub(crate) const SUBSCRIPTION_PREFIX: &str = "SUB#";
/// The organization's count of subscriptions (`ORG#id | SUBSCRIBED`, `count`), kept by the
/// transactions that insert and delete one: what tells, for many organizations in one batch
/// read, whether their changes record events.
pub(crate) const SUBSCRIBED: &str = "SUBSCRIBED";
pub(crate) const SUBSCRIPTION_COUNT: &str = "count";
pub(crate) const MESSAGE_PREFIX: &str = "MSG#";
pub(crate) const ATTEMPT_PREFIX: &str = "ATT#";
pub(crate) const DELIVERY_PREFIX: &str = "DLV#";
/// The outbox index (`outbox_bucket`, `outbox_at`): messages not dispatched yet, spread over
/// this many partitions so that no one index partition takes every organization's writes.
pub(crate) const OUTBOX_INDEX: &str = "undispatched";
pub(crate) const OUTBOX_BUCKETS: u8 = 8;

pub(crate) fn org_pk(org: OrganizationId) -> String {
    format!("ORG#{org}")
}

pub(crate) fn subscription_sk(id: SubscriptionId) -> String {
    format!("{SUBSCRIPTION_PREFIX}{id}")
}

pub(crate) fn message_sk(id: MessageId) -> String {
    format!("{MESSAGE_PREFIX}{id}")
}

pub(crate) fn attempts_of_message(id: MessageId) -> String {
    format!("{ATTEMPT_PREFIX}{id}#")
}

/// An attempt of a message: under its message, newest last.
pub(crate) fn attempt_sk(message: MessageId, attempt: AttemptId) -> String {
    format!("{ATTEMPT_PREFIX}{message}#{attempt}")
}

/// Where the delivery of a message to a subscription stands.
pub(crate) fn delivery_sk(message: MessageId, subscription: SubscriptionId) -> String {
    format!("{DELIVERY_PREFIX}{message}#{subscription}")
}

/// A delivery's sort key on the subscription index: by message, so by the event's time.
pub(crate) fn delivery_index_sk(message: MessageId) -> String {
    format!("{DELIVERY_PREFIX}{message}")
}

/// The outbox partition of a message (from its id's random bits).
pub(crate) fn outbox_bucket(message: MessageId) -> String {
    format!(
        "B{}",
        message.as_uuid().as_u128() % u128::from(OUTBOX_BUCKETS)
    )
}

/// An instant as the outbox index sorts it (fixed width, so text order is time order).
pub(crate) fn outbox_at(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The partition of a subscription's attempts and deliveries on the index.
pub(crate) fn subscription_index_pk(id: SubscriptionId) -> String {
    format!("{SUBSCRIPTION_PREFIX}{id}")
}

/// When an item written at `at` expires (epoch seconds).
pub(crate) fn expiry(at: DateTime<Utc>) -> AttributeValue {
    n(at.timestamp() + MESSAGE_RETENTION.as_secs() as i64)
}

/// A message as the item the transaction of its change writes. The payload is kept as the JSON
/// text receivers get, byte for byte.
pub(crate) fn message_item(message: &Message) -> Result<Item, StoreError> {
    let payload =
        serde_json::to_string(&message.payload).map_err(|e| StoreError::Backend(Box::new(e)))?;
    Ok(Item::from([
        ("pk".to_owned(), s(org_pk(message.organization_id))),
        ("sk".to_owned(), s(message_sk(message.id))),
        ("kind".to_owned(), s("message")),
        ("id".to_owned(), s(message.id.to_string())),
        (
            "organization_id".to_owned(),
            s(message.organization_id.to_string()),
        ),
        ("event_type".to_owned(), s(&message.event_type)),
        ("payload".to_owned(), s(payload)),
        ("timestamp".to_owned(), s(message.timestamp.to_rfc3339())),
        ("expires_at".to_owned(), expiry(message.timestamp)),
        // In the outbox index until its dispatch is done (the sweep's way to find it).
        ("outbox_bucket".to_owned(), s(outbox_bucket(message.id))),
        ("outbox_at".to_owned(), s(outbox_at(message.timestamp))),
    ]))
}

/// The message of an item [`message_item`] wrote.
pub(crate) fn message_of(item: &Item) -> Result<Message, StoreError> {
    let text = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| StoreError::Backend(format!("a message lacks {name}").into()))
    };
    let bad = |e: &dyn std::fmt::Display| {
        StoreError::Backend(format!("a message is malformed: {e}").into())
    };
    Ok(Message {
        id: text("id")?.parse().map_err(|e| bad(&e))?,
        organization_id: text("organization_id")?.parse().map_err(|e| bad(&e))?,
        event_type: text("event_type")?.clone(),
        payload: serde_json::from_str(text("payload")?).map_err(|e| bad(&e))?,
        timestamp: DateTime::parse_from_rfc3339(text("timestamp")?)
            .map_err(|e| bad(&e))?
            .with_timezone(&Utc),
    })
}

/// The message a stream record's new image holds; `None` for any other item (attempts,
/// deliveries, subscriptions).
pub fn streamed_message(image: serde_dynamo::Item) -> Result<Option<Message>, StoreError> {
    let item: Item = image.into();
    if item
        .get("kind")
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        != Some("message")
    {
        return Ok(None);
    }
    message_of(&item).map(Some)
}

//! Where each delivery stands (`ORG#org | DLV#<message>#<subscription>`), the attempts recorded
//! with it, and the outbox index the sweep reads.

use super::keys::{
    attempt_sk, delivery_index_sk, delivery_sk, expiry, message_of, org_pk, outbox_at,
    subscription_index_pk, ATTEMPT_PREFIX, BY_SUBSCRIPTION_INDEX, OUTBOX_BUCKETS, OUTBOX_INDEX,
};
use super::store::DynamoWebhooks;
use crate::store::{
    applied, backend, build_error, failed_conditions, from_item, key, n, s, to_item, Item,
};
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use chrono::{DateTime, Utc};
use domain::ids::{MessageId, OrganizationId, SubscriptionId};
use domain::ports::StoreError;
use domain::webhooks::{AttemptStatus, DeliveryAttempt, DeliveryState, Message};

/// The condition under which a delivery's state may be written: none stored yet, or a pending
/// one with fewer attempts (`<`), or at most as many (`<=`).
fn steps_on(compare: &str) -> String {
    format!("attribute_not_exists(pk) OR (#status = :pending AND attempts {compare} :attempts)")
}

fn value<T: serde::Serialize>(v: &T) -> Result<AttributeValue, StoreError> {
    serde_dynamo::to_attribute_value(v).map_err(|e| StoreError::Backend(Box::new(e)))
}

/// An item of the message log that the subscription index lists too, kept 30 days from `at`.
fn indexed<T: serde::Serialize>(
    value: &T,
    org: OrganizationId,
    sk: &str,
    subscription: SubscriptionId,
    index_sk: String,
    at: DateTime<Utc>,
) -> Result<Item, StoreError> {
    let mut item = to_item(value, org_pk(org), sk)?;
    item.insert("sub_pk".into(), s(subscription_index_pk(subscription)));
    item.insert("sub_sk".into(), s(index_sk));
    item.insert("expires_at".into(), expiry(at));
    Ok(item)
}

fn delivery_item(org: OrganizationId, state: &DeliveryState) -> Result<Item, StoreError> {
    indexed(
        state,
        org,
        &delivery_sk(state.message_id, state.subscription_id),
        state.subscription_id,
        delivery_index_sk(state.message_id),
        state.updated_at,
    )
}

fn attempt_item(org: OrganizationId, attempt: &DeliveryAttempt) -> Result<Item, StoreError> {
    indexed(
        attempt,
        org,
        &attempt_sk(attempt.message_id, attempt.id),
        attempt.endpoint_id,
        format!("{ATTEMPT_PREFIX}{}", attempt.id),
        attempt.timestamp,
    )
}

impl DynamoWebhooks {
    pub(super) async fn read_delivery(
        &self,
        org: OrganizationId,
        message: MessageId,
        subscription: SubscriptionId,
    ) -> Result<Option<DeliveryState>, StoreError> {
        crate::store::get_item(
            &self.client,
            &self.table,
            org_pk(org),
            &delivery_sk(message, subscription),
        )
        .await?
        .map(from_item)
        .transpose()
    }

    /// The attempt and the delivery's state in one transaction; `false` when the state's
    /// condition failed (nothing written).
    pub(super) async fn write_attempt(
        &self,
        org: OrganizationId,
        attempt: &DeliveryAttempt,
        state: &DeliveryState,
    ) -> Result<bool, StoreError> {
        let attempt_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(attempt_item(org, attempt)?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error)?;
        let state_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(delivery_item(org, state)?))
            .condition_expression(steps_on("<"))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", value(&AttemptStatus::Pending)?)
            .expression_attribute_values(":attempts", n(state.attempts))
            .build()
            .map_err(build_error)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(state_put).build())
            .transact_items(TransactWriteItem::builder().put(attempt_put).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if failed_conditions(&e).first() == Some(&true) => Ok(false),
            Err(e) => Err(backend(e)),
        }
    }

    pub(super) async fn write_failed(
        &self,
        org: OrganizationId,
        state: &DeliveryState,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(delivery_item(org, state)?))
            .condition_expression(steps_on("<="))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", value(&AttemptStatus::Pending)?)
            .expression_attribute_values(":attempts", n(state.attempts))
            .send()
            .await;
        applied(result)
    }

    pub(super) async fn query_unsuccessful(
        &self,
        org: OrganizationId,
        subscription: SubscriptionId,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<DeliveryState>, StoreError> {
        let own = org_pk(org);
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(BY_SUBSCRIPTION_INDEX)
                .key_condition_expression("sub_pk = :pk AND sub_sk BETWEEN :low AND :high")
                .filter_expression("#status <> :success AND pk = :org")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":pk", s(subscription_index_pk(subscription)))
                .expression_attribute_values(
                    ":low",
                    s(delivery_index_sk(MessageId::lowest_at(since))),
                )
                .expression_attribute_values(
                    ":high",
                    s(delivery_index_sk(MessageId::lowest_at(until))),
                )
                .expression_attribute_values(":success", value(&AttemptStatus::Success)?)
                .expression_attribute_values(":org", s(own.clone()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(backend)?;
            for item in out.items.unwrap_or_default() {
                found.push(from_item(item)?);
            }
            match out.last_evaluated_key {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => return Ok(found),
            }
        }
    }

    pub(super) async fn write_restart(
        &self,
        org: OrganizationId,
        read: &DeliveryState,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                org_pk(org),
                &delivery_sk(read.message_id, read.subscription_id),
            )))
            .update_expression("SET #status = :pending, attempts = :zero, updated_at = :at")
            .condition_expression(
                "#status = :status AND attempts = :attempts AND updated_at = :read_at",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", value(&AttemptStatus::Pending)?)
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":at", value(&at)?)
            .expression_attribute_values(":status", value(&read.status)?)
            .expression_attribute_values(":attempts", n(read.attempts))
            .expression_attribute_values(":read_at", value(&read.updated_at)?)
            .send()
            .await;
        applied(result)
    }

    pub(super) async fn leave_outbox(
        &self,
        org: OrganizationId,
        message: MessageId,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(org_pk(org), &super::keys::message_sk(message))))
            .update_expression("REMOVE outbox_bucket, outbox_at")
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        // Gone (past retention): nothing to take out.
        applied(result).map(|_| ())
    }

    /// Oldest first within each outbox partition, the partitions in turn.
    pub(super) async fn read_outbox(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        let mut found = Vec::new();
        for bucket in 0..OUTBOX_BUCKETS {
            let wanted = limit.saturating_sub(found.len());
            if wanted == 0 {
                break;
            }
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(OUTBOX_INDEX)
                .key_condition_expression("outbox_bucket = :bucket AND outbox_at < :before")
                .expression_attribute_values(":bucket", s(format!("B{bucket}")))
                .expression_attribute_values(":before", s(outbox_at(before)))
                .limit(wanted.min(1000) as i32)
                .send()
                .await
                .map_err(backend)?;
            for item in out.items.unwrap_or_default() {
                found.push(message_of(&item)?);
            }
        }
        Ok(found)
    }
}

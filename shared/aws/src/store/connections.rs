//! Source connections (`ORG#o | CONN#id`) and their jobs (`CONN#id | JOB#<uuidv7>`).
//!
//! A create is one transaction: the connection, the collection's connection count (which doubles
//! as the collection-exists condition), the first job and the idempotency result.

use super::collections::CONNECTION_COUNT;
use super::idempotency::{RecordState, LEASE_TOKEN, STATE};
use super::keys::{
    active_slot, collection_sk, connection_item, connection_pk, connection_sk, idempotency_pk,
    job_sk, organization_pk, sweep_bucket, Sweep, CONNECTION_PREFIX, DELETING_AT, META,
    NEXT_RUN_AT, SCHED_BUCKET, STILL_AT_VERSION, SWEEP_AT, SWEEP_BUCKET, VERSION,
};
use super::paging::Filter;
use super::{
    backend, build_error, failed_conditions, from_item, is_condition_failure, n, s, to_item,
    version_of, DynamoStore, Item,
};
use crate::batch::{delete_all, MAX_WRITE_BATCH};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use domain::connection::SourceConnection;
use domain::ids::{ConnectionId, OrganizationId};
use domain::names::ReadableId;
use domain::page::{Page, PageRequest};
use domain::ports::{
    ConnectionStore, NewConnection, SecretVersion, StoreError, Succession, Versioned,
};
use domain::schedule::bucket_of;
use domain::webhooks::Event;
use std::collections::HashMap;

/// What each write of the create transaction stands for, to read cancellation reasons by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    Connection,
    CollectionCount,
    FirstJob,
    IdempotencyResult,
}

impl Write {
    /// The error when this write's condition failed. The first in this order wins when several
    /// failed: a missing collection explains everything else.
    fn error(self) -> StoreError {
        match self {
            Self::CollectionCount => StoreError::CollectionNotFound,
            Self::IdempotencyResult => StoreError::LeaseLost,
            Self::Connection | Self::FirstJob => StoreError::AlreadyExists,
        }
    }

    fn rank(self) -> u8 {
        match self {
            Self::CollectionCount => 0,
            Self::IdempotencyResult => 1,
            Self::Connection => 2,
            Self::FirstJob => 3,
        }
    }
}

/// Records under a connection (jobs and the rest) one delete step removes: 8 batches.
const RECORDS_PAGE: usize = MAX_WRITE_BATCH * 8;

/// The connection of a live (not deleting) connection item.
fn live(item: Item) -> Option<Item> {
    (!item.contains_key(DELETING_AT)).then_some(item)
}

impl DynamoStore {
    pub(crate) fn put_new_write(&self, item: Item) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

/// DynamoDB's idempotency token for the transaction, so that an SDK retry of a create that did
/// commit succeeds instead of failing on its own writes. Unique per attempt: a keyed retry that
/// took the key over carries a new lease token.
fn transaction_token(new: &NewConnection<'_>) -> String {
    match new.idempotency {
        Some((reservation, _)) if (1..=36).contains(&reservation.lease_token.len()) => {
            reservation.lease_token.clone()
        }
        _ => new.connection.id.to_string(),
    }
}

#[async_trait]
impl ConnectionStore for DynamoStore {
    async fn insert_connection(&self, new: NewConnection<'_>) -> Result<(), StoreError> {
        let connection = new.connection;
        let org = connection.organization_id;
        let mut writes = Vec::new();
        let mut items = Vec::new();

        writes.push(Write::Connection);
        items.push(self.put_new_write(connection_item(connection)?)?);

        let collection = ReadableId::parse(&connection.readable_collection_id)
            .map_err(|_| StoreError::CollectionNotFound)?;
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(super::key(
                organization_pk(org),
                &collection_sk(&collection),
            )))
            .update_expression("ADD #count :one")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#count", CONNECTION_COUNT)
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(build_error)?;
        writes.push(Write::CollectionCount);
        items.push(TransactWriteItem::builder().update(count).build());

        if let Some(job) = new.first_job {
            let item = to_item(
                job,
                connection_pk(job.source_connection_id),
                &job_sk(job.id),
            )?;
            writes.push(Write::FirstJob);
            items.push(self.put_new_write(item)?);
            // The first job holds the connection's active-job slot (see `start_job`).
            writes.push(Write::FirstJob);
            items.push(self.put_new_write(active_slot(job))?);
        }

        if let Some((reservation, response)) = new.idempotency {
            let complete = Update::builder()
                .table_name(&self.table)
                .set_key(Some(super::key(
                    idempotency_pk(reservation.organization_id, &reservation.key),
                    META,
                )))
                .update_expression("SET #state = :completed, #response = :response")
                .condition_expression("#lease = :token AND #state = :in_progress")
                .expression_attribute_names("#state", STATE)
                .expression_attribute_names("#response", "response")
                .expression_attribute_names("#lease", LEASE_TOKEN)
                .expression_attribute_values(":completed", s(RecordState::Completed.as_str()))
                .expression_attribute_values(":in_progress", s(RecordState::InProgress.as_str()))
                .expression_attribute_values(":response", s(response))
                .expression_attribute_values(":token", s(&reservation.lease_token))
                .build()
                .map_err(build_error)?;
            writes.push(Write::IdempotencyResult);
            items.push(TransactWriteItem::builder().update(complete).build());
        }

        // After the writes `writes` names: their cancellation reasons line up with it.
        items.extend(self.outbox_items(new.events)?);
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .client_request_token(transaction_token(&new))
            .send()
            .await;
        let e = match result {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
            e.as_service_error()
        {
            let failed = cancelled
                .cancellation_reasons()
                .iter()
                .zip(&writes)
                .filter(|(reason, _)| reason.code() == Some("ConditionalCheckFailed"))
                .map(|(_, write)| *write)
                .min_by_key(|write| write.rank());
            if let Some(write) = failed {
                return Err(write.error());
            }
        }
        Err(backend(e))
    }

    async fn get_connection(
        &self,
        org: OrganizationId,
        id: ConnectionId,
    ) -> Result<Option<SourceConnection>, StoreError> {
        self.get(organization_pk(org), &connection_sk(id))
            .await?
            .and_then(live)
            .map(from_item)
            .transpose()
    }

    async fn list_connections(
        &self,
        org: OrganizationId,
        collection: Option<&ReadableId>,
        page: &PageRequest,
    ) -> Result<Page<SourceConnection>, StoreError> {
        let mut filter = Filter {
            expression: "attribute_not_exists(#deleting)".to_owned(),
            names: HashMap::from([("#deleting".to_owned(), DELETING_AT.to_owned())]),
            values: HashMap::new(),
        };
        if let Some(id) = collection {
            filter.expression.push_str(" AND #collection = :collection");
            filter.names.insert(
                "#collection".to_owned(),
                "readable_collection_id".to_owned(),
            );
            filter
                .values
                .insert(":collection".to_owned(), s(id.as_str()));
        }
        let filter = Some(filter);
        let page = self
            .list_items(organization_pk(org), CONNECTION_PREFIX, filter, page)
            .await?;
        page.try_map(from_item)
    }

    async fn get_versioned(
        &self,
        org: OrganizationId,
        id: ConnectionId,
    ) -> Result<Option<Versioned<SourceConnection>>, StoreError> {
        let Some(item) = self
            .get(organization_pk(org), &connection_sk(id))
            .await?
            .and_then(live)
        else {
            return Ok(None);
        };
        let version = version_of(&item);
        Ok(Some(Versioned {
            value: from_item(item)?,
            version,
        }))
    }

    async fn replace_connection(
        &self,
        connection: &SourceConnection,
        version: u64,
        events: &[Event],
    ) -> Result<(), StoreError> {
        if !events.is_empty() {
            let mut items = vec![self.put_versioned(connection, version)?];
            items.extend(self.outbox_items(events)?);
            return match self.transact(items).await? {
                true => Ok(()),
                false => Err(StoreError::VersionConflict),
            };
        }
        let mut item = connection_item(connection)?;
        item.insert(VERSION.to_owned(), n(version + 1));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(STILL_AT_VERSION)
            .expression_attribute_names("#version", VERSION)
            .expression_attribute_names("#deleting", DELETING_AT)
            .expression_attribute_values(":version", n(version))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(StoreError::VersionConflict),
            Err(e) => Err(backend(e)),
        }
    }

    async fn replace_connection_with_secret(
        &self,
        connection: &SourceConnection,
        version: u64,
        secret: &SecretVersion,
    ) -> Result<(), StoreError> {
        let items = vec![
            self.put_versioned(connection, version)?,
            self.secret_version_mark(connection.id, secret, Succession::Replaces)?,
        ];
        match self.transact(items).await? {
            true => Ok(()),
            false => Err(StoreError::VersionConflict),
        }
    }

    async fn begin_delete(
        &self,
        connection: &SourceConnection,
        version: u64,
        now: DateTime<Utc>,
        events: &[Event],
    ) -> Result<(), StoreError> {
        let org = connection.organization_id;
        let tombstone = Update::builder()
            .table_name(&self.table)
            .set_key(Some(super::key(
                organization_pk(org),
                &connection_sk(connection.id),
            )))
            .update_expression(
                "SET #deleting = :now, #sweep_bucket = :bucket, #sweep_at = :now, #version = :next \
                 REMOVE #sched_bucket, #next_run_at",
            )
            .condition_expression(STILL_AT_VERSION)
            .expression_attribute_names("#deleting", DELETING_AT)
            .expression_attribute_names("#sweep_bucket", SWEEP_BUCKET)
            .expression_attribute_names("#sweep_at", SWEEP_AT)
            .expression_attribute_names("#version", VERSION)
            .expression_attribute_names("#sched_bucket", SCHED_BUCKET)
            .expression_attribute_names("#next_run_at", NEXT_RUN_AT)
            .expression_attribute_values(":now", n(now.timestamp()))
            .expression_attribute_values(
                ":bucket",
                s(sweep_bucket(Sweep::Delete, bucket_of(connection.id))),
            )
            .expression_attribute_values(":version", n(version))
            .expression_attribute_values(":next", n(version + 1))
            .build()
            .map_err(build_error)?;
        let collection = ReadableId::parse(&connection.readable_collection_id)
            .map_err(|_| StoreError::CollectionNotFound)?;
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(super::key(
                organization_pk(org),
                &collection_sk(&collection),
            )))
            .update_expression("ADD #count :minus_one")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#count", CONNECTION_COUNT)
            .expression_attribute_values(":minus_one", n(-1))
            .build()
            .map_err(build_error)?;
        let mut items = vec![
            TransactWriteItem::builder().update(tombstone).build(),
            TransactWriteItem::builder().update(count).build(),
        ];
        items.extend(self.outbox_items(events)?);
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let e = match result {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        match failed_conditions(&e).as_slice() {
            [true, ..] => Err(StoreError::VersionConflict),
            [_, true, ..] => Err(StoreError::CollectionNotFound),
            _ => Err(backend(e)),
        }
    }

    async fn deleting_connection(
        &self,
        org: OrganizationId,
        id: ConnectionId,
    ) -> Result<Option<SourceConnection>, StoreError> {
        let item = self.get(organization_pk(org), &connection_sk(id)).await?;
        item.filter(|item| item.contains_key(DELETING_AT))
            .map(from_item)
            .transpose()
    }

    async fn delete_connection_records(&self, id: ConnectionId) -> Result<bool, StoreError> {
        // Always the first page: what was deleted is gone from the next query.
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(connection_pk(id)))
            .projection_expression("pk, sk")
            .consistent_read(true)
            .limit(RECORDS_PAGE as i32)
            .send()
            .await
            .map_err(backend)?;
        let keys = out.items.unwrap_or_default();
        delete_all(&self.client, &self.table, &keys).await?;
        let more = out.last_evaluated_key.is_some_and(|last| !last.is_empty());
        Ok(!more && keys.len() < RECORDS_PAGE)
    }

    async fn remove_tombstone(
        &self,
        org: OrganizationId,
        id: ConnectionId,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(super::key(organization_pk(org), &connection_sk(id))))
            .condition_expression("attribute_exists(#deleting)")
            .expression_attribute_names("#deleting", DELETING_AT)
            .send()
            .await;
        match result {
            // Already gone (or, impossibly, live again): nothing of the delete is left to do.
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(backend(e)),
        }
    }

    async fn connection_exists(
        &self,
        org: OrganizationId,
        id: ConnectionId,
    ) -> Result<bool, StoreError> {
        Ok(self
            .get(organization_pk(org), &connection_sk(id))
            .await?
            .is_some())
    }
}

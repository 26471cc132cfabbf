//! Sync jobs (`CONN#id | JOB#<uuidv7>`), their leases and checkpoints, the checkpoint's chunks
//! of seen keys (`CONN#id | CKPT#<job>#<n>`) and the connection's sync cursor (`CONN#id |
//! CURSOR`).
//!
//! An ended job's item expires by TTL (`ttl`, epoch seconds) the store's job retention after
//! its end (`JOB_RETENTION_DAYS`, default 90), so a connection's job history stays bounded.
//!
//! A run holds its job under a lease (`lease_holder`, `lease_until` in epoch milliseconds):
//! every write of the run is conditioned on the holder, so a run that lost its job writes
//! nothing. A released lease has `lease_until = 0` and no holder. The outcome is one
//! transaction: the job (whole item, lease and checkpoint gone), the connection at the version
//! the run read, and the cursor.

use super::keys::{
    active_slot, connection_item, connection_pk, connection_sk, job_sk, organization_pk,
    ACTIVE_SLOT, DELETING_AT, JOB_ID, STILL_AT_VERSION, VERSION,
};
use super::marks::mark_update;
use super::paging::{list_items, Order};
use super::{
    backend, build_error, failed_conditions, from_item, is_condition_failure, key, n, s, to_item,
    DynamoStore, Item,
};
use crate::batch::delete_all;
use crate::error::{adapter, boxed};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, ReturnValue, TransactWriteItem, Update,
};
use chrono::{DateTime, Utc};
use domain::connection::{ConnectionStatus, SourceConnection};
use domain::feed::{FeedMark, JobMarks};
use domain::ids::{ConnectionId, JobId};
use domain::job::{Counts, Job, JobClaim, JobStatus, Lease, RunState};
use domain::page::{Page, PageRequest};
use domain::ports::{CursorUpdate, FinishedRun, JobEvents, JobStore, StoreError};
use domain::webhooks::Event;
use serde_json::Value;
use std::collections::HashMap;

const STATUS: &str = "status";
const LEASE_HOLDER: &str = "lease_holder";
const LEASE_UNTIL: &str = "lease_until";
const CHECKPOINT: &str = "checkpoint";
/// How many attempts of the job failed since its run state was saved (see
/// `usecases::sync::attempts`).
const FAILED_ATTEMPTS: &str = "failed_attempts";
const CURSOR: &str = "CURSOR";
/// The table's TTL attribute (epoch seconds): an ended job expires.
const TTL: &str = "ttl";
pub(super) const JOB_PREFIX: &str = "JOB#";
/// Attempts of a claim whose read went stale before its conditional write.
const CLAIM_ATTEMPTS: usize = 3;
/// How many times the job was claimed.
const CLAIMS: &str = "claims";
/// A claim: the job runs under the claimant's lease.
const CLAIM_UPDATE: &str = "SET #status = :status, #holder = :holder, #until = :until, \
     started_at = :started, claims = :claims";
/// ... if it is as it was read and no lease holds it.
const CLAIM_CONDITION: &str =
    "#status = :observed AND (attribute_not_exists(#until) OR #until <= :now)";

/// Frees the slot in the same transaction as the job's end, if `job` holds it (or nobody
/// does: jobs written without one).
fn free_slot(
    table: &str,
    connection: ConnectionId,
    job: JobId,
) -> Result<TransactWriteItem, StoreError> {
    let delete = Delete::builder()
        .table_name(table)
        .set_key(Some(key(connection_pk(connection), ACTIVE_SLOT)))
        .condition_expression("attribute_not_exists(pk) OR #job = :job")
        .expression_attribute_names("#job", JOB_ID)
        .expression_attribute_values(":job", s(job.to_string()))
        .build()
        .map_err(build_error)?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

fn connection_status(status: ConnectionStatus) -> AttributeValue {
    serde_dynamo::to_attribute_value(status).expect("a status serializes")
}

fn checkpoint_prefix(job: JobId) -> String {
    format!("CKPT#{job}#")
}

fn chunk_sk(job: JobId, index: u32) -> String {
    format!("{}{index:06}", checkpoint_prefix(job))
}

fn status_value(status: JobStatus) -> AttributeValue {
    serde_dynamo::to_attribute_value(status).expect("a status serializes")
}

fn instant(at: DateTime<Utc>) -> AttributeValue {
    serde_dynamo::to_attribute_value(at).expect("an instant serializes")
}

fn millis(at: DateTime<Utc>) -> AttributeValue {
    n(at.timestamp_millis())
}

fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)?.as_s().ok().map(String::as_str)
}

/// The counts as `SET` assignments, with their values.
fn counts_update(counts: &Counts, values: &mut HashMap<String, AttributeValue>) -> String {
    let fields = [
        ("entities_inserted", counts.inserted),
        ("entities_updated", counts.updated),
        ("entities_deleted", counts.deleted),
        ("entities_kept", counts.kept),
        ("entities_failed", counts.failed),
    ];
    fields
        .iter()
        .map(|(name, value)| {
            values.insert(format!(":{name}"), n(value));
            format!("{name} = :{name}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn run_state_of(item: &Item) -> Result<Option<RunState>, StoreError> {
    text(item, CHECKPOINT)
        .map(|json| {
            serde_json::from_str(json)
                .map_err(|_| StoreError::Backend(adapter("unreadable saved run state of a job")))
        })
        .transpose()
}

impl DynamoStore {
    /// A job's start in one transaction: `connection` (a condition on, or a write of, the
    /// connection item), then the active-job slot and the job, each put only if new. Which
    /// condition failed says why: `refused` for the connection's, `JobActive` for the slot's.
    async fn write_start(
        &self,
        job: &Job,
        connection: TransactWriteItem,
        refused: StoreError,
        events: &[Event],
    ) -> Result<(), StoreError> {
        let item = to_item(
            job,
            connection_pk(job.source_connection_id),
            &job_sk(job.id),
        )?;
        let mut items = vec![
            connection,
            self.put_new_write(active_slot(job))?,
            self.put_new_write(item)?,
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
            [true, ..] => Err(refused),
            [_, true, ..] => Err(StoreError::JobActive),
            [_, _, true, ..] => Err(StoreError::AlreadyExists),
            _ => Err(backend(e)),
        }
    }

    /// A put of the connection at `version + 1`, on the condition that it is still at
    /// `version` (and live).
    pub(crate) fn put_versioned(
        &self,
        connection: &SourceConnection,
        version: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut item = connection_item(connection)?;
        item.insert(VERSION.to_owned(), n(version + 1));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(STILL_AT_VERSION)
            .expression_attribute_names("#version", VERSION)
            .expression_attribute_names("#deleting", DELETING_AT)
            .expression_attribute_values(":version", n(version))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Every seen-keys chunk item of a job, in index order (only `projection`, if given).
    async fn chunk_items(
        &self,
        connection: ConnectionId,
        job: JobId,
        projection: Option<&str>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(connection_pk(connection)))
                .expression_attribute_values(":prefix", s(checkpoint_prefix(job)))
                .set_projection_expression(projection.map(str::to_owned))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(backend)?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => return Ok(items),
            }
        }
    }

    async fn job_item(
        &self,
        connection: ConnectionId,
        job: JobId,
    ) -> Result<Option<Item>, StoreError> {
        self.get(connection_pk(connection), &job_sk(job)).await
    }

    /// An update of a job item on the condition that `holder` holds its lease.
    async fn update_held(
        &self,
        connection: ConnectionId,
        job: JobId,
        holder: &str,
        expression: String,
        mut values: HashMap<String, AttributeValue>,
        returns: ReturnValue,
    ) -> Result<Option<Item>, StoreError> {
        values.insert(":holder".to_owned(), s(holder));
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(connection_pk(connection), &job_sk(job))))
            .update_expression(expression)
            .condition_expression("#holder = :holder")
            .expression_attribute_names("#holder", LEASE_HOLDER)
            .set_expression_attribute_values(Some(values))
            .return_values(returns)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.attributes),
            Err(e) if is_condition_failure(&e) => Err(StoreError::LeaseLost),
            Err(e) => Err(backend(e)),
        }
    }
}

#[async_trait]
impl JobStore for DynamoStore {
    async fn get_job(
        &self,
        connection: ConnectionId,
        job: JobId,
    ) -> Result<Option<Job>, StoreError> {
        self.job_item(connection, job)
            .await?
            .map(from_item)
            .transpose()
    }

    async fn list_jobs(
        &self,
        connection: ConnectionId,
        page: &PageRequest,
    ) -> Result<Page<Job>, StoreError> {
        let pk = connection_pk(connection);
        let items = list_items(
            &self.client,
            &self.table,
            pk,
            JOB_PREFIX,
            None,
            page,
            Order::Descending,
        )
        .await?;
        items.try_map(from_item)
    }

    async fn feed_marks(&self, connection: ConnectionId) -> Result<Vec<JobMarks>, StoreError> {
        self.newest_marks(connection).await
    }

    async fn start_job(&self, job: &Job, events: &[Event]) -> Result<(), StoreError> {
        let runnable = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(
                organization_pk(job.organization_id),
                &connection_sk(job.source_connection_id),
            )))
            .condition_expression(
                "attribute_exists(pk) AND attribute_not_exists(#deleting) \
                 AND NOT (#status IN (:inactive, :pending_auth, :needs_reauth))",
            )
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_names("#deleting", DELETING_AT)
            .expression_attribute_values(":inactive", connection_status(ConnectionStatus::Inactive))
            .expression_attribute_values(
                ":pending_auth",
                connection_status(ConnectionStatus::PendingAuth),
            )
            .expression_attribute_values(
                ":needs_reauth",
                connection_status(ConnectionStatus::NeedsReauth),
            )
            .build()
            .map_err(build_error)?;
        let runnable = TransactWriteItem::builder()
            .condition_check(runnable)
            .build();
        self.write_start(job, runnable, StoreError::NotRunnable, events)
            .await
    }

    async fn start_scheduled_job(
        &self,
        job: &Job,
        connection: &SourceConnection,
        version: u64,
        events: &[Event],
    ) -> Result<(), StoreError> {
        let advanced = self.put_versioned(connection, version)?;
        self.write_start(job, advanced, StoreError::VersionConflict, events)
            .await
    }

    async fn active_job(&self, connection: ConnectionId) -> Result<Option<JobId>, StoreError> {
        let Some(item) = self.get(connection_pk(connection), ACTIVE_SLOT).await? else {
            return Ok(None);
        };
        text(&item, JOB_ID)
            .and_then(|id| id.parse().ok())
            .map(Some)
            .ok_or_else(|| StoreError::Backend(adapter("unreadable active-job slot")))
    }

    async fn job_run(
        &self,
        connection: ConnectionId,
        job: JobId,
    ) -> Result<Option<(Job, Option<Lease>)>, StoreError> {
        let Some(item) = self.job_item(connection, job).await? else {
            return Ok(None);
        };
        let lease = match (text(&item, LEASE_HOLDER), number(&item, LEASE_UNTIL)) {
            (Some(holder), Some(until)) if until > 0 => {
                DateTime::from_timestamp_millis(until).map(|until| Lease {
                    holder: holder.to_owned(),
                    until,
                })
            }
            _ => None,
        };
        Ok(Some((from_item(item)?, lease)))
    }

    async fn cancel_job(
        &self,
        connection: ConnectionId,
        job: JobId,
        now: DateTime<Utc>,
        events: JobEvents<'_>,
    ) -> Result<Option<Job>, StoreError> {
        for _ in 0..CLAIM_ATTEMPTS {
            let Some(mut stored) = self.get_job(connection, job).await? else {
                return Ok(None);
            };
            let (status, done) = match stored.status {
                JobStatus::Pending => (JobStatus::Cancelled, true),
                JobStatus::Running => (JobStatus::Cancelling, false),
                _ => return Ok(Some(stored)),
            };
            let mut update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(connection_pk(connection), &job_sk(job))))
                .condition_expression("#status = :observed")
                .expression_attribute_names("#status", STATUS)
                .expression_attribute_values(":observed", status_value(stored.status))
                .expression_attribute_values(":status", status_value(status));
            update = if done {
                let expires = (now + self.job_retention).timestamp();
                update
                    .update_expression("SET #status = :status, completed_at = :now, #ttl = :ttl")
                    .expression_attribute_names("#ttl", TTL)
                    .expression_attribute_values(":now", instant(now))
                    .expression_attribute_values(":ttl", n(expires))
            } else {
                update.update_expression("SET #status = :status")
            };
            let mut items = vec![TransactWriteItem::builder()
                .update(update.build().map_err(build_error)?)
                .build()];
            if done {
                items.push(free_slot(&self.table, connection, job)?);
            }
            let mut changed = stored.clone();
            changed.status = status;
            if done {
                changed.completed_at = Some(now);
            }
            items.extend(self.outbox_items(&events(&changed))?);
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await;
            match result {
                Ok(_) => {
                    stored = changed;
                    return Ok(Some(stored));
                }
                // The job moved on (claimed, finished) in between: look again.
                Err(e) if failed_conditions(&e).first() == Some(&true) => continue,
                Err(e) => return Err(backend(e)),
            }
        }
        Err(StoreError::Backend(adapter(
            "the job kept changing during its cancel",
        )))
    }

    async fn claim_job(
        &self,
        connection: ConnectionId,
        job: JobId,
        lease: &Lease,
        now: DateTime<Utc>,
        events: JobEvents<'_>,
    ) -> Result<JobClaim, StoreError> {
        for _ in 0..CLAIM_ATTEMPTS {
            let Some(item) = self.job_item(connection, job).await? else {
                return Ok(JobClaim::Missing);
            };
            let stored: Job = from_item(item.clone())?;
            if stored.status.is_terminal() {
                return Ok(JobClaim::Finished(stored.status));
            }
            let until = number(&item, LEASE_UNTIL).unwrap_or(0);
            if stored.status != JobStatus::Pending && until > now.timestamp_millis() {
                let until = DateTime::from_timestamp_millis(until).unwrap_or(now);
                return Ok(JobClaim::Busy { until });
            }
            let status = match stored.status {
                JobStatus::Pending => JobStatus::Running,
                other => other,
            };
            let started = stored.started_at.unwrap_or(now);
            // The condition makes this claim the only one after the read.
            let claims = number(&item, CLAIMS).unwrap_or(0) + 1;
            let claim = u16::try_from(claims).unwrap_or(u16::MAX);
            let mut claimed = stored.clone();
            claimed.status = status;
            claimed.started_at = Some(started);
            // A pending job starts: its events go with it, in a transaction (which answers no
            // item, so the job is the one read, as changed). A take-over has none.
            let events = match stored.status {
                JobStatus::Pending => events(&claimed),
                _ => Vec::new(),
            };
            let names = HashMap::from([
                ("#status".to_owned(), STATUS.to_owned()),
                ("#holder".to_owned(), LEASE_HOLDER.to_owned()),
                ("#until".to_owned(), LEASE_UNTIL.to_owned()),
            ]);
            let values = HashMap::from([
                (":status".to_owned(), status_value(status)),
                (":observed".to_owned(), status_value(stored.status)),
                (":holder".to_owned(), s(&lease.holder)),
                (":until".to_owned(), millis(lease.until)),
                (":now".to_owned(), millis(now)),
                (":started".to_owned(), instant(started)),
                (":claims".to_owned(), n(claims)),
            ]);
            if !events.is_empty() {
                let update = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(connection_pk(connection), &job_sk(job))))
                    .update_expression(CLAIM_UPDATE)
                    .condition_expression(CLAIM_CONDITION)
                    .set_expression_attribute_names(Some(names))
                    .set_expression_attribute_values(Some(values))
                    .build()
                    .map_err(build_error)?;
                let mut items = vec![TransactWriteItem::builder().update(update).build()];
                items.extend(self.outbox_items(&events)?);
                if !self.transact(items).await? {
                    continue;
                }
                return Ok(JobClaim::Claimed {
                    state: run_state_of(&item)?,
                    job: Box::new(claimed),
                    claim,
                });
            }
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(connection_pk(connection), &job_sk(job))))
                .update_expression(CLAIM_UPDATE)
                .condition_expression(CLAIM_CONDITION)
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(Some(values))
                .return_values(ReturnValue::AllNew)
                .send()
                .await;
            match result {
                Ok(out) => {
                    let item = out.attributes.ok_or_else(|| {
                        StoreError::Backend(adapter("UpdateItem answered no item"))
                    })?;
                    let state = run_state_of(&item)?;
                    return Ok(JobClaim::Claimed {
                        job: Box::new(from_item(item)?),
                        state,
                        claim,
                    });
                }
                Err(e) if is_condition_failure(&e) => continue,
                Err(e) => return Err(backend(e)),
            }
        }
        Err(StoreError::Backend(adapter(
            "the job kept changing during its claim",
        )))
    }

    async fn record_progress(
        &self,
        connection: ConnectionId,
        job: JobId,
        lease: &Lease,
        counts: &Counts,
        mark: Option<&FeedMark>,
    ) -> Result<JobStatus, StoreError> {
        let mut values = HashMap::from([(":until".to_owned(), millis(lease.until))]);
        let set = counts_update(counts, &mut values) + &mark_update(mark, &mut values);
        let item = self
            .update_held(
                connection,
                job,
                &lease.holder,
                format!("SET {set}, lease_until = :until"),
                values,
                ReturnValue::AllNew,
            )
            .await?
            .ok_or_else(|| StoreError::Backend(adapter("UpdateItem answered no item")))?;
        let job: Job = from_item(item)?;
        Ok(job.status)
    }

    async fn save_run_state(
        &self,
        connection: ConnectionId,
        job: JobId,
        holder: &str,
        checkpoint: &RunState,
        keep_until: Option<DateTime<Utc>>,
        mark: Option<&FeedMark>,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(checkpoint).map_err(|e| StoreError::Backend(boxed(e)))?;
        let mut values = HashMap::from([(":checkpoint".to_owned(), s(json))]);
        let set = counts_update(&checkpoint.counts, &mut values) + &mark_update(mark, &mut values);
        let expression = match keep_until {
            Some(until) => {
                values.insert(":until".to_owned(), millis(until));
                format!(
                    "SET {set}, checkpoint = :checkpoint, lease_until = :until \
                     REMOVE {FAILED_ATTEMPTS}"
                )
            }
            None => {
                values.insert(":released".to_owned(), n(0));
                format!(
                    "SET {set}, checkpoint = :checkpoint, lease_until = :released \
                     REMOVE #holder, {FAILED_ATTEMPTS}"
                )
            }
        };
        self.update_held(
            connection,
            job,
            holder,
            expression,
            values,
            ReturnValue::None,
        )
        .await
        .map(|_| ())
    }

    async fn count_failed_attempt(
        &self,
        connection: ConnectionId,
        job: JobId,
        holder: &str,
    ) -> Result<u32, StoreError> {
        let values = HashMap::from([(":one".to_owned(), n(1))]);
        let updated = self
            .update_held(
                connection,
                job,
                holder,
                format!("ADD {FAILED_ATTEMPTS} :one"),
                values,
                ReturnValue::UpdatedNew,
            )
            .await?;
        updated
            .and_then(|item| item.get(FAILED_ATTEMPTS)?.as_n().ok()?.parse().ok())
            .ok_or_else(|| StoreError::Backend(adapter("the count was not returned")))
    }

    async fn release_job(
        &self,
        connection: ConnectionId,
        job: JobId,
        holder: &str,
    ) -> Result<(), StoreError> {
        let values = HashMap::from([(":released".to_owned(), n(0))]);
        let expression = "SET lease_until = :released REMOVE #holder".to_owned();
        match self
            .update_held(
                connection,
                job,
                holder,
                expression,
                values,
                ReturnValue::None,
            )
            .await
        {
            Ok(_) | Err(StoreError::LeaseLost) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn finish_job(&self, run: FinishedRun<'_>) -> Result<(), StoreError> {
        let job = run.job;
        let pk = connection_pk(job.source_connection_id);
        let terminal = [
            JobStatus::Completed,
            JobStatus::Failed,
            JobStatus::Cancelled,
        ];
        let mut ended = to_item(job, pk.clone(), &job_sk(job.id))?;
        let end = job.completed_at.unwrap_or_else(Utc::now);
        ended.insert(TTL.to_owned(), n((end + self.job_retention).timestamp()));
        let mut put_job = Put::builder()
            .table_name(&self.table)
            .set_item(Some(ended))
            .condition_expression("#holder = :holder AND NOT (#status IN (:t0, :t1, :t2))")
            .expression_attribute_names("#holder", LEASE_HOLDER)
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_values(":holder", s(run.holder));
        for (i, status) in terminal.iter().enumerate() {
            put_job = put_job.expression_attribute_values(format!(":t{i}"), status_value(*status));
        }
        let mut items = vec![TransactWriteItem::builder()
            .put(put_job.build().map_err(build_error)?)
            .build()];
        if let Some((connection, version)) = run.connection {
            items.push(self.put_versioned(connection, version)?);
        }
        items.push(free_slot(&self.table, job.source_connection_id, job.id)?);
        match run.cursor {
            CursorUpdate::Keep => {}
            CursorUpdate::Save(cursor) => {
                let mut item = key(pk.clone(), CURSOR);
                item.insert("cursor".to_owned(), s(cursor.to_string()));
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .build()
                    .map_err(build_error)?;
                items.push(TransactWriteItem::builder().put(put).build());
            }
            CursorUpdate::Clear => {
                let delete = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(pk.clone(), CURSOR)))
                    .build()
                    .map_err(build_error)?;
                items.push(TransactWriteItem::builder().delete(delete).build());
            }
        }
        items.extend(self.outbox_items(run.events)?);
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
        let failed = failed_conditions(&e);
        if failed.first() == Some(&true) {
            return Err(StoreError::LeaseLost);
        }
        if failed.get(1) == Some(&true) && run.connection.is_some() {
            return Err(StoreError::VersionConflict);
        }
        Err(backend(e))
    }

    async fn put_seen_chunk(
        &self,
        connection: ConnectionId,
        job: JobId,
        index: u32,
        keys: &[u8],
    ) -> Result<(), StoreError> {
        let mut item = key(connection_pk(connection), &chunk_sk(job, index));
        item.insert("keys".to_owned(), AttributeValue::B(keys.to_vec().into()));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn seen_chunks(
        &self,
        connection: ConnectionId,
        job: JobId,
        count: u32,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let wanted: Vec<String> = (0..count).map(|i| chunk_sk(job, i)).collect();
        // Sort keys order the chunks; any beyond `count` (an unfinished hand-over) are ignored.
        Ok(self
            .chunk_items(connection, job, None)
            .await?
            .into_iter()
            .filter(|item| text(item, "sk").is_some_and(|sk| wanted.iter().any(|w| w == sk)))
            .filter_map(|mut item| match item.remove("keys") {
                Some(AttributeValue::B(keys)) => Some(keys.into_inner()),
                _ => None,
            })
            .collect())
    }

    async fn delete_seen_chunks(
        &self,
        connection: ConnectionId,
        job: JobId,
    ) -> Result<(), StoreError> {
        let keys = self.chunk_items(connection, job, Some("pk, sk")).await?;
        delete_all(&self.client, &self.table, &keys).await
    }

    async fn sync_cursor(&self, connection: ConnectionId) -> Result<Option<Value>, StoreError> {
        let Some(item) = self.get(connection_pk(connection), CURSOR).await? else {
            return Ok(None);
        };
        text(&item, "cursor")
            .map(|json| {
                serde_json::from_str(json)
                    .map_err(|_| StoreError::Backend(adapter("unreadable sync cursor")))
            })
            .transpose()
    }
}

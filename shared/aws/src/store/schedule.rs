//! What the scheduler finds through the two indexes, never by a scan: due schedules in the
//! `due_schedules` index (`sched_bucket` "0".."63", `next_run_at` epoch seconds), which holds
//! the whole connection so that a claim needs no read, and, in the `sweep` index
//! (`sweep_bucket`, `sweep_at` epoch seconds), active-job slots due for a look (`job#<b>`) and
//! tombstones of deletes (`delete#<b>`), keys plus a slot's job and organization. Every write is
//! conditional on the table itself: on the version a claim read, on the sweep time a look read.

use super::keys::{
    connection_pk, parse_connection_key, sweep_bucket, sweep_position_pk, Sweep, ACTIVE_SLOT, META,
    SCHEDULE_INDEX, SWEEP_AT, SWEEP_BUCKET, SWEEP_INDEX,
};
use super::keys::{DELETING_AT, JOB_ID, NEXT_RUN_AT, ORGANIZATION_ID, SCHED_BUCKET};
use super::{backend, from_item, is_condition_failure, key, n, s, version_of, DynamoStore, Item};
use crate::error::adapter;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::ids::{ConnectionId, JobId};
use domain::ports::{ConnectionRef, DueSchedules, JobCheck, ScheduleStore, StoreError, Versioned};

const POSITION: &str = "position";

/// A page's last key in the schedule index as a position: `<next_run_at>|<pk>|<sk>`.
fn key_position(key: &Item) -> Option<String> {
    Some(format!(
        "{}|{}|{}",
        number(key, NEXT_RUN_AT)?,
        text(key, "pk")?,
        text(key, "sk")?
    ))
}

/// The index key a position stands for, in `bucket`; `None` when it is not one of ours.
fn position_key(bucket: &str, position: &str) -> Option<Item> {
    let mut parts = position.splitn(3, '|');
    let at: i64 = parts.next()?.parse().ok()?;
    let (pk, sk) = (parts.next()?, parts.next()?);
    parse_connection_key(pk, sk)?;
    Some(Item::from([
        ("pk".to_owned(), s(pk)),
        ("sk".to_owned(), s(sk)),
        (SCHED_BUCKET.to_owned(), s(bucket)),
        (NEXT_RUN_AT.to_owned(), n(at)),
    ]))
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)?.as_s().ok().map(String::as_str)
}

fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

fn connection_ref(item: &Item) -> Option<ConnectionRef> {
    let (organization_id, connection_id) =
        parse_connection_key(text(item, "pk")?, text(item, "sk")?)?;
    Some(ConnectionRef {
        organization_id,
        connection_id,
    })
}

fn job_check(item: &Item) -> Option<JobCheck> {
    let connection_id = text(item, "pk")?.strip_prefix("CONN#")?.parse().ok()?;
    Some(JobCheck {
        organization_id: text(item, ORGANIZATION_ID)?.parse().ok()?,
        connection_id,
        job_id: text(item, JOB_ID)?.parse().ok()?,
        check_at: DateTime::from_timestamp(number(item, SWEEP_AT)?, 0)?,
    })
}

impl DynamoStore {
    /// Up to `limit` items of one index partition whose sort attribute is at most `until`,
    /// earliest first.
    async fn due(
        &self,
        index: &str,
        (bucket_attr, bucket): (&str, String),
        (at_attr, until): (&str, i64),
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        while items.len() < limit {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression("#bucket = :bucket AND #at <= :until")
                .expression_attribute_names("#bucket", bucket_attr)
                .expression_attribute_names("#at", at_attr)
                .expression_attribute_values(":bucket", s(bucket.clone()))
                .expression_attribute_values(":until", n(until))
                .limit((limit - items.len()) as i32)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(backend)?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => break,
            }
        }
        Ok(items)
    }
}

#[async_trait]
impl ScheduleStore for DynamoStore {
    async fn due_schedules(
        &self,
        bucket: u8,
        now: DateTime<Utc>,
        limit: usize,
        position: Option<&str>,
    ) -> Result<DueSchedules, StoreError> {
        let bucket = bucket.to_string();
        let start = match position {
            Some(position) => Some(
                position_key(&bucket, position)
                    .ok_or_else(|| StoreError::Backend(adapter("not a due-schedule position")))?,
            ),
            None => None,
        };
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(SCHEDULE_INDEX)
            .key_condition_expression("#bucket = :bucket AND #at <= :until")
            .expression_attribute_names("#bucket", SCHED_BUCKET)
            .expression_attribute_names("#at", NEXT_RUN_AT)
            .expression_attribute_values(":bucket", s(bucket))
            .expression_attribute_values(":until", n(now.timestamp()))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(backend)?;
        let next = out
            .last_evaluated_key
            .filter(|last| !last.is_empty())
            .and_then(|last| key_position(&last));
        let connections = out
            .items
            .unwrap_or_default()
            .into_iter()
            .filter(|item| !item.contains_key(DELETING_AT))
            .map(|item| {
                let version = version_of(&item);
                from_item(item).map(|value| Versioned { value, version })
            })
            .collect::<Result<_, _>>()?;
        Ok(DueSchedules { connections, next })
    }

    async fn due_job_checks(
        &self,
        bucket: u8,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<JobCheck>, StoreError> {
        let items = self
            .due(
                SWEEP_INDEX,
                (SWEEP_BUCKET, sweep_bucket(Sweep::Job, bucket)),
                (SWEEP_AT, now.timestamp()),
                limit,
            )
            .await?;
        items
            .iter()
            .map(|item| {
                job_check(item).ok_or_else(|| {
                    StoreError::Backend(adapter("unreadable slot in the sweep index"))
                })
            })
            .collect()
    }

    async fn postpone_job_check(
        &self,
        check: &JobCheck,
        to: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(connection_pk(check.connection_id), ACTIVE_SLOT)))
            .update_expression("SET #at = :to")
            .condition_expression("#at = :from AND #job = :job")
            .expression_attribute_names("#at", SWEEP_AT)
            .expression_attribute_names("#job", JOB_ID)
            .expression_attribute_values(":to", n(to.timestamp()))
            .expression_attribute_values(":from", n(check.check_at.timestamp()))
            .expression_attribute_values(":job", s(check.job_id.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(backend(e)),
        }
    }

    async fn free_slot(&self, connection: ConnectionId, job: JobId) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(connection_pk(connection), ACTIVE_SLOT)))
            .condition_expression("#job = :job")
            .expression_attribute_names("#job", JOB_ID)
            .expression_attribute_values(":job", s(job.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Held by another job now, or already free.
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(backend(e)),
        }
    }

    async fn due_deletes(
        &self,
        bucket: u8,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ConnectionRef>, StoreError> {
        let items = self
            .due(
                SWEEP_INDEX,
                (SWEEP_BUCKET, sweep_bucket(Sweep::Delete, bucket)),
                (SWEEP_AT, before.timestamp()),
                limit,
            )
            .await?;
        Ok(items.iter().filter_map(connection_ref).collect())
    }

    async fn sweep_position(&self, sweep: &str) -> Result<Option<String>, StoreError> {
        let item = self.get(sweep_position_pk(sweep), META).await?;
        Ok(item.and_then(|item| text(&item, POSITION).map(str::to_owned)))
    }

    async fn save_sweep_position(
        &self,
        sweep: &str,
        position: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut item = key(sweep_position_pk(sweep), META);
        if let Some(position) = position {
            item.insert(POSITION.to_owned(), s(position));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }
}

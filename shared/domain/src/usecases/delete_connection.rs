//! `DELETE /source-connections/{id}`: the connection and everything of it — its running job,
//! jobs, entities, secret — goes.
//!
//! The first write turns the connection into a tombstone and drops its collection's connection
//! count, in one transaction: from then on the connection is gone for every reader (404), out of
//! the schedule and refused by `/run`, and its collection may be deleted. The rest is ordered so
//! that each step can be repeated and the tombstone goes last: a running job is asked to stop
//! and waited for, then the entities, the job records and the secret are deleted, then the
//! tombstone. A crash anywhere leaves the tombstone, from which a retried DELETE or the
//! scheduler's sweep finishes the delete.

use super::Platform;
use crate::connection::SourceConnection;
use crate::error::DomainError;
use crate::ids::{ConnectionId, JobId, OrganizationId};
use crate::ports::StoreError;
use crate::usecases::webhooks::outbox::{job_events, JobContext, Outbox};
use crate::webhooks::{Event, EventType};
use std::time::Duration;
use tracing::{info, instrument, warn};

/// How long a DELETE waits for a running job to stop writing (the worker checks between pages).
pub const STOP_WAIT: Duration = Duration::from_secs(15);
/// How long a DELETE spends in all before it answers (API Gateway gives up at 29 s): what is
/// left of a large connection's entities is the sweep's to finish.
pub const REQUEST_BUDGET: Duration = Duration::from_secs(24);
const POLL: Duration = Duration::from_millis(250);
const ATTEMPTS: usize = 8;

/// How far a delete got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteProgress {
    /// Nothing of the connection remains.
    Finished,
    /// Its job is still running (under a live lease): the tombstone stays for the sweep.
    WaitingForRun(JobId),
    /// The time ran out while deleting its entities: the next attempt goes on from there.
    Unfinished,
}

#[instrument(skip_all, fields(organization_id = %org, source_connection_id = %id))]
pub async fn delete_connection(
    platform: &Platform,
    org: OrganizationId,
    id: &str,
) -> Result<SourceConnection, DomainError> {
    let not_found = || DomainError::NotFound(format!("source connection '{id}' not found"));
    let parsed: ConnectionId = id.parse().map_err(|_| not_found())?;
    let deadline = tokio::time::Instant::now() + REQUEST_BUDGET;
    let connection = begin(platform, org, parsed).await?.ok_or_else(not_found)?;
    match finish_delete(platform, &connection, STOP_WAIT, deadline).await {
        Ok(DeleteProgress::Finished) => info!("source connection deleted"),
        Ok(DeleteProgress::WaitingForRun(job)) => {
            info!(job_id = %job, "source connection deleted; its running job has not stopped yet, the sweep removes the rest")
        }
        Ok(DeleteProgress::Unfinished) => {
            info!("source connection deleted; the sweep removes the rest of its entities")
        }
        // The connection is already gone for every reader; the sweep finishes the rest.
        Err(e) => warn!(error = %e, "the delete stopped part-way; the sweep will finish it"),
    }
    Ok(connection)
}

/// Takes the connection out (tombstone and collection count, atomically), or finds the
/// tombstone of a delete that did not finish. `None` when there is neither.
async fn begin(
    platform: &Platform,
    org: OrganizationId,
    id: ConnectionId,
) -> Result<Option<SourceConnection>, DomainError> {
    let store = &platform.store;
    for _ in 0..ATTEMPTS {
        let Some(current) = store
            .get_versioned(org, id)
            .await
            .map_err(DomainError::internal)?
        else {
            return store
                .deleting_connection(org, id)
                .await
                .map_err(DomainError::internal);
        };
        let now = platform.clock.now();
        let events = Outbox::of(platform, org)
            .await
            .record(|| Event::connection(EventType::ConnectionDeleted, &current.value, now));
        match store
            .begin_delete(&current.value, current.version, now, &events)
            .await
        {
            Ok(()) => return Ok(Some(current.value)),
            Err(StoreError::VersionConflict) => continue,
            Err(e) => return Err(DomainError::internal(e)),
        }
    }
    Err(DomainError::Conflict(
        "the connection kept changing while it was being deleted; retry".into(),
    ))
}

/// Every step after the tombstone, each safe to repeat; the tombstone goes last. Waits up to
/// `wait` for a running job to stop, and starts no page of entity deletes after `deadline`.
pub async fn finish_delete(
    platform: &Platform,
    connection: &SourceConnection,
    wait: Duration,
    deadline: tokio::time::Instant,
) -> Result<DeleteProgress, StoreError> {
    let (org, id) = (connection.organization_id, connection.id);
    if let Some(job) = platform.store.active_job(id).await? {
        if !stop_job(platform, connection, job, wait).await? {
            return Ok(DeleteProgress::WaitingForRun(job));
        }
    }
    let mut after: Option<String> = None;
    let mut deleted = 0usize;
    loop {
        if tokio::time::Instant::now() >= deadline {
            info!(source_connection_id = %id, entities = deleted, "entity deletes paused; the next attempt goes on");
            return Ok(DeleteProgress::Unfinished);
        }
        let page = platform.entities.keys(id, after.as_deref()).await?;
        platform.entities.delete(id, &page.keys).await?;
        deleted += page.keys.len();
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    // The change feed's deletion records go too.
    loop {
        if tokio::time::Instant::now() >= deadline {
            return Ok(DeleteProgress::Unfinished);
        }
        if platform.entities.purge_deletions(id).await? == 0 {
            break;
        }
    }
    // The jobs and the rest, a page at a time.
    loop {
        if tokio::time::Instant::now() >= deadline {
            return Ok(DeleteProgress::Unfinished);
        }
        if platform.store.delete_connection_records(id).await? {
            break;
        }
    }
    platform
        .vault
        .delete_connection_secret(org, id)
        .await
        .map_err(|e| StoreError::Backend(Box::new(e)))?;
    platform.store.remove_tombstone(org, id).await?;
    info!(source_connection_id = %id, entities = deleted, "connection data removed");
    Ok(DeleteProgress::Finished)
}

/// Asks the job to stop and waits until nothing writes for it any more: it ended, or no run
/// holds a live lease on it (a run that takes it over finds the connection gone and writes
/// nothing). `false` when a run still holds it after `wait`.
async fn stop_job(
    platform: &Platform,
    deleted: &SourceConnection,
    job: JobId,
    wait: Duration,
) -> Result<bool, StoreError> {
    let store = &platform.store;
    let connection = deleted.id;
    let outbox = Outbox::of(platform, deleted.organization_id).await;
    let context = JobContext::of(platform, outbox, deleted).await;
    store
        .cancel_job(
            connection,
            job,
            platform.clock.now(),
            &job_events(context.as_ref()),
        )
        .await?;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let Some((current, lease)) = store.job_run(connection, job).await? else {
            return Ok(true);
        };
        let held = lease.is_some_and(|l| l.until > platform.clock.now());
        if current.status.is_terminal() || !held {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(POLL).await;
    }
}

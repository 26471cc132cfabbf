//! Starting and stopping syncs: `POST /source-connections/{id}/run` and
//! `POST /source-connections/{id}/jobs/{job_id}/cancel`. Whether a job may start is decided by
//! a condition in the store (one active job per connection), never by a read before a write, so
//! concurrent requests create one job.

use super::connections::get_connection;
use super::jobs::get_job;
use super::Platform;
use crate::connection::{ConnectionStatus, JobDetails, SourceConnection};
use crate::error::DomainError;
use crate::ids::{ConnectionId, JobId, OrganizationId};
use crate::job::{Job, JobStatus, Trigger};
use crate::ports::StoreError;
use crate::usecases::webhooks::outbox::{job_events, JobContext, Outbox};
use tracing::{info, instrument, warn};

/// Why this connection cannot run a job now, if it cannot.
fn refusal(connection: &SourceConnection) -> Option<DomainError> {
    match connection.status {
        ConnectionStatus::Inactive => Some(DomainError::Conflict(
            "the connection is paused; set its status to active to run it".into(),
        )),
        ConnectionStatus::PendingAuth => Some(DomainError::BadRequest(
            "the connection is waiting for authorization; complete the OAuth flow first".into(),
        )),
        ConnectionStatus::NeedsReauth => Some(DomainError::BadRequest(
            "the connection's credentials were rejected; re-authenticate it before running".into(),
        )),
        _ => None,
    }
}

/// Writes of a new job tried while the connection changes under them.
const START_ATTEMPTS: u32 = 3;

fn already_active() -> DomainError {
    DomainError::Conflict(
        "the connection already has a sync job pending, running or cancelling".into(),
    )
}

/// A new manual job, written and then enqueued. A lost message is the scheduler sweep's to
/// repair: the job is answered either way.
#[instrument(skip_all, fields(organization_id = %org, source_connection_id = %connection_id))]
pub async fn run_connection(
    platform: &Platform,
    org: OrganizationId,
    connection_id: &str,
    force_full_sync: bool,
) -> Result<Job, DomainError> {
    let connection = get_connection(platform, org, connection_id).await?;
    if let Some(refused) = refusal(&connection) {
        return Err(refused);
    }
    let mut job = Job::pending(
        JobId::new(),
        org,
        connection.id,
        Trigger::Manual,
        platform.clock.now(),
    );
    job.force_full_sync = force_full_sync;
    let outbox = Outbox::of(platform, org).await;
    let context = JobContext::of(platform, outbox, &connection).await;
    let events: Vec<_> = context.iter().map(|c| c.event(&job)).collect();
    let mut attempts = 0;
    loop {
        match platform.store.start_job(&job, &events).await {
            Ok(()) => break,
            Err(StoreError::JobActive) => return Err(already_active()),
            Err(StoreError::NotRunnable) => {
                // Paused or deleted between the read and the write: say which. Runnable again
                // (a change that came and went): the write is tried again.
                let now = get_connection(platform, org, connection_id).await?;
                if let Some(refused) = refusal(&now) {
                    return Err(refused);
                }
                attempts += 1;
                if attempts == START_ATTEMPTS {
                    return Err(DomainError::Conflict(
                        "the connection kept changing while the run was started; retry".into(),
                    ));
                }
            }
            Err(e) => return Err(DomainError::internal(e)),
        }
    }
    show_last_job(platform, org, connection.id, &job).await;
    if let Err(e) = platform.queue.enqueue(&job.message()).await {
        warn!(job_id = %job.id, error = %e, "could not enqueue the job; the sweep will");
    }
    info!(job_id = %job.id, force_full_sync, "sync job queued");
    Ok(job)
}

/// Stops a job: pending -> cancelled at once, running -> cancelling (the worker stops between
/// pages). 409 on a job that has already ended.
#[instrument(skip_all, fields(organization_id = %org, source_connection_id = %connection_id))]
pub async fn cancel_job(
    platform: &Platform,
    org: OrganizationId,
    connection_id: &str,
    job_id: &str,
) -> Result<Job, DomainError> {
    let ended = |status: JobStatus| {
        DomainError::Conflict(format!("the job has already ended ({})", status.as_str()))
    };
    let before = get_job(platform, org, connection_id, job_id).await?;
    if before.status.is_terminal() {
        return Err(ended(before.status));
    }
    let outbox = Outbox::of(platform, org).await;
    let context = match outbox.recording() {
        true => {
            let connection = get_connection(platform, org, connection_id).await?;
            JobContext::of(platform, outbox, &connection).await
        }
        false => None,
    };
    let job = platform
        .store
        .cancel_job(
            before.source_connection_id,
            before.id,
            platform.clock.now(),
            &job_events(context.as_ref()),
        )
        .await
        .map_err(DomainError::internal)?
        .ok_or_else(|| DomainError::NotFound(format!("sync job '{job_id}' not found")))?;
    match job.status {
        // It ended on its own in between.
        JobStatus::Completed | JobStatus::Failed => return Err(ended(job.status)),
        JobStatus::Cancelled => show_last_job(platform, org, job.source_connection_id, &job).await,
        _ => {}
    }
    info!(job_id = %job.id, status = job.status.as_str(), "sync job cancel requested");
    Ok(job)
}

/// Stops the job `connection` last started, if it has not ended, as [`cancel_job`] does (a
/// pausing connection): the job as it now stands, or `None` when none was active.
pub(crate) async fn stop_active_job(
    platform: &Platform,
    org: OrganizationId,
    connection: &SourceConnection,
) -> Result<Option<Job>, DomainError> {
    let Some(last) = connection.sync.as_ref().and_then(|s| s.last_job.as_ref()) else {
        return Ok(None);
    };
    if last.status.is_terminal() {
        return Ok(None);
    }
    let outbox = Outbox::of(platform, org).await;
    let context = JobContext::of(platform, outbox, connection).await;
    let job = platform
        .store
        .cancel_job(
            connection.id,
            last.id,
            platform.clock.now(),
            &job_events(context.as_ref()),
        )
        .await
        .map_err(DomainError::internal)?;
    let Some(job) = job else {
        return Ok(None);
    };
    if job.status == JobStatus::Cancelled {
        show_last_job(platform, org, connection.id, &job).await;
    }
    info!(job_id = %job.id, status = job.status.as_str(), "the paused connection's job was stopped");
    Ok(Some(job))
}

/// The connection's `sync.last_job` shows `job`; best effort, as the worker rewrites it when
/// the job runs.
async fn show_last_job(platform: &Platform, org: OrganizationId, id: ConnectionId, job: &Job) {
    for _ in 0..3 {
        let current = match platform.store.get_versioned(org, id).await {
            Ok(Some(current)) => current,
            Ok(None) => return,
            Err(e) => {
                warn!(error = %e, "could not read the connection to show its last job");
                return;
            }
        };
        let mut connection = current.value.clone();
        let sync = connection.sync.get_or_insert_with(Default::default);
        sync.last_job = Some(JobDetails::from(job));
        match platform
            .store
            .replace_connection(&connection, current.version, &[])
            .await
        {
            Err(StoreError::VersionConflict) => continue,
            Err(e) => warn!(error = %e, "could not show the connection's last job"),
            Ok(()) => {}
        }
        return;
    }
}

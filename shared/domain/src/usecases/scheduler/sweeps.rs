//! The scheduler's sweeps: what repairs a crash or a lost message (see the module above).

use super::super::delete_connection::{finish_delete, DeleteProgress};
use super::super::sync::summary::{end_job, record_ending, Ending, Outcome};
use super::super::Platform;
use super::{
    TickLimits, TickReport, DELETE_GRACE, LOST_MESSAGE_AFTER, ORPHAN_SECRET_AGE, STUCK_AFTER,
};
use crate::job::{Job, JobStatus, Lease};
use crate::ports::{CursorUpdate, JobCheck, StoreError};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use tracing::{info, warn};

/// The sweep position of the orphan-secret sweep.
const SECRETS_SWEEP: &str = "orphan-secrets";
const WEBHOOK_SECRETS_SWEEP: &str = "orphan-webhook-secrets";

pub(super) async fn check_jobs(
    platform: &Platform,
    bucket: u8,
    now: DateTime<Utc>,
    limits: &TickLimits,
    report: &mut TickReport,
) -> Result<(), StoreError> {
    let due = platform
        .store
        .due_job_checks(bucket, now, limits.job_checks_per_bucket)
        .await?;
    for check in due {
        check_job(platform, &check, now, report).await?;
    }
    Ok(())
}

/// One look at an active job: see the module's documentation.
async fn check_job(
    platform: &Platform,
    check: &JobCheck,
    now: DateTime<Utc>,
    report: &mut TickReport,
) -> Result<(), StoreError> {
    let store = &platform.store;
    let (connection, job_id) = (check.connection_id, check.job_id);
    let run = store.job_run(connection, job_id).await?;
    let (job, lease) = match run {
        Some((job, lease)) if !job.status.is_terminal() => (job, lease),
        _ => {
            store.free_slot(connection, job_id).await?;
            info!(source_connection_id = %connection, job_id = %job_id, "freed the active-job slot of a job that had ended");
            report.freed_slots += 1;
            return Ok(());
        }
    };
    let live_until = lease.as_ref().map(|l| l.until);
    match (job.status, live_until) {
        // Never delivered, or handed over and its continuation lost: send it again.
        (JobStatus::Pending, _) | (_, None) => {
            if !store
                .postpone_job_check(check, now + LOST_MESSAGE_AFTER)
                .await?
            {
                return Ok(());
            }
            match platform.queue.enqueue(&job.message()).await {
                Ok(()) => {
                    info!(source_connection_id = %connection, job_id = %job_id, status = job.status.as_str(), "re-enqueued a job whose message was lost");
                    report.requeued.push(job_id);
                }
                Err(e) => {
                    warn!(job_id = %job_id, error = %e, "could not re-enqueue a job; the next look will")
                }
            }
        }
        (_, Some(until)) if until > now => {
            // A live run: look again once it could be dead.
            store
                .postpone_job_check(check, until + LOST_MESSAGE_AFTER)
                .await?;
        }
        // The run's lease ran out and this is the first look since (the check was due before
        // the lease plus STUCK_AFTER): its invocation died, or lost the lease without another
        // taking it over. Its message is sent again; the worker's claim takes the expired
        // lease over and resumes from the last checkpoint. A cancelling run is just ended.
        (JobStatus::Running, Some(until)) if check.check_at < until + STUCK_AFTER => {
            if !store.postpone_job_check(check, now + STUCK_AFTER).await? {
                return Ok(());
            }
            match platform.queue.enqueue(&job.message()).await {
                Ok(()) => {
                    info!(source_connection_id = %connection, job_id = %job_id, lease_until = %until, "re-enqueued a run whose lease ran out");
                    report.requeued.push(job_id);
                }
                Err(e) => {
                    warn!(job_id = %job_id, error = %e, "could not re-enqueue a run whose lease ran out; the next look will fail it")
                }
            }
        }
        // Still the same dead lease after it was sent again: the run is failed.
        (_, Some(until)) => {
            if !store
                .postpone_job_check(check, now + LOST_MESSAGE_AFTER)
                .await?
            {
                return Ok(());
            }
            let lease = lease.expect("a lease with an end");
            if fail_stuck(platform, job, &lease, until, now).await? {
                report.failed_stuck.push(job_id);
            }
        }
    }
    Ok(())
}

/// Ends a run whose worker died: failed (or cancelled, if it was asked to stop), the connection
/// in `error`, the slot freed, all in the job's finishing transaction.
async fn fail_stuck(
    platform: &Platform,
    mut job: Job,
    lease: &Lease,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let outcome = if job.status == JobStatus::Cancelling {
        Outcome::Cancelled
    } else {
        Outcome::Failed {
            error: format!(
                "the sync worker stopped responding (its lease expired at {})",
                until.to_rfc3339()
            ),
            category: None,
        }
    };
    end_job(&mut job, &outcome, now);
    let ending = Ending {
        job: &job,
        holder: &lease.holder,
        outcome: &outcome,
        tallies: &BTreeMap::new(),
        remaining: None,
        cursor: CursorUpdate::Keep,
        now,
    };
    let finished = record_ending(platform, ending).await;
    match finished {
        Ok(()) => {
            warn!(source_connection_id = %job.source_connection_id, job_id = %job.id, status = job.status.as_str(), "ended a run whose worker stopped responding");
            Ok(true)
        }
        // Taken over by a new delivery in between: it is alive after all.
        Err(StoreError::LeaseLost) => Ok(false),
        // Still moving after every attempt: the next tick looks again.
        Err(StoreError::VersionConflict) => Ok(false),
        Err(e) => Err(e),
    }
}

pub(super) async fn finish_deletes(
    platform: &Platform,
    bucket: u8,
    now: DateTime<Utc>,
    limits: &TickLimits,
    deadline: tokio::time::Instant,
    report: &mut TickReport,
) -> Result<(), StoreError> {
    let due = platform
        .store
        .due_deletes(bucket, now - DELETE_GRACE, limits.deletes_per_bucket)
        .await?;
    for target in due {
        let Some(connection) = platform
            .store
            .deleting_connection(target.organization_id, target.connection_id)
            .await?
        else {
            continue;
        };
        if tokio::time::Instant::now() >= deadline {
            return Ok(());
        }
        match finish_delete(platform, &connection, std::time::Duration::ZERO, deadline).await? {
            DeleteProgress::Finished => {
                info!(source_connection_id = %connection.id, "finished a half-done delete");
                report.deletes_finished += 1;
            }
            DeleteProgress::WaitingForRun(job) => {
                info!(source_connection_id = %connection.id, job_id = %job, "a half-done delete waits for its run to stop");
            }
            DeleteProgress::Unfinished => {
                info!(source_connection_id = %connection.id, "a half-done delete goes on next tick");
            }
        }
    }
    Ok(())
}

pub(super) async fn sweep_secrets(
    platform: &Platform,
    now: DateTime<Utc>,
    limits: &TickLimits,
    report: &mut TickReport,
) -> Result<(), StoreError> {
    let store = &platform.store;
    let position = store.sweep_position(SECRETS_SWEEP).await?;
    let page = match platform
        .vault
        .list_connection_secrets(position.as_deref(), limits.secrets)
        .await
    {
        Ok(page) => page,
        Err(e) if position.is_some() => {
            // A position the vault no longer takes (tokens expire): start over next tick.
            warn!(error = %e, "could not list secrets from the saved position; starting over");
            store.save_sweep_position(SECRETS_SWEEP, None).await?;
            return Ok(());
        }
        Err(e) => return Err(StoreError::Backend(Box::new(e))),
    };
    for secret in &page.secrets {
        if secret.created_at > now - ORPHAN_SECRET_AGE {
            continue;
        }
        let (org, id) = (secret.organization_id, secret.id);
        if store.connection_exists(org, id).await? {
            continue;
        }
        platform
            .vault
            .delete_connection_secret(org, id)
            .await
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        info!(organization_id = %org, source_connection_id = %id, created_at = %secret.created_at, "deleted an orphan connection secret");
        report.orphan_secrets += 1;
    }
    store
        .save_sweep_position(SECRETS_SWEEP, page.next.as_deref())
        .await
}

/// Deletes a page of subscriptions' secrets that have no subscription an hour after they were
/// written (a create that died between the secret and the subscription).
pub(super) async fn sweep_webhook_secrets(
    platform: &Platform,
    now: DateTime<Utc>,
    limits: &TickLimits,
    report: &mut TickReport,
) -> Result<(), StoreError> {
    let store = &platform.store;
    let vault_error = |e| StoreError::Backend(Box::new(e));
    let position = store.sweep_position(WEBHOOK_SECRETS_SWEEP).await?;
    let page = match platform
        .webhook_secrets
        .list_webhook_secrets(position.as_deref(), limits.secrets)
        .await
    {
        Ok(page) => page,
        Err(e) if position.is_some() => {
            warn!(error = %e, "could not list webhook secrets from the saved position; starting over");
            store
                .save_sweep_position(WEBHOOK_SECRETS_SWEEP, None)
                .await?;
            return Ok(());
        }
        Err(e) => return Err(vault_error(e)),
    };
    for secret in &page.secrets {
        if secret.created_at > now - ORPHAN_SECRET_AGE {
            continue;
        }
        let (org, id) = (secret.organization_id, secret.id);
        if platform.webhooks.get_subscription(org, id).await?.is_some() {
            continue;
        }
        platform
            .webhook_secrets
            .delete_webhook_secret(org, id)
            .await
            .map_err(vault_error)?;
        info!(organization_id = %org, subscription_id = %id, created_at = %secret.created_at, "deleted an orphan webhook secret");
        report.orphan_secrets += 1;
    }
    store
        .save_sweep_position(WEBHOOK_SECRETS_SWEEP, page.next.as_deref())
        .await
}

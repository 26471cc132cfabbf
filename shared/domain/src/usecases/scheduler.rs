//! The scheduler's minute tick: start the runs that are due, then the sweeps that repair what a
//! crash or a lost message left behind. Everything is found through the indexes, never by a
//! scan, and each part handles a bounded number of items per tick (the rest waits for the next).
//!
//! - **Due schedules**: each is claimed by replacing the connection at the version read, with
//!   its next run advanced, in the same transaction as the new job and the active-job slot. Two
//!   concurrent ticks cannot both win the version: a schedule fires once. When a job is already
//!   active the run is skipped and the schedule still advances.
//! - **Active jobs** (the slot of each connection is due for a look a few minutes after its job
//!   started, then again after its lease): a pending job whose message was lost is re-enqueued,
//!   and so is a handed-over run whose continuation was lost; a run whose lease expired long ago
//!   is failed (the connection shows `error`); a slot whose job ended or vanished is freed. Each
//!   look first moves the slot's next look by a conditional write, so one tick acts on it.
//! - **Deletes** that stopped part-way (a tombstone older than a couple of minutes) are finished.
//! - **Orphan secrets**: a connection secret older than an hour with no connection (the crash
//!   window between the secret and the transaction of a create) is deleted, a page per tick.
//! - **Orphan webhook secrets**: the same for subscriptions' secrets (a create writes the secret
//!   before the subscription).
//! - **Webhook outbox**: a message the stream did not dispatch within a minute is dispatched
//!   (`webhooks::dispatch::sweep_outbox`).

use super::delete_connection::{finish_delete, DeleteProgress};
use super::sync::summary::{end_job, record_ending, Ending, Outcome};
use super::Platform;
use crate::connection::JobDetails;
use crate::ids::JobId;
use crate::job::{Job, JobStatus, Lease, Trigger};
use crate::ports::{ConnectionRef, CursorUpdate, JobCheck, StoreError};
use crate::schedule::{CronSchedule, BUCKETS};
use crate::usecases::webhooks::outbox::{JobContext, Outbox};
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeMap;
use tracing::{info, instrument, warn};

/// How long a job may wait for its first delivery before its message counts as lost.
pub const LOST_MESSAGE_AFTER: Duration = Duration::minutes(5);
/// How long after its lease ran out a run counts as dead.
pub const STUCK_AFTER: Duration = Duration::minutes(15);
/// How long a tombstone is left to the DELETE that wrote it before the sweep takes it on.
pub const DELETE_GRACE: Duration = Duration::minutes(2);
/// How old a secret without a connection must be before the sweep deletes it.
pub const ORPHAN_SECRET_AGE: Duration = Duration::hours(1);
/// The sweep position of the orphan-secret sweep.
const SECRETS_SWEEP: &str = "orphan-secrets";
const WEBHOOK_SECRETS_SWEEP: &str = "orphan-webhook-secrets";

/// How much one tick handles of each part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickLimits {
    pub schedules_per_bucket: usize,
    pub job_checks_per_bucket: usize,
    pub deletes_per_bucket: usize,
    pub secrets: usize,
    /// Undispatched webhook messages dispatched per tick.
    pub outbox: usize,
    /// How long one tick spends on finishing deletes, all buckets together.
    pub delete_budget: std::time::Duration,
}

impl Default for TickLimits {
    fn default() -> Self {
        Self {
            schedules_per_bucket: 100,
            job_checks_per_bucket: 50,
            deletes_per_bucket: 5,
            secrets: 100,
            outbox: 200,
            delete_budget: std::time::Duration::from_secs(60),
        }
    }
}

/// What a tick did, for its log line and its tests.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TickReport {
    /// Scheduled runs started.
    pub fired: Vec<JobId>,
    /// Due schedules advanced without a run because a job was active.
    pub skipped_active: usize,
    /// Due schedules another tick (or a concurrent write) claimed first.
    pub claimed_elsewhere: usize,
    /// Jobs whose lost message was sent again.
    pub requeued: Vec<JobId>,
    /// Runs failed because their lease expired long ago.
    pub failed_stuck: Vec<JobId>,
    /// Slots freed because their job had ended or vanished.
    pub freed_slots: usize,
    /// Half-done deletes finished.
    pub deletes_finished: usize,
    /// Orphan secrets deleted (connections' and webhook subscriptions').
    pub orphan_secrets: usize,
    /// Webhook messages the stream had not dispatched, dispatched now.
    pub undispatched_messages: usize,
    /// Parts that failed this tick (logged; the next tick tries again).
    pub errors: usize,
}

#[instrument(skip_all)]
pub async fn tick(platform: &Platform, limits: &TickLimits) -> TickReport {
    let mut report = TickReport::default();
    let now = platform.clock.now();
    let delete_deadline = tokio::time::Instant::now() + limits.delete_budget;
    for bucket in 0..BUCKETS {
        if let Err(e) = fire_due(platform, bucket, now, limits, &mut report).await {
            report.errors += 1;
            warn!(bucket, error = %e, "could not start the due schedules of a bucket");
        }
        if let Err(e) = check_jobs(platform, bucket, now, limits, &mut report).await {
            report.errors += 1;
            warn!(bucket, error = %e, "could not sweep the active jobs of a bucket");
        }
        if let Err(e) =
            finish_deletes(platform, bucket, now, limits, delete_deadline, &mut report).await
        {
            report.errors += 1;
            warn!(bucket, error = %e, "could not finish the deletes of a bucket");
        }
    }
    if let Err(e) = sweep_secrets(platform, now, limits, &mut report).await {
        report.errors += 1;
        warn!(error = %e, "could not sweep orphan secrets");
    }
    if let Err(e) = sweep_webhook_secrets(platform, now, limits, &mut report).await {
        report.errors += 1;
        warn!(error = %e, "could not sweep orphan webhook secrets");
    }
    match super::webhooks::dispatch::sweep_outbox(platform, now, limits.outbox).await {
        Ok(swept) => {
            report.undispatched_messages = swept.dispatched.len();
            report.errors += swept.errors;
        }
        Err(e) => {
            report.errors += 1;
            warn!(error = %e, "could not sweep the webhook outbox");
        }
    }
    info!(
        fired = report.fired.len(),
        skipped_active = report.skipped_active,
        claimed_elsewhere = report.claimed_elsewhere,
        requeued = report.requeued.len(),
        failed_stuck = report.failed_stuck.len(),
        freed_slots = report.freed_slots,
        deletes_finished = report.deletes_finished,
        orphan_secrets = report.orphan_secrets,
        undispatched_messages = report.undispatched_messages,
        errors = report.errors,
        "scheduler tick"
    );
    report
}

async fn fire_due(
    platform: &Platform,
    bucket: u8,
    now: DateTime<Utc>,
    limits: &TickLimits,
    report: &mut TickReport,
) -> Result<(), StoreError> {
    let due = platform
        .store
        .due_schedules(bucket, now, limits.schedules_per_bucket)
        .await?;
    for connection in due {
        fire(platform, connection, now, report).await?;
    }
    Ok(())
}

/// Starts one due schedule's run and advances the schedule, once however many ticks try.
async fn fire(
    platform: &Platform,
    target: ConnectionRef,
    now: DateTime<Utc>,
    report: &mut TickReport,
) -> Result<(), StoreError> {
    let store = &platform.store;
    let (org, id) = (target.organization_id, target.connection_id);
    let outbox = Outbox::of(platform, org).await;
    for _ in 0..3 {
        let Some(current) = store.get_versioned(org, id).await? else {
            return Ok(());
        };
        // The index may lag the table: decide on the item itself.
        let Some(due) = current.value.scheduled_run() else {
            return Ok(());
        };
        if due > now {
            report.claimed_elsewhere += 1;
            return Ok(());
        }
        let mut next = current.value.clone();
        let cron = next
            .schedule
            .as_ref()
            .and_then(|s| s.cron.as_deref())
            .and_then(|c| CronSchedule::parse(c).ok());
        if let Some(schedule) = next.schedule.as_mut() {
            schedule.next_run = cron.and_then(|c| c.next_after(now));
        }
        let job = Job::pending(JobId::new(), org, id, Trigger::Scheduled, now);
        let mut with_job = next.clone();
        with_job.sync.get_or_insert_with(Default::default).last_job = Some(JobDetails::from(&job));
        let context = JobContext::of(platform, outbox, &with_job).await;
        let events: Vec<_> = context.iter().map(|c| c.event(&job)).collect();
        match store
            .start_scheduled_job(&job, &with_job, current.version, &events)
            .await
        {
            Ok(()) => {
                info!(source_connection_id = %id, job_id = %job.id, next_run = ?next.schedule.as_ref().and_then(|s| s.next_run), "scheduled run started");
                if let Err(e) = platform.queue.enqueue(&job.message()).await {
                    warn!(job_id = %job.id, error = %e, "could not enqueue the scheduled run; the sweep will");
                }
                report.fired.push(job.id);
                return Ok(());
            }
            Err(StoreError::JobActive) => {
                match store.replace_connection(&next, current.version, &[]).await {
                    Ok(()) => {
                        info!(source_connection_id = %id, "scheduled run skipped: a job is still active");
                        report.skipped_active += 1;
                        return Ok(());
                    }
                    Err(StoreError::VersionConflict) => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(StoreError::VersionConflict) => continue,
            Err(StoreError::NotRunnable) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    report.claimed_elsewhere += 1;
    Ok(())
}

async fn check_jobs(
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

async fn finish_deletes(
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

async fn sweep_secrets(
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
async fn sweep_webhook_secrets(
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

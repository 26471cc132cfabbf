//! The scheduler's minute tick: start the runs that are due, then the sweeps that repair what a
//! crash or a lost message left behind. Everything is found through the indexes, never by a
//! scan, and each part handles a bounded number of items per tick (the rest waits for the next).
//!
//! - **Due schedules** (`claims`): each is claimed by one transaction written on the version
//!   the index returned: the connection with its next run advanced, the new job and the
//!   active-job slot. Two concurrent ticks cannot both win the version: a schedule fires once.
//!   When a job is already active the run is skipped and the schedule still advances. What one
//!   invocation cannot claim within its minute it hands to others in shards of buckets
//!   ([`claim_shard`]), so that every due schedule fires within its minute.
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

mod claims;
mod sweeps;

use super::Platform;
use crate::ids::JobId;
use crate::ports::ScheduleHandOff;
use crate::schedule::{ScheduleShard, BUCKETS};
use chrono::Duration;
use tokio::time::Instant;
use tracing::{info, instrument, warn};

/// How long a job may wait for its first delivery before its message counts as lost.
pub const LOST_MESSAGE_AFTER: Duration = Duration::minutes(5);
/// How long after its lease ran out a run counts as dead.
pub const STUCK_AFTER: Duration = Duration::minutes(15);
/// How long a tombstone is left to the DELETE that wrote it before the sweep takes it on.
pub const DELETE_GRACE: Duration = Duration::minutes(2);
/// How old a secret without a connection must be before the sweep deletes it.
pub const ORPHAN_SECRET_AGE: Duration = Duration::hours(1);
/// How much one tick handles of each part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickLimits {
    /// Due schedules read per index page.
    pub schedule_page: usize,
    /// Buckets claimed at once.
    pub parallel_buckets: usize,
    /// Claims in flight at once in each bucket.
    pub parallel_claims: usize,
    /// When an invocation hands the buckets it has not begun to others.
    pub hand_off_after: std::time::Duration,
    /// When an invocation stops claiming (after the page in flight) and hands off the rest.
    pub claim_budget: std::time::Duration,
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
            schedule_page: 100,
            parallel_buckets: 4,
            parallel_claims: 8,
            hand_off_after: std::time::Duration::from_secs(15),
            claim_budget: std::time::Duration::from_secs(40),
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
    /// Shards of the minute's schedules handed to other invocations.
    pub handed_off: usize,
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

/// The minute's tick (EventBridge's event): claims the due schedules, handing what it cannot
/// claim in time to `hand_off`, then runs the sweeps.
#[instrument(skip_all)]
pub async fn tick(
    platform: &Platform,
    limits: &TickLimits,
    hand_off: Option<&dyn ScheduleHandOff>,
) -> TickReport {
    let started = Instant::now();
    let mut report = TickReport::default();
    claims::fire_due(
        platform,
        limits,
        &ScheduleShard::all(),
        hand_off,
        started,
        &mut report,
    )
    .await;
    sweep(platform, limits, &mut report).await;
    log(&report, "scheduler tick");
    report
}

/// A shard another invocation handed off: claims its due schedules, handing on what it cannot
/// claim in time.
#[instrument(skip_all, fields(from = shard.from, until = shard.until))]
pub async fn claim_shard(
    platform: &Platform,
    limits: &TickLimits,
    shard: &ScheduleShard,
    hand_off: Option<&dyn ScheduleHandOff>,
) -> TickReport {
    let mut report = TickReport::default();
    claims::fire_due(
        platform,
        limits,
        shard,
        hand_off,
        Instant::now(),
        &mut report,
    )
    .await;
    log(&report, "scheduler shard");
    report
}

async fn sweep(platform: &Platform, limits: &TickLimits, report: &mut TickReport) {
    let now = platform.clock.now();
    let delete_deadline = Instant::now() + limits.delete_budget;
    for bucket in 0..BUCKETS {
        if let Err(e) = sweeps::check_jobs(platform, bucket, now, limits, report).await {
            report.errors += 1;
            warn!(bucket, error = %e, "could not sweep the active jobs of a bucket");
        }
        if let Err(e) =
            sweeps::finish_deletes(platform, bucket, now, limits, delete_deadline, report).await
        {
            report.errors += 1;
            warn!(bucket, error = %e, "could not finish the deletes of a bucket");
        }
    }
    if let Err(e) = sweeps::sweep_secrets(platform, now, limits, report).await {
        report.errors += 1;
        warn!(error = %e, "could not sweep orphan secrets");
    }
    if let Err(e) = sweeps::sweep_webhook_secrets(platform, now, limits, report).await {
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
}

fn log(report: &TickReport, message: &'static str) {
    info!(
        fired = report.fired.len(),
        skipped_active = report.skipped_active,
        claimed_elsewhere = report.claimed_elsewhere,
        handed_off = report.handed_off,
        requeued = report.requeued.len(),
        failed_stuck = report.failed_stuck.len(),
        freed_slots = report.freed_slots,
        deletes_finished = report.deletes_finished,
        orphan_secrets = report.orphan_secrets,
        undispatched_messages = report.undispatched_messages,
        errors = report.errors,
        "{message}"
    );
}

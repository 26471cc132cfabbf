//! Claiming the minute's due schedules, bucket by bucket, many at once.
//!
//! A claim is one transaction, written on the condition of the version the index returned: the
//! connection with its next run advanced and the new job as its last, the job, and the
//! active-job slot (plus the outbox's events when the organization has webhook subscriptions).
//! The index projects the whole connection, so no read comes first; a copy the index had not
//! yet brought up to date loses the condition and the claim reads the item and tries again.
//! Two invocations claiming the same bucket fire each schedule once. The messages of a page's
//! runs go out in batches of ten.
//!
//! An invocation takes buckets one after the other, `parallel_buckets` at a time. After
//! `hand_off_after` it hands the buckets it has not begun to other invocations, in shards of
//! `parallel_buckets` buckets; a bucket still unfinished at `claim_budget` is handed off from
//! where it stopped. Each invocation claims at least a page of each bucket it begins, so shards
//! always shrink. Without a hand-off (tests, a stack without the scheduler's queue), the rest
//! waits for the next tick.

use super::super::webhooks::outbox::{JobContext, Outbox};
use super::super::Platform;
use super::{TickLimits, TickReport};
use crate::connection::{JobDetails, SourceConnection};
use crate::ids::{JobId, OrganizationId};
use crate::job::{Job, SyncMessage, Trigger};
use crate::ports::{ScheduleHandOff, StoreError, Versioned};
use crate::schedule::{CronSchedule, ScheduleShard};
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use tokio::time::Instant;
use tracing::{debug, warn};

/// How one claim ended.
enum Claim {
    Fired(SyncMessage),
    SkippedActive,
    ClaimedElsewhere,
    /// Deleted, paused or unscheduled since the index was read.
    Gone,
    Failed,
}

/// What the claims of an invocation share: the clock's minute, the deadlines, and what each
/// organization's events need (read once per invocation, not once per claim).
struct Claims<'a> {
    platform: &'a Platform,
    limits: &'a TickLimits,
    now: DateTime<Utc>,
    hand_off_at: Instant,
    claim_deadline: Instant,
    outboxes: Mutex<HashMap<OrganizationId, Outbox>>,
}

/// What became of one bucket.
#[derive(Default)]
struct BucketReport {
    fired: Vec<JobId>,
    skipped_active: usize,
    claimed_elsewhere: usize,
    errors: usize,
    /// Where the bucket stopped at the claim deadline.
    rest: Option<ScheduleShard>,
}

/// Claims the due schedules of `shard`, handing what it cannot finish to `hand_off`.
pub(super) async fn fire_due(
    platform: &Platform,
    limits: &TickLimits,
    shard: &ScheduleShard,
    hand_off: Option<&dyn ScheduleHandOff>,
    started: Instant,
    report: &mut TickReport,
) {
    let claims = Claims {
        platform,
        limits,
        now: platform.clock.now(),
        hand_off_at: started + limits.hand_off_after,
        claim_deadline: started + limits.claim_budget,
        outboxes: Mutex::default(),
    };
    let next = AtomicUsize::new(usize::from(shard.from));
    let until = shard.until.min(crate::schedule::BUCKETS);
    let worker = || async {
        let mut done = Vec::new();
        loop {
            // Past the hand-off time, a worker that has claimed a bucket takes no more.
            if hand_off.is_some() && !done.is_empty() && Instant::now() >= claims.hand_off_at {
                return done;
            }
            let Ok(bucket) = u8::try_from(next.fetch_add(1, Ordering::SeqCst)) else {
                return done;
            };
            if bucket >= until {
                return done;
            }
            let position = (bucket == shard.from)
                .then(|| shard.position.clone())
                .flatten();
            done.push(claims.bucket(bucket, position, hand_off.is_some()).await);
        }
    };
    let workers = futures::future::join_all((0..limits.parallel_buckets.max(1)).map(|_| worker()));
    tokio::pin!(workers);
    let mut unbegun = None;
    let buckets = match hand_off {
        None => workers.await,
        Some(_) => tokio::select! {
            // Polled first, so that every worker has begun a bucket before any hand-off.
            biased;
            done = &mut workers => done,
            () = tokio::time::sleep_until(claims.hand_off_at) => {
                // Nothing above `until` is ever taken, so swapping it in takes the rest.
                let rest = next.swap(usize::from(until), Ordering::SeqCst);
                unbegun = u8::try_from(rest).ok().filter(|rest| *rest < until);
                workers.await
            }
        },
    };
    if hand_off.is_some() && unbegun.is_none() {
        // The workers stopped taking buckets without the timer's help.
        let rest = next.swap(usize::from(until), Ordering::SeqCst);
        unbegun = u8::try_from(rest).ok().filter(|rest| *rest < until);
    }
    let mut shards = Vec::new();
    if let Some(rest) = unbegun {
        let size = u8::try_from(limits.parallel_buckets.max(1)).unwrap_or(u8::MAX);
        shards.extend(ScheduleShard::split(rest, until, size));
    }
    for bucket in buckets.into_iter().flatten() {
        report.fired.extend(bucket.fired);
        report.skipped_active += bucket.skipped_active;
        report.claimed_elsewhere += bucket.claimed_elsewhere;
        report.errors += bucket.errors;
        shards.extend(bucket.rest);
    }
    if let (Some(hand_off), false) = (hand_off, shards.is_empty()) {
        match hand_off.hand_off(&shards).await {
            Ok(()) => report.handed_off += shards.len(),
            Err(e) => {
                // Their schedules stay due: the next tick claims them.
                report.errors += 1;
                warn!(shards = shards.len(), error = %e, "could not hand off the rest of the minute's schedules");
            }
        }
    }
}

impl Claims<'_> {
    /// Claims one bucket's due schedules page by page, from `position`; stops at the claim
    /// deadline after a page, answering where it stopped when someone can take it on.
    async fn bucket(
        &self,
        bucket: u8,
        mut position: Option<String>,
        can_hand_off: bool,
    ) -> BucketReport {
        let mut report = BucketReport::default();
        let store = &self.platform.store;
        loop {
            let page = match store
                .due_schedules(
                    bucket,
                    self.now,
                    self.limits.schedule_page,
                    position.as_deref(),
                )
                .await
            {
                Ok(page) => page,
                Err(e) => {
                    report.errors += 1;
                    warn!(bucket, error = %e, "could not read the due schedules of a bucket");
                    return report;
                }
            };
            self.learn_outboxes(&page.connections).await;
            let claims: Vec<Claim> = stream::iter(page.connections)
                .map(|connection| self.claim(connection))
                .buffer_unordered(self.limits.parallel_claims.max(1))
                .collect()
                .await;
            let mut messages = Vec::new();
            for claim in claims {
                match claim {
                    Claim::Fired(message) => messages.push(message),
                    Claim::SkippedActive => report.skipped_active += 1,
                    Claim::ClaimedElsewhere => report.claimed_elsewhere += 1,
                    Claim::Gone => {}
                    Claim::Failed => report.errors += 1,
                }
            }
            if let Err(e) = self.platform.queue.enqueue_all(&messages).await {
                warn!(bucket, runs = messages.len(), error = %e, "could not enqueue every scheduled run; the sweep will");
            }
            report.fired.extend(messages.iter().map(|m| m.job_id));
            position = page.next;
            if position.is_none() {
                return report;
            }
            if Instant::now() >= self.claim_deadline {
                if can_hand_off {
                    report.rest = Some(ScheduleShard {
                        from: bucket,
                        until: bucket + 1,
                        position,
                    });
                }
                return report;
            }
        }
    }

    /// Starts one due schedule's run and advances the schedule, once however many invocations
    /// try. The first attempt writes on the index's copy; a conflict reads the item.
    async fn claim(&self, from_index: Versioned<SourceConnection>) -> Claim {
        let store = &self.platform.store;
        let (org, id) = (from_index.value.organization_id, from_index.value.id);
        let outbox = self.outbox(org).await;
        let mut current = Some(from_index);
        for _ in 0..3 {
            let current = match current.take() {
                Some(copy) => copy,
                None => match store.get_versioned(org, id).await {
                    Ok(Some(item)) => item,
                    Ok(None) => return Claim::Gone,
                    Err(e) => {
                        warn!(source_connection_id = %id, error = %e, "could not read a due connection");
                        return Claim::Failed;
                    }
                },
            };
            let Some(due) = current.value.scheduled_run() else {
                return Claim::Gone;
            };
            if due > self.now {
                return Claim::ClaimedElsewhere;
            }
            let next = advanced(&current.value, self.now);
            let job = Job::pending(JobId::new(), org, id, Trigger::Scheduled, self.now);
            let mut with_job = next.clone();
            with_job.sync.get_or_insert_with(Default::default).last_job =
                Some(JobDetails::from(&job));
            let context = JobContext::of(self.platform, outbox, &with_job).await;
            let events: Vec<_> = context.iter().map(|c| c.event(&job)).collect();
            let result = store
                .start_scheduled_job(&job, &with_job, current.version, &events)
                .await;
            match result {
                Ok(()) => {
                    debug!(source_connection_id = %id, job_id = %job.id, next_run = ?next.scheduled_run(), "scheduled run started");
                    return Claim::Fired(job.message());
                }
                Err(StoreError::JobActive) => {
                    match store.replace_connection(&next, current.version, &[]).await {
                        Ok(()) => {
                            debug!(source_connection_id = %id, "scheduled run skipped: a job is still active");
                            return Claim::SkippedActive;
                        }
                        Err(StoreError::VersionConflict) => continue,
                        Err(e) => {
                            warn!(source_connection_id = %id, error = %e, "could not advance a schedule");
                            return Claim::Failed;
                        }
                    }
                }
                Err(StoreError::VersionConflict) => continue,
                Err(StoreError::NotRunnable) => return Claim::Gone,
                Err(e) => {
                    warn!(source_connection_id = %id, error = %e, "could not start a scheduled run");
                    return Claim::Failed;
                }
            }
        }
        Claim::ClaimedElsewhere
    }

    /// Reads, in one request, whether the organizations of a page not met before have webhook
    /// subscriptions. When that fails, each claim asks for its own organization.
    async fn learn_outboxes(&self, page: &[Versioned<SourceConnection>]) {
        let mut unknown: Vec<OrganizationId> = {
            let known = self.outboxes.lock().unwrap_or_else(|p| p.into_inner());
            page.iter()
                .map(|c| c.value.organization_id)
                .filter(|org| !known.contains_key(org))
                .collect()
        };
        unknown.sort_unstable();
        unknown.dedup();
        if unknown.is_empty() {
            return;
        }
        match self
            .platform
            .webhooks
            .organizations_with_subscriptions(&unknown)
            .await
        {
            Ok(with) => {
                let mut known = self.outboxes.lock().unwrap_or_else(|p| p.into_inner());
                for org in unknown {
                    known.insert(org, Outbox::known(with.contains(&org)));
                }
            }
            Err(e) => {
                warn!(organizations = unknown.len(), error = %e, "could not read which organizations have webhook subscriptions");
            }
        }
    }

    async fn outbox(&self, org: OrganizationId) -> Outbox {
        let known = self
            .outboxes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&org)
            .copied();
        if let Some(outbox) = known {
            return outbox;
        }
        let outbox = Outbox::of(self.platform, org).await;
        self.outboxes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(org, outbox);
        outbox
    }
}

/// The connection with its schedule's next run after `now` (none when the cron is unreadable).
fn advanced(connection: &SourceConnection, now: DateTime<Utc>) -> SourceConnection {
    let mut next = connection.clone();
    let cron = next
        .schedule
        .as_ref()
        .and_then(|s| s.cron.as_deref())
        .and_then(|c| CronSchedule::parse(c).ok());
    if let Some(schedule) = next.schedule.as_mut() {
        schedule.next_run = cron.and_then(|c| c.next_after(now));
    }
    next
}

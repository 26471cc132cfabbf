//! The scheduler's tick: due schedules fire once, and the sweeps repair lost messages, dead
//! runs and orphan secrets.

use super::{create, direct_body, setup, with};
use crate::clock::FixedClock;
use crate::connection::{ConnectionStatus, SourceConnection};
use crate::ids::{ConnectionId, OrganizationId};
use crate::job::{JobStatus, Lease, Trigger};
use crate::ports::{CredentialVault, QueueError, ScheduleHandOff, ScheduleStore};
use crate::schedule::ScheduleShard;
use crate::testing::{now, Fakes};
use crate::usecases::scheduler::{claim_shard, tick, TickLimits, TickReport};
use crate::usecases::Platform;
use chrono::{DateTime, Duration, TimeZone, Utc};
use secrecy::SecretString;
use serde_json::json;
use std::sync::Arc;

fn at(f: &Fakes, instant: DateTime<Utc>) -> Platform {
    let mut p = f.platform.clone();
    p.clock = Arc::new(FixedClock(instant));
    p
}

async fn tick_at(f: &Fakes, instant: DateTime<Utc>) -> TickReport {
    tick(&at(f, instant), &TickLimits::default(), None).await
}

/// An hourly connection created without a first sync.
async fn hourly(f: &Fakes, org: OrganizationId) -> SourceConnection {
    let body = with(
        direct_body(),
        json!({"schedule": {"cron": "0 * * * *"}, "sync_immediately": false}),
    );
    create(&f.platform, org, body).await.unwrap().connection
}

fn fifteen() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 15, 0, 0).unwrap()
}

#[tokio::test]
async fn a_due_schedule_fires_once_under_concurrent_ticks_and_advances() {
    let (f, org) = setup().await;
    let c = hourly(&f, org).await;
    assert_eq!(c.schedule.as_ref().unwrap().next_run, Some(fifteen()));
    assert!(tick_at(&f, fifteen() - Duration::seconds(1))
        .await
        .fired
        .is_empty());

    let when = fifteen() + Duration::seconds(20);
    let (a, b) = tokio::join!(tick_at(&f, when), tick_at(&f, when));
    assert_eq!(a.fired.len() + b.fired.len(), 1, "{a:?} {b:?}");
    let jobs = f.store.jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].trigger, Trigger::Scheduled);
    assert_eq!(f.queue.messages(), [jobs[0].message()]);
    let stored = f.store.connection(c.id).unwrap();
    assert_eq!(
        stored.schedule.unwrap().next_run,
        Some(fifteen() + Duration::hours(1)),
        "the next run is planned"
    );
    assert_eq!(stored.sync.unwrap().last_job.unwrap().id, jobs[0].id);
    assert!(tick_at(&f, when).await.fired.is_empty(), "not twice");
}

/// Shards handed off, kept for the test to run.
#[derive(Default)]
struct Handed(std::sync::Mutex<Vec<ScheduleShard>>);

#[async_trait::async_trait]
impl ScheduleHandOff for Handed {
    async fn hand_off(&self, shards: &[ScheduleShard]) -> Result<(), QueueError> {
        self.0.lock().unwrap().extend_from_slice(shards);
        Ok(())
    }
}

/// A tick that cannot claim its minute alone hands the buckets it has not begun to other
/// invocations, and a bucket it could not finish from where it stopped; between them every due
/// schedule fires once, and each gets its message.
#[tokio::test]
async fn a_tick_hands_off_the_buckets_it_cannot_claim_and_every_schedule_fires_once() {
    let unbegun_buckets = TickLimits {
        parallel_buckets: 2,
        hand_off_after: std::time::Duration::ZERO,
        ..TickLimits::default()
    };
    let unfinished_buckets = TickLimits {
        schedule_page: 1,
        claim_budget: std::time::Duration::ZERO,
        ..unbegun_buckets
    };
    hand_off_fires_each_once(unbegun_buckets).await;
    hand_off_fires_each_once(unfinished_buckets).await;
}

async fn hand_off_fires_each_once(hurried: TickLimits) {
    let (f, org) = setup().await;
    let mut connections = Vec::new();
    for _ in 0..40 {
        connections.push(hourly(&f, org).await);
    }
    let platform = at(&f, fifteen() + Duration::seconds(5));
    let handed = Handed::default();
    let first = tick(&platform, &hurried, Some(&handed)).await;
    let mut shards = handed.0.lock().unwrap().split_off(0);
    assert_eq!(first.handed_off, shards.len());
    assert!(!shards.is_empty(), "{first:?}");
    let mut fired = first.fired.len();
    assert!(fired < connections.len(), "{first:?}");
    // Each handed-off shard is taken on by an invocation that itself hands on the rest.
    let mut invocations = 0;
    while let Some(shard) = shards.pop() {
        invocations += 1;
        let report = claim_shard(&platform, &hurried, &shard, Some(&handed)).await;
        assert_eq!(report.errors, 0, "{report:?}");
        fired += report.fired.len();
        shards.extend(handed.0.lock().unwrap().split_off(0));
    }
    assert!(invocations <= 2 * connections.len(), "{invocations}");
    assert_eq!(fired, connections.len());
    let jobs = f.store.jobs();
    assert_eq!(jobs.len(), connections.len());
    let mut ran: Vec<_> = jobs.iter().map(|j| j.source_connection_id).collect();
    ran.sort();
    ran.dedup();
    assert_eq!(ran.len(), connections.len(), "one run per connection");
    assert_eq!(f.queue.messages().len(), connections.len());
    for c in &connections {
        let stored = f.store.connection(c.id).unwrap();
        assert_eq!(
            stored.schedule.unwrap().next_run,
            Some(fifteen() + Duration::hours(1))
        );
    }
}

#[tokio::test]
async fn paused_and_unauthorized_connections_never_fire() {
    let (f, org) = setup().await;
    for status in [ConnectionStatus::Inactive, ConnectionStatus::NeedsReauth] {
        let c = hourly(&f, org).await;
        f.store.edit_connection(c.id, |c| c.status = status);
    }
    for bucket in 0..crate::schedule::BUCKETS {
        let due = f
            .store
            .due_schedules(bucket, fifteen(), 100, None)
            .await
            .unwrap()
            .connections;
        assert!(due.is_empty(), "out of the schedule: {due:?}");
    }
    for hours in 0..3 {
        let report = tick_at(&f, fifteen() + Duration::hours(hours)).await;
        assert!(report.fired.is_empty(), "{report:?}");
    }
    assert!(f.store.jobs().is_empty());
    assert!(f.queue.messages().is_empty());
}

#[tokio::test]
async fn a_schedule_due_while_a_job_runs_is_skipped_and_still_advances() {
    let (f, org) = setup().await;
    let body = with(direct_body(), json!({"schedule": {"cron": "0 * * * *"}}));
    let c = create(&f.platform, org, body).await.unwrap().connection;
    f.queue.drain();
    let report = tick_at(&f, fifteen()).await;
    assert_eq!((report.fired.len(), report.skipped_active), (0, 1));
    assert_eq!(f.store.jobs().len(), 1, "only the first sync");
    assert_eq!(
        f.store.connection(c.id).unwrap().schedule.unwrap().next_run,
        Some(fifteen() + Duration::hours(1))
    );
}

#[tokio::test]
async fn a_lost_message_is_sent_again_once() {
    let (f, org) = setup().await;
    let c = create(&f.platform, org, direct_body())
        .await
        .unwrap()
        .connection;
    f.queue.drain(); // the message is lost
    let job = f.store.jobs()[0].clone();
    assert!(
        tick_at(&f, now() + Duration::minutes(4))
            .await
            .requeued
            .is_empty(),
        "too early"
    );

    let when = now() + Duration::minutes(6);
    let (a, b) = tokio::join!(tick_at(&f, when), tick_at(&f, when));
    assert_eq!(a.requeued.len() + b.requeued.len(), 1, "{a:?} {b:?}");
    assert_eq!(f.queue.messages(), [job.message()]);
    assert!(tick_at(&f, when + Duration::minutes(1))
        .await
        .requeued
        .is_empty());
    assert_eq!(f.queue.messages().len(), 1, "exactly once");
    assert_eq!(f.store.active_slot(c.id), Some(job.id));
}

/// A run whose lease ran out is sent again once (its worker died, or lost the lease to nobody);
/// if it stays dead after that, it is failed.
#[tokio::test]
async fn a_run_whose_worker_died_is_sent_again_then_failed_if_it_stays_dead() {
    let (f, org) = setup().await;
    let c = create(&f.platform, org, direct_body())
        .await
        .unwrap()
        .connection;
    let job = f.store.jobs()[0].clone();
    f.store.edit_job(c.id, job.id, |j| {
        j.status = JobStatus::Running;
        j.started_at = Some(now());
    });
    let lease_end = now() + Duration::minutes(2);
    f.store.set_lease(
        job.id,
        Some(Lease {
            holder: "worker-dead".into(),
            until: lease_end,
        }),
    );
    let sent_before = f.queue.messages().len();
    // A live lease: left alone, looked at again once it could be dead.
    let report = tick_at(&f, now() + Duration::minutes(1)).await;
    assert!(
        report.failed_stuck.is_empty() && report.requeued.is_empty(),
        "{report:?}"
    );

    // Expired: its message is sent again, for a worker to take the lease over and resume.
    let resend_at = lease_end + Duration::minutes(6);
    let report = tick_at(&f, resend_at).await;
    assert_eq!(report.requeued, [job.id], "{report:?}");
    assert!(report.failed_stuck.is_empty());
    assert_eq!(f.queue.messages().len(), sent_before + 1);
    assert_eq!(f.queue.messages().last(), Some(&job.message()));
    assert_eq!(
        f.store.job(c.id, job.id).unwrap().status,
        JobStatus::Running
    );
    assert_eq!(
        f.store.slot_check(c.id),
        Some(resend_at + Duration::minutes(15)),
        "looked at again once the re-sent run could be dead too"
    );

    // Nobody took it: still the same dead lease, so the run is failed.
    let report = tick_at(&f, resend_at + Duration::minutes(16)).await;
    assert_eq!(report.failed_stuck, [job.id], "{report:?}");
    let failed = f.store.job(c.id, job.id).unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert!(failed.error.unwrap().contains("stopped responding"));
    let connection = f.store.connection(c.id).unwrap();
    assert_eq!(connection.status, ConnectionStatus::Error);
    assert_eq!(connection.sync.unwrap().failed_runs, 1);
    assert_eq!(
        f.store.active_slot(c.id),
        None,
        "the slot is free for the next run"
    );
}

#[tokio::test]
async fn a_slot_left_by_an_ended_job_is_freed() {
    let (f, org) = setup().await;
    let c = create(&f.platform, org, direct_body())
        .await
        .unwrap()
        .connection;
    let job = f.store.jobs()[0].clone();
    f.store
        .edit_job(c.id, job.id, |j| j.status = JobStatus::Completed);
    let report = tick_at(&f, now() + Duration::minutes(6)).await;
    assert_eq!(report.freed_slots, 1);
    assert_eq!(f.store.active_slot(c.id), None);
}

#[tokio::test]
async fn only_old_secrets_without_a_connection_are_removed() {
    let (f, org) = setup().await;
    let live = create(&f.platform, org, direct_body())
        .await
        .unwrap()
        .connection;
    let secret = SecretString::from("{\"method\":\"direct\"}".to_owned());
    let (old_orphan, young_orphan) = (ConnectionId::new(), ConnectionId::new());
    for id in [old_orphan, young_orphan] {
        f.vault
            .put_connection_secret(org, id, &secret, &id.to_string())
            .await
            .unwrap();
    }
    let long_ago = now() - Duration::hours(3);
    f.vault.set_created_at(org, old_orphan, long_ago);
    f.vault.set_created_at(org, live.id, long_ago);

    let report = tick_at(&f, now()).await;
    assert_eq!(report.orphan_secrets, 1);
    let left: Vec<ConnectionId> = f.vault.secrets().iter().map(|s| s.connection_id).collect();
    assert!(
        left.contains(&live.id) && left.contains(&young_orphan),
        "{left:?}"
    );
    assert!(!left.contains(&old_orphan));
}

#[tokio::test]
async fn the_secret_sweep_pages_through_the_vault_across_ticks() {
    let (f, org) = setup().await;
    let secret = SecretString::from("{}".to_owned());
    for _ in 0..5 {
        let id = ConnectionId::new();
        f.vault
            .put_connection_secret(org, id, &secret, &id.to_string())
            .await
            .unwrap();
        f.vault.set_created_at(org, id, now() - Duration::hours(2));
    }
    let limits = TickLimits {
        secrets: 2,
        ..TickLimits::default()
    };
    let mut removed = 0;
    for _ in 0..3 {
        removed += tick(&at(&f, now()), &limits, None).await.orphan_secrets;
    }
    assert_eq!(removed, 5);
    assert!(f.vault.secrets().is_empty());
}

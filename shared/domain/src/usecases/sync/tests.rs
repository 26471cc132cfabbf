//! The sync use case against in-memory fakes: change detection, batching, deletion by absence,
//! hand-over and resumption, deferral, failures, cancellation and leases.

use super::*;
use crate::connection::ConnectionStatus;
use crate::entity::{Entity, EntityKey};
use crate::error_category::ErrorCategory;
use crate::ids::OrganizationId;
use crate::job::Job;
use crate::ports::JobStore;
use crate::stream::StreamError;
use crate::testing::{now, platform, Fakes, ScriptedStream};
use crate::usecases::tests::{add_collection, create, direct_body};
use serde_json::json;

fn item(i: usize, version: u32) -> Entity {
    Entity {
        entity_type: if i % 10 == 0 { "folder" } else { "item" }.into(),
        entity_id: format!("{i:04}"),
        title: format!("Item {i}"),
        updated_at: None,
        payload: json!({"i": i, "version": version}),
    }
}

/// `count` entities in pages of `per_page`; entities `changed` have version 1, the rest 0.
fn pages(count: usize, per_page: usize, changed: impl Fn(usize) -> bool) -> Vec<Vec<Entity>> {
    (0..count)
        .map(|i| item(i, u32::from(changed(i))))
        .collect::<Vec<_>>()
        .chunks(per_page)
        .map(<[Entity]>::to_vec)
        .collect()
}

fn far_deadline() -> Instant {
    Instant::now() + Duration::from_secs(900)
}

fn settings() -> SyncSettings {
    SyncSettings {
        progress_interval: Duration::ZERO,
        ..SyncSettings::default()
    }
}

/// A stub connection with its pending first job; the create's message is taken off the queue.
async fn connection() -> (Fakes, OrganizationId, SyncMessage) {
    let f = platform();
    let org = OrganizationId::new();
    add_collection(&f.platform, org, "docs").await;
    create(&f.platform, org, direct_body())
        .await
        .expect("created");
    let message = f.queue.drain().pop().expect("the first job's message");
    (f, org, message)
}

async fn run(f: &Fakes, message: &SyncMessage) -> Handled {
    run_sync(&f.platform, &settings(), message, far_deadline())
        .await
        .expect("no infrastructure failure")
}

/// A new pending job of the connection, as a manual run would create it.
async fn next_job(f: &Fakes, message: &SyncMessage, force_full_sync: bool) -> SyncMessage {
    let mut job = Job::pending(
        crate::ids::JobId::new(),
        message.organization_id,
        message.connection_id,
        crate::job::Trigger::Manual,
        now(),
    );
    job.force_full_sync = force_full_sync;
    f.store.start_job(&job, &[]).await.expect("a new job");
    job.message()
}

fn job(f: &Fakes, message: &SyncMessage) -> Job {
    f.store
        .job(message.connection_id, message.job_id)
        .expect("job")
}

#[tokio::test]
async fn a_first_sync_inserts_everything_and_fills_the_summaries() {
    let (f, _, message) = connection().await;
    f.sources
        .stream(ScriptedStream::pages(pages(60, 20, |_| false)));

    assert_eq!(
        run(&f, &message).await,
        Handled::Finished(JobStatus::Completed)
    );

    let j = job(&f, &message);
    assert_eq!(j.status, JobStatus::Completed);
    assert_eq!((j.entities_inserted, j.entities_kept), (60, 0));
    assert_eq!(j.started_at, Some(now()));
    assert_eq!(j.completed_at, Some(now()));
    let c = f.store.connection(message.connection_id).unwrap();
    assert_eq!(c.status, ConnectionStatus::Active);
    let summary = c.entities.unwrap();
    assert_eq!(summary.total_entities, 60);
    assert_eq!(summary.by_type["folder"].count, 6);
    assert_eq!(summary.by_type["item"].count, 54);
    assert_eq!(summary.by_type["item"].last_updated, Some(now()));
    let sync = c.sync.unwrap();
    assert_eq!(
        (sync.total_runs, sync.successful_runs, sync.failed_runs),
        (1, 1, 0)
    );
    assert_eq!(sync.last_job.unwrap().status, JobStatus::Completed);
    // Nothing was stored before: no lookups, no comparison of stored keys, and the writes are
    // full batches but the last.
    let traffic = f.entities.traffic();
    assert_eq!(traffic.read_requests, 0);
    assert_eq!(traffic.key_pages, 0);
    assert_eq!((traffic.items_written, traffic.write_requests), (60, 3));
}

#[tokio::test]
async fn an_unchanged_resync_writes_nothing_and_a_changed_one_writes_only_the_changes() {
    let (f, _, first) = connection().await;
    f.sources
        .stream(ScriptedStream::pages(pages(100, 30, |_| false)));
    run(&f, &first).await;
    let written = f.entities.traffic().items_written;

    let second = next_job(&f, &first, false).await;
    assert_eq!(
        run(&f, &second).await,
        Handled::Finished(JobStatus::Completed)
    );
    let j = job(&f, &second);
    assert_eq!(
        (j.entities_kept, j.entities_inserted, j.entities_updated),
        (100, 0, 0)
    );
    assert_eq!(
        f.entities.traffic().items_written,
        written,
        "a kept entity is never written"
    );

    f.sources
        .stream(ScriptedStream::pages(pages(100, 30, |i| i % 10 == 3)));
    let third = next_job(&f, &first, false).await;
    let requests = f.entities.traffic().write_requests;
    run(&f, &third).await;
    let j = job(&f, &third);
    assert_eq!((j.entities_updated, j.entities_kept), (10, 90));
    assert_eq!(f.entities.traffic().items_written, written + 10);
    assert_eq!(
        f.entities.traffic().write_requests,
        requests + 1,
        "one batch"
    );
    let c = f.store.connection(first.connection_id).unwrap();
    assert_eq!(c.entities.unwrap().total_entities, 100);
    assert_eq!(c.sync.unwrap().successful_runs, 3);
}

#[tokio::test]
async fn an_entity_yielded_twice_counts_once_and_a_keyless_one_fails() {
    let (f, _, message) = connection().await;
    let mut keyless = item(1, 0);
    keyless.entity_id.clear();
    f.sources.stream(ScriptedStream::pages(vec![
        vec![item(1, 0), item(2, 0), item(1, 0)],
        vec![item(2, 0), keyless],
    ]));
    run(&f, &message).await;
    let j = job(&f, &message);
    assert_eq!((j.entities_inserted, j.entities_failed), (2, 1));
    assert_eq!(f.entities.stored_of(message.connection_id).len(), 2);
}

#[tokio::test]
async fn an_incremental_run_deletes_what_the_source_reports_removed_and_only_that() {
    let (f, _, first) = connection().await;
    f.sources.stream(ScriptedStream {
        incremental: true,
        cursor: Some(json!({"at": 1})),
        ..ScriptedStream::pages(pages(40, 10, |_| false))
    });
    run(&f, &first).await;

    // The source says 3 stored items (one of them twice) and an unknown one are gone, and
    // yields one new item.
    let key = |i: usize| item(i, 0).key().unwrap();
    f.sources.stream(ScriptedStream {
        incremental: true,
        cursor: Some(json!({"at": 2})),
        removed: vec![vec![key(1), key(2), key(999)], vec![key(3), key(2)]],
        ..ScriptedStream::pages(vec![vec![item(40, 0)], vec![]])
    });
    let incremental = next_job(&f, &first, false).await;
    run(&f, &incremental).await;
    let j = job(&f, &incremental);
    assert_eq!((j.entities_inserted, j.entities_deleted), (1, 3));
    let stored: Vec<String> = f
        .entities
        .stored_of(first.connection_id)
        .iter()
        .map(|e| e.entity.entity_id.clone())
        .collect();
    assert_eq!(stored.len(), 38);
    for gone in ["0001", "0002", "0003"] {
        assert!(!stored.contains(&gone.to_owned()), "{gone} deleted");
    }
    let summary = f
        .store
        .connection(first.connection_id)
        .unwrap()
        .entities
        .unwrap();
    assert_eq!(summary.total_entities, 38);
}

#[tokio::test]
async fn within_a_run_the_last_word_on_an_entity_wins() {
    let (f, _, first) = connection().await;
    f.sources.stream(ScriptedStream {
        incremental: true,
        cursor: Some(json!({"at": 1})),
        ..ScriptedStream::pages(pages(40, 10, |_| false))
    });
    run(&f, &first).await;

    // Item 3 is removed, then comes back; new item 50 is yielded, then removed; item 4 is
    // yielded, then removed in a full batch of removals (deleted at once), then comes back.
    let key = |i: usize| item(i, 0).key().unwrap();
    let mut batch: Vec<EntityKey> = (10..35).map(key).collect();
    batch.push(key(4));
    f.sources.stream(ScriptedStream {
        incremental: true,
        cursor: Some(json!({"at": 2})),
        removed: vec![vec![key(3)], vec![key(50)], batch, vec![]],
        ..ScriptedStream::pages(vec![
            vec![item(50, 0), item(4, 0)],
            vec![item(3, 0)],
            vec![],
            vec![item(4, 0)],
        ])
    });
    let incremental = next_job(&f, &first, false).await;
    run(&f, &incremental).await;
    let mut stored: Vec<String> = f
        .entities
        .stored_of(first.connection_id)
        .iter()
        .map(|e| e.entity.entity_id.clone())
        .collect();
    stored.sort();
    let expected: Vec<String> = (0..10).chain(35..40).map(|i| format!("{i:04}")).collect();
    assert_eq!(stored, expected);
}

#[tokio::test]
async fn a_full_sync_deletes_what_the_source_no_longer_has_and_an_incremental_one_does_not() {
    let (f, _, first) = connection().await;
    let script = |count| ScriptedStream {
        incremental: true,
        cursor: Some(json!({"at": count})),
        ..ScriptedStream::pages(pages(count, 10, |_| false))
    };
    f.sources.stream(script(50));
    run(&f, &first).await;
    assert_eq!(f.store.cursor(first.connection_id), Some(json!({"at": 50})));

    // Incremental (a cursor is stored): the 20 it does not yield are not gone.
    f.sources.stream(script(30));
    let incremental = next_job(&f, &first, false).await;
    run(&f, &incremental).await;
    assert_eq!(job(&f, &incremental).entities_deleted, 0);
    assert_eq!(f.entities.stored_of(first.connection_id).len(), 50);
    assert_eq!(
        f.sources.opened().last().unwrap().0,
        Some(json!({"at": 50}))
    );

    // Forced full: exactly the 20 are deleted, after the stream ended.
    let full = next_job(&f, &first, true).await;
    run(&f, &full).await;
    let j = job(&f, &full);
    assert_eq!((j.entities_deleted, j.entities_kept), (20, 30));
    assert_eq!(
        f.sources.opened().last().unwrap().0,
        None,
        "no cursor for a forced full sync"
    );
    let mut left: Vec<String> = f
        .entities
        .stored_of(first.connection_id)
        .iter()
        .map(|e| e.entity.entity_id.clone())
        .collect();
    left.sort();
    assert_eq!(left, (0..30).map(|i| format!("{i:04}")).collect::<Vec<_>>());
    let c = f.store.connection(first.connection_id).unwrap();
    let summary = c.entities.unwrap();
    assert_eq!(summary.total_entities, 30);
    assert_eq!(summary.by_type["folder"].count, 3);
}

#[tokio::test]
async fn a_run_handed_over_across_invocations_ends_exactly_as_one_run() {
    let expected = {
        let (f, _, message) = connection().await;
        f.sources
            .stream(ScriptedStream::pages(pages(95, 10, |_| false)));
        run(&f, &message).await;
        let second = next_job(&f, &message, false).await;
        f.sources
            .stream(ScriptedStream::pages(pages(80, 10, |i| i % 3 == 0)));
        run(&f, &second).await;
        (
            job(&f, &second).counts(),
            f.entities.stored_of(message.connection_id).len(),
        )
    };

    let (f, _, message) = connection().await;
    f.sources
        .stream(ScriptedStream::pages(pages(95, 10, |_| false)));
    run(&f, &message).await;
    let second = next_job(&f, &message, false).await;
    f.sources
        .stream(ScriptedStream::pages(pages(80, 10, |i| i % 3 == 0)));
    let tiny = SyncSettings {
        max_pages_per_invocation: 3,
        ..settings()
    };
    let mut delivery = second.clone();
    let mut invocations = 0;
    loop {
        invocations += 1;
        let handled = run_sync(&f.platform, &tiny, &delivery, far_deadline())
            .await
            .unwrap();
        if handled != Handled::Continued {
            assert_eq!(handled, Handled::Finished(JobStatus::Completed));
            break;
        }
        assert_eq!(job(&f, &second).status, JobStatus::Running);
        assert!(
            f.store.lease(second.job_id).is_none(),
            "the lease is released at hand-over"
        );
        delivery = f.queue.drain().pop().expect("a continuation message");
        assert_eq!(delivery, second);
    }
    // 8 pages of entities and 14 pages of 7 stored keys, 3 pages per invocation.
    assert!(invocations >= 4, "{invocations} invocations");
    let j = job(&f, &second);
    assert_eq!(
        (
            j.counts(),
            f.entities.stored_of(message.connection_id).len()
        ),
        expected
    );
    assert_eq!(j.entities_deleted, 15);
    assert!(f
        .sources
        .opened()
        .iter()
        .skip(2)
        .all(|(_, resume)| resume.is_some()));
    assert_eq!(
        f.store.seen_chunk_count(),
        0,
        "the checkpoint's chunks are removed"
    );
}

#[tokio::test]
async fn a_crashed_run_is_taken_over_and_counts_what_it_already_wrote() {
    let (f, _, message) = connection().await;
    f.sources
        .stream(ScriptedStream::pages(pages(40, 10, |_| false)));
    run(&f, &message).await;
    let second = next_job(&f, &message, false).await;
    f.sources
        .stream(ScriptedStream::pages(pages(40, 10, |i| i < 20)));

    // A run writes the changes of the first two pages, then its process dies.
    let crashed = SyncSettings {
        max_pages_per_invocation: 2,
        ..settings()
    };
    let handled = run_sync(&f.platform, &crashed, &second, far_deadline())
        .await
        .unwrap();
    assert_eq!(handled, Handled::Continued);
    // Lose the hand-over: as if the process died after the writes, before the checkpoint.
    f.queue.drain();
    f.store.set_lease(
        second.job_id,
        Some(Lease {
            holder: "dead".into(),
            until: now() - chrono::Duration::seconds(1),
        }),
    );
    f.store.clear_run_state(second.job_id);

    assert_eq!(
        run(&f, &second).await,
        Handled::Finished(JobStatus::Completed)
    );
    let j = job(&f, &second);
    assert_eq!((j.entities_updated, j.entities_kept), (20, 20));
}

#[tokio::test]
async fn a_rate_limit_defers_the_job_with_a_delay_then_it_completes() {
    let (f, _, message) = connection().await;
    let wait = Duration::from_secs(30);
    f.sources.stream(
        ScriptedStream::pages(pages(30, 10, |_| false))
            .fail_before(2, StreamError::RateLimited { wait }),
    );
    assert_eq!(run(&f, &message).await, Handled::Deferred);
    assert_eq!(f.queue.delays(), [Some(wait)]);
    assert_eq!(job(&f, &message).status, JobStatus::Running);
    assert_eq!(
        job(&f, &message).entities_inserted,
        20,
        "progress kept at the checkpoint"
    );
    let later = f.queue.drain().pop().unwrap();
    assert_eq!(later.not_before, None);

    assert_eq!(
        run(&f, &later).await,
        Handled::Finished(JobStatus::Completed)
    );
    assert_eq!(job(&f, &message).entities_inserted, 30);
    assert_eq!(f.sources.opened()[1].1, Some(json!({"next": 2})));
}

#[tokio::test]
async fn a_wait_longer_than_the_queue_allows_is_chained() {
    let (f, _, message) = connection().await;
    let wait = Duration::from_secs(3600);
    f.sources.stream(
        ScriptedStream::pages(pages(10, 10, |_| false))
            .fail_before(0, StreamError::RateLimited { wait }),
    );
    run(&f, &message).await;
    assert_eq!(f.queue.delays(), [Some(MAX_QUEUE_DELAY)]);
    let later = f.queue.drain().pop().unwrap();
    assert_eq!(later.not_before, Some(now() + wait));

    // Delivered after 15 minutes: still 45 to go, sent on without touching the job.
    assert_eq!(run(&f, &later).await, Handled::Deferred);
    assert_eq!(f.queue.delays(), [Some(MAX_QUEUE_DELAY)]);
    assert_eq!(job(&f, &message).status, JobStatus::Running);
}

#[tokio::test]
async fn rejected_credentials_fail_the_job_and_ask_for_reauthentication() {
    let (f, _, message) = connection().await;
    f.sources.stream(
        ScriptedStream::pages(pages(30, 10, |_| false))
            .fail_before(1, StreamError::Rejected("token revoked".into())),
    );
    assert_eq!(
        run(&f, &message).await,
        Handled::Finished(JobStatus::Failed)
    );
    let j = job(&f, &message);
    assert_eq!(j.error_category, Some(ErrorCategory::ApiKeyInvalid));
    assert_eq!(
        j.error.as_deref(),
        Some("Stub rejected the credentials: token revoked")
    );
    assert_eq!(j.entities_inserted, 10);
    let c = f.store.connection(message.connection_id).unwrap();
    assert_eq!(c.status, ConnectionStatus::NeedsReauth);
    assert_eq!(c.error_category, Some(ErrorCategory::ApiKeyInvalid));
    assert!(!c.auth.authenticated);
    assert_eq!(c.sync.unwrap().failed_runs, 1);
    assert_eq!(c.entities.unwrap().total_entities, 10);
}

#[tokio::test]
async fn an_upstream_failure_fails_the_job_and_marks_the_connection() {
    let (f, _, message) = connection().await;
    f.sources.stream(
        ScriptedStream::pages(pages(30, 10, |_| false))
            .fail_before(0, StreamError::Upstream("answered HTTP 500".into())),
    );
    assert_eq!(
        run(&f, &message).await,
        Handled::Finished(JobStatus::Failed)
    );
    let j = job(&f, &message);
    assert_eq!(j.error.as_deref(), Some("Stub: answered HTTP 500"));
    assert_eq!(j.error_category, None);
    let c = f.store.connection(message.connection_id).unwrap();
    assert_eq!(c.status, ConnectionStatus::Error);
    assert_eq!(c.error_message.as_deref(), Some("Stub: answered HTTP 500"));
    assert_eq!(f.store.cursor(message.connection_id), None);
}

#[tokio::test]
async fn a_cancel_request_stops_the_run_between_pages() {
    let (f, _, message) = connection().await;
    f.sources
        .stream(ScriptedStream::pages(pages(50, 10, |_| false)));
    let halfway = SyncSettings {
        max_pages_per_invocation: 2,
        ..settings()
    };
    run_sync(&f.platform, &halfway, &message, far_deadline())
        .await
        .unwrap();
    f.store
        .edit_job(message.connection_id, message.job_id, |j| {
            j.status = JobStatus::Cancelling
        });
    let next = f.queue.drain().pop().unwrap();
    assert_eq!(
        run(&f, &next).await,
        Handled::Finished(JobStatus::Cancelled)
    );
    let j = job(&f, &message);
    assert_eq!(j.entities_inserted, 20);
    assert_eq!(j.entities_deleted, 0);
    let c = f.store.connection(message.connection_id).unwrap();
    assert_eq!(c.status, ConnectionStatus::Active);
    assert_eq!(
        c.sync.unwrap().last_job.unwrap().status,
        JobStatus::Cancelled
    );
}

#[tokio::test]
async fn a_live_lease_keeps_the_message_for_later_and_an_ended_job_drops_it() {
    let (f, _, message) = connection().await;
    f.sources
        .stream(ScriptedStream::pages(pages(10, 10, |_| false)));
    f.store
        .edit_job(message.connection_id, message.job_id, |j| {
            j.status = JobStatus::Running
        });
    f.store.set_lease(
        message.job_id,
        Some(Lease {
            holder: "another".into(),
            until: now() + chrono::Duration::seconds(60),
        }),
    );
    let handled = run(&f, &message).await;
    assert_eq!(handled, Handled::Busy);
    assert!(handled.retry());
    assert_eq!(f.entities.traffic().items_written, 0);

    f.store.set_lease(message.job_id, None);
    assert_eq!(
        run(&f, &message).await,
        Handled::Finished(JobStatus::Completed)
    );
    let before = f.store.connection(message.connection_id).unwrap();
    assert_eq!(
        run(&f, &message).await,
        Handled::Dropped,
        "a redelivery changes nothing"
    );
    assert_eq!(f.store.connection(message.connection_id).unwrap(), before);
}

#[tokio::test]
async fn a_concurrent_change_to_the_connection_is_not_lost() {
    let (f, _, message) = connection().await;
    f.sources
        .stream(ScriptedStream::pages(pages(10, 10, |_| false)));
    f.store
        .edit_connection(message.connection_id, |c| c.name = "Renamed".into());
    run(&f, &message).await;
    let c = f.store.connection(message.connection_id).unwrap();
    assert_eq!(c.name, "Renamed");
    assert_eq!(c.status, ConnectionStatus::Active);
}

#[tokio::test]
async fn an_infrastructure_failure_retries_the_message_later_and_frees_the_job_at_once() {
    let (f, _, message) = connection().await;
    f.sources
        .stream(ScriptedStream::pages(pages(30, 10, |_| false)));
    f.entities.fail_writes(true);
    let failed = run_sync(&f.platform, &settings(), &message, far_deadline()).await;
    assert!(matches!(failed, Ok(Handled::Deferred)), "{failed:?}");
    assert!(
        f.store.lease(message.job_id).is_none(),
        "released for the next delivery"
    );
    assert_eq!(job(&f, &message).status, JobStatus::Running);
    assert_eq!(f.queue.delays(), [Some(Duration::from_secs(30))]);

    f.entities.fail_writes(false);
    let again = f.queue.drain().pop().unwrap();
    assert_eq!(
        run(&f, &again).await,
        Handled::Finished(JobStatus::Completed)
    );
    assert_eq!(job(&f, &message).entities_inserted, 30);
}

/// A vault that keeps failing before the first page (throttled, unavailable): tried again
/// with a growing backoff, then the job fails, below the queue's redelivery bound.
#[tokio::test]
async fn a_transient_failure_before_the_first_page_is_retried_with_backoff_then_fails() {
    let (f, _, mut message) = connection().await;
    f.vault.fail_get(true);
    let mut delays = Vec::new();
    let last = loop {
        let handled = run_sync(&f.platform, &settings(), &message, far_deadline()).await;
        match handled {
            Ok(Handled::Deferred) => {
                delays.extend(f.queue.delays());
                message = f.queue.drain().pop().expect("the next attempt");
            }
            other => break other,
        }
        assert!(delays.len() < 10, "retried forever");
    };
    assert!(
        matches!(last, Ok(Handled::Finished(JobStatus::Failed))),
        "{last:?}"
    );
    let secs = |s: u64| Some(Duration::from_secs(s));
    assert_eq!(delays, [secs(30), secs(60), secs(120)]);
    let failed = job(&f, &message);
    assert!(
        failed
            .error
            .as_deref()
            .unwrap()
            .contains("failed 4 times in a row"),
        "{failed:?}"
    );
    assert_eq!(
        f.store.connection(message.connection_id).unwrap().status,
        ConnectionStatus::Error
    );
    assert!(f.store.lease(message.job_id).is_none());
}

#[tokio::test]
async fn near_the_deadline_a_run_hands_over_after_at_least_one_page() {
    let (f, _, message) = connection().await;
    f.sources
        .stream(ScriptedStream::pages(pages(30, 10, |_| false)));
    // Less time left than the margin: one page, then a checkpoint and a continuation.
    let deadline = Instant::now() + Duration::from_secs(10);
    let handled = run_sync(&f.platform, &settings(), &message, deadline)
        .await
        .unwrap();
    assert_eq!(handled, Handled::Continued);
    assert_eq!(job(&f, &message).entities_inserted, 10);
    let next = f.queue.drain().pop().unwrap();
    assert_eq!(
        run(&f, &next).await,
        Handled::Finished(JobStatus::Completed)
    );
    assert_eq!(job(&f, &message).entities_inserted, 30);
}

#[test]
fn the_hand_over_margin_is_a_page_a_call_and_the_hand_over() {
    let settings = SyncSettings {
        page_budget: Duration::from_secs(7),
        request_timeout: Duration::from_secs(5),
        hand_over: Duration::from_secs(3),
        ..SyncSettings::default()
    };
    assert_eq!(settings.deadline_margin(), Duration::from_secs(7 + 5 + 3));
    let default = SyncSettings::default();
    assert_eq!(
        default.deadline_margin(),
        default.page_budget + default.request_timeout + default.hand_over
    );
    assert_eq!(
        (
            default.page_budget,
            default.request_timeout,
            default.hand_over
        ),
        (
            Duration::from_secs(20),
            Duration::from_secs(15),
            Duration::from_secs(10)
        )
    );
    assert_eq!(default.deadline_margin(), Duration::from_secs(45));
}

#[test]
fn a_page_budget_never_outlasts_what_the_invocation_leaves() {
    let settings = SyncSettings::default();
    let within = |seconds| settings.page_budget_within(Duration::from_secs(seconds));
    assert_eq!(within(900), Duration::from_secs(20));
    assert_eq!(within(45), Duration::from_secs(20), "exactly the margin");
    // Less than the margin: what is left once a call's timeout and the hand-over are set aside.
    assert_eq!(within(30), Duration::from_secs(5));
    assert_eq!(within(25), Duration::ZERO);
    assert_eq!(within(3), Duration::ZERO);
}

#[tokio::test]
async fn a_stream_is_opened_with_the_page_budget_the_deadline_leaves() {
    let (f, _, message) = connection().await;
    f.sources
        .stream(ScriptedStream::pages(pages(30, 10, |_| false)));
    let deadline = Instant::now() + Duration::from_secs(30);
    let handled = run_sync(&f.platform, &settings(), &message, deadline)
        .await
        .unwrap();
    assert_eq!(handled, Handled::Continued);
    let next = f.queue.drain().pop().unwrap();
    run(&f, &next).await;
    let budgets = f.sources.page_budgets();
    assert_eq!(budgets.len(), 2, "{budgets:?}");
    assert!(
        budgets[0] <= Duration::from_secs(5) && budgets[0] > Duration::from_secs(4),
        "30 s left: 5 s for the page, then a call's timeout and the hand-over: {budgets:?}"
    );
    assert_eq!(
        budgets[1],
        settings().page_budget,
        "a whole invocation left"
    );
}

#[tokio::test]
async fn every_change_takes_a_later_feed_position_and_the_feed_reads_the_net_change() {
    use crate::usecases::changes::{read_changes, ChangeOp, ChangesRequest, FeedStart};
    let (mut f, org, first) = connection().await;
    f.platform.feed.settle = Duration::ZERO;
    let id = first.connection_id.to_string();
    let read = |start| {
        let request = ChangesRequest {
            start,
            limit: 1000,
            filter: None,
            entity_type: None,
        };
        let platform = f.platform.clone();
        let id = id.clone();
        async move { read_changes(&platform, org, &id, &request).await.unwrap() }
    };
    f.sources
        .stream(ScriptedStream::pages(pages(30, 10, |_| false)));
    run(&f, &first).await;
    let before = f.entities.stored_of(first.connection_id);
    let last_first = before.iter().map(|e| e.position).max().unwrap();
    assert!(before.iter().all(|e| e.added == e.position));
    let all = read(FeedStart::Beginning).await;
    assert_eq!(all.changes.len(), 30);
    assert!(all.changes.iter().all(|c| c.op == ChangeOp::Added));
    let cursor = crate::feed::FeedCursor::parse(&all.next_cursor).unwrap();

    // Three changed and five gone: the changed ones move past every earlier write and keep
    // where they were added; the gone ones leave deletion records.
    f.sources
        .stream(ScriptedStream::pages(pages(25, 10, |i| i % 10 == 3)));
    let second = next_job(&f, &first, true).await;
    run(&f, &second).await;
    let after = f.entities.stored_of(first.connection_id);
    for e in after.iter().filter(|e| e.job == second.job_id) {
        assert!(e.position > last_first);
        let earlier = before.iter().find(|b| b.key == e.key).unwrap();
        assert_eq!(e.added, earlier.position);
    }
    let since = read(FeedStart::Cursor(cursor)).await;
    let ops: Vec<(String, ChangeOp)> = since
        .changes
        .iter()
        .map(|c| (c.entity_id.clone(), c.op))
        .collect();
    let mut expected: Vec<(String, ChangeOp)> = [3, 13, 23]
        .iter()
        .map(|i| (format!("{i:04}"), ChangeOp::Updated))
        .collect();
    expected.extend((25..30).map(|i| (format!("{i:04}"), ChangeOp::Deleted)));
    assert_eq!(
        ops, expected,
        "in commit order: the writes, then delete-by-absence"
    );
    assert!(since.changes[3..].iter().all(|c| c.deleted_at.is_some()));
}

//! DELETE: everything of the connection goes, a running job is stopped first, and a delete that
//! stopped part-way is finished by a retry or by the sweep.

use super::{create, direct_body, setup};
use crate::clock::FixedClock;
use crate::entity::Entity;
use crate::error::DomainError;
use crate::ids::{ConnectionId, OrganizationId};
use crate::job::{JobStatus, Lease};
use crate::ports::ConnectionStore;
use crate::testing::{now, Fakes, ScriptedStream};
use crate::usecases::delete_connection::{
    delete_connection, finish_delete, DeleteProgress, STOP_WAIT,
};
use crate::usecases::runs::run_connection;
use crate::usecases::scheduler::{tick, TickLimits};
use crate::usecases::sync::{run_sync, SyncSettings};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// A connection with synced entities, its first job completed.
async fn synced(f: &Fakes, org: OrganizationId) -> ConnectionId {
    let created = create(&f.platform, org, direct_body()).await.unwrap();
    let entities: Vec<Entity> = (0..60)
        .map(|i| Entity {
            entity_type: "item".into(),
            entity_id: format!("{i:03}"),
            title: format!("Item {i}"),
            updated_at: None,
            payload: serde_json::json!({"i": i}),
        })
        .collect();
    f.sources.stream(ScriptedStream::pages(
        entities.chunks(25).map(<[Entity]>::to_vec).collect(),
    ));
    for message in f.queue.drain() {
        let deadline = Instant::now() + Duration::from_secs(60);
        run_sync(&f.platform, &SyncSettings::default(), &message, deadline)
            .await
            .unwrap();
    }
    let id = created.connection.id;
    assert!(
        !f.entities.stored_of(id).is_empty(),
        "the sync stored entities"
    );
    id
}

#[track_caller]
fn assert_gone(f: &Fakes, org: OrganizationId, id: ConnectionId) {
    assert!(f.store.connection(id).is_none(), "connection left");
    assert!(f.store.tombstones().is_empty(), "tombstone left");
    assert!(
        f.store.jobs().iter().all(|j| j.source_connection_id != id),
        "jobs left"
    );
    assert_eq!(f.store.active_slot(id), None, "slot left");
    assert!(f.entities.stored_of(id).is_empty(), "entities left");
    assert!(f.vault.secrets().is_empty(), "secret left");
    assert_eq!(f.store.connection_count(org, "docs"), Some(0));
}

#[tokio::test]
async fn a_delete_removes_everything_and_a_second_one_is_404() {
    let (f, org) = setup().await;
    let id = synced(&f, org).await;
    let before = f.store.connection(id).unwrap();
    let deleted = delete_connection(&f.platform, org, &id.to_string())
        .await
        .unwrap();
    assert_eq!(deleted, before, "answers the connection as it was");
    assert_gone(&f, org, id);
    let again = delete_connection(&f.platform, org, &id.to_string()).await;
    assert!(matches!(again, Err(DomainError::NotFound(_))), "{again:?}");
    let foreign = {
        let other = synced(&f, org).await;
        delete_connection(&f.platform, OrganizationId::new(), &other.to_string()).await
    };
    assert!(matches!(foreign, Err(DomainError::NotFound(_))));
}

#[tokio::test]
async fn a_pending_job_is_cancelled_and_its_message_finds_nothing() {
    let (f, org) = setup().await;
    let id = synced(&f, org).await;
    run_connection(&f.platform, org, &id.to_string(), false)
        .await
        .unwrap();
    delete_connection(&f.platform, org, &id.to_string())
        .await
        .unwrap();
    assert_gone(&f, org, id);
    for message in f.queue.drain() {
        let deadline = Instant::now() + Duration::from_secs(60);
        run_sync(&f.platform, &SyncSettings::default(), &message, deadline)
            .await
            .unwrap();
    }
    assert!(
        f.entities.stored_of(id).is_empty(),
        "the late message wrote nothing"
    );
}

#[tokio::test(start_paused = true)]
async fn a_running_job_is_waited_for_and_otherwise_left_to_the_sweep() {
    let (f, org) = setup().await;
    let id = synced(&f, org).await;
    let job = run_connection(&f.platform, org, &id.to_string(), false)
        .await
        .unwrap();
    // A run holds the job under a live lease and does not stop.
    f.store
        .edit_job(id, job.id, |j| j.status = JobStatus::Running);
    f.store.set_lease(
        job.id,
        Some(Lease {
            holder: "worker-1".into(),
            until: now() + chrono::Duration::minutes(10),
        }),
    );
    let started = Instant::now();
    let deleted = delete_connection(&f.platform, org, &id.to_string())
        .await
        .unwrap();
    assert_eq!(deleted.id, id);
    assert!(
        started.elapsed() >= STOP_WAIT,
        "the delete waited for the run"
    );
    assert_eq!(
        f.store.job(id, job.id).unwrap().status,
        JobStatus::Cancelling,
        "the run was asked to stop"
    );
    assert!(f.store.connection(id).is_none(), "gone for readers at once");
    assert_eq!(f.store.tombstones(), [id]);
    assert!(
        !f.entities.stored_of(id).is_empty(),
        "nothing deleted under a live run"
    );

    // The sweep leaves a young tombstone to its DELETE, and one under a live run alone.
    let later = |minutes| {
        let mut p = f.platform.clone();
        p.clock = Arc::new(FixedClock(now() + chrono::Duration::minutes(minutes)));
        p
    };
    let report = tick(&later(3), &TickLimits::default(), None).await;
    assert_eq!(report.deletes_finished, 0);
    assert_eq!(f.store.tombstones(), [id]);

    // The run stops (its lease released): the sweep finishes the delete.
    f.store.set_lease(job.id, None);
    let report = tick(&later(4), &TickLimits::default(), None).await;
    assert_eq!(report.deletes_finished, 1);
    assert_gone(&f, org, id);
}

#[tokio::test]
async fn a_delete_that_failed_part_way_is_finished_by_a_retry() {
    let (f, org) = setup().await;
    let id = synced(&f, org).await;
    f.store.fail_delete_records(true);
    let first = delete_connection(&f.platform, org, &id.to_string())
        .await
        .unwrap();
    assert_eq!(
        first.id, id,
        "the caller is answered: the connection is gone for readers"
    );
    assert!(f.store.connection(id).is_none());
    assert_eq!(f.store.tombstones(), [id], "the tombstone remains");
    assert_eq!(
        f.store.connection_count(org, "docs"),
        Some(0),
        "the collection is freed"
    );

    f.store.fail_delete_records(false);
    let retried = delete_connection(&f.platform, org, &id.to_string())
        .await
        .unwrap();
    assert_eq!(retried, first);
    assert_gone(&f, org, id);
}

#[tokio::test]
async fn a_failed_first_step_changes_nothing() {
    let (f, org) = setup().await;
    let id = synced(&f, org).await;
    f.store.fail_begin_delete(true);
    let failed = delete_connection(&f.platform, org, &id.to_string()).await;
    assert!(matches!(failed, Err(DomainError::Internal(_))));
    assert!(f.store.connection(id).is_some());
    assert!(!f.entities.stored_of(id).is_empty());
    assert_eq!(f.vault.secrets().len(), 1);
    assert_eq!(f.store.connection_count(org, "docs"), Some(1));
}

#[tokio::test]
async fn a_delete_out_of_time_leaves_the_rest_to_the_sweep() {
    let (f, org) = setup().await;
    let id = synced(&f, org).await;
    let current = f.store.get_versioned(org, id).await.unwrap().unwrap();
    f.store
        .begin_delete(&current.value, current.version, now(), &[])
        .await
        .unwrap();

    // No time left: nothing is deleted and the tombstone stays.
    let spent = tokio::time::Instant::now();
    let progress = finish_delete(&f.platform, &current.value, Duration::ZERO, spent).await;
    assert_eq!(progress.unwrap(), DeleteProgress::Unfinished);
    assert!(!f.entities.stored_of(id).is_empty());
    assert_eq!(f.store.tombstones(), [id]);

    let later = {
        let mut p = f.platform.clone();
        p.clock = Arc::new(FixedClock(now() + chrono::Duration::minutes(5)));
        p
    };
    let no_budget = TickLimits {
        delete_budget: Duration::ZERO,
        ..TickLimits::default()
    };
    assert_eq!(tick(&later, &no_budget, None).await.deletes_finished, 0);
    assert_eq!(
        tick(&later, &TickLimits::default(), None)
            .await
            .deletes_finished,
        1
    );
    assert_gone(&f, org, id);
}

//! Running and cancelling jobs: one active job per connection, decided by the store.

use super::{create, direct_body, setup};
use crate::connection::ConnectionStatus;
use crate::error::DomainError;
use crate::ids::OrganizationId;
use crate::job::{JobStatus, Trigger};
use crate::testing::{Fakes, ScriptedStream};
use crate::usecases::runs::{cancel_job, run_connection};
use crate::usecases::sync::{run_sync, Handled, SyncSettings};
use tokio::time::Instant;

/// A connection whose first job has already completed, and the queue emptied.
async fn synced() -> (Fakes, OrganizationId, String) {
    let (f, org) = setup().await;
    let created = create(&f.platform, org, direct_body()).await.unwrap();
    f.sources.stream(ScriptedStream::default());
    for message in f.queue.drain() {
        let deadline = Instant::now() + std::time::Duration::from_secs(60);
        let handled = run_sync(&f.platform, &SyncSettings::default(), &message, deadline)
            .await
            .unwrap();
        assert_eq!(handled, Handled::Finished(JobStatus::Completed));
    }
    (f, org, created.connection.id.to_string())
}

#[tokio::test]
async fn a_run_is_queued_and_a_second_one_waits_for_it_to_end() {
    let (f, org, id) = synced().await;
    let job = run_connection(&f.platform, org, &id, true).await.unwrap();
    assert_eq!(
        (job.status, job.trigger, job.force_full_sync),
        (JobStatus::Pending, Trigger::Manual, true)
    );
    assert_eq!(f.queue.messages(), [job.message()]);
    let c = f.store.connection(job.source_connection_id).unwrap();
    assert_eq!(c.sync.unwrap().last_job.unwrap().id, job.id);

    let again = run_connection(&f.platform, org, &id, false).await;
    assert!(matches!(again, Err(DomainError::Conflict(_))), "{again:?}");
    assert_eq!(f.queue.messages().len(), 1, "nothing more was queued");
}

#[tokio::test]
async fn a_paused_or_unauthorized_connection_does_not_run() {
    let (f, org, id) = synced().await;
    let connection = id.parse().unwrap();
    for (status, conflict) in [
        (ConnectionStatus::Inactive, true),
        (ConnectionStatus::NeedsReauth, false),
        (ConnectionStatus::PendingAuth, false),
    ] {
        f.store.edit_connection(connection, |c| c.status = status);
        let refused = run_connection(&f.platform, org, &id, false).await;
        match refused {
            Err(DomainError::Conflict(_)) if conflict => {}
            Err(DomainError::BadRequest(_)) if !conflict => {}
            other => panic!("{status:?}: {other:?}"),
        }
    }
    assert!(f.queue.messages().is_empty());
    assert!(matches!(
        run_connection(&f.platform, OrganizationId::new(), &id, false).await,
        Err(DomainError::NotFound(_))
    ));
}

#[tokio::test]
async fn a_pending_job_is_cancelled_at_once_and_frees_the_connection() {
    let (f, org, id) = synced().await;
    let job = run_connection(&f.platform, org, &id, false).await.unwrap();
    let cancelled = cancel_job(&f.platform, org, &id, &job.id.to_string())
        .await
        .unwrap();
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    let c = f.store.connection(job.source_connection_id).unwrap();
    assert_eq!(
        c.sync.unwrap().last_job.unwrap().status,
        JobStatus::Cancelled
    );
    // Its message finds it ended; a new run may start.
    let message = f.queue.drain().pop().unwrap();
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    let handled = run_sync(&f.platform, &SyncSettings::default(), &message, deadline)
        .await
        .unwrap();
    assert_eq!(handled, Handled::Dropped);
    run_connection(&f.platform, org, &id, false)
        .await
        .expect("the slot is free");

    let again = cancel_job(&f.platform, org, &id, &job.id.to_string()).await;
    assert!(
        matches!(again, Err(DomainError::Conflict(_))),
        "an ended job: {again:?}"
    );
}

#[tokio::test]
async fn a_running_job_is_asked_to_stop() {
    let (f, org, id) = synced().await;
    let job = run_connection(&f.platform, org, &id, false).await.unwrap();
    f.store.edit_job(job.source_connection_id, job.id, |j| {
        j.status = JobStatus::Running
    });
    let cancelling = cancel_job(&f.platform, org, &id, &job.id.to_string())
        .await
        .unwrap();
    assert_eq!(cancelling.status, JobStatus::Cancelling);
    let still = cancel_job(&f.platform, org, &id, &job.id.to_string())
        .await
        .unwrap();
    assert_eq!(still.status, JobStatus::Cancelling, "asking twice is fine");
    for unknown in ["not-a-job", &crate::ids::JobId::new().to_string()] {
        assert!(matches!(
            cancel_job(&f.platform, org, &id, unknown).await,
            Err(DomainError::NotFound(_))
        ));
    }
}

/// Pausing stops the connection's job exactly as cancelling it does: a pending one is cancelled
/// at once (its message then finds it ended), a running one stops between pages; the job list
/// says so and the connection stays paused.
#[tokio::test]
async fn pausing_cancels_a_pending_job_and_stops_a_running_one() {
    use crate::usecases::update_connection::{update_connection, UpdateConnectionInput};
    let pause = || UpdateConnectionInput {
        status: Some("inactive".into()),
        ..Default::default()
    };
    let resume = || UpdateConnectionInput {
        status: Some("active".into()),
        ..Default::default()
    };
    let (f, org, id) = synced().await;
    let pending = run_connection(&f.platform, org, &id, false).await.unwrap();
    let paused = update_connection(&f.platform, org, &id, pause())
        .await
        .unwrap();
    assert_eq!(paused.status, ConnectionStatus::Inactive);
    let connection = pending.source_connection_id;
    assert_eq!(
        f.store.job(connection, pending.id).unwrap().status,
        JobStatus::Cancelled
    );
    assert_eq!(
        paused.sync.unwrap().last_job.unwrap().status,
        JobStatus::Cancelled,
        "the answer shows the job stopped"
    );
    let message = f.queue.drain().pop().unwrap();
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    let handled = run_sync(&f.platform, &SyncSettings::default(), &message, deadline)
        .await
        .unwrap();
    assert_eq!(handled, Handled::Dropped, "its message finds it ended");

    update_connection(&f.platform, org, &id, resume())
        .await
        .unwrap();
    let running = run_connection(&f.platform, org, &id, false).await.unwrap();
    f.store
        .edit_job(connection, running.id, |j| j.status = JobStatus::Running);
    update_connection(&f.platform, org, &id, pause())
        .await
        .unwrap();
    assert_eq!(
        f.store.job(connection, running.id).unwrap().status,
        JobStatus::Cancelling
    );
    let message = f.queue.drain().pop().unwrap();
    let handled = run_sync(&f.platform, &SyncSettings::default(), &message, deadline)
        .await
        .unwrap();
    assert_eq!(handled, Handled::Finished(JobStatus::Cancelled));
    let c = f.store.connection(connection).unwrap();
    assert_eq!(c.status, ConnectionStatus::Inactive, "still paused");
    assert_eq!(c.scheduled_run(), None);
}

//! One injected failure at each write of a create: no orphan secret, no connection without its
//! secret, no job left without a way to run.

use super::{assert_nothing_stored, create, create_keyed, direct_body, setup};
use crate::error::DomainError;
use crate::job::JobStatus;

#[tokio::test]
async fn a_failed_transaction_removes_the_secret_it_followed() {
    let (f, org) = setup().await;
    f.store.fail_insert_connection(true);

    let err = create(&f.platform, org, direct_body())
        .await
        .expect_err("failed");

    assert!(matches!(err, DomainError::Internal(_)), "{err:?}");
    assert_eq!(
        f.vault.puts(),
        1,
        "the secret was written before the transaction"
    );
    assert_eq!(f.vault.deletes(), 1, "and removed after it failed");
    assert!(f.vault.secrets().is_empty());
    assert!(f.store.connections().is_empty());
    assert!(f.store.jobs().is_empty());
    assert!(f.queue.messages().is_empty());
    assert_eq!(f.store.connection_count(org, "docs"), Some(0));
}

#[tokio::test]
async fn a_failed_keyed_transaction_frees_the_key_for_the_retry() {
    let (f, org) = setup().await;
    f.store.fail_insert_connection(true);
    create_keyed(&f.platform, org, direct_body(), "retry-me")
        .await
        .expect_err("failed");
    assert_eq!(f.store.key_state(org, "retry-me"), None);

    f.store.fail_insert_connection(false);
    let created = create_keyed(&f.platform, org, direct_body(), "retry-me")
        .await
        .expect("the retry creates it");

    assert!(!created.replayed);
    assert_eq!(f.store.connections(), vec![created.connection.clone()]);
    let secrets = f.vault.secrets();
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets[0].connection_id, created.connection.id);
    assert_eq!(f.queue.messages().len(), 1);
}

#[tokio::test]
async fn a_collection_deleted_before_the_transaction_is_not_found_and_leaves_no_secret() {
    let (f, org) = setup().await;
    let pause = f.store.pause_next_insert();
    let platform = f.platform.clone();
    let attempt = tokio::spawn(async move { create(&platform, org, direct_body()).await });
    pause
        .reached
        .await
        .expect("the create reached its transaction");

    f.store.remove_collection(org, "docs");
    pause.resume.send(()).unwrap();
    let err = attempt.await.unwrap().expect_err("refused");

    assert!(
        matches!(&err, DomainError::NotFound(m) if m.contains("docs")),
        "{err:?}"
    );
    assert!(f.vault.secrets().is_empty(), "the secret was left behind");
    assert!(f.store.connections().is_empty());
    assert!(f.store.jobs().is_empty());
    assert!(f.queue.messages().is_empty());
}

#[tokio::test]
async fn a_lost_message_still_creates_and_leaves_the_job_pending_for_the_sweep() {
    let (f, org) = setup().await;
    f.queue.fail_enqueue(true);

    let created = create(&f.platform, org, direct_body())
        .await
        .expect("created");

    let c = created.connection;
    assert_eq!(f.store.connections(), vec![c.clone()]);
    let jobs = f.store.jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].status, JobStatus::Pending);
    assert_eq!(Some(jobs[0].id), c.sync.unwrap().last_job.map(|j| j.id));
    assert!(f.queue.messages().is_empty());
    assert_eq!(f.vault.secrets().len(), 1);
}

#[tokio::test]
async fn a_failed_secret_write_writes_nothing() {
    let (f, org) = setup().await;
    f.vault.fail_put(true);

    let err = create(&f.platform, org, direct_body())
        .await
        .expect_err("failed");

    assert!(matches!(err, DomainError::Internal(_)), "{err:?}");
    assert_nothing_stored(&f);
    assert_eq!(f.store.connection_count(org, "docs"), Some(0));
}

#[tokio::test]
async fn a_failed_keyed_secret_write_frees_the_key() {
    let (f, org) = setup().await;
    f.vault.fail_put(true);

    create_keyed(&f.platform, org, direct_body(), "k-vault")
        .await
        .expect_err("failed");

    assert_eq!(f.store.key_state(org, "k-vault"), None);
    assert_nothing_stored(&f);
}

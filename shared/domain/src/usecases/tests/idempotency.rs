//! `Idempotency-Key`: one connection per key and body, whatever the retries and races.

use super::{
    add_collection, assert_invalid, assert_nothing_stored, assert_nothing_written, create,
    create_keyed, direct_body, setup, with,
};
use crate::auth::{credential_document, detect};
use crate::error::DomainError;
use crate::idempotency::{KeyState, Reservation, LEASE, RETENTION};
use crate::ids::{ConnectionId, JobId, OrganizationId};
use crate::ports::CredentialVault;
use crate::testing::{now, ManualClock, MemoryFingerprintKey};
use crate::usecases::Platform;
use chrono::Duration;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// A reservation of `key` for the direct body, as an earlier attempt would have left it.
fn reservation(
    org: OrganizationId,
    key: &str,
    fingerprint: String,
    lease_left: Duration,
) -> Reservation {
    Reservation {
        organization_id: org,
        key: key.to_owned(),
        fingerprint,
        connection_id: ConnectionId::new(),
        job_id: JobId::new(),
        lease_token: "earlier-attempt".into(),
        lease_until: now() + lease_left,
        expires_at: now() + RETENTION,
    }
}

#[tokio::test]
async fn the_same_key_and_body_answer_the_first_result() {
    let (f, org) = setup().await;

    let first = create_keyed(&f.platform, org, direct_body(), "k-1")
        .await
        .unwrap();
    let second = create_keyed(&f.platform, org, direct_body(), "k-1")
        .await
        .unwrap();

    assert!(!first.replayed);
    assert!(second.replayed);
    assert_eq!(second.connection, first.connection);
    assert_eq!(f.store.connections().len(), 1);
    assert_eq!(f.vault.puts(), 1);
    assert_eq!(f.queue.messages().len(), 1);
    assert_eq!(f.store.jobs().len(), 1);
    assert_eq!(
        f.sources.check_calls().len(),
        1,
        "a replay does not ask the upstream again"
    );
    assert!(matches!(
        f.store.key_state(org, "k-1"),
        Some(KeyState::Completed { .. })
    ));
}

#[tokio::test]
async fn the_same_key_with_another_body_is_rejected() {
    let (f, org) = setup().await;
    create_keyed(&f.platform, org, direct_body(), "k-1")
        .await
        .unwrap();

    let renamed = with(direct_body(), json!({"name": "Another name"}));
    let result = create_keyed(&f.platform, org, renamed, "k-1").await;

    assert_invalid(result, "Idempotency-Key");
    assert_eq!(f.store.connections().len(), 1);
    assert_eq!(f.vault.puts(), 1);
    assert_eq!(f.queue.messages().len(), 1);
}

#[tokio::test]
async fn keys_belong_to_one_organization() {
    let (f, org) = setup().await;
    let other = OrganizationId::new();
    add_collection(&f.platform, other, "docs").await;

    let mine = create_keyed(&f.platform, org, direct_body(), "shared-key")
        .await
        .unwrap();
    let theirs = create_keyed(&f.platform, other, direct_body(), "shared-key")
        .await
        .unwrap();

    assert!(!theirs.replayed);
    assert_ne!(theirs.connection.id, mine.connection.id);
    assert_eq!(theirs.connection.organization_id, other);
}

#[tokio::test]
async fn a_failed_attempt_frees_the_key_for_a_corrected_retry() {
    let (f, org) = setup().await;
    let body = with(direct_body(), json!({"readable_collection_id": "later"}));

    let err = create_keyed(&f.platform, org, body.clone(), "k-2")
        .await
        .expect_err("no such collection yet");
    assert!(matches!(err, DomainError::NotFound(_)), "{err:?}");
    assert_eq!(f.store.key_state(org, "k-2"), None);

    add_collection(&f.platform, org, "later").await;
    let created = create_keyed(&f.platform, org, body, "k-2")
        .await
        .expect("created");

    assert!(!created.replayed);
    assert_eq!(created.connection.readable_collection_id, "later");
    assert_eq!(f.store.connections().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_create_one_connection() {
    let (f, org) = setup().await;

    let attempts: Vec<_> = (0..10)
        .map(|_| {
            let platform = f.platform.clone();
            tokio::spawn(async move { create_keyed(&platform, org, direct_body(), "k-race").await })
        })
        .collect();
    let mut answers = Vec::new();
    for attempt in attempts {
        answers.push(attempt.await.unwrap().expect("every retry succeeds"));
    }

    assert_eq!(answers.iter().filter(|a| !a.replayed).count(), 1);
    for answer in &answers {
        assert_eq!(answer.connection, answers[0].connection);
    }
    assert_eq!(f.store.connections().len(), 1);
    assert_eq!(f.store.jobs().len(), 1);
    assert_eq!(f.vault.secrets().len(), 1);
    assert_eq!(f.queue.messages().len(), 1);
}

#[tokio::test]
async fn a_retry_during_the_first_attempt_waits_for_its_result() {
    let (f, org) = setup().await;
    let pause = f.store.pause_next_insert();
    let platform = f.platform.clone();
    let first =
        tokio::spawn(async move { create_keyed(&platform, org, direct_body(), "k-3").await });
    pause.reached.await.unwrap();

    let platform = f.platform.clone();
    let retry =
        tokio::spawn(async move { create_keyed(&platform, org, direct_body(), "k-3").await });
    tokio::task::yield_now().await;
    pause.resume.send(()).unwrap();
    let first = first.await.unwrap().unwrap();
    let retry = retry.await.unwrap().unwrap();

    assert!(retry.replayed);
    assert_eq!(retry.connection, first.connection);
    assert_eq!(f.store.connections().len(), 1);
    assert_eq!(f.queue.messages().len(), 1);
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_with_the_same_connection_id() {
    let (f, org) = setup().await;
    // A first attempt reserved the key, wrote the secret and crashed before its transaction.
    let crashed = reservation(
        org,
        "k-4",
        f.fingerprint_key.fingerprint(&direct_body()),
        -Duration::seconds(1),
    );
    f.store.put_reservation(crashed.clone());
    let auth = detect(direct_body().get("authentication"), now()).unwrap();
    f.vault
        .put_connection_secret(
            org,
            crashed.connection_id,
            &credential_document(&auth).unwrap(),
            &crashed.connection_id.to_string(),
        )
        .await
        .unwrap();

    let created = create_keyed(&f.platform, org, direct_body(), "k-4")
        .await
        .expect("the retry finishes the crashed attempt");

    let c = &created.connection;
    assert!(!created.replayed);
    assert_eq!(c.id, crashed.connection_id);
    assert_eq!(
        c.sync.as_ref().unwrap().last_job.as_ref().unwrap().id,
        crashed.job_id
    );
    assert_eq!(f.store.connections(), vec![c.clone()]);
    let secrets = f.vault.secrets();
    assert_eq!(secrets.len(), 1, "one secret, re-used");
    assert_eq!(secrets[0].connection_id, crashed.connection_id);
    let messages = f.queue.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].job_id, crashed.job_id);
    assert!(matches!(
        f.store.key_state(org, "k-4"),
        Some(KeyState::Completed { .. })
    ));
}

#[tokio::test]
async fn another_body_while_the_key_is_in_progress_is_rejected() {
    let (f, org) = setup().await;
    let other = f
        .fingerprint_key
        .fingerprint(&with(direct_body(), json!({"name": "First body"})));
    f.store
        .put_reservation(reservation(org, "k-5", other, LEASE));

    let result = create_keyed(&f.platform, org, direct_body(), "k-5").await;

    assert_invalid(result, "Idempotency-Key");
    assert_nothing_stored(&f);
}

#[tokio::test]
async fn another_body_never_takes_over_an_expired_lease() {
    let (f, org) = setup().await;
    let other = f
        .fingerprint_key
        .fingerprint(&with(direct_body(), json!({"name": "First body"})));
    let crashed = reservation(org, "k-8", other, -Duration::seconds(1));
    f.store.put_reservation(crashed.clone());

    let result = create_keyed(&f.platform, org, direct_body(), "k-8").await;

    assert_invalid(result, "Idempotency-Key");
    assert_nothing_stored(&f);
    assert_eq!(
        f.store.key_state(org, "k-8"),
        Some(KeyState::InProgress(crashed))
    );
}

#[tokio::test(start_paused = true)]
async fn the_same_body_while_in_progress_gives_up_after_waiting() {
    let (f, org) = setup().await;
    // The holder's lease never runs out on the fixed clock: it looks alive throughout.
    let holder = reservation(
        org,
        "k-6",
        f.fingerprint_key.fingerprint(&direct_body()),
        LEASE,
    );
    f.store.put_reservation(holder.clone());
    let started = tokio::time::Instant::now();

    let err = create_keyed(&f.platform, org, direct_body(), "k-6")
        .await
        .expect_err("gives up");

    assert!(matches!(err, DomainError::Conflict(_)), "{err:?}");
    assert!(
        started.elapsed() >= crate::usecases::create_connection::WAIT_FOR_CONCURRENT,
        "answered after {:?} without waiting",
        started.elapsed()
    );
    assert_nothing_stored(&f);
    assert_eq!(
        f.store.key_state(org, "k-6"),
        Some(KeyState::InProgress(holder)),
        "the holder keeps its key"
    );
}

/// A first attempt outlives its lease (a slow upstream, a frozen function), a retry takes the key
/// over and commits the connection with the same id and secret; then the first attempt's
/// transaction fails. It must not delete the secret the committed connection now uses.
#[tokio::test]
async fn a_stale_attempt_does_not_delete_the_secret_of_the_one_that_took_over() {
    let (f, org) = setup().await;
    let clock = Arc::new(ManualClock::at(now()));
    let platform = Platform {
        clock: clock.clone(),
        ..f.platform.clone()
    };
    let pause = f.store.pause_next_insert();
    let slow_platform = platform.clone();
    let slow =
        tokio::spawn(async move { create_keyed(&slow_platform, org, direct_body(), "k-7").await });
    pause.reached.await.unwrap();

    clock.set(now() + LEASE + Duration::seconds(1));
    let retry = create_keyed(&platform, org, direct_body(), "k-7")
        .await
        .expect("the retry takes over and creates");
    pause.resume.send(()).unwrap();
    let stale = slow.await.unwrap();

    assert!(matches!(stale, Err(DomainError::Conflict(_))), "{stale:?}");
    let c = retry.connection;
    assert_eq!(f.store.connections(), vec![c.clone()]);
    assert!(
        f.vault
            .get_connection_secret(org, c.id)
            .await
            .unwrap()
            .is_some(),
        "the committed connection lost its secret"
    );
    assert_eq!(f.queue.messages().len(), 1);
}

#[tokio::test]
async fn the_record_keeps_the_keyed_fingerprint_not_a_plain_hash_of_the_body() {
    let (f, org) = setup().await;

    create_keyed(&f.platform, org, direct_body(), "k-9")
        .await
        .unwrap();

    let Some(KeyState::Completed { fingerprint, .. }) = f.store.key_state(org, "k-9") else {
        panic!("the key completed");
    };
    assert_eq!(fingerprint, f.fingerprint_key.fingerprint(&direct_body()));
    let plain = hex::encode(Sha256::digest(direct_body().to_string().as_bytes()));
    assert_ne!(fingerprint, plain);
    assert!(
        !fingerprint.contains(super::STUB_KEY),
        "the credential is not in the record"
    );
}

#[tokio::test]
async fn a_keyed_create_without_its_fingerprint_key_fails_before_any_write() {
    let (f, org) = setup().await;
    f.fingerprint_key.make_unavailable();

    let err = create_keyed(&f.platform, org, direct_body(), "k-10")
        .await
        .expect_err("no key, no keyed create");

    assert!(matches!(err, DomainError::Internal(_)), "{err:?}");
    assert_nothing_written(&f);
    assert_eq!(
        f.store.key_state(org, "k-10"),
        None,
        "the key was not taken"
    );
}

#[tokio::test]
async fn an_unkeyed_create_never_asks_for_the_fingerprint_key() {
    let (f, org) = setup().await;
    f.fingerprint_key.make_unavailable();

    create(&f.platform, org, direct_body())
        .await
        .expect("created without the key");

    assert_eq!(f.fingerprint_key.reads(), 0);
}

/// A record written under another key (the plain SHA-256 fingerprints before the key existed,
/// or a rotated key) never matches a retry: the retry is refused as the key's reuse with another
/// body, whatever the record's state, and creates nothing.
#[tokio::test]
async fn a_record_written_under_another_key_refuses_the_retry() {
    let (f, org) = setup().await;
    let before = Platform {
        fingerprint_key: Arc::new(MemoryFingerprintKey::with_key(
            "the-key-before-the-rotation-0123456789",
        )),
        ..f.platform.clone()
    };
    create_keyed(&before, org, direct_body(), "k-11")
        .await
        .unwrap();
    let plain = hex::encode(Sha256::digest(direct_body().to_string().as_bytes()));
    f.store
        .put_reservation(reservation(org, "k-12", plain, -Duration::seconds(1)));

    let completed = create_keyed(&f.platform, org, direct_body(), "k-11").await;
    let crashed = create_keyed(&f.platform, org, direct_body(), "k-12").await;

    assert_invalid(completed, "Idempotency-Key");
    assert_invalid(crashed, "Idempotency-Key");
    assert_eq!(f.store.connections().len(), 1, "only the first create's");
    assert_eq!(f.queue.messages().len(), 1);
}

//! The scheduler's adapters against the emulator: the `due_schedules` and `sweep` indexes, the
//! conditional claims on slots, tombstones, sweep positions, and the vault's secret listing.

use crate::adapters::{collection, connection, job_for, now};
use crate::helpers::aws::TestAws;
use aws_adapters::DynamoStore;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Duration;
use domain::connection::{ConnectionStatus, SourceConnection};
use domain::ids::{ConnectionId, JobId, OrganizationId};
use domain::page::PageRequest;
use domain::ports::{
    CollectionStore, ConnectionRef, ConnectionStore, CredentialVault, JobStore, NewConnection,
    ScheduleStore, StoreError, WebhookSecrets,
};
use domain::schedule::{bucket_of, BUCKETS};
use domain::usecases::scheduler::LOST_MESSAGE_AFTER;
use secrecy::SecretString;

async fn insert(store: &DynamoStore, org: OrganizationId, first_job: bool) -> SourceConnection {
    let c = connection(org, "docs");
    let job = job_for(&c);
    store
        .insert_connection(NewConnection {
            connection: &c,
            first_job: first_job.then_some(&job),
            idempotency: None,
            events: &[],
        })
        .await
        .unwrap();
    c
}

async fn all_due(store: &DynamoStore, at: chrono::DateTime<chrono::Utc>) -> Vec<ConnectionRef> {
    let mut due = Vec::new();
    for bucket in 0..BUCKETS {
        let page = store.due_schedules(bucket, at, 100, None).await.unwrap();
        due.extend(page.connections.iter().map(|c| ConnectionRef {
            organization_id: c.value.organization_id,
            connection_id: c.value.id,
        }));
    }
    due
}

#[tokio::test]
async fn due_schedules_come_from_the_index_and_only_active_connections_are_in_it() {
    let aws = TestAws::fresh().await;
    let store = aws.store();
    let org = OrganizationId::new();
    store
        .insert_collection(&collection(org, "docs"), &[])
        .await
        .unwrap();
    let active = insert(&store, org, false).await;
    let paused = insert(&store, org, false).await;
    let next_run = active.schedule.as_ref().unwrap().next_run.unwrap();

    let mut p = store.get_versioned(org, paused.id).await.unwrap().unwrap();
    p.value.status = ConnectionStatus::Inactive;
    store
        .replace_connection(&p.value, p.version, &[])
        .await
        .unwrap();
    let item = aws
        .item(&format!("ORG#{org}"), &format!("CONN#{}", paused.id))
        .await
        .unwrap();
    assert!(!item.contains_key("sched_bucket") && !item.contains_key("next_run_at"));

    assert!(all_due(&store, next_run - Duration::seconds(1))
        .await
        .is_empty());
    let due = all_due(&store, next_run).await;
    assert_eq!(
        due,
        [ConnectionRef {
            organization_id: org,
            connection_id: active.id
        }]
    );
    let bucket = bucket_of(active.id);
    assert_eq!(
        store
            .due_schedules(bucket, next_run, 100, None)
            .await
            .unwrap()
            .connections
            .len(),
        1
    );
    let other = (bucket + 1) % BUCKETS;
    assert!(store
        .due_schedules(other, next_run, 100, None)
        .await
        .unwrap()
        .connections
        .is_empty());
}

/// The claims read the index page by page: each connection whole with its version (what a claim
/// writes on), once, in the order of their next runs.
#[tokio::test]
async fn due_schedules_page_through_a_bucket_with_whole_connections_and_their_versions() {
    let aws = TestAws::fresh().await;
    let store = aws.store();
    let org = OrganizationId::new();
    store
        .insert_collection(&collection(org, "docs"), &[])
        .await
        .unwrap();
    let bucket = 7;
    let mut inserted = Vec::new();
    for _ in 0..3 {
        let mut c = connection(org, "docs");
        c.id = std::iter::repeat_with(ConnectionId::new)
            .find(|id| bucket_of(*id) == bucket)
            .unwrap();
        store
            .insert_connection(NewConnection {
                connection: &c,
                first_job: None,
                idempotency: None,
                events: &[],
            })
            .await
            .unwrap();
        inserted.push(c);
    }
    // One of them written again: the index must hand out its new version.
    let read = store
        .get_versioned(org, inserted[1].id)
        .await
        .unwrap()
        .unwrap();
    store
        .replace_connection(&read.value, read.version, &[])
        .await
        .unwrap();
    let at = inserted[0].schedule.as_ref().unwrap().next_run.unwrap();

    let first = store.due_schedules(bucket, at, 2, None).await.unwrap();
    assert_eq!(first.connections.len(), 2);
    let position = first.next.clone().expect("a third is due");
    let second = store
        .due_schedules(bucket, at, 2, Some(&position))
        .await
        .unwrap();
    let mut seen: Vec<_> = first
        .connections
        .iter()
        .chain(&second.connections)
        .collect();
    assert_eq!(seen.len(), 3, "each once: {seen:?}");
    assert!(
        second.next.is_none() || {
            let rest = store
                .due_schedules(bucket, at, 2, second.next.as_deref())
                .await
                .unwrap();
            rest.connections.is_empty() && rest.next.is_none()
        }
    );
    seen.sort_by_key(|c| c.value.id);
    inserted.sort_by_key(|c| c.id);
    for (due, written) in seen.iter().zip(&inserted) {
        assert_eq!(due.value, *written);
        let table = store.get_versioned(org, written.id).await.unwrap().unwrap();
        assert_eq!(
            due.version, table.version,
            "the index's version is the table's"
        );
    }
    let forged = store.due_schedules(bucket, at, 2, Some("not|ours")).await;
    assert!(forged.is_err(), "{forged:?}");
}

/// A delete removes a connection's records a page at a time (a connection synced every five
/// minutes keeps ~26,000 jobs), so that each step fits the caller's deadline.
#[tokio::test]
async fn a_connections_records_go_a_page_at_a_time() {
    let aws = TestAws::fresh().await;
    let store = aws.store();
    let connection = ConnectionId::new();
    for i in 0..450 {
        aws.put_item(std::collections::HashMap::from([
            (
                "pk".to_owned(),
                AttributeValue::S(format!("CONN#{connection}")),
            ),
            ("sk".to_owned(), AttributeValue::S(format!("JOB#{i:05}"))),
        ]))
        .await;
    }
    let mut steps = 0;
    while !store.delete_connection_records(connection).await.unwrap() {
        steps += 1;
        assert!(steps < 10, "it never finishes");
    }
    assert_eq!(steps, 2, "450 records in pages of 200");
    assert!(aws
        .scan_keys()
        .await
        .iter()
        .all(|(pk, _)| !pk.starts_with("CONN#")));
}

#[tokio::test]
async fn a_scheduled_start_claims_the_version_and_the_slot_together() {
    let aws = TestAws::fresh().await;
    let store = aws.store();
    let org = OrganizationId::new();
    store
        .insert_collection(&collection(org, "docs"), &[])
        .await
        .unwrap();
    let c = insert(&store, org, false).await;
    let read = store.get_versioned(org, c.id).await.unwrap().unwrap();
    let mut advanced = read.value.clone();
    let next = advanced.schedule.as_ref().unwrap().next_run.unwrap() + Duration::hours(1);
    advanced.schedule.as_mut().unwrap().next_run = Some(next);

    let job = job_for(&c);
    store
        .start_scheduled_job(&job, &advanced, read.version, &[])
        .await
        .unwrap();
    let second = job_for(&c);
    let stale = store
        .start_scheduled_job(&second, &advanced, read.version, &[])
        .await;
    assert!(
        matches!(stale, Err(StoreError::VersionConflict)),
        "{stale:?}"
    );
    let fresh = store.get_versioned(org, c.id).await.unwrap().unwrap();
    let busy = store
        .start_scheduled_job(&second, &fresh.value, fresh.version, &[])
        .await;
    assert!(matches!(busy, Err(StoreError::JobActive)), "{busy:?}");
    assert_eq!(store.active_job(c.id).await.unwrap(), Some(job.id));
    assert_eq!(store.get_job(c.id, second.id).await.unwrap(), None);
    assert_eq!(fresh.value.schedule.unwrap().next_run, Some(next));
}

#[tokio::test]
async fn an_active_slot_is_looked_at_once_and_freed_only_for_its_job() {
    let aws = TestAws::fresh().await;
    let store = aws.store();
    let org = OrganizationId::new();
    store
        .insert_collection(&collection(org, "docs"), &[])
        .await
        .unwrap();
    let c = insert(&store, org, true).await;
    let job = store.active_job(c.id).await.unwrap().unwrap();
    let bucket = bucket_of(c.id);
    let created = store.get_job(c.id, job).await.unwrap().unwrap().created_at;

    assert!(store
        .due_job_checks(bucket, now(), 10)
        .await
        .unwrap()
        .is_empty());
    let later = created + LOST_MESSAGE_AFTER + Duration::seconds(1);
    let checks = store.due_job_checks(bucket, later, 10).await.unwrap();
    assert_eq!(checks.len(), 1);
    let check = checks[0];
    assert_eq!(
        (check.organization_id, check.connection_id, check.job_id),
        (org, c.id, job)
    );

    let to = later + Duration::minutes(5);
    assert!(store.postpone_job_check(&check, to).await.unwrap());
    assert!(!store.postpone_job_check(&check, to).await.unwrap(), "once");
    assert!(store
        .due_job_checks(bucket, later, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.due_job_checks(bucket, to, 10).await.unwrap().len(), 1);

    store.free_slot(c.id, JobId::new()).await.unwrap();
    assert_eq!(
        store.active_job(c.id).await.unwrap(),
        Some(job),
        "another job's free"
    );
    store.free_slot(c.id, job).await.unwrap();
    assert_eq!(store.active_job(c.id).await.unwrap(), None);
    store.free_slot(c.id, job).await.unwrap();
}

#[tokio::test]
async fn a_tombstone_hides_the_connection_frees_the_collection_and_is_found_by_the_sweep() {
    let aws = TestAws::fresh().await;
    let store = aws.store();
    let org = OrganizationId::new();
    store
        .insert_collection(&collection(org, "docs"), &[])
        .await
        .unwrap();
    let c = insert(&store, org, true).await;
    let read = store.get_versioned(org, c.id).await.unwrap().unwrap();
    let stale = store.begin_delete(&c, read.version + 1, now(), &[]).await;
    assert!(matches!(stale, Err(StoreError::VersionConflict)));
    store
        .begin_delete(&c, read.version, now(), &[])
        .await
        .unwrap();

    assert_eq!(store.get_connection(org, c.id).await.unwrap(), None);
    assert_eq!(store.get_versioned(org, c.id).await.unwrap(), None);
    let listed = store
        .list_connections(org, None, &PageRequest::default())
        .await
        .unwrap();
    assert!(listed.items.is_empty());
    assert_eq!(
        store.deleting_connection(org, c.id).await.unwrap(),
        Some(c.clone())
    );
    assert!(store.connection_exists(org, c.id).await.unwrap());
    let run = store.start_job(&job_for(&c), &[]).await;
    assert!(matches!(
        run,
        Err(StoreError::NotRunnable | StoreError::JobActive)
    ));
    assert!(
        all_due(&store, now() + Duration::days(2)).await.is_empty(),
        "unscheduled"
    );
    let again = store.replace_connection(&c, read.version + 1, &[]).await;
    assert!(
        matches!(again, Err(StoreError::VersionConflict)),
        "a tombstone is never rewritten"
    );

    let bucket = bucket_of(c.id);
    assert!(store
        .due_deletes(bucket, now() - Duration::minutes(1), 10)
        .await
        .unwrap()
        .is_empty());
    let due = store
        .due_deletes(bucket, now() + Duration::seconds(1), 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);

    store
        .delete_collection(org, &domain::names::ReadableId::parse("docs").unwrap(), &[])
        .await
        .expect("the collection no longer counts the connection");
    assert!(store.delete_connection_records(c.id).await.unwrap());
    assert!(aws
        .scan_keys()
        .await
        .iter()
        .all(|(pk, _)| !pk.starts_with("CONN#")));
    store.remove_tombstone(org, c.id).await.unwrap();
    store.remove_tombstone(org, c.id).await.unwrap();
    assert!(!store.connection_exists(org, c.id).await.unwrap());
}

#[tokio::test]
async fn sweep_positions_and_the_secret_listing_page_through() {
    let aws = TestAws::fresh().await;
    let store = aws.store();
    assert_eq!(store.sweep_position("secrets").await.unwrap(), None);
    store
        .save_sweep_position("secrets", Some("token-1"))
        .await
        .unwrap();
    assert_eq!(
        store.sweep_position("secrets").await.unwrap().as_deref(),
        Some("token-1")
    );
    store.save_sweep_position("secrets", None).await.unwrap();
    assert_eq!(store.sweep_position("secrets").await.unwrap(), None);

    let vault = aws.vault();
    let org = OrganizationId::new();
    let value = SecretString::from("{}".to_owned());
    let mut ids: Vec<ConnectionId> = (0..3).map(|_| ConnectionId::new()).collect();
    for id in &ids {
        vault
            .put_connection_secret(org, *id, &value, &id.to_string())
            .await
            .unwrap();
    }
    let first = vault.list_connection_secrets(None, 2).await.unwrap();
    assert_eq!(first.secrets.len(), 2);
    let next = first.next.clone().expect("a next page");
    let second = vault.list_connection_secrets(Some(&next), 2).await.unwrap();
    assert_eq!(second.secrets.len(), 1);
    assert_eq!(second.next, None);
    let mut listed: Vec<ConnectionId> = first
        .secrets
        .iter()
        .chain(&second.secrets)
        .map(|s| {
            assert_eq!(s.organization_id, org);
            assert!((s.created_at - now()).num_seconds().abs() < 120, "{s:?}");
            s.id
        })
        .collect();
    listed.sort();
    ids.sort();
    assert_eq!(listed, ids);
    // Subscriptions' secrets are listed apart, and the connections' listing never holds them.
    let hook = domain::ids::SubscriptionId::new();
    let secret = domain::webhooks::WebhookSecret::from_random([3; 32]);
    vault
        .create_webhook_secret(org, hook, &secret)
        .await
        .unwrap();
    let hooks = vault.list_webhook_secrets(None, 10).await.unwrap();
    assert_eq!(
        hooks
            .secrets
            .iter()
            .map(|s| (s.organization_id, s.id))
            .collect::<Vec<_>>(),
        [(org, hook)]
    );
    let connections = vault.list_connection_secrets(None, 10).await.unwrap();
    assert_eq!(connections.secrets.len(), ids.len());

    let first = vault
        .current_connection_secret_version(org, ids[0])
        .await
        .unwrap()
        .unwrap();
    let second = vault
        .stage_connection_secret(org, ids[0], &SecretString::from("{\"v\":2}".to_owned()))
        .await
        .unwrap();
    assert!(vault
        .promote_connection_secret(org, ids[0], &first, &second)
        .await
        .unwrap());
    let read = vault
        .get_connection_secret(org, ids[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(&read.value),
        "{\"v\":2}"
    );
}

//! The AWS adapters against the emulator: the state store, the credential vault, the sync queue
//! and the bootstrap. Each test has its own tables, queue and secret prefix.

use crate::helpers::aws::TestAws;
use aws_adapters::bootstrap::{ensure_entities_table, ensure_queue, ensure_state_table};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, SubsecRound, Utc};
use domain::catalog::AuthMethod;
use domain::collection::Collection;
use domain::connection::{
    AuthDetails, ConnectionStatus, EntitySummary, EntityTypeStats, JobDetails, SourceConnection,
    SyncDetails,
};
use domain::idempotency::{Claim, KeyState, Reservation, LEASE, RETENTION};
use domain::ids::{ConnectionId, JobId, OrganizationId};
use domain::job::{Job, SyncMessage, Trigger};
use domain::names::{CollectionName, ReadableId};
use domain::page::{Page, PageRequest};
use domain::ports::{
    CollectionStore, ConnectionStore, CredentialVault, IdempotencyStore, NewConnection,
    SecretVersion, SecretVersionStore, StoreError, Succession, SyncQueue, TenantStore, VaultError,
    SECRET_VALUE_LIMIT,
};
use domain::schedule::{CronSchedule, ScheduleDetails};
use domain::tenancy::{ApiKeyHash, Organization, RedirectOrigin, StoredApiKey};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use std::collections::BTreeMap;

pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn readable(id: &str) -> ReadableId {
    ReadableId::parse(id).expect("valid readable id")
}

pub(crate) fn collection(org: OrganizationId, id: &str) -> Collection {
    let at = now();
    Collection {
        readable_id: readable(id),
        name: CollectionName::parse("Finance documents").unwrap(),
        organization_id: org,
        created_at: at,
        modified_at: at,
    }
}

pub(crate) fn job_for(connection: &SourceConnection) -> Job {
    Job::pending(
        JobId::new(),
        connection.organization_id,
        connection.id,
        Trigger::Initial,
        connection.created_at,
    )
}

/// A connection with every optional part filled in, so that a round trip shows nothing is lost.
pub(crate) fn connection(org: OrganizationId, collection: &str) -> SourceConnection {
    let at = now();
    let id = ConnectionId::new();
    let first_job = Job::pending(JobId::new(), org, id, Trigger::Initial, at);
    let config = json!({
        "repo": "octo/hello",
        "depth": 3,
        "ratio": 0.5,
        "archived": false,
        "labels": ["a", "b"],
        "nested": {"empty": null, "list": [1, {"x": "y"}]},
        "blank": ""
    });
    SourceConnection {
        id,
        organization_id: org,
        name: "GitHub Connection".to_owned(),
        short_name: "github".to_owned(),
        readable_collection_id: collection.to_owned(),
        status: ConnectionStatus::Active,
        created_at: at,
        modified_at: at,
        auth: AuthDetails {
            method: AuthMethod::Direct,
            authenticated: true,
            authenticated_at: Some(at),
            expires_at: None,
            auth_url: None,
            auth_url_expires: None,
            redirect_url: None,
            provider_readable_id: None,
        },
        description: Some("the docs repo".to_owned()),
        config: config.as_object().cloned(),
        schedule: Some(ScheduleDetails::from_cron(
            &CronSchedule::parse("0 * * * *").unwrap(),
            at,
        )),
        sync: Some(SyncDetails {
            last_job: Some(JobDetails::from(&first_job)),
            ..SyncDetails::default()
        }),
        sync_id: None,
        entities: Some(EntitySummary {
            total_entities: 2,
            by_type: BTreeMap::from([(
                "GitHubRepository".to_owned(),
                EntityTypeStats {
                    count: 2,
                    last_updated: Some(at),
                },
            )]),
        }),
        error_category: None,
        error_message: None,
        provider_settings_url: None,
        provider_short_name: None,
        federated_search: false,
    }
}

fn plain(connection: &SourceConnection) -> NewConnection<'_> {
    NewConnection {
        connection,
        first_job: None,
        idempotency: None,
        events: &[],
    }
}

fn page(skip: usize, limit: usize, cursor: Option<&str>) -> PageRequest {
    PageRequest {
        skip,
        limit,
        cursor: cursor.map(str::to_owned),
    }
}

fn collection_ids(page: &Page<Collection>) -> Vec<&str> {
    page.items.iter().map(|c| c.readable_id.as_str()).collect()
}

fn number(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> i64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("numeric attribute {name}"))
}

fn text<'a>(item: &'a std::collections::HashMap<String, AttributeValue>, name: &str) -> &'a str {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .unwrap_or_else(|| panic!("string attribute {name}"))
}

// --- collections -------------------------------------------------------------------------------

#[tokio::test]
async fn a_collection_is_stored_once_per_organization_and_read_back() {
    let aws = TestAws::fresh().await;
    let store = aws.store();
    let org = OrganizationId::new();
    let docs = collection(org, "finance-docs");

    store.insert_collection(&docs, &[]).await.unwrap();
    let again = store
        .insert_collection(&collection(org, "finance-docs"), &[])
        .await;
    assert!(matches!(again, Err(StoreError::AlreadyExists)), "{again:?}");

    let read = store.get_collection(org, &docs.readable_id).await.unwrap();
    assert_eq!(read, Some(docs.clone()));
    let other_org = OrganizationId::new();
    assert_eq!(
        store
            .get_collection(other_org, &docs.readable_id)
            .await
            .unwrap(),
        None
    );
    // Another organization may use the same readable id.
    store
        .insert_collection(&collection(other_org, "finance-docs"), &[])
        .await
        .unwrap();

    let item = aws
        .item(&format!("ORG#{org}"), "COLL#finance-docs")
        .await
        .expect("collection item");
    assert_eq!(number(&item, "connection_count"), 0);
    assert_eq!(text(&item, "name"), "Finance documents");
}

#[tokio::test]
async fn collections_page_with_skip_limit_and_cursor() {
    let aws = TestAws::fresh().await;
    let store = aws.store();
    let org = OrganizationId::new();
    for id in ["coll-a", "coll-b", "coll-c", "coll-d", "coll-e"] {
        store
            .insert_collection(&collection(org, id), &[])
            .await
            .unwrap();
    }
    // Another organization's collections never show up.
    store
        .insert_collection(&collection(OrganizationId::new(), "coll-0"), &[])
        .await
        .unwrap();

    let all = store
        .list_collections(org, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        collection_ids(&all),
        ["coll-a", "coll-b", "coll-c", "coll-d", "coll-e"]
    );
    assert_eq!(all.next_cursor, None);

    let first = store
        .list_collections(org, &page(0, 2, None))
        .await
        .unwrap();
    assert_eq!(collection_ids(&first), ["coll-a", "coll-b"]);
    let cursor = first.next_cursor.expect("more follow");
    let second = store
        .list_collections(org, &page(0, 2, Some(&cursor)))
        .await
        .unwrap();
    assert_eq!(collection_ids(&second), ["coll-c", "coll-d"]);
    let third = store
        .list_collections(org, &page(0, 2, second.next_cursor.as_deref()))
        .await
        .unwrap();
    assert_eq!(collection_ids(&third), ["coll-e"]);
    assert_eq!(third.next_cursor, None);

    let skipped = store
        .list_collections(org, &page(1, 2, None))
        .await
        .unwrap();
    assert_eq!(collection_ids(&skipped), ["coll-b", "coll-c"]);
    let after_cursor = store
        .list_collections(org, &page(1, 10, Some(&cursor)))
        .await
        .unwrap();
    assert_eq!(collection_ids(&after_cursor), ["coll-d", "coll-e"]);
    assert_eq!(after_cursor.next_cursor, None);

    // A page that ends exactly at the last item says that nothing follows.
    let exact = store
        .list_collections(org, &page(3, 2, None))
        .await
        .unwrap();
    assert_eq!(collection_ids(&exact), ["coll-d", "coll-e"]);
    assert_eq!(exact.next_cursor, None);
    let beyond = store
        .list_collections(org, &page(10, 2, None))
        .await
        .unwrap();
    assert!(beyond.items.is_empty() && beyond.next_cursor.is_none());
}

#[tokio::test]
async fn a_cursor_the_store_did_not_issue_is_refused() {
    let aws = TestAws::fresh().await;
    let store = aws.store();
    let org = OrganizationId::new();
    store
        .insert_collection(&collection(org, "coll-a"), &[])
        .await
        .unwrap();

    // Not base64, base64 of something else, and a connection cursor used for collections.
    let foreign = aws_adapters_cursor_of("CONN#00000000-0000-0000-0000-000000000000");
    for cursor in ["%%%", "bm90IGEga2V5", "", foreign.as_str()] {
        let result = store
            .list_collections(org, &page(0, 10, Some(cursor)))
            .await;
        assert!(
            matches!(result, Err(StoreError::InvalidCursor)),
            "cursor {cursor:?}: {result:?}"
        );
    }
}

/// The cursor format (URL-safe base64 of the sort key), rebuilt here to forge one.
fn aws_adapters_cursor_of(sk: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sk)
}

#[tokio::test]
async fn deleting_a_collection_needs_it_to_exist_and_be_empty() {
    let aws = TestAws::fresh().await;
    let store = aws.store();
    let org = OrganizationId::new();
    store
        .insert_collection(&collection(org, "empty-one"), &[])
        .await
        .unwrap();
    store
        .insert_collection(&collection(org, "busy-one"), &[])
        .await
        .unwrap();
    store
        .insert_connection(plain(&connection(org, "busy-one")))
        .await
        .unwrap();

    store
        .delete_collection(org, &readable("empty-one"), &[])
        .await
        .unwrap();
    assert_eq!(
        store
            .get_collection(org, &readable("empty-one"))
            .await
            .unwrap(),
        None
    );

    let missing = store
        .delete_collection(org, &readable("empty-one"), &[])
        .await;
    assert!(
        matches!(missing, Err(StoreError::CollectionNotFound)),
        "{missing:?}"
    );
    let foreign = store
        .delete_collection(OrganizationId::new(), &readable("busy-one"), &[])
        .await;
    assert!(
        matches!(foreign, Err(StoreError::CollectionNotFound)),
        "{foreign:?}"
    );

    let busy = store
        .delete_collection(org, &readable("busy-one"), &[])
        .await;
    assert!(
        matches!(busy, Err(StoreError::CollectionNotEmpty)),
        "{busy:?}"
    );
    assert!(store
        .get_collection(org, &readable("busy-one"))
        .await
        .unwrap()
        .is_some());
}

// --- connections -------------------------------------------------------------------------------

#[tokio::test]
async fn a_connection_is_written_with_its_first_job_and_counted_by_its_collection() {
    let aws = TestAws::fresh().await;
    let store = aws.store();
    let org = OrganizationId::new();
    store
        .insert_collection(&collection(org, "finance-docs"), &[])
        .await
        .unwrap();
    let conn = connection(org, "finance-docs");
    let job = job_for(&conn);

    store
        .insert_connection(NewConnection {
            connection: &conn,
            first_job: Some(&job),
            idempotency: None,
            events: &[],
        })
        .await
        .unwrap();

    assert_eq!(
        store.get_connection(org, conn.id).await.unwrap(),
        Some(conn.clone())
    );
    let keys = aws.scan_keys().await;
    assert!(
        keys.contains(&(format!("CONN#{}", conn.id), format!("JOB#{}", job.id))),
        "{keys:?}"
    );

    let collection_item = aws
        .item(&format!("ORG#{org}"), "COLL#finance-docs")
        .await
        .unwrap();
    assert_eq!(number(&collection_item, "connection_count"), 1);

    // Readable attributes, plus what the scheduler's index needs.
    let item = aws
        .item(&format!("ORG#{org}"), &format!("CONN#{}", conn.id))
        .await
        .unwrap();
    assert_eq!(text(&item, "status"), "active");
    assert_eq!(text(&item, "short_name"), "github");
    assert!(
        item.get("config").is_some_and(|v| v.is_m()),
        "config is a map"
    );
    assert_eq!(number(&item, "version"), 1);
    let next_run = conn.schedule.as_ref().and_then(|s| s.next_run).unwrap();
    assert_eq!(number(&item, "next_run_at"), next_run.timestamp());
    assert_eq!(
        text(&item, "sched_bucket"),
        aws_adapters::schedule_bucket(conn.id)
    );
    assert!(text(&item, "sched_bucket")
        .parse::<u8>()
        .is_ok_and(|b| b < domain::schedule::BUCKETS));

    let job_item = aws
        .item(&format!("CONN#{}", conn.id), &format!("JOB#{}", job.id))
        .await
        .unwrap();
    assert_eq!(text(&job_item, "status"), "pending");
    assert_eq!(text(&job_item, "trigger"), "initial");
}

#[tokio::test]
async fn a_connection_without_next_run_stays_out_of_the_schedule_index() {
    let aws = TestAws::fresh().await;
    let store = aws.store();
    let org = OrganizationId::new();
    store
        .insert_collection(&collection(org, "finance-docs"), &[])
        .await
        .unwrap();
    let mut conn = connection(org, "finance-docs");
    conn.schedule = Some(ScheduleDetails::none());

    store.insert_connection(plain(&conn)).await.unwrap();
    let item = aws
        .item(&format!("ORG#{org}"), &format!("CONN#{}", conn.id))
        .await
        .unwrap();
    assert!(!item.contains_key("sched_bucket") && !item.contains_key("next_run_at"));
    assert_eq!(number(&item, "version"), 1);
}

#[tokio::test]
async fn a_connection_into_a_missing_collection_writes_nothing() {
    let aws = TestAws::fresh().await;
    let store = aws.store();
    let org = OrganizationId::new();
    let conn = connection(org, "no-such-collection");
    let job = job_for(&conn);

    let result = store
        .insert_connection(NewConnection {
            connection: &conn,
            first_job: Some(&job),
            idempotency: None,
            events: &[],
        })
        .await;
    assert!(
        matches!(result, Err(StoreError::CollectionNotFound)),
        "{result:?}"
    );
    assert_eq!(aws.scan_keys().await, Vec::<(String, String)>::new());
}

#[tokio::test]
async fn a_connection_id_is_written_once() {
    let aws = TestAws::fresh().await;
    let store = aws.store();
    let org = OrganizationId::new();
    store
        .insert_collection(&collection(org, "finance-docs"), &[])
        .await
        .unwrap();
    let conn = connection(org, "finance-docs");
    store.insert_connection(plain(&conn)).await.unwrap();

    let mut again = conn.clone();
    again.name = "Another name".to_owned();
    let result = store.insert_connection(plain(&again)).await;
    assert!(
        matches!(result, Err(StoreError::AlreadyExists)),
        "{result:?}"
    );

    assert_eq!(
        store.get_connection(org, conn.id).await.unwrap(),
        Some(conn)
    );
    let collection_item = aws
        .item(&format!("ORG#{org}"), "COLL#finance-docs")
        .await
        .unwrap();
    assert_eq!(number(&collection_item, "connection_count"), 1);
}

#[tokio::test]
async fn another_organization_never_sees_a_connection() {
    let aws = TestAws::fresh().await;
    let store = aws.store();
    let org = OrganizationId::new();
    store
        .insert_collection(&collection(org, "finance-docs"), &[])
        .await
        .unwrap();
    let conn = connection(org, "finance-docs");
    store.insert_connection(plain(&conn)).await.unwrap();

    let other = OrganizationId::new();
    assert_eq!(store.get_connection(other, conn.id).await.unwrap(), None);
    let listed = store
        .list_connections(other, None, &PageRequest::default())
        .await
        .unwrap();
    assert!(listed.items.is_empty());
    assert_eq!(
        store
            .get_connection(org, ConnectionId::new())
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn connections_list_by_collection_and_page() {
    let aws = TestAws::fresh().await;
    let store = aws.store();
    let org = OrganizationId::new();
    store
        .insert_collection(&collection(org, "coll-a"), &[])
        .await
        .unwrap();
    store
        .insert_collection(&collection(org, "coll-b"), &[])
        .await
        .unwrap();
    let mut in_a = Vec::new();
    for i in 0..5 {
        let conn = connection(org, if i % 2 == 0 { "coll-a" } else { "coll-b" });
        store.insert_connection(plain(&conn)).await.unwrap();
        if i % 2 == 0 {
            in_a.push(conn.id);
        }
    }
    in_a.sort_by_key(|id| id.to_string());

    let all = store
        .list_connections(org, None, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(all.items.len(), 5);
    assert_eq!(all.next_cursor, None);

    let coll_a = readable("coll-a");
    let first = store
        .list_connections(org, Some(&coll_a), &page(0, 2, None))
        .await
        .unwrap();
    let cursor = first
        .next_cursor
        .clone()
        .expect("a third connection follows");
    let second = store
        .list_connections(org, Some(&coll_a), &page(0, 2, Some(&cursor)))
        .await
        .unwrap();
    assert_eq!(second.next_cursor, None);
    let listed: Vec<ConnectionId> = first
        .items
        .iter()
        .chain(&second.items)
        .map(|c| c.id)
        .collect();
    assert_eq!(listed, in_a);
    assert!(first
        .items
        .iter()
        .chain(&second.items)
        .all(|c| c.readable_collection_id == "coll-a"));

    let skipped = store
        .list_connections(org, Some(&coll_a), &page(1, 10, None))
        .await
        .unwrap();
    assert_eq!(
        skipped.items.iter().map(|c| c.id).collect::<Vec<_>>(),
        in_a[1..]
    );
    let none = store
        .list_connections(org, Some(&readable("coll-z")), &PageRequest::default())
        .await
        .unwrap();
    assert!(none.items.is_empty() && none.next_cursor.is_none());
}

// --- idempotency keys --------------------------------------------------------------------------

fn reservation(
    org: OrganizationId,
    key: &str,
    fingerprint: &str,
    at: DateTime<Utc>,
) -> Reservation {
    Reservation {
        organization_id: org,
        key: key.to_owned(),
        fingerprint: fingerprint.to_owned(),
        connection_id: ConnectionId::new(),
        job_id: JobId::new(),
        lease_token: uuid::Uuid::new_v4().to_string(),
        lease_until: at + LEASE,
        expires_at: at + RETENTION,
    }
}

#[tokio::test]
async fn a_free_key_is_acquired_and_then_held() {
    let aws = TestAws::fresh().await;
    let store = aws.store();
    let org = OrganizationId::new();
    let at = now();
    let first = reservation(org, "key-1", "fp", at);

    assert_eq!(
        store.claim_key(&first, at).await.unwrap(),
        Claim::Acquired(first.clone())
    );
    let second = reservation(org, "key-1", "fp", at);
    assert_eq!(
        store.claim_key(&second, at).await.unwrap(),
        Claim::Held(KeyState::InProgress(first.clone()))
    );
    assert_eq!(
        store.read_key(org, "key-1", at).await.unwrap(),
        Some(KeyState::InProgress(first))
    );
    // Keys belong to their organization.
    let elsewhere = reservation(OrganizationId::new(), "key-1", "fp", at);
    assert_eq!(
        store.claim_key(&elsewhere, at).await.unwrap(),
        Claim::Acquired(elsewhere)
    );
    assert_eq!(store.read_key(org, "key-2", at).await.unwrap(), None);
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_with_the_holders_ids() {
    let aws = TestAws::fresh().await;
    let store = aws.store();
    let org = OrganizationId::new();
    store
        .insert_collection(&collection(org, "finance-docs"), &[])
        .await
        .unwrap();
    let start = now();
    let crashed = reservation(org, "key-1", "fp", start);
    store.claim_key(&crashed, start).await.unwrap();

    let later = start + LEASE + Duration::seconds(1);
    let retry = reservation(org, "key-1", "fp", later);
    let Claim::Acquired(taken) = store.claim_key(&retry, later).await.unwrap() else {
        panic!("the retry takes the key over");
    };
    assert_eq!(taken.connection_id, crashed.connection_id);
    assert_eq!(taken.job_id, crashed.job_id);
    assert_eq!(taken.lease_token, retry.lease_token);
    assert_eq!(taken.lease_until, retry.lease_until);
    assert_eq!(
        store.read_key(org, "key-1", later).await.unwrap(),
        Some(KeyState::InProgress(taken.clone()))
    );

    // The crashed holder wakes up: its transaction loses, and writes nothing.
    let mut conn = connection(org, "finance-docs");
    conn.id = crashed.connection_id;
    let lost = store
        .insert_connection(NewConnection {
            connection: &conn,
            first_job: None,
            idempotency: Some((&crashed, "{}")),
            events: &[],
        })
        .await;
    assert!(matches!(lost, Err(StoreError::LeaseLost)), "{lost:?}");
    assert_eq!(aws.connection_items_count().await, 0);
    // Nor can it free the key it no longer holds.
    store.release_key(&crashed).await.unwrap();
    assert!(store.read_key(org, "key-1", later).await.unwrap().is_some());

    // A third request while the new lease runs waits for it.
    let third = reservation(org, "key-1", "fp", later);
    assert_eq!(
        store.claim_key(&third, later).await.unwrap(),
        Claim::Held(KeyState::InProgress(taken))
    );
}

#[tokio::test]
async fn a_different_body_never_takes_a_key_over() {
    let aws = TestAws::fresh().await;
    let store = aws.store();
    let org = OrganizationId::new();
    let start = now();
    let holder = reservation(org, "key-1", "fp-1", start);
    store.claim_key(&holder, start).await.unwrap();

    let later = start + LEASE + Duration::seconds(1);
    let other = reservation(org, "key-1", "fp-2", later);
    assert_eq!(
        store.claim_key(&other, later).await.unwrap(),
        Claim::Held(KeyState::InProgress(holder))
    );
}

#[tokio::test]
async fn a_key_is_released_only_by_its_holder() {
    let aws = TestAws::fresh().await;
    let store = aws.store();
    let org = OrganizationId::new();
    let at = now();
    let holder = reservation(org, "key-1", "fp", at);
    store.claim_key(&holder, at).await.unwrap();

    let stranger = Reservation {
        lease_token: uuid::Uuid::new_v4().to_string(),
        ..holder.clone()
    };
    store.release_key(&stranger).await.unwrap();
    assert!(store.read_key(org, "key-1", at).await.unwrap().is_some());

    store.release_key(&holder).await.unwrap();
    assert_eq!(store.read_key(org, "key-1", at).await.unwrap(), None);
    // Releasing twice is fine, and the key is free again.
    store.release_key(&holder).await.unwrap();
    let next = reservation(org, "key-1", "fp", at);
    assert_eq!(
        store.claim_key(&next, at).await.unwrap(),
        Claim::Acquired(next)
    );
}

#[tokio::test]
async fn a_create_completes_its_key_in_the_same_transaction() {
    let aws = TestAws::fresh().await;
    let store = aws.store();
    let org = OrganizationId::new();
    store
        .insert_collection(&collection(org, "finance-docs"), &[])
        .await
        .unwrap();
    let at = now();
    let held = reservation(org, "key-1", "fp", at);
    store.claim_key(&held, at).await.unwrap();

    let mut conn = connection(org, "finance-docs");
    conn.id = held.connection_id;
    let job = Job::pending(held.job_id, org, conn.id, Trigger::Initial, at);
    let response = serde_json::to_string(&conn).unwrap();
    store
        .insert_connection(NewConnection {
            connection: &conn,
            first_job: Some(&job),
            idempotency: Some((&held, &response)),
            events: &[],
        })
        .await
        .unwrap();

    let completed = KeyState::Completed {
        fingerprint: "fp".to_owned(),
        response: response.clone(),
    };
    assert_eq!(
        store.read_key(org, "key-1", at).await.unwrap(),
        Some(completed.clone())
    );
    let retry = reservation(org, "key-1", "fp", at + LEASE * 2);
    assert_eq!(
        store.claim_key(&retry, at + LEASE * 2).await.unwrap(),
        Claim::Held(completed.clone())
    );
    // A late release of the completed key keeps the result.
    store.release_key(&held).await.unwrap();
    assert_eq!(
        store.read_key(org, "key-1", at).await.unwrap(),
        Some(completed)
    );

    let item = aws
        .item(&format!("IDEMP#{org}#key-1"), "META")
        .await
        .unwrap();
    assert_eq!(text(&item, "state"), "completed");
    assert_eq!(number(&item, "ttl"), held.expires_at.timestamp());
    let stored: serde_json::Value = serde_json::from_str(text(&item, "response")).unwrap();
    assert_eq!(stored["id"], json!(conn.id.to_string()));
}

#[tokio::test]
async fn an_expired_key_is_forgotten_and_can_be_claimed_again() {
    let aws = TestAws::fresh().await;
    let store = aws.store();
    let org = OrganizationId::new();
    let long_ago = now() - RETENTION - Duration::hours(1);
    let old = reservation(org, "key-1", "fp-old", long_ago);
    store.claim_key(&old, long_ago).await.unwrap();

    let at = now();
    assert_eq!(store.read_key(org, "key-1", at).await.unwrap(), None);
    let fresh = reservation(org, "key-1", "fp-new", at);
    assert_eq!(
        store.claim_key(&fresh, at).await.unwrap(),
        Claim::Acquired(fresh.clone())
    );
    assert_eq!(
        store.read_key(org, "key-1", at).await.unwrap(),
        Some(KeyState::InProgress(fresh))
    );
}

// --- organizations and API keys ----------------------------------------------------------------

#[tokio::test]
async fn api_keys_resolve_to_their_organization_until_revoked() {
    let aws = TestAws::fresh().await;
    let store = aws.store();
    let org = Organization {
        id: OrganizationId::new(),
        name: "Acme".to_owned(),
        created_at: now(),
        redirect_origins: None,
    };
    store.insert_organization(&org).await.unwrap();
    let duplicate = store.insert_organization(&org).await;
    assert!(
        matches!(duplicate, Err(StoreError::AlreadyExists)),
        "{duplicate:?}"
    );

    let key = ApiKeyHash::of(&SecretString::from("sc_test_key".to_owned()));
    let unknown = ApiKeyHash::of(&SecretString::from("sc_unknown".to_owned()));
    store.insert_api_key(&key, org.id, now()).await.unwrap();
    let again = store
        .insert_api_key(&key, OrganizationId::new(), now())
        .await;
    assert!(matches!(again, Err(StoreError::AlreadyExists)), "{again:?}");

    assert_eq!(
        store.organization_for_key(&key).await.unwrap(),
        Some(org.id)
    );
    assert_eq!(store.organization_for_key(&unknown).await.unwrap(), None);
    let listed = store.list_api_keys(org.id).await.unwrap();
    assert_eq!(listed.len(), 1, "the refused duplicate left no entry");
    assert_eq!(listed[0].key_id.as_str(), &key.as_str()[..12]);
    assert_eq!(
        store.api_keys_with_id(&key.key_id()).await.unwrap(),
        vec![StoredApiKey {
            hash: key.clone(),
            organization_id: org.id
        }],
        "the id's pointer names the key"
    );
    assert!(store
        .api_keys_with_id(&unknown.key_id())
        .await
        .unwrap()
        .is_empty());
    assert_eq!(listed[0].revoked_at, None);

    assert!(store.revoke_api_key(&key).await.unwrap());
    assert_eq!(store.organization_for_key(&key).await.unwrap(), None);
    assert!(!store.revoke_api_key(&unknown).await.unwrap());
    let listed = store.list_api_keys(org.id).await.unwrap();
    assert!(listed[0].revoked_at.is_some(), "{listed:?}");
    assert!(store
        .list_api_keys(OrganizationId::new())
        .await
        .unwrap()
        .is_empty());

    let item = aws
        .item(&format!("APIKEY#{}", key.as_str()), "META")
        .await
        .unwrap();
    assert_eq!(text(&item, "organization_id"), org.id.to_string());
    assert_eq!(item.get("revoked"), Some(&AttributeValue::Bool(true)));
}

/// An organization's allowlist: none of its own (the platform's default applies), its own list,
/// or explicitly empty (no redirect_url at all), each read back as it was set.
#[tokio::test]
async fn an_organizations_redirect_allowlist_is_its_own_empty_or_the_default() {
    let aws = TestAws::fresh().await;
    let store = aws.store();
    let org = Organization {
        id: OrganizationId::new(),
        name: "Acme".to_owned(),
        created_at: now(),
        redirect_origins: None,
    };
    store.insert_organization(&org).await.unwrap();
    let read = |store: aws_adapters::DynamoStore| async move {
        store
            .get_organization(org.id)
            .await
            .unwrap()
            .unwrap()
            .redirect_origins
    };
    assert_eq!(read(aws.store()).await, None, "no list of its own");

    let own = [RedirectOrigin::parse("https://app.example.com").unwrap()];
    assert!(store
        .set_redirect_origins(org.id, Some(&own))
        .await
        .unwrap());
    assert_eq!(read(aws.store()).await, Some(own.to_vec()));

    assert!(store.set_redirect_origins(org.id, Some(&[])).await.unwrap());
    assert_eq!(
        read(aws.store()).await,
        Some(Vec::new()),
        "explicitly empty"
    );

    assert!(store.set_redirect_origins(org.id, None).await.unwrap());
    assert_eq!(read(aws.store()).await, None, "back to the default");
    assert!(!store
        .set_redirect_origins(OrganizationId::new(), None)
        .await
        .unwrap());
}

// --- credential vault --------------------------------------------------------------------------

#[tokio::test]
async fn a_secret_write_is_idempotent_for_its_token_and_value() {
    let aws = TestAws::fresh().await;
    let vault = aws.vault();
    let (org, id) = (OrganizationId::new(), ConnectionId::new());
    let value = SecretString::from(r#"{"api_key":"sk-test-1"}"#.to_owned());
    let token = id.to_string();

    vault
        .put_connection_secret(org, id, &value, &token)
        .await
        .unwrap();
    vault
        .put_connection_secret(org, id, &value, &token)
        .await
        .unwrap();

    let read = vault
        .get_connection_secret(org, id)
        .await
        .unwrap()
        .expect("secret");
    assert_eq!(read.value.expose_secret(), value.expose_secret());
    assert_eq!(
        read.version.as_str(),
        token,
        "the first version is the request token's"
    );
    assert_eq!(
        aws.secret_names_under_prefix().await,
        [format!("{}/connections/{org}/{id}", aws.secrets_prefix)]
    );
    assert!(vault
        .get_connection_secret(org, ConnectionId::new())
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_token_reused_with_another_value_is_refused() {
    let aws = TestAws::fresh().await;
    let vault = aws.vault();
    let (org, id) = (OrganizationId::new(), ConnectionId::new());
    let token = id.to_string();
    let first = SecretString::from("first-secret-value".to_owned());
    let second = SecretString::from("second-secret-value".to_owned());
    vault
        .put_connection_secret(org, id, &first, &token)
        .await
        .unwrap();

    let reused = vault.put_connection_secret(org, id, &second, &token).await;
    assert!(matches!(reused, Err(VaultError::TokenReused)), "{reused:?}");
    assert!(!format!("{reused:?}").contains("second-secret-value"));
    let other_token = uuid::Uuid::new_v4().to_string();
    let foreign = vault
        .put_connection_secret(org, id, &second, &other_token)
        .await;
    assert!(
        matches!(foreign, Err(VaultError::TokenReused)),
        "{foreign:?}"
    );

    let kept = vault.get_connection_secret(org, id).await.unwrap().unwrap();
    assert_eq!(kept.value.expose_secret(), "first-secret-value");
}

/// Secrets Manager refuses values over 64 KiB; the emulator stores them. The adapter refuses
/// them itself, before sending anything, so both answer alike.
#[tokio::test]
async fn a_secret_over_the_service_limit_is_refused_before_it_is_sent() {
    let aws = TestAws::fresh().await;
    let vault = aws.vault();
    let (org, id) = (OrganizationId::new(), ConnectionId::new());
    let huge = SecretString::from("k".repeat(SECRET_VALUE_LIMIT + 1));
    let put = vault
        .put_connection_secret(org, id, &huge, &id.to_string())
        .await;
    assert!(
        matches!(put, Err(VaultError::TooLarge { bytes }) if bytes == SECRET_VALUE_LIMIT + 1),
        "{put:?}"
    );
    assert!(
        aws.secret_names_under_prefix().await.is_empty(),
        "nothing stored"
    );

    let fits = SecretString::from("k".repeat(SECRET_VALUE_LIMIT));
    vault
        .put_connection_secret(org, id, &fits, &id.to_string())
        .await
        .unwrap();
    let replaced = vault.stage_connection_secret(org, id, &huge).await;
    assert!(
        matches!(replaced, Err(VaultError::TooLarge { .. })),
        "{replaced:?}"
    );
    let kept = vault.get_connection_secret(org, id).await.unwrap().unwrap();
    assert_eq!(
        kept.value.expose_secret().len(),
        SECRET_VALUE_LIMIT,
        "the stored one stays"
    );
}

#[tokio::test]
async fn a_secret_is_deleted_at_once_and_a_missing_one_is_fine() {
    let aws = TestAws::fresh().await;
    let vault = aws.vault();
    let (org, id) = (OrganizationId::new(), ConnectionId::new());
    let value = SecretString::from("value-1".to_owned());
    vault
        .put_connection_secret(org, id, &value, &id.to_string())
        .await
        .unwrap();

    vault.delete_connection_secret(org, id).await.unwrap();
    assert!(vault
        .get_connection_secret(org, id)
        .await
        .unwrap()
        .is_none());
    assert!(aws.secret_names_under_prefix().await.is_empty());

    // No recovery window: the name can be used again right away.
    let token = uuid::Uuid::new_v4().to_string();
    vault
        .put_connection_secret(org, id, &value, &token)
        .await
        .unwrap();
    assert_eq!(aws.secret_names_under_prefix().await.len(), 1);

    vault
        .delete_connection_secret(org, ConnectionId::new())
        .await
        .unwrap();
}

/// A staged version is not current until it is promoted, and the promotion is a
/// compare-and-swap on the current version; a deleted secret is never re-created by a stage.
#[tokio::test]
async fn a_staged_secret_version_becomes_current_only_by_a_promotion_from_the_current_one() {
    let aws = TestAws::fresh().await;
    let vault = aws.vault();
    let (org, id) = (OrganizationId::new(), ConnectionId::new());
    let value = |v: &str| SecretString::from(v.to_owned());
    let token = id.to_string();
    vault
        .put_connection_secret(org, id, &value("v1"), &token)
        .await
        .unwrap();
    let first = vault
        .current_connection_secret_version(org, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.as_str(), token);

    let second = vault
        .stage_connection_secret(org, id, &value("v2"))
        .await
        .unwrap();
    let third = vault
        .stage_connection_secret(org, id, &value("v3"))
        .await
        .unwrap();
    let current = vault.get_connection_secret(org, id).await.unwrap().unwrap();
    assert_eq!(current.value.expose_secret(), "v1", "staged is not current");
    let staged = vault
        .get_connection_secret_version(org, id, &second)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(staged.expose_secret(), "v2", "each staged version is kept");

    assert!(vault
        .promote_connection_secret(org, id, &first, &third)
        .await
        .unwrap());
    assert!(
        !vault
            .promote_connection_secret(org, id, &first, &second)
            .await
            .unwrap(),
        "a promotion from a version that is no longer current is refused"
    );
    let current = vault.get_connection_secret(org, id).await.unwrap().unwrap();
    assert_eq!(
        (current.value.expose_secret(), &current.version),
        ("v3", &third)
    );

    vault.delete_connection_secret(org, id).await.unwrap();
    let staged = vault.stage_connection_secret(org, id, &value("v4")).await;
    assert!(matches!(staged, Err(VaultError::Missing)), "{staged:?}");
    assert!(
        aws.secret_names_under_prefix().await.is_empty(),
        "a stage never re-creates a deleted secret"
    );
}

/// Marks of a connection's secret version: new credentials replace any, refreshed tokens only
/// the version they came from, and a connection being deleted takes no mark.
#[tokio::test]
async fn a_secret_version_mark_follows_only_the_version_it_came_from() {
    let aws = TestAws::fresh().await;
    let store = aws.store();
    let org = OrganizationId::new();
    store
        .insert_collection(&collection(org, "finance-docs"), &[])
        .await
        .unwrap();
    let conn = connection(org, "finance-docs");
    store.insert_connection(plain(&conn)).await.unwrap();
    let id = conn.id;
    let (v1, v2, v3) = (
        SecretVersion::new("v1"),
        SecretVersion::new("v2"),
        SecretVersion::new("v3"),
    );
    assert_eq!(store.marked_secret_version(id).await.unwrap(), None);
    assert!(store
        .mark_secret_version(org, id, &v2, Succession::Follows(&v1))
        .await
        .unwrap());
    assert!(
        !store
            .mark_secret_version(org, id, &v3, Succession::Follows(&v1))
            .await
            .unwrap(),
        "tokens refreshed from v1 do not succeed v2"
    );
    assert!(store
        .mark_secret_version(org, id, &v3, Succession::Replaces)
        .await
        .unwrap());
    assert_eq!(store.marked_secret_version(id).await.unwrap(), Some(v3));

    let current = store.get_versioned(org, id).await.unwrap().unwrap();
    store
        .begin_delete(&current.value, current.version, Utc::now(), &[])
        .await
        .unwrap();
    assert!(
        !store
            .mark_secret_version(org, id, &v1, Succession::Replaces)
            .await
            .unwrap(),
        "a connection being deleted takes no mark"
    );
}

// --- sync queue --------------------------------------------------------------------------------

#[tokio::test]
async fn a_sync_message_travels_as_json() {
    let aws = TestAws::fresh().await;
    let message = SyncMessage {
        job_id: JobId::new(),
        connection_id: ConnectionId::new(),
        organization_id: OrganizationId::new(),
        trigger: Trigger::Manual,
        force_full_sync: true,
        not_before: None,
    };
    aws.queue().enqueue(&message).await.unwrap();

    let bodies = aws.receive_messages().await;
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let received: SyncMessage = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(received, message);
    let raw: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(raw["trigger"], "manual");
    assert_eq!(raw["job_id"], json!(message.job_id.to_string()));
}

// --- bootstrap ---------------------------------------------------------------------------------

#[tokio::test]
async fn bootstrap_is_idempotent_and_configures_what_the_platform_relies_on() {
    let aws = TestAws::fresh().await;
    let clients = &aws.clients;
    ensure_state_table(&clients.dynamodb, &aws.state_table)
        .await
        .unwrap();
    ensure_entities_table(&clients.dynamodb, &aws.entities_table)
        .await
        .unwrap();
    let queue_name = aws.queue_url.rsplit('/').next().unwrap().to_owned();
    let url = ensure_queue(&clients.sqs, &queue_name).await.unwrap();
    assert_eq!(url, aws.queue_url);

    let table = clients
        .dynamodb
        .describe_table()
        .table_name(&aws.state_table)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let index = table
        .global_secondary_indexes()
        .iter()
        .find(|i| i.index_name() == Some(aws_adapters::SCHEDULE_INDEX))
        .expect("schedule index");
    let keys: Vec<&str> = index
        .key_schema()
        .iter()
        .map(|k| k.attribute_name())
        .collect();
    assert_eq!(keys, ["sched_bucket", "next_run_at"]);
    let ttl = clients
        .dynamodb
        .describe_time_to_live()
        .table_name(&aws.state_table)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), Some("ttl"));

    use aws_sdk_sqs::types::QueueAttributeName;
    let attributes = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&aws.queue_url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let attributes = attributes.attributes().unwrap();
    assert_eq!(attributes[&QueueAttributeName::VisibilityTimeout], "900");
    let redrive: serde_json::Value =
        serde_json::from_str(&attributes[&QueueAttributeName::RedrivePolicy]).unwrap();
    assert!(redrive["deadLetterTargetArn"]
        .as_str()
        .is_some_and(|arn| arn.ends_with(&format!("{queue_name}-dlq"))));
    // A run that keeps failing to start fails its job before its message is dead-lettered.
    let max_receive = domain::usecases::sync::attempts::QUEUE_MAX_RECEIVE_COUNT;
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        max_receive.to_string()
    );
    let template =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    assert!(
        template.contains(&format!("maxReceiveCount: {max_receive}")),
        "the deployed queue redrives after the same count"
    );
}

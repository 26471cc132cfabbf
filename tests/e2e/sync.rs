//! Syncs end to end on the emulator: a create queues the first job, the worker (the same handler
//! the Lambda runs, fed from the real queue) runs it, and the API shows what happened.

use crate::helpers::app::TestApp;
use crate::helpers::sdk::{CallLog, WithInterceptor};
use aws_adapters::DynamoEntities;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::AttributeValue;
use domain::ids::{ConnectionId, JobId};
use domain::job::{Job, Lease, SyncMessage, Trigger};
use domain::usecases::sync::SyncSettings;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use worker::{handle_batch, poller, Worker};

const KEY: &str = "stub-sync-secret-key-0451";

/// The worker on the test's platform, with the entity table's requests recorded.
fn worker_for(app: &TestApp, settings: SyncSettings) -> (Worker, Writes) {
    let writes = Writes(CallLog::default());
    let mut platform = app.platform.clone();
    platform.entities = Arc::new(DynamoEntities::new(
        writes.0.dynamodb(&app.aws.clients.dynamodb),
        &app.aws.entities_table,
    ));
    (Worker { platform, settings }, writes)
}

/// The entity table's BatchWriteItem requests.
struct Writes(CallLog);

impl Writes {
    fn count(&self) -> usize {
        self.0.count("DynamoDB_20120810.BatchWriteItem")
    }
}

fn fast() -> SyncSettings {
    SyncSettings {
        progress_interval: Duration::ZERO,
        ..SyncSettings::default()
    }
}

/// Delivers queued messages to the worker until the queue stays empty for `quiet`.
async fn drain(app: &TestApp, worker: &Worker, quiet: Duration) -> usize {
    let queue = app.aws.queue();
    let mut handled = 0;
    loop {
        let n = poller::poll_once(worker, &queue, quiet).await;
        if n == 0 {
            return handled;
        }
        handled += n;
    }
}

async fn create_stub(app: &TestApp, config: Value) -> Value {
    app.create_collection("docs").await;
    let response = app
        .create_connection(&json!({
            "short_name": "stub",
            "readable_collection_id": "docs",
            "authentication": {"credentials": {"api_key": KEY}},
            "config": config,
        }))
        .await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

async fn get(app: &TestApp, path: &str) -> Value {
    let response = app.get(path).await;
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

fn ids(connection: &Value) -> (ConnectionId, JobId) {
    (
        connection["id"].as_str().unwrap().parse().unwrap(),
        connection["sync"]["last_job"]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
    )
}

/// Changes the connection's config (as a PATCH will) and queues a manual job.
async fn run_again(app: &TestApp, id: ConnectionId, config: Value, force_full_sync: bool) -> JobId {
    let store = &app.platform.store;
    let current = store.get_versioned(app.org, id).await.unwrap().unwrap();
    let mut connection = current.value.clone();
    let changes: Map<String, Value> = config.as_object().unwrap().clone();
    connection
        .config
        .get_or_insert_with(Map::new)
        .extend(changes);
    store
        .replace_connection(&connection, current.version, &[])
        .await
        .unwrap();
    let mut job = Job::pending(
        JobId::new(),
        app.org,
        id,
        Trigger::Manual,
        chrono::Utc::now(),
    );
    job.force_full_sync = force_full_sync;
    store.start_job(&job, &[]).await.unwrap();
    app.platform.queue.enqueue(&job.message()).await.unwrap();
    job.id
}

async fn job(app: &TestApp, id: ConnectionId, job: JobId) -> Value {
    get(app, &format!("/source-connections/{id}/jobs/{job}")).await
}

fn counts(job: &Value) -> [u64; 5] {
    ["inserted", "updated", "deleted", "kept", "failed"]
        .map(|c| job[format!("entities_{c}")].as_u64().unwrap())
}

async fn all_entities(app: &TestApp, id: ConnectionId) -> Vec<Value> {
    let mut path = format!("/source-connections/{id}/entities?limit=1000");
    let mut all = Vec::new();
    loop {
        let response = app.get(&path).await;
        assert_eq!(response.status(), 200);
        let next = response
            .headers()
            .get("link")
            .and_then(|l| l.to_str().ok())
            .and_then(|l| l.split_once('<').and_then(|(_, r)| r.split_once('>')))
            .map(|(p, _)| p.to_owned());
        let page: Vec<Value> = response.json().await.unwrap();
        all.extend(page);
        match next {
            Some(p) => path = p,
            None => return all,
        }
    }
}

#[tokio::test]
async fn a_created_stub_connection_syncs_and_the_api_shows_it() {
    let app = TestApp::spawn().await;
    let created = create_stub(&app, json!({"entity_count": 120, "seed": 3})).await;
    let (id, first) = ids(&created);
    let (worker, writes) = worker_for(&app, fast());
    assert_eq!(drain(&app, &worker, Duration::from_secs(1)).await, 1);

    let c = get(&app, &format!("/source-connections/{id}")).await;
    assert_eq!(c["status"], "active");
    assert_eq!(c["entities"]["total_entities"], 120);
    assert_eq!(c["entities"]["by_type"]["stub_container"]["count"], 5);
    assert_eq!(c["entities"]["by_type"]["stub_item"]["count"], 115);
    assert!(c["entities"]["by_type"]["stub_item"]["last_updated"].is_string());
    assert_eq!(c["sync"]["total_runs"], 1);
    assert_eq!(c["sync"]["successful_runs"], 1);
    assert_eq!(c["sync"]["last_job"]["status"], "completed");
    assert_eq!(c["sync"]["last_job"]["entities_inserted"], 120);

    let jobs: Vec<Value> = get(&app, &format!("/source-connections/{id}/jobs"))
        .await
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["id"], first.to_string());
    assert_eq!(counts(&jobs[0]), [120, 0, 0, 0, 0]);
    assert!(jobs[0]["duration_seconds"].is_number() && jobs[0]["completed_at"].is_string());
    assert_eq!(job(&app, id, first).await["status"], "completed");
    assert_eq!(writes.count(), 120 / 25 + 1, "full batches but the last");

    let entities = all_entities(&app, id).await;
    assert_eq!(entities.len(), 120);
    let containers = get(
        &app,
        &format!("/source-connections/{id}/entities?type=stub_container"),
    )
    .await;
    assert_eq!(containers.as_array().unwrap().len(), 5);
    assert_eq!(containers[0]["type"], "stub_container");
    assert_eq!(containers[0]["payload"]["index"], 0);
    assert_eq!(containers[0]["payload_truncated"], false);
    let page = app
        .get(&format!("/source-connections/{id}/entities?limit=50"))
        .await;
    assert!(
        page.headers().get("link").is_some(),
        "a next page is linked"
    );

    // Newest first once there are two.
    let second = run_again(&app, id, json!({}), false).await;
    drain(&app, &worker, Duration::from_secs(1)).await;
    let jobs = get(&app, &format!("/source-connections/{id}/jobs?limit=1")).await;
    assert_eq!(jobs[0]["id"], second.to_string());
}

#[tokio::test]
async fn a_resync_writes_only_what_changed_and_a_full_sync_deletes_only_what_is_gone() {
    let app = TestApp::spawn().await;
    let (id, _) = ids(&create_stub(&app, json!({"entity_count": 300, "seed": 5})).await);
    let (worker, writes) = worker_for(&app, fast());
    drain(&app, &worker, Duration::from_secs(1)).await;
    let after_first = writes.count();

    let unchanged = run_again(&app, id, json!({}), false).await;
    drain(&app, &worker, Duration::from_secs(1)).await;
    assert_eq!(counts(&job(&app, id, unchanged).await), [0, 0, 0, 300, 0]);
    assert_eq!(
        writes.count(),
        after_first,
        "a kept entity is never written"
    );

    let before: Vec<Value> = all_entities(&app, id).await;
    let revised = run_again(&app, id, json!({"revision": 1}), false).await;
    drain(&app, &worker, Duration::from_secs(1)).await;
    assert_eq!(counts(&job(&app, id, revised).await), [0, 30, 0, 270, 0]);
    assert_eq!(
        writes.count(),
        after_first + 2,
        "30 changes: one full batch and the rest"
    );
    let after: Vec<Value> = all_entities(&app, id).await;
    let changed: Vec<u64> = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b != a)
        .map(|(_, a)| a["payload"]["index"].as_u64().unwrap())
        .collect();
    assert_eq!(changed.len(), 30);
    assert!(changed.iter().all(|i| i % 10 == 1), "{changed:?}");

    let full = run_again(&app, id, json!({"entity_count": 260}), true).await;
    drain(&app, &worker, Duration::from_secs(1)).await;
    assert_eq!(counts(&job(&app, id, full).await), [0, 0, 40, 260, 0]);
    let left = all_entities(&app, id).await;
    assert_eq!(left.len(), 260);
    assert!(left
        .iter()
        .all(|e| e["payload"]["index"].as_u64().unwrap() < 260));
    let c = get(&app, &format!("/source-connections/{id}")).await;
    assert_eq!(c["entities"]["total_entities"], 260);
}

#[tokio::test]
async fn an_incremental_run_deletes_nothing() {
    let app = TestApp::spawn().await;
    let (id, _) = ids(&create_stub(&app, json!({"entity_count": 100, "incremental": true})).await);
    let (worker, _) = worker_for(&app, fast());
    drain(&app, &worker, Duration::from_secs(1)).await;
    let smaller = run_again(&app, id, json!({"entity_count": 50, "revision": 1}), false).await;
    drain(&app, &worker, Duration::from_secs(1)).await;
    assert_eq!(counts(&job(&app, id, smaller).await), [0, 5, 0, 0, 0]);
    assert_eq!(all_entities(&app, id).await.len(), 100);
}

#[tokio::test]
async fn a_redelivered_message_changes_nothing_and_a_bad_one_alone_fails_in_a_batch() {
    let app = TestApp::spawn().await;
    let created = create_stub(&app, json!({"entity_count": 30})).await;
    let (id, first) = ids(&created);
    let (worker, writes) = worker_for(&app, fast());
    drain(&app, &worker, Duration::from_secs(1)).await;
    let before = get(&app, &format!("/source-connections/{id}")).await;
    let written = writes.count();

    let message = SyncMessage {
        job_id: first,
        connection_id: id,
        organization_id: app.org,
        trigger: Trigger::Initial,
        force_full_sync: false,
        not_before: None,
    };
    let mut event = SqsEvent::default();
    for (message_id, body) in [
        ("again", serde_json::to_string(&message).unwrap()),
        ("garbage", "{not json".to_owned()),
    ] {
        let mut record = SqsMessage::default();
        record.message_id = Some(message_id.into());
        record.body = Some(body);
        event.records.push(record);
    }
    let response = handle_batch(&worker, event, Instant::now() + Duration::from_secs(60)).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["garbage"]);
    assert_eq!(
        get(&app, &format!("/source-connections/{id}")).await,
        before
    );
    assert_eq!(writes.count(), written);
}

#[tokio::test]
async fn a_run_continued_across_invocations_ends_exactly_as_one_run() {
    let one = TestApp::spawn().await;
    let (one_id, one_job) = ids(&create_stub(&one, json!({"entity_count": 450, "seed": 8})).await);
    let (worker, _) = worker_for(&one, fast());
    assert_eq!(drain(&one, &worker, Duration::from_secs(1)).await, 1);

    let many = TestApp::spawn().await;
    let (many_id, many_job) =
        ids(&create_stub(&many, json!({"entity_count": 450, "seed": 8})).await);
    let tiny = SyncSettings {
        max_pages_per_invocation: 2,
        ..fast()
    };
    let (worker, _) = worker_for(&many, tiny);
    let deliveries = drain(&many, &worker, Duration::from_secs(1)).await;
    assert!(deliveries >= 3, "{deliveries} invocations");

    let a = job(&one, one_id, one_job).await;
    let b = job(&many, many_id, many_job).await;
    assert_eq!(b["status"], "completed");
    assert_eq!(counts(&a), counts(&b));
    let strip = |entities: Vec<Value>| -> Vec<(Value, Value)> {
        entities
            .into_iter()
            .map(|e| (e["entity_id"].clone(), e["payload"].clone()))
            .collect()
    };
    assert_eq!(
        strip(all_entities(&one, one_id).await),
        strip(all_entities(&many, many_id).await)
    );
    let checkpoints = many
        .aws
        .scan_keys()
        .await
        .into_iter()
        .filter(|(_, sk)| sk.starts_with("CKPT#"))
        .count();
    assert_eq!(
        checkpoints, 0,
        "the checkpoint's chunks are gone with the run"
    );
}

#[tokio::test]
async fn a_run_whose_lease_expired_is_taken_over_and_a_live_one_is_left_alone() {
    let app = TestApp::spawn().await;
    let (id, first) = ids(&create_stub(&app, json!({"entity_count": 40})).await);
    let store = &app.platform.store;
    let now = chrono::Utc::now();
    let crashed = Lease {
        holder: "crashed-invocation".into(),
        until: now + chrono::Duration::seconds(60),
    };
    store
        .claim_job(id, first, &crashed, now, &|_| Vec::new())
        .await
        .unwrap();
    let (worker, _) = worker_for(&app, fast());
    let message = app
        .aws
        .receive_messages()
        .await
        .pop()
        .expect("the first job's message");
    let event = |body: &str| {
        let mut record = SqsMessage::default();
        record.message_id = Some("m-1".into());
        record.body = Some(body.to_owned());
        let mut event = SqsEvent::default();
        event.records.push(record);
        event
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let busy = handle_batch(&worker, event(&message), deadline).await;
    assert_eq!(
        busy.batch_item_failures.len(),
        1,
        "kept for later while the lease is alive"
    );
    assert_eq!(job(&app, id, first).await["status"], "running");

    // The holder died: its lease runs out (its holder stays recorded).
    let expired = (chrono::Utc::now() - chrono::Duration::seconds(1)).timestamp_millis();
    let expired = AttributeValue::N(expired.to_string());
    app.aws
        .set_job_attribute(id, first, "lease_until", expired)
        .await;
    let done = handle_batch(&worker, event(&message), deadline).await;
    assert!(done.batch_item_failures.is_empty());
    assert_eq!(counts(&job(&app, id, first).await), [40, 0, 0, 0, 0]);
}

#[tokio::test]
async fn cancelling_stops_the_run_between_pages() {
    let app = TestApp::spawn().await;
    let (id, first) = ids(&create_stub(&app, json!({"entity_count": 500})).await);
    let one_page = SyncSettings {
        max_pages_per_invocation: 1,
        ..fast()
    };
    let (worker, _) = worker_for(&app, one_page);
    assert_eq!(
        poller::poll_once(&worker, &app.aws.queue(), Duration::from_secs(1)).await,
        1
    );
    assert_eq!(job(&app, id, first).await["status"], "running");
    let c = get(&app, &format!("/source-connections/{id}")).await;
    assert_eq!(c["status"], "syncing", "while its job runs");
    assert_eq!(c["sync"]["last_job"]["status"], "running");
    // What the cancel route does: mark the job cancelling.
    let cancelling = AttributeValue::S("cancelling".into());
    app.aws
        .set_job_attribute(id, first, "status", cancelling)
        .await;
    drain(&app, &worker, Duration::from_secs(1)).await;
    let j = job(&app, id, first).await;
    assert_eq!(j["status"], "cancelled");
    assert_eq!(j["entities_inserted"], 100);
    assert_eq!(all_entities(&app, id).await.len(), 100);
    let c = get(&app, &format!("/source-connections/{id}")).await;
    assert_eq!(c["status"], "active");
    assert_eq!(c["sync"]["last_job"]["status"], "cancelled");
}

#[tokio::test]
async fn injected_failures_end_as_a_user_expects() {
    let app = TestApp::spawn().await;
    let (worker, _) = worker_for(&app, fast());
    let (id, first) = ids(&create_stub(
        &app,
        json!({"entity_count": 300, "fail_after": 150, "fail_with": "auth"}),
    )
    .await);
    drain(&app, &worker, Duration::from_secs(1)).await;
    let j = job(&app, id, first).await;
    assert_eq!(
        (j["status"].as_str(), j["error_category"].as_str()),
        (Some("failed"), Some("api_key_invalid"))
    );
    assert_eq!(j["entities_inserted"], 150);
    let c = get(&app, &format!("/source-connections/{id}")).await;
    assert_eq!(c["status"], "needs_reauth");
    assert_eq!(c["error_category"], "api_key_invalid");

    let broken = app
        .create_connection(&json!({
            "short_name": "stub",
            "readable_collection_id": "docs",
            "authentication": {"credentials": {"api_key": KEY}},
            "config": {"entity_count": 300, "fail_after": 100, "fail_with": "server_error"},
        }))
        .await;
    let (id, first) = ids(&broken.json::<Value>().await.unwrap());
    drain(&app, &worker, Duration::from_secs(1)).await;
    let j = job(&app, id, first).await;
    assert_eq!(j["status"], "failed");
    assert!(j["error"].as_str().unwrap().contains("HTTP 500"), "{j}");
    assert_eq!(j["error_category"], Value::Null);
    let c = get(&app, &format!("/source-connections/{id}")).await;
    assert_eq!(c["status"], "error");
    assert!(c["error_message"].as_str().unwrap().contains("HTTP 500"));
    assert!(!c.to_string().contains(KEY) && !j.to_string().contains(KEY));

    let limited = app
        .create_connection(&json!({
            "short_name": "stub",
            "readable_collection_id": "docs",
            "authentication": {"credentials": {"api_key": KEY}},
            "config": {"entity_count": 300, "fail_after": 200, "fail_with": "rate_limit"},
        }))
        .await;
    let (id, first) = ids(&limited.json::<Value>().await.unwrap());
    let queue = app.aws.queue();
    assert_eq!(
        poller::poll_once(&worker, &queue, Duration::from_secs(1)).await,
        1
    );
    let deferred = job(&app, id, first).await;
    assert_eq!(
        (
            deferred["status"].as_str(),
            deferred["entities_inserted"].as_u64()
        ),
        (Some("running"), Some(200))
    );
    // The continuation waits out the source's 2 seconds in the queue, not in the worker.
    let started = std::time::Instant::now();
    assert_eq!(
        poller::poll_once(&worker, &queue, Duration::ZERO).await,
        0,
        "not visible yet"
    );
    drain(&app, &worker, Duration::from_secs(5)).await;
    assert!(started.elapsed() >= Duration::from_millis(1500));
    let j = job(&app, id, first).await;
    assert_eq!(
        (j["status"].as_str(), j["entities_inserted"].as_u64()),
        (Some("completed"), Some(300))
    );

    assert!(
        !crate::helpers::logs::captured().contains(KEY),
        "no secret in the log"
    );
}

#[tokio::test]
async fn foreign_and_unknown_ids_answer_404() {
    let app = TestApp::spawn().await;
    let (id, first) = ids(&create_stub(&app, json!({"entity_count": 5})).await);
    let (_, other_key) = app.other_tenant().await;
    for path in [
        format!("/source-connections/{id}/jobs"),
        format!("/source-connections/{id}/jobs/{first}"),
        format!("/source-connections/{id}/entities"),
    ] {
        let foreign = app
            .request(reqwest::Method::GET, &path, Some(&other_key), None, &[])
            .await;
        assert_eq!(foreign.status(), 404, "{path}");
    }
    let unknown = app
        .get(&format!("/source-connections/{id}/jobs/{}", JobId::new()))
        .await;
    assert_eq!(unknown.status(), 404);
    let bad = app
        .get(&format!("/source-connections/{id}/jobs?limit=0"))
        .await;
    assert_eq!(bad.status(), 422);
}

#[tokio::test]
async fn a_payload_too_large_for_an_item_is_stored_cut_and_flagged() {
    use domain::entity::{Change, Entity};
    use domain::ports::EntityStore;
    let app = TestApp::spawn().await;
    let entities = app.aws.entities();
    let connection = ConnectionId::new();
    let entity = Entity {
        entity_type: "doc".into(),
        entity_id: "big".into(),
        title: "A big document".into(),
        updated_at: None,
        payload: json!({"text": "é".repeat(300_000)}),
    };
    let write = crate::helpers::syncing::write_of(entity, JobId::new(), Change::Inserted);
    entities
        .write(connection, &[write])
        .await
        .expect("stored, not refused");
    let page = entities
        .list(connection, None, &Default::default())
        .await
        .unwrap();
    let stored = &page.items[0];
    assert!(stored.payload_truncated);
    let text = stored.payload.as_str().expect("the cut JSON text");
    assert!(text.len() <= aws_adapters::MAX_PAYLOAD_BYTES && text.starts_with("{\"text\":\"é"));
}

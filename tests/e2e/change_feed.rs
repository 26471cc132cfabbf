//! The change feed (`GET /source-connections/{id}/changes`) against the emulator: what a
//! consumer reads after each kind of sync, its filters, the retention's 410, the size bound,
//! and a consumer polling while a sync writes, with the index lagging behind the writes.

use crate::helpers::app::{problem, TestApp};
use crate::helpers::clock::TestClock;
use crate::helpers::syncing::{create, drain, entities, large_documents, run_and_wait, worker};
use domain::ids::ConnectionId;
use domain::ports::EntityStore;
use domain::usecases::sync::SyncSettings;
use http::Method;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use worker::{poller, Worker};

const KEY: &str = "stub-feed-secret-key-7731";

/// An app whose feed shows what its jobs marked done at once (the emulator's index has no lag).
async fn app() -> TestApp {
    let app = TestApp::spawn_with(|p| p.feed.settle = Duration::ZERO).await;
    app.create_collection("docs").await;
    app
}

fn stub(config: Value) -> Value {
    json!({
        "short_name": "stub",
        "readable_collection_id": "docs",
        "authentication": {"credentials": {"api_key": KEY}},
        "config": config,
    })
}

/// One read of the feed: (changes, next_cursor, has_more).
async fn read(app: &TestApp, id: &str, query: &str) -> (Vec<Value>, String, bool) {
    let response = app
        .get(&format!("/source-connections/{id}/changes?{query}"))
        .await;
    assert_eq!(response.status(), 200, "{query}");
    let page: Value = response.json().await.unwrap();
    let changes = page["changes"].as_array().unwrap().clone();
    (
        changes,
        page["next_cursor"].as_str().unwrap().to_owned(),
        page["has_more"].as_bool().unwrap(),
    )
}

/// Every change from `cursor` (or the start) until caught up, and the cursor to go on from.
async fn walk(app: &TestApp, id: &str, start: &str, extra: &str) -> (Vec<Value>, String) {
    let mut all = Vec::new();
    let mut query = format!("limit=1000{start}{extra}");
    loop {
        let (changes, next, more) = read(app, id, &query).await;
        all.extend(changes);
        if !more {
            return (all, next);
        }
        query = format!("limit=1000&cursor={next}{extra}");
    }
}

fn cursor(c: &str) -> String {
    format!("&cursor={c}")
}

/// `op` of each entity id.
fn ops(changes: &[Value]) -> BTreeMap<String, String> {
    let map: BTreeMap<String, String> = changes
        .iter()
        .map(|c| {
            (
                c["entity_id"].as_str().unwrap().to_owned(),
                c["op"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(map.len(), changes.len(), "each entity once: {changes:?}");
    map
}

fn ids_with(ops: &BTreeMap<String, String>, op: &str) -> BTreeSet<u32> {
    ops.iter()
        .filter(|(_, o)| *o == op)
        .map(|(id, _)| id.parse().unwrap())
        .collect()
}

async fn patch_config(app: &TestApp, id: &str, config: Value) {
    let response = app
        .request(
            Method::PATCH,
            &format!("/source-connections/{id}"),
            Some(&app.api_key),
            Some(&json!({ "config": config })),
            &[],
        )
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_consumer_reads_adds_then_the_revised_subset_then_exactly_the_deletions() {
    let app = app().await;
    // sync.completed carries the feed's position at the end of its job.
    let subscribed = app
        .post(
            "/webhooks/subscriptions",
            &json!({"url": "http://127.0.0.1:9/hooks", "event_types": ["sync.completed"]}),
        )
        .await;
    assert_eq!(subscribed.status(), 200);
    let created = create(&app, &stub(json!({"entity_count": 120, "seed": 3}))).await;
    let id = created["id"].as_str().unwrap().to_owned();
    drain(&app, Duration::from_secs(2)).await;

    // The first sync: every entity added, with its state.
    let (first, c1) = walk(&app, &id, "", "").await;
    let first_ops = ops(&first);
    assert_eq!(first.len(), 120);
    assert!(first_ops.values().all(|op| op == "added"));
    let item = first.iter().find(|c| c["entity_id"] == "0000007").unwrap();
    assert_eq!(item["type"], "stub_item");
    assert_eq!(item["payload"]["index"], 7);
    assert!(item["title"].is_string() && item["deleted_at"].is_null());
    let (none, c1_again, more) = read(&app, &id, &format!("cursor={c1}")).await;
    assert!(none.is_empty() && !more, "caught up");

    // A revision: exactly the changed tenth, as updated, with their new state.
    patch_config(
        &app,
        &id,
        json!({"entity_count": 120, "seed": 3, "revision": 1}),
    )
    .await;
    let revised = run_and_wait(&app, &id, false).await;
    assert_eq!(revised["entities_updated"], 12);
    let (second, c2) = walk(&app, &id, &cursor(&c1_again), "").await;
    let second_ops = ops(&second);
    let expected: BTreeSet<u32> = (0..120).filter(|i| i % 10 == 1).collect();
    assert_eq!(ids_with(&second_ops, "updated"), expected);
    assert_eq!(second.len(), 12);
    assert!(second.iter().all(|c| c["payload"]["version"] == 1));
    let completed: Vec<Value> = app
        .get("/webhooks/messages?event_types=sync.completed")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(completed.len(), 2, "the first sync and the revision");
    let after_revision = completed[0]["payload"]["changes_cursor"].as_str().unwrap();
    let (nothing_after, _) = walk(&app, &id, &cursor(after_revision), "").await;
    assert!(nothing_after.is_empty(), "{nothing_after:?}");
    let before_removal = chrono::Utc::now();

    // A full sync after the source lost 20: exactly those, deleted, with deleted_at.
    patch_config(
        &app,
        &id,
        json!({"entity_count": 100, "seed": 3, "revision": 1}),
    )
    .await;
    let full = run_and_wait(&app, &id, true).await;
    assert_eq!(full["entities_deleted"], 20);
    let (third, c3) = walk(&app, &id, &cursor(&c2), "").await;
    let third_ops = ops(&third);
    assert_eq!(ids_with(&third_ops, "deleted"), (100..120).collect());
    assert_eq!(third.len(), 20);
    for change in &third {
        assert!(change["payload"].is_null() && change["title"].is_null());
        let deleted_at = change["deleted_at"].as_str().unwrap();
        let at = chrono::DateTime::parse_from_rfc3339(deleted_at).unwrap();
        assert!(at >= before_removal, "{deleted_at}");
    }

    // From the revision's changes_cursor: exactly what the next job did.
    let (next_job, _) = walk(&app, &id, &cursor(after_revision), "").await;
    assert_eq!(ids_with(&ops(&next_job), "deleted"), (100..120).collect());
    assert_eq!(next_job.len(), 20);

    // Net ops since c1: 101 and 111 were updated then deleted, so they are deleted; the other
    // ten revised ones are updated.
    let (since_c1, _) = walk(&app, &id, &cursor(&c1), "").await;
    let net = ops(&since_c1);
    assert_eq!(ids_with(&net, "deleted"), (100..120).collect());
    let updated: BTreeSet<u32> = (1..100).filter(|i| i % 10 == 1).collect();
    assert_eq!(ids_with(&net, "updated"), updated);
    let (only_updated, _) = walk(&app, &id, &cursor(&c1), "&filter=updated").await;
    assert_eq!(ids_with(&ops(&only_updated), "updated"), updated);
    assert_eq!(only_updated.len(), 10);
    let (only_deleted, _) = walk(&app, &id, "", "&filter=deleted").await;
    assert_eq!(
        ids_with(&ops(&only_deleted), "deleted"),
        (100..120).collect()
    );
    assert_eq!(only_deleted.len(), 20);

    // One type: the containers (every 25th), live and deleted.
    let (containers, _) = walk(&app, &id, "", "&type=stub_container").await;
    let containers = ops(&containers);
    assert_eq!(ids_with(&containers, "added"), [0, 25, 50, 75].into());
    assert_eq!(ids_with(&containers, "deleted"), [100].into());

    // modified_after: what changed after that time, op relative to it.
    let after = before_removal.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let query = format!("&modified_after={}", after.replace('+', "%2B"));
    let (recent, _) = walk(&app, &id, "", &query).await;
    assert_eq!(ids_with(&ops(&recent), "deleted"), (100..120).collect());
    assert_eq!(recent.len(), 20);

    // What stays is what the listing shows.
    assert_eq!(entities(&app, &id).await.len(), 100);
    let listed: BTreeSet<u32> = (0..100).collect();
    let (everything, _) = walk(&app, &id, "", "&filter=added").await;
    assert_eq!(ids_with(&ops(&everything), "added"), listed);

    // Ten of the deleted come back: added again, and no longer shown deleted.
    patch_config(
        &app,
        &id,
        json!({"entity_count": 110, "seed": 3, "revision": 1}),
    )
    .await;
    let back = run_and_wait(&app, &id, true).await;
    assert_eq!(back["entities_inserted"], 10);
    let (returned, _) = walk(&app, &id, &cursor(&c3), "").await;
    assert_eq!(ids_with(&ops(&returned), "added"), (100..110).collect());
    assert_eq!(returned.len(), 10);
    let (from_start, _) = walk(&app, &id, "", "").await;
    let from_start = ops(&from_start);
    assert_eq!(ids_with(&from_start, "added"), (0..110).collect());
    assert_eq!(ids_with(&from_start, "deleted"), (110..120).collect());
}

#[tokio::test]
async fn bad_parameters_are_refused_and_change_nothing() {
    let app = app().await;
    let created = create(&app, &stub(json!({"entity_count": 5}))).await;
    let id = created["id"].as_str().unwrap().to_owned();
    drain(&app, Duration::from_secs(2)).await;
    let (_, cursor, _) = read(&app, &id, "").await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("cursor=bm90LW91cnM", "cursor"),
        ("filter=removed", "filter"),
        ("modified_after=yesterday", "modified_after"),
        (
            &format!("cursor={cursor}&modified_after=2026-01-01T00:00:00Z") as &str,
            "modified_after",
        ),
    ] {
        let response = app
            .get(&format!("/source-connections/{id}/changes?{query}"))
            .await;
        let body = problem(response, 422).await;
        let fields: Vec<&str> = body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "{query}: {body}");
    }
    let unknown = ConnectionId::new();
    let response = app
        .get(&format!("/source-connections/{unknown}/changes"))
        .await;
    problem(response, 404).await;
    let (all, _, _) = read(&app, &id, "").await;
    assert_eq!(all.len(), 5);
}

#[tokio::test]
async fn a_tombstone_past_retention_is_gone_and_an_old_cursor_answers_410() {
    let clock = Arc::new(TestClock::new(chrono::Utc::now()));
    let app = {
        let clock = clock.clone();
        TestApp::spawn_with(move |p| {
            p.feed.settle = Duration::ZERO;
            p.clock = clock;
        })
        .await
    };
    app.create_collection("docs").await;
    let created = create(&app, &stub(json!({"entity_count": 30}))).await;
    let id = created["id"].as_str().unwrap().to_owned();
    drain(&app, Duration::from_secs(2)).await;
    let (_, start) = walk(&app, &id, "", "").await;
    patch_config(&app, &id, json!({"entity_count": 20})).await;
    run_and_wait(&app, &id, true).await;
    let (gone, _) = walk(&app, &id, &cursor(&start), "&filter=deleted").await;
    assert_eq!(gone.len(), 10);

    // 29 days on, the deletions are still there; a day later they are not, and the cursor
    // from before them cannot say what it missed.
    clock.advance(chrono::Duration::days(29));
    let (still, _) = walk(&app, &id, &cursor(&start), "&filter=deleted").await;
    assert_eq!(still.len(), 10);
    let (_, recent) = walk(&app, &id, "", "").await;
    clock.advance(chrono::Duration::days(1) + chrono::Duration::seconds(1));
    let old = app
        .get(&format!("/source-connections/{id}/changes?cursor={start}"))
        .await;
    let body = problem(old, 410).await;
    assert!(
        body["detail"].as_str().unwrap().contains("full listing"),
        "{body}"
    );
    let (from_scratch, _) = walk(&app, &id, "", "").await;
    assert_eq!(
        from_scratch.len(),
        20,
        "expired deletion records are not shown"
    );
    assert!(from_scratch.iter().all(|c| c["op"] == "added"));
    // A cursor read a day ago is still good.
    let (nothing, _) = walk(&app, &id, &cursor(&recent), "").await;
    assert!(nothing.is_empty());
}

#[tokio::test]
async fn pages_of_large_changes_stay_under_five_megabytes_and_the_walk_returns_all() {
    let app = app().await;
    let mut body = stub(json!({"entity_count": 1}));
    body["sync_immediately"] = json!(false);
    let created = create(&app, &body).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let connection: ConnectionId = id.parse().unwrap();
    let writes = large_documents(40, 200_000);
    app.aws.entities().write(connection, &writes).await.unwrap();

    let mut seen = BTreeSet::new();
    let mut query = "limit=1000".to_owned();
    let mut pages = 0;
    loop {
        let response = app
            .get(&format!("/source-connections/{id}/changes?{query}"))
            .await;
        assert_eq!(response.status(), 200);
        let bytes = response.bytes().await.unwrap();
        assert!(bytes.len() < 5_000_000, "a page of {} bytes", bytes.len());
        let page: Value = serde_json::from_slice(&bytes).unwrap();
        pages += 1;
        for change in page["changes"].as_array().unwrap() {
            assert!(seen.insert(change["entity_id"].as_str().unwrap().to_owned()));
        }
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
        query = format!(
            "limit=1000&cursor={}",
            page["next_cursor"].as_str().unwrap()
        );
    }
    assert_eq!(seen.len(), 40);
    assert!(pages >= 2, "8 MB of payloads take more than one page");
}

/// A consumer polls the feed while two syncs with hand-overs in the middle revise, add, then
/// revise and remove entities, the index lagging `lag` behind half the writes: with a settle
/// delay longer than the lag it sees every change once; with none, it misses some (so the
/// check can fail). Answers how many changes it saw, how many of them while the syncs ran, how
/// many it saw twice, and how many entities its copy has wrong.
async fn consume_while_syncing(settle: Duration, lag: Duration) -> [usize; 4] {
    let app = TestApp::spawn_customized(move |p, aws| {
        p.feed.settle = settle;
        p.entities = Arc::new(aws.entities().with_index_lag(lag));
    })
    .await;
    app.create_collection("docs").await;
    let created = create(&app, &stub(json!({"entity_count": 1500, "seed": 9}))).await;
    let id = created["id"].as_str().unwrap().to_owned();
    drain(&app, Duration::from_secs(2)).await;
    tokio::time::sleep(settle + lag).await;
    let (first, start) = walk(&app, &id, "", "").await;
    assert_eq!(first.len(), 1500);

    let slow = Worker {
        settings: SyncSettings {
            max_pages_per_invocation: 8,
            ..worker(&app).settings
        },
        ..worker(&app)
    };
    let done = AtomicBool::new(false);
    let sync = async {
        // 150 revised and 300 added; then 160 revised and 200 removed.
        for (count, revision) in [(1800, 1), (1600, 2)] {
            let config = json!({"entity_count": count, "seed": 9, "revision": revision});
            patch_config(&app, &id, config).await;
            let run = app
                .post(&format!("/source-connections/{id}/run"), &json!({}))
                .await;
            assert_eq!(run.status(), 202);
            let queue = app.aws.queue();
            while poller::poll_once(&slow, &queue, Duration::from_secs(2)).await > 0 {}
        }
        done.store(true, Ordering::SeqCst);
    };
    let consumer = async {
        let mut seen: Vec<Value> = Vec::new();
        let mut cursor = start.clone();
        loop {
            let finished = done.load(Ordering::SeqCst);
            let (changes, next) = walk(&app, &id, &format!("&cursor={cursor}"), "").await;
            seen.extend(changes);
            cursor = next;
            if finished {
                // The sync ended: once its end is settled, one last read catches up.
                let during = seen.len();
                tokio::time::sleep(settle + lag + Duration::from_millis(200)).await;
                let (rest, _) = walk(&app, &id, &format!("&cursor={cursor}"), "").await;
                seen.extend(rest);
                return (seen, during);
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    };
    let ((), (seen, during)) = tokio::join!(sync, consumer);

    // The consumer's copy, built from the changes alone, against the final table.
    let mut copy: BTreeMap<String, Value> = first
        .iter()
        .map(|c| {
            (
                c["entity_id"].as_str().unwrap().to_owned(),
                c["payload"].clone(),
            )
        })
        .collect();
    let mut times: BTreeMap<String, usize> = BTreeMap::new();
    for change in &seen {
        let entity = change["entity_id"].as_str().unwrap().to_owned();
        *times.entry(change.to_string()).or_default() += 1;
        match change["op"].as_str().unwrap() {
            "deleted" => {
                copy.remove(&entity);
            }
            _ => {
                copy.insert(entity, change["payload"].clone());
            }
        }
    }
    let table: BTreeMap<String, Value> = entities(&app, &id)
        .await
        .into_iter()
        .map(|e| {
            (
                e["entity_id"].as_str().unwrap().to_owned(),
                e["payload"].clone(),
            )
        })
        .collect();
    let duplicates = times.values().filter(|n| **n > 1).count();
    let missing = table
        .iter()
        .filter(|(k, v)| copy.get(*k) != Some(v))
        .count()
        + copy.keys().filter(|k| !table.contains_key(*k)).count();
    [seen.len(), during, duplicates, missing]
}

#[tokio::test]
async fn a_consumer_polling_during_syncs_gets_every_change_once_despite_index_lag() {
    let [changes, during, duplicates, missing] =
        consume_while_syncing(Duration::from_millis(1500), Duration::from_millis(600)).await;
    assert_eq!((duplicates, missing), (0, 0));
    assert!(
        during > 0,
        "changes show while the syncs run, not only after"
    );
    // 810 changes, fewer when an entity added by the first sync was revised by the second
    // before the consumer read it (it then comes once, with its latest state).
    assert!((650..=810).contains(&changes), "{changes}");
}

#[tokio::test]
async fn without_a_settle_delay_a_lagging_index_loses_changes() {
    let [_, _, _, missing] =
        consume_while_syncing(Duration::ZERO, Duration::from_millis(600)).await;
    assert!(
        missing > 0,
        "the lag must show, or the test above proves nothing"
    );
}

//! Managing connections over HTTP on the emulator: PATCH (re-validation, pause and resume,
//! credential replacement) and DELETE (everything goes, also after a crash part-way).

use crate::helpers::app::{problem, TestApp};
use crate::helpers::sdk::{FailCalls, WithInterceptor};
use aws_adapters::{DynamoEntities, DynamoStore, SecretsVault};
use domain::connection::ConnectionStatus;
use domain::ports::ConnectionStore;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use worker::{poller, Worker};

async fn create_stub(app: &TestApp, schedule: Value, entity_count: u32) -> Value {
    app.create_collection("docs").await;
    let response = app
        .create_connection(&json!({
            "short_name": "stub",
            "readable_collection_id": "docs",
            "authentication": {"credentials": {"api_key": "stub-manage-key"}},
            "config": {"entity_count": entity_count, "seed": 3},
            "schedule": schedule,
        }))
        .await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

async fn drain(app: &TestApp, pages_per_invocation: u32) {
    let worker = Worker {
        platform: app.platform.clone(),
        settings: domain::usecases::sync::SyncSettings {
            max_pages_per_invocation: pages_per_invocation,
            ..Default::default()
        },
    };
    let queue = app.aws.queue();
    while poller::poll_once(&worker, &queue, Duration::from_secs(1)).await > 0 {}
}

async fn patch(app: &TestApp, id: &str, body: &Value) -> reqwest::Response {
    app.request(
        Method::PATCH,
        &format!("/source-connections/{id}"),
        Some(&app.api_key),
        Some(body),
        &[],
    )
    .await
}

async fn get(app: &TestApp, id: &str) -> Value {
    let response = app.get(&format!("/source-connections/{id}")).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The connection item's schedule index attributes, if it has them.
async fn schedule_index(app: &TestApp, id: &str) -> Option<(String, String)> {
    let item = app
        .aws
        .item(&format!("ORG#{}", app.org), &format!("CONN#{id}"))
        .await?;
    let bucket = item.get("sched_bucket")?.as_s().ok()?.clone();
    let at = item.get("next_run_at")?.as_n().ok()?.clone();
    Some((bucket, at))
}

#[tokio::test]
async fn patch_changes_what_it_names_and_a_refused_one_changes_nothing() {
    let app = TestApp::spawn().await;
    let created = create_stub(&app, json!({"cron": "0 */2 * * *"}), 5).await;
    let id = created["id"].as_str().unwrap();

    let renamed = patch(
        &app,
        id,
        &json!({"name": "Renamed", "config": {"entity_count": 7}}),
    )
    .await;
    assert_eq!(renamed.status(), 200);
    let renamed: Value = renamed.json().await.unwrap();
    assert_eq!(renamed["name"], "Renamed");
    assert_eq!(renamed["config"]["entity_count"], 7);
    assert_eq!(renamed["schedule"], created["schedule"]);
    assert_eq!(get(&app, id).await, renamed, "stored as answered");

    for (body, field) in [
        (json!({}), "body"),
        (json!({"colour": "blue"}), "colour"),
        (
            json!({"config": {"entity_count": 0}}),
            "config.entity_count",
        ),
        (json!({"config": {"flavour": 1}}), "config.flavour"),
        (
            json!({"schedule": {"cron": "*/2 * * * *"}}),
            "schedule.cron",
        ),
        (json!({"status": "deleted"}), "status"),
        (
            json!({"name": "Fine name", "description": "x".repeat(300)}),
            "description",
        ),
    ] {
        let p = problem(patch(&app, id, &body).await, 422).await;
        let fields: Vec<&str> = p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "{body}: {p}");
    }
    let rejected = patch(
        &app,
        id,
        &json!({"name": "Not applied", "authentication": {"credentials": {"api_key": " "}}}),
    )
    .await;
    problem(rejected, 422).await;
    assert_eq!(
        get(&app, id).await,
        renamed,
        "refused PATCHes changed nothing"
    );

    let (_, other) = app.other_tenant().await;
    let foreign = app
        .request(
            Method::PATCH,
            &format!("/source-connections/{id}"),
            Some(&other),
            Some(&json!({"name": "Taken over"})),
            &[],
        )
        .await;
    problem(foreign, 404).await;
}

#[tokio::test]
async fn pause_stops_runs_and_leaves_the_schedule_index_and_resume_comes_back() {
    let app = TestApp::spawn().await;
    let created = create_stub(&app, json!({"cron": "0 */2 * * *"}), 5).await;
    let id = created["id"].as_str().unwrap();
    drain(&app, 0).await;
    assert!(schedule_index(&app, id).await.is_some(), "scheduled");

    let paused: Value = patch(&app, id, &json!({"status": "inactive"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(paused["status"], "inactive");
    assert_eq!(paused["schedule"]["next_run"], Value::Null);
    assert_eq!(
        schedule_index(&app, id).await,
        None,
        "out of the schedule index"
    );
    let run = app
        .post(&format!("/source-connections/{id}/run"), &json!({}))
        .await;
    problem(run, 409).await;

    let resumed: Value = patch(&app, id, &json!({"status": "active"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(resumed["status"], "active");
    assert!(resumed["schedule"]["next_run"].is_string());
    assert!(
        schedule_index(&app, id).await.is_some(),
        "back in the index"
    );
    let run = app
        .post(&format!("/source-connections/{id}/run"), &json!({}))
        .await;
    assert_eq!(run.status(), 202);
}

#[tokio::test]
async fn new_credentials_clear_needs_reauth_and_replace_the_secret() {
    let app = TestApp::spawn().await;
    let created = create_stub(&app, json!({"cron": "0 */2 * * *"}), 5).await;
    let id = created["id"].as_str().unwrap();
    drain(&app, 0).await;
    // The source rejected the key on a run.
    let store = app.aws.store();
    let current = store
        .get_versioned(app.org, id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let mut rejected = current.value.clone();
    rejected.status = ConnectionStatus::NeedsReauth;
    rejected.error_category = Some(domain::error_category::ErrorCategory::ApiKeyInvalid);
    rejected.auth.authenticated = false;
    store
        .replace_connection(&rejected, current.version, &[])
        .await
        .unwrap();
    assert_eq!(
        schedule_index(&app, id).await,
        None,
        "needs_reauth leaves the index"
    );

    let fixed = patch(
        &app,
        id,
        &json!({"authentication": {"credentials": {"api_key": "stub-rotated-key"}}}),
    )
    .await;
    assert_eq!(fixed.status(), 200);
    let text = fixed.text().await.unwrap();
    assert!(
        !text.contains("stub-rotated-key"),
        "no secret in the answer"
    );
    let fixed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(fixed["status"], "active");
    assert_eq!(fixed["error_category"], Value::Null);
    assert_eq!(fixed["auth"]["authenticated"], true);
    assert!(
        schedule_index(&app, id).await.is_some(),
        "back in the index"
    );
    let vault = app.aws.vault();
    let secret =
        domain::ports::CredentialVault::get_connection_secret(&vault, app.org, id.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
    assert!(secrecy::ExposeSecret::expose_secret(&secret.value).contains("stub-rotated-key"));
    // The next run uses the new key and completes.
    let run = app
        .post(&format!("/source-connections/{id}/run"), &json!({}))
        .await;
    assert_eq!(run.status(), 202);
    drain(&app, 0).await;
    assert_eq!(
        get(&app, id).await["sync"]["last_job"]["status"],
        "completed"
    );
}

#[tokio::test]
async fn concurrent_patches_lose_no_update() {
    let app = TestApp::spawn().await;
    let created = create_stub(&app, json!({"cron": null}), 5).await;
    let id = created["id"].as_str().unwrap();
    let names: Vec<String> = (0..8).map(|i| format!("Name number {i}")).collect();
    let mut requests = tokio::task::JoinSet::new();
    let http = reqwest::Client::new();
    for (i, name) in names.iter().enumerate() {
        let body = if i % 2 == 0 {
            json!({"name": name})
        } else {
            json!({"description": name})
        };
        let request = http
            .patch(format!("{}/source-connections/{id}", app.base_url))
            .header("x-api-key", &app.api_key)
            .json(&body);
        requests.spawn(async move { request.send().await.unwrap().status().as_u16() });
    }
    let statuses = requests.join_all().await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let stored = get(&app, id).await;
    let item = app
        .aws
        .item(&format!("ORG#{}", app.org), &format!("CONN#{id}"))
        .await
        .unwrap();
    assert_eq!(
        item["version"].as_n().unwrap(),
        "9",
        "eight updates on version 1, none lost"
    );
    assert!(stored["name"].as_str().unwrap().starts_with("Name number"));
    assert!(stored["description"]
        .as_str()
        .unwrap()
        .starts_with("Name number"));
    crate::helpers::figures(
        "concurrency: 8 concurrent PATCHes of one connection -> 8 applied, version 1 -> 9, 0 lost",
    );
}

/// Nothing of the connection in either table or in Secrets Manager.
async fn assert_nothing_left(app: &TestApp, id: &str) {
    let keys = app.aws.scan_keys().await;
    let remnants: Vec<&(String, String)> = keys
        .iter()
        .filter(|(pk, sk)| pk.contains(id) || sk.contains(id))
        .collect();
    assert!(remnants.is_empty(), "state items left: {remnants:?}");
    let entities = app
        .aws
        .clients
        .dynamodb
        .query()
        .table_name(&app.aws.entities_table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("CONN#{id}")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(entities.count, 0, "entities left");
    let secrets = app.aws.secret_names_under_prefix().await;
    assert!(
        secrets.iter().all(|s| !s.contains(id)),
        "secret left: {secrets:?}"
    );
}

#[tokio::test]
async fn delete_leaves_nothing_readable_and_frees_the_collection() {
    let app = TestApp::spawn().await;
    let created = create_stub(&app, json!({"cron": "0 */2 * * *"}), 120).await;
    let id = created["id"].as_str().unwrap();
    drain(&app, 0).await;
    let before = get(&app, id).await;
    assert_eq!(before["entities"]["total_entities"], 120);

    let deleted = app.delete(&format!("/source-connections/{id}")).await;
    assert_eq!(deleted.status(), 200);
    let deleted: Value = deleted.json().await.unwrap();
    assert_eq!(deleted, before, "answers the connection as it was");
    for path in [
        format!("/source-connections/{id}"),
        format!("/source-connections/{id}/jobs"),
        format!("/source-connections/{id}/entities"),
    ] {
        problem(app.get(&path).await, 404).await;
    }
    let listed: Vec<Value> = app.get("/source-connections").await.json().await.unwrap();
    assert!(listed.is_empty());
    problem(app.delete(&format!("/source-connections/{id}")).await, 404).await;
    assert_nothing_left(&app, id).await;
    let collection = app.delete("/collections/docs").await;
    assert!(collection.status().is_success(), "{}", collection.status());
}

#[tokio::test]
async fn delete_stops_a_running_sync_and_its_late_messages_write_nothing() {
    let app = TestApp::spawn().await;
    let created = create_stub(&app, json!({"cron": null}), 400).await;
    let id = created["id"].as_str().unwrap();
    // One page per invocation: the run is mid-way, its continuation queued.
    let worker = Worker {
        platform: app.platform.clone(),
        settings: domain::usecases::sync::SyncSettings {
            max_pages_per_invocation: 1,
            ..Default::default()
        },
    };
    assert_eq!(
        poller::poll_once(&worker, &app.aws.queue(), Duration::from_secs(1)).await,
        1
    );
    let job = created["sync"]["last_job"]["id"].as_str().unwrap();
    let running: Value = app
        .get(&format!("/source-connections/{id}/jobs/{job}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(running["status"], "running");

    assert_eq!(
        app.delete(&format!("/source-connections/{id}"))
            .await
            .status(),
        200
    );
    drain(&app, 1).await;
    assert_nothing_left(&app, id).await;
}

#[tokio::test]
async fn a_delete_crashed_at_each_step_is_finished_by_a_retry() {
    let steps = [
        ("DynamoDB_20120810.BatchWriteItem", "entities or records"),
        ("secretsmanager.DeleteSecret", "secret"),
        ("DynamoDB_20120810.DeleteItem", "tombstone"),
    ];
    for (operation, step) in steps {
        let app = TestApp::spawn().await;
        let created = create_stub(&app, json!({"cron": "0 */2 * * *"}), 60).await;
        let id = created["id"].as_str().unwrap();
        drain(&app, 0).await;

        let crashing = TestApp::spawn_with(|p| {
            *p = app.platform.clone();
            let fail = FailCalls::new(operation, "CRASH");
            let dynamodb = fail.dynamodb(&app.aws.clients.dynamodb);
            p.store = Arc::new(DynamoStore::new(dynamodb.clone(), &app.aws.state_table));
            p.entities = Arc::new(DynamoEntities::new(dynamodb, &app.aws.entities_table));
            let secrets = fail.secrets(&app.aws.clients.secrets);
            p.vault = Arc::new(SecretsVault::new(secrets, &app.aws.secrets_prefix));
        })
        .await;
        let first = crashing
            .request(
                Method::DELETE,
                &format!("/source-connections/{id}"),
                Some(&app.api_key),
                None,
                &[],
            )
            .await;
        assert_eq!(
            first.status(),
            200,
            "{step}: the connection is gone for readers"
        );
        problem(app.get(&format!("/source-connections/{id}")).await, 404).await;
        let tombstone = app
            .aws
            .item(&format!("ORG#{}", app.org), &format!("CONN#{id}"))
            .await;
        assert!(
            tombstone.is_some(),
            "{step}: the tombstone remains for the retry"
        );

        let retried = app.delete(&format!("/source-connections/{id}")).await;
        assert_eq!(
            retried.status(),
            200,
            "{step}: the retry finishes the delete"
        );
        assert_nothing_left(&app, id).await;
        problem(app.delete(&format!("/source-connections/{id}")).await, 404).await;
    }
}

//! Running and cancelling syncs over HTTP on the emulator: one job at a time per connection,
//! decided by the store's conditions even under 50 concurrent requests.

use crate::helpers::app::{problem, TestApp};
use domain::usecases::sync::SyncSettings;
use serde_json::{json, Value};
use std::time::Duration;
use worker::{poller, Worker};

async fn create_stub(app: &TestApp, config: Value) -> Value {
    app.create_collection("docs").await;
    let response = app
        .create_connection(&json!({
            "short_name": "stub",
            "readable_collection_id": "docs",
            "authentication": {"credentials": {"api_key": "stub-run-key"}},
            "config": config,
        }))
        .await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

fn worker(app: &TestApp, max_pages_per_invocation: u32) -> Worker {
    Worker {
        platform: app.platform.clone(),
        settings: SyncSettings {
            progress_interval: Duration::ZERO,
            max_pages_per_invocation,
            ..SyncSettings::default()
        },
    }
}

async fn drain(app: &TestApp, worker: &Worker) {
    let queue = app.aws.queue();
    while poller::poll_once(worker, &queue, Duration::from_secs(1)).await > 0 {}
}

async fn post(app: &TestApp, path: &str) -> reqwest::Response {
    app.post(path, &json!({})).await
}

#[tokio::test]
async fn fifty_concurrent_runs_create_one_job() {
    let app = TestApp::spawn().await;
    let created = create_stub(&app, json!({"entity_count": 20})).await;
    let id = created["id"].as_str().unwrap().to_owned();
    drain(&app, &worker(&app, 0)).await;

    let path = format!("/source-connections/{id}/run");
    let http = reqwest::Client::new();
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let request = http
            .post(format!("{}{path}", app.base_url))
            .header("x-api-key", &app.api_key)
            .json(&json!({}));
        requests.spawn(async move { request.send().await.expect("answered").status().as_u16() });
    }
    let statuses: Vec<u16> = requests.join_all().await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 202).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 202 || *s == 409),
        "{statuses:?}"
    );
    let jobs: Vec<Value> = app
        .get(&format!("/source-connections/{id}/jobs"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(jobs.len(), 2, "the first job and exactly one more");
    assert_eq!(jobs[0]["status"], "pending");
    assert_eq!(jobs[0]["trigger"], "manual");
    crate::helpers::figures(&format!(
        "concurrency: 50 concurrent runs of one connection -> 1 job ({} answered 202, {} answered 409)",
        statuses.iter().filter(|s| **s == 202).count(),
        statuses.iter().filter(|s| **s == 409).count()
    ));

    // Once it ran, another run is accepted, forced to a full sync.
    drain(&app, &worker(&app, 0)).await;
    let forced = app
        .post(&format!("{path}?force_full_sync=true"), &json!({}))
        .await;
    assert_eq!(forced.status(), 202);
    let job: Value = forced.json().await.unwrap();
    assert_eq!(job["force_full_sync"], true);
    let bad = app
        .post(&format!("{path}?force_full_sync=yes"), &json!({}))
        .await;
    problem(bad, 422).await;
}

#[tokio::test]
async fn a_pending_job_is_cancelled_and_a_running_one_stops_between_pages() {
    let app = TestApp::spawn().await;
    let created = create_stub(&app, json!({"entity_count": 400})).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let first = created["sync"]["last_job"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Pending: cancelled at once, and its message is dropped by the worker.
    let cancelled = post(
        &app,
        &format!("/source-connections/{id}/jobs/{first}/cancel"),
    )
    .await;
    assert_eq!(cancelled.status(), 200);
    let job: Value = cancelled.json().await.unwrap();
    assert_eq!(job["status"], "cancelled");
    drain(&app, &worker(&app, 0)).await;
    let listed: Vec<Value> = app
        .get(&format!("/source-connections/{id}/entities"))
        .await
        .json()
        .await
        .unwrap();
    assert!(listed.is_empty(), "a cancelled pending job never ran");
    let again = post(
        &app,
        &format!("/source-connections/{id}/jobs/{first}/cancel"),
    )
    .await;
    problem(again, 409).await;

    // Running: one page per invocation, cancel between two of them.
    let run: Value = post(&app, &format!("/source-connections/{id}/run"))
        .await
        .json()
        .await
        .unwrap();
    let job_id = run["id"].as_str().unwrap();
    let slow = worker(&app, 1);
    assert_eq!(
        poller::poll_once(&slow, &app.aws.queue(), Duration::from_secs(1)).await,
        1
    );
    let cancelling: Value = post(
        &app,
        &format!("/source-connections/{id}/jobs/{job_id}/cancel"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(cancelling["status"], "cancelling");
    drain(&app, &slow).await;
    let job: Value = app
        .get(&format!("/source-connections/{id}/jobs/{job_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(job["status"], "cancelled");
    assert_eq!(
        job["entities_inserted"], 100,
        "stopped after the first page"
    );
    let c: Value = app
        .get(&format!("/source-connections/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(c["status"], "active");
    // The connection is free again.
    assert_eq!(
        post(&app, &format!("/source-connections/{id}/run"))
            .await
            .status(),
        202
    );
}

#[tokio::test]
async fn runs_and_cancels_of_foreign_or_unknown_ids_are_404() {
    let app = TestApp::spawn().await;
    let created = create_stub(&app, json!({"entity_count": 5})).await;
    let id = created["id"].as_str().unwrap();
    let first = created["sync"]["last_job"]["id"].as_str().unwrap();
    let (_, other) = app.other_tenant().await;
    for path in [
        format!("/source-connections/{id}/run"),
        format!("/source-connections/{id}/jobs/{first}/cancel"),
    ] {
        let foreign = app
            .request(
                reqwest::Method::POST,
                &path,
                Some(&other),
                Some(&json!({})),
                &[],
            )
            .await;
        problem(foreign, 404).await;
    }
    let unknown = post(
        &app,
        &format!(
            "/source-connections/{id}/jobs/{}/cancel",
            domain::ids::JobId::new()
        ),
    )
    .await;
    problem(unknown, 404).await;
    let get = app.get(&format!("/source-connections/{id}/run")).await;
    assert_eq!(get.status(), 405);
}

//! The scheduler's tick against the emulator: due schedules found through the index fire once
//! under concurrent ticks; the sweeps re-enqueue lost messages once, fail dead runs, and remove
//! orphan secrets (and only those).

use crate::helpers::app::TestApp;
use chrono::{DateTime, Duration, Utc};
use domain::clock::FixedClock;
use domain::connection::ConnectionStatus;
use domain::ids::ConnectionId;
use domain::job::Lease;
use domain::ports::{ConnectionStore, CredentialVault, JobStore};
use domain::usecases::scheduler::{tick, TickLimits, TickReport};
use domain::usecases::Platform;
use secrecy::SecretString;
use serde_json::{json, Value};
use std::sync::Arc;

fn at(app: &TestApp, instant: DateTime<Utc>) -> Platform {
    let mut p = app.platform.clone();
    p.clock = Arc::new(FixedClock(instant));
    p
}

async fn tick_at(app: &TestApp, instant: DateTime<Utc>) -> TickReport {
    tick(&at(app, instant), &TickLimits::default(), None).await
}

async fn create(app: &TestApp, extra: Value) -> Value {
    let mut body = json!({
        "short_name": "stub",
        "readable_collection_id": "docs",
        "authentication": {"credentials": {"api_key": "stub-schedule-key"}},
        "config": {"entity_count": 5},
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let response = app.create_connection(&body).await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

fn next_run(connection: &Value) -> DateTime<Utc> {
    connection["schedule"]["next_run"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_due_schedule_fires_once_under_two_concurrent_ticks_and_advances() {
    let app = TestApp::spawn().await;
    app.create_collection("docs").await;
    let created = create(
        &app,
        json!({"schedule": {"cron": "*/5 * * * *"}, "sync_immediately": false}),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let due = next_run(&created);
    assert!(tick_at(&app, due - Duration::seconds(1))
        .await
        .fired
        .is_empty());

    let when = due + Duration::seconds(30);
    let (a, b) = tokio::join!(tick_at(&app, when), tick_at(&app, when));
    assert_eq!(a.fired.len() + b.fired.len(), 1, "{a:?} {b:?}");
    let jobs: Vec<Value> = app
        .get(&format!("/source-connections/{id}/jobs"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["trigger"], "scheduled");
    let messages = app.aws.receive_messages().await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    crate::helpers::figures(
        "concurrency: 2 concurrent scheduler ticks on a due schedule -> 1 run, 1 message",
    );
    let after: Value = app
        .get(&format!("/source-connections/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        next_run(&after),
        due + Duration::minutes(5),
        "next run planned"
    );
    assert_eq!(after["sync"]["last_job"]["id"], jobs[0]["id"]);
    let item = app
        .aws
        .item(&format!("ORG#{}", app.org), &format!("CONN#{id}"))
        .await
        .unwrap();
    assert_eq!(
        item["next_run_at"].as_n().unwrap(),
        &(due + Duration::minutes(5)).timestamp().to_string(),
        "the index follows"
    );
    assert!(tick_at(&app, when).await.fired.is_empty(), "not twice");
}

#[tokio::test]
async fn paused_and_needs_reauth_connections_never_fire() {
    let app = TestApp::spawn().await;
    app.create_collection("docs").await;
    let schedule = json!({"schedule": {"cron": "*/5 * * * *"}, "sync_immediately": false});
    let paused = create(&app, schedule.clone()).await;
    let reauth = create(&app, schedule).await;
    let response = app
        .request(
            reqwest::Method::PATCH,
            &format!("/source-connections/{}", paused["id"].as_str().unwrap()),
            Some(&app.api_key),
            Some(&json!({"status": "inactive"})),
            &[],
        )
        .await;
    assert_eq!(response.status(), 200);
    let store = app.aws.store();
    let id: ConnectionId = reauth["id"].as_str().unwrap().parse().unwrap();
    let current = store.get_versioned(app.org, id).await.unwrap().unwrap();
    let mut rejected = current.value.clone();
    rejected.status = ConnectionStatus::NeedsReauth;
    store
        .replace_connection(&rejected, current.version, &[])
        .await
        .unwrap();

    for minutes in [5, 10, 60, 600] {
        let report = tick_at(&app, Utc::now() + Duration::minutes(minutes)).await;
        assert!(report.fired.is_empty(), "{report:?}");
    }
    assert!(app.aws.receive_messages().await.is_empty());
}

#[tokio::test]
async fn a_lost_message_is_sent_again_exactly_once() {
    let app = TestApp::spawn().await;
    app.create_collection("docs").await;
    let created = create(&app, json!({})).await;
    let job = created["sync"]["last_job"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.aws.receive_messages().await.len(),
        1,
        "the message, now lost"
    );
    let created_at: DateTime<Utc> = created["created_at"].as_str().unwrap().parse().unwrap();

    assert!(tick_at(&app, created_at + Duration::minutes(4))
        .await
        .requeued
        .is_empty());
    let when = created_at + Duration::minutes(6);
    let (a, b) = tokio::join!(tick_at(&app, when), tick_at(&app, when));
    assert_eq!(a.requeued.len() + b.requeued.len(), 1, "{a:?} {b:?}");
    assert!(tick_at(&app, when + Duration::minutes(2))
        .await
        .requeued
        .is_empty());
    let messages = app.aws.receive_messages().await;
    assert_eq!(messages.len(), 1, "re-enqueued exactly once: {messages:?}");
    assert!(messages[0].contains(&job));
}

/// A run whose lease ran out is sent again once; still dead after that, it is failed.
#[tokio::test]
async fn a_run_whose_worker_died_is_sent_again_then_failed() {
    let app = TestApp::spawn().await;
    app.create_collection("docs").await;
    let created = create(&app, json!({})).await;
    let id: ConnectionId = created["id"].as_str().unwrap().parse().unwrap();
    let job = created["sync"]["last_job"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let store = app.aws.store();
    let now = Utc::now();
    let lease = Lease {
        holder: "worker-that-died".into(),
        until: now + Duration::minutes(1),
    };
    store
        .claim_job(id, job, &lease, now, &|_| Vec::new())
        .await
        .unwrap();
    app.aws.receive_messages().await;

    let report = tick_at(&app, now + Duration::minutes(20)).await;
    assert_eq!(report.requeued, [job], "{report:?}");
    let messages = app.aws.receive_messages().await;
    assert_eq!(messages.len(), 1, "sent again once: {messages:?}");
    assert!(messages[0].contains(&job.to_string()));

    // Nobody took the lease over: the run is failed.
    let report = tick_at(&app, now + Duration::minutes(40)).await;
    assert_eq!(report.failed_stuck, [job], "{report:?}");
    let failed: Value = app
        .get(&format!("/source-connections/{id}/jobs/{job}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(failed["status"], "failed");
    assert!(failed["error"]
        .as_str()
        .unwrap()
        .contains("stopped responding"));
    let connection: Value = app
        .get(&format!("/source-connections/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(connection["status"], "error");
    // The slot is free: a new run is accepted.
    let run = app
        .post(&format!("/source-connections/{id}/run"), &json!({}))
        .await;
    assert_eq!(run.status(), 202);
}

#[tokio::test]
async fn only_old_secrets_without_a_connection_are_removed() {
    let app = TestApp::spawn().await;
    app.create_collection("docs").await;
    let live = create(&app, json!({})).await;
    let vault = app.aws.vault();
    let orphans: Vec<ConnectionId> = (0..3).map(|_| ConnectionId::new()).collect();
    let value = SecretString::from("{\"method\":\"direct\"}".to_owned());
    for id in &orphans {
        vault
            .put_connection_secret(app.org, *id, &value, &id.to_string())
            .await
            .unwrap();
    }
    let names = |ids: &[String]| ids.to_vec();
    let before = app.aws.secret_names_under_prefix().await;
    assert_eq!(before.len(), 4);

    // Young orphans may still be a create in progress: left alone.
    let report = tick_at(&app, Utc::now() + Duration::minutes(30)).await;
    assert_eq!(report.orphan_secrets, 0);
    let report = tick_at(&app, Utc::now() + Duration::hours(2)).await;
    assert_eq!(report.orphan_secrets, 3, "{report:?}");
    let after = names(&app.aws.secret_names_under_prefix().await);
    assert_eq!(after.len(), 1, "{after:?}");
    assert!(after[0].ends_with(live["id"].as_str().unwrap()));
}

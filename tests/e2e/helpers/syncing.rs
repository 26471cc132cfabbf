//! What the end-to-end tests of a real source share: an app whose catalog points one source at
//! its fake, a worker drained until the queue stays quiet, and readers for jobs and entities.

use super::app::TestApp;
use domain::entity::{Change, Entity, EntityWrite};
use domain::ids::JobId;
use domain::usecases::sync::SyncSettings;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use worker::{poller, Worker};

/// An app whose catalog sends `short_name` to `base_url` (a fake on 127.0.0.1), with the
/// collection `docs`.
pub async fn app_with_source(short_name: &str, base_url: &str) -> TestApp {
    let (name, url) = (short_name.to_owned(), base_url.to_owned());
    let app = TestApp::spawn_with(move |p| {
        p.sources = Arc::new(
            sources::Catalog::with_base_urls(&[(name.as_str(), url.as_str())])
                .expect("catalog with the fake's base URL"),
        );
    })
    .await;
    app.create_collection("docs").await;
    app
}

/// A worker that writes progress at every page.
pub fn worker(app: &TestApp) -> Worker {
    Worker {
        platform: app.platform.clone(),
        settings: SyncSettings {
            progress_interval: Duration::ZERO,
            ..SyncSettings::default()
        },
    }
}

/// Runs the worker until no message arrives for `quiet` (long enough for a deferred message's
/// delay to pass). Answers how many messages it handled.
pub async fn drain(app: &TestApp, quiet: Duration) -> usize {
    let worker = worker(app);
    let queue = app.aws.queue();
    let mut handled = 0;
    loop {
        let n = poller::poll_once(&worker, &queue, quiet).await;
        if n == 0 {
            return handled;
        }
        handled += n;
    }
}

/// `POST /source-connections` with `body`; panics unless it is 201.
pub async fn create(app: &TestApp, body: &Value) -> Value {
    let response = app.create_connection(body).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 201, "create: {text}");
    serde_json::from_str(&text).unwrap()
}

pub async fn connection(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/source-connections/{id}"))
        .await
        .json()
        .await
        .unwrap()
}

/// The connection's jobs, newest first.
pub async fn jobs(app: &TestApp, id: &str) -> Vec<Value> {
    app.get(&format!("/source-connections/{id}/jobs"))
        .await
        .json()
        .await
        .unwrap()
}

/// Every stored entity of the connection, all pages, in key order.
pub async fn entities(app: &TestApp, id: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut path = format!("/source-connections/{id}/entities?limit=1000");
    loop {
        let response = app.get(&path).await;
        assert_eq!(response.status(), 200);
        let next = response
            .headers()
            .get("link")
            .and_then(|v| v.to_str().ok())
            .and_then(|link| link.split_once('<'))
            .and_then(|(_, rest)| rest.split_once('>'))
            .map(|(url, _)| url.to_owned());
        let page: Vec<Value> = response.json().await.unwrap();
        all.extend(page);
        match next {
            Some(url) => {
                path = url
                    .split_once("://")
                    .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned()))
                    .unwrap_or(url)
            }
            None => return all,
        }
    }
}

/// `POST .../run` (202), then the worker until quiet; answers the job as it ended.
pub async fn run_and_wait(app: &TestApp, id: &str, force_full_sync: bool) -> Value {
    let path = format!("/source-connections/{id}/run?force_full_sync={force_full_sync}");
    let response = app.post(&path, &serde_json::json!({})).await;
    assert_eq!(response.status(), 202);
    let job: Value = response.json().await.unwrap();
    drain(app, Duration::from_secs(3)).await;
    let job_id = job["id"].as_str().unwrap();
    app.get(&format!("/source-connections/{id}/jobs/{job_id}"))
        .await
        .json()
        .await
        .unwrap()
}

/// A job's entity counts: inserted, updated, deleted, kept, failed.
pub fn counts(job: &Value) -> [u64; 5] {
    ["inserted", "updated", "deleted", "kept", "failed"]
        .map(|c| job[format!("entities_{c}")].as_u64().unwrap_or(u64::MAX))
}

/// Creates the connection from `body` (its first job queued) and runs the worker until quiet;
/// answers the connection id and its first job as it ended.
pub async fn create_and_sync(app: &TestApp, body: &Value) -> (String, Value) {
    let created = create(app, body).await;
    let id = created["id"].as_str().unwrap().to_owned();
    drain(app, Duration::from_secs(3)).await;
    let job = jobs(app, &id).await.remove(0);
    (id, job)
}

/// The `type#entity_id` keys of listed entities.
pub fn keys(entities: &[Value]) -> BTreeSet<String> {
    key_list(entities).into_iter().collect()
}

/// The `type#entity_id` keys of listed entities, in listing order, repeats kept.
pub fn key_list(entities: &[Value]) -> Vec<String> {
    entities
        .iter()
        .map(|e| {
            format!(
                "{}#{}",
                e["type"].as_str().unwrap(),
                e["entity_id"].as_str().unwrap()
            )
        })
        .collect()
}

/// The connection's newest job ended failed, asking for re-authentication: it and the connection
/// carry `category`, the connection shows `needs_reauth`, and none of `secrets` appears in
/// either or in the log. Answers the job.
pub async fn assert_reauth_needed(
    app: &TestApp,
    id: &str,
    category: &str,
    secrets: &[&str],
) -> Value {
    let job = jobs(app, id).await.remove(0);
    assert_eq!(
        (job["status"].as_str(), job["error_category"].as_str()),
        (Some("failed"), Some(category)),
        "{job}"
    );
    let c = connection(app, id).await;
    assert_eq!(c["status"], "needs_reauth");
    assert_eq!(c["error_category"], category);
    for text in [job.to_string(), c.to_string(), super::logs::captured()] {
        for secret in secrets {
            assert!(!text.contains(secret), "a secret was shown or logged");
        }
    }
    job
}

/// The connection's newest job failed for a reason other than its credentials: no error
/// category, the connection shows `error`, and neither the job nor the connection shows
/// `secret` or the upstream's `base_url`. Answers the job.
pub async fn assert_failed_plainly(app: &TestApp, id: &str, secret: &str, base_url: &str) -> Value {
    let job = jobs(app, id).await.remove(0);
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error_category"], Value::Null);
    let c = connection(app, id).await;
    assert_eq!(c["status"], "error");
    assert!(!job.to_string().contains(secret) && !c.to_string().contains(secret));
    assert!(!job.to_string().contains(base_url), "no URL in the error");
    job
}

/// A write of `entity` by `job`, at a fresh feed position (its own claim of a new job, so two
/// calls never share one).
pub fn write_of(entity: Entity, job: JobId, change: Change) -> EntityWrite {
    let position = domain::feed::Positions::new(JobId::new(), 1).next(chrono::Utc::now());
    EntityWrite {
        key: entity.key().expect("a valid key"),
        hash: entity.content_hash(),
        entity,
        job,
        change,
        position,
        added: position,
    }
}

/// `count` documents (`doc-00`, ...) of `bytes` bytes of text each, as first writes at fresh
/// positions: pages of them must end by size.
pub fn large_documents(count: usize, bytes: usize) -> Vec<EntityWrite> {
    (0..count)
        .map(|i| {
            let entity = Entity {
                entity_type: "doc".into(),
                entity_id: format!("doc-{i:02}"),
                title: format!("Document {i}"),
                updated_at: None,
                payload: serde_json::json!({"text": "x".repeat(bytes)}),
            };
            write_of(entity, JobId::new(), Change::Inserted)
        })
        .collect()
}

//! Webhook delivery on the emulator, end to end: the change's transaction records the event,
//! the webhooks table's stream dispatches it to the delivery queue, and the sender POSTs it to
//! a local receiver, signed so that the receivers' own verifiers (standardwebhooks, Svix)
//! accept it; failed attempts are retried on the schedule, and the message log shows each.
//! `make test` installs the verifiers into their own venv and names its python in
//! `WEBHOOK_VERIFIERS_PYTHON`.

use crate::helpers::app::{stub_body, TestApp, GITHUB_TOKEN};
use crate::helpers::syncing::{counts, drain, jobs};
use aws_adapters::StreamPoller;
use domain::usecases::webhooks::send::SenderSettings;
use domain::webhooks::RetrySchedule;
use fakes::receiver::{Answer, Delivery, FakeReceiver};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::sync::oneshot;
use worker::webhook_sender::{run_local, Sender};

/// The sender and its stand-ins for the stream trigger and the queue trigger, on the app's
/// stack, until dropped.
struct RunningSender {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningSender {
    fn start(app: &TestApp, schedule: &str) -> Self {
        let sender = Sender {
            platform: app.platform.clone(),
            settings: SenderSettings {
                schedule: RetrySchedule::parse(schedule).unwrap(),
                ..SenderSettings::default()
            },
        };
        let stream = StreamPoller::new(
            app.aws.clients.streams.clone(),
            &app.aws.webhooks_stream_arn,
        );
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(run_local(sender, stream, app.aws.deliveries(), async {
            let _ = stopped.await;
        }));
        Self {
            stop: Some(stop),
            task,
        }
    }
}

impl Drop for RunningSender {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

async fn subscribe(app: &TestApp, url: &str, types: &[&str]) -> (String, String) {
    let created = app
        .post(
            "/webhooks/subscriptions",
            &json!({"url": url, "event_types": types}),
        )
        .await;
    assert_eq!(created.status(), 200);
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let detail: Value = app
        .get(&format!("/webhooks/subscriptions/{id}?include_secret=true"))
        .await
        .json()
        .await
        .unwrap();
    (id, detail["secret"].as_str().unwrap().to_owned())
}

fn verifiers_python() -> PathBuf {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let python = std::env::var_os("WEBHOOK_VERIFIERS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".dev/verify-venv/bin/python"));
    assert!(
        python.exists(),
        "no webhook verifiers at {}; run `make test`, which installs them",
        python.display()
    );
    python
}

/// Runs standardwebhooks' and Svix's verifiers over the deliveries; answers how many both
/// accepted and how many tampered copies both refused.
fn verify(secret: &str, deliveries: &[Delivery]) -> (u64, u64) {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let input = json!({
        "secret": secret,
        "deliveries": deliveries.iter().map(|d| json!({
            "headers": d.headers.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
            "body": d.body,
        })).collect::<Vec<_>>(),
    });
    let mut child = Command::new(verifiers_python())
        .arg(root.join("tests/sdk/webhook_verify.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the verifiers");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "verifiers refused: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    (
        answer["verified"].as_u64().unwrap(),
        answer["tampered_refused"].as_u64().unwrap(),
    )
}

/// A message's delivery attempts as the message log shows them, newest first.
pub(crate) async fn attempts_of(app: &TestApp, message_id: &str) -> Vec<Value> {
    let detail: Value = app
        .get(&format!(
            "/webhooks/messages/{message_id}?include_attempts=true"
        ))
        .await
        .json()
        .await
        .unwrap();
    detail["delivery_attempts"].as_array().unwrap().clone()
}

fn event_types(deliveries: &[Delivery]) -> BTreeSet<String> {
    deliveries
        .iter()
        .map(|d| {
            d.json()["event_type"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn a_synced_connections_events_reach_the_receiver_signed_for_its_verifiers() {
    let app = TestApp::spawn().await;
    let receiver = FakeReceiver::start().await;
    let types = [
        "source_connection.created",
        "sync.pending",
        "sync.running",
        "sync.completed",
    ];
    let (_, secret) = subscribe(&app, &receiver.url, &types).await;
    // Another organization subscribes too, and must receive none of this one's events.
    let (_, other_key) = app.other_tenant().await;
    let others = FakeReceiver::start().await;
    let theirs = app
        .request(
            reqwest::Method::POST,
            "/webhooks/subscriptions",
            Some(&other_key),
            Some(&json!({"url": others.url, "event_types": types})),
            &[],
        )
        .await;
    assert_eq!(theirs.status(), 200);

    let _sender = RunningSender::start(&app, "0,1,1,1");
    app.create_collection("hooks").await;
    let created = app
        .post("/source-connections", &stub_body("hooks", "k-hooks"))
        .await;
    assert_eq!(created.status(), 201);
    let connection: Value = created.json().await.unwrap();
    let id = connection["id"].as_str().unwrap();
    drain(&app, Duration::from_secs(2)).await;
    let job = jobs(&app, id).await.remove(0);
    assert_eq!(job["status"], "completed", "{job}");

    let deliveries = receiver.wait_for(4, Duration::from_secs(60)).await;
    assert_eq!(
        event_types(&deliveries),
        types.iter().map(|t| t.to_string()).collect(),
        "any order"
    );
    assert_eq!(deliveries.len(), 4, "one delivery per event");
    let completed = deliveries
        .iter()
        .map(Delivery::json)
        .find(|e| e["event_type"] == "sync.completed")
        .unwrap();
    let [inserted, updated, deleted, kept, _] = counts(&job);
    assert_eq!(completed["entities_inserted"], inserted);
    assert_eq!(completed["entities_updated"], updated);
    assert_eq!(completed["entities_deleted"], deleted);
    assert_eq!(completed["entities_kept"], kept);
    assert_eq!(completed["entities_skipped"], kept);
    assert!(inserted > 0);
    assert_eq!(completed["source_connection_id"], connection["id"]);
    assert_eq!(completed["sync_job_id"], job["id"]);
    assert_eq!(completed["organization_id"], app.org.to_string());
    for delivery in &deliveries {
        let event = delivery.json();
        assert!(
            event["timestamp"].as_str().unwrap().ends_with('Z'),
            "{event}"
        );
        assert_eq!(delivery.header("content-type"), Some("application/json"));
        assert_eq!(delivery.header("svix-id"), Some(delivery.webhook_id()));
    }
    // Every signature, checked by the receivers' own packages; a tampered body is refused.
    assert_eq!(verify(&secret, &deliveries), (4, 4));

    // The message log shows each with its one successful attempt.
    let messages: Vec<Value> = app.get("/webhooks/messages").await.json().await.unwrap();
    let delivered_ids: BTreeSet<&str> = deliveries.iter().map(Delivery::webhook_id).collect();
    for message in messages
        .iter()
        .filter(|m| types.contains(&m["event_type"].as_str().unwrap_or_default()))
    {
        let id = message["id"].as_str().unwrap();
        assert!(delivered_ids.contains(id), "{id} was delivered");
        let attempts = attempts_of(&app, id).await;
        assert_eq!(attempts.len(), 1, "{attempts:?}");
        assert_eq!(attempts[0]["status"], "success");
        assert_eq!(attempts[0]["response_status_code"], 200);
        assert_eq!(attempts[0]["url"], receiver.url);
    }
    assert!(
        others.deliveries().is_empty(),
        "another organization's receiver got nothing"
    );
}

#[tokio::test]
async fn failed_attempts_are_retried_until_the_receiver_answers_2xx_and_logged() {
    let app = TestApp::spawn().await;
    let receiver = FakeReceiver::start().await;
    receiver.script(&[
        Answer::status(500),
        Answer::status(500),
        Answer {
            retry_after: Some(1),
            ..Answer::status(429)
        },
        Answer::status(200),
    ]);
    let (subscription, _) = subscribe(&app, &receiver.url, &["collection.created"]).await;
    let _sender = RunningSender::start(&app, "0,1,1,1");
    app.create_collection("retried").await;

    let deliveries = receiver.wait_for(4, Duration::from_secs(60)).await;
    assert_eq!(deliveries.len(), 4);
    let ids: BTreeSet<&str> = deliveries.iter().map(Delivery::webhook_id).collect();
    assert_eq!(ids.len(), 1, "the same webhook-id on every attempt");
    // Retry-After: 1 was honoured.
    let waited = deliveries[3].received_at - deliveries[2].received_at;
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    // Nothing more comes once it is delivered.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.deliveries().len(), 4);

    let id = ids.into_iter().next().unwrap();
    let attempts = attempts_of(&app, id).await;
    let codes: Vec<u64> = attempts
        .iter()
        .map(|a| a["response_status_code"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, [200, 429, 500, 500], "newest first: {attempts:?}");
    let statuses: Vec<&str> = attempts
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["success", "failed", "failed", "failed"]);
    assert_eq!(attempts[1]["response"], "answer 429");
    let sub: Value = app
        .get(&format!("/webhooks/subscriptions/{subscription}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sub["health_status"], "degraded", "{sub}");
    assert_eq!(sub["delivery_attempts"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn a_delivery_killed_mid_way_is_delivered_again_with_the_same_webhook_id() {
    let app = TestApp::spawn().await;
    // A short visibility timeout, so the killed task comes back within the test.
    app.aws
        .clients
        .sqs
        .set_queue_attributes()
        .queue_url(&app.aws.webhook_queue_url)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "2",
        )
        .send()
        .await
        .unwrap();
    let receiver = FakeReceiver::start().await;
    receiver.script(&[Answer {
        after: Duration::from_secs(30),
        ..Answer::status(200)
    }]);
    subscribe(&app, &receiver.url, &["collection.created"]).await;
    let sender = RunningSender::start(&app, "0,1,1,1");
    app.create_collection("killed").await;
    // The first attempt is under way (the receiver holds it): the sender dies.
    let first = receiver.wait_for(1, Duration::from_secs(60)).await;
    assert_eq!(first.len(), 1);
    drop(sender);

    let _again = RunningSender::start(&app, "0,1,1,1");
    let deliveries = receiver.wait_for(2, Duration::from_secs(60)).await;
    assert_eq!(deliveries.len(), 2, "delivered again");
    assert_eq!(deliveries[0].webhook_id(), deliveries[1].webhook_id());
    // Only the attempt that finished is recorded.
    let id = deliveries[1].webhook_id();
    let mut attempts = Vec::new();
    for _ in 0..50 {
        attempts = attempts_of(&app, id).await;
        if !attempts.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["status"], "success");
}

#[tokio::test]
async fn a_connection_that_needs_reauthentication_says_so() {
    let app = TestApp::spawn().await;
    let receiver = FakeReceiver::start().await;
    subscribe(&app, &receiver.url, &["source_connection.needs_reauth"]).await;
    app.create_collection("docs").await;
    let created = app
        .post(
            "/source-connections",
            &json!({
                "short_name": "github",
                "readable_collection_id": "docs",
                "authentication": {"credentials": {"personal_access_token": GITHUB_TOKEN}},
                "config": {"repo_name": "octo-org/hello-world"},
            }),
        )
        .await;
    assert_eq!(created.status(), 201);
    let connection: Value = created.json().await.unwrap();
    app.github.revoke_token();
    drain(&app, Duration::from_secs(2)).await;
    let _sender = RunningSender::start(&app, "0");

    let deliveries = receiver.wait_for(1, Duration::from_secs(60)).await;
    assert_eq!(deliveries.len(), 1);
    let event = deliveries[0].json();
    assert_eq!(event["event_type"], "source_connection.needs_reauth");
    assert_eq!(event["source_connection_id"], connection["id"]);
    assert_eq!(event["is_authenticated"], false);
    assert_eq!(event["error_category"], "api_key_invalid", "{event}");
}

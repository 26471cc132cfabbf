//! Webhooks on the emulator: the subscriptions API (Airweave's SDK, unchanged), the events of
//! a subscribed organization's changes recorded with them, and tenancy.

use crate::airweave_sdk::sdk_python;
use crate::helpers::app::{stub_body, TestApp};
use crate::helpers::wire;
use serde_json::{json, Value};
use std::process::Command;
use std::sync::Arc;

const RECEIVER: &str = "http://127.0.0.1:9/hooks/in";

async fn subscribe(app: &TestApp, url: &str, types: &[&str]) -> reqwest::Response {
    app.post(
        "/webhooks/subscriptions",
        &json!({"url": url, "event_types": types}),
    )
    .await
}

#[tokio::test]
async fn airweaves_sdk_manages_subscriptions_and_reads_the_recorded_events() {
    let app = TestApp::spawn().await;
    // An organization with a subscription records the events of its changes.
    let first = subscribe(&app, RECEIVER, &["sync.completed"]).await;
    assert_eq!(first.status(), 200);
    app.create_collection("hooks").await;
    let created = app
        .post("/source-connections", &stub_body("hooks", "k-hooks"))
        .await;
    assert_eq!(created.status(), 201);
    let connection: Value = created.json().await.unwrap();

    let listed: Vec<Value> = app
        .get("/webhooks/messages?event_types=source_connection.created")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let message = &listed[0];
    assert_eq!(message["payload"]["source_connection_id"], connection["id"]);
    assert_eq!(message["payload"]["collection_readable_id"], "hooks");
    assert_eq!(message["channels"], json!(["source_connection.created"]));
    let all: Vec<Value> = app.get("/webhooks/messages").await.json().await.unwrap();
    let types: Vec<&str> = all
        .iter()
        .map(|m| m["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "sync.pending",
            "source_connection.created",
            "collection.created"
        ],
        "newest first"
    );

    let mut command = Command::new(sdk_python());
    command.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/sdk/airweave_webhooks_check.py"
    ));
    let seen = wire::run_check(command, &app, &[RECEIVER, message["id"].as_str().unwrap()]).await;
    assert_eq!(seen["attempts"], 0, "nothing was delivered yet");
    assert!(seen["messages"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn endpoints_that_are_not_https_or_not_public_are_refused_and_nothing_is_stored() {
    let app = TestApp::spawn_with(|p| {
        p.webhook_targets = Arc::new(delivery::ports::TargetCheck::default());
    })
    .await;
    for url in [
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://localhost/hook",
        "https://[::1]/hook",
        "https://user:secret@example.com/hook",
    ] {
        let refused = subscribe(&app, url, &["sync.failed"]).await;
        assert_eq!(refused.status(), 422, "{url}");
        let problem: Value = refused.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], "url", "{url}: {problem}");
        assert!(!problem.to_string().contains("secret@"), "{problem}");
    }
    for (body, field) in [
        (
            json!({"url": "https://8.8.8.8/hook", "event_types": []}),
            "event_types",
        ),
        (
            json!({"url": "https://8.8.8.8/hook", "event_types": ["nope"]}),
            "event_types",
        ),
        (
            json!({"url": "https://8.8.8.8/hook", "event_types": ["sync.failed"], "secret": "short"}),
            "secret",
        ),
    ] {
        let refused = app.post("/webhooks/subscriptions", &body).await;
        assert_eq!(refused.status(), 422, "{body}");
        let problem: Value = refused.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let listed: Vec<Value> = app
        .get("/webhooks/subscriptions")
        .await
        .json()
        .await
        .unwrap();
    assert!(listed.is_empty());
    let secrets = app.aws.secret_names_under_prefix().await;
    assert!(secrets.is_empty(), "no secret was left behind: {secrets:?}");
}

#[tokio::test]
async fn another_organization_sees_no_subscription_and_no_message() {
    let app = TestApp::spawn().await;
    let created: Value = subscribe(&app, RECEIVER, &["collection.created"])
        .await
        .json()
        .await
        .unwrap();
    app.create_collection("mine").await;
    let messages: Vec<Value> = app.get("/webhooks/messages").await.json().await.unwrap();
    assert_eq!(messages.len(), 1);

    let (_, other_key) = app.other_tenant().await;
    let id = created["id"].as_str().unwrap();
    for path in [
        format!("/webhooks/subscriptions/{id}"),
        format!("/webhooks/messages/{}", messages[0]["id"].as_str().unwrap()),
    ] {
        let response = app
            .request(reqwest::Method::GET, &path, Some(&other_key), None, &[])
            .await;
        assert_eq!(response.status(), 404, "{path}");
    }
    let theirs: Vec<Value> = app
        .request(
            reqwest::Method::GET,
            "/webhooks/messages",
            Some(&other_key),
            None,
            &[],
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(theirs.is_empty());
    let deleted = app
        .request(
            reqwest::Method::DELETE,
            &format!("/webhooks/subscriptions/{id}"),
            Some(&other_key),
            None,
            &[],
        )
        .await;
    assert_eq!(deleted.status(), 404);
    assert_eq!(
        app.get(&format!("/webhooks/subscriptions/{id}"))
            .await
            .status(),
        200,
        "still there for its own organization"
    );
}

/// Whether an organization records events is its count of subscriptions, kept by the
/// subscriptions' own inserts and deletes, and read for many organizations in one request (the
/// scheduler's claims ask once per page).
#[tokio::test]
async fn an_organizations_subscription_count_follows_its_subscriptions() {
    let app = TestApp::spawn().await;
    let other = domain::ids::OrganizationId::new();
    // A reader with no cache, as another function's would be.
    let fresh = || app.aws.webhooks();
    let with = |reader: aws_adapters::DynamoWebhooks| async move {
        use domain::ports::WebhookStore;
        reader
            .organizations_with_subscriptions(&[app.org, other])
            .await
            .unwrap()
    };
    assert!(with(fresh()).await.is_empty());
    let mut ids = Vec::new();
    for _ in 0..2 {
        let created: Value = subscribe(&app, RECEIVER, &["sync.completed"])
            .await
            .json()
            .await
            .unwrap();
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(with(fresh()).await, [app.org].into());
    let deleted = app
        .delete(&format!("/webhooks/subscriptions/{}", ids[0]))
        .await;
    assert_eq!(deleted.status(), 200);
    assert_eq!(with(fresh()).await, [app.org].into(), "one is left");
    // Deleting the same one again changes no count.
    let again = app
        .delete(&format!("/webhooks/subscriptions/{}", ids[0]))
        .await;
    assert_eq!(again.status(), 404);
    assert_eq!(with(fresh()).await, [app.org].into());
    app.delete(&format!("/webhooks/subscriptions/{}", ids[1]))
        .await;
    assert!(with(fresh()).await.is_empty(), "none is left");
}

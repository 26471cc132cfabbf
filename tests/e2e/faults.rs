//! Faults injected between the writes of a create: nothing is lost and nothing is orphaned.

use crate::helpers::app::{problem, stub_body, TestApp};
use crate::helpers::sdk::{FailCalls, WithInterceptor};
use aws_adapters::DynamoStore;
use serde_json::Value;
use std::sync::Arc;

#[tokio::test]
async fn a_failed_transaction_after_the_secret_leaves_no_orphan() {
    let app = TestApp::spawn_with(|_| {}).await;
    // Rebuild the platform around the failing store, in the same stack.
    let failing = TestApp::spawn_with(|p| {
        *p = app.platform.clone();
        // The real store, except that the create transaction fails as if DynamoDB were down.
        let dynamodb = FailCalls::new("DynamoDB_20120810.TransactWriteItems", "XYZZY")
            .dynamodb(&app.aws.clients.dynamodb);
        p.store = Arc::new(DynamoStore::new(dynamodb, &app.aws.state_table));
    })
    .await;
    app.create_collection("docs").await;

    let response = failing
        .request(
            reqwest::Method::POST,
            "/source-connections",
            Some(&app.api_key),
            Some(&stub_body("docs", "k-fault")),
            &[("idempotency-key", "fault-1")],
        )
        .await;
    let p = problem(response, 500).await;
    assert!(
        !p.to_string().contains("XYZZY"),
        "no internals in a 5xx body: {p}"
    );
    let request_id = p["request_id"].as_str().unwrap();
    assert!(p["detail"].as_str().unwrap().contains(request_id));
    // The log has what the body hides: the cause chain, under the same request id.
    let logged = crate::helpers::logs::captured();
    assert!(
        logged
            .lines()
            .any(|l| l.contains(request_id) && l.contains("XYZZY") && l.contains("internal error")),
        "the cause chain is logged with the request id"
    );

    assert!(
        app.aws.secret_names_under_prefix().await.is_empty(),
        "secret removed"
    );
    let list: Vec<Value> = app.get("/source-connections").await.json().await.unwrap();
    assert!(list.is_empty());
    assert!(app.aws.receive_messages().await.is_empty());

    // The key was released: the same request succeeds once the store is healthy.
    let retry = app
        .request(
            reqwest::Method::POST,
            "/source-connections",
            Some(&app.api_key),
            Some(&stub_body("docs", "k-fault")),
            &[("idempotency-key", "fault-1")],
        )
        .await;
    assert_eq!(retry.status(), 201);
    assert_eq!(app.aws.secret_names_under_prefix().await.len(), 1);
}

#[tokio::test]
async fn a_lost_message_still_creates_the_connection_with_its_pending_job() {
    let app = TestApp::spawn().await;
    let broken_queue = TestApp::spawn_with(|p| {
        *p = app.platform.clone();
        p.queue = Arc::new(app.aws.queue_at("http://127.0.0.1:1/000000000000/missing"));
    })
    .await;
    app.create_collection("docs").await;
    let response = broken_queue
        .request(
            reqwest::Method::POST,
            "/source-connections",
            Some(&app.api_key),
            Some(&stub_body("docs", "k-queue")),
            &[],
        )
        .await;
    assert_eq!(response.status(), 201);
    let c: Value = response.json().await.unwrap();
    assert_eq!(c["sync"]["last_job"]["status"], "pending");
    let keys = app.aws.scan_keys().await;
    let job_id = c["sync"]["last_job"]["id"].as_str().unwrap();
    assert!(
        keys.iter().any(|(_, sk)| sk == &format!("JOB#{job_id}")),
        "the pending job is stored for the sweep: {keys:?}"
    );
}

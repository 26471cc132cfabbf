use crate::helpers::app::{problem, stub_body, TestApp};
use aws_adapters::bootstrap::ensure_fingerprint_key;
use aws_adapters::SecretsFingerprintKey;
use aws_sdk_dynamodb::types::AttributeValue;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;

async fn keyed(app: &TestApp, key: &str, body: &Value) -> reqwest::Response {
    app.request(
        Method::POST,
        "/source-connections",
        Some(&app.api_key),
        Some(body),
        &[("idempotency-key", key)],
    )
    .await
}

#[tokio::test]
async fn a_sequential_retry_answers_the_first_result() {
    let app = TestApp::spawn().await;
    app.create_collection("docs").await;
    let body = stub_body("docs", "k-retry");
    let first = keyed(&app, "create-1", &body).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let second = keyed(&app, "create-1", &body).await;
    assert_eq!(second.status(), 201);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    let second: Value = second.json().await.unwrap();
    assert_eq!(first, second);

    let list: Vec<Value> = app.get("/source-connections").await.json().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(app.aws.secret_names_under_prefix().await.len(), 1);
    assert_eq!(app.aws.receive_messages().await.len(), 1);

    // The same key with another body is refused and changes nothing.
    let other = stub_body("docs", "k-different");
    let p = problem(keyed(&app, "create-1", &other).await, 422).await;
    assert_eq!(p["errors"][0]["field"], "Idempotency-Key");
    let list: Vec<Value> = app.get("/source-connections").await.json().await.unwrap();
    assert_eq!(list.len(), 1);

    // Another key is another connection.
    assert_eq!(keyed(&app, "create-2", &body).await.status(), 201);
    let list: Vec<Value> = app.get("/source-connections").await.json().await.unwrap();
    assert_eq!(list.len(), 2);
}

#[tokio::test]
async fn concurrent_retries_create_one_connection() {
    let app = TestApp::spawn().await;
    app.create_collection("docs").await;
    let body = stub_body("docs", "k-concurrent");
    let answers = futures_join(&app, "burst-1", &body, 8).await;
    let ids: Vec<&str> = answers
        .iter()
        .map(|(_, b)| b["id"].as_str().unwrap())
        .collect();
    assert!(
        answers.iter().all(|(status, _)| *status == 201),
        "{answers:?}"
    );
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");

    let list: Vec<Value> = app.get("/source-connections").await.json().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(app.aws.secret_names_under_prefix().await.len(), 1);
    assert_eq!(app.aws.receive_messages().await.len(), 1);
    crate::helpers::figures(&format!(
        "concurrency: {} concurrent creates with one Idempotency-Key -> 1 connection, 1 secret, 1 message",
        answers.len()
    ));
}

async fn futures_join(app: &TestApp, key: &str, body: &Value, n: usize) -> Vec<(u16, Value)> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let client = reqwest::Client::new();
        let url = format!("{}/source-connections", app.base_url);
        let api_key = app.api_key.clone();
        let key = key.to_owned();
        let body = body.clone();
        tasks.spawn(async move {
            let response = client
                .post(url)
                .header("x-api-key", api_key)
                .header("idempotency-key", key)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        });
    }
    let mut out = Vec::new();
    while let Some(answer) = tasks.join_next().await {
        out.push(answer.unwrap());
    }
    out
}

#[tokio::test]
async fn a_failed_attempt_frees_its_key() {
    let app = TestApp::spawn().await;
    let body = stub_body("later", "k-later");
    problem(keyed(&app, "create-later", &body).await, 404).await;
    app.create_collection("later").await;
    assert_eq!(keyed(&app, "create-later", &body).await.status(), 201);
}

#[tokio::test]
async fn a_malformed_key_is_422() {
    let app = TestApp::spawn().await;
    app.create_collection("docs").await;
    let long = "k".repeat(256);
    let p = problem(keyed(&app, &long, &stub_body("docs", "k")).await, 422).await;
    assert_eq!(p["errors"][0]["field"], "Idempotency-Key");
    let list: Vec<Value> = app.get("/source-connections").await.json().await.unwrap();
    assert!(list.is_empty());
}

/// The fingerprint the key's `IDEMP#` record holds, as someone who can read the table sees it.
async fn stored_fingerprint(app: &TestApp, key: &str) -> String {
    let item = app
        .aws
        .clients
        .dynamodb
        .get_item()
        .table_name(&app.aws.state_table)
        .key("pk", AttributeValue::S(format!("IDEMP#{}#{key}", app.org)))
        .key("sk", AttributeValue::S("META".into()))
        .consistent_read(true)
        .send()
        .await
        .expect("read the idempotency record")
        .item
        .expect("the key has a record");
    item["fingerprint"].as_s().expect("a string").clone()
}

/// Review finding #10: a plain SHA-256 of the body (credentials included) in the record would
/// let anyone who can read the table test guesses of a low-entropy API key offline. The
/// fingerprint is keyed with the deployment's own secret: not the plain hash, and another
/// deployment (another key) stores another value for the same body.
#[tokio::test]
async fn the_stored_fingerprint_is_keyed_per_deployment_not_a_plain_hash() {
    let (one, two) = tokio::join!(TestApp::spawn(), TestApp::spawn());
    let body = stub_body("docs", "guessable-1234");
    let mut stored = Vec::new();
    for app in [&one, &two] {
        app.create_collection("docs").await;
        assert_eq!(keyed(app, "fingerprinted", &body).await.status(), 201);
        stored.push(stored_fingerprint(app, "fingerprinted").await);
    }

    let plain = hex::encode(Sha256::digest(body.to_string().as_bytes()));
    for fingerprint in &stored {
        assert_ne!(
            fingerprint, &plain,
            "the record holds the unkeyed SHA-256 of the body"
        );
    }
    assert_ne!(
        stored[0], stored[1],
        "two deployments with their own keys store the same fingerprint"
    );
    // What it is: HMAC-SHA256 of the canonical body under the stack's key.
    for (app, fingerprint) in [&one, &two].into_iter().zip(&stored) {
        let key = app.aws.fingerprint_key_value().await;
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(body.to_string().as_bytes());
        assert_eq!(fingerprint, &hex::encode(mac.finalize().into_bytes()));
    }
    // And a retry of the same body still answers the first result.
    let retry = keyed(&one, "fingerprinted", &body).await;
    assert_eq!(retry.status(), 201);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
}

/// Without its fingerprint key (a secret missing or unreadable) a keyed create is a 500 before
/// anything is written, never a create with an unkeyed fingerprint; a create without a key
/// does not need it.
#[tokio::test]
async fn without_the_fingerprint_key_a_keyed_create_is_a_500_that_writes_nothing() {
    let app = TestApp::spawn().await;
    let keyless = TestApp::spawn_with(|p| {
        *p = app.platform.clone();
        p.fingerprint_key = Arc::new(SecretsFingerprintKey::new(
            app.aws.clients.secrets.clone(),
            &format!("{}-elsewhere", app.aws.secrets_prefix),
        ));
    })
    .await;
    app.create_collection("docs").await;
    let body = stub_body("docs", "k-keyless");

    // The other app serves this stack: it takes this app's API key.
    let create = |key: Option<&'static str>, body: Value| {
        let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
        let (keyless, api_key) = (&keyless, &app.api_key);
        async move {
            keyless
                .request(
                    Method::POST,
                    "/source-connections",
                    Some(api_key),
                    Some(&body),
                    &headers,
                )
                .await
        }
    };

    let p = problem(create(Some("keyless-1"), body.clone()).await, 500).await;
    let request_id = p["request_id"].as_str().unwrap();
    let logged = crate::helpers::logs::captured();
    assert!(
        logged.lines().any(|l| l.contains(request_id)
            && l.contains("the idempotency fingerprint key")
            && l.contains("does not exist")),
        "the cause is logged with the request id"
    );
    assert!(app.aws.secret_names_under_prefix().await.is_empty());
    assert!(
        !app.aws
            .scan_keys()
            .await
            .iter()
            .any(|(pk, _)| pk.starts_with("IDEMP#")),
        "the key was not taken"
    );
    assert_eq!(app.aws.connection_items_count().await, 0);
    assert!(app.aws.receive_messages().await.is_empty());

    // A create without a key needs no fingerprint key.
    assert_eq!(
        create(None, stub_body("docs", "k-unkeyed")).await.status(),
        201
    );
    // A failed read is not kept: once the key exists, the next keyed create reads it.
    ensure_fingerprint_key(
        &app.aws.clients.secrets,
        &format!("{}-elsewhere", app.aws.secrets_prefix),
    )
    .await
    .unwrap();
    assert_eq!(create(Some("keyless-1"), body).await.status(), 201);
}

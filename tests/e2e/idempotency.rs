use crate::helpers::app::{problem, stub_body, TestApp};
use reqwest::Method;
use serde_json::Value;

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

//! The cost of a create, counted at the SDK: a warm direct create makes exactly four AWS calls
//! (collection read, secret, transaction, message); the API key is served from the cache.

use crate::helpers::app::{stub_body, TestApp};
use crate::helpers::sdk::{CallLog, WithInterceptor};
use aws_adapters::{DynamoStore, SecretsVault, SqsQueue};
use std::sync::Arc;

#[tokio::test]
async fn a_warm_direct_create_makes_four_aws_calls() {
    let recorder = CallLog::default();
    let app = TestApp::spawn_with(|_| {}).await;
    let counted = {
        let aws = &app.aws;
        let dynamodb = recorder.dynamodb(&aws.clients.dynamodb);
        let secrets = recorder.secrets(&aws.clients.secrets);
        let sqs = recorder.sqs(&aws.clients.sqs);
        let base = app.platform.clone();
        let state_table = aws.state_table.clone();
        let prefix = aws.secrets_prefix.clone();
        let queue_url = aws.queue_url.clone();
        TestApp::spawn_with(move |p| {
            *p = base;
            p.store = Arc::new(DynamoStore::new(dynamodb, state_table));
            p.vault = Arc::new(SecretsVault::new(secrets, prefix));
            p.queue = Arc::new(SqsQueue::new(sqs, queue_url));
        })
        .await
    };
    app.create_collection("docs").await;

    // Warm: the first request resolves and caches the API key.
    let warm = counted
        .request(
            reqwest::Method::GET,
            "/sources",
            Some(&app.api_key),
            None,
            &[],
        )
        .await;
    assert_eq!(warm.status(), 200);
    assert_eq!(
        recorder.take(),
        ["DynamoDB_20120810.GetItem"],
        "one key lookup"
    );

    let created = counted
        .request(
            reqwest::Method::POST,
            "/source-connections",
            Some(&app.api_key),
            Some(&stub_body("docs", "k-count")),
            &[],
        )
        .await;
    assert_eq!(created.status(), 201);
    assert_eq!(
        recorder.take(),
        [
            "DynamoDB_20120810.GetItem",
            "secretsmanager.CreateSecret",
            "DynamoDB_20120810.TransactWriteItems",
            "AmazonSQS.SendMessage",
        ]
    );
}

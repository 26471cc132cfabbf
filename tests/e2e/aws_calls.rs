//! The cost of a create, counted at the SDK: a warm direct create makes exactly four AWS calls
//! (collection read, secret, transaction, message); the API key is served from the cache.

use crate::helpers::app::{stub_body, TestApp};
use aws_adapters::{DynamoStore, SecretsVault, SqsQueue};
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use std::sync::{Arc, Mutex};

/// Records the `x-amz-target` (service.Operation) of every request the clients send.
#[derive(Debug, Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Recorder {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "Recorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or("unknown")
            .to_owned();
        self.0.lock().unwrap().push(target);
        Ok(())
    }
}

#[tokio::test]
async fn a_warm_direct_create_makes_four_aws_calls() {
    let recorder = Recorder::default();
    let app = TestApp::spawn_with(|_| {}).await;
    let counted = {
        let aws = &app.aws;
        let rec = recorder.clone();
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(
            aws.clients
                .dynamodb
                .config()
                .to_builder()
                .interceptor(rec.clone())
                .build(),
        );
        let secrets = aws_sdk_secretsmanager::Client::from_conf(
            aws.clients
                .secrets
                .config()
                .to_builder()
                .interceptor(rec.clone())
                .build(),
        );
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws.clients
                .sqs
                .config()
                .to_builder()
                .interceptor(rec)
                .build(),
        );
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

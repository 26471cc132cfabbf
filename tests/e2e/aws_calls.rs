//! The cost of a create, counted at the SDK: a warm direct create makes exactly four AWS calls
//! (collection read, secret, transaction, message); the API key and whether the organization
//! has webhook subscriptions are served from the cache (a function asks again after 5 s). A
//! keyed create adds its idempotency claim, and the first keyed create of a process reads the
//! fingerprint key, once: a warm keyed create asks Secrets Manager only for the connection's
//! secret. A subscription's webhook secret is read once per warm process.

use crate::helpers::app::{stub_body, TestApp};
use crate::helpers::sdk::{CallLog, WithInterceptor};
use aws_adapters::{DynamoStore, DynamoWebhooks, SecretsFingerprintKey, SecretsVault, SqsQueue};
use std::sync::Arc;

/// An app, and a second one on the same stack whose every AWS call is recorded, already warm
/// (the API key resolved and cached).
async fn warm_counted_app() -> (TestApp, TestApp, CallLog) {
    let recorder = CallLog::default();
    let app = TestApp::spawn_with(|_| {}).await;
    let counted = {
        let aws = &app.aws;
        let dynamodb = recorder.dynamodb(&aws.clients.dynamodb);
        let secrets = recorder.secrets(&aws.clients.secrets);
        let sqs = recorder.sqs(&aws.clients.sqs);
        let base = app.platform.clone();
        let state_table = aws.state_table.clone();
        let webhooks_table = aws.webhooks_table.clone();
        let prefix = aws.secrets_prefix.clone();
        let queue_url = aws.queue_url.clone();
        TestApp::spawn_with(move |p| {
            *p = base;
            p.store = Arc::new(
                DynamoStore::new(dynamodb.clone(), state_table).with_outbox(&webhooks_table),
            );
            p.webhooks = Arc::new(DynamoWebhooks::new(dynamodb, webhooks_table));
            p.vault = Arc::new(SecretsVault::new(secrets.clone(), &prefix));
            p.fingerprint_key = Arc::new(SecretsFingerprintKey::new(secrets, &prefix));
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
    // Warm too: whether the organization has webhook subscriptions, cached like the key.
    assert!(!counted
        .platform
        .webhooks
        .has_subscriptions(app.org)
        .await
        .unwrap());
    assert_eq!(
        recorder.take(),
        ["DynamoDB_20120810.BatchGetItem"],
        "one subscription count lookup"
    );
    (app, counted, recorder)
}

async fn create(app: &TestApp, counted: &TestApp, api_key: &str, key: Option<&str>) -> u16 {
    let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
    counted
        .request(
            reqwest::Method::POST,
            "/source-connections",
            Some(&app.api_key),
            Some(&stub_body("docs", api_key)),
            &headers,
        )
        .await
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_warm_direct_create_makes_four_aws_calls() {
    let (app, counted, recorder) = warm_counted_app().await;

    assert_eq!(create(&app, &counted, "k-count", None).await, 201);
    assert_eq!(
        recorder.take(),
        [
            "DynamoDB_20120810.GetItem",
            "secretsmanager.CreateSecret",
            "DynamoDB_20120810.TransactWriteItems",
            "AmazonSQS.SendMessage",
        ],
        "no idempotency key, so no fingerprint key either"
    );
}

#[tokio::test]
async fn only_the_first_keyed_create_of_a_process_reads_the_fingerprint_key() {
    let (app, counted, recorder) = warm_counted_app().await;
    let keyed = [
        "DynamoDB_20120810.PutItem",
        "DynamoDB_20120810.GetItem",
        "secretsmanager.CreateSecret",
        "DynamoDB_20120810.TransactWriteItems",
        "AmazonSQS.SendMessage",
    ];

    assert_eq!(create(&app, &counted, "k-first", Some("first")).await, 201);
    let first = recorder.take();
    assert_eq!(first[0], "secretsmanager.GetSecretValue", "{first:?}");
    assert_eq!(first[1..], keyed);

    assert_eq!(
        create(&app, &counted, "k-second", Some("second")).await,
        201
    );
    assert_eq!(recorder.take(), keyed, "a warm keyed create");

    // A replay: the claim finds the record, nothing else.
    assert_eq!(
        create(&app, &counted, "k-second", Some("second")).await,
        201
    );
    assert_eq!(
        recorder.take(),
        ["DynamoDB_20120810.PutItem", "DynamoDB_20120810.GetItem"]
    );
}

/// A subscription's secret is read from Secrets Manager once per warm process: the sender's
/// every attempt needs it, and it never changes. Deleting it forgets it at once.
#[tokio::test]
async fn a_subscriptions_secret_is_read_once_per_warm_process() {
    use domain::ports::WebhookSecrets;
    let app = TestApp::spawn().await;
    let recorder = CallLog::default();
    let vault = SecretsVault::new(
        recorder.secrets(&app.aws.clients.secrets),
        &app.aws.secrets_prefix,
    );
    let (org, id) = (app.org, domain::ids::SubscriptionId::new());
    let secret = domain::webhooks::WebhookSecret::from_random([5; 32]);
    vault.create_webhook_secret(org, id, &secret).await.unwrap();
    recorder.take();
    for _ in 0..3 {
        let read = vault.webhook_secret(org, id).await.unwrap().unwrap();
        assert_eq!(read.expose(), secret.expose());
    }
    assert_eq!(recorder.take(), ["secretsmanager.GetSecretValue"]);
    vault.delete_webhook_secret(org, id).await.unwrap();
    assert!(vault.webhook_secret(org, id).await.unwrap().is_none());
}

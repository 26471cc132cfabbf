//! Every sample event in `events/` goes through the handler its function runs.

use crate::helpers::app::TestApp;
use domain::ports::TenantStore;
use domain::tenancy::ApiKeyHash;
use http_api::{App, Function};
use secrecy::SecretString;

const EXAMPLE_KEY: &str = "sc_example_key_replace_me";

#[tokio::test]
async fn every_sample_event_is_answered_by_its_function() {
    let app = TestApp::spawn().await;
    let store = app.aws.store();
    store
        .insert_api_key(
            &ApiKeyHash::of(&SecretString::from(EXAMPLE_KEY.to_owned())),
            app.org,
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    app.create_collection("my-collection").await;
    let handler = App::new(app.platform.clone());

    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../events");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&file).unwrap();
        if name.starts_with("scheduler") {
            // A scheduled event: one tick, which finds nothing due in this fresh stack.
            let event: aws_lambda_events::event::eventbridge::EventBridgeEvent =
                serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{name} is an EventBridge event: {e}"));
            let summary = worker::scheduler::handle_tick(&app.platform, &event).await;
            assert_eq!(summary, Default::default(), "{name}");
            continue;
        }
        if name.starts_with("sync-worker") {
            // An SQS batch: the message for a job this stack does not have is acknowledged
            // and dropped; the one that is not a sync message is reported as a failure.
            let event: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{name} is an SQS event: {e}"));
            let worker = worker::Worker {
                platform: app.platform.clone(),
                settings: Default::default(),
            };
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
            let response = worker::handle_batch(&worker, event, deadline).await;
            let failed: Vec<&str> = response
                .batch_item_failures
                .iter()
                .map(|f| f.item_identifier.as_str())
                .collect();
            assert_eq!(failed, ["2e1424d4-f796-459a-8184-9c92662be6da"], "{name}");
            continue;
        }
        let request = lambda_http::request::from_str(&text)
            .unwrap_or_else(|e| panic!("{name} is an API Gateway event: {e}"));
        let (function, expected) = if name.starts_with("create-connection") {
            (Function::CreateConnection, 201)
        } else {
            (Function::Api, 200)
        };
        let response = http_api::handle(&handler, function, request).await;
        assert_eq!(response.status().as_u16(), expected, "{name}");
    }
}

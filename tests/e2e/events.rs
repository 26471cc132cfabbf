//! Every sample event in `events/` drives its function's binary, as Lambda runs it: the binary
//! starts with a deployed function's environment (pointed at this test's tables, queue and
//! secret prefix on the emulator), takes the event from a local Runtime API, and its answer is
//! checked. A missing variable stops a binary at start-up, naming it.
//!
//! With `BENCH_MEMORY_REPORT=FILE` the test also writes each binary's peak RSS on each event
//! there, one JSON line per event (`make bench-memory`, run against the deployed build).

use crate::helpers::app::TestApp;
use crate::helpers::runtime::{
    binary, invoke, invoke_logged, start_up_failure, Invocation, Outcome,
};
use domain::ports::TenantStore;
use domain::tenancy::ApiKeyHash;
use fakes::composio::FakeComposio;
use secrecy::SecretString;

const EXAMPLE_KEY: &str = "sc_example_key_replace_me";
const EXAMPLE_COMPOSIO_KEY: &str = "ak_example_replace_me";

/// The function each event belongs to, and the HTTP status it answers (None: not HTTP).
fn expected(name: &str) -> (&'static str, Option<u16>) {
    match name {
        "create-connection.json" => ("create-connection", Some(201)),
        "oauth-callback.json" => ("oauth-callback", Some(400)),
        "scheduler-tick.json" => ("scheduler", None),
        "sync-worker-sqs.json" => ("sync-worker", None),
        "webhook-sender-sqs.json" | "webhook-sender-stream.json" => ("webhook-sender", None),
        "api-collections-1-create.json" | "api-auth-providers-1-create.json" => ("api", Some(201)),
        // A connection id this stack does not have.
        n if n.starts_with("api-connection-") => ("api", Some(404)),
        n if n.starts_with("api-") => ("api", Some(200)),
        other => panic!("{other}: which function takes this event? Add it here."),
    }
}

fn environment(app: &TestApp, composio: &FakeComposio) -> Vec<(String, String)> {
    let aws = &app.aws;
    let mut env: Vec<(String, String)> = [
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_EC2_METADATA_DISABLED",
    ]
    .iter()
    .filter_map(|name| Some((name.to_string(), std::env::var(name).ok()?)))
    .collect();
    env.extend([
        ("STATE_TABLE".into(), aws.state_table.clone()),
        ("ENTITIES_TABLE".into(), aws.entities_table.clone()),
        ("WEBHOOKS_TABLE".into(), aws.webhooks_table.clone()),
        ("SYNC_QUEUE_URL".into(), aws.queue_url.clone()),
        ("WEBHOOK_QUEUE_URL".into(), aws.webhook_queue_url.clone()),
        ("SECRETS_PREFIX".into(), aws.secrets_prefix.clone()),
        ("API_BASE_URL".into(), app.base_url.clone()),
        (
            "AUTH_PROVIDER_COMPOSIO_BASE_URL".into(),
            composio.base_url.clone(),
        ),
    ]);
    env
}

/// A stack the sample events fit: the example API key's organization with its collection, and
/// the fake Composio the auth provider event names; with the binaries' environment.
async fn stack() -> (TestApp, FakeComposio, Vec<(String, String)>) {
    let app = TestApp::spawn().await;
    app.aws
        .store()
        .insert_api_key(
            &ApiKeyHash::of(&SecretString::from(EXAMPLE_KEY.to_owned())),
            app.org,
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    app.create_collection("my-collection").await;
    let composio = FakeComposio::start(EXAMPLE_COMPOSIO_KEY).await;
    let env = environment(&app, &composio);
    (app, composio, env)
}

const EVENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../events");

#[tokio::test]
async fn every_sample_event_drives_its_functions_binary() {
    let (_app, composio, env) = stack().await;

    let mut files: Vec<_> = std::fs::read_dir(EVENTS)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "an event per route");
    let mut memory = Vec::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&file).unwrap();
        let (function, status) = expected(&name);
        let Invocation {
            outcome,
            peak_rss_kib,
        } = invoke(binary(function), &env, &text).await;
        memory.push(
            serde_json::json!({"event": name, "binary": function, "peak_rss_kib": peak_rss_kib})
                .to_string(),
        );
        let Outcome::Response(response) = outcome else {
            panic!("{name}: {function} answered an error: {outcome:?}");
        };
        match status {
            Some(status) => {
                assert_eq!(response["statusCode"], status, "{name}: {response}");
                let body = response["body"].as_str().unwrap_or_default();
                assert!(!body.contains("ak_example"), "{name} answered a secret");
            }
            None if function == "scheduler" => {
                // One tick, which finds nothing due in this fresh stack.
                assert_eq!(
                    response["fired"],
                    serde_json::json!([]),
                    "{name}: {response}"
                );
                assert_eq!(response["errors"], 0, "{name}: {response}");
            }
            None if function == "webhook-sender" => {
                // Both sources' events parse and are handled: the delivery task names a
                // subscription this stack does not have (dropped), and the stream's message
                // belongs to an organization without subscriptions (nothing to queue). No
                // item fails, so neither comes again.
                assert_eq!(
                    response["batchItemFailures"],
                    serde_json::json!([]),
                    "{name}: {response}"
                );
            }
            None => {
                // The message for a job this stack does not have is acknowledged and dropped;
                // the one that is not a sync message is a batch item failure.
                assert_eq!(
                    response["batchItemFailures"],
                    serde_json::json!([{"itemIdentifier": "2e1424d4-f796-459a-8184-9c92662be6da"}]),
                    "{name}: {response}"
                );
            }
        }
    }
    assert_eq!(
        composio.key_checks(),
        1,
        "the auth provider event reached the fake"
    );
    if let Some(report) = std::env::var_os("BENCH_MEMORY_REPORT") {
        std::fs::write(report, memory.join("\n") + "\n").unwrap();
    }
}

/// The most verbose level an operator can set writes debug lines, and never a secret: trace,
/// where the Lambda runtime writes whole events and the SDK whole request and response bodies,
/// is compiled out.
#[tokio::test]
async fn a_function_asked_to_log_everything_logs_no_secret() {
    let (_app, _composio, mut env) = stack().await;
    env.push(("AWS_LAMBDA_LOG_LEVEL".into(), "TRACE".into()));
    let event = std::fs::read_to_string(format!("{EVENTS}/create-connection.json")).unwrap();
    let secret = "stub-demo-api-key";
    assert!(
        event.contains(secret),
        "the sample event carries the API key"
    );

    let (invocation, logs) = invoke_logged(binary("create-connection"), &env, &event).await;

    let Outcome::Response(response) = invocation.outcome else {
        panic!(
            "create-connection answered an error: {:?}",
            invocation.outcome
        );
    };
    assert_eq!(response["statusCode"], 201, "{response}");
    assert!(
        logs.contains(r#""level":"DEBUG""#),
        "debug lines are written at this level: {logs}"
    );
    assert!(
        !logs.contains(secret),
        "the stored API key is in the logs: {logs}"
    );
}

#[tokio::test]
async fn a_missing_variable_stops_each_binary_at_start_up_naming_it() {
    let app = TestApp::spawn().await;
    let composio = FakeComposio::start(EXAMPLE_COMPOSIO_KEY).await;
    let env: Vec<(String, String)> = environment(&app, &composio)
        .into_iter()
        .filter(|(name, _)| name != "STATE_TABLE")
        .collect();
    for function in [
        "create-connection",
        "api",
        "oauth-callback",
        "sync-worker",
        "scheduler",
        "webhook-sender",
    ] {
        let (success, stderr) = start_up_failure(binary(function), &env);
        assert!(!success, "{function} started without STATE_TABLE");
        assert!(
            stderr.contains("STATE_TABLE"),
            "{function} should name STATE_TABLE: {stderr}"
        );
    }
}

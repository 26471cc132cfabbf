//! Wire compatibility: Airweave's published TypeScript SDK (npm `@airweave/sdk`), unchanged,
//! against our API. `make test` installs the SDK into `.dev/node` and names that directory in
//! `AIRWEAVE_TS_SDK_DIR`; the script checks every answer against the SDK's declared types.

use crate::helpers::app::TestApp;
use crate::helpers::{syncing, wire};
use std::path::PathBuf;
use std::process::Command;

fn sdk_dir() -> PathBuf {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let dir = std::env::var_os("AIRWEAVE_TS_SDK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".dev/node"));
    assert!(
        dir.join("node_modules/@airweave/sdk/package.json").exists(),
        "no @airweave/sdk under {}; run `make test`, which installs it",
        dir.display()
    );
    dir
}

/// Runs the TypeScript wire check with `args` after the base URL; answers its one JSON line.
async fn run_check(app: &TestApp, args: &[&str]) -> serde_json::Value {
    let mut command = Command::new("node");
    command
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/sdk/airweave_ts_check.mjs"
        ))
        .env("AIRWEAVE_TS_SDK_DIR", sdk_dir());
    wire::run_check(command, app, args).await
}

#[tokio::test]
async fn airweaves_typescript_sdk_parses_every_answer() {
    let app = TestApp::spawn().await;
    app.create_collection("ts-sdk-docs").await;
    let seen = run_check(&app, &["ts-sdk-docs"]).await;
    assert_eq!(seen["listed"], 1);
    let sources = seen["sources"].as_array().unwrap();
    assert!(sources.contains(&"stub".into()) && sources.contains(&"github".into()));
    let created = seen["created"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/source-connections/{created}"))
            .await
            .status(),
        200
    );

    // Once the worker ran the first sync, the SDK reads the finished job and the summaries.
    syncing::drain(&app, std::time::Duration::from_secs(1)).await;
    let synced = run_check(&app, &["--synced", created]).await;
    assert_eq!(synced["inserted"], 5);
    assert_eq!(synced["deleted"], created);
    assert_eq!(
        app.get(&format!("/source-connections/{created}"))
            .await
            .status(),
        404,
        "the SDK's delete went through"
    );
}

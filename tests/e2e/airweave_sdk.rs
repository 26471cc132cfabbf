//! Wire compatibility: Airweave's published Python SDK, unchanged, against our API.
//! `make test` installs the SDK into the project's venv and names its python in
//! `AIRWEAVE_SDK_PYTHON`.

use crate::helpers::app::TestApp;
use crate::helpers::{syncing, wire};
use std::path::PathBuf;
use std::process::Command;

pub(crate) fn sdk_python() -> PathBuf {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let python = std::env::var_os("AIRWEAVE_SDK_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".dev/venv/bin/python"));
    assert!(
        python.exists(),
        "no python with airweave-sdk at {}; run `make test`, which installs it",
        python.display()
    );
    python
}

/// Runs the wire check script with `args` after the base URL; answers its one JSON line.
async fn run_check(app: &TestApp, args: &[&str]) -> serde_json::Value {
    let mut command = Command::new(sdk_python());
    command.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/sdk/airweave_wire_check.py"
    ));
    wire::run_check(command, app, args).await
}

#[tokio::test]
async fn airweaves_python_sdk_parses_every_answer() {
    let app = TestApp::spawn().await;
    app.create_collection("sdk-docs").await;
    let seen = run_check(&app, &["sdk-docs"]).await;
    assert_eq!(seen["listed"], 1);
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

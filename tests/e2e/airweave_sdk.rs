//! Wire compatibility: Airweave's published Python SDK, unchanged, against our API.
//! `make test` installs the SDK into the project's venv and names its python in
//! `AIRWEAVE_SDK_PYTHON`.

use crate::helpers::app::TestApp;
use std::path::PathBuf;
use std::process::Command;

fn sdk_python() -> PathBuf {
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

#[tokio::test]
async fn airweaves_python_sdk_parses_every_answer() {
    let app = TestApp::spawn().await;
    app.create_collection("sdk-docs").await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/sdk/airweave_wire_check.py");
    let base_url = app.base_url.clone();
    let api_key = app.api_key.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(sdk_python())
            .arg(script)
            .arg(&base_url)
            .arg("sdk-docs")
            .env("AIRWEAVE_API_KEY", api_key)
            .output()
            .expect("python runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "SDK check failed:\n{stdout}\n{stderr}"
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(seen["listed"], 1);
    let created = seen["created"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/source-connections/{created}"))
            .await
            .status(),
        200
    );
}

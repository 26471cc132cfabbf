//! Running an Airweave SDK's wire-check script against a test's API.

use super::app::TestApp;
use std::process::Command;

/// Runs `command` (an interpreter and its script) with the API's base URL and `args`, the API
/// key in `AIRWEAVE_API_KEY`; panics with its output unless it succeeds, and answers the one
/// JSON line it prints.
pub async fn run_check(mut command: Command, app: &TestApp, args: &[&str]) -> serde_json::Value {
    command
        .arg(&app.base_url)
        .args(args)
        .env("AIRWEAVE_API_KEY", &app.api_key);
    let output = tokio::task::spawn_blocking(move || command.output().expect("the SDK check runs"))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "SDK check failed:\n{stdout}\n{stderr}"
    );
    serde_json::from_str(stdout.trim()).expect("one JSON line")
}

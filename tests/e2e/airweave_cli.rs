//! Airweave's CLI (`airweave-cli`, what its users install), unchanged, against our API: the
//! commands themselves, and the requests it makes that the SDKs do not — a tagged
//! `authentication` (`{"type": "direct", ...}`), `POST .../run` with `{"force_full_sync": true}`
//! as its body, and `GET /collections/{id}/source-connections/`. `make test` installs the CLI
//! into its own venv and names its `airweave` command in `AIRWEAVE_CLI`.

use crate::helpers::app::{problem, stub_body, TestApp};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;

fn cli() -> PathBuf {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let cli = std::env::var_os("AIRWEAVE_CLI")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".dev/cli-venv/bin/airweave"));
    assert!(
        cli.exists(),
        "no airweave CLI at {}; run `make test`, which installs it",
        cli.display()
    );
    cli
}

/// The CLI pointed at `app` with its API key, with a home of its own (no saved login).
fn command(app: &TestApp, home: &std::path::Path, program: &std::path::Path) -> Command {
    let mut command = Command::new(program);
    command
        .env("AIRWEAVE_BASE_URL", &app.base_url)
        .env("AIRWEAVE_API_KEY", &app.api_key)
        .env("HOME", home)
        .env_remove("AIRWEAVE_COLLECTION");
    command
}

/// `airweave --json ARGS`: its JSON answer, after checking it succeeded.
async fn json_of(app: &TestApp, home: &std::path::Path, args: &[&str]) -> Value {
    let mut command = command(app, home, &cli());
    command.arg("--json").args(args);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("the CLI runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "airweave {args:?}: {stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("airweave {args:?}: {e}: {stdout}"))
}

#[tokio::test]
async fn airweaves_cli_manages_collections_and_sources_unchanged() {
    let app = TestApp::spawn().await;
    let home = std::env::temp_dir().join(format!("airweave-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&home).unwrap();
    let home = home.as_path();

    let created = json_of(
        &app,
        home,
        &[
            "collections",
            "create",
            "--name",
            "CLI docs",
            "--readable-id",
            "cli-docs",
        ],
    )
    .await;
    assert_eq!(created["readable_id"], "cli-docs");
    let listed = json_of(&app, home, &["collections", "list"]).await;
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["readable_id"] == "cli-docs"));
    let got = json_of(&app, home, &["collections", "get", "cli-docs"]).await;
    assert_eq!(got["name"], "CLI docs");

    let added = json_of(
        &app,
        home,
        &[
            "sources",
            "add",
            "stub",
            "--collection",
            "cli-docs",
            "--name",
            "CLI stub",
            "--credentials",
            r#"{"api_key": "stub-key-cli-driven"}"#,
            "--config",
            r#"{"entity_count": 3}"#,
            "--no-sync",
        ],
    )
    .await;
    assert_eq!(added["status"], "active", "{added}");
    let id = added["id"].as_str().unwrap().to_owned();
    let sources = json_of(&app, home, &["sources", "list", "--collection", "cli-docs"]).await;
    assert_eq!(sources[0]["id"], id.as_str());
    let job = json_of(&app, home, &["sources", "sync", &id, "--force"]).await;
    assert_eq!(job["force_full_sync"], true, "{job}");
    assert_eq!(job["status"], "pending");

    // On a terminal the CLI renders tables instead of JSON.
    let python = cli().with_file_name("python");
    let mut on_tty = command(&app, home, &python);
    on_tty.args(["-c", "import pty, sys; pty.spawn(sys.argv[1:])"]);
    on_tty
        .arg(cli())
        .args(["sources", "list", "--collection", "cli-docs"]);
    let output = tokio::task::spawn_blocking(move || on_tty.output())
        .await
        .unwrap()
        .expect("the CLI runs on a pseudo-terminal");
    let screen = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{screen}");
    assert!(
        screen.contains("Source Connections") && screen.contains("CLI stub"),
        "{screen}"
    );
    let _ = std::fs::remove_dir_all(home);
}

#[tokio::test]
async fn a_tagged_authentication_is_accepted_when_the_tag_names_its_method() {
    let app = TestApp::spawn().await;
    app.create_collection("docs").await;
    let mut body = stub_body("docs", "stub-key-cli-1");
    body["authentication"]["type"] = json!("direct");
    body["sync_immediately"] = json!(false);
    let created = app.create_connection(&body).await;
    assert_eq!(created.status(), 201);

    body["authentication"]["type"] = json!("oauth_token");
    let refused = problem(app.create_connection(&body).await, 422).await;
    assert_eq!(refused["errors"][0]["field"], "authentication.type");
}

#[tokio::test]
async fn a_run_takes_force_full_sync_from_its_body() {
    let app = TestApp::spawn().await;
    app.create_collection("docs").await;
    let mut body = stub_body("docs", "stub-key-cli-2");
    body["sync_immediately"] = json!(false);
    let created: Value = app.create_connection(&body).await.json().await.unwrap();
    let path = format!(
        "/source-connections/{}/run",
        created["id"].as_str().unwrap()
    );

    let bogus = problem(app.post(&path, &json!({"force": true})).await, 422).await;
    assert_eq!(bogus["errors"][0]["field"], "force");
    let response = app.post(&path, &json!({"force_full_sync": true})).await;
    assert_eq!(response.status(), 202);
    let job: Value = response.json().await.unwrap();
    assert_eq!(job["force_full_sync"], true);
}

#[tokio::test]
async fn a_collections_connections_are_listed_under_it() {
    let app = TestApp::spawn().await;
    app.create_collection("docs").await;
    app.create_collection("other").await;
    let mut body = stub_body("docs", "stub-key-cli-3");
    body["sync_immediately"] = json!(false);
    let created: Value = app.create_connection(&body).await.json().await.unwrap();
    body["readable_collection_id"] = json!("other");
    app.create_connection(&body).await;

    for path in [
        "/collections/docs/source-connections",
        "/collections/docs/source-connections/",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let listed: Vec<Value> = response.json().await.unwrap();
        let ids: Vec<&str> = listed.iter().map(|c| c["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [created["id"].as_str().unwrap()], "{path}");
    }
    problem(
        app.get("/collections/nowhere/source-connections").await,
        404,
    )
    .await;
}

use crate::helpers::app::{problem, stub_body, TestApp, GITHUB_TOKEN};
use crate::helpers::logs;
use chrono::{DateTime, Timelike, Utc};
use serde_json::{json, Value};

/// No secret, no connection, no job, no message: what a refused create must leave.
async fn assert_nothing_behind(app: &TestApp) {
    assert!(
        app.aws.secret_names_under_prefix().await.is_empty(),
        "no secret"
    );
    let keys = app.aws.scan_keys().await;
    assert!(
        !keys.iter().any(|(pk, sk)| sk.starts_with("CONN#")
            || sk.starts_with("JOB#")
            || pk.starts_with("CONN#")),
        "no connection or job: {keys:?}"
    );
    assert!(app.aws.receive_messages().await.is_empty(), "no message");
}

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().expect("timestamp string"))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

#[tokio::test]
async fn a_direct_stub_create_answers_every_field_with_the_defaults() {
    let app = TestApp::spawn().await;
    app.create_collection("docs").await;
    let secret = "stub-key-Zq9-never-shown";
    let before = Utc::now();
    let response = app.create_connection(&stub_body("docs", secret)).await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let text = response.text().await.unwrap();
    assert!(!text.contains(secret), "no credential in the response");
    let c: Value = serde_json::from_str(&text).unwrap();

    let expected_fields = [
        "id",
        "organization_id",
        "name",
        "short_name",
        "readable_collection_id",
        "status",
        "created_at",
        "modified_at",
        "auth",
        "description",
        "config",
        "schedule",
        "sync",
        "sync_id",
        "entities",
        "error_category",
        "error_message",
        "provider_settings_url",
        "provider_short_name",
        "federated_search",
    ];
    let mut keys: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut expected = expected_fields.to_vec();
    expected.sort_unstable();
    assert_eq!(keys, expected);

    let id = c["id"].as_str().unwrap();
    assert_eq!(location, format!("/source-connections/{id}"));
    assert_eq!(c["organization_id"], app.org.to_string());
    assert_eq!(c["name"], "Stub Connection");
    assert_eq!(c["short_name"], "stub");
    assert_eq!(c["readable_collection_id"], "docs");
    assert_eq!(c["status"], "active");
    assert_eq!(c["description"], Value::Null);
    assert_eq!(c["config"], json!({"entity_count": 10, "seed": 7}));
    assert_eq!(c["federated_search"], false);
    assert_eq!(c["error_category"], Value::Null);
    let created_at = time(&c["created_at"]);
    assert!(created_at >= before - chrono::Duration::seconds(1));
    assert_eq!(c["modified_at"], c["created_at"]);

    let auth = &c["auth"];
    assert_eq!(auth["method"], "direct");
    assert_eq!(auth["authenticated"], true);
    assert_eq!(time(&auth["authenticated_at"]), created_at);
    for key in [
        "expires_at",
        "auth_url",
        "auth_url_expires",
        "redirect_url",
        "provider_readable_id",
    ] {
        assert_eq!(auth[key], Value::Null, "auth.{key}");
    }

    // Daily at the creation hour:minute UTC, next run tomorrow.
    let schedule = &c["schedule"];
    assert_eq!(
        schedule["cron"],
        format!("{} {} * * *", created_at.minute(), created_at.hour())
    );
    let next_run = time(&schedule["next_run"]);
    assert!(next_run > created_at && next_run <= created_at + chrono::Duration::days(1));
    assert_eq!(
        (
            next_run.hour(),
            next_run.minute(),
            next_run.second(),
            next_run.nanosecond()
        ),
        (created_at.hour(), created_at.minute(), 0, 0)
    );

    // sync_immediately defaults to true for direct: a pending first job and one message.
    let last_job = &c["sync"]["last_job"];
    assert_eq!(last_job["status"], "pending");
    assert_eq!(c["sync"]["total_runs"], 0);
    assert_eq!(c["entities"]["total_entities"], 0);
    let messages = app.aws.receive_messages().await;
    assert_eq!(messages.len(), 1);
    let message: Value = serde_json::from_str(&messages[0]).unwrap();
    assert_eq!(message["job_id"], last_job["id"]);
    assert_eq!(message["connection_id"], c["id"]);
    assert_eq!(message["organization_id"], c["organization_id"]);
    assert_eq!(message["trigger"], "initial");

    // The credential lives in exactly one secret, named after the connection.
    let secrets = app.aws.secret_names_under_prefix().await;
    assert_eq!(
        secrets,
        vec![format!(
            "{}/connections/{}/{id}",
            app.aws.secrets_prefix, app.org
        )]
    );

    // Reading it back answers the same document.
    let read: Value = app.get(&location).await.json().await.unwrap();
    assert_eq!(read, c);

    assert!(
        !logs::captured().contains(secret),
        "no credential in any log line"
    );
}

#[tokio::test]
async fn explicit_choices_override_the_defaults() {
    let app = TestApp::spawn().await;
    app.create_collection("docs").await;
    let mut body = stub_body("docs", "k-1");
    body["name"] = json!("My stub");
    body["description"] = json!("demo data");
    body["sync_immediately"] = json!(false);
    body["schedule"] = json!({"cron": "*/30 * * * *"});
    let c: Value = app.create_connection(&body).await.json().await.unwrap();
    assert_eq!(c["name"], "My stub");
    assert_eq!(c["description"], "demo data");
    assert_eq!(c["schedule"]["cron"], "*/30 * * * *");
    let next_run = time(&c["schedule"]["next_run"]);
    assert!(next_run.minute() % 30 == 0 && next_run > time(&c["created_at"]));
    assert_eq!(c["sync"]["last_job"], Value::Null);
    assert!(
        app.aws.receive_messages().await.is_empty(),
        "no sync requested"
    );

    body["name"] = json!("No schedule");
    body["schedule"] = json!({"cron": null});
    let c: Value = app.create_connection(&body).await.json().await.unwrap();
    assert_eq!(c["schedule"]["cron"], Value::Null);
    assert_eq!(c["schedule"]["next_run"], Value::Null);
}

#[tokio::test]
async fn validation_bounds_are_inclusive() {
    let app = TestApp::spawn().await;
    app.create_collection("docs").await;
    let accepted = [
        ("name", json!("abcd")),
        ("name", json!("n".repeat(42))),
        ("description", json!("d".repeat(255))),
        ("description", json!("")),
        ("config", json!({"entity_count": 1})),
        ("config", json!({"entity_count": 1_000_000})),
    ];
    for (field, value) in accepted {
        let mut body = stub_body("docs", "k-1");
        body[field] = value.clone();
        body["sync_immediately"] = json!(false);
        let response = app.create_connection(&body).await;
        assert_eq!(response.status(), 201, "{field} = {value}");
    }
}

#[tokio::test]
async fn each_bad_input_gets_its_status_and_leaves_nothing_behind() {
    let app = TestApp::spawn().await;
    app.create_collection("docs").await;
    let base = stub_body("docs", "k-1");
    let with = |field: &str, value: Value| {
        let mut body = base.clone();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = base.clone();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        ("name too short", with("name", json!("abc")), 422, "name"),
        (
            "name too long",
            with("name", json!("n".repeat(43))),
            422,
            "name",
        ),
        (
            "description too long",
            with("description", json!("d".repeat(256))),
            422,
            "description",
        ),
        ("unknown field", with("colour", json!("red")), 422, "colour"),
        (
            "missing short_name",
            without("short_name"),
            422,
            "short_name",
        ),
        (
            "missing collection",
            without("readable_collection_id"),
            422,
            "readable_collection_id",
        ),
        (
            "bad collection id",
            with("readable_collection_id", json!("Not_Valid")),
            422,
            "readable_collection_id",
        ),
        (
            "bad cron",
            with("schedule", json!({"cron": "every day"})),
            422,
            "schedule.cron",
        ),
        (
            "six-field cron",
            with("schedule", json!({"cron": "0 0 * * * *"})),
            422,
            "schedule.cron",
        ),
        (
            "unknown schedule field",
            with("schedule", json!({"every": "day"})),
            422,
            "schedule.every",
        ),
        (
            "entity_count 0",
            with("config", json!({"entity_count": 0})),
            422,
            "config.entity_count",
        ),
        (
            "entity_count too big",
            with("config", json!({"entity_count": 1_000_001})),
            422,
            "config.entity_count",
        ),
        (
            "unknown config field",
            with("config", json!({"entity_count": 5, "colour": 1})),
            422,
            "config.colour",
        ),
        (
            "config not an object",
            with("config", json!([1])),
            422,
            "config",
        ),
        (
            "unknown credential",
            with(
                "authentication",
                json!({"credentials": {"api_key": "k", "password": "p"}}),
            ),
            422,
            "authentication.credentials.password",
        ),
        (
            "empty credentials",
            with("authentication", json!({"credentials": {}})),
            422,
            "authentication.credentials",
        ),
        (
            "mixed rows",
            with(
                "authentication",
                json!({"credentials": {"api_key": "k"}, "access_token": "t"}),
            ),
            422,
            "authentication",
        ),
        (
            "byoc half",
            with("authentication", json!({"client_id": "abc"})),
            422,
            "authentication.client_secret",
        ),
        (
            "redirect_url with direct",
            with("redirect_url", json!("https://app.example.com/done")),
            422,
            "redirect_url",
        ),
        (
            "sync_immediately not a bool",
            with("sync_immediately", json!("yes")),
            422,
            "sync_immediately",
        ),
        ("unknown source", with("short_name", json!("nope")), 404, ""),
        (
            "unknown collection",
            with("readable_collection_id", json!("missing")),
            404,
            "",
        ),
        (
            "method the source lacks",
            with("authentication", json!({"access_token": "t"})),
            400,
            "",
        ),
        (
            "browser flow not yet",
            with("authentication", json!({})),
            400,
            "",
        ),
        (
            "no authentication = browser",
            without("authentication"),
            400,
            "",
        ),
        (
            "byoc not yet",
            with(
                "authentication",
                json!({"client_id": "i", "client_secret": "s"}),
            ),
            400,
            "",
        ),
        (
            "auth provider not yet",
            with(
                "authentication",
                json!({"provider_readable_id": "my-composio"}),
            ),
            400,
            "",
        ),
    ];
    for (case, body, status, field) in cases {
        let response = app.create_connection(&body).await;
        let p = problem(response, status).await;
        if status == 422 {
            let fields: Vec<&str> = p["errors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["field"].as_str().unwrap())
                .collect();
            assert!(fields.contains(&field), "{case}: {p}");
        }
        assert_nothing_behind(&app).await;
    }

    // Not JSON at all.
    let response = app
        .request(
            reqwest::Method::POST,
            "/source-connections",
            Some(&app.api_key),
            None,
            &[("content-type", "application/json")],
        )
        .await;
    problem(response, 422).await;
    let raw = reqwest::Client::new()
        .post(format!("{}/source-connections", app.base_url))
        .header("x-api-key", &app.api_key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    problem(raw, 422).await;
    assert_nothing_behind(&app).await;
}

#[tokio::test]
async fn a_mix_of_methods_names_both() {
    let app = TestApp::spawn().await;
    app.create_collection("docs").await;
    let mut body = stub_body("docs", "k");
    body["authentication"] =
        json!({"credentials": {"api_key": "k"}, "provider_readable_id": "p-1"});
    let p = problem(app.create_connection(&body).await, 422).await;
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("direct") && detail.contains("auth_provider"),
        "{detail}"
    );
}

fn github_body(token: &str) -> Value {
    json!({
        "short_name": "github",
        "readable_collection_id": "code",
        "authentication": {"credentials": {"personal_access_token": token}},
        "config": {"repo_name": "octo-org/hello-world"},
    })
}

#[tokio::test]
async fn github_checks_the_token_before_storing_anything() {
    let app = TestApp::spawn().await;
    app.create_collection("code").await;

    let p = problem(
        app.create_connection(&github_body("ghp_revoked_token_1234"))
            .await,
        400,
    )
    .await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("invalid or revoked token"),
        "{p}"
    );
    assert!(!p.to_string().contains("ghp_revoked_token_1234"));
    assert_nothing_behind(&app).await;

    let mut bad_repo = github_body(GITHUB_TOKEN);
    bad_repo["config"] = json!({"repo_name": "just-a-name"});
    let p = problem(app.create_connection(&bad_repo).await, 422).await;
    assert_eq!(p["errors"][0]["field"], "config.repo_name");

    let response = app.create_connection(&github_body(GITHUB_TOKEN)).await;
    assert_eq!(response.status(), 201);
    let text = response.text().await.unwrap();
    assert!(!text.contains(GITHUB_TOKEN));
    let c: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(c["name"], "GitHub Connection");
    assert!(
        app.github.requests() >= 2,
        "the check reached the fake GitHub"
    );
    assert!(!logs::captured().contains(GITHUB_TOKEN));
    assert!(!logs::captured().contains("ghp_revoked_token_1234"));
}

#[tokio::test]
async fn an_oauth_token_is_checked_and_its_expiry_kept() {
    let app = TestApp::spawn().await;
    app.create_collection("code").await;
    let body = json!({
        "short_name": "github",
        "readable_collection_id": "code",
        "authentication": {"access_token": GITHUB_TOKEN, "refresh_token": "ghr_refresh_secret", "expires_in": 3600},
        "config": {"repo_name": "octo-org/hello-world", "branch": "main"},
    });
    let response = app.create_connection(&body).await;
    assert_eq!(response.status(), 201);
    let text = response.text().await.unwrap();
    assert!(!text.contains(GITHUB_TOKEN) && !text.contains("ghr_refresh_secret"));
    let c: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(c["auth"]["method"], "oauth_token");
    let expires = time(&c["auth"]["expires_at"]);
    let created = time(&c["created_at"]);
    assert_eq!((expires - created).num_seconds(), 3600);
    assert!(!logs::captured().contains("ghr_refresh_secret"));
}

#[tokio::test]
async fn upstream_rate_limits_and_failures_surface_as_429_and_502() {
    let app = TestApp::spawn().await;
    app.create_collection("code").await;

    app.github.respond_rate_limited(Some(17));
    let response = app.create_connection(&github_body(GITHUB_TOKEN)).await;
    assert_eq!(response.headers()["retry-after"], "17");
    problem(response, 429).await;
    assert_nothing_behind(&app).await;

    app.github.respond_unavailable();
    problem(app.create_connection(&github_body(GITHUB_TOKEN)).await, 502).await;
    assert_nothing_behind(&app).await;
}

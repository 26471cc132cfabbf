//! API fuzzing: schemathesis (PyPI, pinned in `infra/emulator.sh`, which `make test` installs
//! into `.dev/fuzz-venv` and names in `SCHEMATHESIS`) generates requests from `GET
//! /openapi.json`, positive and negative, with a fixed seed and a fixed number of examples per
//! operation, against a stack that holds a few real collections, connections, jobs and an auth
//! provider account, so the generated requests reach past the 404s.
//!
//! A server error, a response that breaks its documented schema, an undocumented status code or
//! content type fails the test. A schema-valid request that the API refuses passes only when it
//! is one of the refusals listed in `REFUSED`, each explained in the README (Reliability, API
//! fuzzing); any other one fails the test too.

use crate::helpers::app::{composio_clients, stub_body, TestApp, GITHUB_TOKEN};
use crate::helpers::syncing;
use base64::Engine;
use fakes::composio::{ComposioAccount, FakeComposio};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// Same seed, same requests: a failure reproduces with the command the test prints.
const SEED: u64 = 20261126;
/// Test cases per operation and phase (examples, coverage, fuzzing, stateful): about 1,400
/// requests in all, most of them the coverage phase's, 45-55 s on two cores.
const MAX_EXAMPLES: u32 = 20;
/// The four conformance checks, and `positive_data_acceptance` to see which schema-valid
/// requests are refused (`REFUSED` decides which of those are right).
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
    response_schema_conformance,positive_data_acceptance";
const COMPOSIO_KEY: &str = "ak_fuzzComposioKey_91c2";

fn schemathesis() -> PathBuf {
    let path = std::env::var_os("SCHEMATHESIS").map(PathBuf::from).expect(
        "SCHEMATHESIS is not set: run this test through `make test`, which installs schemathesis \
         into .dev/fuzz-venv and names its executable in SCHEMATHESIS",
    );
    assert!(
        path.exists(),
        "no schemathesis at {} (SCHEMATHESIS); run `make test`, which installs it",
        path.display()
    );
    path
}

/// What the generated requests can name: real ids next to the random ones.
struct Seeded {
    collections: Vec<String>,
    connections: Vec<String>,
    jobs: Vec<String>,
    providers: Vec<String>,
    sources: Vec<String>,
}

fn id(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

/// A stub connection in `fuzz-docs` with this config.
fn stub(config: Value) -> Value {
    let mut body = stub_body("fuzz-docs", "fuzz-stub-key");
    body["config"] = config;
    body
}

/// A GitHub connection in `fuzz-docs` with this authentication.
fn github(authentication: Value) -> Value {
    json!({
        "short_name": "github",
        "readable_collection_id": "fuzz-docs",
        "config": {"repo_name": "octo-org/hello-world"},
        "authentication": authentication,
    })
}

/// Two collections (one with connections, one empty); stub connections in every state a run
/// leaves (synced with entities, failed, needing re-authentication, paused, with a pending
/// job); a browser-flow one waiting for authorization (BYOC); one through a Composio account,
/// and that account. Their answers are what `response_schema_conformance` checks.
async fn seed(app: &TestApp, composio: &FakeComposio) -> Seeded {
    app.create_collection("fuzz-docs").await;
    app.create_collection("fuzz-empty").await;
    let mut connections = Vec::new();
    let mut jobs = Vec::new();
    for config in [
        json!({"entity_count": 30, "seed": 7}),
        json!({"entity_count": 30, "fail_after": 10, "fail_with": "server_error"}),
        json!({"entity_count": 30, "fail_after": 10, "fail_with": "auth"}),
    ] {
        let created = syncing::create(app, &stub(config)).await;
        connections.push(id(&created));
        jobs.push(id(&created["sync"]["last_job"]));
    }
    syncing::drain(app, Duration::from_secs(1)).await;
    let paused = syncing::create(app, &stub(json!({"entity_count": 5}))).await;
    let response = app
        .request(
            Method::PATCH,
            &format!("/source-connections/{}", id(&paused)),
            Some(&app.api_key),
            Some(&json!({"status": "inactive"})),
            &[],
        )
        .await;
    assert_eq!(response.status(), 200, "paused");
    connections.push(id(&paused));
    let pending = syncing::create(app, &stub(json!({"entity_count": 5}))).await;
    connections.push(id(&pending));
    jobs.push(id(&pending["sync"]["last_job"]));

    let browser = syncing::create(
        app,
        &github(json!({"client_id": "fuzz-app", "client_secret": "fuzz-app-secret"})),
    )
    .await;
    assert_eq!(browser["status"], "pending_auth", "{browser}");
    connections.push(id(&browser));

    composio.add_account(ComposioAccount::oauth("ca_fuzz", "github", GITHUB_TOKEN));
    let provider = app
        .post(
            "/auth-providers/connections",
            &json!({"name": "Fuzz Composio", "readable_id": "fuzz-composio",
                    "short_name": "composio", "auth_fields": {"api_key": COMPOSIO_KEY}}),
        )
        .await;
    assert_eq!(provider.status(), 201, "{}", provider.text().await.unwrap());
    let through = syncing::create(
        app,
        &github(json!({"provider_readable_id": "fuzz-composio",
                       "provider_config": {"account_id": "ca_fuzz"}})),
    )
    .await;
    connections.push(id(&through));

    let sources: Vec<Value> = app.get("/sources").await.json().await.unwrap();
    Seeded {
        collections: vec!["fuzz-docs".into(), "fuzz-empty".into()],
        connections,
        jobs,
        providers: vec!["fuzz-composio".into()],
        sources: sources
            .iter()
            .map(|s| s["short_name"].as_str().unwrap().to_owned())
            .collect(),
    }
}

/// `schemathesis.toml`: dictionaries of the seeded ids, used for most generated values of the
/// parameters that name them (the rest stay random, so unknown ids are tried too).
fn config(seeded: &Seeded) -> String {
    let list = |values: &[String]| serde_json::to_string(values).expect("strings serialize");
    format!(
        r#"[dictionaries.collection]
values = {collections}
[dictionaries.connection]
values = {connections}
[dictionaries.job]
values = {jobs}
[dictionaries.provider]
values = {providers}
[dictionaries.source]
values = {sources}

[parameters]
"path.id" = {{ dictionary = "connection", probability = 0.8 }}
"path.job_id" = {{ dictionary = "job", probability = 0.8 }}
"path.short_name" = {{ dictionary = "source", probability = 0.8 }}
"query.collection" = {{ dictionary = "collection", probability = 0.5 }}
"body.readable_collection_id" = {{ dictionary = "collection", probability = 0.8 }}
"body.short_name" = {{ dictionary = "source", probability = 0.8 }}
"body.provider_readable_id" = {{ dictionary = "provider", probability = 0.8 }}

[[operations]]
include-path-regex = "^/collections/"
parameters = {{ "path.readable_id" = {{ dictionary = "collection", probability = 0.8 }} }}

[[operations]]
include-path-regex = "^/auth-providers/"
parameters = {{ "path.readable_id" = {{ dictionary = "provider", probability = 0.8 }} }}
"#,
        collections = list(&seeded.collections),
        connections = list(&seeded.connections),
        jobs = list(&seeded.jobs),
        providers = list(&seeded.providers),
        sources = list(&seeded.sources),
    )
}

/// Deleting a connection ends what the other operations can do with it, and schemathesis also
/// feeds it the ids other answers carried: it gets a pass of its own, after the rest.
const DELETE_CONNECTION: &str = "DELETE /source-connections/{id}";

/// The two passes: the name filter, and the name of its reports.
const PASSES: [(&str, &str); 2] = [("--exclude-name", "most"), ("--include-name", "deletes")];

/// The command line of one pass, with `$KEY` for the API key's value.
fn arguments(app: &TestApp, dir: &Path, (filter, pass): (&str, &str)) -> Vec<String> {
    [
        "--config-file",
        &dir.join("schemathesis.toml").display().to_string(),
        "run",
        &format!("{}/openapi.json", app.base_url),
        filter,
        DELETE_CONNECTION,
        "--checks",
        CHECKS,
        "--mode",
        "all",
        "--max-examples",
        &MAX_EXAMPLES.to_string(),
        "--seed",
        &SEED.to_string(),
        "--continue-on-failure",
        // Generation speed says nothing about the API; a busy CI machine must not fail the run.
        "--suppress-health-check",
        "too_slow",
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--request-timeout",
        "20",
        "--no-color",
        "--report",
        "json,ndjson",
        "--report-json-path",
        &dir.join(format!("{pass}.json")).display().to_string(),
        "--report-ndjson-path",
        &dir.join(format!("{pass}.ndjson")).display().to_string(),
        "--header",
        "x-api-key: $KEY",
    ]
    .map(str::to_owned)
    .into()
}

/// A schema-valid request the API is right to refuse: each is listed, with its reason, in the
/// README (Reliability, API fuzzing).
struct Refusal {
    operation: &'static str,
    status: u16,
    why: Why,
}

enum Why {
    /// A problem each of whose `errors` is one of these: the field (up to its first `.` or
    /// `[`) and a piece of the message ("" for any message).
    Errors(&'static [(&'static str, &'static str)]),
    /// Any problem: the operation's documented 400, which the state of the stack decides (the
    /// source's methods, the platform's OAuth apps, the connection's status), not the request.
    State,
    /// The OAuth callback's HTML page with this title.
    Page(&'static str),
}

/// An opaque cursor this API never issued: the pattern admits it, the decoding cannot.
const FORGED_CURSOR: Why = Why::Errors(&[("cursor", "")]);

const fn refused(operation: &'static str, status: u16, why: Why) -> Refusal {
    Refusal {
        operation,
        status,
        why,
    }
}

const REFUSED: &[Refusal] = &[
    refused("GET /collections", 422, FORGED_CURSOR),
    refused("GET /source-connections", 422, FORGED_CURSOR),
    refused(
        "GET /collections/{readable_id}/source-connections",
        422,
        FORGED_CURSOR,
    ),
    refused("GET /source-connections/{id}/jobs", 422, FORGED_CURSOR),
    refused("GET /source-connections/{id}/entities", 422, FORGED_CURSOR),
    // The feed's cursor is opaque too, and says where to go on, so `modified_after` cannot come
    // with it; a `modified_after` older than the deletion records' retention is gone.
    refused(
        "GET /source-connections/{id}/changes",
        422,
        Why::Errors(&[
            ("cursor", ""),
            ("modified_after", "cannot be given with cursor"),
        ]),
    ),
    refused("GET /source-connections/{id}/changes", 410, Why::State),
    refused("GET /auth-providers/connections", 422, FORGED_CURSOR),
    // The state is a one-time credential: a made-up one is refused.
    refused(
        "GET /oauth/callback",
        400,
        Why::Page("This authorization link is not valid"),
    ),
    refused(
        "POST /collections",
        422,
        Why::Errors(&[("name", "control characters")]),
    ),
    // The provider, the readable id's and the name's lengths: in the descriptions only.
    refused(
        "POST /auth-providers/connections",
        422,
        Why::Errors(&[
            ("short_name", "is required"),
            ("short_name", "composio or pipedream"),
            ("readable_id", "3-64 characters"),
            ("name", "4-42 characters"),
        ]),
    ),
    // What the document leaves free-form in a connection's body: `config` follows the source's
    // catalog entry (`GET /sources/{short_name}`), `authentication` picks its method from the
    // fields it has (an optional `type` must name it; PATCH replaces direct credentials only),
    // `schedule` is a cron the source may not allow that often; and the rule against control
    // characters in names.
    refused(
        "POST /source-connections",
        422,
        Why::Errors(&[
            ("config", ""),
            ("authentication", ""),
            ("schedule", ""),
            ("name", "control characters"),
            ("redirect_url", "absolute URL"),
        ]),
    ),
    refused(
        "PATCH /source-connections/{id}",
        422,
        Why::Errors(&[
            ("config", ""),
            ("authentication", ""),
            ("schedule", ""),
            ("name", "control characters"),
            ("body", "must change at least one"),
        ]),
    ),
    // A subscription's URL must be an https URL of public addresses, its event types names of
    // the enum, its own secret base64; recover_since only comes with re-enabling.
    refused(
        "POST /webhooks/subscriptions",
        422,
        Why::Errors(&[
            ("url", ""),
            ("event_types", ""),
            ("secret", ""),
            ("description", ""),
        ]),
    ),
    refused(
        "PATCH /webhooks/subscriptions/{id}",
        422,
        Why::Errors(&[
            ("url", ""),
            ("event_types", ""),
            ("recover_since", ""),
            ("description", ""),
        ]),
    ),
    // A recovery's window: instants (the document's date-time, which the fuzzer fills with
    // any text), running forward.
    refused(
        "POST /webhooks/subscriptions/{id}/recover",
        422,
        Why::Errors(&[("since", ""), ("until", "")]),
    ),
    refused(
        "GET /webhooks/messages",
        422,
        Why::Errors(&[("event_types", "is not an event type"), ("cursor", "")]),
    ),
    refused("POST /source-connections", 400, Why::State),
    refused("PATCH /source-connections/{id}", 400, Why::State),
    refused("POST /source-connections/{id}/run", 400, Why::State),
    refused(
        "POST /source-connections/{id}/reinitiate-oauth",
        400,
        Why::State,
    ),
];

/// One failed check of one generated request.
struct Failure {
    code: String,
    title: String,
    operation: String,
    status: Option<u16>,
    request: String,
    response: String,
}

impl Failure {
    fn refused_rightly(&self) -> bool {
        self.code == "ST202"
            && REFUSED.iter().any(|r| {
                r.operation == self.operation
                    && Some(r.status) == self.status
                    && r.why.explains(&self.response)
            })
    }
}

impl Why {
    fn explains(&self, body: &str) -> bool {
        let problem: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        match self {
            Why::Errors(allowed) => problem["errors"].as_array().is_some_and(|errors| {
                !errors.is_empty()
                    && errors.iter().all(|e| {
                        let field = e["field"].as_str().unwrap_or_default();
                        let head = field.split(['.', '[']).next().unwrap_or_default();
                        let message = e["message"].as_str().unwrap_or_default();
                        allowed
                            .iter()
                            .any(|(f, says)| *f == head && message.contains(says))
                    })
            }),
            Why::State => problem["detail"].is_string(),
            Why::Page(title) => body.contains(&format!("<title>{title}</title>")),
        }
    }
}

fn decoded(content: &Value) -> String {
    let bytes = content["$base64"]
        .as_str()
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn shortened(text: &str) -> String {
    const MAX: usize = 400;
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_owned(),
    }
}

/// Every request sent and every failed check, from the NDJSON event stream.
fn read_events(path: &Path) -> (usize, Vec<Failure>) {
    let text = std::fs::read_to_string(path).expect("schemathesis wrote its NDJSON events");
    let mut requests = 0;
    let mut failures = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let event: Value = serde_json::from_str(line).expect("an NDJSON event");
        let recorder = &event["ScenarioFinished"]["recorder"];
        let Some(interactions) = recorder["interactions"].as_object() else {
            continue;
        };
        requests += interactions.len();
        let Some(checks) = recorder["checks"].as_object() else {
            continue;
        };
        for (case, results) in checks {
            let interaction = &interactions.get(case).cloned().unwrap_or(Value::Null);
            let sent = &interaction["request"];
            let answered = &interaction["response"];
            for result in results.as_array().into_iter().flatten() {
                if result["status"] == "success" {
                    continue;
                }
                let failure = &result["failure_info"]["failure"];
                let body = decoded(&sent["body"]);
                failures.push(Failure {
                    code: failure["code"].as_str().unwrap_or("?").to_owned(),
                    title: failure["title"].as_str().unwrap_or("?").to_owned(),
                    operation: failure["operation"].as_str().unwrap_or("?").to_owned(),
                    status: answered["status_code"].as_u64().map(|s| s as u16),
                    request: format!(
                        "{} {}{}",
                        sent["method"].as_str().unwrap_or("?"),
                        sent["uri"].as_str().unwrap_or("?"),
                        if body.is_empty() {
                            String::new()
                        } else {
                            format!(" {}", shortened(&body))
                        }
                    ),
                    response: decoded(&answered["content"]),
                });
            }
        }
    }
    (requests, failures)
}

/// `arg` as a shell reads it back.
fn quoted(arg: &str) -> String {
    if arg
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-./:=,".contains(c))
    {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// What one pass of schemathesis did.
struct Pass {
    /// The command, with `$KEY` for the API key's value.
    command: String,
    operations: u64,
    requests: usize,
    failures: Vec<Failure>,
}

/// Runs one pass; panics with its output unless it ran to the end without errors of its own.
async fn run_pass(app: &TestApp, dir: &Path, pass: (&str, &str)) -> Pass {
    let args = arguments(app, dir, pass);
    let command = std::iter::once(schemathesis().display().to_string())
        .chain(args.iter().map(|a| quoted(a)))
        .collect::<Vec<_>>()
        .join(" ");
    let mut process = Command::new(schemathesis());
    process
        .args(args.iter().map(|a| a.replace("$KEY", &app.api_key)))
        .current_dir(dir);
    let output = tokio::task::spawn_blocking(move || process.output().expect("schemathesis runs"))
        .await
        .unwrap();
    let ran = format!(
        "{command}\n(reports in {})\n{}\n{}",
        dir.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = std::fs::read_to_string(dir.join(format!("{}.json", pass.1)))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| panic!("schemathesis wrote no run report:\n{ran}"));
    assert_eq!(report["complete"], true, "the run did not complete:\n{ran}");
    let errors = report["errors"].as_array().cloned().unwrap_or_default();
    assert!(errors.is_empty(), "schemathesis errors {errors:?}:\n{ran}");
    let (requests, failures) = read_events(&dir.join(format!("{}.ndjson", pass.1)));
    let operations = report["operations"]["tested"].as_u64().unwrap_or(0);
    assert!(
        operations > 0 && requests > 0,
        "schemathesis tested nothing:\n{ran}"
    );
    Pass {
        command,
        operations,
        requests,
        failures,
    }
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_schema_violation_or_undocumented_status() {
    let composio = FakeComposio::start(COMPOSIO_KEY).await;
    let clients = Arc::new(composio_clients(&composio.base_url));
    let app = TestApp::spawn_with(move |platform| platform.auth_providers = clients).await;
    let seeded = seed(&app, &composio).await;
    let dir = std::env::temp_dir().join(format!("fuzz-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("schemathesis.toml"), config(&seeded)).unwrap();

    let mut passes = Vec::new();
    for pass in PASSES {
        passes.push(run_pass(&app, &dir, pass).await);
    }
    let failures: Vec<&Failure> = passes.iter().flat_map(|p| &p.failures).collect();
    let count = |codes: &[&str]| {
        failures
            .iter()
            .filter(|f| codes.contains(&f.code.as_str()))
            .count()
    };
    let summary = format!(
        "fuzz: {} operations, {} requests, {} server errors, \
         {} schema violations, {} undocumented status codes, {} schema-valid requests refused \
         as documented",
        passes.iter().map(|p| p.operations).sum::<u64>(),
        passes.iter().map(|p| p.requests).sum::<usize>(),
        count(&["ST101", "ST102"]),
        count(&["ST108", "ST109", "ST110", "ST111"]),
        count(&["ST103"]),
        failures.iter().filter(|f| f.refused_rightly()).count(),
    );
    // Past the test harness's capture, so `make test` shows the figures of every run.
    writeln!(std::io::stdout().lock(), "{summary}").unwrap();

    let wrong: Vec<&&Failure> = failures.iter().filter(|f| !f.refused_rightly()).collect();
    if !wrong.is_empty() {
        let mut by_kind: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for f in &wrong {
            by_kind
                .entry(format!("{} {}", f.code, f.title))
                .or_default()
                .push(format!(
                    "  {} -> {}: {}\n    {}",
                    f.operation,
                    f.status.map_or("no answer".into(), |s| s.to_string()),
                    shortened(&f.response),
                    f.request
                ));
        }
        let listed: Vec<String> = by_kind
            .into_iter()
            .map(|(kind, cases)| format!("{kind}:\n{}", cases.join("\n")))
            .collect();
        let commands: Vec<&str> = passes.iter().map(|p| p.command.as_str()).collect();
        panic!(
            "{summary}\n{} failing cases:\n{}\n\nthe passes (every request and answer is in \
             the reports in {}):\n{}",
            wrong.len(),
            listed.join("\n"),
            dir.display(),
            commands.join("\n")
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

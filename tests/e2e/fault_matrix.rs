//! The fault matrix: every operation is run once to count its AWS requests, then once per
//! request index with that request failed (throttled, a 500 after it was applied, a timeout
//! after it was applied, its condition failed), through the real adapters against the
//! emulator. Afterwards the client retries what it was told to retry, SQS delivers again what
//! the worker gave back, time moves on and the scheduler's sweeps run; then the invariants:
//! no orphan secret, no connection without its secret, no job left active, no entity lost or
//! duplicated, the same end state as the fault-free run, and no 2xx for work that did not
//! happen. The table of operations, requests, faults and violations is printed; every
//! violation fails the test.
//!
//! `make test` fails every request once, with one kind of fault each, the kinds taken in turn
//! along the operation's requests (so every kind that applies meets every operation of four
//! requests or more), except most of a long run of identical requests (one in eight after the
//! first few). `make bench-faults` (`FAULT_MATRIX=full`) fails every request once with every
//! kind and records the table in BENCHMARKS.md.

use crate::helpers::app::{composio_clients, TestApp, GITHUB_TOKEN};
use crate::helpers::clock::TestClock;
use crate::helpers::faults::{Call, Faults, Kind};
use crate::helpers::github::FakeGithub;
use aws_adapters::{DynamoEntities, DynamoStore, SecretsFingerprintKey, SecretsVault, SqsQueue};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use chrono::{DateTime, Duration, Utc};
use domain::usecases::scheduler::{tick, TickLimits};
use domain::usecases::sync::SyncSettings;
use fakes::composio::{ComposioAccount, FakeComposio};
use fakes::oauth::{FakeClientAuth, FakeOAuthConfig, FakeOAuthProvider};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use worker::Worker;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    CreateDirect,
    CreateOAuthBrowser,
    CreateToken,
    CreateAuthProvider,
    OAuthCallback,
    SyncAgain,
    SyncFullWithDeletes,
    SyncContinuation,
    Run,
    Cancel,
    Patch,
    Delete,
    SchedulerTick,
}

impl Op {
    const ALL: [Op; 13] = [
        Op::CreateDirect,
        Op::CreateOAuthBrowser,
        Op::CreateToken,
        Op::CreateAuthProvider,
        Op::OAuthCallback,
        Op::SyncAgain,
        Op::SyncFullWithDeletes,
        Op::SyncContinuation,
        Op::Run,
        Op::Cancel,
        Op::Patch,
        Op::Delete,
        Op::SchedulerTick,
    ];

    fn name(self) -> &'static str {
        match self {
            Op::CreateDirect => "create (direct credentials)",
            Op::CreateOAuthBrowser => "create (OAuth browser flow, BYOC)",
            Op::CreateToken => "create (OAuth token import)",
            Op::CreateAuthProvider => "create (through Composio)",
            Op::OAuthCallback => "OAuth callback",
            Op::SyncAgain => "sync: run again, unchanged",
            Op::SyncFullWithDeletes => "sync: full, with deletes",
            Op::SyncContinuation => "sync: first run, handed over between its pages",
            Op::Run => "POST run",
            Op::Cancel => "POST cancel",
            Op::Patch => "PATCH connection",
            Op::Delete => "DELETE connection",
            Op::SchedulerTick => "scheduler tick (all sweeps)",
        }
    }
}

/// An app whose three SDK clients carry the fault interceptor, on a clock the test moves.
struct World {
    app: TestApp,
    faults: Faults,
    clock: Arc<TestClock>,
    worker: Worker,
    /// The queue without the interceptor: SQS's own delivery to Lambda is not ours to fail.
    delivery: SqsQueue,
    mode: Delivery,
    /// The upstreams: GitHub, its OAuth server (the platform's app in the vault), Composio.
    _github: FakeGithub,
    _oauth: FakeOAuthProvider,
    composio: FakeComposio,
}

/// How SQS hands the messages over: at least once, in no promised order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    Once,
    /// Every message to two invocations at the same time.
    Twice,
    /// The visible messages newest first.
    Reversed,
}

const LEASE: std::time::Duration = std::time::Duration::from_secs(120);

impl World {
    async fn new(continuation: bool, mode: Delivery) -> World {
        let faults = Faults::default();
        let clock = Arc::new(TestClock::new(Utc::now()));
        let (f, c) = (faults.clone(), Arc::clone(&clock));
        let github = FakeGithub::start(GITHUB_TOKEN).await;
        let mut config =
            FakeOAuthConfig::new(PLATFORM_CLIENT, PLATFORM_SECRET, FakeClientAuth::Body);
        config.issued_access_token = Some(GITHUB_TOKEN.to_owned());
        let oauth = FakeOAuthProvider::start_with(config).await;
        let composio = FakeComposio::start(COMPOSIO_KEY).await;
        let catalog = {
            let urls = [
                ("SOURCE_GITHUB_AUTHORIZE_URL", oauth.authorize_url()),
                ("SOURCE_GITHUB_TOKEN_URL", oauth.token_url()),
                ("SOURCE_GITHUB_BASE_URL", github.base_url.clone()),
            ];
            sources::Catalog::from_lookup(|name| {
                urls.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.clone())
            })
            .expect("catalog")
        };
        let providers = composio_clients(&composio.base_url);
        let app = TestApp::spawn_customized(move |p, aws| {
            p.sources = Arc::new(catalog);
            p.auth_providers = Arc::new(providers);
            p.store = Arc::new(DynamoStore::new(
                f.dynamodb(&aws.clients.dynamodb),
                &aws.state_table,
            ));
            p.entities = Arc::new(DynamoEntities::new(
                f.dynamodb(&aws.clients.dynamodb),
                &aws.entities_table,
            ));
            p.vault = Arc::new(SecretsVault::new(
                f.secrets(&aws.clients.secrets),
                &aws.secrets_prefix,
            ));
            p.fingerprint_key = Arc::new(SecretsFingerprintKey::new(
                f.secrets(&aws.clients.secrets),
                &aws.secrets_prefix,
            ));
            p.queue = Arc::new(SqsQueue::new(f.sqs(&aws.clients.sqs), &aws.queue_url));
            p.clock = c;
            // The emulator's index has no lag: the feed shows each job's end at once.
            p.feed.settle = std::time::Duration::ZERO;
        })
        .await;
        app.create_collection("docs").await;
        app.put_oauth_app("github", PLATFORM_CLIENT, PLATFORM_SECRET)
            .await;
        let worker = Worker {
            platform: app.platform.clone(),
            settings: SyncSettings {
                lease: LEASE,
                progress_interval: std::time::Duration::ZERO,
                max_pages_per_invocation: u32::from(continuation),
                ..SyncSettings::default()
            },
        };
        let delivery = app.aws.queue();
        World {
            app,
            faults,
            clock,
            worker,
            delivery,
            mode,
            _github: github,
            _oauth: oauth,
            composio,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let response = self
            .app
            .request(method, path, Some(&self.app.api_key), body, headers)
            .await;
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(body), &[]).await
    }

    /// The operation's own request, as the client sends it (and sends again): with the
    /// Idempotency-Key.
    async fn send(&self, (method, path, body): &(Method, String, Option<Value>)) -> (u16, Value) {
        self.call(
            method.clone(),
            path,
            body.as_ref(),
            &[("idempotency-key", IDEMPOTENCY_KEY)],
        )
        .await
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(Method::GET, path, None, &[]).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// Lambda's SQS integration: every visible message to the worker (as `self.delivery`
    /// says: once, twice at the same time, or the visible ones in reverse order), the ones it
    /// gives back delivered again at once (after the lease of the attempt that died has run
    /// out), until the queue has nothing visible. Answers how many deliveries there were.
    async fn deliver(&self) -> usize {
        let mut deliveries = 0;
        for _ in 0..40 {
            let mut visible = Vec::new();
            loop {
                let received = self
                    .delivery
                    .receive(10, std::time::Duration::ZERO)
                    .await
                    .expect("receive");
                if received.is_empty() {
                    break;
                }
                visible.extend(received);
            }
            if visible.is_empty() {
                return deliveries;
            }
            if self.mode == Delivery::Reversed {
                visible.reverse();
            }
            for m in visible {
                let handled = if self.mode == Delivery::Twice {
                    deliveries += 2;
                    let (a, b) = tokio::join!(self.handle(&m.body), self.handle(&m.body));
                    a || b
                } else {
                    deliveries += 1;
                    self.handle(&m.body).await
                };
                if handled {
                    self.delivery
                        .delete(&m.receipt_handle)
                        .await
                        .expect("delete");
                } else {
                    self.clock
                        .advance(Duration::from_std(LEASE).unwrap() + Duration::seconds(1));
                    self.app
                        .aws
                        .clients
                        .sqs
                        .change_message_visibility()
                        .queue_url(&self.app.aws.queue_url)
                        .receipt_handle(&m.receipt_handle)
                        .visibility_timeout(0)
                        .send()
                        .await
                        .expect("visible again");
                }
            }
        }
        panic!("the queue never emptied: a message loops");
    }

    /// One delivery of a message body to the worker; `true` unless it was given back.
    async fn handle(&self, body: &str) -> bool {
        let mut record = SqsMessage::default();
        record.message_id = Some(uuid::Uuid::new_v4().to_string());
        record.body = Some(body.to_owned());
        let mut event = SqsEvent::default();
        event.records.push(record);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(600);
        worker::handle_batch(&self.worker, event, deadline)
            .await
            .batch_item_failures
            .is_empty()
    }

    async fn tick(&self) {
        tick(&self.app.platform, &TickLimits::default(), None).await;
    }

    /// What happens after a fault, with no more faults: SQS delivers; then, while anything is
    /// left over (an active job, a secret without its connection or the reverse, a delete
    /// half done), time passes (leases, lost messages, stuck runs, delete graces, orphan
    /// secrets come due) and the sweeps run.
    /// Answers the end state and the invariants it breaks.
    async fn recover(&self) -> (Value, Vec<String>) {
        self.deliver().await;
        for step in [Duration::minutes(20), Duration::hours(2)] {
            let state = end_state(self).await;
            let violations = invariants(self, &state).await;
            if violations.is_empty() && !self.deleting().await {
                return (state, violations);
            }
            self.clock.advance(step);
            self.tick().await;
            self.deliver().await;
        }
        let state = end_state(self).await;
        let violations = invariants(self, &state).await;
        (state, violations)
    }

    /// A delete that answered but whose records are not all gone yet (a tombstone).
    async fn deleting(&self) -> bool {
        let out = self
            .app
            .aws
            .clients
            .dynamodb
            .scan()
            .table_name(&self.app.aws.state_table)
            .filter_expression("attribute_exists(deleting_at)")
            .send()
            .await
            .expect("scan");
        out.count() > 0
    }

    /// The connections that have entity items or deletion records, live or not.
    async fn entity_owners(&self) -> std::collections::BTreeSet<String> {
        let mut owners = std::collections::BTreeSet::new();
        let mut start = None;
        loop {
            let out = self
                .app
                .aws
                .clients
                .dynamodb
                .scan()
                .table_name(&self.app.aws.entities_table)
                .projection_expression("pk")
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan");
            for item in out.items() {
                if let Some(pk) = item.get("pk").and_then(|v| v.as_s().ok()) {
                    let owner = pk.trim_start_matches("CONN#").trim_start_matches("GONE#");
                    owners.insert(owner.to_owned());
                }
            }
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                return owners;
            }
        }
    }
}

/// What the operation's setup left for it to act on.
#[derive(Default)]
struct Prepared {
    connection: Option<String>,
    job: Option<String>,
    /// Where the provider sent the browser back (code and state), for the callback.
    callback: Option<String>,
}

fn stub(entity_count: u32, extra: Value) -> Value {
    let mut body = json!({
        "name": "matrix",
        "short_name": "stub",
        "readable_collection_id": "docs",
        "authentication": {"credentials": {"api_key": "stub-matrix-key"}},
        // Pages of 10: a sync of a few pages in a few requests.
        "config": {"entity_count": entity_count, "seed": 3, "page_size": 10},
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

const IDEMPOTENCY_KEY: &str = "matrix-create-1";
const PLATFORM_CLIENT: &str = "matrix-platform-app";
const PLATFORM_SECRET: &str = "matrix-platform-secret-5c2d";
const COMPOSIO_KEY: &str = "ak_matrixComposioKey_0001";

/// A GitHub connection's create body with this authentication (a browser flow's with the
/// URL to send the user back to).
fn github(authentication: Value) -> Value {
    let mut body = json!({
        "name": "matrix",
        "short_name": "github",
        "readable_collection_id": "docs",
        "config": {"repo_name": "octo-org/hello-world"},
        "authentication": authentication,
    });
    let browser = authentication_is_browser(&body["authentication"]);
    if browser {
        body["redirect_url"] = json!("http://127.0.0.1:9/connected");
    }
    body
}

fn authentication_is_browser(authentication: &Value) -> bool {
    authentication
        .as_object()
        .is_some_and(|a| a.is_empty() || a.contains_key("client_id"))
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The fake provider's answer to an authorize URL: the callback URL with code and state.
async fn consent(auth_url: &str) -> String {
    let answer = no_redirects().get(auth_url).send().await.unwrap();
    assert_eq!(answer.status(), 302, "the fake consents");
    answer.headers()["location"].to_str().unwrap().to_owned()
}

/// The callback's status; a redirect counts as 303 only when it says `status=success`.
async fn callback(url: &str) -> u16 {
    let answer = no_redirects().get(url).send().await.unwrap();
    let location = answer
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    match answer.status().as_u16() {
        303 if location.contains("status=success") => 303,
        303 => 502,
        other => other,
    }
}

async fn create(w: &World, body: &Value) -> (u16, Value) {
    w.call(
        Method::POST,
        "/source-connections",
        Some(body),
        &[("idempotency-key", IDEMPOTENCY_KEY)],
    )
    .await
}

fn id_of(body: &Value) -> String {
    body["id"].as_str().expect("an id").to_owned()
}

/// `POST .../run` during a setup; answers the job.
async fn run(w: &World, id: &str, force_full_sync: bool) -> Value {
    let (status, job) = w
        .post(
            &format!("/source-connections/{id}/run?force_full_sync={force_full_sync}"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 202, "{job}");
    job
}

async fn prepare(w: &World, op: Op) -> Prepared {
    let quiet = json!({"sync_immediately": false});
    match op {
        Op::CreateDirect | Op::CreateOAuthBrowser | Op::CreateToken => Prepared::default(),
        Op::CreateAuthProvider => {
            w.composio
                .add_account(ComposioAccount::oauth("ca_matrix", "github", GITHUB_TOKEN));
            let (status, body) = w
                .post(
                    "/auth-providers/connections",
                    &json!({"name": "Matrix Composio", "readable_id": "matrix-composio",
                            "short_name": "composio", "auth_fields": {"api_key": COMPOSIO_KEY}}),
                )
                .await;
            assert_eq!(status, 201, "{body}");
            Prepared::default()
        }
        Op::OAuthCallback => {
            let (status, c) = create(w, &github(json!({}))).await;
            assert_eq!(status, 201, "{c}");
            let callback = consent(c["auth"]["auth_url"].as_str().unwrap()).await;
            Prepared {
                connection: Some(id_of(&c)),
                callback: Some(callback),
                ..Prepared::default()
            }
        }
        Op::SyncContinuation => {
            // Two pages of the stub source: the continuation hands over between them.
            let (_, c) = create(w, &stub(20, json!({}))).await;
            Prepared {
                connection: Some(id_of(&c)),
                ..Prepared::default()
            }
        }
        Op::SyncAgain | Op::SyncFullWithDeletes => {
            let (_, c) = create(w, &stub(20, json!({}))).await;
            let id = id_of(&c);
            w.deliver().await;
            if op == Op::SyncFullWithDeletes {
                let (status, body) = w
                    .call(
                        Method::PATCH,
                        &format!("/source-connections/{id}"),
                        Some(&json!({"config": {"entity_count": 15, "seed": 3, "page_size": 10}})),
                        &[],
                    )
                    .await;
                assert_eq!(status, 200, "{body}");
            }
            run(w, &id, op == Op::SyncFullWithDeletes).await;
            Prepared {
                connection: Some(id),
                ..Prepared::default()
            }
        }
        Op::Run | Op::Patch | Op::Delete => {
            let (_, c) = create(w, &stub(10, json!({}))).await;
            let id = id_of(&c);
            w.deliver().await;
            Prepared {
                connection: Some(id),
                ..Prepared::default()
            }
        }
        Op::Cancel => {
            let (_, c) = create(w, &stub(10, quiet)).await;
            let id = id_of(&c);
            let job = run(w, &id, false).await;
            Prepared {
                job: Some(id_of(&job)),
                connection: Some(id),
                ..Prepared::default()
            }
        }
        Op::SchedulerTick => {
            // Due now: a daily schedule, the clock moved to its next run.
            let (_, c) = create(
                w,
                &stub(
                    10,
                    json!({"schedule": {"cron": "0 3 * * *"}, "sync_immediately": false}),
                ),
            )
            .await;
            let due: DateTime<Utc> = c["schedule"]["next_run"].as_str().unwrap().parse().unwrap();
            w.clock.set(due);
            Prepared {
                connection: Some(id_of(&c)),
                ..Prepared::default()
            }
        }
    }
}

/// The request the client sends, and sends again when it was not told it succeeded.
fn request(op: Op, prepared: &Prepared) -> Option<(Method, String, Option<Value>)> {
    let id = prepared.connection.as_deref().unwrap_or_default();
    let path = format!("/source-connections/{id}");
    Some(match op {
        Op::CreateDirect => (
            Method::POST,
            "/source-connections".into(),
            Some(stub(10, json!({}))),
        ),
        Op::CreateOAuthBrowser => (
            Method::POST,
            "/source-connections".into(),
            Some(github(
                json!({"client_id": "matrix-client", "client_secret": "matrix-secret"}),
            )),
        ),
        Op::CreateToken => (
            Method::POST,
            "/source-connections".into(),
            Some(github(json!({"access_token": GITHUB_TOKEN}))),
        ),
        Op::CreateAuthProvider => (
            Method::POST,
            "/source-connections".into(),
            Some(github(json!({"provider_readable_id": "matrix-composio",
                               "provider_config": {"account_id": "ca_matrix"}}))),
        ),
        Op::Run => (Method::POST, format!("{path}/run"), Some(json!({}))),
        Op::Cancel => (
            Method::POST,
            format!("{path}/jobs/{}/cancel", prepared.job.as_deref().unwrap()),
            Some(json!({})),
        ),
        Op::Patch => (Method::PATCH, path, Some(json!({"name": "renamed"}))),
        Op::Delete => (Method::DELETE, path, None),
        _ => return None,
    })
}

/// Runs the operation: an API request (its status), the worker on what is queued, or a tick.
async fn act(w: &World, op: Op, prepared: &Prepared) -> Option<u16> {
    if let Some(request) = request(op, prepared) {
        return Some(w.send(&request).await.0);
    }
    match op {
        Op::OAuthCallback => {
            return Some(callback(prepared.callback.as_deref().unwrap()).await);
        }
        Op::SchedulerTick => w.tick().await,
        _ => {
            w.deliver().await;
        }
    }
    None
}

/// Whether the client may stop: a 2xx, or a definite 4xx that says the work is already in
/// the wanted state (404 after a delete, 409 for a run while one is active).
fn settled(op: Op, status: u16) -> bool {
    (200..300).contains(&status)
        || matches!(
            (op, status),
            (Op::Delete, 404) | (Op::Run, 409) | (Op::Cancel, 409)
        )
}

/// The state a user can see, with the ids of this world left out (they differ between
/// worlds): per connection, its status, its jobs, its stored entities and what its change feed
/// says from the start (the keys it shows live, and those it shows deleted).
async fn end_state(w: &World) -> Value {
    let connections = w.get("/source-connections").await;
    let mut out = BTreeMap::new();
    for c in connections.as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        let detail = w.get(&format!("/source-connections/{id}")).await;
        let jobs = w.get(&format!("/source-connections/{id}/jobs")).await;
        let jobs: Vec<Value> = jobs
            .as_array()
            .unwrap()
            .iter()
            .map(|j| {
                json!({
                    "status": j["status"], "trigger": j["trigger"],
                    "inserted": j["entities_inserted"], "updated": j["entities_updated"],
                    "deleted": j["entities_deleted"], "kept": j["entities_kept"],
                    "failed": j["entities_failed"],
                })
            })
            .collect();
        let entities = crate::helpers::syncing::entities(&w.app, id).await;
        let keys = crate::helpers::syncing::key_list(&entities);
        let (mut feed_live, mut feed_deleted) = (Vec::new(), Vec::new());
        let mut path = format!("/source-connections/{id}/changes?limit=1000");
        loop {
            let page = w.get(&path).await;
            for change in page["changes"].as_array().unwrap() {
                let (t, id) = (change["type"].as_str(), change["entity_id"].as_str());
                let key = format!("{}#{}", t.unwrap(), id.unwrap());
                match change["op"].as_str().unwrap() {
                    "deleted" => feed_deleted.push(key),
                    _ => feed_live.push(key),
                }
            }
            if !page["has_more"].as_bool().unwrap() {
                break;
            }
            let cursor = page["next_cursor"].as_str().unwrap();
            path = format!("/source-connections/{id}/changes?limit=1000&cursor={cursor}");
        }
        feed_live.sort();
        feed_deleted.sort();
        out.insert(
            format!(
                "{} {}",
                detail["name"].as_str().unwrap_or_default(),
                out.len()
            ),
            json!({
                "status": detail["status"],
                "auth": detail["auth"]["method"],
                "jobs": jobs,
                "entity_keys": keys,
                "feed_live": feed_live,
                "feed_deleted": feed_deleted,
            }),
        );
    }
    json!(out)
}

/// The invariants that hold whatever the fault: secrets match connections one to one, no job
/// is still active, no entity is listed twice, the change feed shows what the listing does.
async fn invariants(w: &World, state: &Value) -> Vec<String> {
    let mut violations = Vec::new();
    let connections = w.get("/source-connections").await;
    let prefix = format!("{}/connections/{}/", w.app.aws.secrets_prefix, w.app.org);
    let secrets = w.app.aws.secret_names_under_prefix().await;
    let ids: Vec<String> = connections
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    // The platform's OAuth app and the provider connection's secret are not connections'.
    let secrets: Vec<&String> = secrets.iter().filter(|s| s.starts_with(&prefix)).collect();
    for secret in &secrets {
        let owner = &secret[prefix.len()..];
        if !ids.iter().any(|id| id == owner) {
            violations.push(format!("orphan secret {secret}"));
        }
    }
    for id in &ids {
        if !secrets.iter().any(|s| s.ends_with(&format!("/{id}"))) {
            violations.push(format!("connection {id} has no secret"));
        }
    }
    for owner in w.entity_owners().await {
        if !ids.contains(&owner) {
            violations.push(format!("entities left of the deleted connection {owner}"));
        }
    }
    for c in state.as_object().unwrap().values() {
        for job in c["jobs"].as_array().unwrap() {
            let status = job["status"].as_str().unwrap_or_default();
            if matches!(status, "pending" | "running" | "cancelling") {
                violations.push(format!("a job is left {status}"));
            }
        }
        let keys = c["entity_keys"].as_array().unwrap();
        let mut listed: Vec<&str> = keys.iter().filter_map(Value::as_str).collect();
        listed.sort_unstable();
        let live: Vec<&str> = c["feed_live"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        if live != listed {
            violations.push("the change feed's live entities are not the listed ones".into());
        }
        let mut unique = keys.clone();
        unique.sort_by_key(|k| k.to_string());
        unique.dedup();
        if unique.len() != keys.len() {
            violations.push(format!(
                "{} entities listed twice",
                keys.len() - unique.len()
            ));
        }
    }
    violations
}

struct Case {
    calls: Vec<Call>,
    injected: Option<(Call, Kind)>,
    violations: Vec<String>,
    state: Value,
}

async fn case(op: Op, fault: Option<(usize, Kind)>, expected: Option<&Value>) -> Case {
    delivered(op, fault, Delivery::Once, expected).await
}

async fn delivered(
    op: Op,
    fault: Option<(usize, Kind)>,
    mode: Delivery,
    expected: Option<&Value>,
) -> Case {
    let t0 = std::time::Instant::now();
    let w = World::new(op == Op::SyncContinuation, mode).await;
    let t_world = t0.elapsed();
    let prepared = prepare(&w, op).await;
    w.faults.arm(fault);
    let status = act(&w, op, &prepared).await;
    w.faults.disarm();
    let calls = w.faults.calls();
    let injected = w.faults.injected();
    if op == Op::SchedulerTick {
        // EventBridge's next tick, a minute later: what a failed tick left due fires then.
        w.clock.advance(Duration::minutes(1));
        w.tick().await;
    }
    let mut violations = Vec::new();
    // The user whose callback failed starts again: a fresh link, consent, the callback.
    if let (Op::OAuthCallback, Some(status)) = (op, status) {
        if status != 303 {
            let id = prepared.connection.as_deref().unwrap();
            let (again, body) = w
                .post(
                    &format!("/source-connections/{id}/reinitiate-oauth"),
                    &json!({}),
                )
                .await;
            let redirected = match body["auth"]["auth_url"].as_str() {
                Some(url) if again == 200 => callback(&consent(url).await).await,
                _ => again,
            };
            if redirected != 303 {
                violations.push(format!(
                    "starting the flow again ended in {redirected}: {body}"
                ));
            }
        }
    }
    // The client sends again what it was not told had worked (the same Idempotency-Key).
    if let (Some(status), Some(request)) = (status, request(op, &prepared)) {
        if !settled(op, status) {
            let (again, body) = w.send(&request).await;
            if !settled(op, again) {
                violations.push(format!("the client's retry answered {again}: {body}"));
            }
        }
    }
    let t_act = t0.elapsed();
    let (state, broken) = w.recover().await;
    if std::env::var_os("FAULT_MATRIX_TIMES").is_some() {
        eprintln!(
            "times: world {t_world:?} acted {t_act:?} recovered {:?}",
            t0.elapsed()
        );
    }
    violations.extend(broken);
    if let Some(expected) = expected {
        if &state != expected {
            violations.push(format!(
                "end state differs from the fault-free run:\n  expected {expected}\n  got      {state}"
            ));
        }
    }
    Case {
        calls,
        injected,
        violations,
        state,
    }
}

#[derive(Default)]
struct Row {
    calls: usize,
    faults: usize,
    violations: Vec<String>,
}

/// Faulted cases run at once: each has its own stack, so they only share the emulator.
const PARALLEL: usize = 6;

/// In `make test`, of a run of identical requests (the same operation, conditional or not:
/// the scheduler's queries of its 64 buckets, a sync's batch writes) the first few are failed
/// and then one in this many; `make bench-faults` fails them all.
const SAMPLE_RUNS_EVERY: usize = 8;

/// The faults a request gets: every kind that applies to it (`full`), or one of them, the
/// kinds taken in turn along the operation's requests, and none for most of a long run of
/// identical requests.
fn kinds_for(calls: &[Call], index: usize, full: bool) -> Vec<Kind> {
    let call = &calls[index];
    let applicable: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|kind| *kind != Kind::ConditionFailed || call.conditional)
        .collect();
    if full {
        return applicable;
    }
    let same_before = calls[..index]
        .iter()
        .rev()
        .take_while(|before| *before == call)
        .count();
    if same_before >= applicable.len() && same_before % SAMPLE_RUNS_EVERY != 0 {
        return Vec::new();
    }
    vec![applicable[index % applicable.len()]]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_aws_request_of_every_operation_failed_once_loses_nothing() {
    let mut rows: BTreeMap<Op, Row> = BTreeMap::new();
    // FAULT_MATRIX_ONLY=sync runs only the operations whose name holds it (while debugging).
    let only = std::env::var("FAULT_MATRIX_ONLY").unwrap_or_default();
    let full = std::env::var("FAULT_MATRIX").is_ok_and(|mode| mode == "full");
    for op in Op::ALL
        .into_iter()
        .filter(|op| op.name().contains(only.as_str()))
    {
        let started = std::time::Instant::now();
        let clean = case(op, None, None).await;
        let row = rows.entry(op).or_default();
        row.calls = clean.calls.len();
        row.violations
            .extend(clean.violations.iter().map(|v| format!("fault-free: {v}")));
        let expected = Arc::new(clean.state);
        let slots = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
        let mut cases = tokio::task::JoinSet::new();
        for index in 0..clean.calls.len() {
            for kind in kinds_for(&clean.calls, index, full) {
                let slot = Arc::clone(&slots).acquire_owned().await.unwrap();
                let expected = Arc::clone(&expected);
                cases.spawn(async move {
                    let faulted = case(op, Some((index, kind)), Some(&expected)).await;
                    drop(slot);
                    (index, kind, faulted)
                });
            }
        }
        while let Some(done) = cases.join_next().await {
            let (index, kind, faulted) = done.expect("a case panicked");
            let Some((hit, _)) = faulted.injected else {
                // The run took another path before reaching this index; nothing failed.
                continue;
            };
            row.faults += 1;
            row.violations.extend(
                faulted
                    .violations
                    .iter()
                    .map(|v| format!("{kind:?} at #{index} {}: {v}", hit.operation)),
            );
        }
        if std::env::var_os("FAULT_MATRIX_TRACE").is_some() {
            eprintln!(
                "fault matrix: {}: {} requests, {} faults, {} violations, {:.0?}",
                op.name(),
                row.calls,
                row.faults,
                row.violations.len(),
                started.elapsed()
            );
        }
    }
    let mode = if full {
        "every kind of fault at every request"
    } else {
        "one kind of fault at every request, kinds in turn"
    };
    let mut table = format!(
        "fault matrix ({mode}):\n| operation | AWS requests | faults injected | invariant violations |\n| --- | ---: | ---: | ---: |\n",
    );
    let (mut faults, mut violations) = (0, 0);
    for (op, row) in &rows {
        writeln!(
            table,
            "| {} | {} | {} | {} |",
            op.name(),
            row.calls,
            row.faults,
            row.violations.len()
        )
        .unwrap();
        faults += row.faults;
        violations += row.violations.len();
    }
    writeln!(table, "| total | | {faults} | {violations} |").unwrap();
    crate::helpers::figures(&table);
    if let Some(report) = std::env::var_os("BENCH_FAULTS_REPORT") {
        std::fs::write(report, &table).expect("the fault matrix report is writable");
    }
    let details: Vec<String> = rows
        .iter()
        .flat_map(|(op, row)| {
            row.violations
                .iter()
                .map(move |v| format!("{}: {v}", op.name()))
        })
        .collect();
    assert!(details.is_empty(), "{table}\n{}", details.join("\n"));
}

/// Every message the platform sends (first syncs, runs, continuations, scheduled runs,
/// re-sends of lost messages) delivered twice at once, or the visible ones in reverse order:
/// the same end state as delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_delivered_twice_or_out_of_order_ends_as_delivered_once() {
    let ops = [
        Op::SyncAgain,
        Op::SyncFullWithDeletes,
        Op::SyncContinuation,
        Op::Run,
        Op::Cancel,
        Op::Delete,
        Op::SchedulerTick,
    ];
    let mut cases = tokio::task::JoinSet::new();
    for op in ops {
        cases.spawn(async move {
            let once = delivered(op, None, Delivery::Once, None).await;
            let mut violations = once.violations.clone();
            for mode in [Delivery::Twice, Delivery::Reversed] {
                let other = delivered(op, None, mode, Some(&once.state)).await;
                violations.extend(other.violations.iter().map(|v| format!("{mode:?}: {v}")));
            }
            (op, violations)
        });
    }
    let mut all = Vec::new();
    while let Some(done) = cases.join_next().await {
        let (op, violations) = done.expect("a case panicked");
        all.extend(
            violations
                .into_iter()
                .map(|v| format!("{}: {v}", op.name())),
        );
    }
    crate::helpers::figures(&format!(
        "redelivery: {} operations, each message delivered twice at once and out of order: {} differences from once",
        ops.len(),
        all.len()
    ));
    assert!(all.is_empty(), "{}", all.join("\n"));
}

//! A fake of Pipedream's Connect REST API on 127.0.0.1, shaped after the public reference
//! (pipedream.com/docs/connect/api-reference): `POST /v1/oauth/token` takes a JSON
//! client-credentials grant of the workspace's OAuth client and issues a bearer token
//! (`expires_in` 3600); `GET /v1/connect/{project_id}/accounts/{account_id}` answers one account
//! (`id`, `name`, `external_id`, `healthy`, `dead`, `app: {name_slug, auth_type}`,
//! `credentials` only with `include_credentials=true` and only for accounts of the customer's
//! own OAuth client) to a live token, in the environment named by `x-pd-environment`
//! (`development` or `production`; accounts of the other one are not found).
//!
//! It counts token calls and account fetches, so a test can see a token reused, and remembers
//! the environments it was asked in, never a header otherwise.

use crate::server::{FakeRequest, FakeResponse, FakeServer};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The `expires_in` of an issued token.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// The OAuth client and project the fake accepts under `make fakes`.
pub const DEMO_CLIENT_ID: &str = "fake-pd-client";
pub const DEMO_CLIENT_SECRET: &str = "fake-pd-client-secret-0000";
pub const DEMO_PROJECT_ID: &str = "proj_fake0001";

/// A connected account as the fake holds it.
#[derive(Debug, Clone)]
pub struct PipedreamAccount {
    /// e.g. `apn_1a2b3c`.
    pub id: String,
    pub name: String,
    /// The app's `name_slug`, e.g. `github`, `linear_app`, `google_drive`.
    pub app: String,
    /// `oauth`, `keys` or `none`.
    pub auth_type: String,
    /// The customer's user id.
    pub external_id: String,
    pub healthy: bool,
    pub dead: bool,
    /// `production` or `development`.
    pub environment: String,
    /// `None`: connected through Pipedream's own OAuth client, so never returned.
    pub credentials: Option<Map<String, Value>>,
    pub expires_at: Option<String>,
}

impl PipedreamAccount {
    /// A healthy production OAuth account of the customer's own client, holding `access_token`.
    pub fn oauth(id: &str, app: &str, external_id: &str, access_token: &str) -> Self {
        let mut credentials = Map::new();
        credentials.insert("oauth_access_token".into(), json!(access_token));
        credentials.insert("oauth_refresh_token".into(), json!(format!("refresh-{id}")));
        credentials.insert("oauth_client_id".into(), json!("customer-oauth-client"));
        credentials.insert("oauth_uid".into(), json!(format!("uid-{external_id}")));
        let mut account = Self::base(id, app, "oauth", external_id, Some(credentials));
        account.expires_at = Some(
            chrono::Utc::now()
                .checked_add_signed(chrono::Duration::hours(1))
                .map_or_else(String::new, |t| t.to_rfc3339()),
        );
        account
    }

    /// A healthy production key-based account holding `api_key`.
    pub fn api_key(id: &str, app: &str, external_id: &str, api_key: &str) -> Self {
        let mut credentials = Map::new();
        credentials.insert("api_key".into(), json!(api_key));
        Self::base(id, app, "keys", external_id, Some(credentials))
    }

    fn base(
        id: &str,
        app: &str,
        auth_type: &str,
        external_id: &str,
        credentials: Option<Map<String, Value>>,
    ) -> Self {
        Self {
            id: id.to_owned(),
            name: format!("{app} account of {external_id}"),
            app: app.to_owned(),
            auth_type: auth_type.to_owned(),
            external_id: external_id.to_owned(),
            healthy: true,
            dead: false,
            environment: "production".to_owned(),
            credentials,
            expires_at: None,
        }
    }

    /// Connected through Pipedream's OAuth client: its credentials are never returned.
    pub fn without_credentials(mut self) -> Self {
        self.credentials = None;
        self
    }

    pub fn dead(mut self) -> Self {
        self.dead = true;
        self.healthy = false;
        self
    }

    pub fn unhealthy(mut self) -> Self {
        self.healthy = false;
        self
    }

    pub fn in_environment(mut self, environment: &str) -> Self {
        self.environment = environment.to_owned();
        self
    }

    fn body(&self, include_credentials: bool) -> Value {
        let mut body = json!({
            "id": self.id,
            "name": self.name,
            "external_id": self.external_id,
            "healthy": self.healthy,
            "dead": self.dead,
            "app": {
                "id": format!("app_{}", self.app),
                "name_slug": self.app,
                "name": self.app,
                "auth_type": self.auth_type,
                "categories": [],
            },
            "created_at": "2026-09-01T09:00:00.000Z",
            "updated_at": "2026-09-02T09:00:00.000Z",
            "expires_at": self.expires_at,
            "error": Value::Null,
            "last_refreshed_at": Value::Null,
            "next_refresh_at": Value::Null,
        });
        if include_credentials {
            body["credentials"] = self.credentials.clone().map_or(Value::Null, Value::Object);
        }
        body
    }
}

struct State {
    client_id: String,
    client_secret: String,
    project_id: String,
    /// Live tokens and when they expire.
    tokens: HashMap<String, Instant>,
    accounts: Vec<PipedreamAccount>,
    /// Wraps answers as `{"data": {...}}`.
    wrap_in_data: bool,
    scripted_tokens: VecDeque<FakeResponse>,
    scripted_accounts: VecDeque<FakeResponse>,
    token_calls: u64,
    account_fetches: u64,
    /// The `x-pd-environment` of each account fetch (`None` when absent).
    environments: Vec<Option<String>>,
}

/// A running fake Pipedream. Dropping it stops it.
pub struct FakePipedream {
    /// e.g. `http://127.0.0.1:54321`: the value for `AUTH_PROVIDER_PIPEDREAM_BASE_URL`.
    pub base_url: String,
    state: Arc<Mutex<State>>,
    _server: FakeServer,
}

impl FakePipedream {
    /// A project with no accounts, reached by one OAuth client, on a random port of 127.0.0.1.
    pub async fn start(client_id: &str, client_secret: &str, project_id: &str) -> Self {
        Self::start_on(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            client_id,
            client_secret,
            project_id,
        )
        .await
        .expect("bind the fake Pipedream on 127.0.0.1")
    }

    /// As [`FakePipedream::start`] on `addr`.
    pub async fn start_on(
        addr: SocketAddr,
        client_id: &str,
        client_secret: &str,
        project_id: &str,
    ) -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(State {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            project_id: project_id.to_owned(),
            tokens: HashMap::new(),
            accounts: Vec::new(),
            wrap_in_data: false,
            scripted_tokens: VecDeque::new(),
            scripted_accounts: VecDeque::new(),
            token_calls: 0,
            account_fetches: 0,
            environments: Vec::new(),
        }));
        let shared = Arc::clone(&state);
        let server = FakeServer::start_on(
            addr,
            Arc::new(move |request: &FakeRequest| {
                answer(&mut shared.lock().expect("pipedream lock"), request)
            }),
        )
        .await?;
        Ok(Self {
            base_url: server.base_url.clone(),
            state,
            _server: server,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("pipedream lock")
    }

    /// Adds the account, or replaces the one of the same id.
    pub fn add_account(&self, account: PipedreamAccount) {
        let mut state = self.lock();
        state.accounts.retain(|a| a.id != account.id);
        state.accounts.push(account);
    }

    pub fn remove_account(&self, id: &str) {
        self.lock().accounts.retain(|a| a.id != id);
    }

    /// Answers accounts wrapped as `{"data": {...}}` (as some endpoints do).
    pub fn wrap_in_data(&self, on: bool) {
        self.lock().wrap_in_data = on;
    }

    /// Revokes every token issued so far: the next account call with one is a 401.
    pub fn revoke_tokens(&self) {
        self.lock().tokens.clear();
    }

    /// A new client secret: the old one, and tokens issued for it, stop working.
    pub fn rotate_secret(&self, client_secret: &str) {
        let mut state = self.lock();
        state.client_secret = client_secret.to_owned();
        state.tokens.clear();
    }

    /// Answers the next token call with `response` instead (queued). It still counts.
    pub fn fail_next_token_call(&self, response: FakeResponse) {
        self.lock().scripted_tokens.push_back(response);
    }

    /// Answers the next account fetch with `response` instead (queued). It still counts.
    pub fn fail_next_account_call(&self, response: FakeResponse) {
        self.lock().scripted_accounts.push_back(response);
    }

    /// The next account fetch is rate-limited: 429 with `Retry-After: <seconds>`.
    pub fn rate_limit_next(&self, retry_after_seconds: u64) {
        self.fail_next_account_call(
            error(429, "rate limit exceeded").with_header("retry-after", retry_after_seconds),
        );
    }

    /// The next account fetch fails with a 500.
    pub fn fail_next_with_server_error(&self) {
        self.fail_next_account_call(error(500, "internal server error"));
    }

    /// `POST /v1/oauth/token` calls received, whatever their outcome.
    pub fn token_calls(&self) -> u64 {
        self.lock().token_calls
    }

    /// Account fetches received, whatever their outcome.
    pub fn account_fetches(&self) -> u64 {
        self.lock().account_fetches
    }

    /// The `x-pd-environment` of each account fetch, in order (`None` when absent).
    pub fn environments(&self) -> Vec<Option<String>> {
        self.lock().environments.clone()
    }
}

/// Pipedream's error body.
fn error(status: u16, message: &str) -> FakeResponse {
    FakeResponse::json(status, &json!({"error": message}))
}

/// An OAuth error of the token endpoint (RFC 6749 section 5.2).
fn oauth_error(status: u16, code: &str, description: &str) -> FakeResponse {
    FakeResponse::json(
        status,
        &json!({"error": code, "error_description": description}),
    )
    .with_header("cache-control", "no-store")
}

fn answer(state: &mut State, request: &FakeRequest) -> FakeResponse {
    let path = request.path.trim_end_matches('/');
    if (request.method.as_str(), path) == ("POST", "/v1/oauth/token") {
        state.token_calls += 1;
        if let Some(scripted) = state.scripted_tokens.pop_front() {
            return scripted;
        }
        return token(state, request);
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (request.method.as_str(), segments.as_slice()) {
        ("GET", ["v1", "connect", project, "accounts", account]) => {
            state.account_fetches += 1;
            state
                .environments
                .push(request.header("x-pd-environment").map(str::to_owned));
            if let Some(scripted) = state.scripted_accounts.pop_front() {
                return scripted;
            }
            account_answer(state, request, project, account)
        }
        _ => error(404, "not found"),
    }
}

fn token(state: &mut State, request: &FakeRequest) -> FakeResponse {
    let body = request.json();
    let field = |name: &str| body.get(name).and_then(Value::as_str);
    if field("grant_type") != Some("client_credentials") {
        return oauth_error(
            400,
            "unsupported_grant_type",
            "grant_type must be client_credentials",
        );
    }
    if field("client_id") != Some(state.client_id.as_str())
        || field("client_secret") != Some(state.client_secret.as_str())
    {
        return oauth_error(401, "invalid_client", "client authentication failed");
    }
    let now = Instant::now();
    state.tokens.retain(|_, expires| *expires > now);
    let token = new_token();
    state.tokens.insert(token.clone(), now + TOKEN_LIFETIME);
    let created_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    FakeResponse::json(
        200,
        &json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME.as_secs(),
            "created_at": created_at,
        }),
    )
    .with_header("cache-control", "no-store")
}

fn account_answer(
    state: &State,
    request: &FakeRequest,
    project: &str,
    account_id: &str,
) -> FakeResponse {
    let live = request
        .bearer()
        .and_then(|t| state.tokens.get(t))
        .is_some_and(|expires| *expires > Instant::now());
    if !live {
        return error(401, "invalid or expired token")
            .with_header("www-authenticate", "Bearer error=\"invalid_token\"");
    }
    let environment = request.header("x-pd-environment");
    if !matches!(environment, Some("development" | "production")) {
        return error(
            400,
            "the x-pd-environment header must be development or production",
        );
    }
    if project != state.project_id {
        return error(404, "project not found");
    }
    let Some(account) = state
        .accounts
        .iter()
        .find(|a| a.id == account_id && Some(a.environment.as_str()) == environment)
    else {
        return error(404, "record not found");
    };
    let include = request
        .query
        .get("include_credentials")
        .is_some_and(|v| v == "true" || v == "1");
    let body = account.body(include);
    if state.wrap_in_data {
        FakeResponse::json(200, &json!({"data": body}))
    } else {
        FakeResponse::json(200, &body)
    }
}

/// A token no one can guess within a test run.
fn new_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let digest = crate::oauth::sha256(format!("pd:{n}:{nanos}").as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("pd-fake-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const ID: &str = "pd-client";
    const SECRET: &str = "pd-secret";
    const PROJECT: &str = "proj_1";

    fn state() -> State {
        State {
            client_id: ID.into(),
            client_secret: SECRET.into(),
            project_id: PROJECT.into(),
            tokens: HashMap::new(),
            accounts: vec![
                PipedreamAccount::oauth("apn_gh", "github", "user-1", "gho_live"),
                PipedreamAccount::oauth("apn_sl", "slack", "user-1", "xoxp").without_credentials(),
            ],
            wrap_in_data: false,
            scripted_tokens: VecDeque::new(),
            scripted_accounts: VecDeque::new(),
            token_calls: 0,
            account_fetches: 0,
            environments: Vec::new(),
        }
    }

    fn request(
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        query: &[(&str, &str)],
        body: Value,
    ) -> FakeRequest {
        let mut map = hyper::HeaderMap::new();
        for (name, value) in headers {
            map.insert(
                hyper::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        FakeRequest {
            method: method.into(),
            path: path.into(),
            query: query
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            headers: map,
            body: body.to_string().into(),
        }
    }

    fn token_of(state: &mut State, secret: &str) -> (u16, Value) {
        let answer = answer(
            state,
            &request(
                "POST",
                "/v1/oauth/token",
                &[("content-type", "application/json")],
                &[],
                json!({"grant_type": "client_credentials", "client_id": ID, "client_secret": secret}),
            ),
        );
        (answer.status, serde_json::from_slice(&answer.body).unwrap())
    }

    fn account(
        state: &mut State,
        id: &str,
        token: &str,
        environment: Option<&str>,
    ) -> (u16, Value) {
        let bearer = format!("Bearer {token}");
        let mut headers = vec![("authorization", bearer.as_str())];
        if let Some(env) = environment {
            headers.push(("x-pd-environment", env));
        }
        let answer = answer(
            state,
            &request(
                "GET",
                &format!("/v1/connect/{PROJECT}/accounts/{id}"),
                &headers,
                &[("include_credentials", "true")],
                Value::Null,
            ),
        );
        (answer.status, serde_json::from_slice(&answer.body).unwrap())
    }

    #[test]
    fn a_client_credentials_token_reads_accounts_of_its_environment() {
        let mut s = state();
        let (status, body) = token_of(&mut s, SECRET);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["expires_in"], 3600);
        let token = body["access_token"].as_str().unwrap().to_owned();

        let (status, body) = account(&mut s, "apn_gh", &token, Some("production"));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["app"]["name_slug"], "github");
        assert_eq!(body["credentials"]["oauth_access_token"], "gho_live");
        let (_, body) = account(&mut s, "apn_sl", &token, Some("production"));
        assert!(body["credentials"].is_null());

        assert_eq!(
            account(&mut s, "apn_gh", &token, Some("development")).0,
            404
        );
        assert_eq!(account(&mut s, "apn_gh", &token, Some("staging")).0, 400);
        assert_eq!(account(&mut s, "apn_gh", &token, None).0, 400);
        assert_eq!(
            account(&mut s, "apn_gh", "made-up", Some("production")).0,
            401
        );
        assert_eq!((s.token_calls, s.account_fetches), (1, 6));
    }

    #[test]
    fn a_wrong_secret_is_invalid_client() {
        let mut s = state();
        let (status, body) = token_of(&mut s, "wrong");
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client"))
        );
    }

    #[test]
    fn revoked_tokens_stop_working_and_answers_can_be_wrapped() {
        let mut s = state();
        let token = token_of(&mut s, SECRET).1["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        s.wrap_in_data = true;
        let (status, body) = account(&mut s, "apn_gh", &token, Some("production"));
        assert_eq!(status, 200);
        assert_eq!(body["data"]["id"], "apn_gh");
        s.tokens.clear();
        assert_eq!(account(&mut s, "apn_gh", &token, Some("production")).0, 401);
    }
}

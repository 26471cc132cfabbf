//! A fake of Composio's API v3 on 127.0.0.1, shaped after the public reference
//! (docs.composio.dev/reference): the project's API key in `x-api-key`;
//! `GET /api/v3/auth_configs` (a cursor-paginated list, `limit`) as the cheap authenticated read;
//! `GET /api/v3/connected_accounts/{nanoid}` with the account's `toolkit.slug`, `auth_config`,
//! `status` (`ACTIVE`, `INITIATED`, `EXPIRED`, `FAILED`, `INACTIVE`), `is_disabled`, and its
//! credentials in `state: {authScheme, val}` (and in the deprecated `data`, as Composio still
//! sends it). Errors are Composio's `{"error": {message, code, slug, status, request_id}}`.
//!
//! With the project's "mask secrets" setting on (or an account made [`ComposioAccount::masked`])
//! every credential comes back cut short, `gho_...`, as Composio shows them then.
//!
//! It remembers the account ids it was asked for, never a header.

use crate::server::{FakeRequest, FakeResponse, FakeServer};
use serde_json::{json, Map, Value};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// The API key the fake accepts under `make fakes`.
pub const DEMO_API_KEY: &str = "ak_fakeComposioDemoKey0000000000";

/// A connected account as the fake holds it.
#[derive(Debug, Clone)]
pub struct ComposioAccount {
    /// The nanoid, e.g. `ca_1a2b3c`.
    pub id: String,
    /// The toolkit slug, e.g. `github`, `googledrive`.
    pub toolkit: String,
    /// `ACTIVE`, `INITIATED`, `EXPIRED`, `FAILED`, `INACTIVE`.
    pub status: String,
    pub is_disabled: bool,
    pub auth_config_id: String,
    /// `OAUTH2`, `API_KEY`, `BEARER_TOKEN` …
    pub auth_scheme: String,
    pub user_id: String,
    /// The connection's values (`state.val` without its `status`): `access_token`,
    /// `expires_in` … or `api_key` / `generic_api_key`.
    pub credentials: Map<String, Value>,
    /// Whether this account's secrets come back masked whatever the project setting.
    pub masked: bool,
}

impl ComposioAccount {
    /// An ACTIVE OAuth 2.0 account of `toolkit` holding `access_token` (and a refresh token).
    pub fn oauth(id: &str, toolkit: &str, access_token: &str) -> Self {
        let mut credentials = Map::new();
        credentials.insert("access_token".into(), json!(access_token));
        credentials.insert("refresh_token".into(), json!(format!("refresh-{id}")));
        credentials.insert("token_type".into(), json!("bearer"));
        credentials.insert("expires_in".into(), json!(3600));
        credentials.insert("scope".into(), json!("read"));
        Self::with_credentials(id, toolkit, "OAUTH2", credentials)
    }

    /// An ACTIVE API-key account of `toolkit` holding `api_key`.
    pub fn api_key(id: &str, toolkit: &str, api_key: &str) -> Self {
        let mut credentials = Map::new();
        credentials.insert("api_key".into(), json!(api_key));
        Self::with_credentials(id, toolkit, "API_KEY", credentials)
    }

    /// An ACTIVE account with these values in `state.val`.
    pub fn with_credentials(
        id: &str,
        toolkit: &str,
        auth_scheme: &str,
        credentials: Map<String, Value>,
    ) -> Self {
        Self {
            id: id.to_owned(),
            toolkit: toolkit.to_owned(),
            status: "ACTIVE".to_owned(),
            is_disabled: false,
            auth_config_id: format!("ac_{toolkit}"),
            auth_scheme: auth_scheme.to_owned(),
            user_id: "user-1".to_owned(),
            credentials,
            masked: false,
        }
    }

    pub fn status(mut self, status: &str) -> Self {
        self.status = status.to_owned();
        self
    }

    pub fn auth_config(mut self, auth_config_id: &str) -> Self {
        self.auth_config_id = auth_config_id.to_owned();
        self
    }

    pub fn disabled(mut self) -> Self {
        self.is_disabled = true;
        self
    }

    /// Its secrets come back masked, as with the project's "mask secrets" setting on.
    pub fn masked(mut self) -> Self {
        self.masked = true;
        self
    }

    fn body(&self, mask: bool) -> Value {
        let mut val = self.credentials.clone();
        if mask {
            for (name, value) in val.iter_mut() {
                if SECRET_FIELDS.contains(&name.as_str()) {
                    if let Some(secret) = value.as_str() {
                        *value = json!(masked_value(secret));
                    }
                }
            }
        }
        val.insert("status".into(), json!(self.status));
        json!({
            "id": self.id,
            "toolkit": {"slug": self.toolkit},
            "auth_config": {
                "id": self.auth_config_id,
                "auth_scheme": self.auth_scheme,
                "is_composio_managed": true,
                "is_disabled": false,
            },
            "user_id": self.user_id,
            "status": self.status,
            "status_reason": Value::Null,
            "is_disabled": self.is_disabled,
            "state": {"authScheme": self.auth_scheme, "val": val},
            // Deprecated, still sent: the same values.
            "data": val,
            "params": {},
            "created_at": "2026-09-01T09:00:00.000Z",
            "updated_at": "2026-09-02T09:00:00.000Z",
            "test_request_endpoint": "",
        })
    }
}

/// The values Composio masks when "mask secrets" is on.
const SECRET_FIELDS: &[&str] = &[
    "access_token",
    "refresh_token",
    "id_token",
    "api_key",
    "generic_api_key",
    "token",
    "client_secret",
];

/// How Composio shows a masked secret: its first characters and an ellipsis.
fn masked_value(secret: &str) -> String {
    let head: String = secret.chars().take(4).collect();
    format!("{head}...")
}

struct State {
    /// `None` once the key was revoked.
    api_key: Option<String>,
    accounts: Vec<ComposioAccount>,
    mask_secrets: bool,
    scripted: VecDeque<FakeResponse>,
    key_checks: u64,
    account_fetches: u64,
    /// The ids of the connected accounts asked for, in order.
    asked: Vec<String>,
}

/// A running fake Composio. Dropping it stops it.
pub struct FakeComposio {
    /// e.g. `http://127.0.0.1:54321`: the value for `AUTH_PROVIDER_COMPOSIO_BASE_URL`.
    pub base_url: String,
    state: Arc<Mutex<State>>,
    _server: FakeServer,
}

impl FakeComposio {
    /// A project with no accounts whose API key is `api_key`, on a random port of 127.0.0.1.
    pub async fn start(api_key: &str) -> Self {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), api_key)
            .await
            .expect("bind the fake Composio on 127.0.0.1")
    }

    /// As [`FakeComposio::start`] on `addr`.
    pub async fn start_on(addr: SocketAddr, api_key: &str) -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(State {
            api_key: Some(api_key.to_owned()),
            accounts: Vec::new(),
            mask_secrets: false,
            scripted: VecDeque::new(),
            key_checks: 0,
            account_fetches: 0,
            asked: Vec::new(),
        }));
        let shared = Arc::clone(&state);
        let server = FakeServer::start_on(
            addr,
            Arc::new(move |request: &FakeRequest| {
                answer(&mut shared.lock().expect("composio lock"), request)
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
        self.state.lock().expect("composio lock")
    }

    /// Adds the account, or replaces the one of the same id.
    pub fn add_account(&self, account: ComposioAccount) {
        let mut state = self.lock();
        state.accounts.retain(|a| a.id != account.id);
        state.accounts.push(account);
    }

    pub fn remove_account(&self, id: &str) {
        self.lock().accounts.retain(|a| a.id != id);
    }

    /// Sets an account's status, e.g. `EXPIRED` once its refresh failed.
    pub fn set_status(&self, id: &str, status: &str) {
        let mut state = self.lock();
        let account = state
            .accounts
            .iter_mut()
            .find(|a| a.id == id)
            .unwrap_or_else(|| panic!("the fake has no account {id}"));
        account.status = status.to_owned();
    }

    /// The project's "mask secrets" setting: on, every account's secrets come back masked.
    pub fn mask_secrets(&self, on: bool) {
        self.lock().mask_secrets = on;
    }

    /// Revokes the API key: every request from now on is refused.
    pub fn revoke_key(&self) {
        self.lock().api_key = None;
    }

    /// Answers the next request (of any endpoint) with `response` instead (queued: each request
    /// takes one). It still counts.
    pub fn fail_next(&self, response: FakeResponse) {
        self.lock().scripted.push_back(response);
    }

    /// The next request is rate-limited: 429 with `Retry-After: <seconds>`.
    pub fn rate_limit_next(&self, retry_after_seconds: u64) {
        self.fail_next(
            error(
                429,
                10429,
                "RateLimit_Exceeded",
                "Rate limit exceeded, retry later",
            )
            .with_header("retry-after", retry_after_seconds),
        );
    }

    /// The next request fails with a 500.
    pub fn fail_next_with_server_error(&self) {
        self.fail_next(error(
            500,
            10500,
            "Internal_ServerError",
            "Internal server error",
        ));
    }

    /// `GET /api/v3/auth_configs` calls received, whatever their outcome.
    pub fn key_checks(&self) -> u64 {
        self.lock().key_checks
    }

    /// `GET /api/v3/connected_accounts/{id}` calls received, whatever their outcome.
    pub fn account_fetches(&self) -> u64 {
        self.lock().account_fetches
    }

    /// The account ids asked for, in order.
    pub fn asked(&self) -> Vec<String> {
        self.lock().asked.clone()
    }
}

/// Composio's error body.
fn error(status: u16, code: u32, slug: &str, message: &str) -> FakeResponse {
    FakeResponse::json(
        status,
        &json!({"error": {
            "message": message,
            "code": code,
            "slug": slug,
            "status": status,
            "request_id": format!("req_fake_{code}"),
        }}),
    )
}

fn answer(state: &mut State, request: &FakeRequest) -> FakeResponse {
    let path = request.path.trim_end_matches('/');
    let account_id = path.strip_prefix("/api/v3/connected_accounts/");
    match (request.method.as_str(), path, account_id) {
        ("GET", "/api/v3/auth_configs", _) => state.key_checks += 1,
        ("GET", _, Some(id)) if !id.contains('/') => {
            state.account_fetches += 1;
            state.asked.push(id.to_owned());
        }
        _ => {
            return error(
                404,
                10404,
                "Route_NotFound",
                "Cannot find the requested route",
            )
        }
    }
    if let Some(scripted) = state.scripted.pop_front() {
        return scripted;
    }
    let key = request.header("x-api-key");
    if key.is_none() || key != state.api_key.as_deref() {
        return error(
            401,
            10401,
            "Auth_InvalidApiKey",
            "Invalid API key. Please check your x-api-key header",
        );
    }
    match account_id {
        None => auth_configs(state, request),
        Some(id) => match state.accounts.iter().find(|a| a.id == id) {
            Some(account) => {
                FakeResponse::json(200, &account.body(state.mask_secrets || account.masked))
            }
            None => error(
                404,
                10404,
                "ConnectedAccount_ResourceNotFound",
                "Connected account not found",
            ),
        },
    }
}

/// The project's auth configs: one per toolkit of its accounts, `limit` per page.
fn auth_configs(state: &State, request: &FakeRequest) -> FakeResponse {
    let limit = request
        .query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(20)
        .clamp(1, 1000);
    let mut configs: Vec<(&str, &str, &str)> = Vec::new();
    for a in &state.accounts {
        if !configs.iter().any(|(id, _, _)| *id == a.auth_config_id) {
            configs.push((&a.auth_config_id, &a.toolkit, &a.auth_scheme));
        }
    }
    let items: Vec<Value> = configs
        .iter()
        .take(limit)
        .map(|(id, toolkit, scheme)| {
            json!({
                "id": id,
                "name": format!("{toolkit} auth config"),
                "toolkit": {"slug": toolkit},
                "auth_scheme": scheme,
                "is_composio_managed": true,
                "status": "ENABLED",
            })
        })
        .collect();
    let next = (configs.len() > limit).then(|| format!("cursor-{limit}"));
    FakeResponse::json(
        200,
        &json!({
            "items": items,
            "next_cursor": next,
            "total_pages": configs.len().div_ceil(limit).max(1),
            "current_page": 1,
            "total_items": configs.len(),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const KEY: &str = "ak_test_key";

    fn state() -> State {
        State {
            api_key: Some(KEY.to_owned()),
            accounts: vec![
                ComposioAccount::oauth("ca_gh", "github", "gho_live_token"),
                ComposioAccount::api_key("ca_lin", "linear", "lin_api_live"),
            ],
            mask_secrets: false,
            scripted: VecDeque::new(),
            key_checks: 0,
            account_fetches: 0,
            asked: Vec::new(),
        }
    }

    fn get(state: &mut State, path: &str, key: Option<&str>) -> (u16, Value) {
        let mut headers = hyper::HeaderMap::new();
        if let Some(key) = key {
            headers.insert("x-api-key", key.parse().unwrap());
        }
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let query: BTreeMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let answer = answer(
            state,
            &FakeRequest {
                method: "GET".into(),
                path: path.into(),
                query,
                headers,
                body: Default::default(),
            },
        );
        (
            answer.status,
            serde_json::from_slice(&answer.body).unwrap_or(Value::Null),
        )
    }

    #[test]
    fn an_account_comes_in_the_v3_shape() {
        let mut s = state();
        let (status, body) = get(&mut s, "/api/v3/connected_accounts/ca_gh", Some(KEY));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["toolkit"]["slug"], "github");
        assert_eq!(body["status"], "ACTIVE");
        assert_eq!(body["auth_config"]["id"], "ac_github");
        assert_eq!(body["state"]["authScheme"], "OAUTH2");
        assert_eq!(body["state"]["val"]["access_token"], "gho_live_token");
        assert_eq!(body["data"]["access_token"], "gho_live_token");
        let (status, body) = get(&mut s, "/api/v3/connected_accounts/ca_none", Some(KEY));
        assert_eq!(status, 404);
        assert_eq!(body["error"]["slug"], "ConnectedAccount_ResourceNotFound");
        assert_eq!((s.account_fetches, s.asked.len()), (2, 2));
    }

    #[test]
    fn the_key_is_checked_on_every_endpoint() {
        let mut s = state();
        assert_eq!(get(&mut s, "/api/v3/auth_configs?limit=1", None).0, 401);
        assert_eq!(
            get(&mut s, "/api/v3/connected_accounts/ca_gh", Some("nope")).0,
            401
        );
        let (status, body) = get(&mut s, "/api/v3/auth_configs?limit=1", Some(KEY));
        assert_eq!(status, 200);
        assert_eq!(body["items"].as_array().unwrap().len(), 1);
        assert_eq!(body["total_items"], 2);
        assert_eq!(body["next_cursor"], "cursor-1");
        assert_eq!(s.key_checks, 2);
    }

    #[test]
    fn masked_secrets_are_cut_short() {
        let mut s = state();
        s.mask_secrets = true;
        let (_, body) = get(&mut s, "/api/v3/connected_accounts/ca_lin", Some(KEY));
        assert_eq!(body["state"]["val"]["api_key"], "lin_...");
        let (_, body) = get(&mut s, "/api/v3/connected_accounts/ca_gh", Some(KEY));
        assert_eq!(body["state"]["val"]["access_token"], "gho_...");
        assert_eq!(body["state"]["val"]["token_type"], "bearer");
    }

    #[test]
    fn scripted_answers_come_first() {
        let mut s = state();
        s.scripted.push_back(
            error(429, 10429, "RateLimit_Exceeded", "slow down").with_header("retry-after", 7),
        );
        let (status, _) = get(&mut s, "/api/v3/connected_accounts/ca_gh", Some(KEY));
        assert_eq!(status, 429);
        assert_eq!(
            get(&mut s, "/api/v3/connected_accounts/ca_gh", Some(KEY)).0,
            200
        );
    }
}

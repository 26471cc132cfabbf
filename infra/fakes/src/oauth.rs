//! A fake OAuth 2.0 authorization server, built from RFC 6749 (sections 2.3.1, 4.1, 5, 6) and
//! RFC 7636 (PKCE, S256). The test plays the browser, so there is no login page: [`mint_code`]
//! gives what the authorize endpoint would have issued to the redirect URI, and `POST /token`
//! redeems it or a refresh token by the RFC's rules. `GET /userinfo` answers 200 to a live access
//! token, 401 otherwise, so a source can be pointed at it.
//!
//! It can also speak Slack's dialect (`oauth.v2.access`): the user's tokens under `authed_user`,
//! and failures as HTTP 200 `{"ok": false, "error": ...}`.
//!
//! [`mint_code`]: FakeOAuthProvider::mint_code

use crate::server::{FakeRequest, FakeResponse, FakeServer};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a minted code is honoured (RFC 6749 section 4.1.2 recommends at most 10 minutes).
pub const CODE_LIFETIME: Duration = Duration::from_secs(60);
/// The default `expires_in` of an access token.
pub const ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// How the fake expects the client to authenticate (RFC 6749 section 2.3.1); a client that uses
/// the other way, or both, is `invalid_client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeClientAuth {
    /// `Authorization: Basic base64(urlencode(id):urlencode(secret))`.
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Body,
}

/// The shape of the token endpoint's answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// RFC 6749 section 5: tokens at the top level, errors as 400/401 with `{"error": ...}`.
    Rfc6749,
    /// Slack's `oauth.v2.access`: a bot token at the top level, the user's tokens under
    /// `authed_user`, every failure as HTTP 200 `{"ok": false, "error": ...}`.
    Slack,
}

/// The registered client and the server's behaviour.
#[derive(Debug, Clone)]
pub struct FakeOAuthConfig {
    pub client_id: String,
    pub client_secret: String,
    pub client_auth: FakeClientAuth,
    pub dialect: Dialect,
    pub access_token_lifetime: Duration,
    /// When set, every access token issued is this value: the token a source's fake accepts,
    /// so a browser flow against this server ends in a token the source takes (refresh tokens
    /// still rotate).
    pub issued_access_token: Option<String>,
}

impl FakeOAuthConfig {
    pub fn new(client_id: &str, client_secret: &str, client_auth: FakeClientAuth) -> Self {
        Self {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            client_auth,
            dialect: Dialect::Rfc6749,
            access_token_lifetime: ACCESS_TOKEN_LIFETIME,
            issued_access_token: None,
        }
    }
}

struct Code {
    client_id: String,
    redirect_uri: String,
    challenge: Option<String>,
    scope: String,
    expires_at: Instant,
    used: bool,
    /// The tokens issued for it: revoked if the code is presented again (RFC 6749 4.1.2).
    issued: Vec<String>,
}

struct AccessToken {
    client_id: String,
    scope: String,
    expires_at: Instant,
}

struct RefreshToken {
    client_id: String,
    scope: String,
}

#[derive(Default)]
struct Counters {
    token_calls: u64,
    code_exchanges: u64,
    refreshes: u64,
}

struct State {
    config: FakeOAuthConfig,
    codes: HashMap<String, Code>,
    access_tokens: HashMap<String, AccessToken>,
    refresh_tokens: HashMap<String, RefreshToken>,
    scripted: VecDeque<FakeResponse>,
    counters: Counters,
    /// Clients besides the configured one (a customer's own app): id -> secret.
    clients: HashMap<String, String>,
    /// Whether the next authorize request is denied by the user.
    deny_next: bool,
}

impl State {
    fn new(config: FakeOAuthConfig) -> Self {
        Self {
            config,
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            scripted: VecDeque::new(),
            counters: Counters::default(),
            clients: HashMap::new(),
            deny_next: false,
        }
    }
}

/// A running fake authorization server. Dropping it stops it.
pub struct FakeOAuthProvider {
    pub server: FakeServer,
    state: Arc<Mutex<State>>,
}

impl FakeOAuthProvider {
    /// An RFC 6749 server for one client.
    pub async fn start(client_id: &str, client_secret: &str, client_auth: FakeClientAuth) -> Self {
        Self::start_with(FakeOAuthConfig::new(client_id, client_secret, client_auth)).await
    }

    pub async fn start_with(config: FakeOAuthConfig) -> Self {
        Self::start_with_on(std::net::SocketAddr::from(([127, 0, 0, 1], 0)), config)
            .await
            .expect("bind a random port")
    }

    /// Serves on `addr` (a fixed port for `make fakes`).
    pub async fn start_with_on(
        addr: std::net::SocketAddr,
        config: FakeOAuthConfig,
    ) -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(State::new(config)));
        let handler_state = Arc::clone(&state);
        let server = FakeServer::start_on(
            addr,
            Arc::new(move |request: &FakeRequest| handle(&handler_state, request)),
        )
        .await?;
        Ok(Self { server, state })
    }

    pub fn token_url(&self) -> String {
        format!("{}/token", self.server.base_url)
    }

    /// Where a browser would be sent; the fake serves no page there (see [`Self::mint_code`]).
    pub fn authorize_url(&self) -> String {
        format!("{}/authorize", self.server.base_url)
    }

    pub fn userinfo_url(&self) -> String {
        format!("{}/userinfo", self.server.base_url)
    }

    /// What the authorize endpoint would have sent to `redirect_uri` once the user consented: a
    /// single-use code for this client, valid [`CODE_LIFETIME`], bound to the exact redirect URI
    /// and to the S256 `code_challenge` when given.
    pub fn mint_code(
        &self,
        client_id: &str,
        redirect_uri: &str,
        code_challenge: Option<&str>,
        scope: &str,
    ) -> String {
        let code = random_value("code");
        self.lock().codes.insert(
            code.clone(),
            Code {
                client_id: client_id.to_owned(),
                redirect_uri: redirect_uri.to_owned(),
                challenge: code_challenge.map(str::to_owned),
                scope: scope.to_owned(),
                expires_at: Instant::now() + CODE_LIFETIME,
                used: false,
                issued: Vec::new(),
            },
        );
        code
    }

    /// Registers another client (a customer's own OAuth app), authenticated the configured way.
    pub fn register_client(&self, client_id: &str, client_secret: &str) {
        self.lock()
            .clients
            .insert(client_id.to_owned(), client_secret.to_owned());
    }

    /// The next `GET /authorize` answers as if the user clicked "deny": `error=access_denied`.
    pub fn deny_next_authorization(&self) {
        self.lock().deny_next = true;
    }

    /// Answers the next token call with `response` instead of its rules (queued: each call takes
    /// one). The call still counts.
    pub fn fail_next_token_call(&self, response: FakeResponse) {
        self.lock().scripted.push_back(response);
    }

    /// The next token call fails with 400 `invalid_grant`.
    pub fn fail_next_with_invalid_grant(&self) {
        self.fail_next_token_call(rfc_error(400, "invalid_grant", "the grant was revoked"));
    }

    /// The next token call fails with a 500.
    pub fn fail_next_with_server_error(&self) {
        self.fail_next_token_call(FakeResponse::text(
            500,
            "text/plain",
            "internal server error",
        ));
    }

    /// The next token call is rate-limited: 429 with `Retry-After: <seconds>`.
    pub fn fail_next_rate_limited(&self, retry_after_seconds: u64) {
        self.fail_next_token_call(
            rfc_error(429, "slow_down", "too many requests")
                .with_header("retry-after", retry_after_seconds),
        );
    }

    /// Revokes every access and refresh token issued so far.
    pub fn revoke_all(&self) {
        let mut state = self.lock();
        state.access_tokens.clear();
        state.refresh_tokens.clear();
    }

    /// `POST /token` calls received, whatever their outcome.
    pub fn token_calls(&self) -> u64 {
        self.lock().counters.token_calls
    }

    /// Successful `authorization_code` grants.
    pub fn code_exchanges(&self) -> u64 {
        self.lock().counters.code_exchanges
    }

    /// Successful `refresh_token` grants.
    pub fn refreshes(&self) -> u64 {
        self.lock().counters.refreshes
    }

    /// Whether `access_token` is live (issued, not revoked, not expired).
    pub fn is_live(&self, access_token: &str) -> bool {
        live(&self.lock(), access_token).is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("oauth fake lock")
    }
}

/// A value no one can guess within a test run: a counter and the process's start time.
fn random_value(kind: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let digest = sha256(format!("{kind}:{n}:{nanos}").as_bytes());
    format!("fake-{kind}-{}", URL_SAFE_NO_PAD.encode(&digest[..18]))
}

fn live<'a>(state: &'a State, access_token: &str) -> Option<&'a AccessToken> {
    state
        .access_tokens
        .get(access_token)
        .filter(|t| t.expires_at > Instant::now())
}

fn handle(state: &Mutex<State>, request: &FakeRequest) -> FakeResponse {
    let mut state = state.lock().expect("oauth fake lock");
    match (request.method.as_str(), request.path.as_str()) {
        ("POST", "/token") => {
            state.counters.token_calls += 1;
            if let Some(scripted) = state.scripted.pop_front() {
                return scripted;
            }
            match token(&mut state, request) {
                Ok(body) => FakeResponse::json(200, &body).with_header("cache-control", "no-store"),
                Err(rejection) => rejection.answer(state.config.dialect),
            }
        }
        ("GET", "/authorize") => authorize(&mut state, request),
        ("GET", "/userinfo") => match request.bearer().and_then(|t| live(&state, t)) {
            Some(token) => FakeResponse::json(
                200,
                &json!({"sub": "fake-user-1", "client_id": token.client_id, "scope": token.scope}),
            ),
            None => rfc_error(401, "invalid_token", "the access token is not valid")
                .with_header("www-authenticate", "Bearer error=\"invalid_token\""),
        },
        _ => rfc_error(404, "not_found", "no such endpoint"),
    }
}

/// `GET /authorize` with the user's consent already given: a 302 back to `redirect_uri` with a
/// code bound to the client, the redirect URI and the PKCE challenge, and the `state` as sent.
/// Requests a real server would refuse to redirect (unknown client, no redirect URI) get a
/// 400 page, never a redirect.
fn authorize(state: &mut State, request: &FakeRequest) -> FakeResponse {
    let q = &request.query;
    let page = |message: &str| FakeResponse::text(400, "text/plain", message.to_owned());
    let Some(client_id) = q.get("client_id") else {
        return page("client_id is missing");
    };
    if *client_id != state.config.client_id && !state.clients.contains_key(client_id) {
        return page("unknown client");
    }
    let Some(redirect_uri) = q.get("redirect_uri") else {
        return page("redirect_uri is missing");
    };
    let Ok(mut back) = url::Url::parse(redirect_uri) else {
        return page("redirect_uri is not a URL");
    };
    {
        let mut pairs = back.query_pairs_mut();
        let challenge = q.get("code_challenge");
        if std::mem::take(&mut state.deny_next) {
            pairs.append_pair("error", "access_denied");
        } else if q.get("response_type").map(String::as_str) != Some("code") {
            pairs.append_pair("error", "unsupported_response_type");
        } else if challenge.is_some()
            && q.get("code_challenge_method").map(String::as_str) != Some("S256")
        {
            pairs.append_pair("error", "invalid_request");
        } else {
            let code = random_value("code");
            state.codes.insert(
                code.clone(),
                Code {
                    client_id: client_id.clone(),
                    redirect_uri: redirect_uri.clone(),
                    challenge: challenge.cloned(),
                    scope: q.get("scope").cloned().unwrap_or_default(),
                    expires_at: Instant::now() + CODE_LIFETIME,
                    used: false,
                    issued: Vec::new(),
                },
            );
            pairs.append_pair("code", &code);
        }
        if let Some(s) = q.get("state") {
            pairs.append_pair("state", s);
        }
    }
    FakeResponse::text(302, "text/plain", Vec::new()).with_header("location", back.as_str())
}

/// Why a token request failed: the RFC's error and status, and what Slack would say instead.
struct Rejection {
    status: u16,
    error: &'static str,
    slack_error: &'static str,
    description: &'static str,
}

impl Rejection {
    fn new(
        status: u16,
        error: &'static str,
        slack_error: &'static str,
        description: &'static str,
    ) -> Self {
        Self {
            status,
            error,
            slack_error,
            description,
        }
    }

    fn invalid_grant(slack_error: &'static str, description: &'static str) -> Self {
        Self::new(400, "invalid_grant", slack_error, description)
    }

    fn answer(&self, dialect: Dialect) -> FakeResponse {
        match dialect {
            Dialect::Rfc6749 => {
                let answer = rfc_error(self.status, self.error, self.description);
                if self.status == 401 {
                    answer.with_header("www-authenticate", "Basic realm=\"token\"")
                } else {
                    answer
                }
            }
            Dialect::Slack => {
                FakeResponse::json(200, &json!({"ok": false, "error": self.slack_error}))
            }
        }
    }
}

/// An RFC 6749 section 5.2 error answer.
pub fn rfc_error(status: u16, error: &str, description: &str) -> FakeResponse {
    FakeResponse::json(
        status,
        &json!({"error": error, "error_description": description}),
    )
    .with_header("cache-control", "no-store")
}

fn token(state: &mut State, request: &FakeRequest) -> Result<Value, Rejection> {
    let form = request.form();
    let client_id = authenticate(&state.config, &state.clients, request, &form)?;
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => authorization_code(state, &client_id, &form),
        Some("refresh_token") => refresh_token(state, &client_id, &form),
        Some(_) => Err(Rejection::new(
            400,
            "unsupported_grant_type",
            "invalid_grant_type",
            "the grant type is not supported",
        )),
        None => Err(Rejection::new(
            400,
            "invalid_request",
            "invalid_grant_type",
            "grant_type is missing",
        )),
    }
}

/// The client's id when it authenticated the configured way, and only that way.
fn authenticate(
    config: &FakeOAuthConfig,
    clients: &HashMap<String, String>,
    request: &FakeRequest,
    form: &std::collections::BTreeMap<String, String>,
) -> Result<String, Rejection> {
    let bad = || {
        Rejection::new(
            401,
            "invalid_client",
            "bad_client_secret",
            "client authentication failed",
        )
    };
    let basic = request.header("authorization").and_then(basic_credentials);
    let in_body = form.contains_key("client_secret");
    let (id, secret) = match (config.client_auth, basic, in_body) {
        (FakeClientAuth::Basic, Some(credentials), false) => credentials,
        (FakeClientAuth::Body, None, true) => (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned().unwrap_or_default(),
        ),
        _ => return Err(bad()),
    };
    let expected = if id == config.client_id {
        Some(&config.client_secret)
    } else {
        clients.get(&id)
    };
    if expected == Some(&secret) {
        Ok(id)
    } else if expected.is_none() {
        Err(Rejection::new(
            401,
            "invalid_client",
            "invalid_client_id",
            "unknown client",
        ))
    } else {
        Err(bad())
    }
}

/// `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 section 2.3.1) as id and secret.
fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, value) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(value.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decode(id), form_decode(secret)))
}

fn form_decode(value: &str) -> String {
    url::form_urlencoded::parse(format!("v={value}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn authorization_code(
    state: &mut State,
    client_id: &str,
    form: &std::collections::BTreeMap<String, String>,
) -> Result<Value, Rejection> {
    let Some(presented) = form.get("code") else {
        return Err(Rejection::new(
            400,
            "invalid_request",
            "invalid_code",
            "code is missing",
        ));
    };
    let Some(code) = state.codes.get_mut(presented) else {
        return Err(Rejection::invalid_grant("invalid_code", "unknown code"));
    };
    if code.used {
        // RFC 6749 4.1.2: a code presented twice revokes what it gave.
        let issued = std::mem::take(&mut code.issued);
        for token in issued {
            state.access_tokens.remove(&token);
            state.refresh_tokens.remove(&token);
        }
        return Err(Rejection::invalid_grant(
            "code_already_used",
            "the code was already used",
        ));
    }
    // Any presentation by its client uses the code up, whatever comes next.
    if code.client_id != client_id {
        return Err(Rejection::invalid_grant(
            "invalid_code",
            "the code was issued to another client",
        ));
    }
    code.used = true;
    if code.expires_at <= Instant::now() {
        return Err(Rejection::invalid_grant("invalid_code", "the code expired"));
    }
    if form.get("redirect_uri") != Some(&code.redirect_uri) {
        return Err(Rejection::invalid_grant(
            "bad_redirect_uri",
            "redirect_uri does not match",
        ));
    }
    if let Some(challenge) = &code.challenge {
        let Some(verifier) = form.get("code_verifier") else {
            return Err(Rejection::invalid_grant(
                "invalid_code",
                "code_verifier is missing",
            ));
        };
        if URL_SAFE_NO_PAD.encode(sha256(verifier.as_bytes())) != *challenge {
            return Err(Rejection::invalid_grant(
                "invalid_code",
                "code_verifier does not match",
            ));
        }
    }
    let scope = code.scope.clone();
    let (body, issued) = issue(state, client_id, &scope);
    if let Some(code) = state.codes.get_mut(presented) {
        code.issued = issued;
    }
    state.counters.code_exchanges += 1;
    Ok(body)
}

fn refresh_token(
    state: &mut State,
    client_id: &str,
    form: &std::collections::BTreeMap<String, String>,
) -> Result<Value, Rejection> {
    let Some(presented) = form.get("refresh_token") else {
        return Err(Rejection::new(
            400,
            "invalid_request",
            "invalid_refresh_token",
            "refresh_token is missing",
        ));
    };
    let owned = state
        .refresh_tokens
        .get(presented)
        .is_some_and(|t| t.client_id == client_id);
    if !owned {
        return Err(Rejection::invalid_grant(
            "invalid_refresh_token",
            "unknown refresh token",
        ));
    }
    // Rotation: the presented refresh token stops working now.
    let old = state
        .refresh_tokens
        .remove(presented)
        .expect("checked above");
    let (body, _) = issue(state, client_id, &old.scope);
    state.counters.refreshes += 1;
    Ok(body)
}

/// Issues an access and a refresh token; the answer in the configured dialect, and what was
/// issued.
fn issue(state: &mut State, client_id: &str, scope: &str) -> (Value, Vec<String>) {
    let lifetime = state.config.access_token_lifetime;
    let access = state
        .config
        .issued_access_token
        .clone()
        .unwrap_or_else(|| random_value("at"));
    let refresh = random_value("rt");
    state.access_tokens.insert(
        access.clone(),
        AccessToken {
            client_id: client_id.to_owned(),
            scope: scope.to_owned(),
            expires_at: Instant::now() + lifetime,
        },
    );
    state.refresh_tokens.insert(
        refresh.clone(),
        RefreshToken {
            client_id: client_id.to_owned(),
            scope: scope.to_owned(),
        },
    );
    let mut issued = vec![access.clone(), refresh.clone()];
    let body = match state.config.dialect {
        Dialect::Rfc6749 => json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": lifetime.as_secs(),
            "refresh_token": refresh,
            "scope": scope,
        }),
        Dialect::Slack => {
            let bot = random_value("bot");
            state.access_tokens.insert(
                bot.clone(),
                AccessToken {
                    client_id: client_id.to_owned(),
                    scope: scope.to_owned(),
                    expires_at: Instant::now() + lifetime,
                },
            );
            issued.push(bot.clone());
            json!({
                "ok": true,
                "app_id": "A0FAKE",
                "access_token": bot,
                "token_type": "bot",
                "scope": scope,
                "bot_user_id": "U0BOT",
                "team": {"id": "T0FAKE", "name": "Fake Team"},
                "authed_user": {
                    "id": "U0USER",
                    "scope": scope,
                    "access_token": access,
                    "token_type": "user",
                    "refresh_token": refresh,
                    "expires_in": lifetime.as_secs(),
                },
            })
        }
    };
    (body, issued)
}

/// SHA-256 (FIPS 180-4), for checking S256 PKCE challenges.
pub fn sha256(message: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut data = message.to_vec();
    let bit_len = (message.len() as u64).wrapping_mul(8);
    data.push(0x80);
    while data.len() % 64 != 56 {
        data.push(0);
    }
    data.extend_from_slice(&bit_len.to_be_bytes());
    for block in data.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (slot, value) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *slot = slot.wrapping_add(value);
        }
    }
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests;

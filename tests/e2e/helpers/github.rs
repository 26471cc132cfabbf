//! A fake of GitHub's REST API on 127.0.0.1, shaped after the public API reference: `GET /user`
//! answers the authenticated user for one valid token and GitHub's "Bad credentials" error for
//! anything else. Switches make it answer as a rate-limited or failing GitHub does.
//!
//! It counts requests and remembers their method and path, never a header or a body, so a test
//! can assert on it without the fake ever holding a secret it could leak.

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

const DOCS: &str = "https://docs.github.com/rest";
const RATE_LIMIT_DOCS: &str =
    "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api";
const HOURLY_LIMIT: usize = 5000;

/// How the fake answers every request until told otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Like github.com: the user for the valid token, 401 otherwise.
    Normal,
    /// 429 after a secondary rate limit, with `Retry-After: <seconds>` when given.
    TooManyRequests { retry_after_secs: Option<u64> },
    /// 403 with the primary limit spent: `x-ratelimit-remaining: 0` and a reset this many
    /// seconds from now.
    PrimaryLimitExhausted { reset_in_secs: u64 },
    /// 503, as GitHub answers during an outage.
    Unavailable,
}

struct State {
    valid_token: String,
    mode: Mutex<Mode>,
    requests: AtomicUsize,
    paths: Mutex<Vec<String>>,
}

pub struct FakeGithub {
    /// Where the fake listens, e.g. `http://127.0.0.1:54321`; the value for
    /// `SOURCE_GITHUB_BASE_URL`.
    pub base_url: String,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl FakeGithub {
    /// Serves on a random port of 127.0.0.1 until dropped.
    pub async fn start(valid_token: &str) -> FakeGithub {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake GitHub");
        let base_url = format!("http://{}", listener.local_addr().expect("its address"));
        let state = Arc::new(State {
            valid_token: valid_token.to_owned(),
            mode: Mutex::new(Mode::Normal),
            requests: AtomicUsize::new(0),
            paths: Mutex::new(Vec::new()),
        });
        let task = tokio::spawn(serve(listener, Arc::clone(&state)));
        FakeGithub {
            base_url,
            state,
            task,
        }
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().expect("mode lock") = mode;
    }

    pub fn respond_normally(&self) {
        self.set_mode(Mode::Normal);
    }

    /// 429, with `Retry-After` when `retry_after_secs` is given.
    pub fn respond_rate_limited(&self, retry_after_secs: Option<u64>) {
        self.set_mode(Mode::TooManyRequests { retry_after_secs });
    }

    /// 403 with `x-ratelimit-remaining: 0` and `x-ratelimit-reset` in `reset_in_secs`.
    pub fn respond_primary_limit_exhausted(&self, reset_in_secs: u64) {
        self.set_mode(Mode::PrimaryLimitExhausted { reset_in_secs });
    }

    /// 503 Service Unavailable.
    pub fn respond_unavailable(&self) {
        self.set_mode(Mode::Unavailable);
    }

    /// How many requests reached the fake, whatever it answered.
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// `"GET /user"`-style lines of the requests received, in order.
    pub fn paths(&self) -> Vec<String> {
        self.state.paths.lock().expect("paths lock").clone()
    }
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(listener: TcpListener, state: Arc<State>) {
    // Owned by this task: aborting it drops the set, which closes kept-alive connections too.
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        while connections.try_join_next().is_some() {}
        let state = Arc::clone(&state);
        connections.spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let response = answer(&state, &request);
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn answer(state: &State, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let count = state.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let path = request.uri().path().to_owned();
    state
        .paths
        .lock()
        .expect("paths lock")
        .push(format!("{} {path}", request.method()));
    let mode = *state.mode.lock().expect("mode lock");

    match mode {
        Mode::Normal => {}
        Mode::TooManyRequests { retry_after_secs } => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                RATE_LIMIT_DOCS,
            );
            if let Some(seconds) = retry_after_secs {
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(seconds));
            }
            return with_rate_limit(response, HOURLY_LIMIT - 1, 3600);
        }
        Mode::PrimaryLimitExhausted { reset_in_secs } => {
            let response = error(
                StatusCode::FORBIDDEN,
                "API rate limit exceeded for user ID 583231.",
                RATE_LIMIT_DOCS,
            );
            return with_rate_limit(response, 0, reset_in_secs);
        }
        Mode::Unavailable => {
            return text(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
        }
    }

    if request.method() != hyper::Method::GET || path != "/user" {
        return error(StatusCode::NOT_FOUND, "Not Found", DOCS);
    }
    let remaining = HOURLY_LIMIT.saturating_sub(count);
    if !is_valid(request, &state.valid_token) {
        let response = error(StatusCode::UNAUTHORIZED, "Bad credentials", DOCS);
        return with_rate_limit(response, remaining, 3600);
    }
    let mut response = json_response(StatusCode::OK, &user());
    response.headers_mut().insert(
        "x-oauth-scopes",
        HeaderValue::from_static("repo, read:user"),
    );
    with_rate_limit(response, remaining, 3600)
}

/// `Authorization: Bearer <token>` or the older `token <token>`, the scheme in any case.
fn is_valid(request: &Request<Incoming>, valid_token: &str) -> bool {
    let Some(value) = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    match value.split_once(' ') {
        Some((scheme, token)) => {
            (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
                && token.trim() == valid_token
        }
        None => false,
    }
}

/// The authenticated user, as `GET /user` describes it for a token with the `user` scope.
fn user() -> Value {
    json!({
        "login": "octo-tester",
        "id": 583231,
        "node_id": "MDQ6VXNlcjU4MzIzMQ==",
        "avatar_url": "https://avatars.githubusercontent.com/u/583231?v=4",
        "gravatar_id": "",
        "url": "https://api.github.com/users/octo-tester",
        "html_url": "https://github.com/octo-tester",
        "repos_url": "https://api.github.com/users/octo-tester/repos",
        "type": "User",
        "user_view_type": "private",
        "site_admin": false,
        "name": "Octo Tester",
        "company": "@octo-org",
        "blog": "",
        "location": "Berlin",
        "email": null,
        "hireable": null,
        "bio": null,
        "twitter_username": null,
        "public_repos": 8,
        "public_gists": 1,
        "followers": 20,
        "following": 0,
        "created_at": "2011-01-25T18:44:36Z",
        "updated_at": "2026-10-02T09:12:40Z",
        "private_gists": 0,
        "total_private_repos": 3,
        "owned_private_repos": 2,
        "disk_usage": 10240,
        "collaborators": 0,
        "two_factor_authentication": true,
        "plan": {"name": "free", "space": 976562499, "collaborators": 0, "private_repos": 10000}
    })
}

/// GitHub's JSON error body: `message`, `documentation_url` and the status as a string.
fn error(status: StatusCode, message: &str, documentation_url: &str) -> Response<Full<Bytes>> {
    json_response(
        status,
        &json!({
            "message": message,
            "documentation_url": documentation_url,
            "status": status.as_u16().to_string(),
        }),
    )
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert(
        "x-github-api-version-selected",
        HeaderValue::from_static("2022-11-28"),
    );
    headers.insert(
        "x-github-media-type",
        HeaderValue::from_static("github.v3; format=json"),
    );
    response
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// The primary rate limit headers every REST answer carries.
fn with_rate_limit(
    mut response: Response<Full<Bytes>>,
    remaining: usize,
    reset_in_secs: u64,
) -> Response<Full<Bytes>> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-limit", HeaderValue::from(HOURLY_LIMIT));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    headers.insert(
        "x-ratelimit-used",
        HeaderValue::from(HOURLY_LIMIT - remaining),
    );
    headers.insert("x-ratelimit-reset", HeaderValue::from(now + reset_in_secs));
    headers.insert("x-ratelimit-resource", HeaderValue::from_static("core"));
    response
}

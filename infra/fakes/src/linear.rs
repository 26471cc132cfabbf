//! A fake of Linear's GraphQL API on 127.0.0.1, shaped after the public reference
//! (linear.app/developers): one endpoint, `POST /graphql`; personal API keys sent as the raw
//! `Authorization` value (a bearer token is an OAuth token); Relay pagination with `first`
//! (default 50, at most 250), `after` and `pageInfo { hasNextPage endCursor }`; archived items
//! hidden unless `includeArchived: true`; `filter: { updatedAt: { gt } }`; rate-limit headers
//! (`X-RateLimit-Requests-*`, resets in UTC epoch milliseconds) on every answer; and Linear's
//! error bodies, HTTP 400 with `errors[].extensions.code` `AUTHENTICATION_ERROR` or
//! `RATELIMITED`.
//!
//! It reads just enough of a query to answer it: the root field (`viewer`, `teams`, `users`,
//! `projects`, `issues`, `comments`) and the variables. Nodes carry every field the fake knows,
//! whatever the selection asked for. It remembers what it was asked (root field and variables),
//! never a header, so a test can assert on it without the fake holding a secret.

use crate::server::{FakeRequest, FakeResponse, FakeServer};
use base64::Engine;
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Map, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

mod routes;
mod workspace;

use routes::*;
pub use workspace::{Comment, Issue, Project, Team, User, Workspace};

/// The API key the fake accepts under `make fakes`.
pub const DEMO_KEY: &str = "lin_api_fakeDemoKey000000000000000000000000000";
const ORG: &str = "acme";
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 250;
const HOURLY_REQUESTS: u64 = 5000;
/// What a test makes the next answers be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trouble {
    /// HTTP 400 `RATELIMITED`, the requests budget spent for this many seconds.
    RateLimited { wait_secs: u64 },
    /// HTTP 200 with a body cut off mid-JSON, as a broken proxy leaves it.
    Malformed,
}

/// A query as the fake was asked it: the root field and the variables that steer a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    pub field: String,
    pub after: Option<String>,
    /// `filter.updatedAt.gt`, when given.
    pub updated_after: Option<String>,
    pub include_archived: bool,
}

struct State {
    /// `None` once the key was revoked: every request is then unauthenticated.
    valid_key: Mutex<Option<String>>,
    /// OAuth access tokens accepted besides the key, each only as `Bearer <token>`.
    oauth_tokens: Mutex<Vec<String>>,
    workspace: Arc<Mutex<Workspace>>,
    /// A trouble due after this many more list answers.
    trouble: Mutex<Option<(usize, Trouble)>>,
    /// The next `viewer` query is rate-limited for this many seconds.
    viewer_limited: Mutex<Option<u64>>,
    asked: Mutex<Vec<Asked>>,
    requests: Mutex<u64>,
}

pub struct FakeLinear {
    /// e.g. `http://127.0.0.1:54321`: the value for `SOURCE_LINEAR_BASE_URL`.
    pub base_url: String,
    state: Arc<State>,
    server: FakeServer,
}

impl FakeLinear {
    /// Serves the demo workspace on a random port of 127.0.0.1 until dropped.
    pub async fn start(valid_key: &str) -> Self {
        Self::start_with(valid_key, Workspace::demo()).await
    }

    /// Serves `workspace` on a random port of 127.0.0.1 until dropped.
    pub async fn start_with(valid_key: &str, workspace: Workspace) -> Self {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        Self::start_on(addr, valid_key, workspace)
            .await
            .expect("bind the fake Linear on 127.0.0.1")
    }

    /// Serves `workspace` on `addr` (`make fakes` uses a fixed port).
    pub async fn start_on(
        addr: SocketAddr,
        valid_key: &str,
        workspace: Workspace,
    ) -> std::io::Result<Self> {
        let state = Arc::new(State {
            valid_key: Mutex::new(Some(valid_key.to_owned())),
            oauth_tokens: Mutex::new(Vec::new()),
            workspace: Arc::new(Mutex::new(workspace)),
            trouble: Mutex::new(None),
            viewer_limited: Mutex::new(None),
            asked: Mutex::new(Vec::new()),
            requests: Mutex::new(0),
        });
        let handler_state = Arc::clone(&state);
        let server = FakeServer::start_on(
            addr,
            Arc::new(move |r: &FakeRequest| answer(&handler_state, r)),
        )
        .await?;
        Ok(Self {
            base_url: server.base_url.clone(),
            state,
            server,
        })
    }

    /// The workspace, to change between syncs (the fake answers from it as it is then).
    pub fn workspace(&self) -> MutexGuard<'_, Workspace> {
        self.state.workspace.lock().expect("workspace lock")
    }

    /// The shared workspace itself, for a test that keeps it beyond the fake.
    pub fn shared_workspace(&self) -> Arc<Mutex<Workspace>> {
        Arc::clone(&self.state.workspace)
    }

    /// After `answered` more list answers, one `RATELIMITED` answer with the requests budget
    /// spent for `wait_secs`; then the fake answers normally again.
    pub fn rate_limit_once_after(&self, answered: usize, wait_secs: u64) {
        *self.state.trouble.lock().expect("trouble lock") =
            Some((answered, Trouble::RateLimited { wait_secs }));
    }

    /// After `answered` more list answers, one answer whose body is cut off mid-JSON.
    pub fn malform_once_after(&self, answered: usize) {
        *self.state.trouble.lock().expect("trouble lock") = Some((answered, Trouble::Malformed));
    }

    /// Accepts this OAuth access token too, as Linear does: only as `Bearer <token>` (until the
    /// key is revoked, which makes every request unauthenticated).
    pub fn accept_oauth_token(&self, token: &str) {
        self.state
            .oauth_tokens
            .lock()
            .expect("tokens lock")
            .push(token.to_owned());
    }

    /// The next `viewer` query (the credential check) answers `RATELIMITED`, the requests
    /// budget spent for `wait_secs`; list answers are not counted for it, nor it for them.
    pub fn rate_limit_viewer_once(&self, wait_secs: u64) {
        *self.state.viewer_limited.lock().expect("viewer lock") = Some(wait_secs);
    }

    /// `"POST /graphql"`-style lines of every request received, `viewer` checks included.
    pub fn requests(&self) -> Vec<String> {
        self.server.requests()
    }

    /// Revokes the key: every request from now on is unauthenticated.
    pub fn revoke_key(&self) {
        *self.state.valid_key.lock().expect("key lock") = None;
    }

    /// The list queries received, in order (the `viewer` checks are left out).
    pub fn asked(&self) -> Vec<Asked> {
        self.state.asked.lock().expect("asked lock").clone()
    }
}

#[cfg(test)]
mod tests;

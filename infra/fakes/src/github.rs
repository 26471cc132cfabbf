//! A fake of GitHub's REST API on 127.0.0.1, shaped after the public API reference: the
//! authenticated user, repositories, issues and pull requests (one list, as `/issues` answers
//! them), issue comments, branches, git trees and blobs, and the comparison of two commits.
//! Lists filter by `since` (updated at or after it), sort by `sort`/`direction`, and page with
//! `per_page`/`page` and a `Link` header (`rel="next"`, `"last"`, ...), every
//! answer carries the `x-ratelimit-*` headers, and errors have GitHub's JSON shape.
//!
//! A test changes the [`Workspace`] between syncs (issues opened, edited, closed or deleted,
//! comments, commits that add, edit and remove files, force-pushes) and flips switches for the
//! next answers: a rate limit, a revoked token, a malformed page, a slow GitHub, an API served
//! below `/api/v3` as GitHub Enterprise Server does.
//!
//! It counts requests and remembers their method, path, query and the headers that carry no
//! credential (of `Authorization` only its scheme), never a body, so a test can assert on what
//! a client sent without the fake ever holding a secret it could leak.

use crate::server::{FakeRequest, FakeServer, Handler};
use routes::answer;
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

mod api;
mod routes;
mod workspace;

pub use workspace::{blob_sha, Comment, Commit, Issue, Repo, Workspace};

const DOCS: &str = "https://docs.github.com/rest";
const RATE_LIMIT_DOCS: &str =
    "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api";
const HOURLY_LIMIT: usize = 5000;
/// GitHub's default and largest `per_page`.
const DEFAULT_PER_PAGE: usize = 30;
const MAX_PER_PAGE: usize = 100;
/// The token the fake accepts under `make fakes`.
pub const DEMO_TOKEN: &str = "ghp_fakeDemoToken0000000000000000000000000";
/// The repository every fake starts with.
pub const DEMO_REPO: &str = "octo-org/hello-world";

/// How the fake answers every request until told otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Like github.com: answers for the valid token, 401 otherwise.
    Normal,
    /// 429 after a secondary rate limit, with `Retry-After: <seconds>` when given.
    TooManyRequests { retry_after_secs: Option<u64> },
    /// 403 with the primary limit spent: `x-ratelimit-remaining: 0` and a reset this many
    /// seconds from now.
    PrimaryLimitExhausted { reset_in_secs: u64 },
    /// 503, as GitHub answers during an outage.
    Unavailable,
}

/// A failure the fake answers once, in place of one request's normal answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 429 after a secondary rate limit, `Retry-After` in seconds.
    SecondaryLimit { retry_after_secs: u64 },
    /// 403 with `x-ratelimit-remaining: 0` and the reset this many seconds from now.
    PrimaryLimit { reset_in_secs: u64 },
    /// 200 with a body that is not JSON (a proxy's error page, a cut answer).
    Malformed,
    /// 502, as GitHub answers when a request took too long.
    BadGateway,
    /// 500 with GitHub's JSON error body.
    ServerError,
    /// 403 after a secondary rate limit (GitHub answers those with 403 or 429), with
    /// `Retry-After` in seconds when given.
    SecondaryLimitForbidden { retry_after_secs: Option<u64> },
    /// 429 with the primary limit spent (GitHub answers that with 403 or 429):
    /// `x-ratelimit-remaining: 0` and the reset this many seconds from now.
    PrimaryLimitTooManyRequests { reset_in_secs: u64 },
    /// 403 for a token an organization's SAML single sign-on has not authorized (no rate
    /// limit: requests remain).
    SamlEnforced,
    /// 403 for a fine-grained token without the permission (no rate limit: requests remain).
    NotAccessible,
    /// 200 with a JSON object that is not what was asked for (`{"message": "OK"}`): no user, no
    /// repository, no list, as a misrouted proxy or a changed API would answer.
    WrongShape,
    /// The normal answer, its `Link` pointing to another host (as a proxy in front of GitHub
    /// Enterprise with the wrong public URL would send).
    LinkOffHost,
    /// 301 with a `Location`, as GitHub answers for a renamed or transferred repository: a
    /// repository's paths move to `/repositories/{id}/...`, any other path to itself.
    MovedPermanently,
}

/// A request as the fake received it, without its credential: see [`FakeGithub::received`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub method: String,
    /// As sent, percent-encoding kept.
    pub path: String,
    /// Decoded query parameters (`access_token` and `client_secret` left out).
    pub query: BTreeMap<String, String>,
    /// Lowercase names; `Authorization`, `Proxy-Authorization` and `Cookie` left out.
    pub headers: BTreeMap<String, String>,
    /// The scheme of `Authorization` (`Bearer`, `token`), never the credential.
    pub auth_scheme: Option<String>,
}

impl Received {
    fn of(request: &FakeRequest) -> Self {
        const CREDENTIALS: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in &request.headers {
            if CREDENTIALS.contains(&name.as_str()) {
                continue;
            }
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            headers
                .entry(name.as_str().to_owned())
                .and_modify(|v| {
                    v.push_str(", ");
                    v.push_str(&value);
                })
                .or_insert(value);
        }
        Self {
            method: request.method.clone(),
            path: request.path.clone(),
            query: request
                .query
                .iter()
                .filter(|(k, _)| k.as_str() != "access_token" && k.as_str() != "client_secret")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            headers,
            auth_scheme: request
                .header("authorization")
                .map(|v| v.split(' ').next().unwrap_or_default().to_owned()),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// A query parameter's decoded value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }
}

struct Armed {
    path_suffix: String,
    /// Matching requests still answered normally before the fault.
    skip: usize,
    fault: Fault,
}

struct Shared {
    valid_token: Mutex<String>,
    revoked: Mutex<bool>,
    mode: Mutex<Mode>,
    faults: Mutex<VecDeque<Armed>>,
    requests: AtomicUsize,
    received: Mutex<Vec<Received>>,
    /// Where the API is rooted below the host (`""`, or e.g. `/api/v3`).
    prefix: Mutex<String>,
    workspace: Arc<Mutex<Workspace>>,
}

pub struct FakeGithub {
    /// Where the fake listens, e.g. `http://127.0.0.1:54321`; the value for
    /// `SOURCE_GITHUB_BASE_URL`.
    pub base_url: String,
    shared: Arc<Shared>,
    server: FakeServer,
}

impl FakeGithub {
    /// Serves the demo workspace on a random port of 127.0.0.1 until dropped.
    pub async fn start(valid_token: &str) -> FakeGithub {
        Self::start_with(valid_token, Workspace::demo()).await
    }

    /// Serves `workspace` on a random port of 127.0.0.1 until dropped.
    pub async fn start_with(valid_token: &str, workspace: Workspace) -> FakeGithub {
        let (shared, handler) = Self::parts(valid_token, workspace);
        let server = FakeServer::start(handler).await;
        Self::assemble(shared, server)
    }

    /// Serves `workspace` on `addr` (`make fakes`).
    pub async fn start_on(
        addr: SocketAddr,
        valid_token: &str,
        workspace: Workspace,
    ) -> std::io::Result<FakeGithub> {
        let (shared, handler) = Self::parts(valid_token, workspace);
        let server = FakeServer::start_on(addr, handler).await?;
        Ok(Self::assemble(shared, server))
    }

    fn parts(valid_token: &str, workspace: Workspace) -> (Arc<Shared>, Handler) {
        let shared = Arc::new(Shared {
            valid_token: Mutex::new(valid_token.to_owned()),
            revoked: Mutex::new(false),
            mode: Mutex::new(Mode::Normal),
            faults: Mutex::new(VecDeque::new()),
            requests: AtomicUsize::new(0),
            received: Mutex::new(Vec::new()),
            prefix: Mutex::new(String::new()),
            workspace: Arc::new(Mutex::new(workspace)),
        });
        let handling = Arc::clone(&shared);
        let handler: Handler = Arc::new(move |request: &FakeRequest| answer(&handling, request));
        (shared, handler)
    }

    fn assemble(shared: Arc<Shared>, server: FakeServer) -> FakeGithub {
        FakeGithub {
            base_url: server.base_url.clone(),
            shared,
            server,
        }
    }

    /// The repositories the fake serves; change them between syncs.
    pub fn workspace(&self) -> Arc<Mutex<Workspace>> {
        Arc::clone(&self.shared.workspace)
    }

    /// One repository of the workspace, locked; panics when it does not exist.
    pub fn repo(&self, full_name: &str) -> RepoGuard<'_> {
        let guard = self.shared.workspace.lock().expect("workspace lock");
        assert!(
            guard.repos.contains_key(full_name),
            "no repository {full_name}"
        );
        RepoGuard {
            guard,
            name: full_name.to_owned(),
        }
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().expect("mode lock") = mode;
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

    /// From now on the token is refused (401 "Bad credentials"), as after a user revokes it.
    pub fn revoke_token(&self) {
        *self.shared.revoked.lock().expect("revoked lock") = true;
    }

    /// From now on `token` is the one token accepted (the one before is refused), as after the
    /// user issued a new token.
    pub fn set_valid_token(&self, token: &str) {
        *self.shared.valid_token.lock().expect("token lock") = token.to_owned();
    }

    /// Every later answer is sent this long after its request came in (a slow GitHub).
    pub fn answer_after(&self, delay: std::time::Duration) {
        self.server.answer_after(delay);
    }

    /// From now on the API is served below `prefix` (e.g. `/api/v3`, as GitHub Enterprise
    /// Server roots it), its links too; a path outside it is a 404.
    pub fn serve_under(&self, prefix: &str) {
        *self.shared.prefix.lock().expect("prefix lock") = prefix.trim_end_matches('/').to_owned();
    }

    /// The next request whose path ends with `path_suffix` (e.g. `/issues`) gets `fault`
    /// instead of its answer, once. A suffix ending in `/` (e.g. `/git/blobs/`) matches the
    /// paths below it.
    pub fn fail_next(&self, path_suffix: &str, fault: Fault) {
        self.fail_after(path_suffix, 0, fault);
    }

    /// Like [`FakeGithub::fail_next`], after `skip` matching requests were answered normally.
    pub fn fail_after(&self, path_suffix: &str, skip: usize, fault: Fault) {
        self.shared
            .faults
            .lock()
            .expect("faults lock")
            .push_back(Armed {
                path_suffix: path_suffix.to_owned(),
                skip,
                fault,
            });
    }

    /// How many requests reached the fake, whatever it answered.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// `"GET /user"`-style lines of the requests received, in order.
    pub fn paths(&self) -> Vec<String> {
        self.server.requests()
    }

    /// The requests received, in order, with their query and headers but no credential.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().expect("received lock").clone()
    }
}

/// A locked repository of the workspace (see [`FakeGithub::repo`]).
pub struct RepoGuard<'a> {
    guard: MutexGuard<'a, Workspace>,
    name: String,
}

impl std::ops::Deref for RepoGuard<'_> {
    type Target = Repo;
    fn deref(&self) -> &Repo {
        &self.guard.repos[&self.name]
    }
}

impl std::ops::DerefMut for RepoGuard<'_> {
    fn deref_mut(&mut self) -> &mut Repo {
        self.guard
            .repos
            .get_mut(&self.name)
            .expect("the repository")
    }
}

#[cfg(test)]
mod tests;

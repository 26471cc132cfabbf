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

use crate::server::{FakeRequest, FakeResponse, FakeServer, Handler};
use base64::Engine;
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

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

// --- the workspace ---

/// The repositories the fake serves.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The largest `per_page` honoured (GitHub's is 100); tests lower it to get many pages.
    pub max_per_page: usize,
    /// Page links name the repository by id (`/repositories/{id}/issues?...`), as github.com's
    /// do; `false` (the default) links below the path asked.
    pub link_by_repository_id: bool,
    pub repos: BTreeMap<String, Repo>,
}

impl Default for Workspace {
    fn default() -> Self {
        Self {
            max_per_page: MAX_PER_PAGE,
            link_by_repository_id: false,
            repos: BTreeMap::new(),
        }
    }
}

impl Workspace {
    /// `octo-org/hello-world` with a few issues, a pull request, comments and files.
    pub fn demo() -> Self {
        let mut repo = Repo::new(DEMO_REPO, "main");
        repo.description = Some("My first repository on GitHub!".into());
        repo.commit(
            "main",
            "Initial commit",
            &[
                ("README.md", Some(b"# Hello World\n\nA demo repository.\n")),
                (
                    "src/main.rs",
                    Some(b"fn main() {\n    println!(\"Hello, world!\");\n}\n"),
                ),
                ("docs/guide.md", Some(b"# Guide\n\nRun `cargo run`.\n")),
                ("assets/logo.png", Some(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")),
            ],
        );
        let bug = repo.add_issue("Found a bug", "The greeting is missing a comma.");
        repo.add_comment(bug, "I can reproduce this on main.");
        let feature = repo.add_issue("Add a --name flag", "Greet someone other than the world.");
        let fix = repo.add_pull_request("Fix the greeting", "Closes #1.");
        repo.add_comment(fix, "Looks good to me.");
        repo.close_issue(feature);
        let mut workspace = Self::default();
        workspace.add_repo(repo);
        workspace
    }

    pub fn add_repo(&mut self, repo: Repo) {
        self.repos.insert(repo.full_name.clone(), repo);
    }
}

/// One repository: its metadata, issues and pull requests, comments, and git history.
#[derive(Debug, Clone)]
pub struct Repo {
    pub full_name: String,
    pub id: u64,
    pub description: Option<String>,
    pub private: bool,
    pub default_branch: String,
    pub created_at: DateTime<Utc>,
    /// Branch name to head commit sha.
    pub branches: BTreeMap<String, String>,
    pub commits: BTreeMap<String, Commit>,
    /// By number; pull requests share the numbering, as on GitHub.
    pub issues: BTreeMap<u64, Issue>,
    /// By id.
    pub comments: BTreeMap<u64, Comment>,
    /// `false` turns the repository's issues off: its issue lists answer 410, as on GitHub.
    pub has_issues: bool,
    /// Advances a minute at every change, so each change has a later `updated_at`.
    clock: DateTime<Utc>,
    next_id: u64,
}

#[derive(Debug, Clone)]
pub struct Commit {
    pub sha: String,
    pub parent: Option<String>,
    pub message: String,
    pub at: DateTime<Utc>,
    /// Path to content.
    pub files: BTreeMap<String, Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct Issue {
    pub number: u64,
    pub id: u64,
    pub title: String,
    pub body: Option<String>,
    pub author: String,
    pub labels: Vec<String>,
    pub pull_request: bool,
    pub closed: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct Comment {
    pub id: u64,
    pub issue: u64,
    pub body: String,
    pub author: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Repo {
    /// A repository with no commit yet (GitHub's "empty repository").
    pub fn new(full_name: &str, default_branch: &str) -> Self {
        let seed = digest(full_name.as_bytes()) % 1_000_000;
        let created_at = Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0).unwrap();
        Self {
            full_name: full_name.to_owned(),
            id: 100_000_000 + seed,
            description: None,
            private: false,
            default_branch: default_branch.to_owned(),
            created_at,
            branches: BTreeMap::new(),
            commits: BTreeMap::new(),
            issues: BTreeMap::new(),
            comments: BTreeMap::new(),
            has_issues: true,
            clock: created_at,
            next_id: 1_000_000 + seed * 1000,
        }
    }

    fn tick(&mut self) -> DateTime<Utc> {
        self.clock += Duration::minutes(1);
        self.clock
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn open(&mut self, title: &str, body: &str, pull_request: bool) -> u64 {
        let number = self.issues.keys().next_back().map_or(1, |n| n + 1);
        let at = self.tick();
        let id = self.id();
        self.issues.insert(
            number,
            Issue {
                number,
                id,
                title: title.to_owned(),
                body: (!body.is_empty()).then(|| body.to_owned()),
                author: "octocat".into(),
                labels: Vec::new(),
                pull_request,
                closed: false,
                created_at: at,
                updated_at: at,
                closed_at: None,
            },
        );
        number
    }

    /// Opens an issue; answers its number.
    pub fn add_issue(&mut self, title: &str, body: &str) -> u64 {
        self.open(title, body, false)
    }

    /// Opens a pull request; answers its number.
    pub fn add_pull_request(&mut self, title: &str, body: &str) -> u64 {
        self.open(title, body, true)
    }

    /// Changes an issue or pull request, which moves its `updated_at`.
    pub fn edit_issue(&mut self, number: u64, change: impl FnOnce(&mut Issue)) {
        let at = self.tick();
        let issue = self.issues.get_mut(&number).expect("no such issue");
        change(issue);
        issue.updated_at = at;
    }

    pub fn close_issue(&mut self, number: u64) {
        let at = self.tick();
        self.edit_issue(number, |issue| {
            issue.closed = true;
            issue.closed_at = Some(at);
        });
    }

    /// Deletes an issue and its comments (what an admin can do on GitHub).
    pub fn delete_issue(&mut self, number: u64) {
        self.issues.remove(&number);
        self.comments.retain(|_, c| c.issue != number);
    }

    /// Comments on an issue or pull request; answers the comment's id. Like GitHub, this moves
    /// the issue's `updated_at` too.
    pub fn add_comment(&mut self, issue: u64, body: &str) -> u64 {
        let at = self.tick();
        let id = self.id();
        self.comments.insert(
            id,
            Comment {
                id,
                issue,
                body: body.to_owned(),
                author: "hubot".into(),
                created_at: at,
                updated_at: at,
            },
        );
        self.issues
            .get_mut(&issue)
            .expect("no such issue")
            .updated_at = at;
        id
    }

    pub fn edit_comment(&mut self, id: u64, body: &str) {
        let at = self.tick();
        let comment = self.comments.get_mut(&id).expect("no such comment");
        comment.body = body.to_owned();
        comment.updated_at = at;
    }

    pub fn delete_comment(&mut self, id: u64) {
        self.comments.remove(&id);
    }

    /// Commits on top of `branch` (creating it from nothing when new): each change writes a
    /// file (`Some(content)`) or removes it (`None`). Answers the new commit's sha.
    pub fn commit(
        &mut self,
        branch: &str,
        message: &str,
        changes: &[(&str, Option<&[u8]>)],
    ) -> String {
        let parent = self.branches.get(branch).cloned();
        let mut files = parent
            .as_ref()
            .map(|sha| self.commits[sha].files.clone())
            .unwrap_or_default();
        for (path, content) in changes {
            match content {
                Some(content) => {
                    files.insert((*path).to_owned(), content.to_vec());
                }
                None => {
                    files.remove(*path);
                }
            }
        }
        let at = self.tick();
        let sha = sha_of(&[
            parent.as_deref().unwrap_or("").as_bytes(),
            message.as_bytes(),
            tree_sha(&files).as_bytes(),
            at.to_rfc3339().as_bytes(),
        ]);
        self.commits.insert(
            sha.clone(),
            Commit {
                sha: sha.clone(),
                parent,
                message: message.to_owned(),
                at,
                files,
            },
        );
        self.branches.insert(branch.to_owned(), sha.clone());
        sha
    }

    /// Rewrites `branch` as a force-push does: a new commit on top of the head's parent (or a
    /// new root commit), `changes` applied to the parent's files, takes the head's place. The
    /// old head still answers by its sha until [`Repo::garbage_collect`]. Answers the new sha.
    pub fn force_push(
        &mut self,
        branch: &str,
        message: &str,
        changes: &[(&str, Option<&[u8]>)],
    ) -> String {
        match self.head(branch).and_then(|c| c.parent.clone()) {
            Some(parent) => {
                self.branches.insert(branch.to_owned(), parent);
            }
            None => {
                self.branches.remove(branch);
            }
        }
        self.commit(branch, message, changes)
    }

    /// Drops the commits no branch reaches (what GitHub does, some time after a force-push):
    /// their shas, trees and comparisons answer 404 from then on.
    pub fn garbage_collect(&mut self) {
        let mut reachable = BTreeSet::new();
        for head in self.branches.values() {
            let mut at = Some(head.clone());
            while let Some(sha) = at {
                at = self.commits.get(&sha).and_then(|c| c.parent.clone());
                reachable.insert(sha);
            }
        }
        self.commits.retain(|sha, _| reachable.contains(sha));
    }

    /// The head commit of a branch.
    pub fn head(&self, branch: &str) -> Option<&Commit> {
        self.commits.get(self.branches.get(branch)?)
    }

    fn owner(&self) -> &str {
        self.full_name.split_once('/').map_or("", |(o, _)| o)
    }

    fn updated_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    /// A commit by sha, or the head of a branch by name.
    fn resolve(&self, reference: &str) -> Option<&Commit> {
        self.commits.get(reference).or_else(|| self.head(reference))
    }

    fn is_ancestor<'a>(&'a self, ancestor: &str, mut of: &'a str) -> bool {
        loop {
            if of == ancestor {
                return true;
            }
            match self.commits.get(of).and_then(|c| c.parent.as_deref()) {
                Some(parent) => of = parent,
                None => return false,
            }
        }
    }
}

// --- shas: deterministic 40-hex ids, the same content giving the same id (as in git) ---

fn digest(bytes: &[u8]) -> u64 {
    // FNV-1a: enough to tell contents apart in a fake.
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn sha_of(parts: &[&[u8]]) -> String {
    let mut joined = Vec::new();
    for part in parts {
        joined.extend_from_slice(part);
        joined.push(0);
    }
    let a = digest(&joined);
    let b = digest(&[joined.as_slice(), b"b"].concat());
    let c = digest(&[joined.as_slice(), b"c"].concat());
    format!("{a:016x}{b:016x}{:08x}", c >> 32)
}

/// The sha the fake gives a file's content (its blob), as the tree and blob answers name it.
pub fn blob_sha(content: &[u8]) -> String {
    sha_of(&[b"blob", content])
}

impl Commit {
    /// The sha of the commit's tree, as the branch and tree answers name it.
    pub fn tree_sha(&self) -> String {
        tree_sha(&self.files)
    }
}

fn tree_sha(files: &BTreeMap<String, Vec<u8>>) -> String {
    let mut listing = Vec::new();
    for (path, content) in files {
        listing.extend_from_slice(path.as_bytes());
        listing.extend_from_slice(blob_sha(content).as_bytes());
    }
    sha_of(&[b"tree", &listing])
}

/// Every directory of a tree, e.g. `src` and `src/bin` for `src/bin/x.rs`.
fn directories(files: &BTreeMap<String, Vec<u8>>) -> BTreeSet<String> {
    let mut dirs = BTreeSet::new();
    for path in files.keys() {
        let mut at = path.as_str();
        while let Some((dir, _)) = at.rsplit_once('/') {
            dirs.insert(dir.to_owned());
            at = dir;
        }
    }
    dirs
}

// --- answering ---

fn answer(shared: &Shared, request: &FakeRequest) -> FakeResponse {
    let count = shared.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let remaining = HOURLY_LIMIT.saturating_sub(count);
    shared
        .received
        .lock()
        .expect("received lock")
        .push(Received::of(request));
    match *shared.mode.lock().expect("mode lock") {
        Mode::Normal => {}
        Mode::TooManyRequests { retry_after_secs } => {
            return secondary_limit(retry_after_secs);
        }
        Mode::PrimaryLimitExhausted { reset_in_secs } => return primary_limit(reset_in_secs),
        Mode::Unavailable => {
            return FakeResponse::text(503, "text/plain", "Service Unavailable");
        }
    }
    let prefix = shared.prefix.lock().expect("prefix lock").clone();
    let fault = take_fault(shared, &request.path);
    if let Some(fault) = fault.filter(|f| *f != Fault::LinkOffHost) {
        return faulty(shared, request, &prefix, fault, remaining);
    }
    let token_ok = !*shared.revoked.lock().expect("revoked lock")
        && is_valid(request, &shared.valid_token.lock().expect("token lock"));
    if !token_ok {
        return with_rate_limit(error(401, "Bad credentials", DOCS), remaining, 3600);
    }
    // The path below the API root; `None` outside it.
    let below_root = request
        .path
        .strip_prefix(prefix.as_str())
        .filter(|rest| rest.starts_with('/'));
    let mut response = match below_root {
        Some(path) if request.method == "GET" => {
            let workspace = shared.workspace.lock().expect("workspace lock");
            route(&workspace, request, path, &prefix)
        }
        _ => error(404, "Not Found", DOCS),
    };
    if fault == Some(Fault::LinkOffHost) {
        let root = root_of(request, "");
        for (name, value) in &mut response.headers {
            if name.eq_ignore_ascii_case("link") {
                *value = value.replace(&root, "https://elsewhere.example");
            }
        }
    }
    with_rate_limit(response, remaining, 3600)
}

/// `http://127.0.0.1:port` and the API's prefix, from the request's `Host` (as GitHub's links
/// use its own host).
fn root_of(request: &FakeRequest, prefix: &str) -> String {
    let host = request.header("host").unwrap_or("127.0.0.1");
    format!("http://{host}{prefix}")
}

/// The answer of an armed fault, in place of the request's own.
fn faulty(
    shared: &Shared,
    request: &FakeRequest,
    prefix: &str,
    fault: Fault,
    remaining: usize,
) -> FakeResponse {
    match fault {
        Fault::SecondaryLimit { retry_after_secs } => secondary_limit(Some(retry_after_secs)),
        Fault::PrimaryLimit { reset_in_secs } => primary_limit(reset_in_secs),
        Fault::Malformed => with_rate_limit(
            FakeResponse::text(
                200,
                "application/json; charset=utf-8",
                "[{\"id\": 1, \"title\": \"cut off",
            ),
            remaining,
            3600,
        ),
        Fault::BadGateway => FakeResponse::text(
            502,
            "text/html",
            "<html><body>502 Bad Gateway</body></html>",
        ),
        Fault::ServerError => with_rate_limit(error(500, "Server Error", DOCS), remaining, 3600),
        Fault::SecondaryLimitForbidden { retry_after_secs } => {
            let mut response = error(
                403,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you \
                 try again.",
                RATE_LIMIT_DOCS,
            );
            if let Some(seconds) = retry_after_secs {
                response = response.with_header("retry-after", seconds);
            }
            with_rate_limit(response, remaining, 3600)
        }
        Fault::PrimaryLimitTooManyRequests { reset_in_secs } => {
            let response = error(
                429,
                "API rate limit exceeded for user ID 583231.",
                RATE_LIMIT_DOCS,
            );
            with_rate_limit(response, 0, reset_in_secs)
        }
        Fault::SamlEnforced => with_rate_limit(
            error(
                403,
                "Resource protected by organization SAML enforcement. You must grant your \
                 Personal Access token access to this organization.",
                "https://docs.github.com/articles/authenticating-to-a-github-organization-with-saml-single-sign-on/",
            ),
            remaining,
            3600,
        ),
        Fault::NotAccessible => with_rate_limit(
            error(
                403,
                "Resource not accessible by personal access token",
                "https://docs.github.com/rest/repos/repos#get-a-repository",
            ),
            remaining,
            3600,
        ),
        Fault::WrongShape => {
            with_rate_limit(json_response(200, &json!({"message": "OK"})), remaining, 3600)
        }
        Fault::MovedPermanently => {
            let path = request.path.strip_prefix(prefix).unwrap_or(&request.path);
            let moved = path.strip_prefix("/repos/").and_then(|rest| {
                let mut parts = rest.splitn(3, '/');
                let full_name = format!("{}/{}", parts.next()?, parts.next()?);
                let rest = parts.next().map_or(String::new(), |r| format!("/{r}"));
                let workspace = shared.workspace.lock().expect("workspace lock");
                let id = workspace.repos.get(&full_name)?.id;
                Some(format!("/repositories/{id}{rest}"))
            });
            let location = format!(
                "{}{}",
                root_of(request, prefix),
                moved.as_deref().unwrap_or(path)
            );
            let body = json!({
                "message": "Moved Permanently",
                "url": location,
                "documentation_url": DOCS,
            });
            with_rate_limit(
                json_response(301, &body).with_header("location", &location),
                remaining,
                3600,
            )
        }
        Fault::LinkOffHost => unreachable!("answered with the normal answer"),
    }
}

fn take_fault(shared: &Shared, path: &str) -> Option<Fault> {
    let mut faults = shared.faults.lock().expect("faults lock");
    let index = faults.iter().position(|armed| {
        let suffix = armed.path_suffix.as_str();
        path.ends_with(suffix) || (suffix.ends_with('/') && path.contains(suffix))
    })?;
    let armed = &mut faults[index];
    if armed.skip > 0 {
        armed.skip -= 1;
        return None;
    }
    faults.remove(index).map(|armed| armed.fault)
}

fn secondary_limit(retry_after_secs: Option<u64>) -> FakeResponse {
    let mut response = error(
        429,
        "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
        RATE_LIMIT_DOCS,
    );
    if let Some(seconds) = retry_after_secs {
        response = response.with_header("retry-after", seconds);
    }
    with_rate_limit(response, HOURLY_LIMIT - 1, 3600)
}

fn primary_limit(reset_in_secs: u64) -> FakeResponse {
    let response = error(
        403,
        "API rate limit exceeded for user ID 583231.",
        RATE_LIMIT_DOCS,
    );
    with_rate_limit(response, 0, reset_in_secs)
}

/// `Authorization: Bearer <token>` or the older `token <token>`, the scheme in any case.
fn is_valid(request: &FakeRequest, valid_token: &str) -> bool {
    match request
        .header("authorization")
        .and_then(|v| v.split_once(' '))
    {
        Some((scheme, token)) => {
            (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
                && token.trim() == valid_token
        }
        None => false,
    }
}

/// Answers `path`, the request's path below the API root (`prefix`).
fn route(workspace: &Workspace, request: &FakeRequest, path: &str, prefix: &str) -> FakeResponse {
    if path == "/user" {
        return json_response(200, &user()).with_header("x-oauth-scopes", "repo, read:user");
    }
    // `/repos/{owner}/{name}/...`, or `/repositories/{id}/...` as GitHub's links name it.
    let (repo, sub) = if let Some(rest) = path.strip_prefix("/repos/") {
        let mut segments = rest.splitn(3, '/');
        let (Some(owner), Some(name)) = (segments.next(), segments.next()) else {
            return error(404, "Not Found", DOCS);
        };
        (
            workspace.repos.get(&format!("{owner}/{name}")),
            segments.next(),
        )
    } else if let Some(rest) = path.strip_prefix("/repositories/") {
        let mut segments = rest.splitn(2, '/');
        let id = segments.next().and_then(|id| id.parse::<u64>().ok());
        (
            workspace.repos.values().find(|r| Some(r.id) == id),
            segments.next(),
        )
    } else {
        return error(404, "Not Found", DOCS);
    };
    // A repository the token cannot see is a 404, exactly like one that does not exist.
    let Some(repo) = repo else {
        return error(
            404,
            "Not Found",
            "https://docs.github.com/rest/repos/repos#get-a-repository",
        );
    };
    let link_path = if workspace.link_by_repository_id {
        match sub {
            Some(sub) if !sub.is_empty() => format!("/repositories/{}/{sub}", repo.id),
            _ => format!("/repositories/{}", repo.id),
        }
    } else {
        path.to_owned()
    };
    let api = Api::new(request, repo, prefix, link_path);
    match sub {
        None | Some("") => json_response(200, &api.repository()),
        Some("issues" | "issues/comments") if !repo.has_issues => error(
            410,
            "Issues are disabled for this repo",
            "https://docs.github.com/rest/issues/issues#list-repository-issues",
        ),
        Some("issues") => api.page(request, workspace, api.issues(request)),
        Some("issues/comments") => api.page(request, workspace, api.comments(request)),
        Some(sub) => {
            if let Some(branch) = sub.strip_prefix("branches/") {
                // The name's parts come percent-encoded, its `/` as they are.
                match percent_decode(branch) {
                    Some(branch) => api.branch(&branch),
                    None => error(404, "Branch not found", DOCS),
                }
            } else if let Some(sha) = sub.strip_prefix("git/trees/") {
                api.tree(sha, request.query.contains_key("recursive"))
            } else if let Some(sha) = sub.strip_prefix("git/blobs/") {
                api.blob(sha)
            } else if let Some(basehead) = sub.strip_prefix("compare/") {
                api.compare(basehead)
            } else {
                error(404, "Not Found", DOCS)
            }
        }
    }
}

/// Answers about one repository, with URLs rooted where the request was sent.
struct Api<'a> {
    repo: &'a Repo,
    /// `http://127.0.0.1:port` and the API's prefix, from the request's `Host` (as GitHub's
    /// links use its own host).
    root: String,
    /// The path below `root` the page links name.
    link_path: String,
    html: String,
}

impl<'a> Api<'a> {
    fn new(request: &FakeRequest, repo: &'a Repo, prefix: &str, link_path: String) -> Self {
        Self {
            repo,
            root: root_of(request, prefix),
            link_path,
            html: format!("https://github.com/{}", repo.full_name),
        }
    }

    fn api(&self, rest: &str) -> String {
        format!("{}/repos/{}{rest}", self.root, self.repo.full_name)
    }

    fn owner(&self) -> Value {
        account(self.repo.owner(), 9_919, "Organization")
    }

    fn repository(&self) -> Value {
        let r = self.repo;
        let name = r.full_name.split_once('/').map_or("", |(_, n)| n);
        json!({
            "id": r.id,
            "node_id": format!("R_kgDO{}", r.id),
            "name": name,
            "full_name": r.full_name,
            "private": r.private,
            "owner": self.owner(),
            "html_url": self.html,
            "description": r.description,
            "fork": false,
            "url": self.api(""),
            "issues_url": self.api("/issues{/number}"),
            "git_url": format!("git://github.com/{}.git", r.full_name),
            "clone_url": format!("{}.git", self.html),
            "homepage": null,
            "size": r.commits.len() * 12,
            "stargazers_count": 80,
            "watchers_count": 80,
            "language": "Rust",
            "has_issues": r.has_issues,
            "forks_count": 9,
            "archived": false,
            "disabled": false,
            "open_issues_count": r.issues.values().filter(|i| !i.closed).count(),
            "license": {"key": "mit", "name": "MIT License", "spdx_id": "MIT"},
            "topics": ["demo", "octocat"],
            "visibility": if r.private { "private" } else { "public" },
            "forks": 9,
            "open_issues": r.issues.values().filter(|i| !i.closed).count(),
            "watchers": 80,
            "default_branch": r.default_branch,
            "permissions": {"admin": false, "maintain": false, "push": false, "triage": false, "pull": true},
            "created_at": time(r.created_at),
            "updated_at": time(r.updated_at()),
            "pushed_at": time(r.clock),
            "subscribers_count": 42,
            "network_count": 9,
        })
    }

    /// `state` (`open` default, `closed`, `all`), `since`, `sort` (`created` default,
    /// `updated`, `comments`) and `direction` (`desc` default).
    fn issues(&self, request: &FakeRequest) -> Vec<Value> {
        let q = &request.query;
        let state = q.get("state").map_or("open", String::as_str);
        let since = q.get("since").and_then(|s| parse_time(s));
        let mut issues: Vec<&Issue> = self
            .repo
            .issues
            .values()
            .filter(|i| match state {
                "all" => true,
                "closed" => i.closed,
                _ => !i.closed,
            })
            .filter(|i| since.is_none_or(|s| i.updated_at >= s))
            .collect();
        let by_updated = q.get("sort").is_some_and(|s| s == "updated");
        issues.sort_by_key(|i| {
            if by_updated {
                (i.updated_at, i.number)
            } else {
                (i.created_at, i.number)
            }
        });
        if q.get("direction").is_none_or(|d| d != "asc") {
            issues.reverse();
        }
        issues.into_iter().map(|i| self.issue(i)).collect()
    }

    fn issue(&self, i: &Issue) -> Value {
        let comments = self
            .repo
            .comments
            .values()
            .filter(|c| c.issue == i.number)
            .count();
        let mut issue = json!({
            "url": self.api(&format!("/issues/{}", i.number)),
            "repository_url": self.api(""),
            "comments_url": self.api(&format!("/issues/{}/comments", i.number)),
            "html_url": format!("{}/{}/{}", self.html, if i.pull_request { "pull" } else { "issues" }, i.number),
            "id": i.id,
            "node_id": format!("I_kwDO{}", i.id),
            "number": i.number,
            "title": i.title,
            "user": account(&i.author, 583_231, "User"),
            "labels": i.labels.iter().enumerate().map(|(n, name)| json!({
                "id": 208_045_946 + n as u64,
                "name": name,
                "color": "f29513",
                "default": false,
                "description": null,
            })).collect::<Vec<_>>(),
            "state": if i.closed { "closed" } else { "open" },
            "locked": false,
            "assignee": null,
            "assignees": [],
            "milestone": null,
            "comments": comments,
            "created_at": time(i.created_at),
            "updated_at": time(i.updated_at),
            "closed_at": i.closed_at.map(time),
            "author_association": "MEMBER",
            "active_lock_reason": null,
            "body": i.body,
            "closed_by": null,
            "reactions": {"url": self.api(&format!("/issues/{}/reactions", i.number)), "total_count": 0, "+1": 0, "-1": 0},
            "timeline_url": self.api(&format!("/issues/{}/timeline", i.number)),
            "state_reason": i.closed.then_some("completed"),
        });
        if i.pull_request {
            issue["draft"] = json!(false);
            issue["pull_request"] = json!({
                "url": self.api(&format!("/pulls/{}", i.number)),
                "html_url": format!("{}/pull/{}", self.html, i.number),
                "diff_url": format!("{}/pull/{}.diff", self.html, i.number),
                "patch_url": format!("{}/pull/{}.patch", self.html, i.number),
                "merged_at": i.closed_at.map(time),
            });
        }
        issue
    }

    /// `since`, `sort` (`created` default, `updated`) and `direction` (`asc` default here).
    fn comments(&self, request: &FakeRequest) -> Vec<Value> {
        let q = &request.query;
        let since = q.get("since").and_then(|s| parse_time(s));
        let mut comments: Vec<&Comment> = self
            .repo
            .comments
            .values()
            .filter(|c| since.is_none_or(|s| c.updated_at >= s))
            .collect();
        let by_updated = q.get("sort").is_some_and(|s| s == "updated");
        comments.sort_by_key(|c| {
            if by_updated {
                (c.updated_at, c.id)
            } else {
                (c.created_at, c.id)
            }
        });
        if q.get("direction").is_some_and(|d| d == "desc") {
            comments.reverse();
        }
        comments
            .into_iter()
            .map(|c| {
                let kind = match self.repo.issues.get(&c.issue) {
                    Some(i) if i.pull_request => "pull",
                    _ => "issues",
                };
                json!({
                    "url": self.api(&format!("/issues/comments/{}", c.id)),
                    "html_url": format!("{}/{kind}/{}#issuecomment-{}", self.html, c.issue, c.id),
                    "issue_url": self.api(&format!("/issues/{}", c.issue)),
                    "id": c.id,
                    "node_id": format!("IC_kwDO{}", c.id),
                    "user": account(&c.author, 108_110, "User"),
                    "created_at": time(c.created_at),
                    "updated_at": time(c.updated_at),
                    "author_association": "CONTRIBUTOR",
                    "body": c.body,
                    "reactions": {"total_count": 0, "+1": 0, "-1": 0},
                })
            })
            .collect()
    }

    /// One page of a list, with GitHub's `Link` header. `page` counts from 1, `per_page` is
    /// capped at the workspace's maximum.
    fn page(
        &self,
        request: &FakeRequest,
        workspace: &Workspace,
        items: Vec<Value>,
    ) -> FakeResponse {
        let q = &request.query;
        let per_page = q
            .get("per_page")
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(DEFAULT_PER_PAGE)
            .clamp(1, workspace.max_per_page.max(1));
        let page = q
            .get("page")
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        let last = items.len().div_ceil(per_page).max(1);
        let body: Vec<Value> = items
            .into_iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .collect();
        let mut response = json_response(200, &Value::Array(body));
        let link_to = |n: usize| {
            let mut query = q.clone();
            query.insert("page".into(), n.to_string());
            query.insert("per_page".into(), per_page.to_string());
            let encoded: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(query.iter())
                .finish();
            format!("{}{}?{encoded}", self.root, self.link_path)
        };
        let mut links = Vec::new();
        if page > 1 {
            links.push(format!("<{}>; rel=\"prev\"", link_to(page - 1)));
        }
        if page < last {
            links.push(format!("<{}>; rel=\"next\"", link_to(page + 1)));
            links.push(format!("<{}>; rel=\"last\"", link_to(last)));
        }
        if page > 1 {
            links.push(format!("<{}>; rel=\"first\"", link_to(1)));
        }
        if !links.is_empty() {
            response = response.with_header("link", links.join(", "));
        }
        response
    }

    fn commit_json(&self, c: &Commit) -> Value {
        json!({
            "sha": c.sha,
            "node_id": format!("C_kwDO{}", &c.sha[..12]),
            "commit": {
                "author": {"name": "Monalisa Octocat", "email": "mona@github.com", "date": time(c.at)},
                "committer": {"name": "Monalisa Octocat", "email": "mona@github.com", "date": time(c.at)},
                "message": c.message,
                "tree": {"sha": tree_sha(&c.files), "url": self.api(&format!("/git/trees/{}", tree_sha(&c.files)))},
                "url": self.api(&format!("/git/commits/{}", c.sha)),
                "comment_count": 0,
            },
            "url": self.api(&format!("/commits/{}", c.sha)),
            "html_url": format!("{}/commit/{}", self.html, c.sha),
            "parents": c.parent.iter().map(|p| json!({"sha": p, "url": self.api(&format!("/commits/{p}"))})).collect::<Vec<_>>(),
        })
    }

    fn branch(&self, name: &str) -> FakeResponse {
        match self.repo.head(name) {
            Some(head) => json_response(
                200,
                &json!({
                    "name": name,
                    "commit": self.commit_json(head),
                    "_links": {"self": self.api(&format!("/branches/{name}")), "html": format!("{}/tree/{name}", self.html)},
                    "protected": false,
                    "protection_url": self.api(&format!("/branches/{name}/protection")),
                }),
            ),
            None => error(
                404,
                "Branch not found",
                "https://docs.github.com/rest/branches/branches#get-a-branch",
            ),
        }
    }

    /// A tree by its sha or by a commit's (GitHub takes both); recursive lists every
    /// directory and file below, directories included.
    fn tree(&self, sha: &str, recursive: bool) -> FakeResponse {
        if self.repo.commits.is_empty() {
            return error(409, "Git Repository is empty.", DOCS);
        }
        let Some(commit) = self.repo.commits.get(sha).or_else(|| {
            self.repo
                .commits
                .values()
                .find(|c| tree_sha(&c.files) == sha)
        }) else {
            return error(
                404,
                "Not Found",
                "https://docs.github.com/rest/git/trees#get-a-tree",
            );
        };
        let mut entries: Vec<(String, Value)> = Vec::new();
        for dir in directories(&commit.files) {
            if recursive || !dir.contains('/') {
                let below: BTreeMap<String, Vec<u8>> = commit
                    .files
                    .iter()
                    .filter(|(p, _)| p.starts_with(&format!("{dir}/")))
                    .map(|(p, c)| (p.clone(), c.clone()))
                    .collect();
                let sha = tree_sha(&below);
                entries.push((
                    dir.clone(),
                    json!({"path": dir, "mode": "040000", "type": "tree", "sha": sha, "url": self.api(&format!("/git/trees/{sha}"))}),
                ));
            }
        }
        for (path, content) in &commit.files {
            if recursive || !path.contains('/') {
                let sha = blob_sha(content);
                entries.push((
                    path.clone(),
                    json!({"path": path, "mode": "100644", "type": "blob", "sha": sha, "size": content.len(), "url": self.api(&format!("/git/blobs/{sha}"))}),
                ));
            }
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let tree = tree_sha(&commit.files);
        json_response(
            200,
            &json!({
                "sha": tree,
                "url": self.api(&format!("/git/trees/{tree}")),
                "tree": entries.into_iter().map(|(_, e)| e).collect::<Vec<_>>(),
                "truncated": false,
            }),
        )
    }

    fn blob(&self, sha: &str) -> FakeResponse {
        let found = self
            .repo
            .commits
            .values()
            .flat_map(|c| c.files.values())
            .find(|content| blob_sha(content) == sha);
        let Some(content) = found else {
            return error(
                404,
                "Not Found",
                "https://docs.github.com/rest/git/blobs#get-a-blob",
            );
        };
        // GitHub wraps the base64 at 60 characters, as git's own encoder does.
        let encoded = base64::engine::general_purpose::STANDARD.encode(content);
        let wrapped: Vec<&str> = encoded
            .as_bytes()
            .chunks(60)
            .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
            .collect();
        json_response(
            200,
            &json!({
                "sha": sha,
                "node_id": format!("B_kwDO{}", &sha[..12]),
                "size": content.len(),
                "url": self.api(&format!("/git/blobs/{sha}")),
                "content": format!("{}\n", wrapped.join("\n")),
                "encoding": "base64",
            }),
        )
    }

    /// `base...head`: the commits of head not in base and the files that differ, with the
    /// status GitHub gives (`ahead`, `behind`, `identical`, `diverged`).
    fn compare(&self, basehead: &str) -> FakeResponse {
        let Some((base, head)) = basehead.split_once("...") else {
            return error(404, "Not Found", DOCS);
        };
        let (Some(base), Some(head)) = (self.repo.resolve(base), self.repo.resolve(head)) else {
            return error(
                404,
                "Not Found",
                "https://docs.github.com/rest/commits/commits#compare-two-commits",
            );
        };
        let status = if base.sha == head.sha {
            "identical"
        } else if self.repo.is_ancestor(&base.sha, &head.sha) {
            "ahead"
        } else if self.repo.is_ancestor(&head.sha, &base.sha) {
            "behind"
        } else {
            "diverged"
        };
        let mut commits = Vec::new();
        let mut at = Some(head);
        while let Some(c) = at.filter(|c| c.sha != base.sha) {
            commits.push(self.commit_json(c));
            at = c.parent.as_ref().and_then(|p| self.repo.commits.get(p));
        }
        commits.reverse();
        let added: Vec<&String> = head
            .files
            .keys()
            .filter(|p| !base.files.contains_key(*p))
            .collect();
        let removed: Vec<&String> = base
            .files
            .keys()
            .filter(|p| !head.files.contains_key(*p))
            .collect();
        let mut renamed_from: BTreeMap<&String, &String> = BTreeMap::new();
        for new in &added {
            let sha = blob_sha(&head.files[*new]);
            if let Some(old) = removed.iter().find(|old| {
                blob_sha(&base.files[**old]) == sha && !renamed_from.values().any(|o| o == *old)
            }) {
                renamed_from.insert(new, old);
            }
        }
        let mut files = Vec::new();
        let file = |path: &str, status: &str, content: Option<&Vec<u8>>| {
            let sha = content.map(|c| blob_sha(c));
            json!({
                "sha": sha,
                "filename": path,
                "status": status,
                "additions": content.map_or(0, |c| c.iter().filter(|b| **b == b'\n').count()),
                "deletions": 0,
                "changes": 1,
                "blob_url": format!("{}/blob/{}/{path}", self.html, head.sha),
                "raw_url": format!("{}/raw/{}/{path}", self.html, head.sha),
                "contents_url": self.api(&format!("/contents/{path}?ref={}", head.sha)),
            })
        };
        for (path, content) in &head.files {
            if let Some(old) = renamed_from.get(path) {
                let mut renamed = file(path, "renamed", Some(content));
                renamed["previous_filename"] = json!(old);
                files.push(renamed);
            } else if !base.files.contains_key(path) {
                files.push(file(path, "added", Some(content)));
            } else if base.files[path] != *content {
                files.push(file(path, "modified", Some(content)));
            }
        }
        for path in removed {
            if !renamed_from.values().any(|o| *o == path) {
                let mut gone = file(path, "removed", None);
                gone["sha"] = json!(blob_sha(&base.files[path]));
                files.push(gone);
            }
        }
        json_response(
            200,
            &json!({
                "url": self.api(&format!("/compare/{basehead}")),
                "html_url": format!("{}/compare/{basehead}", self.html),
                "base_commit": self.commit_json(base),
                "merge_base_commit": self.commit_json(base),
                "status": status,
                "ahead_by": commits.len(),
                "behind_by": 0,
                "total_commits": commits.len(),
                "commits": commits,
                "files": files,
            }),
        )
    }
}

fn account(login: &str, id: u64, kind: &str) -> Value {
    json!({
        "login": login,
        "id": id,
        "node_id": format!("MDQ6VXNlcj{id}"),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"),
        "url": format!("https://api.github.com/users/{login}"),
        "html_url": format!("https://github.com/{login}"),
        "type": kind,
        "site_admin": false,
    })
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

/// `%XX` escapes decoded (nothing else: `+` is a plus in a path); `None` when not UTF-8 or an
/// escape is cut.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// GitHub's timestamps: UTC, whole seconds, `Z`.
fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// GitHub's JSON error body: `message`, `documentation_url` and the status as a string.
fn error(status: u16, message: &str, documentation_url: &str) -> FakeResponse {
    json_response(
        status,
        &json!({
            "message": message,
            "documentation_url": documentation_url,
            "status": status.to_string(),
        }),
    )
}

fn json_response(status: u16, body: &Value) -> FakeResponse {
    FakeResponse::json(status, body)
        .with_header("x-github-api-version-selected", "2022-11-28")
        .with_header("x-github-media-type", "github.v3; format=json")
}

/// The primary rate limit headers every REST answer carries.
fn with_rate_limit(response: FakeResponse, remaining: usize, reset_in_secs: u64) -> FakeResponse {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    response
        .with_header("x-ratelimit-limit", HOURLY_LIMIT)
        .with_header("x-ratelimit-remaining", remaining)
        .with_header("x-ratelimit-used", HOURLY_LIMIT - remaining)
        .with_header("x-ratelimit-reset", now + reset_in_secs)
        .with_header("x-ratelimit-resource", "core")
}

#[cfg(test)]
mod tests;

//! A fake of the Google Drive API v3 on 127.0.0.1, shaped after the public reference:
//! `GET /drive/v3/about`, `files` (`pageSize`/`pageToken`/`nextPageToken`, `q=trashed = false`,
//! `corpora=user`, `corpora=drive` with `driveId`, `corpora=allDrives`; the last two need
//! `includeItemsFromAllDrives`, and with it `corpora=user` also answers the files of shared
//! drives the user is not a member of that were shared directly with them), `files/{id}?alt=media`,
//! `files/{id}/export?mimeType=text/plain`, `drives`, `changes/startPageToken` and `changes`
//! (`nextPageToken` until `newStartPageToken`). Errors are Google's JSON error bodies: 401
//! `UNAUTHENTICATED` for a bad or revoked token, 403 `userRateLimitExceeded` (or 429
//! `rateLimitExceeded`) for rate limits, 400 `invalid` for a bad page token, 404 `notFound`.
//!
//! The workspace sits behind a mutex a test changes between syncs (add, edit, rename, trash and
//! delete files, add and remove shared drives); every change is recorded in the change log the
//! changes API reads, one entry per item (its latest change), as Drive reports them. Files carry
//! volatile fields (`viewedByMeTime`, `thumbnailLink`, `version`) that differ on every answer, as
//! Drive's do. Switches make an upcoming answer rate-limited, refused with one of Google's error
//! reasons or malformed, revoke the token, or slow every answer down. The fake remembers each
//! request's path and query, never a header.

use crate::server::{FakeRequest, FakeResponse, FakeServer, Handler};
use chrono::{DateTime, Duration, SecondsFormat, TimeZone, Utc};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

mod routes;
mod workspace;

use routes::*;
use workspace::*;
pub use workspace::{Drive, File, Workspace};

/// The token the fake accepts under `make fakes`.
pub const DEMO_TOKEN: &str = "ya29.fakeDemoGoogleDriveToken0000000000";
pub const GOOGLE_DOC: &str = "application/vnd.google-apps.document";
pub const FOLDER: &str = "application/vnd.google-apps.folder";
const OWNER_NAME: &str = "Ada Lovelace";
const OWNER_EMAIL: &str = "ada@example.com";
/// Drive's defaults and maxima of `pageSize`.
const FILES_DEFAULT_PAGE: usize = 100;
const FILES_MAX_PAGE: usize = 1000;
const DRIVES_DEFAULT_PAGE: usize = 10;
const DRIVES_MAX_PAGE: usize = 100;
const CHANGES_DEFAULT_PAGE: usize = 100;
const CHANGES_MAX_PAGE: usize = 1000;

/// How an armed rate limit answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimit {
    /// 403 `userRateLimitExceeded`, Drive's usual per-user answer.
    UserRateLimit,
    /// 429 `rateLimitExceeded`.
    TooManyRequests,
}

#[derive(Debug, Clone)]
enum Fault {
    RateLimited {
        kind: RateLimit,
        retry_after_secs: Option<u64>,
    },
    /// Google's error body with this status and `errors[].reason`.
    Refused { status: u16, reason: String },
    /// A 200 whose body is an HTML page, as a captive proxy answers.
    Malformed,
    /// A 200 whose body is this JSON instead of the answer.
    MalformedJson(Value),
}

#[derive(Debug, Clone)]
struct Armed {
    /// Applies to requests whose path ends with this.
    path_suffix: String,
    /// Matching requests answered normally first.
    skip: usize,
    fault: Fault,
}

/// One request received: its method, path and query parameters (never a header).
struct Logged {
    method: String,
    path: String,
    query: BTreeMap<String, String>,
}

struct Shared {
    valid_token: String,
    revoked: bool,
    faults: Vec<Armed>,
    log: Vec<Logged>,
    /// Makes every `thumbnailLink` differ, as Drive's signed links do.
    answers: u64,
}

pub struct FakeGoogleDrive {
    /// e.g. `http://127.0.0.1:54321`, the value for `SOURCE_GOOGLE_DRIVE_BASE_URL`.
    pub base_url: String,
    workspace: Arc<Mutex<Workspace>>,
    shared: Arc<Mutex<Shared>>,
    server: FakeServer,
}

impl FakeGoogleDrive {
    /// An empty workspace on a random port of 127.0.0.1, accepting `valid_token`.
    pub async fn start(valid_token: &str) -> Self {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), valid_token)
            .await
            .expect("bind the fake Google Drive")
    }

    /// An empty workspace on `addr`.
    pub async fn start_on(addr: SocketAddr, valid_token: &str) -> std::io::Result<Self> {
        let workspace = Arc::new(Mutex::new(Workspace::default()));
        let shared = Arc::new(Mutex::new(Shared {
            valid_token: valid_token.to_owned(),
            revoked: false,
            faults: Vec::new(),
            log: Vec::new(),
            answers: 0,
        }));
        let handler: Handler = {
            let workspace = Arc::clone(&workspace);
            let shared = Arc::clone(&shared);
            Arc::new(move |request| answer(&workspace, &shared, request))
        };
        let server = FakeServer::start_on(addr, handler).await?;
        Ok(Self {
            base_url: server.base_url.clone(),
            workspace,
            shared,
            server,
        })
    }

    /// The workspace, to read or change between syncs.
    pub fn workspace(&self) -> MutexGuard<'_, Workspace> {
        self.workspace.lock().expect("workspace lock")
    }

    /// Replaces the workspace (e.g. with [`Workspace::demo`]).
    pub fn set_workspace(&self, workspace: Workspace) {
        *self.workspace() = workspace;
    }

    fn shared(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().expect("shared lock")
    }

    /// From now on the token is refused with 401 `UNAUTHENTICATED`, as after the user revoked
    /// the app's access.
    pub fn revoke_token(&self) {
        self.shared().revoked = true;
    }

    /// The first request whose path ends with `path_suffix` after `skip` others were answered
    /// is rate-limited, once.
    pub fn rate_limit_after(
        &self,
        path_suffix: &str,
        skip: usize,
        kind: RateLimit,
        retry_after_secs: Option<u64>,
    ) {
        self.arm(
            path_suffix,
            skip,
            Fault::RateLimited {
                kind,
                retry_after_secs,
            },
        );
    }

    /// The first request whose path ends with `path_suffix` after `skip` others were answered
    /// is refused with Google's error body of `status` and `reason` (e.g. 403
    /// `insufficientFilePermissions` for a file the user may see but not read, 403
    /// `dailyLimitExceeded` for a spent daily quota, 404 `notFound` for a file deleted since it
    /// was listed), once.
    pub fn refuse_after(&self, path_suffix: &str, skip: usize, status: u16, reason: &str) {
        let reason = reason.to_owned();
        self.arm(path_suffix, skip, Fault::Refused { status, reason });
    }

    /// The first request whose path ends with `path_suffix` after `skip` others were answered
    /// gets an HTML page with status 200, once.
    pub fn malform_after(&self, path_suffix: &str, skip: usize) {
        self.arm(path_suffix, skip, Fault::Malformed);
    }

    /// The first request whose path ends with `path_suffix` after `skip` others were answered
    /// gets `body` as JSON with status 200 instead of its answer (a page of the wrong shape),
    /// once.
    pub fn malform_after_with(&self, path_suffix: &str, skip: usize, body: Value) {
        self.arm(path_suffix, skip, Fault::MalformedJson(body));
    }

    /// Every later answer is sent this long after its request came in (a slow Drive).
    pub fn answer_after(&self, delay: std::time::Duration) {
        self.server.answer_after(delay);
    }

    fn arm(&self, path_suffix: &str, skip: usize, fault: Fault) {
        self.shared().faults.push(Armed {
            path_suffix: path_suffix.to_owned(),
            skip,
            fault,
        });
    }

    /// `"GET /drive/v3/files?corpora=allDrives&…"` lines of the requests received, in order
    /// (query parameters sorted; never a header).
    pub fn requests(&self) -> Vec<String> {
        self.shared()
            .log
            .iter()
            .map(|r| {
                let query: Vec<String> = r.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
                if query.is_empty() {
                    format!("{} {}", r.method, r.path)
                } else {
                    format!("{} {}?{}", r.method, r.path, query.join("&"))
                }
            })
            .collect()
    }

    /// The query parameters of every request to exactly `path` (e.g. `/drive/v3/files`), in
    /// order.
    pub fn queries_of(&self, path: &str) -> Vec<BTreeMap<String, String>> {
        self.shared()
            .log
            .iter()
            .filter(|r| r.path == path)
            .map(|r| r.query.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests;

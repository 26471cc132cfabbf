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

#[derive(Debug, Clone, PartialEq)]
pub struct File {
    pub id: String,
    pub name: String,
    pub mime_type: String,
    /// The text of a Google Doc or a text file; `None` for folders and binary files.
    pub text: Option<String>,
    /// The size of a binary file (text files are as large as their text).
    pub binary_size: u64,
    pub description: Option<String>,
    pub parents: Vec<String>,
    /// The shared drive holding it, if any.
    pub drive_id: Option<String>,
    /// Shared directly with the user: a file of a shared drive is then in the user corpus
    /// (listed with `includeItemsFromAllDrives` only), whether or not the user is a member of
    /// its drive.
    pub shared_with_me: bool,
    pub trashed: bool,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    /// Drive's `version`: bumped at every change.
    pub version: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Drive {
    pub id: String,
    pub name: String,
    pub created: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    File(String),
    Drive(String),
}

/// What the fake serves; a test changes it between syncs.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The largest page any list answers, whatever `pageSize` asks (Drive may answer fewer
    /// than asked); tests lower it to get many pages.
    pub max_page_size: usize,
    /// Drive could not search every corpus it was asked for: `files` answers say
    /// `incompleteSearch: true` (as for users in many shared drives). Off by default.
    pub incomplete_search: bool,
    files: BTreeMap<String, File>,
    drives: BTreeMap<String, Drive>,
    /// One entry per item, its latest change, by ascending change id.
    changes: Vec<(u64, Item)>,
    next_change: u64,
    next_id: u64,
    /// Advances a minute at every change.
    clock: DateTime<Utc>,
}

impl Default for Workspace {
    fn default() -> Self {
        Self {
            max_page_size: FILES_MAX_PAGE,
            incomplete_search: false,
            files: BTreeMap::new(),
            drives: BTreeMap::new(),
            changes: Vec::new(),
            next_change: 1000,
            next_id: 1,
            clock: Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap(),
        }
    }
}

impl Workspace {
    /// A folder, two Google Docs, a text file and an image in My Drive, and a shared drive
    /// holding a design doc.
    pub fn demo() -> Self {
        let mut w = Self::default();
        let projects = w.add_folder("Projects");
        let roadmap = w.add_doc(
            "Roadmap 2026",
            "Roadmap 2026\n\nQ1: ship the connector platform.\nQ2: more sources.",
        );
        w.file_mut(&roadmap).parents = vec![projects];
        w.add_doc(
            "Meeting notes",
            "Weekly sync\n\n- Drive connector reviewed\n- Next: Slack",
        );
        w.add_text_file("todo.txt", "buy milk\nwrite tests\n");
        w.add_binary_file("logo.png", "image/png", 48_213);
        let engineering = w.add_drive("Engineering");
        let design = w.add_doc("Design doc", "Sync design\n\nPages, checkpoints, cursors.");
        w.move_to_drive(&design, &engineering);
        w
    }

    fn tick(&mut self) -> DateTime<Utc> {
        self.clock += Duration::minutes(1);
        self.clock
    }

    fn new_id(&mut self, prefix: &str) -> String {
        let id = format!("{prefix}{:04}fakeDriveId", self.next_id);
        self.next_id += 1;
        id
    }

    fn record(&mut self, item: Item) {
        self.changes.retain(|(_, i)| *i != item);
        self.changes.push((self.next_change, item));
        self.next_change += 1;
    }

    fn insert(&mut self, name: &str, mime_type: &str, text: Option<&str>, size: u64) -> String {
        let id = self.new_id("1");
        let at = self.tick();
        self.files.insert(
            id.clone(),
            File {
                id: id.clone(),
                name: name.to_owned(),
                mime_type: mime_type.to_owned(),
                text: text.map(str::to_owned),
                binary_size: size,
                description: None,
                parents: vec!["root".into()],
                drive_id: None,
                shared_with_me: false,
                trashed: false,
                created: at,
                modified: at,
                version: 1,
            },
        );
        self.record(Item::File(id.clone()));
        id
    }

    pub fn add_folder(&mut self, name: &str) -> String {
        self.insert(name, FOLDER, None, 0)
    }

    pub fn add_doc(&mut self, name: &str, text: &str) -> String {
        self.insert(name, GOOGLE_DOC, Some(text), 0)
    }

    pub fn add_text_file(&mut self, name: &str, text: &str) -> String {
        self.insert(name, "text/plain", Some(text), 0)
    }

    pub fn add_binary_file(&mut self, name: &str, mime_type: &str, size: u64) -> String {
        self.insert(name, mime_type, None, size)
    }

    pub fn add_drive(&mut self, name: &str) -> String {
        let id = self.new_id("0A");
        let created = self.tick();
        self.drives.insert(
            id.clone(),
            Drive {
                id: id.clone(),
                name: name.to_owned(),
                created,
            },
        );
        self.record(Item::Drive(id.clone()));
        id
    }

    /// A file by id; panics when there is none (a test's mistake).
    pub fn file(&self, id: &str) -> &File {
        &self.files[id]
    }

    fn file_mut(&mut self, id: &str) -> &mut File {
        self.files.get_mut(id).expect("a file of the fake")
    }

    /// Changes a file as a user would (its content, name, place …): a new modified time,
    /// version and change.
    pub fn edit(&mut self, id: &str, change: impl FnOnce(&mut File)) {
        let at = self.tick();
        let file = self.file_mut(id);
        change(file);
        file.modified = at;
        file.version += 1;
        self.record(Item::File(id.to_owned()));
    }

    pub fn set_text(&mut self, id: &str, text: &str) {
        self.edit(id, |f| f.text = Some(text.to_owned()));
    }

    pub fn rename(&mut self, id: &str, name: &str) {
        self.edit(id, |f| f.name = name.to_owned());
    }

    /// A Google Doc of someone else's shared drive, shared directly with the user, who is not a
    /// member of that drive: `drives` does not name it, `corpora=drive` cannot list it, and
    /// `corpora=user` answers the doc only with `includeItemsFromAllDrives`; `changes` reports
    /// it like any file.
    pub fn add_doc_shared_from_another_drive(&mut self, name: &str, text: &str) -> String {
        let id = self.add_doc(name, text);
        let drive = self.new_id("0B");
        self.edit(&id, |f| {
            f.parents = vec![drive.clone()];
            f.drive_id = Some(drive);
            f.shared_with_me = true;
        });
        id
    }

    pub fn move_to_drive(&mut self, id: &str, drive_id: &str) {
        let drive = drive_id.to_owned();
        self.edit(id, |f| {
            f.parents = vec![drive.clone()];
            f.drive_id = Some(drive);
        });
    }

    /// Moves a file to the trash: still readable by id, gone from `trashed = false` listings,
    /// reported by the changes API with `file.trashed: true`.
    pub fn trash(&mut self, id: &str) {
        self.edit(id, |f| f.trashed = true);
    }

    /// Deletes a file for good: the changes API reports it `removed: true`.
    pub fn delete(&mut self, id: &str) {
        self.files.remove(id).expect("a file of the fake");
        self.record(Item::File(id.to_owned()));
    }

    pub fn rename_drive(&mut self, id: &str, name: &str) {
        self.drives.get_mut(id).expect("a drive of the fake").name = name.to_owned();
        self.record(Item::Drive(id.to_owned()));
    }

    /// Deletes a shared drive and the files in it.
    pub fn remove_drive(&mut self, id: &str) {
        self.drives.remove(id).expect("a drive of the fake");
        let inside: Vec<String> = self
            .files
            .values()
            .filter(|f| f.drive_id.as_deref() == Some(id))
            .map(|f| f.id.clone())
            .collect();
        for file in inside {
            self.delete(&file);
        }
        self.record(Item::Drive(id.to_owned()));
    }

    /// Every file that is not trashed, by id.
    pub fn live_file_ids(&self) -> Vec<String> {
        self.files
            .values()
            .filter(|f| !f.trashed)
            .map(|f| f.id.clone())
            .collect()
    }

    pub fn drive_ids(&self) -> Vec<String> {
        self.drives.keys().cloned().collect()
    }

    /// What `changes/startPageToken` answers now: the changes listed from it are those made
    /// after this call.
    pub fn start_page_token(&self) -> String {
        self.next_change.to_string()
    }
}

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

// --- answers ---

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Google's error body.
fn error(code: u16, reason: &str, message: &str, status: &str, domain: &str) -> FakeResponse {
    FakeResponse::json(
        code,
        &json!({"error": {
            "code": code,
            "message": message,
            "errors": [{"message": message, "domain": domain, "reason": reason}],
            "status": status,
        }}),
    )
}

fn unauthenticated() -> FakeResponse {
    FakeResponse::json(
        401,
        &json!({"error": {
            "code": 401,
            "message": "Request had invalid authentication credentials. Expected OAuth 2 access \
                        token, login cookie or other valid authentication credential. See \
                        https://developers.google.com/identity/sign-in/web/devconsole-project.",
            "errors": [{
                "message": "Invalid Credentials",
                "domain": "global",
                "reason": "authError",
                "location": "Authorization",
                "locationType": "header",
            }],
            "status": "UNAUTHENTICATED",
        }}),
    )
    .with_header(
        "www-authenticate",
        "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"",
    )
}

fn invalid_parameter(name: &str) -> FakeResponse {
    FakeResponse::json(
        400,
        &json!({"error": {
            "code": 400,
            "message": format!("Invalid Value"),
            "errors": [{
                "message": "Invalid Value",
                "domain": "global",
                "reason": "invalid",
                "location": name,
                "locationType": "parameter",
            }],
        }}),
    )
}

fn not_found(id: &str) -> FakeResponse {
    let message = format!("File not found: {id}.");
    error(404, "notFound", &message, "NOT_FOUND", "global")
}

fn rate_limited(kind: RateLimit, retry_after_secs: Option<u64>) -> FakeResponse {
    let response = match kind {
        RateLimit::UserRateLimit => error(
            403,
            "userRateLimitExceeded",
            "User rate limit exceeded.",
            "PERMISSION_DENIED",
            "usageLimits",
        ),
        RateLimit::TooManyRequests => error(
            429,
            "rateLimitExceeded",
            "Rate limit exceeded.",
            "RESOURCE_EXHAUSTED",
            "usageLimits",
        ),
    };
    match retry_after_secs {
        Some(secs) => response.with_header("retry-after", secs),
        None => response,
    }
}

/// Google's error body for an armed refusal: the status's name, and the domain Google gives
/// the reason (`usageLimits` for limits and quotas).
fn refused(code: u16, reason: &str) -> FakeResponse {
    let status = match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    };
    let limit = reason.contains("Limit") || reason.contains("quota");
    let domain = if limit { "usageLimits" } else { "global" };
    let message = format!("The request was refused ({reason}).");
    error(code, reason, &message, status, domain)
}

fn answer(
    workspace: &Mutex<Workspace>,
    shared: &Mutex<Shared>,
    request: &FakeRequest,
) -> FakeResponse {
    let mut shared = shared.lock().expect("shared lock");
    shared.log.push(Logged {
        method: request.method.clone(),
        path: request.path.clone(),
        query: request.query.clone(),
    });
    shared.answers += 1;
    let authorized = !shared.revoked && request.bearer() == Some(shared.valid_token.as_str());
    if !authorized {
        return unauthenticated();
    }
    let due = shared
        .faults
        .iter()
        .position(|a| request.path.ends_with(&a.path_suffix));
    if let Some(index) = due {
        let armed = &mut shared.faults[index];
        if armed.skip == 0 {
            let fault = shared.faults.remove(index).fault;
            return match fault {
                Fault::RateLimited {
                    kind,
                    retry_after_secs,
                } => rate_limited(kind, retry_after_secs),
                Fault::Refused { status, reason } => refused(status, &reason),
                Fault::Malformed => FakeResponse::text(
                    200,
                    "text/html; charset=utf-8",
                    "<html><body>Sign in to continue</body></html>",
                ),
                Fault::MalformedJson(body) => FakeResponse::json(200, &body),
            };
        }
        armed.skip -= 1;
    }
    if request.method != "GET" {
        return error(
            405,
            "methodNotAllowed",
            "Method not allowed",
            "INVALID_ARGUMENT",
            "global",
        );
    }
    let workspace = workspace.lock().expect("workspace lock");
    let serial = shared.answers;
    let Some(rest) = request.path.strip_prefix("/drive/v3/") else {
        return error(404, "notFound", "Not Found", "NOT_FOUND", "global");
    };
    match rest.split('/').collect::<Vec<_>>().as_slice() {
        ["about"] => about(),
        ["files"] => list_files(&workspace, request, serial),
        ["files", id] => get_file(&workspace, request, id, serial),
        ["files", id, "export"] => export(&workspace, request, id),
        ["drives"] => list_drives(&workspace, request),
        ["changes", "startPageToken"] => FakeResponse::json(
            200,
            &json!({"kind": "drive#startPageToken", "startPageToken": workspace.next_change.to_string()}),
        ),
        ["changes"] => list_changes(&workspace, request, serial),
        _ => error(404, "notFound", "Not Found", "NOT_FOUND", "global"),
    }
}

fn about() -> FakeResponse {
    FakeResponse::json(
        200,
        &json!({"user": {
            "kind": "drive#user",
            "displayName": OWNER_NAME,
            "emailAddress": OWNER_EMAIL,
            "permissionId": "00112233445566778899",
            "me": true,
            "photoLink": "https://lh3.googleusercontent.com/a/fake=s64",
        }}),
    )
}

fn person() -> Value {
    json!({
        "kind": "drive#user",
        "displayName": OWNER_NAME,
        "emailAddress": OWNER_EMAIL,
        "permissionId": "00112233445566778899",
        "me": true,
    })
}

/// A file as Drive answers it, volatile fields included.
fn file_json(file: &File, serial: u64) -> Value {
    let google = file.mime_type.starts_with("application/vnd.google-apps.");
    let link = if file.mime_type == GOOGLE_DOC {
        format!(
            "https://docs.google.com/document/d/{}/edit?usp=drivesdk",
            file.id
        )
    } else if file.mime_type == FOLDER {
        format!("https://drive.google.com/drive/folders/{}", file.id)
    } else {
        format!(
            "https://drive.google.com/file/d/{}/view?usp=drivesdk",
            file.id
        )
    };
    let mut value = json!({
        "kind": "drive#file",
        "id": file.id,
        "name": file.name,
        "mimeType": file.mime_type,
        "starred": false,
        "trashed": file.trashed,
        "parents": file.parents,
        "webViewLink": link,
        "iconLink": format!("https://drive-thirdparty.googleusercontent.com/16/type/{}", file.mime_type),
        "thumbnailLink": format!("https://lh3.googleusercontent.com/drive-storage/{}=s220?sig={serial}", file.id),
        "viewedByMeTime": time(Utc::now()),
        "createdTime": time(file.created),
        "modifiedTime": time(file.modified),
        "version": file.version.to_string(),
        "owners": [person()],
        "lastModifyingUser": person(),
    });
    if let Some(description) = &file.description {
        value["description"] = json!(description);
    }
    if !google {
        let size = file
            .text
            .as_ref()
            .map_or(file.binary_size, |t| t.len() as u64);
        value["size"] = json!(size.to_string());
        if let Some((_, extension)) = file.name.rsplit_once('.') {
            value["fileExtension"] = json!(extension);
        }
    }
    if let Some(drive) = &file.drive_id {
        value["driveId"] = json!(drive);
    }
    value
}

fn drive_json(drive: &Drive) -> Value {
    json!({
        "kind": "drive#drive",
        "id": drive.id,
        "name": drive.name,
        "createdTime": time(drive.created),
        "hidden": false,
        "colorRgb": "#4986e7",
    })
}

/// `pageSize` as Drive reads it (default when absent, at most `max`), lowered to the
/// workspace's cap; `None` when it is not a positive number.
fn page_size(request: &FakeRequest, default: usize, max: usize, cap: usize) -> Option<usize> {
    let asked = match request.query.get("pageSize") {
        None => default,
        Some(v) => v.parse::<usize>().ok().filter(|n| *n > 0)?,
    };
    Some(asked.min(max).min(cap.max(1)))
}

/// Offsets as opaque-looking page tokens; any other token is invalid.
fn offset_token(prefix: &str, offset: usize) -> String {
    format!("~{prefix}!{offset:x}")
}

fn read_offset(request: &FakeRequest, prefix: &str) -> Result<usize, FakeResponse> {
    match request.query.get("pageToken") {
        None => Ok(0),
        Some(token) => token
            .strip_prefix(&format!("~{prefix}!"))
            .and_then(|hex| usize::from_str_radix(hex, 16).ok())
            .ok_or_else(|| invalid_parameter("pageToken")),
    }
}

fn flag(request: &FakeRequest, name: &str) -> bool {
    request.query.get(name).is_some_and(|v| v == "true")
}

fn list_files(workspace: &Workspace, request: &FakeRequest, serial: u64) -> FakeResponse {
    let all_drives = flag(request, "includeItemsFromAllDrives");
    let corpora = request.query.get("corpora").map_or("user", String::as_str);
    if !["user", "allDrives", "drive"].contains(&corpora) {
        return invalid_parameter("corpora");
    }
    if corpora != "user" && !all_drives {
        let message = format!(
            "The includeItemsFromAllDrives parameter must be set to true when corpora is \
             {corpora}."
        );
        return error(400, "invalid", &message, "INVALID_ARGUMENT", "global");
    }
    // `corpora=drive` names its shared drive in `driveId` (and only then may one be given).
    let drive = request.query.get("driveId");
    match (corpora, drive) {
        ("drive", None) => {
            let message = "The driveId parameter must be specified if and only if corpora is \
                           set to drive.";
            return error(400, "invalid", message, "INVALID_ARGUMENT", "global");
        }
        ("drive", Some(id)) if !workspace.drives.contains_key(id) => {
            let message = format!("Shared drive not found: {id}");
            return error(404, "notFound", &message, "NOT_FOUND", "global");
        }
        ("drive", Some(_)) if !flag(request, "supportsAllDrives") => {
            return invalid_parameter("supportsAllDrives");
        }
        (_, Some(_)) if corpora != "drive" => return invalid_parameter("driveId"),
        _ => {}
    }
    // The fake understands the one query a sync needs.
    let only_live = match request.query.get("q").map(|q| q.replace(' ', "")) {
        None => false,
        Some(q) if q == "trashed=false" => true,
        Some(_) => return invalid_parameter("q"),
    };
    let Some(size) = page_size(
        request,
        FILES_DEFAULT_PAGE,
        FILES_MAX_PAGE,
        workspace.max_page_size,
    ) else {
        return invalid_parameter("pageSize");
    };
    let offset = match read_offset(request, "f") {
        Ok(offset) => offset,
        Err(response) => return response,
    };
    let visible: Vec<&File> = workspace
        .files
        .values()
        .filter(|f| !(only_live && f.trashed))
        .filter(|f| match corpora {
            // The user's own files and those shared with them; a shared drive's only when
            // shared directly with the user, and only when items of all drives are asked for.
            "user" => f.drive_id.is_none() || (all_drives && f.shared_with_me),
            "drive" => f.drive_id.as_ref() == drive,
            _ => true,
        })
        .collect();
    let page: Vec<Value> = visible
        .iter()
        .skip(offset)
        .take(size)
        .map(|f| file_json(f, serial))
        .collect();
    let mut body = json!({
        "kind": "drive#fileList",
        "incompleteSearch": workspace.incomplete_search,
        "files": page,
    });
    if offset + size < visible.len() {
        body["nextPageToken"] = json!(offset_token("f", offset + size));
    }
    FakeResponse::json(200, &body)
}

fn get_file(workspace: &Workspace, request: &FakeRequest, id: &str, serial: u64) -> FakeResponse {
    let Some(file) = workspace.files.get(id) else {
        return not_found(id);
    };
    if file.drive_id.is_some() && !flag(request, "supportsAllDrives") {
        return not_found(id);
    }
    if request.query.get("alt").map(String::as_str) != Some("media") {
        return FakeResponse::json(200, &file_json(file, serial));
    }
    if file.mime_type.starts_with("application/vnd.google-apps.") {
        return error(
            403,
            "fileNotDownloadable",
            "Only files with binary content can be downloaded. Use Export with Docs Editors files.",
            "PERMISSION_DENIED",
            "global",
        );
    }
    match &file.text {
        Some(text) => FakeResponse::text(200, &file.mime_type, text.clone()),
        None => FakeResponse::text(
            200,
            &file.mime_type,
            vec![0u8; file.binary_size.min(64) as usize],
        ),
    }
}

fn export(workspace: &Workspace, request: &FakeRequest, id: &str) -> FakeResponse {
    let Some(file) = workspace.files.get(id) else {
        return not_found(id);
    };
    if file.mime_type != GOOGLE_DOC {
        return error(
            403,
            "fileNotExportable",
            "Export only supports Docs Editors files.",
            "PERMISSION_DENIED",
            "global",
        );
    }
    match request.query.get("mimeType").map(String::as_str) {
        // Drive's plain-text export starts with a byte order mark.
        Some("text/plain") => FakeResponse::text(
            200,
            "text/plain",
            format!("\u{feff}{}", file.text.as_deref().unwrap_or_default()),
        ),
        _ => invalid_parameter("mimeType"),
    }
}

fn list_drives(workspace: &Workspace, request: &FakeRequest) -> FakeResponse {
    let Some(size) = page_size(
        request,
        DRIVES_DEFAULT_PAGE,
        DRIVES_MAX_PAGE,
        workspace.max_page_size,
    ) else {
        return invalid_parameter("pageSize");
    };
    let offset = match read_offset(request, "d") {
        Ok(offset) => offset,
        Err(response) => return response,
    };
    let page: Vec<Value> = workspace
        .drives
        .values()
        .skip(offset)
        .take(size)
        .map(drive_json)
        .collect();
    let mut body = json!({"kind": "drive#driveList", "drives": page});
    if offset + size < workspace.drives.len() {
        body["nextPageToken"] = json!(offset_token("d", offset + size));
    }
    FakeResponse::json(200, &body)
}

fn list_changes(workspace: &Workspace, request: &FakeRequest, serial: u64) -> FakeResponse {
    let from = match request.query.get("pageToken").map(|t| t.parse::<u64>()) {
        Some(Ok(from)) if from <= workspace.next_change => from,
        Some(_) => return invalid_parameter("pageToken"),
        None => {
            let message = "Required parameter: pageToken";
            return error(400, "required", message, "INVALID_ARGUMENT", "global");
        }
    };
    let Some(size) = page_size(
        request,
        CHANGES_DEFAULT_PAGE,
        CHANGES_MAX_PAGE,
        workspace.max_page_size,
    ) else {
        return invalid_parameter("pageSize");
    };
    let all_drives = flag(request, "includeItemsFromAllDrives");
    let include_removed = request
        .query
        .get("includeRemoved")
        .is_none_or(|v| v == "true");
    let pending: Vec<&(u64, Item)> = workspace
        .changes
        .iter()
        .filter(|(id, _)| *id >= from)
        .collect();
    let mut changes = Vec::new();
    for (_, item) in pending.iter().take(size) {
        let change = match item {
            Item::File(id) => match workspace.files.get(id) {
                Some(file) if file.drive_id.is_some() && !all_drives => continue,
                Some(file) => json!({
                    "kind": "drive#change",
                    "changeType": "file",
                    "time": time(file.modified),
                    "removed": false,
                    "fileId": id,
                    "file": file_json(file, serial),
                }),
                None if include_removed => json!({
                    "kind": "drive#change",
                    "changeType": "file",
                    "time": time(workspace.clock),
                    "removed": true,
                    "fileId": id,
                }),
                None => continue,
            },
            Item::Drive(id) => match workspace.drives.get(id) {
                Some(drive) => json!({
                    "kind": "drive#change",
                    "changeType": "drive",
                    "time": time(workspace.clock),
                    "removed": false,
                    "driveId": id,
                    "drive": drive_json(drive),
                }),
                None => json!({
                    "kind": "drive#change",
                    "changeType": "drive",
                    "time": time(workspace.clock),
                    "removed": true,
                    "driveId": id,
                }),
            },
        };
        changes.push(change);
    }
    let mut body = json!({"kind": "drive#changeList", "changes": changes});
    match pending.get(size) {
        Some((next, _)) => body["nextPageToken"] = json!(next.to_string()),
        None => body["newStartPageToken"] = json!(workspace.next_change.to_string()),
    }
    FakeResponse::json(200, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "ya29.unit-test-token";

    async fn get(fake: &FakeGoogleDrive, path_and_query: &str, token: &str) -> (u16, Value) {
        let response = http_get(&format!("{}{path_and_query}", fake.base_url), token).await;
        let status = response.0;
        (
            status,
            serde_json::from_str(&response.1).unwrap_or(Value::Null),
        )
    }

    /// A bare HTTP/1.1 GET on a blocking socket: the fakes crate has no HTTP client, and the
    /// fake's bodies have a length (no chunking to undo).
    async fn http_get(url: &str, token: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let rest = url.strip_prefix("http://").unwrap().to_owned();
        let token = token.to_owned();
        tokio::task::spawn_blocking(move || {
            let (host, path) = rest.split_at(rest.find('/').unwrap());
            let mut stream = std::net::TcpStream::connect(host).unwrap();
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
                 Connection: close\r\n\r\n"
            );
            stream.write_all(request.as_bytes()).unwrap();
            let mut raw = Vec::new();
            stream.read_to_end(&mut raw).unwrap();
            let text = String::from_utf8_lossy(&raw).into_owned();
            let status = text[9..12].parse().unwrap();
            let body = text.split_once("\r\n\r\n").unwrap().1.to_owned();
            (status, body)
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn files_page_through_every_live_file_and_trashed_ones_leave_the_listing() {
        let fake = FakeGoogleDrive::start(TOKEN).await;
        fake.set_workspace(Workspace::demo());
        fake.workspace().max_page_size = 2;
        let trashed = fake.workspace().add_text_file("old.txt", "old");
        fake.workspace().trash(&trashed);
        let mut seen = Vec::new();
        let mut token = String::new();
        let mut pages = 0;
        loop {
            let (status, body) = get(
                &fake,
                &format!(
                    "/drive/v3/files?q=trashed%20%3D%20false&corpora=allDrives&includeItemsFromAllDrives=true&supportsAllDrives=true{token}"
                ),
                TOKEN,
            )
            .await;
            assert_eq!(status, 200, "{body}");
            pages += 1;
            for f in body["files"].as_array().unwrap() {
                seen.push(f["id"].as_str().unwrap().to_owned());
            }
            match body["nextPageToken"].as_str() {
                Some(next) => token = format!("&pageToken={next}"),
                None => break,
            }
        }
        assert_eq!(seen, fake.workspace().live_file_ids());
        assert!(!seen.contains(&trashed));
        assert_eq!(pages, 3, "6 live files in pages of 2");
        let (status, _) = get(&fake, "/drive/v3/files?pageToken=bogus", TOKEN).await;
        assert_eq!(status, 400);
    }

    #[tokio::test]
    async fn the_user_corpus_and_each_shared_drive_are_listed_apart() {
        let fake = FakeGoogleDrive::start(TOKEN).await;
        fake.set_workspace(Workspace::demo());
        let drive = fake.workspace().drive_ids()[0].clone();
        let names = |body: &Value| -> Vec<String> {
            body["files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["name"].as_str().unwrap().to_owned())
                .collect()
        };
        let (status, mine) = get(&fake, "/drive/v3/files?corpora=user", TOKEN).await;
        assert_eq!(status, 200, "{mine}");
        assert_eq!(names(&mine).len(), 5);
        assert!(!names(&mine).contains(&"Design doc".to_owned()));
        let listing = format!(
            "/drive/v3/files?corpora=drive&driveId={drive}&includeItemsFromAllDrives=true&supportsAllDrives=true"
        );
        let (status, shared) = get(&fake, &listing, TOKEN).await;
        assert_eq!(status, 200, "{shared}");
        assert_eq!(names(&shared), ["Design doc"]);
        let (status, _) = get(
            &fake,
            "/drive/v3/files?corpora=drive&includeItemsFromAllDrives=true&supportsAllDrives=true",
            TOKEN,
        )
        .await;
        assert_eq!(status, 400, "corpora=drive needs a driveId");
        let (status, _) = get(&fake, "/drive/v3/files?corpora=drive&driveId=nope&includeItemsFromAllDrives=true&supportsAllDrives=true", TOKEN).await;
        assert_eq!(status, 404);
        let (status, _) = get(
            &fake,
            &format!("/drive/v3/files?corpora=user&driveId={drive}"),
            TOKEN,
        )
        .await;
        assert_eq!(status, 400, "a driveId only with corpora=drive");
    }

    #[tokio::test]
    async fn a_shared_drive_file_shared_with_the_user_is_in_the_user_corpus_with_all_drives() {
        let fake = FakeGoogleDrive::start(TOKEN).await;
        fake.set_workspace(Workspace::demo());
        let theirs = fake
            .workspace()
            .add_doc_shared_from_another_drive("Their plan", "Shared with Ada only.");
        let drive = fake.workspace().file(&theirs).drive_id.clone().unwrap();
        assert!(
            !fake.workspace().drive_ids().contains(&drive),
            "not a member"
        );
        let ids = |body: &Value| -> Vec<String> {
            body["files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["id"].as_str().unwrap().to_owned())
                .collect()
        };
        let (status, plain) = get(&fake, "/drive/v3/files?corpora=user", TOKEN).await;
        assert_eq!(status, 200, "{plain}");
        assert_eq!(ids(&plain).len(), 5);
        assert!(!ids(&plain).contains(&theirs));
        let (status, all) = get(
            &fake,
            "/drive/v3/files?corpora=user&includeItemsFromAllDrives=true&supportsAllDrives=true",
            TOKEN,
        )
        .await;
        assert_eq!(status, 200, "{all}");
        assert_eq!(ids(&all).len(), 6);
        assert!(ids(&all).contains(&theirs));
        let listed = all["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == theirs.as_str())
            .unwrap();
        assert_eq!(listed["driveId"], drive.as_str());
        // Its drive is not listed, nor can its files be listed as a drive's.
        let (_, drives) = get(&fake, "/drive/v3/drives", TOKEN).await;
        assert_eq!(drives["drives"].as_array().unwrap().len(), 1);
        let listing = format!(
            "/drive/v3/files?corpora=drive&driveId={drive}&includeItemsFromAllDrives=true&supportsAllDrives=true"
        );
        assert_eq!(get(&fake, &listing, TOKEN).await.0, 404);
        // Changes report it like any file.
        let (_, changes) = get(
            &fake,
            "/drive/v3/changes?pageToken=1000&includeItemsFromAllDrives=true",
            TOKEN,
        )
        .await;
        assert!(changes["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["fileId"] == theirs.as_str()));
    }

    #[tokio::test]
    async fn changes_report_the_latest_change_per_item_and_end_with_a_new_start_token() {
        let fake = FakeGoogleDrive::start(TOKEN).await;
        let doc = fake.workspace().add_doc("Plan", "v1");
        let (_, start) = get(&fake, "/drive/v3/changes/startPageToken", TOKEN).await;
        let start = start["startPageToken"].as_str().unwrap().to_owned();
        let added = {
            let mut w = fake.workspace();
            w.set_text(&doc, "v2");
            w.set_text(&doc, "v3");
            let added = w.add_text_file("new.txt", "hi");
            w.delete(&added);
            added
        };
        let (status, body) = get(
            &fake,
            &format!("/drive/v3/changes?pageToken={start}&includeItemsFromAllDrives=true"),
            TOKEN,
        )
        .await;
        assert_eq!(status, 200);
        let changes = body["changes"].as_array().unwrap();
        assert_eq!(changes.len(), 2, "{body}");
        assert_eq!(changes[0]["fileId"], doc.as_str());
        assert_eq!(changes[0]["file"]["version"], "3");
        assert_eq!(changes[1]["fileId"], added.as_str());
        assert_eq!(changes[1]["removed"], true);
        let next = body["newStartPageToken"].as_str().unwrap();
        let (_, empty) = get(&fake, &format!("/drive/v3/changes?pageToken={next}"), TOKEN).await;
        assert_eq!(empty["changes"], json!([]));
        assert_eq!(empty["newStartPageToken"], next);
    }

    #[tokio::test]
    async fn content_exports_and_switches_answer_as_drive_does() {
        let fake = FakeGoogleDrive::start(TOKEN).await;
        let doc = fake.workspace().add_doc("Plan", "the plan");
        let (status, _) = get(&fake, &format!("/drive/v3/files/{doc}?alt=media"), TOKEN).await;
        assert_eq!(status, 403, "a Google Doc is exported, not downloaded");
        let (status, body) = get(
            &fake,
            &format!("/drive/v3/files/{doc}/export?mimeType=text/plain"),
            TOKEN,
        )
        .await;
        assert_eq!((status, body), (200, Value::Null), "plain text, not JSON");

        let (status, body) = get(&fake, "/drive/v3/about?fields=user", "wrong").await;
        assert_eq!(status, 401);
        assert_eq!(body["error"]["status"], "UNAUTHENTICATED");

        fake.rate_limit_after("/files", 1, RateLimit::UserRateLimit, Some(1));
        assert_eq!(get(&fake, "/drive/v3/files", TOKEN).await.0, 200);
        let (status, body) = get(&fake, "/drive/v3/files", TOKEN).await;
        assert_eq!(status, 403);
        assert_eq!(
            body["error"]["errors"][0]["reason"],
            "userRateLimitExceeded"
        );
        assert_eq!(get(&fake, "/drive/v3/files", TOKEN).await.0, 200, "once");

        fake.malform_after("/changes", 0);
        let (status, body) = get(&fake, "/drive/v3/changes?pageToken=1000", TOKEN).await;
        assert_eq!((status, body), (200, Value::Null));

        fake.revoke_token();
        assert_eq!(get(&fake, "/drive/v3/about", TOKEN).await.0, 401);
        assert!(fake.requests().iter().all(|line| !line.contains(TOKEN)));
    }

    #[tokio::test]
    async fn refusals_odd_bodies_incomplete_searches_and_slow_answers_come_when_asked() {
        let fake = FakeGoogleDrive::start(TOKEN).await;
        let doc = fake.workspace().add_doc("Plan", "the plan");
        let start = fake.workspace().start_page_token();
        fake.workspace().add_doc("Later", "after the token");
        assert_ne!(fake.workspace().start_page_token(), start);

        let export = format!("/drive/v3/files/{doc}/export?mimeType=text/plain");
        fake.refuse_after("/export", 1, 403, "insufficientFilePermissions");
        assert_eq!(get(&fake, &export, TOKEN).await.0, 200);
        let (status, body) = get(&fake, &export, TOKEN).await;
        assert_eq!(status, 403);
        assert_eq!(
            body["error"]["errors"][0]["reason"],
            "insufficientFilePermissions"
        );
        assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
        assert_eq!(get(&fake, &export, TOKEN).await.0, 200, "once");

        fake.malform_after_with("/files", 0, json!({"files": {"not": "a list"}}));
        let (status, body) = get(&fake, "/drive/v3/files", TOKEN).await;
        assert_eq!((status, body), (200, json!({"files": {"not": "a list"}})));
        let (_, body) = get(&fake, "/drive/v3/files", TOKEN).await;
        assert_eq!(body["incompleteSearch"], false, "complete by default");
        fake.workspace().incomplete_search = true;
        let (_, body) = get(&fake, "/drive/v3/files", TOKEN).await;
        assert_eq!(body["incompleteSearch"], true);

        let changes = format!("/drive/v3/changes?pageToken={start}&pageSize=1");
        get(&fake, &changes, TOKEN).await;
        let asked = fake.queries_of("/drive/v3/changes");
        assert_eq!(asked.len(), 1);
        assert_eq!(asked[0]["pageToken"], start);
        assert_eq!(asked[0]["pageSize"], "1");

        fake.answer_after(std::time::Duration::from_millis(100));
        let began = std::time::Instant::now();
        get(&fake, "/drive/v3/about", TOKEN).await;
        assert!(began.elapsed() >= std::time::Duration::from_millis(100));
    }
}

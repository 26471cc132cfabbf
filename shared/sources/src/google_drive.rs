//! `google_drive`: the user's files (with the text of Google Docs and small text files) and
//! shared drives, through the Drive API v3.
//!
//! A full run first asks `changes/startPageToken`, then lists the first page of shared drives,
//! then the files of `corpora=user` (the user's own and those shared with them, shared-drive
//! files shared directly with the user included), then each shared drive's files of that page
//! (`corpora=drive&driveId=…`) one drive after the other, then the next page of drives and its
//! drives' files, and so on: `corpora=allDrives` answers `incompleteSearch` for users in many
//! shared drives, and a full run must not end on an incomplete listing (it deletes what it did
//! not list). The checkpoint holds one page of drive ids and the `drives.list` token of the next,
//! so it stays small however many shared drives the user is in. The token becomes the cursor, so
//! whatever changed while the run listed is seen again by the next one. An incremental run reads
//! `changes` from the saved token until Drive answers `newStartPageToken`, the next cursor; files
//! reported removed or trashed are the page's `removed`.
//!
//! A listed page of files is handed out in slices that fetch at most
//! [`CONTENT_FETCHES_PER_PAGE`] contents each and start no download once [`PAGE_TIME_BUDGET`]
//! has passed, so no `next_page` runs long; a slice's checkpoint names the listing (user or
//! which shared drive), the listing page and the id of the last item handed out. A resumed
//! stream lists that page again and goes on after that id; if the id is no longer in the page
//! (Drive's answer for a token may change as files come and go), it hands out the whole page
//! again: a duplicate is harmless, a skipped file would be deleted as absent.

use crate::base_url::BaseUrl;
use crate::source::Source;
use crate::upstream::{check_exchange, fetch, retry_after, Answer, PAGE_BODY_LIMIT};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::auth::AuthenticationRequest;
use domain::catalog::{AuthMethod, ClientAuth, OAuthSettings, SourceSpec};
use domain::entity::{Entity, EntityKey};
use domain::ports::CheckError;
use domain::stream::{EntityPage, EntityStream, StreamError, StreamRequest};
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

/// How transport errors name the upstream.
const NAME: &str = "Google Drive";
/// How other messages name it.
const API: &str = "the Drive API";
pub const FILE_TYPE: &str = "google_drive_file";
pub const DRIVE_TYPE: &str = "google_drive_drive";
/// Files per `files.list` page (Drive allows up to 1000; it may answer fewer).
const FILES_PAGE_SIZE: u32 = 100;
/// Drives per `drives.list` page (Drive's maximum).
const DRIVES_PAGE_SIZE: u32 = 100;
/// Changes per `changes.list` page.
const CHANGES_PAGE_SIZE: u32 = 100;
/// The most file contents one `next_page` downloads: keeps a page well inside the worker's
/// time budget whatever the listing holds.
pub const CONTENT_FETCHES_PER_PAGE: usize = 10;
/// Once this much time has passed since a `next_page` began, it starts no more content
/// downloads and returns what it has (each call may take up to 15 s, and the worker hands over
/// only between pages).
pub const PAGE_TIME_BUDGET: Duration = Duration::from_secs(20);
/// Text files larger than this are synced without their content.
pub const TEXT_FILE_MAX_BYTES: u64 = 1024 * 1024;
/// The most text kept in a payload: an entity must fit a DynamoDB item (400 KB) whole.
pub const CONTENT_LIMIT: usize = 256 * 1024;
/// Drive sends no `Retry-After` on most rate-limit answers; its guide asks for a back-off, and
/// half a minute lets a per-user quota (per 100 seconds) recover without stalling a sync long.
pub const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(30);
/// A daily quota (`dailyLimitExceeded`, `quotaExceeded`) does not recover in seconds: waiting an
/// hour beats failing the run or asking again every half minute.
pub const DAILY_LIMIT_WAIT: Duration = Duration::from_secs(60 * 60);
/// 403 reasons that are per-user rate limits: they recover within minutes.
const RATE_LIMIT_REASONS: [&str; 3] = [
    "userRateLimitExceeded",
    "rateLimitExceeded",
    "sharingRateLimitExceeded",
];
/// 403 reasons that are daily or project quotas.
const QUOTA_REASONS: [&str; 2] = ["dailyLimitExceeded", "quotaExceeded"];
/// 403 reasons only the user (or an admin) can fix: the token lacks the scope, or the domain
/// forbids the app. Any other 403 (a file the user cannot read, an unsupported operation, …) is
/// not a reason to ask for a new token.
const AUTH_REASONS: [&str; 3] = ["insufficientPermissions", "domainPolicy", "authError"];
/// An `about` answer is small; more is not needed to tell its shape.
const CHECK_BODY_LIMIT: usize = 64 * 1024;
const GOOGLE_DOC: &str = "application/vnd.google-apps.document";
/// What a payload keeps of a file. Volatile fields (`viewedByMeTime`, `thumbnailLink`,
/// `version`, …) are not asked for, so an unchanged file hashes the same on every run.
const FILE_FIELDS: &str = "id,name,mimeType,description,starred,trashed,parents,webViewLink,\
                           createdTime,modifiedTime,size,md5Checksum,fileExtension,driveId,\
                           owners(displayName,emailAddress),\
                           lastModifyingUser(displayName,emailAddress)";
const DRIVE_FIELDS: &str = "id,name,createdTime,hidden";

/// Google Drive (files, Google Docs text, shared drives).
#[derive(Debug, Clone)]
pub struct GoogleDriveSource {
    spec: SourceSpec,
    client: reqwest::Client,
    base_url: BaseUrl,
}

impl GoogleDriveSource {
    pub const SHORT_NAME: &'static str = "google_drive";
    pub const DEFAULT_BASE_URL: &'static str = "https://www.googleapis.com";

    pub fn new(client: reqwest::Client, base_url: BaseUrl) -> Self {
        Self {
            spec: spec(),
            client,
            base_url,
        }
    }
}

fn spec() -> SourceSpec {
    SourceSpec {
        short_name: GoogleDriveSource::SHORT_NAME,
        name: NAME,
        class_name: "GoogleDriveSource",
        description: "Files and folders of My Drive, shared with me and shared drives, with the \
                      text of Google Docs and small text files.",
        auth_methods: vec![
            AuthMethod::OauthToken,
            AuthMethod::OauthBrowser,
            AuthMethod::OauthByoc,
            AuthMethod::AuthProvider,
        ],
        requires_byoc: false,
        auth_fields: vec![],
        config_fields: vec![],
        supported_auth_providers: vec!["composio", "pipedream"],
        entity_types: vec![FILE_TYPE, DRIVE_TYPE],
        supports_continuous: false,
        supports_incremental: true,
        federated_search: false,
        labels: vec!["File Storage"],
        oauth: Some(OAuthSettings {
            authorize_url: "https://accounts.google.com/o/oauth2/v2/auth",
            token_url: "https://oauth2.googleapis.com/token",
            scopes: vec!["https://www.googleapis.com/auth/drive.readonly"],
            user_scopes: vec![],
            scope_separator: " ",
            pkce: true,
            client_auth: ClientAuth::RequestBody,
            access_token_pointer: "/access_token",
            refresh_token_pointer: Some("/refresh_token"),
            // Google issues a refresh token only with offline access, and again only when the
            // user is asked to consent again.
            extra_authorize_params: vec![("access_type", "offline"), ("prompt", "consent")],
        }),
    }
}

/// The `Authorization` value of an OAuth token; the secret is exposed only here.
fn authorization(auth: &AuthenticationRequest) -> Result<HeaderValue, String> {
    let token = match auth {
        AuthenticationRequest::OauthToken(token) => token.access_token.expose_secret(),
        other => {
            return Err(format!(
                "Google Drive takes an OAuth access token, not {} authentication",
                other.method().as_str()
            ))
        }
    };
    let mut value = HeaderValue::try_from(format!("Bearer {}", token.trim()))
        .map_err(|_| "the access token contains characters a token cannot have".to_owned())?;
    value.set_sensitive(true);
    Ok(value)
}

/// The `error.errors[].reason` values of a Google error body (empty when it is not one).
fn reasons(body: &[u8]) -> Vec<String> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            let errors = v.get("error")?.get("errors")?.as_array()?.clone();
            Some(
                errors
                    .iter()
                    .filter_map(|e| e.get("reason")?.as_str().map(str::to_owned))
                    .collect(),
            )
        })
        .unwrap_or_default()
}

/// A reason fit for a message: Google's reasons are short camelCase words; anything else is
/// not repeated.
fn safe_reason(reasons: &[String]) -> Option<&str> {
    reasons
        .iter()
        .map(String::as_str)
        .find(|r| r.len() <= 64 && !r.is_empty() && r.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// What a non-success answer means, before the caller turns it into its own error type.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    /// 401: the token expired or was revoked.
    Unauthenticated,
    /// 429, or 403 with a rate-limit or quota reason.
    RateLimited(Duration),
    /// A 403 that only the user can fix: the token lacks the scope, or an admin turned the app
    /// off (or Google gave no reason at all).
    Forbidden(Option<String>),
    /// 5xx.
    Unavailable(u16),
    /// Any other status, with Google's reason when it gave a readable one.
    Unexpected(u16, Option<String>),
}

fn refusal(answer: &Answer, now: DateTime<Utc>) -> Option<Refusal> {
    let status = answer.status;
    if status.is_success() {
        return None;
    }
    let reasons = reasons(&answer.body);
    let has = |names: &[&str]| reasons.iter().any(|r| names.contains(&r.as_str()));
    let limited = status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::FORBIDDEN;
    let wait = |default| retry_after(&answer.headers, now).unwrap_or(default);
    Some(if limited && has(&QUOTA_REASONS) {
        Refusal::RateLimited(wait(DAILY_LIMIT_WAIT))
    } else if status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::FORBIDDEN && has(&RATE_LIMIT_REASONS))
    {
        Refusal::RateLimited(wait(DEFAULT_RATE_LIMIT_WAIT))
    } else if status == StatusCode::UNAUTHORIZED {
        Refusal::Unauthenticated
    } else if status == StatusCode::FORBIDDEN && (reasons.is_empty() || has(&AUTH_REASONS)) {
        Refusal::Forbidden(safe_reason(&reasons).map(str::to_owned))
    } else if status.is_server_error() {
        Refusal::Unavailable(status.as_u16())
    } else {
        Refusal::Unexpected(status.as_u16(), safe_reason(&reasons).map(str::to_owned))
    })
}

/// Messages carry no source name: the platform puts "Google Drive" before them.
const REJECTED: &str = "the access token is invalid, expired or revoked";

fn forbidden_message(reason: &Option<String>) -> String {
    match reason {
        Some(r) => format!("access was refused ({r}); the token may lack the drive.readonly scope"),
        None => "access was refused; the token may lack the drive.readonly scope".into(),
    }
}

impl Refusal {
    fn into_stream_error(self) -> StreamError {
        match self {
            Self::Unauthenticated => StreamError::Rejected(REJECTED.into()),
            Self::RateLimited(wait) => StreamError::RateLimited { wait },
            Self::Forbidden(reason) => StreamError::Rejected(forbidden_message(&reason)),
            Self::Unavailable(status) => {
                StreamError::Upstream(format!("{API} is unavailable (HTTP {status})"))
            }
            Self::Unexpected(status, reason) => StreamError::Upstream(match reason {
                Some(r) => format!("{API} answered HTTP {status} ({r})"),
                None => format!("{API} answered with unexpected HTTP {status}"),
            }),
        }
    }

    fn into_check_error(self) -> CheckError {
        match self {
            Self::Unauthenticated => CheckError::Rejected(REJECTED.into()),
            Self::RateLimited(wait) => CheckError::RateLimited {
                retry_after: Some(wait),
            },
            Self::Forbidden(reason) => CheckError::Rejected(forbidden_message(&reason)),
            other => match other.into_stream_error() {
                StreamError::Upstream(m) => CheckError::Unavailable(m),
                e => CheckError::Unavailable(e.to_string()),
            },
        }
    }
}

/// Whether an `about?fields=user` body names a user.
fn is_about_user(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .is_some_and(|v| v.get("user").is_some_and(Value::is_object))
}

#[async_trait]
impl Source for GoogleDriveSource {
    fn spec(&self) -> &SourceSpec {
        &self.spec
    }

    /// `GET /drive/v3/about?fields=user`: the cheapest call that needs a valid Drive token.
    #[tracing::instrument(name = "google_drive_check_credentials", skip_all, fields(method = auth.method().as_str()))]
    async fn check_credentials(
        &self,
        auth: &AuthenticationRequest,
        _config: &Map<String, Value>,
    ) -> Result<(), CheckError> {
        let authorization = authorization(auth).map_err(CheckError::Rejected)?;
        let request = self
            .client
            .get(self.base_url.endpoint("drive/v3/about"))
            .query(&[("fields", "user")])
            .header(AUTHORIZATION, authorization);
        check_exchange(NAME, request, CHECK_BODY_LIMIT, |answer| {
            match refusal(answer, Utc::now()) {
                Some(refused) => Err(refused.into_check_error()),
                None if is_about_user(&answer.body) => Ok(()),
                None => Err(CheckError::Unavailable(format!(
                    "{API} answered with something other than the user"
                ))),
            }
        })
        .await
    }

    fn open_stream(&self, request: StreamRequest) -> Result<Box<dyn EntityStream>, StreamError> {
        let authorization = authorization(&request.auth).map_err(StreamError::Unsupported)?;
        let since = request
            .since
            .as_ref()
            .and_then(|v| v.get("start_page_token")?.as_str())
            .filter(|token| !token.is_empty())
            .map(str::to_owned);
        let position = match request.resume {
            Some(checkpoint) => serde_json::from_value::<Position>(checkpoint).map_err(|_| {
                StreamError::Malformed("the Google Drive checkpoint is unreadable".into())
            })?,
            None => Position::start(since.as_deref()),
        };
        // A checkpoint of a full run from before drives were listed one by one (it listed
        // `allDrives`), or one that was still listing every page of drives before any file,
        // cannot tell which drives are left: that run starts over.
        let position = match (&position.step, &position.drives) {
            (Step::Files { .. }, None) | (Step::Drives { .. }, _) => {
                Position::start(since.as_deref())
            }
            _ => position,
        };
        Ok(Box::new(DriveStream {
            client: self.client.clone(),
            base_url: self.base_url.clone(),
            authorization,
            incremental: since.is_some(),
            position,
            listing: None,
            budget: PAGE_TIME_BUDGET,
        }))
    }
}

/// Where a run is; the checkpoint after each page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Position {
    step: Step,
    /// The changes token the next run starts from: asked at the start of a full run, or the
    /// `newStartPageToken` that ends an incremental one.
    next_start: Option<String>,
    /// The ids of a full run's current page of shared drives, as `drives.list` named them:
    /// their files are listed one drive after the other (after the user's own, for the first
    /// page), then the next page's. At most [`DRIVES_PAGE_SIZE`] ids, so the checkpoint stays
    /// small however many drives the user is in. (A checkpoint of the version that listed every
    /// page of drives first holds them all here, and no `drives_next`: its run lists the drives
    /// left of them and ends.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    drives: Option<Vec<String>>,
    /// The `drives.list` token of the page after `drives`; `None` when that is the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    drives_next: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Step {
    /// A full run that has not asked for its start token yet.
    StartToken,
    /// Read from checkpoints of the version that listed every page of drives before any file
    /// (and kept them all): such a run starts over.
    Drives {
        page_token: Option<String>,
    },
    /// The page `page_token` of `drives.list` (`None`: the first), whose drives' files are
    /// listed before the next page is.
    DrivePage {
        page_token: Option<String>,
    },
    /// Files of `corpora=user` (`drive: None`) or of the shared drive `drives[drive]` of the
    /// current page; `last` is the id of the last file of the listing page `page_token` handed
    /// out (`None`: none).
    Files {
        #[serde(default)]
        drive: Option<usize>,
        page_token: Option<String>,
        #[serde(default)]
        last: Option<String>,
    },
    /// `last` names the last change of the changes page `page_token` handed out.
    Changes {
        page_token: String,
        #[serde(default)]
        last: Option<String>,
    },
    Done,
}

impl Position {
    fn start(since: Option<&str>) -> Self {
        match since {
            Some(token) => Self {
                step: Step::Changes {
                    page_token: token.to_owned(),
                    last: None,
                },
                next_start: None,
                drives: None,
                drives_next: None,
            },
            None => Self {
                step: Step::StartToken,
                next_start: None,
                drives: None,
                drives_next: None,
            },
        }
    }
}

/// One listed page of files or changes, held while it is handed out in slices.
struct Listing {
    items: Vec<Value>,
    next: After,
    /// How many of `items` were handed out.
    at: usize,
}

impl Listing {
    /// A page listed again by a resumed stream: what follows the last item handed out, or the
    /// whole page when that item is no longer in it (its answer changed as items came and
    /// went; handing an item out twice is harmless, skipping one is not).
    fn resume_after(mut self, last: Option<&str>, key: fn(&Value) -> Option<String>) -> Self {
        self.at = last
            .and_then(|last| {
                self.items
                    .iter()
                    .position(|item| key(item).as_deref() == Some(last))
            })
            .map_or(0, |i| i + 1);
        self
    }
}

/// What names a listed file.
fn file_key(file: &Value) -> Option<String> {
    file.get("id").and_then(Value::as_str).map(str::to_owned)
}

/// What names a change: its kind and the id of its file or drive.
fn change_key(change: &Value) -> Option<String> {
    let kind = change
        .get("changeType")
        .and_then(Value::as_str)
        .unwrap_or("file");
    let id = change
        .get("fileId")
        .or_else(|| change.get("driveId"))
        .and_then(Value::as_str)?;
    Some(format!("{kind}:{id}"))
}

/// What follows a listed page.
enum After {
    Page(String),
    /// The last page; a changes listing ends with the next start token.
    End(Option<String>),
}

struct DriveStream {
    client: reqwest::Client,
    base_url: BaseUrl,
    authorization: HeaderValue,
    incremental: bool,
    position: Position,
    listing: Option<Listing>,
    /// [`PAGE_TIME_BUDGET`]; tests shorten it.
    budget: Duration,
}

/// The text a file entity carries.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Content {
    text: Option<String>,
    truncated: bool,
}

impl Content {
    const NONE: Content = Content {
        text: None,
        truncated: false,
    };
}

impl DriveStream {
    async fn get(
        &self,
        path: &str,
        query: &[(&str, &str)],
        limit: usize,
    ) -> Result<Answer, StreamError> {
        let request = self
            .client
            .get(self.base_url.endpoint(path))
            .query(query)
            .header(AUTHORIZATION, self.authorization.clone());
        fetch(NAME, request, limit).await
    }

    /// A JSON answer of the API, or what its refusal means.
    async fn get_json(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, StreamError> {
        let answer = self.get(path, query, PAGE_BODY_LIMIT).await?;
        json_of(path, answer)
    }
}

/// A JSON answer of the API, or what its refusal means.
fn json_of(path: &str, answer: Answer) -> Result<Value, StreamError> {
    if let Some(refused) = refusal(&answer, Utc::now()) {
        tracing::info!(
            status = answer.status.as_u16(),
            path,
            "Google Drive refused a page"
        );
        return Err(refused.into_stream_error());
    }
    match serde_json::from_slice::<Value>(&answer.body) {
        Ok(body) if body.is_object() => Ok(body),
        Ok(_) => Err(malformed(path)),
        Err(_) => Err(StreamError::Malformed(format!(
            "the answer to /{path} is not JSON (HTTP {})",
            answer.status.as_u16()
        ))),
    }
}

impl DriveStream {
    async fn start_page_token(&self) -> Result<String, StreamError> {
        let path = "drive/v3/changes/startPageToken";
        let body = self
            .get_json(path, &[("supportsAllDrives", "true")])
            .await?;
        body.get("startPageToken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| malformed(path))
    }

    async fn drives_page(
        &self,
        page_token: Option<&str>,
    ) -> Result<(Vec<Entity>, After), StreamError> {
        let path = "drive/v3/drives";
        let size = DRIVES_PAGE_SIZE.to_string();
        let fields = format!("nextPageToken,drives({DRIVE_FIELDS})");
        let mut query = vec![("pageSize", size.as_str()), ("fields", fields.as_str())];
        if let Some(token) = page_token {
            query.push(("pageToken", token));
        }
        let body = self.get_json(path, &query).await?;
        let drives = body
            .get("drives")
            .map_or(Some(&[][..]), |d| d.as_array().map(Vec::as_slice))
            .ok_or_else(|| malformed(path))?;
        let entities = drives
            .iter()
            .map(|d| drive_entity(d).ok_or_else(|| malformed(path)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((entities, next_page(&body, None)))
    }

    /// A page of `corpora=user` (`drive: None`) or of one shared drive; `None` when that shared
    /// drive is gone (404): its files are gone with it.
    async fn files_listing(
        &self,
        drive: Option<&str>,
        page_token: Option<&str>,
    ) -> Result<Option<Listing>, StreamError> {
        let path = "drive/v3/files";
        let size = FILES_PAGE_SIZE.to_string();
        let fields = format!("nextPageToken,incompleteSearch,files({FILE_FIELDS})");
        let mut query = vec![
            ("pageSize", size.as_str()),
            ("fields", fields.as_str()),
            ("q", "trashed = false"),
        ];
        match drive {
            // Without these, a file of someone else's shared drive shared directly with the
            // user (who is not a member: its drive is not in `drives.list`) is never listed,
            // while `changes` reports it: every full run would delete it again. A file also
            // listed with its drive is counted once.
            None => query.extend([
                ("corpora", "user"),
                ("supportsAllDrives", "true"),
                ("includeItemsFromAllDrives", "true"),
            ]),
            Some(id) => query.extend([
                ("corpora", "drive"),
                ("driveId", id),
                ("supportsAllDrives", "true"),
                ("includeItemsFromAllDrives", "true"),
            ]),
        }
        if let Some(token) = page_token {
            query.push(("pageToken", token));
        }
        let answer = self.get(path, &query, PAGE_BODY_LIMIT).await?;
        if drive.is_some() && answer.status == StatusCode::NOT_FOUND {
            tracing::info!("a shared drive was gone before its files were listed");
            return Ok(None);
        }
        let body = json_of(path, answer)?;
        // A full run deletes what it does not list: a listing Drive says is incomplete must not
        // end one.
        if body.get("incompleteSearch").and_then(Value::as_bool) == Some(true) {
            return Err(StreamError::Upstream(format!(
                "{API} could not list every file (incompleteSearch); nothing was deleted"
            )));
        }
        let items = body
            .get("files")
            .map_or(Some(Vec::new()), |f| f.as_array().cloned())
            .ok_or_else(|| malformed(path))?;
        Ok(Some(Listing {
            items,
            next: next_page(&body, None),
            at: 0,
        }))
    }

    async fn changes_listing(&self, page_token: &str) -> Result<Listing, StreamError> {
        let path = "drive/v3/changes";
        let size = CHANGES_PAGE_SIZE.to_string();
        let fields = format!(
            "nextPageToken,newStartPageToken,\
             changes(changeType,removed,fileId,driveId,file({FILE_FIELDS}),drive({DRIVE_FIELDS}))"
        );
        let query = [
            ("pageToken", page_token),
            ("pageSize", size.as_str()),
            ("fields", fields.as_str()),
            ("includeRemoved", "true"),
            ("supportsAllDrives", "true"),
            ("includeItemsFromAllDrives", "true"),
        ];
        let body = self.get_json(path, &query).await?;
        let items = body
            .get("changes")
            .and_then(Value::as_array)
            .cloned()
            .ok_or_else(|| malformed(path))?;
        let new_start = body
            .get("newStartPageToken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty());
        let next = next_page(&body, new_start);
        if matches!(next, After::End(None)) {
            return Err(StreamError::Malformed(format!(
                "{API} ended the changes without a new start token"
            )));
        }
        Ok(Listing { items, next, at: 0 })
    }

    /// The text of a Google Doc (exported as plain text) or of a small text file; none for
    /// anything else, or when Drive will not give it (too large to export, gone meanwhile).
    async fn content(&self, file: &Value) -> Result<Content, StreamError> {
        let Some(id) = file.get("id").and_then(Value::as_str) else {
            return Ok(Content::NONE);
        };
        let id = url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>();
        let answer = match content_kind(file) {
            Some(ContentKind::Export) => {
                let path = format!("drive/v3/files/{id}/export");
                let query = [("mimeType", "text/plain")];
                self.get(&path, &query, CONTENT_LIMIT + 1).await?
            }
            Some(ContentKind::Download) => {
                let path = format!("drive/v3/files/{id}");
                let query = [("alt", "media"), ("supportsAllDrives", "true")];
                self.get(&path, &query, CONTENT_LIMIT + 1).await?
            }
            None => return Ok(Content::NONE),
        };
        match refusal(&answer, Utc::now()) {
            None => Ok(text_content(&answer.body)),
            Some(
                r @ (Refusal::Unauthenticated | Refusal::RateLimited(_) | Refusal::Unavailable(_)),
            ) => Err(r.into_stream_error()),
            // This file's content only: the file itself is still synced.
            Some(other) => {
                tracing::info!(status = answer.status.as_u16(), refusal = ?other, "Google Drive gave no content for a file");
                Ok(Content::NONE)
            }
        }
    }

    /// Hands out the next slice of the held listing: entities and removals, fetching at most
    /// [`CONTENT_FETCHES_PER_PAGE`] contents and starting none once the page's time budget
    /// (counted from `started`) is spent, as long as the slice hands out something. Answers the
    /// new offset.
    async fn slice(
        &self,
        items: &[Value],
        offset: usize,
        changes: bool,
        started: Instant,
    ) -> Result<(Vec<Entity>, Vec<EntityKey>, usize), StreamError> {
        let mut entities = Vec::new();
        let mut removed = Vec::new();
        let mut fetches = 0;
        let mut at = offset;
        while at < items.len() {
            let item = &items[at];
            let file = if changes {
                match change_target(item).ok_or_else(|| malformed("drive/v3/changes"))? {
                    Target::Gone(key) => {
                        removed.push(key);
                        at += 1;
                        continue;
                    }
                    Target::Drive(drive) => {
                        entities.push(
                            drive_entity(drive).ok_or_else(|| malformed("drive/v3/changes"))?,
                        );
                        at += 1;
                        continue;
                    }
                    Target::File(file) => file,
                }
            } else {
                item
            };
            let needs_content = content_kind(file).is_some();
            let out_of_time = at > offset && started.elapsed() >= self.budget;
            if needs_content && (fetches == CONTENT_FETCHES_PER_PAGE || out_of_time) {
                break;
            }
            let content = if needs_content {
                fetches += 1;
                self.content(file).await?
            } else {
                Content::NONE
            };
            let path = if changes {
                "drive/v3/changes"
            } else {
                "drive/v3/files"
            };
            entities.push(file_entity(file, content).ok_or_else(|| malformed(path))?);
            at += 1;
        }
        Ok((entities, removed, at))
    }
}

impl DriveStream {
    /// The id of the run's `i`th shared drive.
    fn drive_id(&self, i: usize) -> Option<String> {
        self.position.drives.as_ref()?.get(i).cloned()
    }

    /// What follows the files of `corpora=user` (`None`) or of the `i`th shared drive of the
    /// current page: the next shared drive's.
    fn after_corpus(&self, drive: Option<usize>) -> Step {
        self.drive_from(drive.map_or(0, |i| i + 1))
    }

    /// The files of the current page's `i`th shared drive; past the page's last drive, the
    /// next page of drives, or the end.
    fn drive_from(&self, i: usize) -> Step {
        match (self.drive_id(i), &self.position.drives_next) {
            (Some(_), _) => Step::Files {
                drive: Some(i),
                page_token: None,
                last: None,
            },
            (None, Some(token)) => Step::DrivePage {
                page_token: Some(token.clone()),
            },
            (None, None) => Step::Done,
        }
    }
}

fn malformed(path: &str) -> StreamError {
    StreamError::Malformed(format!("the answer to /{path} is not a page of the {API}"))
}

fn next_page(body: &Value, new_start: Option<&str>) -> After {
    match body
        .get("nextPageToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        Some(token) => After::Page(token.to_owned()),
        None => After::End(new_start.map(str::to_owned)),
    }
}

/// What one change is about.
enum Target<'a> {
    File(&'a Value),
    Drive(&'a Value),
    Gone(EntityKey),
}

/// `None` when the change names nothing.
fn change_target(change: &Value) -> Option<Target<'_>> {
    let removed = change.get("removed").and_then(Value::as_bool) == Some(true);
    if change.get("changeType").and_then(Value::as_str) == Some("drive") {
        let id = change.get("driveId").and_then(Value::as_str)?;
        return Some(match change.get("drive").filter(|d| d.is_object()) {
            Some(drive) if !removed => Target::Drive(drive),
            _ => Target::Gone(EntityKey::new(DRIVE_TYPE, id).ok()?),
        });
    }
    let id = change.get("fileId").and_then(Value::as_str)?;
    match change.get("file").filter(|f| f.is_object()) {
        Some(file) if !removed && file.get("trashed").and_then(Value::as_bool) != Some(true) => {
            Some(Target::File(file))
        }
        _ => Some(Target::Gone(EntityKey::new(FILE_TYPE, id).ok()?)),
    }
}

/// Drive sends `size` as an int64 string.
fn file_size(file: &Value) -> Option<u64> {
    match file.get("size")? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// How a file's text is fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ContentKind {
    /// A Google Doc, exported as plain text.
    Export,
    /// A small text file, downloaded as it is.
    Download,
}

/// `None` for a file whose text is not synced (folders, binaries, large files).
fn content_kind(file: &Value) -> Option<ContentKind> {
    let mime = file.get("mimeType").and_then(Value::as_str).unwrap_or("");
    if mime == GOOGLE_DOC {
        Some(ContentKind::Export)
    } else if mime.starts_with("text/") && file_size(file).is_some_and(|s| s <= TEXT_FILE_MAX_BYTES)
    {
        Some(ContentKind::Download)
    } else {
        None
    }
}

/// At most [`CONTENT_LIMIT`] bytes of text, cut on a character boundary.
fn text_content(body: &[u8]) -> Content {
    let truncated = body.len() > CONTENT_LIMIT;
    let mut kept = &body[..body.len().min(CONTENT_LIMIT)];
    if truncated {
        // A cut may split a character: keep what decodes.
        if let Err(e) = std::str::from_utf8(kept) {
            if e.error_len().is_none() {
                kept = &kept[..e.valid_up_to()];
            }
        }
    }
    // Drive's plain-text export of a Doc starts with a byte order mark: not text anyone reads.
    let kept = kept.strip_prefix("\u{feff}".as_bytes()).unwrap_or(kept);
    Content {
        text: Some(String::from_utf8_lossy(kept).into_owned()),
        truncated,
    }
}

fn time(value: Option<&Value>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value?.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn person(value: Option<&Value>) -> Value {
    match value {
        Some(p) if p.is_object() => json!({
            "name": p.get("displayName"),
            "email": p.get("emailAddress"),
        }),
        _ => Value::Null,
    }
}

/// `None` when the file has no id.
fn file_entity(file: &Value, content: Content) -> Option<Entity> {
    let id = file.get("id")?.as_str().filter(|id| !id.is_empty())?;
    let name = file.get("name").and_then(Value::as_str).unwrap_or("");
    let owners: Vec<Value> = file
        .get("owners")
        .and_then(Value::as_array)
        .map(|o| o.iter().map(|p| person(Some(p))).collect())
        .unwrap_or_default();
    let mime = file.get("mimeType").cloned().unwrap_or(Value::Null);
    let payload = json!({
        "id": id,
        "name": name,
        "mime_type": mime,
        "is_folder": mime == "application/vnd.google-apps.folder",
        "description": file.get("description"),
        "web_view_link": file.get("webViewLink"),
        "created_time": file.get("createdTime"),
        "modified_time": file.get("modifiedTime"),
        "size": file_size(file),
        "md5_checksum": file.get("md5Checksum"),
        "file_extension": file.get("fileExtension"),
        "starred": file.get("starred").and_then(Value::as_bool).unwrap_or(false),
        "parents": file.get("parents").cloned().unwrap_or_else(|| json!([])),
        "drive_id": file.get("driveId"),
        "owners": owners,
        "last_modifying_user": person(file.get("lastModifyingUser")),
        "content": content.text,
        "content_truncated": content.truncated,
    });
    Some(Entity {
        entity_type: FILE_TYPE.into(),
        entity_id: id.to_owned(),
        title: name.to_owned(),
        updated_at: time(file.get("modifiedTime")),
        payload,
    })
}

/// `None` when the drive has no id.
fn drive_entity(drive: &Value) -> Option<Entity> {
    let id = drive.get("id")?.as_str().filter(|id| !id.is_empty())?;
    let name = drive.get("name").and_then(Value::as_str).unwrap_or("");
    Some(Entity {
        entity_type: DRIVE_TYPE.into(),
        entity_id: id.to_owned(),
        title: name.to_owned(),
        // Drive tells no modification time for a shared drive.
        updated_at: time(drive.get("createdTime")),
        payload: json!({
            "id": id,
            "name": name,
            "created_time": drive.get("createdTime"),
            "hidden": drive.get("hidden").and_then(Value::as_bool).unwrap_or(false),
        }),
    })
}

#[async_trait]
impl EntityStream for DriveStream {
    async fn next_page(&mut self) -> Result<Option<EntityPage>, StreamError> {
        let started = Instant::now();
        loop {
            let (entities, removed) = match self.position.step.clone() {
                Step::Done => return Ok(None),
                Step::StartToken => {
                    // Asked before listing: whatever changes while this run lists, the next
                    // one sees.
                    self.position.next_start = Some(self.start_page_token().await?);
                    self.position.step = Step::DrivePage { page_token: None };
                    continue;
                }
                // Restarted in `open_stream`; not a step this version takes.
                Step::Drives { .. } => {
                    return Err(StreamError::Malformed(
                        "the Google Drive checkpoint is from an older version".into(),
                    ))
                }
                Step::DrivePage { page_token } => {
                    let (entities, after) = self.drives_page(page_token.as_deref()).await?;
                    // Only this page's drives are kept: the checkpoint stays small.
                    self.position.drives =
                        Some(entities.iter().map(|d| d.entity_id.clone()).collect());
                    self.position.drives_next = match after {
                        After::Page(token) => Some(token),
                        After::End(_) => None,
                    };
                    self.position.step = match page_token {
                        // The user's own files come after the first page of drives.
                        None => Step::Files {
                            drive: None,
                            page_token: None,
                            last: None,
                        },
                        Some(_) => self.drive_from(0),
                    };
                    (entities, Vec::new())
                }
                Step::Files {
                    drive,
                    page_token,
                    last,
                } => {
                    let drive_id = match drive {
                        None => None,
                        Some(i) => match self.drive_id(i) {
                            Some(id) => Some(id),
                            // Past the page's drives: the next page, or the end.
                            None => {
                                self.position.step = self.drive_from(i);
                                continue;
                            }
                        },
                    };
                    let listing = match self.listing.take() {
                        Some(listing) => listing,
                        None => match self
                            .files_listing(drive_id.as_deref(), page_token.as_deref())
                            .await?
                        {
                            Some(listing) => listing.resume_after(last.as_deref(), file_key),
                            None => {
                                self.position.step = self.after_corpus(drive);
                                continue;
                            }
                        },
                    };
                    let (entities, removed, at) = self
                        .slice(&listing.items, listing.at, false, started)
                        .await?;
                    self.position.step = if at < listing.items.len() {
                        let last = listing.items[..at].last().and_then(file_key).or(last);
                        self.listing = Some(Listing { at, ..listing });
                        Step::Files {
                            drive,
                            page_token,
                            last,
                        }
                    } else {
                        match listing.next {
                            After::Page(token) => Step::Files {
                                drive,
                                page_token: Some(token),
                                last: None,
                            },
                            After::End(_) => self.after_corpus(drive),
                        }
                    };
                    (entities, removed)
                }
                Step::Changes { page_token, last } => {
                    let listing = match self.listing.take() {
                        Some(listing) => listing,
                        None => self
                            .changes_listing(&page_token)
                            .await?
                            .resume_after(last.as_deref(), change_key),
                    };
                    let (entities, removed, at) = self
                        .slice(&listing.items, listing.at, true, started)
                        .await?;
                    self.position.step = if at < listing.items.len() {
                        let last = listing.items[..at].last().and_then(change_key).or(last);
                        self.listing = Some(Listing { at, ..listing });
                        Step::Changes { page_token, last }
                    } else {
                        match listing.next {
                            After::Page(token) => Step::Changes {
                                page_token: token,
                                last: None,
                            },
                            After::End(new_start) => {
                                self.position.next_start = new_start;
                                Step::Done
                            }
                        }
                    };
                    (entities, removed)
                }
            };
            return Ok(Some(EntityPage {
                entities,
                removed,
                checkpoint: serde_json::to_value(&self.position).expect("a position serializes"),
            }));
        }
    }

    fn incremental(&self) -> bool {
        self.incremental
    }

    fn cursor(&self) -> Option<Value> {
        self.position
            .next_start
            .as_ref()
            .map(|token| json!({ "start_page_token": token }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{header_map as headers, test_now as now, FakeUpstream, Reply, Seen};
    use crate::upstream::http_client;
    use domain::auth::{Credentials, OauthToken};
    use secrecy::SecretString;
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    const TOKEN: &str = "ya29.test-secret-access-token-never-logged";

    fn oauth(token: &str) -> AuthenticationRequest {
        AuthenticationRequest::OauthToken(OauthToken {
            access_token: SecretString::from(token.to_owned()),
            refresh_token: Some(SecretString::from("1//refresh-secret".to_owned())),
            expires_at: None,
        })
    }

    /// A fake that answers the listed (path, reply) pairs in order; a request off the script
    /// gets a 418 the stream reports as an unexpected status.
    async fn scripted(script: Vec<(&'static str, Reply)>) -> FakeUpstream {
        let script = Mutex::new(VecDeque::from(script));
        FakeUpstream::start(move |seen: &Seen| {
            let mut script = script.lock().unwrap();
            match script.pop_front() {
                Some((path, reply)) if seen.path == path => reply,
                _ => Reply::status(418).text("off script"),
            }
        })
        .await
    }

    fn source_for(fake: &FakeUpstream) -> GoogleDriveSource {
        source_at(&fake.base_url)
    }

    fn source_at(base_url: &str) -> GoogleDriveSource {
        GoogleDriveSource::new(http_client().unwrap(), BaseUrl::parse(base_url).unwrap())
    }

    fn request(since: Option<Value>, resume: Option<Value>) -> StreamRequest {
        StreamRequest {
            auth: oauth(TOKEN),
            config: Map::new(),
            since,
            resume,
        }
    }

    /// A Drive on 127.0.0.1 whose closure sees each request's path and query parameters
    /// ([`FakeUpstream`] tells the path only) and answers a JSON body with HTTP 200.
    struct QueryFake {
        base_url: String,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for QueryFake {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    type Query = std::collections::HashMap<String, String>;

    async fn query_fake(
        answer: impl Fn(&str, &Query) -> Value + Send + Sync + 'static,
    ) -> QueryFake {
        use http_body_util::Full;
        use hyper::body::{Bytes, Incoming};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let answer = Arc::new(answer);
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                while connections.try_join_next().is_some() {}
                let answer = Arc::clone(&answer);
                connections.spawn(async move {
                    let service =
                        hyper::service::service_fn(move |asked: hyper::Request<Incoming>| {
                            let query = asked.uri().query().unwrap_or_default().as_bytes();
                            let query: Query =
                                url::form_urlencoded::parse(query).into_owned().collect();
                            let body = answer(asked.uri().path(), &query).to_string();
                            let response = hyper::Response::new(Full::new(Bytes::from(body)));
                            async move { Ok::<_, std::convert::Infallible>(response) }
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        QueryFake { base_url, task }
    }

    fn open(
        fake: &FakeUpstream,
        since: Option<Value>,
        resume: Option<Value>,
    ) -> Box<dyn EntityStream> {
        source_for(fake)
            .open_stream(request(since, resume))
            .unwrap()
    }

    fn ok(body: Value) -> Reply {
        Reply::status(200).json(body)
    }

    fn google_error(code: u16, reason: &str, status: &str) -> Reply {
        Reply::status(code).json(json!({"error": {
            "code": code,
            "message": "an error",
            "errors": [{"domain": "usageLimits", "reason": reason, "message": "an error"}],
            "status": status,
        }}))
    }

    fn file(id: &str, mime: &str) -> Value {
        json!({
            "id": id,
            "name": format!("File {id}"),
            "mimeType": mime,
            "modifiedTime": "2026-03-01T10:00:00.000Z",
            "createdTime": "2026-02-01T10:00:00.000Z",
            "owners": [{"displayName": "Ada", "emailAddress": "ada@example.com", "me": true}],
            "webViewLink": format!("https://docs.google.com/d/{id}"),
            "parents": ["root"],
        })
    }

    fn text_file(id: &str, size: u64) -> Value {
        let mut f = file(id, "text/plain");
        f["size"] = json!(size.to_string());
        f
    }

    /// Where a full run's files start, with start token `5`.
    fn at_files() -> Option<Value> {
        Some(json!({"step": {"kind": "files", "page_token": null},
                    "next_start": "5", "drives": []}))
    }

    fn ids(page: &EntityPage) -> Vec<String> {
        page.entities
            .iter()
            .map(|e| format!("{}:{}", e.entity_type, e.entity_id))
            .collect()
    }

    async fn page(stream: &mut Box<dyn EntityStream>) -> EntityPage {
        stream.next_page().await.unwrap().expect("a page")
    }

    // --- the catalog entry ---

    #[test]
    fn the_catalog_entry_reads_as_documented() {
        let spec = spec();
        assert_eq!(spec.short_name, "google_drive");
        assert_eq!(spec.name, "Google Drive");
        assert_eq!(
            spec.auth_methods,
            [
                AuthMethod::OauthToken,
                AuthMethod::OauthBrowser,
                AuthMethod::OauthByoc,
                AuthMethod::AuthProvider
            ]
        );
        assert!(!spec.requires_byoc && spec.supports_incremental && !spec.federated_search);
        assert_eq!(
            spec.entity_types,
            ["google_drive_file", "google_drive_drive"]
        );
        let oauth = spec.oauth.unwrap();
        assert_eq!(
            oauth.scopes,
            ["https://www.googleapis.com/auth/drive.readonly"]
        );
        assert_eq!(oauth.oauth_type(), "with_refresh");
        assert!(oauth.pkce);
        assert_eq!(
            oauth.extra_authorize_params,
            [("access_type", "offline"), ("prompt", "consent")]
        );
    }

    // --- classification of answers ---

    fn answer(status: u16, pairs: &[(&'static str, &str)], body: Value) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: headers(pairs),
            body: body.to_string().into_bytes(),
        }
    }

    fn error_body(code: u16, reason: &str) -> Value {
        json!({"error": {"code": code, "message": "m", "errors": [{"reason": reason}]}})
    }

    #[test]
    fn rate_limits_are_403_with_a_rate_reason_or_429() {
        let at = |a: Answer| refusal(&a, now());
        assert_eq!(
            at(answer(403, &[], error_body(403, "userRateLimitExceeded"))),
            Some(Refusal::RateLimited(DEFAULT_RATE_LIMIT_WAIT))
        );
        assert_eq!(
            at(answer(
                403,
                &[("retry-after", "1")],
                error_body(403, "rateLimitExceeded")
            )),
            Some(Refusal::RateLimited(Duration::from_secs(1)))
        );
        assert_eq!(
            at(answer(429, &[], json!("Too Many Requests"))),
            Some(Refusal::RateLimited(DEFAULT_RATE_LIMIT_WAIT))
        );
        assert_eq!(
            at(answer(403, &[], error_body(403, "insufficientPermissions"))),
            Some(Refusal::Forbidden(Some("insufficientPermissions".into())))
        );
        assert_eq!(at(answer(200, &[], json!({}))), None);
    }

    #[test]
    fn quotas_wait_and_only_scope_or_policy_refusals_ask_for_a_new_token() {
        let error = |status, reason: &str| {
            refusal(&answer(status, &[], error_body(status, reason)), now())
                .unwrap()
                .into_stream_error()
        };
        let daily = StreamError::RateLimited {
            wait: DAILY_LIMIT_WAIT,
        };
        assert_eq!(error(403, "dailyLimitExceeded"), daily);
        assert_eq!(error(403, "quotaExceeded"), daily);
        assert_eq!(error(429, "dailyLimitExceeded"), daily);
        assert_eq!(
            error(403, "sharingRateLimitExceeded"),
            StreamError::RateLimited {
                wait: DEFAULT_RATE_LIMIT_WAIT
            }
        );
        assert_eq!(
            refusal(
                &answer(
                    403,
                    &[("retry-after", "120")],
                    error_body(403, "dailyLimitExceeded")
                ),
                now()
            ),
            Some(Refusal::RateLimited(Duration::from_secs(120)))
        );
        for reason in ["insufficientPermissions", "domainPolicy", "authError"] {
            assert!(
                matches!(error(403, reason), StreamError::Rejected(_)),
                "{reason}"
            );
        }
        for reason in [
            "insufficientFilePermissions",
            "cannotDownloadFile",
            "forbidden",
        ] {
            let e = error(403, reason);
            assert!(
                matches!(&e, StreamError::Upstream(m) if m.contains(reason)),
                "{reason}: {e:?}"
            );
        }
    }

    #[test]
    fn other_refusals_say_what_the_user_must_do() {
        let error = |a: Answer| refusal(&a, now()).unwrap().into_stream_error();
        let revoked = error(answer(401, &[], error_body(401, "authError")));
        assert!(
            matches!(revoked, StreamError::Rejected(ref m) if m.contains("expired or revoked")),
            "{revoked:?}"
        );
        let scope = error(answer(403, &[], error_body(403, "insufficientPermissions")));
        assert!(
            matches!(scope, StreamError::Rejected(ref m) if m.contains("drive.readonly")),
            "{scope:?}"
        );
        assert_eq!(
            error(answer(503, &[], json!({}))),
            StreamError::Upstream("the Drive API is unavailable (HTTP 503)".into())
        );
        assert_eq!(
            error(answer(404, &[], error_body(404, "notFound"))),
            StreamError::Upstream("the Drive API answered HTTP 404 (notFound)".into())
        );
        // A reason that is not one of Google's words is not repeated.
        assert_eq!(
            error(answer(400, &[], error_body(400, "see https://x?token=abc"))),
            StreamError::Upstream("the Drive API answered with unexpected HTTP 400".into())
        );
    }

    // --- credential checks ---

    #[tokio::test]
    async fn the_check_asks_about_the_user_with_the_bearer_token() {
        let fake = scripted(vec![(
            "/drive/v3/about",
            ok(json!({"user": {"kind": "drive#user", "displayName": "Ada"}})),
        )])
        .await;
        let source = source_for(&fake);
        assert_eq!(
            source.check_credentials(&oauth(TOKEN), &Map::new()).await,
            Ok(())
        );
        let seen = fake.seen();
        assert_eq!(
            seen[0].header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }

    #[tokio::test]
    async fn a_revoked_token_is_rejected_without_repeating_it() {
        let fake = scripted(vec![(
            "/drive/v3/about",
            google_error(401, "authError", "UNAUTHENTICATED"),
        )])
        .await;
        let result = source_for(&fake)
            .check_credentials(&oauth(TOKEN), &Map::new())
            .await;
        match result {
            Err(CheckError::Rejected(m)) => assert!(!m.contains(TOKEN), "{m}"),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_check_rate_limited_or_answered_oddly_is_not_a_rejection() {
        let fake = scripted(vec![
            (
                "/drive/v3/about",
                google_error(403, "userRateLimitExceeded", "PERMISSION_DENIED")
                    .header("retry-after", "7"),
            ),
            ("/drive/v3/about", ok(json!({"kind": "something else"}))),
        ])
        .await;
        let source = source_for(&fake);
        assert_eq!(
            source.check_credentials(&oauth(TOKEN), &Map::new()).await,
            Err(CheckError::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            })
        );
        assert!(matches!(
            source.check_credentials(&oauth(TOKEN), &Map::new()).await,
            Err(CheckError::Unavailable(_))
        ));
        let key = json!({"api_key": "k"});
        let direct =
            AuthenticationRequest::Direct(Credentials::new(key.as_object().unwrap().clone()));
        assert!(matches!(
            source.check_credentials(&direct, &Map::new()).await,
            Err(CheckError::Rejected(_))
        ));
    }

    // --- full runs: paging, content, cursor ---

    #[tokio::test]
    async fn a_full_run_lists_drives_then_every_file_page_and_keeps_the_start_token() {
        let fake = scripted(vec![
            (
                "/drive/v3/changes/startPageToken",
                ok(json!({"kind": "drive#startPageToken", "startPageToken": "41"})),
            ),
            (
                "/drive/v3/drives",
                ok(json!({"drives": [
                    {"id": "0AD", "name": "Team", "createdTime": "2026-01-01T00:00:00Z"}
                ]})),
            ),
            (
                "/drive/v3/files",
                ok(
                    json!({"nextPageToken": "p2", "incompleteSearch": false, "files": [
                        file("f1", "application/vnd.google-apps.folder"),
                        file("f2", "image/png"),
                    ]}),
                ),
            ),
            (
                "/drive/v3/files",
                ok(json!({"incompleteSearch": false, "files": [file("doc1", GOOGLE_DOC)]})),
            ),
            (
                "/drive/v3/files/doc1/export",
                Reply::status(200).text("Quarterly plan\r\nShip it."),
            ),
            (
                "/drive/v3/files",
                ok(
                    json!({"files": [{"id": "t1", "name": "Team file", "mimeType": "image/png",
                                     "driveId": "0AD"}]}),
                ),
            ),
        ])
        .await;
        let mut stream = open(&fake, None, None);
        let drives = page(&mut stream).await;
        assert_eq!(ids(&drives), ["google_drive_drive:0AD"]);
        let first = page(&mut stream).await;
        assert_eq!(
            ids(&first),
            ["google_drive_file:f1", "google_drive_file:f2"]
        );
        assert_eq!(first.entities[0].payload["is_folder"], true);
        assert_eq!(first.entities[1].payload["content"], Value::Null);
        let second = page(&mut stream).await;
        assert_eq!(ids(&second), ["google_drive_file:doc1"]);
        let doc = &second.entities[0];
        assert_eq!(doc.title, "File doc1");
        assert_eq!(doc.payload["content"], "Quarterly plan\r\nShip it.");
        assert_eq!(doc.payload["owners"][0]["email"], "ada@example.com");
        assert_eq!(
            doc.updated_at.unwrap().to_rfc3339(),
            "2026-03-01T10:00:00+00:00"
        );
        assert!(second.removed.is_empty());
        let team = page(&mut stream).await;
        assert_eq!(ids(&team), ["google_drive_file:t1"]);
        assert_eq!(team.entities[0].payload["drive_id"], "0AD");
        assert!(stream.next_page().await.unwrap().is_none());
        assert!(!stream.incremental());
        assert_eq!(stream.cursor(), Some(json!({"start_page_token": "41"})));
        // The user's own files, then the shared drive's (the e2e test checks the queries).
        assert_eq!(fake.seen().len(), 6);
    }

    #[tokio::test]
    async fn a_listing_page_is_handed_out_in_slices_and_a_resumed_stream_continues() {
        let docs: Vec<Value> = (0..12)
            .map(|i| file(&format!("d{i:02}"), GOOGLE_DOC))
            .collect();
        let listing = ok(json!({ "files": docs }));
        let fake = FakeUpstream::start(move |seen: &Seen| {
            if seen.path == "/drive/v3/files" {
                listing.clone()
            } else if seen.path.ends_with("/export") {
                Reply::status(200).text("text of a doc")
            } else {
                Reply::status(418)
            }
        })
        .await;
        let mut stream = open(&fake, None, at_files());
        let first = page(&mut stream).await;
        assert_eq!(first.entities.len(), CONTENT_FETCHES_PER_PAGE);
        assert_eq!(
            fake.seen().len(),
            1 + CONTENT_FETCHES_PER_PAGE,
            "listed once"
        );
        let checkpoint = first.checkpoint.clone();
        assert_eq!(checkpoint["step"]["last"], "d09");

        // A new stream from the checkpoint lists the page again and skips what was handed out.
        let mut resumed = open(&fake, None, Some(checkpoint));
        let rest = page(&mut resumed).await;
        assert_eq!(
            ids(&rest),
            ["google_drive_file:d10", "google_drive_file:d11"]
        );
        assert!(resumed.next_page().await.unwrap().is_none());
        assert_eq!(resumed.cursor(), Some(json!({"start_page_token": "5"})));
    }

    /// A fake whose `files` listing (one page) and `changes` listing (one page, then the new
    /// start token `99`) a test changes between calls; every doc exports some text.
    async fn changing(files: Arc<Mutex<Vec<Value>>>) -> FakeUpstream {
        FakeUpstream::start(move |seen: &Seen| {
            let items = files.lock().unwrap().clone();
            if seen.path == "/drive/v3/files" {
                ok(json!({ "files": items }))
            } else if seen.path == "/drive/v3/changes" {
                let changes: Vec<Value> = items
                    .iter()
                    .map(|f| json!({"changeType": "file", "fileId": f["id"], "file": f}))
                    .collect();
                ok(json!({"newStartPageToken": "99", "changes": changes}))
            } else if seen.path.ends_with("/export") {
                Reply::status(200).text("text of a doc")
            } else {
                Reply::status(418)
            }
        })
        .await
    }

    fn docs(n: usize) -> Arc<Mutex<Vec<Value>>> {
        let docs = (0..n)
            .map(|i| file(&format!("d{i:02}"), GOOGLE_DOC))
            .collect();
        Arc::new(Mutex::new(docs))
    }

    fn drop_doc(docs: &Arc<Mutex<Vec<Value>>>, id: &str) {
        docs.lock().unwrap().retain(|f| f["id"] != id);
    }

    /// Every id of the stream's pages until it ends.
    async fn rest(stream: &mut Box<dyn EntityStream>) -> Vec<String> {
        let mut all = Vec::new();
        while let Some(page) = stream.next_page().await.unwrap() {
            all.extend(ids(&page));
        }
        all
    }

    #[tokio::test]
    async fn a_resumed_listing_goes_on_after_the_last_file_handed_out_even_if_files_went() {
        let listed = docs(12);
        let fake = changing(Arc::clone(&listed)).await;
        let mut stream = open(&fake, None, at_files());
        let first = page(&mut stream).await;
        assert_eq!(first.entities.len(), CONTENT_FETCHES_PER_PAGE);
        // A file handed out already leaves the page: by count, the resumed stream would skip
        // d10, which it never handed out, and the run would delete it as absent.
        drop_doc(&listed, "d03");
        let mut resumed = open(&fake, None, Some(first.checkpoint.clone()));
        assert_eq!(
            rest(&mut resumed).await,
            ["google_drive_file:d10", "google_drive_file:d11"]
        );

        // The last file handed out itself left the page: the whole page comes again.
        drop_doc(&listed, "d09");
        let mut resumed = open(&fake, None, Some(first.checkpoint));
        let again = rest(&mut resumed).await;
        assert_eq!(again.len(), 10, "{again:?}");
        assert!(again.contains(&"google_drive_file:d00".to_owned()));
        assert!(again.contains(&"google_drive_file:d10".to_owned()));
        assert!(again.contains(&"google_drive_file:d11".to_owned()));
    }

    #[tokio::test]
    async fn a_resumed_changes_listing_goes_on_after_the_last_change_handed_out() {
        let listed = docs(12);
        let fake = changing(Arc::clone(&listed)).await;
        let since = Some(json!({"start_page_token": "7"}));
        let mut stream = open(&fake, since.clone(), None);
        let first = page(&mut stream).await;
        assert_eq!(first.entities.len(), CONTENT_FETCHES_PER_PAGE);
        assert_eq!(first.checkpoint["step"]["last"], "file:d09");
        drop_doc(&listed, "d00");
        let mut resumed = open(&fake, since.clone(), Some(first.checkpoint.clone()));
        assert_eq!(
            rest(&mut resumed).await,
            ["google_drive_file:d10", "google_drive_file:d11"]
        );
        assert_eq!(resumed.cursor(), Some(json!({"start_page_token": "99"})));
        drop_doc(&listed, "d09");
        let mut resumed = open(&fake, since, Some(first.checkpoint));
        assert_eq!(rest(&mut resumed).await.len(), 10, "the page again");
    }

    #[tokio::test]
    async fn a_page_starts_no_download_once_its_time_budget_is_spent() {
        let fake = changing(docs(3)).await;
        let mut stream = DriveStream {
            client: http_client().unwrap(),
            base_url: BaseUrl::parse(&fake.base_url).unwrap(),
            authorization: authorization(&oauth(TOKEN)).unwrap(),
            incremental: false,
            position: serde_json::from_value(at_files().unwrap()).unwrap(),
            listing: None,
            budget: Duration::ZERO,
        };
        let mut pages = Vec::new();
        while let Some(page) = stream.next_page().await.unwrap() {
            pages.push(page);
        }
        // One download per page: the budget is spent after the first.
        let per_page: Vec<Vec<String>> = pages.iter().map(ids).collect();
        assert_eq!(
            per_page,
            [
                ["google_drive_file:d00"],
                ["google_drive_file:d01"],
                ["google_drive_file:d02"]
            ]
        );
        assert_eq!(pages[0].checkpoint["step"]["last"], "d00");
        assert_eq!(fake.seen().len(), 4, "listed once, three downloads");
        assert_eq!(PAGE_TIME_BUDGET, Duration::from_secs(20));
    }

    #[tokio::test]
    async fn a_shared_drive_gone_mid_run_is_skipped_and_the_next_one_listed() {
        let fake = scripted(vec![
            (
                "/drive/v3/files",
                ok(json!({"files": [file("mine", "image/png")]})),
            ),
            (
                "/drive/v3/files",
                google_error(404, "notFound", "NOT_FOUND"),
            ),
            (
                "/drive/v3/files",
                ok(json!({"files": [file("team", "image/png")]})),
            ),
        ])
        .await;
        let resume = json!({"step": {"kind": "files", "page_token": null},
                            "next_start": "5", "drives": ["0AA", "0BB"]});
        let mut stream = open(&fake, None, Some(resume));
        let all = rest(&mut stream).await;
        assert_eq!(all, ["google_drive_file:mine", "google_drive_file:team"]);
        assert_eq!(stream.cursor(), Some(json!({"start_page_token": "5"})));

        // A checkpoint from before drives were listed one by one starts the run over.
        let old = json!({"step": {"kind": "files", "page_token": "p2", "offset": 10},
                         "next_start": "5"});
        let fake = scripted(vec![(
            "/drive/v3/changes/startPageToken",
            google_error(401, "authError", "UNAUTHENTICATED"),
        )])
        .await;
        let mut restarted = open(&fake, None, Some(old));
        assert!(restarted.next_page().await.is_err());
        assert_eq!(fake.seen()[0].path, "/drive/v3/changes/startPageToken");
    }

    #[tokio::test]
    async fn an_old_checkpoint_still_listing_drives_starts_over() {
        // Checkpoints of versions that listed every page of drives before any file: without
        // the drives named so far (the `allDrives` version), or with them; resumed, the drives
        // of the pages before would never have their files listed, and the run would delete
        // them.
        for old in [
            json!({"step": {"kind": "drives", "page_token": "d2"}, "next_start": "5"}),
            json!({"step": {"kind": "drives", "page_token": "d2"}, "next_start": "5",
                   "drives": ["0AA"]}),
        ] {
            let fake = scripted(vec![
                (
                    "/drive/v3/changes/startPageToken",
                    ok(json!({"startPageToken": "6"})),
                ),
                (
                    "/drive/v3/drives",
                    ok(json!({"drives": [{"id": "0AA", "name": "Team"}]})),
                ),
                (
                    "/drive/v3/files",
                    ok(json!({"files": [file("mine", "image/png")]})),
                ),
                (
                    "/drive/v3/files",
                    ok(json!({"files": [file("team", "image/png")]})),
                ),
            ])
            .await;
            let mut restarted = open(&fake, None, Some(old.clone()));
            assert_eq!(
                rest(&mut restarted).await,
                [
                    "google_drive_drive:0AA",
                    "google_drive_file:mine",
                    "google_drive_file:team"
                ],
                "{old}"
            );
            assert_eq!(restarted.cursor(), Some(json!({"start_page_token": "6"})));
            assert_eq!(fake.seen()[0].path, "/drive/v3/changes/startPageToken");
        }
    }

    #[tokio::test]
    async fn the_user_corpus_lists_shared_drive_files_shared_directly_with_the_user() {
        // As Drive answers: a file of someone else's shared drive (the user is not a member,
        // so `drives.list` does not name it) shared directly with the user is in the user
        // corpus only with includeItemsFromAllDrives and supportsAllDrives. `changes` reports
        // it: a full run that did not list it would delete it every time.
        let fake = query_fake(|path, query| {
            let flag = |name: &str| query.get(name).map(String::as_str) == Some("true");
            match path {
                "/drive/v3/changes/startPageToken" => json!({"startPageToken": "5"}),
                "/drive/v3/drives" => json!({"drives": []}),
                "/drive/v3/files" if query.get("corpora").map(String::as_str) == Some("user") => {
                    let mut files = vec![file("mine", "image/png")];
                    if flag("includeItemsFromAllDrives") && flag("supportsAllDrives") {
                        let mut theirs = file("theirs", "image/png");
                        theirs["driveId"] = json!("0ZZnotAMember");
                        files.push(theirs);
                    }
                    json!({ "files": files })
                }
                _ => json!({"unexpected": path}),
            }
        })
        .await;
        let mut stream = source_at(&fake.base_url)
            .open_stream(request(None, None))
            .unwrap();
        assert_eq!(
            rest(&mut stream).await,
            ["google_drive_file:mine", "google_drive_file:theirs"]
        );
        assert_eq!(stream.cursor(), Some(json!({"start_page_token": "5"})));
    }

    #[tokio::test]
    async fn thousands_of_shared_drives_keep_the_checkpoint_small_across_resumes() {
        // 5,000 shared drives (about 18k would overflow a 400 KB job item if the checkpoint
        // named them all), listed 40 a page, one file each; the stream is opened again from
        // the checkpoint of every page, as if each page were the last of an invocation.
        const DRIVES: usize = 5_000;
        const PAGE: usize = 40;
        const LIMIT: usize = 100 * 1024;
        let drive_id = |i: usize| format!("0A{i:017}");
        let listed = Arc::new(Mutex::new(Vec::<String>::new()));
        let log = Arc::clone(&listed);
        let fake = query_fake(move |path, query| {
            let q = |name: &str| query.get(name).map(String::as_str);
            match path {
                "/drive/v3/changes/startPageToken" => json!({"startPageToken": "77"}),
                "/drive/v3/drives" => {
                    let start: usize = q("pageToken").map_or(0, |t| t.parse().unwrap());
                    let asked: usize = q("pageSize").unwrap().parse().unwrap();
                    let end = (start + asked.min(PAGE)).min(DRIVES);
                    let drives: Vec<Value> = (start..end)
                        .map(|i| json!({"id": drive_id(i), "name": format!("Team {i}")}))
                        .collect();
                    let mut body = json!({ "drives": drives });
                    if end < DRIVES {
                        body["nextPageToken"] = json!(end.to_string());
                    }
                    body
                }
                "/drive/v3/files" => match q("driveId") {
                    Some(id) => {
                        log.lock().unwrap().push(id.to_owned());
                        let mut f = file(&format!("f{id}"), "image/png");
                        f["driveId"] = json!(id);
                        json!({ "files": [f] })
                    }
                    None => json!({"files": [file("mine", "image/png")]}),
                },
                _ => json!({"unexpected": path}),
            }
        })
        .await;
        let source = source_at(&fake.base_url);
        let mut resume = None;
        let mut handed = Vec::new();
        let mut largest = 0;
        loop {
            let mut stream = source.open_stream(request(None, resume.take())).unwrap();
            let Some(page) = stream.next_page().await.unwrap() else {
                assert_eq!(stream.cursor(), Some(json!({"start_page_token": "77"})));
                break;
            };
            let size = serde_json::to_vec(&page.checkpoint).unwrap().len();
            assert!(size < LIMIT, "a checkpoint of {size} bytes");
            largest = largest.max(size);
            let drives = page.checkpoint["drives"].as_array().map_or(0, Vec::len);
            assert!(drives <= PAGE, "{drives} drives in the checkpoint");
            handed.extend(ids(&page));
            resume = Some(page.checkpoint);
        }
        assert!(
            largest < 4 * 1024,
            "the largest checkpoint has {largest} bytes"
        );

        // Every drive's files listed once, in order: none skipped, none repeated.
        let every: Vec<String> = (0..DRIVES).map(drive_id).collect();
        assert_eq!(*listed.lock().unwrap(), every);
        let mut expected = vec!["google_drive_file:mine".to_owned()];
        expected.extend(every.iter().map(|id| format!("google_drive_drive:{id}")));
        expected.extend(every.iter().map(|id| format!("google_drive_file:f{id}")));
        let mut got = handed.clone();
        got.sort();
        expected.sort();
        assert_eq!(got.len(), expected.len(), "nothing handed out twice");
        assert_eq!(got, expected);
        // A page of drives, then their files, then the next page.
        let second_page = handed
            .iter()
            .position(|id| *id == format!("google_drive_drive:{}", drive_id(PAGE)))
            .unwrap();
        assert_eq!(
            handed[second_page - 1],
            format!("google_drive_file:f{}", drive_id(PAGE - 1))
        );
    }

    #[tokio::test]
    async fn a_file_the_user_cannot_read_is_synced_without_content_and_quotas_wait() {
        let fake = FakeUpstream::start(|seen: &Seen| match seen.path.as_str() {
            "/drive/v3/files" => ok(json!({"files": [file("locked", GOOGLE_DOC)]})),
            _ => google_error(403, "insufficientFilePermissions", "PERMISSION_DENIED"),
        })
        .await;
        let mut stream = open(&fake, None, at_files());
        let got = page(&mut stream).await;
        assert_eq!(ids(&got), ["google_drive_file:locked"]);
        assert_eq!(got.entities[0].payload["content"], Value::Null);

        let fake = FakeUpstream::start(|seen: &Seen| match seen.path.as_str() {
            "/drive/v3/files" => ok(json!({"files": [file("doc", GOOGLE_DOC)]})),
            _ => google_error(403, "dailyLimitExceeded", "PERMISSION_DENIED"),
        })
        .await;
        let mut stream = open(&fake, None, at_files());
        assert_eq!(
            stream.next_page().await.unwrap_err(),
            StreamError::RateLimited {
                wait: DAILY_LIMIT_WAIT
            }
        );
    }

    #[tokio::test]
    async fn small_text_files_carry_their_text_large_and_unexportable_ones_do_not() {
        let fake = FakeUpstream::start(|seen: &Seen| match seen.path.as_str() {
            "/drive/v3/files" => Reply::status(200).json(json!({"files": [
                text_file("small", 12),
                text_file("big", TEXT_FILE_MAX_BYTES + 1),
                file("gone", GOOGLE_DOC),
            ]})),
            "/drive/v3/files/small" => Reply::status(200).text("hello, world"),
            "/drive/v3/files/gone/export" => Reply::status(404).json(error_body(404, "notFound")),
            _ => Reply::status(418),
        })
        .await;
        let mut stream = open(&fake, None, at_files());
        let got = page(&mut stream).await;
        let content: Vec<&Value> = got.entities.iter().map(|e| &e.payload["content"]).collect();
        assert_eq!(
            content,
            [&json!("hello, world"), &Value::Null, &Value::Null]
        );
        assert_eq!(got.entities[0].payload["size"], 12);
        let paths: Vec<String> = fake.seen().iter().map(|s| s.path.clone()).collect();
        assert!(
            !paths.contains(&"/drive/v3/files/big".to_owned()),
            "{paths:?}"
        );
    }

    #[test]
    fn text_is_cut_on_a_character_boundary() {
        let mut body = "a".repeat(CONTENT_LIMIT - 1).into_bytes();
        body.extend_from_slice("éé".as_bytes());
        let content = text_content(&body);
        assert!(content.truncated);
        assert_eq!(content.text.unwrap().len(), CONTENT_LIMIT - 1);
        let short = text_content("\u{feff}fine".as_bytes());
        assert_eq!(
            (short.text.as_deref(), short.truncated),
            (Some("fine"), false)
        );
    }

    #[test]
    fn volatile_fields_do_not_change_the_hash() {
        let plain = file("f1", "image/png");
        let mut viewed = plain.clone();
        viewed["viewedByMeTime"] = json!("2026-11-25T12:00:00Z");
        viewed["thumbnailLink"] = json!("https://lh3.googleusercontent.com/x=s220");
        viewed["version"] = json!("812");
        let hash = |f: &Value| file_entity(f, Content::NONE).unwrap().content_hash();
        assert_eq!(hash(&plain), hash(&viewed));
        let mut renamed = plain.clone();
        renamed["name"] = json!("Renamed");
        assert_ne!(hash(&plain), hash(&renamed));
    }

    // --- failures mid-run ---

    #[tokio::test]
    async fn a_rate_limited_page_waits_and_the_resumed_stream_asks_again() {
        let fake = scripted(vec![
            (
                "/drive/v3/changes/startPageToken",
                ok(json!({"startPageToken": "9"})),
            ),
            ("/drive/v3/drives", ok(json!({"drives": []}))),
            (
                "/drive/v3/files",
                google_error(403, "userRateLimitExceeded", "PERMISSION_DENIED")
                    .header("retry-after", "1"),
            ),
            (
                "/drive/v3/files",
                ok(json!({"files": [file("f1", "image/png")]})),
            ),
        ])
        .await;
        let mut stream = open(&fake, None, None);
        let drives = page(&mut stream).await;
        assert!(drives.entities.is_empty());
        assert_eq!(
            stream.next_page().await.unwrap_err(),
            StreamError::RateLimited {
                wait: Duration::from_secs(1)
            }
        );
        let mut resumed = open(&fake, None, Some(drives.checkpoint));
        assert_eq!(ids(&page(&mut resumed).await), ["google_drive_file:f1"]);
        assert!(resumed.next_page().await.unwrap().is_none());
        assert_eq!(resumed.cursor(), Some(json!({"start_page_token": "9"})));
    }

    #[tokio::test]
    async fn a_revoked_token_mid_run_is_a_rejection() {
        let fake = scripted(vec![(
            "/drive/v3/changes/startPageToken",
            google_error(401, "authError", "UNAUTHENTICATED"),
        )])
        .await;
        let mut stream = open(&fake, None, None);
        assert!(matches!(
            stream.next_page().await,
            Err(StreamError::Rejected(m)) if !m.contains(TOKEN)
        ));
    }

    #[tokio::test]
    async fn malformed_pages_fail_clearly() {
        let fake = scripted(vec![
            (
                "/drive/v3/files",
                Reply::status(200).text("<html>oops</html>"),
            ),
            ("/drive/v3/files", ok(json!({"files": {"not": "a list"}}))),
            (
                "/drive/v3/files",
                ok(json!({"files": [], "incompleteSearch": true})),
            ),
        ])
        .await;
        for expected in ["not JSON", "not a page", "incompleteSearch"] {
            let mut stream = open(&fake, None, at_files());
            let err = stream.next_page().await.unwrap_err();
            assert!(err.to_string().contains(expected), "{err}");
            assert!(!err.to_string().contains(TOKEN));
        }
        let unreadable =
            source_for(&fake).open_stream(request(None, Some(json!({"step": "sideways"}))));
        assert!(matches!(unreadable, Err(StreamError::Malformed(_))));
    }

    // --- incremental runs ---

    #[tokio::test]
    async fn an_incremental_run_reads_changes_until_the_new_start_token() {
        let mut trashed = file("t1", "image/png");
        trashed["trashed"] = json!(true);
        let fake = scripted(vec![
            (
                "/drive/v3/changes",
                ok(
                    json!({"kind": "drive#changeList", "nextPageToken": "8", "changes": [
                        {"changeType": "file", "fileId": "f1", "removed": false,
                         "file": file("f1", "image/png")},
                        {"changeType": "file", "fileId": "gone", "removed": true},
                        {"changeType": "file", "fileId": "t1", "removed": false, "file": trashed},
                    ]}),
                ),
            ),
            (
                "/drive/v3/changes",
                ok(
                    json!({"kind": "drive#changeList", "newStartPageToken": "12", "changes": [
                        {"changeType": "drive", "driveId": "0AD", "removed": false,
                         "drive": {"id": "0AD", "name": "Renamed team"}},
                        {"changeType": "drive", "driveId": "0XX", "removed": true},
                    ]}),
                ),
            ),
        ])
        .await;
        let mut stream = open(&fake, Some(json!({"start_page_token": "7"})), None);
        assert!(stream.incremental());
        let first = page(&mut stream).await;
        assert_eq!(ids(&first), ["google_drive_file:f1"]);
        let removed: Vec<&str> = first.removed.iter().map(EntityKey::as_str).collect();
        assert_eq!(removed, ["google_drive_file#gone", "google_drive_file#t1"]);
        assert_eq!(
            first.checkpoint["step"],
            json!({"kind": "changes", "page_token": "8", "last": null})
        );
        let second = page(&mut stream).await;
        assert_eq!(ids(&second), ["google_drive_drive:0AD"]);
        assert_eq!(second.entities[0].title, "Renamed team");
        assert_eq!(second.removed[0].as_str(), "google_drive_drive#0XX");
        assert!(stream.next_page().await.unwrap().is_none());
        assert_eq!(stream.cursor(), Some(json!({"start_page_token": "12"})));
    }

    #[tokio::test]
    async fn changes_that_never_end_with_a_start_token_are_malformed() {
        let fake = scripted(vec![("/drive/v3/changes", ok(json!({"changes": []})))]).await;
        let mut stream = open(&fake, Some(json!({"start_page_token": "7"})), None);
        assert!(matches!(
            stream.next_page().await,
            Err(StreamError::Malformed(_))
        ));
        // A cursor that is not ours asks for a full run.
        let full = open(&fake, Some(json!({"something": 1})), None);
        assert!(!full.incremental());
    }
}

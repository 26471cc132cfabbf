//! `google_drive`: the user's files (with the text of Google Docs and small text files) and
//! shared drives, through the Drive API v3.
//!
//! A full run first asks `changes/startPageToken`, then lists the shared drives and every file
//! the user can see; the token becomes the cursor, so whatever changed while the run listed is
//! seen again by the next one. An incremental run reads `changes` from the saved token until
//! Drive answers `newStartPageToken`, the next cursor; files reported removed or trashed are the
//! page's `removed`.
//!
//! A listed page of files is handed out in slices that fetch at most
//! [`CONTENT_FETCHES_PER_PAGE`] contents each, so no `next_page` makes more than a few calls; a
//! slice's checkpoint names the listing page and the offset in it, and a resumed stream lists
//! that page again and skips what was handed out.

use crate::base_url::BaseUrl;
use crate::source::Source;
use crate::upstream::{fetch, read_capped, retry_after, transport_error, Answer, PAGE_BODY_LIMIT};
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
use std::time::Duration;

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
/// Text files larger than this are synced without their content.
pub const TEXT_FILE_MAX_BYTES: u64 = 1024 * 1024;
/// The most text kept in a payload: an entity must fit a DynamoDB item (400 KB) whole.
pub const CONTENT_LIMIT: usize = 256 * 1024;
/// Drive sends no `Retry-After` on most rate-limit answers; its guide asks for a back-off, and
/// half a minute lets a per-user quota (per 100 seconds) recover without stalling a sync long.
pub const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(30);
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
        auth_methods: vec![AuthMethod::OauthToken, AuthMethod::OauthByoc],
        requires_byoc: false,
        auth_fields: vec![],
        config_fields: vec![],
        supported_auth_providers: vec![],
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
    /// 429, or 403 with a rate-limit reason.
    RateLimited(Duration),
    /// Another 403: the token lacks the scope, or an admin turned the app off.
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
    let rate_limited = status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::FORBIDDEN
            && reasons
                .iter()
                .any(|r| r == "userRateLimitExceeded" || r == "rateLimitExceeded"));
    Some(if rate_limited {
        Refusal::RateLimited(retry_after(&answer.headers, now).unwrap_or(DEFAULT_RATE_LIMIT_WAIT))
    } else if status == StatusCode::UNAUTHORIZED {
        Refusal::Unauthenticated
    } else if status == StatusCode::FORBIDDEN {
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
        let sent = self
            .client
            .get(self.base_url.endpoint("drive/v3/about"))
            .query(&[("fields", "user")])
            .header(AUTHORIZATION, authorization)
            .send()
            .await;
        let response = sent.map_err(|e| {
            let e = e.without_url();
            tracing::warn!(error = %e, "Google Drive credential check could not reach Google");
            transport_error(NAME, &e)
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_capped(response, CHECK_BODY_LIMIT).await.map_err(|e| {
            let e = e.without_url();
            tracing::warn!(status = status.as_u16(), error = %e, "Google Drive answer could not be read");
            transport_error(NAME, &e)
        })?;
        let answer = Answer {
            status,
            headers,
            body,
        };
        let outcome = match refusal(&answer, Utc::now()) {
            Some(refused) => Err(refused.into_check_error()),
            None if is_about_user(&answer.body) => Ok(()),
            None => Err(CheckError::Unavailable(format!(
                "{API} answered with something other than the user"
            ))),
        };
        match &outcome {
            Ok(()) => tracing::info!(status = status.as_u16(), "Google Drive accepted the token"),
            Err(e) => {
                tracing::info!(status = status.as_u16(), outcome = %e, "Google Drive did not accept the check")
            }
        }
        outcome
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
            Some(checkpoint) => serde_json::from_value(checkpoint).map_err(|_| {
                StreamError::Malformed("the Google Drive checkpoint is unreadable".into())
            })?,
            None => Position::start(since.as_deref()),
        };
        Ok(Box::new(DriveStream {
            client: self.client.clone(),
            base_url: self.base_url.clone(),
            authorization,
            incremental: since.is_some(),
            position,
            listing: None,
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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Step {
    /// A full run that has not asked for its start token yet.
    StartToken,
    Drives {
        page_token: Option<String>,
    },
    /// `offset` files of the listing page `page_token` were handed out.
    Files {
        page_token: Option<String>,
        offset: usize,
    },
    /// `offset` changes of the changes page `page_token` were handed out.
    Changes {
        page_token: String,
        offset: usize,
    },
    Done,
}

impl Position {
    fn start(since: Option<&str>) -> Self {
        match since {
            Some(token) => Self {
                step: Step::Changes {
                    page_token: token.to_owned(),
                    offset: 0,
                },
                next_start: None,
            },
            None => Self {
                step: Step::StartToken,
                next_start: None,
            },
        }
    }
}

/// One listed page of files or changes, held while it is handed out in slices.
struct Listing {
    items: Vec<Value>,
    next: After,
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

    async fn files_listing(&self, page_token: Option<&str>) -> Result<Listing, StreamError> {
        let path = "drive/v3/files";
        let size = FILES_PAGE_SIZE.to_string();
        let fields = format!("nextPageToken,incompleteSearch,files({FILE_FIELDS})");
        let mut query = vec![
            ("pageSize", size.as_str()),
            ("fields", fields.as_str()),
            ("q", "trashed = false"),
            ("corpora", "allDrives"),
            ("supportsAllDrives", "true"),
            ("includeItemsFromAllDrives", "true"),
        ];
        if let Some(token) = page_token {
            query.push(("pageToken", token));
        }
        let body = self.get_json(path, &query).await?;
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
        Ok(Listing {
            items,
            next: next_page(&body, None),
        })
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
        Ok(Listing { items, next })
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
    /// [`CONTENT_FETCHES_PER_PAGE`] contents. Answers the new offset.
    async fn slice(
        &self,
        items: &[Value],
        offset: usize,
        changes: bool,
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
            if needs_content && fetches == CONTENT_FETCHES_PER_PAGE {
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
        loop {
            let (entities, removed) = match self.position.step.clone() {
                Step::Done => return Ok(None),
                Step::StartToken => {
                    // Asked before listing: whatever changes while this run lists, the next
                    // one sees.
                    self.position.next_start = Some(self.start_page_token().await?);
                    self.position.step = Step::Drives { page_token: None };
                    continue;
                }
                Step::Drives { page_token } => {
                    let (entities, after) = self.drives_page(page_token.as_deref()).await?;
                    self.position.step = match after {
                        After::Page(token) => Step::Drives {
                            page_token: Some(token),
                        },
                        After::End(_) => Step::Files {
                            page_token: None,
                            offset: 0,
                        },
                    };
                    (entities, Vec::new())
                }
                Step::Files { page_token, offset } => {
                    let listing = match self.listing.take() {
                        Some(listing) => listing,
                        None => self.files_listing(page_token.as_deref()).await?,
                    };
                    let (entities, removed, at) = self.slice(&listing.items, offset, false).await?;
                    self.position.step = if at < listing.items.len() {
                        let step = Step::Files {
                            page_token,
                            offset: at,
                        };
                        self.listing = Some(listing);
                        step
                    } else {
                        match listing.next {
                            After::Page(token) => Step::Files {
                                page_token: Some(token),
                                offset: 0,
                            },
                            After::End(_) => Step::Done,
                        }
                    };
                    (entities, removed)
                }
                Step::Changes { page_token, offset } => {
                    let listing = match self.listing.take() {
                        Some(listing) => listing,
                        None => self.changes_listing(&page_token).await?,
                    };
                    let (entities, removed, at) = self.slice(&listing.items, offset, true).await?;
                    self.position.step = if at < listing.items.len() {
                        let step = Step::Changes {
                            page_token,
                            offset: at,
                        };
                        self.listing = Some(listing);
                        step
                    } else {
                        match listing.next {
                            After::Page(token) => Step::Changes {
                                page_token: token,
                                offset: 0,
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
    use std::sync::Mutex;

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
        GoogleDriveSource::new(
            http_client().unwrap(),
            BaseUrl::parse(&fake.base_url).unwrap(),
        )
    }

    fn open(
        fake: &FakeUpstream,
        since: Option<Value>,
        resume: Option<Value>,
    ) -> Box<dyn EntityStream> {
        source_for(fake)
            .open_stream(StreamRequest {
                auth: oauth(TOKEN),
                config: Map::new(),
                since,
                resume,
            })
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
        Some(
            json!({"step": {"kind": "files", "page_token": null, "offset": 0},
                    "next_start": "5"}),
        )
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
            [AuthMethod::OauthToken, AuthMethod::OauthByoc]
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
        assert!(stream.next_page().await.unwrap().is_none());
        assert!(!stream.incremental());
        assert_eq!(stream.cursor(), Some(json!({"start_page_token": "41"})));
        assert_eq!(fake.seen().len(), 5);
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
        assert_eq!(checkpoint["step"]["offset"], CONTENT_FETCHES_PER_PAGE);

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
        let unreadable = source_for(&fake).open_stream(StreamRequest {
            auth: oauth(TOKEN),
            config: Map::new(),
            since: None,
            resume: Some(json!({"step": "sideways"})),
        });
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
            json!({"kind": "changes", "page_token": "8", "offset": 0})
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

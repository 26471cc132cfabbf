//! `notion`: pages, databases and database rows of a Notion workspace, through Notion's public
//! API pinned at version 2022-06-28.
//!
//! A run walks `POST /v1/search` sorted by `last_edited_time`, 100 results a call: a full run
//! oldest first, so whatever is edited while it runs moves to the end of the search and is read
//! again (newest first, an edited item would move to the part already read, never be yielded,
//! and be deleted as absent with, for a database, its rows); an incremental run newest first,
//! down to its cursor (the search has no time filter). A page becomes a `notion_page` with its content (its block children, nested up to
//! [`MAX_DEPTH`] levels, flattened to text); a database becomes a `notion_database`. On a full
//! run each database's rows (`POST /v1/databases/{id}/query`) follow it as
//! `notion_database_row`s, and the rows the search also returns are skipped, so each is read
//! once. An incremental run stops the search at the first result older than the cursor and takes
//! the changed rows from the search itself: querying every database would list the whole
//! workspace again to find a few edited rows. The cursor is the newest `last_edited_time` seen.
//! An incremental run cannot see an old page newly shared with the integration, nor a page
//! unshared from it (neither changes `last_edited_time`); a forced full sync picks both up.
//!
//! One `next_page` works through at most about [`CALLS_PER_PAGE`] upstream calls and starts no
//! call once [`PAGE_TIME_BUDGET`] has passed (an item whose content is half read then is read
//! again by the next page); a listing page stays in memory between `next_page` calls and is
//! fetched again only when a new stream resumes from a checkpoint: it goes on after the last
//! item handed out, or hands out the whole page again if that item left it.

use crate::base_url::BaseUrl;
use crate::source::Source;
use crate::upstream::{check_exchange, fetch, retry_after, Answer, PAGE_BODY_LIMIT};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::auth::AuthenticationRequest;
use domain::catalog::{AuthMethod, ClientAuth, FieldSpec, FieldType, OAuthSettings, SourceSpec};
use domain::entity::{Entity, EntityKey};
use domain::ports::CheckError;
use domain::stream::{EntityPage, EntityStream, StreamError, StreamRequest};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The API version every request pins (the `Notion-Version` header).
const NOTION_VERSION: &str = "2022-06-28";
const NAME: &str = "Notion";
/// The most Notion returns per listing call.
const LIST_PAGE_SIZE: u32 = 100;
/// How deep a page's blocks are read: its own children and two levels below them.
const MAX_DEPTH: usize = 3;
/// Block-children calls one page's content may take (pagination and nesting together); a page
/// that needs more is stored with what was read and `content_truncated`.
const CONTENT_CALLS_PER_ITEM: usize = 8;
/// The calls after which a `next_page` returns what it has (it may go over by one item's
/// content calls): short enough to keep a redone page cheap after a rate limit.
const CALLS_PER_PAGE: usize = 24;
/// Once this much time has passed since a `next_page` began, it starts no more calls and
/// returns what it has (each call may take up to 15 s, and the worker hands over only between
/// pages).
const PAGE_TIME_BUDGET: Duration = Duration::from_secs(20);
/// Text kept of one page's content; the rest is cut with `content_truncated`.
const MAX_CONTENT_CHARS: usize = 100_000;
/// Notion always sends `Retry-After`; this is for an answer that does not.
const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(5);
/// A `/v1/users/me` answer is well under a KiB.
const CHECK_BODY_LIMIT: usize = 64 * 1024;
/// The credential field of the direct method: an internal integration's secret.
const TOKEN_FIELD: &str = "access_token";

/// Notion (api.notion.com), with an internal integration's secret or an OAuth access token.
#[derive(Debug, Clone)]
pub struct NotionSource {
    spec: SourceSpec,
    client: reqwest::Client,
    base_url: BaseUrl,
}

impl NotionSource {
    pub const SHORT_NAME: &'static str = "notion";
    pub const DEFAULT_BASE_URL: &'static str = "https://api.notion.com";

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
        short_name: NotionSource::SHORT_NAME,
        name: "Notion",
        class_name: "NotionSource",
        description: "Pages, databases and database rows of a Notion workspace, with the text of \
                      each page.",
        auth_methods: vec![
            AuthMethod::Direct,
            AuthMethod::OauthToken,
            AuthMethod::OauthBrowser,
            AuthMethod::OauthByoc,
            AuthMethod::AuthProvider,
        ],
        requires_byoc: false,
        auth_fields: vec![FieldSpec::new(
            TOKEN_FIELD,
            "Internal Integration Secret",
            FieldType::String,
        )
        .describe(
            "The secret of an internal integration with the Read content capability; only the \
             pages and databases shared with the integration are synced.",
        )
        .required()
        .secret()],
        config_fields: vec![],
        supported_auth_providers: vec!["composio", "pipedream"],
        entity_types: vec!["notion_page", "notion_database", "notion_database_row"],
        supports_continuous: false,
        supports_incremental: true,
        federated_search: false,
        labels: vec!["Knowledge Base"],
        oauth: Some(OAuthSettings {
            authorize_url: "https://api.notion.com/v1/oauth/authorize",
            token_url: "https://api.notion.com/v1/oauth/token",
            // A public integration's access is chosen by the user on Notion's consent page.
            scopes: vec![],
            user_scopes: vec![],
            scope_separator: " ",
            pkce: false,
            client_auth: ClientAuth::Basic,
            access_token_pointer: "/access_token",
            refresh_token_pointer: Some("/refresh_token"),
            // Notion's authorize endpoint requires it: the user (not a workspace) grants access.
            extra_authorize_params: vec![("owner", "user")],
        }),
    }
}

/// The `Authorization` value for a supported method; the secret is exposed only here.
fn authorization(auth: &AuthenticationRequest) -> Result<HeaderValue, String> {
    let token = match auth {
        AuthenticationRequest::Direct(credentials) => credentials
            .string(TOKEN_FIELD)
            .ok_or_else(|| format!("{TOKEN_FIELD} is required"))?,
        AuthenticationRequest::OauthToken(token) => token.access_token.expose_secret(),
        other => {
            return Err(format!(
                "Notion does not take {} authentication here",
                other.method().as_str()
            ))
        }
    };
    let mut value = HeaderValue::try_from(format!("Bearer {}", token.trim()))
        .map_err(|_| "the token contains characters a token cannot have".to_owned())?;
    value.set_sensitive(true);
    Ok(value)
}

/// Notion's error `code` (`unauthorized`, `rate_limited`, …) when the body is its error object.
/// Only a short snake_case word is taken: the rest of an error body is never repeated.
fn error_code(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let code = value.get("code")?.as_str()?;
    let word = !code.is_empty()
        && code.len() <= 40
        && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    word.then(|| code.to_owned())
}

/// `HTTP 503 service_unavailable`, or just the status when the body names no code.
fn status_text(status: StatusCode, body: &[u8]) -> String {
    match error_code(body) {
        Some(code) => format!("HTTP {} {code}", status.as_u16()),
        None => format!("HTTP {}", status.as_u16()),
    }
}

fn rate_limit_wait(headers: &HeaderMap, now: DateTime<Utc>) -> Duration {
    retry_after(headers, now).unwrap_or(DEFAULT_RATE_LIMIT_WAIT)
}

/// What Notion's answer to `GET /v1/users/me` means for the credential.
fn classify_check(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), CheckError> {
    if status.is_success() {
        let is_user = serde_json::from_slice::<Value>(body)
            .ok()
            .is_some_and(|v| v.get("object").and_then(Value::as_str) == Some("user"));
        return if is_user {
            Ok(())
        } else {
            Err(CheckError::Unavailable(
                "Notion answered with something other than a user".into(),
            ))
        };
    }
    match status {
        StatusCode::UNAUTHORIZED => Err(CheckError::Rejected(
            "Notion says the token is invalid or revoked".into(),
        )),
        StatusCode::FORBIDDEN => Err(CheckError::Rejected(format!(
            "Notion refused the token ({})",
            status_text(status, body)
        ))),
        StatusCode::TOO_MANY_REQUESTS => Err(CheckError::RateLimited {
            retry_after: Some(rate_limit_wait(headers, now)),
        }),
        s if s.is_server_error() => Err(CheckError::Unavailable(format!(
            "Notion is unavailable ({})",
            status_text(s, body)
        ))),
        s => Err(CheckError::Unavailable(format!(
            "Notion answered with unexpected {}",
            status_text(s, body)
        ))),
    }
}

/// One page of a Notion list (`{"object": "list", "results": [...], "has_more", "next_cursor"}`).
#[derive(Debug)]
struct ListPage {
    results: Vec<Value>,
    /// The `start_cursor` of the next page; `None` on the last one.
    next_cursor: Option<String>,
}

/// What a stream call's answer means: a list page, `None` for 404 `object_not_found` (the
/// caller knows whether that is a vanished item or a failure), or why the stream stops.
fn classify_list(
    answer: &Answer,
    what: &str,
    now: DateTime<Utc>,
) -> Result<Option<ListPage>, StreamError> {
    let status = answer.status;
    if status.is_success() {
        let value = answer.json(NAME)?;
        let malformed = || {
            StreamError::Malformed(format!(
                "Notion answered {what} with something that is not a list"
            ))
        };
        if value.get("object").and_then(Value::as_str) != Some("list") {
            return Err(malformed());
        }
        let results = value
            .get("results")
            .and_then(Value::as_array)
            .ok_or_else(malformed)?
            .clone();
        let has_more = value
            .get("has_more")
            .and_then(Value::as_bool)
            .ok_or_else(malformed)?;
        let next_cursor = match value.get("next_cursor") {
            Some(Value::String(c)) if has_more && !c.is_empty() => Some(c.clone()),
            _ if has_more => {
                return Err(StreamError::Malformed(format!(
                    "Notion answered {what} with more to come but no cursor to it"
                )))
            }
            _ => None,
        };
        return Ok(Some(ListPage {
            results,
            next_cursor,
        }));
    }
    let body = &answer.body;
    match status {
        StatusCode::NOT_FOUND => Ok(None),
        StatusCode::UNAUTHORIZED => Err(StreamError::Rejected(
            "Notion says the token is invalid or revoked".into(),
        )),
        // `restricted_resource`: the integration lacks a capability (e.g. Read content), which
        // only the user can grant.
        StatusCode::FORBIDDEN => Err(StreamError::Rejected(format!(
            "Notion refused to let the integration read {what} ({})",
            status_text(status, body)
        ))),
        StatusCode::TOO_MANY_REQUESTS => Err(StreamError::RateLimited {
            wait: rate_limit_wait(&answer.headers, now),
        }),
        s if s.is_server_error() => Err(StreamError::Upstream(format!(
            "Notion is unavailable ({})",
            status_text(s, body)
        ))),
        s => Err(StreamError::Upstream(format!(
            "Notion refused {what} ({})",
            status_text(s, body)
        ))),
    }
}

/// A Notion id as the API writes it (a UUID, with or without dashes). Ids from answers go into
/// request paths, so nothing else is let through.
fn is_notion_id(s: &str) -> bool {
    let hex = s.bytes().filter(u8::is_ascii_hexdigit).count();
    hex == 32 && s.len() <= 36 && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

fn id_of(item: &Value) -> Option<&str> {
    item.get("id").and_then(Value::as_str)
}

/// The concatenated `plain_text` of a rich text array.
fn rich_text(value: &Value) -> String {
    value
        .as_array()
        .map(|parts| {
            parts
                .iter()
                .filter_map(|p| p.get("plain_text").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default()
}

fn last_edited(item: &Value) -> Option<DateTime<Utc>> {
    let text = item.get("last_edited_time")?.as_str()?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn is_trashed(item: &Value) -> bool {
    let flag = |name| item.get(name).and_then(Value::as_bool) == Some(true);
    flag("archived") || flag("in_trash")
}

fn parent_database(item: &Value) -> Option<&str> {
    let parent = item.get("parent")?;
    (parent.get("type")?.as_str()? == "database_id")
        .then(|| parent.get("database_id")?.as_str())
        .flatten()
}

/// `{"type": "page_id", "id": "..."}`; a workspace parent has no id.
fn parent(item: &Value) -> Value {
    let Some(kind) = item.pointer("/parent/type").and_then(Value::as_str) else {
        return Value::Null;
    };
    match item.pointer(&format!("/parent/{kind}")) {
        Some(Value::String(id)) => json!({"type": kind, "id": id}),
        _ => json!({"type": kind}),
    }
}

/// A page property as a plain value a user searches for. Dropped: the `created_*`/`last_edited_*`
/// kinds (the entity says when it changed), buttons and verification, formulas and rollups
/// (computed at read time), and the URLs of files Notion hosts, which are signed and change on
/// every read.
fn property_value(property: &Value) -> Option<Value> {
    let kind = property.get("type")?.as_str()?;
    let value = property.get(kind)?;
    let names = |items: &Value, field: &str| -> Value {
        items
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|i| i.get(field).and_then(Value::as_str))
                    .map(|s| Value::String(s.to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let plain = match kind {
        "title" | "rich_text" => Value::String(rich_text(value)),
        "number" | "checkbox" | "url" | "email" | "phone_number" => value.clone(),
        "select" | "status" => value.get("name").cloned().unwrap_or(Value::Null),
        "multi_select" => names(value, "name"),
        "relation" => names(value, "id"),
        "files" => names(value, "name"),
        "people" => Value::Array(
            value
                .as_array()
                .map(|people| {
                    people
                        .iter()
                        .filter_map(|p| p.get("name").or_else(|| p.get("id")).cloned())
                        .collect()
                })
                .unwrap_or_default(),
        ),
        "date" if value.is_object() => json!({"start": value["start"], "end": value["end"]}),
        // `formula` and `rollup` values are computed when the page is read (a formula using
        // `now()` differs on every read): kept, they would make a row "updated" on every run.
        // What they derive from is in the other properties.
        "unique_id" => {
            let number = value.get("number")?.as_i64()?;
            match value.get("prefix").and_then(Value::as_str) {
                Some(prefix) => Value::String(format!("{prefix}-{number}")),
                None => json!(number),
            }
        }
        _ => return None,
    };
    (!plain.is_null()).then_some(plain)
}

fn properties(item: &Value) -> Map<String, Value> {
    item.get("properties")
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .filter_map(|(name, p)| Some((name.clone(), property_value(p)?)))
                .collect()
        })
        .unwrap_or_default()
}

/// A page's title: its `title` property.
fn page_title(item: &Value) -> String {
    let title = item
        .get("properties")
        .and_then(Value::as_object)
        .and_then(|props| {
            props
                .values()
                .find(|p| p.get("type").and_then(Value::as_str) == Some("title"))
        })
        .map(|p| rich_text(&p["title"]))
        .unwrap_or_default();
    if title.trim().is_empty() {
        "Untitled".to_owned()
    } else {
        title
    }
}

/// The text a page's blocks hold, flattened.
#[derive(Debug, Default, Clone, PartialEq)]
struct Content {
    text: String,
    truncated: bool,
}

impl Content {
    fn push_line(&mut self, depth: usize, line: &str) {
        if self.truncated {
            return;
        }
        let indent = "  ".repeat(depth);
        if self.text.len() + indent.len() + line.len() + 1 > MAX_CONTENT_CHARS {
            self.truncated = true;
            return;
        }
        if !self.text.is_empty() {
            self.text.push('\n');
        }
        self.text.push_str(&indent);
        self.text.push_str(line);
    }
}

/// One block as a line of text, or `None` for a block with no text (a divider, an empty
/// paragraph). Hosted files give their caption only: their URLs are signed and change per read.
fn block_line(block: &Value) -> Option<String> {
    let kind = block.get("type")?.as_str()?;
    let body = block.get(kind)?;
    let text = rich_text(&body["rich_text"]);
    let caption = rich_text(&body["caption"]);
    let line = match kind {
        "heading_1" => format!("# {text}"),
        "heading_2" => format!("## {text}"),
        "heading_3" => format!("### {text}"),
        "bulleted_list_item" => format!("- {text}"),
        "numbered_list_item" => format!("1. {text}"),
        "quote" => format!("> {text}"),
        "to_do" => {
            let mark = if body["checked"] == true { "x" } else { " " };
            format!("[{mark}] {text}")
        }
        "child_page" | "child_database" => body["title"].as_str().unwrap_or_default().to_owned(),
        "equation" => body["expression"].as_str().unwrap_or_default().to_owned(),
        "table_row" => body["cells"]
            .as_array()
            .map(|cells| cells.iter().map(rich_text).collect::<Vec<_>>().join(" | "))
            .unwrap_or_default(),
        "bookmark" | "embed" | "link_preview" => {
            let url = body["url"].as_str().unwrap_or_default();
            [url, caption.as_str()]
                .iter()
                .filter(|s| !s.is_empty())
                .cloned()
                .collect::<Vec<_>>()
                .join(" ")
        }
        "image" | "file" | "pdf" | "video" | "audio" => {
            let external = body
                .pointer("/external/url")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let name = body["name"].as_str().unwrap_or_default();
            [name, external, caption.as_str()]
                .iter()
                .filter(|s| !s.is_empty())
                .cloned()
                .collect::<Vec<_>>()
                .join(" ")
        }
        _ => text,
    };
    let line = line.trim_end();
    let bare = matches!(line, "" | "#" | "##" | "###" | "-" | "1." | ">");
    (!bare).then(|| line.to_owned())
}

/// Whether a block's children belong to this page's text: child pages and databases are
/// entities of their own, and the children of a block the API does not support cannot be read
/// (Notion answers them with an error).
fn descends(block: &Value) -> bool {
    block.get("has_children").and_then(Value::as_bool) == Some(true)
        && !matches!(
            block.get("type").and_then(Value::as_str),
            Some("child_page" | "child_database" | "unsupported")
        )
}

/// What a listing means to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Page,
    Row,
    Database,
}

impl Kind {
    fn entity_type(self) -> &'static str {
        match self {
            Kind::Page => "notion_page",
            Kind::Row => "notion_database_row",
            Kind::Database => "notion_database",
        }
    }

    fn of(item: &Value) -> Option<Kind> {
        match item.get("object")?.as_str()? {
            "database" => Some(Kind::Database),
            "page" if parent_database(item).is_some() => Some(Kind::Row),
            "page" => Some(Kind::Page),
            _ => None,
        }
    }
}

fn malformed_item(kind: Kind) -> StreamError {
    StreamError::Malformed(format!(
        "Notion answered a {} without a valid id or last_edited_time",
        match kind {
            Kind::Database => "database",
            Kind::Page | Kind::Row => "page",
        }
    ))
}

/// A page or a row, with its content.
fn page_entity(item: &Value, kind: Kind, content: Content) -> Result<Entity, StreamError> {
    let id = id_of(item)
        .filter(|id| is_notion_id(id))
        .ok_or_else(|| malformed_item(kind))?;
    let updated_at = last_edited(item).ok_or_else(|| malformed_item(kind))?;
    let mut payload = json!({
        "id": id,
        "url": item.get("url"),
        "parent": parent(item),
        "created_time": item.get("created_time"),
        "created_by": item.pointer("/created_by/id"),
        "properties": properties(item),
        "content": content.text,
        "content_truncated": content.truncated,
    });
    if let Some(database) = parent_database(item) {
        payload["database_id"] = json!(database);
    }
    Ok(Entity {
        entity_type: kind.entity_type().into(),
        entity_id: id.to_owned(),
        title: page_title(item),
        updated_at: Some(updated_at),
        payload,
    })
}

fn database_entity(item: &Value) -> Result<Entity, StreamError> {
    let kind = Kind::Database;
    let id = id_of(item)
        .filter(|id| is_notion_id(id))
        .ok_or_else(|| malformed_item(kind))?;
    let updated_at = last_edited(item).ok_or_else(|| malformed_item(kind))?;
    // The schema as name -> type: select options carry colours and ids nobody searches for.
    let schema: Map<String, Value> = item
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .filter_map(|(name, p)| Some((name.clone(), p.get("type")?.clone())))
                .collect()
        })
        .unwrap_or_default();
    let title = rich_text(&item["title"]);
    Ok(Entity {
        entity_type: kind.entity_type().into(),
        entity_id: id.to_owned(),
        title: if title.trim().is_empty() {
            "Untitled database".into()
        } else {
            title
        },
        updated_at: Some(updated_at),
        payload: json!({
            "id": id,
            "url": item.get("url"),
            "parent": parent(item),
            "created_time": item.get("created_time"),
            "created_by": item.pointer("/created_by/id"),
            "description": rich_text(&item["description"]),
            "is_inline": item.get("is_inline"),
            "properties": schema,
        }),
    })
}

/// Where a run is in one listing: the page being worked through and how much of it is done.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Place {
    /// The `start_cursor` that fetches the page being worked through (`None`: the first page).
    page: Option<String>,
    /// How many of that page's results are done, and the id of the last of them: a resumed run
    /// fetches the page again and skips past that id; if that id left the page, it hands out the
    /// whole page again (a duplicate is harmless; a skipped item would be deleted as absent).
    consumed: usize,
    last: Option<String>,
    /// The listing has nothing more.
    end: bool,
}

/// A listing's place and, between `next_page` calls of one stream, its page in memory.
#[derive(Debug, Default)]
struct Listing {
    place: Place,
    buffer: Option<VecDeque<Value>>,
    next_cursor: Option<String>,
}

impl Listing {
    fn at(place: Place) -> Self {
        Self {
            place,
            buffer: None,
            next_cursor: None,
        }
    }

    fn needs_fetch(&self) -> bool {
        self.buffer.is_none() && !self.place.end
    }

    /// Holds a fetched page, past what the place says is done.
    fn load(&mut self, page: ListPage) {
        let mut results: VecDeque<Value> = page.results.into();
        if self.place.consumed > 0 {
            let skip = self
                .place
                .last
                .as_deref()
                .and_then(|last| results.iter().position(|r| id_of(r) == Some(last)))
                .map_or(0, |i| i + 1);
            results.drain(..skip);
        }
        self.next_cursor = page.next_cursor;
        self.buffer = Some(results);
        self.settle();
    }

    /// What [`Listing::untake`] needs to put back the next item.
    fn snapshot(&self) -> (Place, Option<String>) {
        (self.place.clone(), self.next_cursor.clone())
    }

    /// Puts back an item taken after `snapshot`, as if it had not been taken.
    fn untake(&mut self, item: Value, (place, next_cursor): (Place, Option<String>)) {
        self.place = place;
        self.next_cursor = next_cursor;
        self.buffer
            .get_or_insert_with(VecDeque::new)
            .push_front(item);
    }

    fn take(&mut self) -> Option<Value> {
        let item = self.buffer.as_mut()?.pop_front()?;
        self.place.consumed += 1;
        self.place.last = id_of(&item).map(str::to_owned);
        self.settle();
        Some(item)
    }

    /// Once the page in memory is used up, the place moves to the next page (or the end).
    fn settle(&mut self) {
        if self.buffer.as_ref().is_some_and(VecDeque::is_empty) {
            self.buffer = None;
            self.place = match self.next_cursor.take() {
                Some(cursor) => Place {
                    page: Some(cursor),
                    ..Place::default()
                },
                None => Place {
                    end: true,
                    ..Place::default()
                },
            };
        }
    }

    fn finish(&mut self) {
        self.buffer = None;
        self.next_cursor = None;
        self.place = Place {
            end: true,
            ..Place::default()
        };
    }
}

/// The checkpoint: where the search is, the database whose rows a full run is reading, and the
/// newest edit seen (the cursor-to-be).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Position {
    search: Place,
    rows: Option<RowsPlace>,
    newest: Option<DateTime<Utc>>,
    done: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RowsPlace {
    database_id: String,
    place: Place,
}

/// What the last completed run leaves for the next one.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Since {
    last_edited_time: DateTime<Utc>,
}

struct NotionStream {
    client: reqwest::Client,
    base_url: BaseUrl,
    authorization: HeaderValue,
    /// Set for an incremental run: results edited before this are not read.
    since: Option<DateTime<Utc>>,
    search: Listing,
    /// A full run's current database and its rows.
    rows: Option<(String, Listing)>,
    newest: Option<DateTime<Utc>>,
    done: bool,
    /// Upstream calls made by the current `next_page`.
    calls: usize,
    /// When the current `next_page` began, and whether it has done an item yet (until then it
    /// goes on whatever the time, so every page moves on).
    started: Instant,
    progressed: bool,
    /// [`PAGE_TIME_BUDGET`]; tests shorten it.
    budget: Duration,
}

/// An item's read, or `OutOfTime` when the page's time budget ran out before it was done.
enum Read<T> {
    Done(T),
    OutOfTime,
}

impl NotionStream {
    fn position(&self) -> Position {
        Position {
            search: self.search.place.clone(),
            rows: self.rows.as_ref().map(|(id, listing)| RowsPlace {
                database_id: id.clone(),
                place: listing.place.clone(),
            }),
            newest: self.newest,
            done: self.done,
        }
    }

    /// Whether the current `next_page` should start no more calls.
    fn out_of_time(&self) -> bool {
        self.progressed && self.started.elapsed() >= self.budget
    }

    fn saw(&mut self, item: &Value) {
        if let Some(at) = last_edited(item) {
            self.newest = Some(self.newest.map_or(at, |n| n.max(at)));
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.base_url.endpoint(path))
            .header(AUTHORIZATION, self.authorization.clone())
            .header("Notion-Version", NOTION_VERSION)
    }

    async fn call(
        &mut self,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<Option<ListPage>, StreamError> {
        let answer = self.call_answer(request).await?;
        self.classify(&answer, what)
    }

    async fn call_answer(
        &mut self,
        request: reqwest::RequestBuilder,
    ) -> Result<Answer, StreamError> {
        self.calls += 1;
        fetch(NAME, request, PAGE_BODY_LIMIT).await
    }

    fn classify(&self, answer: &Answer, what: &str) -> Result<Option<ListPage>, StreamError> {
        let outcome = classify_list(answer, what, Utc::now());
        if let Err(e) = &outcome {
            tracing::info!(status = answer.status.as_u16(), outcome = %e, "Notion answer stops the stream");
        }
        outcome
    }

    /// `POST /v1/search`: oldest edit first on a full run, so what is edited meanwhile moves to
    /// the end and is read again; newest first on an incremental one, down to its cursor.
    async fn fetch_search(&mut self) -> Result<(), StreamError> {
        let direction = match self.since {
            Some(_) => "descending",
            None => "ascending",
        };
        let mut body = json!({
            "sort": {"direction": direction, "timestamp": "last_edited_time"},
            "page_size": LIST_PAGE_SIZE,
        });
        if let Some(cursor) = &self.search.place.page {
            body["start_cursor"] = json!(cursor);
        }
        let request = self.request(reqwest::Method::POST, "v1/search").json(&body);
        match self.call(request, "the search").await? {
            Some(page) => {
                self.search.load(page);
                Ok(())
            }
            None => Err(StreamError::Upstream(
                "Notion answered the search with HTTP 404".into(),
            )),
        }
    }

    /// `POST /v1/databases/{id}/query`, oldest row first: creation order does not move when
    /// rows are edited, so a resumed run skips into the same order.
    async fn fetch_rows(&mut self) -> Result<(), StreamError> {
        let Some((database_id, listing)) = &self.rows else {
            return Ok(());
        };
        let mut body = json!({
            "sorts": [{"timestamp": "created_time", "direction": "ascending"}],
            "page_size": LIST_PAGE_SIZE,
        });
        if let Some(cursor) = &listing.place.page {
            body["start_cursor"] = json!(cursor);
        }
        let path = format!("v1/databases/{database_id}/query");
        let request = self.request(reqwest::Method::POST, &path).json(&body);
        let page = self.call(request, "the rows of a database").await?;
        match (page, &mut self.rows) {
            (Some(page), Some((_, listing))) => listing.load(page),
            // Deleted or unshared since the search listed it: its rows are gone too.
            (None, _) => self.rows = None,
            (Some(_), None) => {}
        }
        Ok(())
    }

    /// A page's blocks, depth first in document order; `None` when the page is gone (404). A
    /// nested block whose children Notion refuses (400 for a block it cannot serve, 403, 404
    /// when deleted meanwhile) is left out and the content marked truncated: one odd block must
    /// not fail every run.
    async fn content(&mut self, page_id: &str) -> Result<Read<Option<Content>>, StreamError> {
        struct Frame {
            block_id: String,
            depth: usize,
            pending: VecDeque<Value>,
            next_cursor: Option<String>,
            fetched: bool,
        }
        let frame = |block_id: String, depth| Frame {
            block_id,
            depth,
            pending: VecDeque::new(),
            next_cursor: None,
            fetched: false,
        };
        let mut content = Content::default();
        let mut stack = vec![frame(page_id.to_owned(), 0)];
        let mut calls = 0;
        let mut skipped = false;
        while let Some(top) = stack.last_mut() {
            if let Some(block) = top.pending.pop_front() {
                let depth = top.depth;
                if let Some(line) = block_line(&block) {
                    content.push_line(depth, &line);
                }
                let child = id_of(&block).filter(|id| is_notion_id(id));
                if let (true, Some(id)) = (descends(&block) && depth + 1 < MAX_DEPTH, child) {
                    stack.push(frame(id.to_owned(), depth + 1));
                }
                continue;
            }
            if top.fetched && top.next_cursor.is_none() {
                stack.pop();
                continue;
            }
            if calls == CONTENT_CALLS_PER_ITEM || content.truncated {
                content.truncated = true;
                break;
            }
            if self.out_of_time() {
                return Ok(Read::OutOfTime);
            }
            calls += 1;
            let mut path = format!(
                "v1/blocks/{}/children?page_size={LIST_PAGE_SIZE}",
                top.block_id
            );
            if let Some(cursor) = &top.next_cursor {
                path.push_str("&start_cursor=");
                path.push_str(
                    &url::form_urlencoded::byte_serialize(cursor.as_bytes()).collect::<String>(),
                );
            }
            let nested = stack.len() > 1;
            let request = self.request(reqwest::Method::GET, &path);
            let answer = self.call_answer(request).await?;
            let status = answer.status.as_u16();
            if nested && matches!(status, 400 | 403 | 404) {
                tracing::info!(
                    status,
                    "Notion refused a nested block's children; the page is kept without them"
                );
                skipped = true;
                stack.pop();
                continue;
            }
            let answer = self.classify(&answer, "a page's content")?;
            let top = stack.last_mut().expect("the frame being read");
            match answer {
                Some(page) => {
                    top.pending = page.results.into();
                    top.next_cursor = page.next_cursor;
                    top.fetched = true;
                }
                // The page itself vanished (404 on its own blocks, first or later page).
                None => return Ok(Read::Done(None)),
            }
        }
        content.truncated |= skipped;
        Ok(Read::Done(Some(content)))
    }

    /// A page or row with its content; `None` when it vanished before its content was read.
    async fn with_content(
        &mut self,
        item: &Value,
        kind: Kind,
    ) -> Result<Read<Option<Entity>>, StreamError> {
        let id = id_of(item)
            .filter(|id| is_notion_id(id))
            .ok_or_else(|| malformed_item(kind))?;
        Ok(match self.content(id).await? {
            Read::Done(Some(content)) => Read::Done(Some(page_entity(item, kind, content)?)),
            Read::Done(None) => Read::Done(None),
            Read::OutOfTime => Read::OutOfTime,
        })
    }

    /// One search result into the page being built; `OutOfTime` when the page's time ran out
    /// before it was done (the caller puts it back).
    async fn take_search_result(
        &mut self,
        item: &Value,
        page: &mut EntityPage,
    ) -> Result<Read<()>, StreamError> {
        let Some(kind) = Kind::of(item) else {
            return Ok(Read::Done(()));
        };
        let Some(at) = last_edited(item) else {
            return Err(malformed_item(kind));
        };
        if let Some(since) = self.since {
            // Equal times are read again: Notion rounds edit times to the minute.
            if at < since {
                self.search.finish();
                return Ok(Read::Done(()));
            }
        }
        self.saw(item);
        let incremental = self.since.is_some();
        if is_trashed(item) {
            // A full run drops what it does not yield anyway; an incremental one says so.
            if incremental {
                let id = id_of(item).unwrap_or_default();
                if let Ok(key) = EntityKey::new(kind.entity_type(), id) {
                    page.removed.push(key);
                }
            }
            return Ok(Read::Done(()));
        }
        match kind {
            Kind::Database => {
                let entity = database_entity(item)?;
                if !incremental {
                    let id = entity.entity_id.clone();
                    self.rows = Some((id, Listing::default()));
                }
                page.entities.push(entity);
            }
            // A full run reads rows from their database's query.
            Kind::Row if !incremental => {}
            Kind::Page | Kind::Row => match self.with_content(item, kind).await? {
                Read::Done(entity) => page.entities.extend(entity),
                Read::OutOfTime => return Ok(Read::OutOfTime),
            },
        }
        Ok(Read::Done(()))
    }
}

#[async_trait]
impl EntityStream for NotionStream {
    async fn next_page(&mut self) -> Result<Option<EntityPage>, StreamError> {
        if self.done {
            return Ok(None);
        }
        self.calls = 0;
        self.started = Instant::now();
        self.progressed = false;
        let mut page = EntityPage {
            entities: Vec::new(),
            removed: Vec::new(),
            checkpoint: Value::Null,
        };
        while self.calls < CALLS_PER_PAGE && !self.out_of_time() {
            if let Some((_, rows)) = &mut self.rows {
                if rows.needs_fetch() {
                    self.fetch_rows().await?;
                    continue;
                }
                let before = rows.snapshot();
                match rows.take() {
                    Some(row) => {
                        if is_trashed(&row) || Kind::of(&row) != Some(Kind::Row) {
                            continue;
                        }
                        self.saw(&row);
                        match self.with_content(&row, Kind::Row).await? {
                            Read::Done(entity) => page.entities.extend(entity),
                            Read::OutOfTime => {
                                if let Some((_, rows)) = &mut self.rows {
                                    rows.untake(row, before);
                                }
                                break;
                            }
                        }
                        self.progressed = true;
                    }
                    None => self.rows = None,
                }
                continue;
            }
            if self.search.needs_fetch() {
                self.fetch_search().await?;
                continue;
            }
            let before = self.search.snapshot();
            match self.search.take() {
                Some(item) => match self.take_search_result(&item, &mut page).await? {
                    Read::Done(()) => self.progressed = true,
                    Read::OutOfTime => {
                        self.search.untake(item, before);
                        break;
                    }
                },
                None => {
                    self.done = true;
                    break;
                }
            }
        }
        if self.done && page.entities.is_empty() && page.removed.is_empty() {
            return Ok(None);
        }
        page.checkpoint = serde_json::to_value(self.position()).expect("a position serializes");
        Ok(Some(page))
    }

    fn incremental(&self) -> bool {
        self.since.is_some()
    }

    fn cursor(&self) -> Option<Value> {
        let newest = match (self.newest, self.since) {
            (Some(a), Some(b)) => a.max(b),
            (a, b) => a.or(b)?,
        };
        Some(json!(Since {
            last_edited_time: newest
        }))
    }
}

#[async_trait]
impl Source for NotionSource {
    fn spec(&self) -> &SourceSpec {
        &self.spec
    }

    /// `GET /v1/users/me`: the integration's bot user, the cheapest call that needs a valid token.
    #[tracing::instrument(name = "notion_check_credentials", skip_all, fields(method = auth.method().as_str()))]
    async fn check_credentials(
        &self,
        auth: &AuthenticationRequest,
        _config: &Map<String, Value>,
    ) -> Result<(), CheckError> {
        let authorization = authorization(auth).map_err(CheckError::Rejected)?;
        let request = self
            .client
            .get(self.base_url.endpoint("v1/users/me"))
            .header(AUTHORIZATION, authorization)
            .header("Notion-Version", NOTION_VERSION);
        check_exchange(NAME, request, CHECK_BODY_LIMIT, |answer| {
            classify_check(answer.status, &answer.headers, &answer.body, Utc::now())
        })
        .await
    }

    fn open_stream(&self, request: StreamRequest) -> Result<Box<dyn EntityStream>, StreamError> {
        Ok(Box::new(self.stream(request)?))
    }
}

impl NotionSource {
    fn stream(&self, request: StreamRequest) -> Result<NotionStream, StreamError> {
        let authorization = authorization(&request.auth).map_err(StreamError::Rejected)?;
        // An unreadable cursor (another format) means a full run, which is always correct.
        let since = request
            .since
            .and_then(|v| serde_json::from_value::<Since>(v).ok())
            .map(|s| s.last_edited_time);
        let position = match request.resume {
            Some(v) => serde_json::from_value::<Position>(v).map_err(|_| {
                StreamError::Malformed("the Notion checkpoint is unreadable".into())
            })?,
            None => Position::default(),
        };
        let rows = position
            .rows
            .filter(|r| is_notion_id(&r.database_id))
            .map(|r| (r.database_id, Listing::at(r.place)));
        Ok(NotionStream {
            client: self.client.clone(),
            base_url: self.base_url.clone(),
            authorization,
            since,
            search: Listing::at(position.search),
            rows,
            newest: position.newest,
            done: position.done,
            calls: 0,
            started: Instant::now(),
            progressed: false,
            budget: PAGE_TIME_BUDGET,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{header_map, FakeUpstream, Reply, Seen};
    use crate::upstream::http_client;
    use domain::auth::{Credentials, OauthToken};
    use domain::catalog::validate_fields;
    use http_body_util::{BodyExt, Full};
    use hyper::body::{Bytes, Incoming};
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper::{Request, Response};
    use hyper_util::rt::TokioIo;
    use secrecy::SecretString;
    use std::collections::BTreeMap;
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};
    use tokio::net::TcpListener;
    use tokio::task::JoinHandle;

    const TOKEN: &str = "ntn_test0secret0integration0token";

    fn direct(token: &str) -> AuthenticationRequest {
        let fields = json!({ "access_token": token });
        AuthenticationRequest::Direct(Credentials::new(fields.as_object().unwrap().clone()))
    }

    fn oauth(token: &str) -> AuthenticationRequest {
        AuthenticationRequest::OauthToken(OauthToken {
            access_token: SecretString::from(token.to_owned()),
            refresh_token: None,
            expires_at: None,
        })
    }

    // --- a small Notion: the shared scripted upstream sees paths only, and Notion's list calls
    // carry their cursor in the body ---

    fn id(n: u32) -> String {
        format!("00000000-0000-4000-8000-{n:012x}")
    }

    /// Minute `m` of the test day, as Notion writes times.
    fn at(minute: u32) -> String {
        format!("2026-03-01T10:{minute:02}:00.000Z")
    }

    fn time(minute: u32) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&at(minute))
            .unwrap()
            .with_timezone(&Utc)
    }

    fn text(t: &str) -> Value {
        json!([{"type": "text", "text": {"content": t, "link": null}, "plain_text": t, "href": null}])
    }

    fn page(n: u32, title: &str, minute: u32) -> Value {
        json!({
            "object": "page", "id": id(n),
            "created_time": at(0), "last_edited_time": at(minute),
            "created_by": {"object": "user", "id": id(900)},
            "last_edited_by": {"object": "user", "id": id(901)},
            "parent": {"type": "workspace", "workspace": true},
            "archived": false, "in_trash": false,
            "properties": {"title": {"id": "title", "type": "title", "title": text(title)}},
            "url": format!("https://www.notion.so/{}", id(n).replace('-', "")),
        })
    }

    fn database(n: u32, title: &str, minute: u32) -> Value {
        json!({
            "object": "database", "id": id(n),
            "created_time": at(0), "last_edited_time": at(minute),
            "title": text(title), "description": text("what we plan"),
            "parent": {"type": "page_id", "page_id": id(1)},
            "is_inline": false, "archived": false, "in_trash": false,
            "properties": {
                "Name": {"id": "title", "name": "Name", "type": "title", "title": {}},
                "Status": {"id": "s", "name": "Status", "type": "select",
                           "select": {"options": [{"id": "o1", "name": "Done", "color": "green"}]}},
            },
            "url": format!("https://www.notion.so/{}", id(n).replace('-', "")),
        })
    }

    fn row(n: u32, db: u32, title: &str, minute: u32) -> Value {
        let mut row = page(n, "", minute);
        row["parent"] = json!({"type": "database_id", "database_id": id(db)});
        row["properties"] = json!({
            "Name": {"id": "title", "type": "title", "title": text(title)},
            "Status": {"id": "s", "type": "select", "select": {"id": "o1", "name": "Done", "color": "green"}},
            "Edited": {"id": "e", "type": "last_edited_time", "last_edited_time": at(minute)},
        });
        row
    }

    fn block(n: u32, kind: &str, t: &str, has_children: bool) -> Value {
        json!({
            "object": "block", "id": id(n), "type": kind, "has_children": has_children,
            "created_time": at(0), "last_edited_time": at(0), "archived": false,
            kind: {"rich_text": text(t), "color": "default"},
        })
    }

    /// The call (1-based) that answers this status, headers and body instead.
    type Glitch = (usize, u16, Vec<(&'static str, String)>, String);

    #[derive(Default)]
    struct MiniState {
        /// What the search finds; it answers them sorted by `last_edited_time` in the direction
        /// asked (ties in this order).
        search: Vec<Value>,
        /// Blocks whose children answer this status and Notion error code.
        refuse: BTreeMap<String, (u16, &'static str)>,
        /// Calls whose path holds this id answer after this delay.
        slow: Option<(String, Duration)>,
        rows: BTreeMap<String, Vec<Value>>,
        blocks: BTreeMap<String, Vec<Value>>,
        /// Results per list call, whatever was asked: small, so few items take many pages.
        page_size: usize,
        glitch: Option<Glitch>,
        calls: Vec<String>,
        sizes_asked: Vec<u64>,
    }

    struct MiniNotion {
        base_url: String,
        state: Arc<Mutex<MiniState>>,
        task: JoinHandle<()>,
    }

    impl Drop for MiniNotion {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    impl MiniNotion {
        async fn start(state: MiniState) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base_url = format!("http://{}", listener.local_addr().unwrap());
            let state = Arc::new(Mutex::new(state));
            let shared = Arc::clone(&state);
            let task = tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let state = Arc::clone(&shared);
                    tokio::spawn(async move {
                        let service = service_fn(move |request: Request<Incoming>| {
                            let state = Arc::clone(&state);
                            async move {
                                let (parts, body) = request.into_parts();
                                let body = body.collect().await.unwrap().to_bytes();
                                let (reply, delay) = {
                                    let mut state = state.lock().unwrap();
                                    let delay = state
                                        .slow
                                        .as_ref()
                                        .filter(|(id, _)| parts.uri.path().contains(id.as_str()))
                                        .map(|(_, delay)| *delay);
                                    (answer(&mut state, &parts, &body), delay)
                                };
                                if let Some(delay) = delay {
                                    tokio::time::sleep(delay).await;
                                }
                                Ok::<_, Infallible>(reply)
                            }
                        });
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
            Self {
                base_url,
                state,
                task,
            }
        }

        fn source(&self) -> NotionSource {
            NotionSource::new(
                http_client().unwrap(),
                BaseUrl::parse(&self.base_url).unwrap(),
            )
        }

        fn calls(&self) -> Vec<String> {
            self.state.lock().unwrap().calls.clone()
        }
    }

    fn respond(status: u16, headers: &[(&str, String)], body: String) -> Response<Full<Bytes>> {
        let mut response = Response::builder().status(status);
        for (name, value) in headers {
            response = response.header(*name, value);
        }
        response.body(Full::new(Bytes::from(body))).unwrap()
    }

    fn error(status: u16, code: &str, message: &str) -> Response<Full<Bytes>> {
        let body = json!({"object": "error", "status": status, "code": code, "message": message});
        respond(status, &[], body.to_string())
    }

    fn answer(
        state: &mut MiniState,
        parts: &hyper::http::request::Parts,
        body: &[u8],
    ) -> Response<Full<Bytes>> {
        let path = parts.uri.path().to_owned();
        let query: BTreeMap<String, String> =
            url::form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let cursor = body["start_cursor"]
            .as_str()
            .or(query.get("start_cursor").map(String::as_str))
            .map(str::to_owned);
        state.calls.push(format!(
            "{} {path} {}",
            parts.method,
            cursor.as_deref().unwrap_or("-")
        ));
        let size = body["page_size"]
            .as_u64()
            .or_else(|| query.get("page_size")?.parse().ok());
        state.sizes_asked.extend(size);
        if let Some((n, status, headers, body)) = &state.glitch {
            if *n == state.calls.len() {
                return respond(*status, headers, body.clone());
            }
        }
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        if header("authorization") != Some(&format!("Bearer {TOKEN}")) {
            return error(401, "unauthorized", "API token is invalid.");
        }
        if header("notion-version") != Some(NOTION_VERSION) {
            return error(
                400,
                "missing_version",
                "Notion-Version header failed validation",
            );
        }
        let items = if path == "/v1/search" && parts.method == "POST" {
            let mut found = state.search.clone();
            let edited = |v: &Value| {
                v["last_edited_time"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            };
            if body.pointer("/sort/direction").and_then(Value::as_str) == Some("ascending") {
                found.sort_by_key(edited);
            } else {
                found.sort_by_key(|v| std::cmp::Reverse(edited(v)));
            }
            Some(found)
        } else if let Some((status, code)) = path
            .strip_prefix("/v1/blocks/")
            .and_then(|p| p.strip_suffix("/children"))
            .and_then(|block| state.refuse.get(block))
        {
            return error(*status, code, "refused");
        } else if let Some(db) = path
            .strip_prefix("/v1/databases/")
            .and_then(|p| p.strip_suffix("/query"))
        {
            state.rows.get(db).cloned()
        } else if let Some(block) = path
            .strip_prefix("/v1/blocks/")
            .and_then(|p| p.strip_suffix("/children"))
        {
            state.blocks.get(block).cloned()
        } else if path == "/v1/users/me" {
            let user = json!({"object": "user", "id": id(900), "type": "bot", "bot": {}});
            return respond(200, &[], user.to_string());
        } else {
            None
        };
        let Some(items) = items else {
            return error(404, "object_not_found", "Could not find object.");
        };
        let start: usize = cursor
            .and_then(|c| c.strip_prefix('c')?.parse().ok())
            .unwrap_or(0);
        let end = (start + state.page_size.max(1)).min(items.len());
        let has_more = end < items.len();
        let list = json!({
            "object": "list",
            "results": items[start.min(end)..end],
            "has_more": has_more,
            "next_cursor": has_more.then(|| format!("c{end}")),
        });
        respond(200, &[], list.to_string())
    }

    /// Pages until the stream ends.
    async fn drain(stream: &mut Box<dyn EntityStream>) -> Vec<EntityPage> {
        let mut pages = Vec::new();
        while let Some(page) = stream.next_page().await.unwrap() {
            pages.push(page);
            assert!(pages.len() < 100, "the stream never ends");
        }
        pages
    }

    fn keys(pages: &[EntityPage]) -> Vec<String> {
        pages
            .iter()
            .flat_map(|p| &p.entities)
            .map(|e| format!("{}#{}", e.entity_type, e.entity_id))
            .collect()
    }

    fn request(since: Option<Value>, resume: Option<Value>) -> StreamRequest {
        StreamRequest {
            auth: direct(TOKEN),
            config: Map::new(),
            since,
            resume,
        }
    }

    /// Pages 1-3, database 10 with rows 11-13 (also in the search, as Notion lists them), page
    /// 1 with nested content; three results per list call.
    fn workspace() -> MiniState {
        let mut state = MiniState {
            page_size: 3,
            search: vec![
                page(1, "Roadmap", 30),
                row(12, 10, "Ship notion", 29),
                database(10, "Projects", 28),
                page(2, "Meeting notes", 27),
                row(11, 10, "Write tests", 26),
                page(3, "Ideas", 25),
                row(13, 10, "Fix bugs", 24),
            ],
            ..MiniState::default()
        };
        state.rows.insert(
            id(10),
            vec![
                row(11, 10, "Write tests", 26),
                row(12, 10, "Ship notion", 29),
                row(13, 10, "Fix bugs", 24),
            ],
        );
        state.blocks.insert(
            id(1),
            vec![
                block(100, "heading_1", "Goals", false),
                block(101, "bulleted_list_item", "Level one", true),
                json!({"object": "block", "id": id(102), "type": "child_page", "has_children": true,
                       "child_page": {"title": "Sub page"}}),
                block(103, "paragraph", "The end", false),
            ],
        );
        state.blocks.insert(
            id(101),
            vec![block(110, "bulleted_list_item", "Level two", true)],
        );
        state
            .blocks
            .insert(id(110), vec![block(120, "paragraph", "Level three", true)]);
        state
            .blocks
            .insert(id(120), vec![block(130, "paragraph", "Level four", false)]);
        state.blocks.insert(
            id(102),
            vec![block(140, "paragraph", "Belongs to the sub page", false)],
        );
        for n in [2, 3, 11, 12, 13] {
            state.blocks.insert(
                id(n),
                vec![block(200 + n, "paragraph", &format!("Body of {n}"), false)],
            );
        }
        state
    }

    /// The workspace and 40 more pages and rows: several stream pages.
    fn bigger_workspace() -> MiniState {
        let mut state = workspace();
        state.page_size = 7;
        for n in 0..20 {
            state.search.push(page(400 + n, &format!("Note {n}"), 20));
            state.blocks.insert(
                id(400 + n),
                vec![block(600 + n, "paragraph", "note", false)],
            );
            let extra = row(500 + n, 10, &format!("Task {n}"), 20);
            state.search.push(extra.clone());
            state.rows.get_mut(&id(10)).unwrap().push(extra);
            state.blocks.insert(
                id(500 + n),
                vec![block(700 + n, "paragraph", "task", false)],
            );
        }
        state
    }

    // --- the catalog entry ---

    #[test]
    fn the_catalog_entry_reads_as_documented() {
        let spec = spec();
        assert_eq!((spec.short_name, spec.name), ("notion", "Notion"));
        assert_eq!(
            spec.auth_methods,
            [
                AuthMethod::Direct,
                AuthMethod::OauthToken,
                AuthMethod::OauthBrowser,
                AuthMethod::OauthByoc,
                AuthMethod::AuthProvider
            ]
        );
        let field = &spec.auth_fields[0];
        assert_eq!(spec.auth_fields.len(), 1);
        assert!(field.name == "access_token" && field.required && field.is_secret);
        assert_eq!(
            spec.entity_types,
            ["notion_page", "notion_database", "notion_database_row"]
        );
        assert!(spec.supports_incremental && !spec.federated_search);
        let oauth = spec.oauth.unwrap();
        assert_eq!(
            oauth.authorize_url,
            "https://api.notion.com/v1/oauth/authorize"
        );
        assert_eq!(oauth.token_url, "https://api.notion.com/v1/oauth/token");
        assert!(oauth.scopes.is_empty() && !oauth.pkce);
        assert_eq!(oauth.client_auth, ClientAuth::Basic);
        assert_eq!(oauth.access_token_pointer, "/access_token");
        assert_eq!(oauth.refresh_token_pointer, Some("/refresh_token"));
        let creds = json!({"access_token": "ntn_x"});
        assert!(validate_fields(&spec.auth_fields, creds.as_object().unwrap(), "a").is_empty());
        assert_eq!(
            validate_fields(&spec.auth_fields, &Map::new(), "credentials")[0].field,
            "credentials.access_token"
        );
    }

    // --- the credential check ---

    #[tokio::test]
    async fn a_check_asks_users_me_with_the_token_and_the_pinned_version() {
        let fake = FakeUpstream::start(|_: &Seen| {
            Reply::status(200).json(json!({"object": "user", "id": "u", "type": "bot"}))
        })
        .await;
        let source = NotionSource::new(
            http_client().unwrap(),
            BaseUrl::parse(&fake.base_url).unwrap(),
        );
        for auth in [direct(TOKEN), oauth(TOKEN)] {
            assert_eq!(source.check_credentials(&auth, &Map::new()).await, Ok(()));
        }
        for seen in fake.seen() {
            assert_eq!(
                (seen.method.as_str(), seen.path.as_str()),
                ("GET", "/v1/users/me")
            );
            assert_eq!(
                seen.header("authorization"),
                Some(format!("Bearer {TOKEN}").as_str())
            );
            assert_eq!(seen.header("notion-version"), Some("2022-06-28"));
        }
        assert_eq!(fake.seen().len(), 2);
    }

    #[tokio::test]
    async fn a_refused_token_is_rejected_without_repeating_it() {
        let fake = FakeUpstream::start(|_: &Seen| {
            Reply::status(401).json(json!({"object": "error", "status": 401,
                "code": "unauthorized", "message": format!("API token {TOKEN} is invalid.")}))
        })
        .await;
        let source = NotionSource::new(
            http_client().unwrap(),
            BaseUrl::parse(&fake.base_url).unwrap(),
        );
        let err = source
            .check_credentials(&direct(TOKEN), &Map::new())
            .await
            .unwrap_err();
        assert!(matches!(&err, CheckError::Rejected(_)), "{err:?}");
        assert!(!err.to_string().contains(TOKEN), "{err}");
        let other = AuthenticationRequest::OauthBrowser;
        assert!(matches!(
            source.check_credentials(&other, &Map::new()).await,
            Err(CheckError::Rejected(_))
        ));
        assert_eq!(fake.seen().len(), 1, "an unsupported method asks nothing");
    }

    #[test]
    fn check_answers_are_classified() {
        let now = Utc::now();
        let none = HeaderMap::new();
        let body = |code: &str| {
            json!({"object": "error", "code": code})
                .to_string()
                .into_bytes()
        };
        let check = |status: u16, headers: &HeaderMap, body: &[u8]| {
            classify_check(StatusCode::from_u16(status).unwrap(), headers, body, now)
        };
        assert_eq!(check(200, &none, br#"{"object":"user","id":"x"}"#), Ok(()));
        assert!(matches!(
            check(200, &none, b"<html>"),
            Err(CheckError::Unavailable(_))
        ));
        assert!(matches!(
            check(401, &none, &body("unauthorized")),
            Err(CheckError::Rejected(_))
        ));
        assert!(matches!(
            check(403, &none, &body("restricted_resource")),
            Err(CheckError::Rejected(_))
        ));
        assert_eq!(
            check(
                429,
                &header_map(&[("retry-after", "3")]),
                &body("rate_limited")
            ),
            Err(CheckError::RateLimited {
                retry_after: Some(Duration::from_secs(3))
            })
        );
        assert_eq!(
            check(429, &none, &body("rate_limited")),
            Err(CheckError::RateLimited {
                retry_after: Some(DEFAULT_RATE_LIMIT_WAIT)
            })
        );
        assert_eq!(
            check(503, &none, &body("service_unavailable")),
            Err(CheckError::Unavailable(
                "Notion is unavailable (HTTP 503 service_unavailable)".into()
            ))
        );
        assert!(matches!(
            check(400, &none, &body("missing_version")),
            Err(CheckError::Unavailable(_))
        ));
    }

    // --- stream answers ---

    fn reply(status: u16, headers: &[(&'static str, &str)], body: &str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: header_map(headers),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn list_answers_are_classified() {
        let now = Utc::now();
        let list = |a: Answer| classify_list(&a, "the search", now);
        let page = list(reply(
            200,
            &[],
            r#"{"object":"list","results":[{"id":"a"}],"has_more":true,"next_cursor":"n1"}"#,
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            (page.results.len(), page.next_cursor.as_deref()),
            (1, Some("n1"))
        );
        let last = list(reply(
            200,
            &[],
            r#"{"object":"list","results":[],"has_more":false,"next_cursor":null}"#,
        ))
        .unwrap()
        .unwrap();
        assert_eq!(last.next_cursor, None);
        assert!(list(reply(
            404,
            &[],
            r#"{"object":"error","status":404,"code":"object_not_found"}"#
        ))
        .unwrap()
        .is_none());

        let error = |status, headers: &[(&'static str, &str)], code: &str| {
            let body = json!({"object": "error", "status": status, "code": code,
                "message": format!("details naming {TOKEN}")});
            list(reply(status, headers, &body.to_string())).unwrap_err()
        };
        assert!(matches!(
            error(401, &[], "unauthorized"),
            StreamError::Rejected(_)
        ));
        assert!(matches!(
            error(403, &[], "restricted_resource"),
            StreamError::Rejected(_)
        ));
        assert_eq!(
            error(429, &[("retry-after", "7")], "rate_limited"),
            StreamError::RateLimited {
                wait: Duration::from_secs(7)
            }
        );
        assert_eq!(
            error(429, &[], "rate_limited"),
            StreamError::RateLimited {
                wait: DEFAULT_RATE_LIMIT_WAIT
            }
        );
        assert_eq!(
            error(502, &[], "bad_gateway"),
            StreamError::Upstream("Notion is unavailable (HTTP 502 bad_gateway)".into())
        );
        let refused = error(400, &[], "validation_error");
        assert_eq!(
            refused,
            StreamError::Upstream("Notion refused the search (HTTP 400 validation_error)".into())
        );
        assert!(!refused.to_string().contains(TOKEN));

        for bad in [
            "<html>oops</html>",
            r#"{"object":"page"}"#,
            r#"{"object":"list","results":{},"has_more":false}"#,
            r#"{"object":"list","results":[],"has_more":true,"next_cursor":null}"#,
            r#"{"object":"list","results":[]}"#,
        ] {
            assert!(
                matches!(list(reply(200, &[], bad)), Err(StreamError::Malformed(_))),
                "{bad}"
            );
        }
    }

    // --- payloads ---

    #[test]
    fn blocks_become_lines_of_text() {
        let line = |v: Value| block_line(&v);
        assert_eq!(
            line(block(1, "heading_2", "Plan", false)).as_deref(),
            Some("## Plan")
        );
        assert_eq!(line(block(1, "paragraph", "", false)), None);
        let mut todo = block(1, "to_do", "Call Ann", false);
        todo["to_do"]["checked"] = json!(true);
        assert_eq!(line(todo).as_deref(), Some("[x] Call Ann"));
        let row = json!({"type": "table_row", "table_row": {"cells": [text("a"), text("b")]}});
        assert_eq!(line(row).as_deref(), Some("a | b"));
        let hosted = json!({"type": "image", "image": {"type": "file", "caption": text("Diagram"),
            "file": {"url": "https://files.example/x.png?X-Amz-Signature=1", "expiry_time": at(1)}}});
        assert_eq!(line(hosted).as_deref(), Some("Diagram"));
        assert_eq!(line(json!({"type": "divider", "divider": {}})), None);
    }

    #[test]
    fn properties_keep_what_users_search_for_and_drop_what_changes_on_every_read() {
        let props = |url: &str| {
            json!({
                "Name": {"type": "title", "title": text("Launch")},
                "Tags": {"type": "multi_select", "multi_select": [{"name": "a"}, {"name": "b"}]},
                "Due": {"type": "date", "date": {"start": "2026-04-01", "end": null}},
                "Owner": {"type": "people", "people": [{"object": "user", "id": "u1", "name": "Ann"}]},
                "Points": {"type": "number", "number": 3},
                "Empty": {"type": "select", "select": null},
                "Edited": {"type": "last_edited_time", "last_edited_time": at(3)},
                "Files": {"type": "files", "files": [{"name": "spec.pdf", "type": "file",
                    "file": {"url": url, "expiry_time": at(9)}}]},
                "Id": {"type": "unique_id", "unique_id": {"prefix": "TASK", "number": 7}},
                // Computed at read time: `now()` differs on every read.
                "Age": {"type": "formula", "formula": {"type": "date", "date": {"start": url}}},
                "Total": {"type": "rollup", "rollup": {"type": "number", "number": url.len()}},
            })
        };
        let mut item = row(5, 10, "", 3);
        item["properties"] = props("https://files.example/spec.pdf?X-Amz-Signature=one");
        let first = page_entity(&item, Kind::Row, Content::default()).unwrap();
        assert_eq!(first.title, "Launch");
        assert_eq!(
            first.payload["properties"],
            json!({"Name": "Launch", "Tags": ["a", "b"], "Due": {"start": "2026-04-01", "end": null},
                   "Owner": ["Ann"], "Points": 3, "Files": ["spec.pdf"], "Id": "TASK-7"})
        );
        assert_eq!(first.payload["database_id"], id(10));
        item["properties"] = props("https://files.example/spec.pdf?X-Amz-Signature=two!");
        let second = page_entity(&item, Kind::Row, Content::default()).unwrap();
        assert_eq!(
            first.content_hash(),
            second.content_hash(),
            "a re-signed file URL or a recomputed formula or rollup is no change"
        );
    }

    // --- the stream ---

    #[tokio::test]
    async fn a_full_run_reads_the_search_the_rows_and_each_pages_content() {
        let notion = MiniNotion::start(workspace()).await;
        let mut stream = notion.source().open_stream(request(None, None)).unwrap();
        assert!(notion.calls().is_empty(), "opening a stream asks nothing");
        let pages = drain(&mut stream).await;
        let mut all = keys(&pages);
        all.sort();
        let mut expected: Vec<String> = [1, 2, 3]
            .map(|n| format!("notion_page#{}", id(n)))
            .into_iter()
            .chain([11, 12, 13].map(|n| format!("notion_database_row#{}", id(n))))
            .chain([format!("notion_database#{}", id(10))])
            .collect();
        expected.sort();
        assert_eq!(
            all, expected,
            "every item once: rows from their database only"
        );
        assert!(!stream.incremental());
        assert_eq!(
            stream.cursor(),
            Some(json!({"last_edited_time": "2026-03-01T10:30:00Z"}))
        );

        let entities: Vec<&Entity> = pages.iter().flat_map(|p| &p.entities).collect();
        let roadmap = entities.iter().find(|e| e.entity_id == id(1)).unwrap();
        assert_eq!(roadmap.title, "Roadmap");
        assert_eq!(roadmap.updated_at, Some(time(30)));
        assert_eq!(
            roadmap.payload["content"],
            "# Goals\n- Level one\n  - Level two\n    Level three\nSub page\nThe end",
            "three levels deep; a child page's blocks are its own"
        );
        assert_eq!(roadmap.payload["content_truncated"], false);
        let db = entities.iter().find(|e| e.entity_id == id(10)).unwrap();
        assert_eq!(db.title, "Projects");
        assert_eq!(
            db.payload["properties"],
            json!({"Name": "title", "Status": "select"})
        );
        let tests = entities.iter().find(|e| e.entity_id == id(11)).unwrap();
        assert_eq!(tests.payload["content"], "Body of 11");
        assert_eq!(
            tests.payload["properties"],
            json!({"Name": "Write tests", "Status": "Done"})
        );

        let calls = notion.calls();
        assert_eq!(calls.iter().filter(|c| c.contains("/v1/search")).count(), 3);
        assert_eq!(calls.iter().filter(|c| c.contains("/query")).count(), 1);
        assert!(
            calls.iter().all(|c| !c.contains(&id(120))),
            "no fourth level: {calls:?}"
        );
        assert!(
            calls.iter().all(|c| !c.contains(&id(102))),
            "no child page's blocks"
        );
        let sizes = notion.state.lock().unwrap().sizes_asked.clone();
        assert!(sizes.iter().all(|s| *s == 100), "{sizes:?}");
    }

    #[tokio::test]
    async fn each_page_is_a_bounded_number_of_calls() {
        let mut state = MiniState {
            page_size: 100,
            ..MiniState::default()
        };
        for n in 0..60 {
            state
                .search
                .push(page(1000 + n, &format!("Page {n}"), 59 - n));
            state
                .blocks
                .insert(id(1000 + n), vec![block(5000 + n, "paragraph", "x", false)]);
        }
        let notion = MiniNotion::start(state).await;
        let mut stream = notion.source().open_stream(request(None, None)).unwrap();
        let mut before = 0;
        let mut total = 0;
        while let Some(page) = stream.next_page().await.unwrap() {
            let calls = notion.calls().len();
            assert!(
                calls - before <= CALLS_PER_PAGE + CONTENT_CALLS_PER_ITEM,
                "{}",
                calls - before
            );
            before = calls;
            total += page.entities.len();
        }
        assert_eq!(total, 60);
        assert_eq!(
            notion.calls().len(),
            61,
            "one search call and one content call per page"
        );
    }

    #[tokio::test]
    async fn every_checkpoint_resumes_right_after_its_page() {
        let notion = MiniNotion::start(bigger_workspace()).await;
        let source = notion.source();
        let mut stream = source.open_stream(request(None, None)).unwrap();
        let pages = drain(&mut stream).await;
        let all = keys(&pages);
        assert!(pages.len() >= 3, "the workspace takes several pages");
        for (i, page) in pages.iter().enumerate() {
            let resume = Some(page.checkpoint.clone());
            let mut resumed = source.open_stream(request(None, resume)).unwrap();
            let rest = drain(&mut resumed).await;
            let mut seen = keys(&pages[..=i]);
            seen.extend(keys(&rest));
            assert_eq!(seen, all, "resumed after page {i}");
            assert_eq!(resumed.cursor(), stream.cursor());
        }
    }

    #[tokio::test]
    async fn a_resumed_page_skips_past_the_last_item_even_if_items_moved() {
        let mut listing = Listing::at(Place {
            page: Some("c3".into()),
            consumed: 2,
            last: Some(id(5)),
            end: false,
        });
        // An item before the resumed position vanished: the page starts one item later.
        listing.load(ListPage {
            results: vec![page(5, "a", 1), page(6, "b", 1), page(7, "c", 1)],
            next_cursor: None,
        });
        assert_eq!(id_of(&listing.take().unwrap()), Some(id(6).as_str()));
        assert_eq!(id_of(&listing.take().unwrap()), Some(id(7).as_str()));
        assert!(listing.take().is_none() && listing.place.end);
    }

    #[tokio::test]
    async fn a_resumed_page_whose_last_item_left_is_handed_out_again_whole() {
        let mut listing = Listing::at(Place {
            page: Some("c3".into()),
            consumed: 2,
            last: Some(id(5)),
            end: false,
        });
        // The last item handed out left the page: where the rest starts is unknown, so nothing
        // is skipped (by count, page 7 would be, and then deleted as absent).
        listing.load(ListPage {
            results: vec![page(4, "a", 1), page(6, "b", 1), page(7, "c", 1)],
            next_cursor: None,
        });
        let ids: Vec<String> = std::iter::from_fn(|| listing.take())
            .map(|item| id_of(&item).unwrap().to_owned())
            .collect();
        assert_eq!(ids, [id(4), id(6), id(7)]);
    }

    /// A stream that starts no call once `budget` has passed in a page (after its first item).
    fn stream_with_budget(
        notion: &MiniNotion,
        resume: Option<Value>,
        budget: Duration,
    ) -> Box<dyn EntityStream> {
        let mut stream = notion.source().stream(request(None, resume)).unwrap();
        stream.budget = budget;
        Box::new(stream)
    }

    #[tokio::test]
    async fn a_full_run_reads_oldest_first_so_an_item_edited_meanwhile_is_still_read() {
        let mut state = MiniState {
            page_size: 2,
            ..MiniState::default()
        };
        for n in 1..=5 {
            state.search.push(page(n, &format!("Page {n}"), n));
            state
                .blocks
                .insert(id(n), vec![block(100 + n, "paragraph", "x", false)]);
        }
        let notion = MiniNotion::start(state).await;
        // One item a page, so the run spans several search calls.
        let mut stream = stream_with_budget(&notion, None, Duration::ZERO);
        let first = stream.next_page().await.unwrap().unwrap();
        assert_eq!(
            keys(std::slice::from_ref(&first)),
            [format!("notion_page#{}", id(1))]
        );
        // Page 3, not read yet, is edited: newest first, it would move to the part of the
        // search already read, never be yielded, and be deleted as absent.
        notion.state.lock().unwrap().search[2] = page(3, "Page 3 edited", 59);
        let mut pages = vec![first];
        pages.extend(drain(&mut stream).await);
        let mut all = keys(&pages);
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 5, "{all:?}");
        let edited = pages
            .iter()
            .flat_map(|p| &p.entities)
            .find(|e| e.entity_id == id(3))
            .unwrap();
        assert_eq!(edited.title, "Page 3 edited");
        assert_eq!(
            stream.cursor(),
            Some(json!({"last_edited_time": "2026-03-01T10:59:00Z"}))
        );
    }

    #[tokio::test]
    async fn a_page_starts_no_call_once_its_time_budget_is_spent() {
        let notion = MiniNotion::start(bigger_workspace()).await;
        let mut normal = notion.source().open_stream(request(None, None)).unwrap();
        let mut expected = keys(&drain(&mut normal).await);
        expected.sort();
        let normal_calls = notion.calls().len();

        let mut stream = stream_with_budget(&notion, None, Duration::ZERO);
        let pages = drain(&mut stream).await;
        assert!(pages.iter().all(|p| p.entities.len() <= 1));
        let mut all = keys(&pages);
        all.sort();
        assert_eq!(all, expected);
        assert_eq!(
            notion.calls().len(),
            2 * normal_calls,
            "no call is made twice"
        );
        for (i, page) in pages.iter().enumerate() {
            let mut resumed =
                stream_with_budget(&notion, Some(page.checkpoint.clone()), Duration::ZERO);
            let mut seen = keys(&pages[..=i]);
            seen.extend(keys(&drain(&mut resumed).await));
            seen.sort();
            assert_eq!(seen, expected, "resumed after page {i}");
        }
    }

    #[tokio::test]
    async fn an_item_half_read_when_the_budget_runs_out_is_read_again_by_the_next_page() {
        let mut state = MiniState {
            page_size: 100,
            slow: Some((id(301), Duration::from_millis(400))),
            ..MiniState::default()
        };
        state.search = vec![page(1, "Quick", 1), page(2, "Nested", 2)];
        state
            .blocks
            .insert(id(1), vec![block(200, "paragraph", "quick", false)]);
        state.blocks.insert(
            id(2),
            vec![
                block(301, "toggle", "slow", true),
                block(302, "toggle", "after", true),
            ],
        );
        state
            .blocks
            .insert(id(301), vec![block(311, "paragraph", "inside slow", false)]);
        state.blocks.insert(
            id(302),
            vec![block(312, "paragraph", "inside after", false)],
        );
        let notion = MiniNotion::start(state).await;
        let mut stream = stream_with_budget(&notion, None, Duration::from_millis(200));
        let first = stream.next_page().await.unwrap().unwrap();
        assert_eq!(
            keys(std::slice::from_ref(&first)),
            [format!("notion_page#{}", id(1))]
        );
        assert!(
            notion.calls().iter().all(|c| !c.contains(&id(302))),
            "no call after the budget ran out: {:?}",
            notion.calls()
        );
        // The half-read page is whole in the next page, and after the first page's checkpoint.
        let second = stream.next_page().await.unwrap().unwrap();
        assert_eq!(second.entities.len(), 1);
        assert_eq!(
            second.entities[0].payload["content"],
            "slow\n  inside slow\nafter\n  inside after"
        );
        assert!(stream.next_page().await.unwrap().is_none());
        let mut resumed = stream_with_budget(&notion, Some(first.checkpoint), Duration::ZERO);
        assert_eq!(
            keys(&drain(&mut resumed).await),
            [format!("notion_page#{}", id(2))]
        );
    }

    #[tokio::test]
    async fn a_nested_block_notion_refuses_is_left_out_not_fatal() {
        let mut state = workspace();
        // An unsupported block's children: 400 validation_error; another block: 403.
        state.refuse.insert(id(101), (400, "validation_error"));
        state.blocks.insert(
            id(2),
            vec![
                block(202, "paragraph", "Body of 2", false),
                block(250, "toggle", "Private", true),
            ],
        );
        state.refuse.insert(id(250), (403, "restricted_resource"));
        state.blocks.insert(
            id(3),
            vec![
                block(203, "paragraph", "Body of 3", false),
                json!({"object": "block", "id": id(260), "type": "unsupported",
                       "has_children": true, "unsupported": {}}),
            ],
        );
        let notion = MiniNotion::start(state).await;
        let mut stream = notion.source().open_stream(request(None, None)).unwrap();
        let pages = drain(&mut stream).await;
        let entities: Vec<&Entity> = pages.iter().flat_map(|p| &p.entities).collect();
        assert_eq!(entities.len(), 7);
        let find = |n| entities.iter().find(|e| e.entity_id == id(n)).unwrap();
        assert_eq!(
            find(1).payload["content"],
            "# Goals\n- Level one\nSub page\nThe end"
        );
        assert_eq!(find(1).payload["content_truncated"], true);
        assert_eq!(find(2).payload["content"], "Body of 2\nPrivate");
        assert_eq!(find(2).payload["content_truncated"], true);
        assert_eq!(find(3).payload["content"], "Body of 3");
        assert_eq!(find(3).payload["content_truncated"], false);
        assert!(
            notion.calls().iter().all(|c| !c.contains(&id(260))),
            "an unsupported block's children are not asked for"
        );
    }

    #[tokio::test]
    async fn an_incremental_run_reads_only_what_changed_since_the_cursor() {
        let mut state = workspace();
        state.search = vec![
            page(1, "Roadmap", 30),
            {
                let mut gone = page(4, "Old draft", 29);
                gone["in_trash"] = json!(true);
                gone
            },
            row(12, 10, "Ship notion", 28),
            page(2, "Meeting notes", 26),
            page(3, "Ideas", 25),
            database(10, "Projects", 20),
            row(11, 10, "Write tests", 19),
        ];
        let notion = MiniNotion::start(state).await;
        let since = json!({"last_edited_time": "2026-03-01T10:26:00Z"});
        let mut stream = notion
            .source()
            .open_stream(request(Some(since), None))
            .unwrap();
        let pages = drain(&mut stream).await;
        assert!(stream.incremental());
        assert_eq!(
            keys(&pages),
            [
                format!("notion_page#{}", id(1)),
                format!("notion_database_row#{}", id(12)),
                format!("notion_page#{}", id(2)),
            ],
            "newer and equal edits, rows from the search itself"
        );
        let removed: Vec<String> = pages
            .iter()
            .flat_map(|p| &p.removed)
            .map(|k| k.to_string())
            .collect();
        assert_eq!(removed, [format!("notion_page#{}", id(4))]);
        assert_eq!(
            stream.cursor(),
            Some(json!({"last_edited_time": "2026-03-01T10:30:00Z"}))
        );
        let calls = notion.calls();
        assert_eq!(
            calls.iter().filter(|c| c.contains("/v1/search")).count(),
            2,
            "{calls:?}"
        );
        assert!(calls.iter().all(|c| !c.contains("/query")), "{calls:?}");

        // Nothing changed since: the cursor stays.
        let later = json!({"last_edited_time": "2026-03-01T10:45:00Z"});
        let mut quiet = notion
            .source()
            .open_stream(request(Some(later.clone()), None))
            .unwrap();
        assert!(drain(&mut quiet).await.is_empty());
        assert_eq!(quiet.cursor(), Some(later));

        // A cursor from another format means a full run.
        let odd = json!({"page": 3});
        let full = notion
            .source()
            .open_stream(request(Some(odd), None))
            .unwrap();
        assert!(!full.incremental());
    }

    #[tokio::test]
    async fn a_rate_limit_mid_run_defers_and_the_resumed_run_goes_on() {
        let mut state = bigger_workspace();
        state.glitch = Some((
            40,
            429,
            vec![("retry-after", "2".to_owned())],
            json!({"object": "error", "status": 429, "code": "rate_limited",
                   "message": "You have been rate limited. Please try again in a few minutes."})
            .to_string(),
        ));
        let notion = MiniNotion::start(state).await;
        let source = notion.source();
        let mut stream = source.open_stream(request(None, None)).unwrap();
        let mut pages = Vec::new();
        let err = loop {
            match stream.next_page().await {
                Ok(Some(page)) => pages.push(page),
                Ok(None) => panic!("the rate limit never came"),
                Err(e) => break e,
            }
        };
        assert_eq!(
            err,
            StreamError::RateLimited {
                wait: Duration::from_secs(2)
            }
        );
        assert!(!pages.is_empty(), "the limit came after a page");
        let resume = pages.last().map(|p| p.checkpoint.clone());
        let mut resumed = source.open_stream(request(None, resume)).unwrap();
        pages.extend(drain(&mut resumed).await);
        let mut all = keys(&pages);
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 47, "{all:?}");
    }

    #[tokio::test]
    async fn a_revoked_token_and_a_malformed_page_stop_the_stream() {
        let mut state = workspace();
        state.glitch = Some((
            1,
            401,
            vec![],
            json!({"object": "error", "status": 401,
            "code": "unauthorized", "message": "API token is invalid."})
            .to_string(),
        ));
        let notion = MiniNotion::start(state).await;
        let mut stream = notion.source().open_stream(request(None, None)).unwrap();
        let err = stream.next_page().await.unwrap_err();
        assert!(matches!(&err, StreamError::Rejected(_)), "{err:?}");
        assert!(!err.to_string().contains(TOKEN));

        let mut state = workspace();
        state.glitch = Some((1, 200, vec![], "<html>Gateway</html>".into()));
        let notion = MiniNotion::start(state).await;
        let mut stream = notion.source().open_stream(request(None, None)).unwrap();
        let err = stream.next_page().await.unwrap_err();
        assert_eq!(
            err,
            StreamError::Malformed("Notion answered HTTP 200 with a body that is not JSON".into())
        );

        let mut state = workspace();
        state.search[0]["id"] = json!("../../v1/users/me");
        let notion = MiniNotion::start(state).await;
        let mut stream = notion.source().open_stream(request(None, None)).unwrap();
        assert!(matches!(
            stream.next_page().await,
            Err(StreamError::Malformed(_))
        ));
        assert!(
            notion.calls().iter().all(|c| !c.contains("users")),
            "an odd id is never a path"
        );
    }

    #[tokio::test]
    async fn a_vanished_page_is_skipped_and_long_content_is_cut() {
        let mut state = workspace();
        state.blocks.remove(&id(2));
        // Page 3 holds more blocks than its content calls can read.
        let many: Vec<Value> = (0..40)
            .map(|n| block(3000 + n, "paragraph", &format!("line {n}"), false))
            .collect();
        state.blocks.insert(id(3), many);
        let notion = MiniNotion::start(state).await;
        let mut stream = notion.source().open_stream(request(None, None)).unwrap();
        let pages = drain(&mut stream).await;
        let entities: Vec<&Entity> = pages.iter().flat_map(|p| &p.entities).collect();
        assert!(
            entities.iter().all(|e| e.entity_id != id(2)),
            "page 2 vanished"
        );
        let ideas = entities.iter().find(|e| e.entity_id == id(3)).unwrap();
        assert_eq!(ideas.payload["content_truncated"], true);
        let lines = ideas.payload["content"].as_str().unwrap().lines().count();
        assert_eq!(
            lines,
            3 * CONTENT_CALLS_PER_ITEM,
            "three blocks a call here"
        );
    }

    #[test]
    fn ids_that_are_not_notion_ids_are_refused() {
        assert!(is_notion_id(&id(7)));
        assert!(is_notion_id("59833787cf944fdf8782e53db20768a5"));
        for bad in [
            "",
            "abc",
            "../x",
            "59833787-2cf9-4fdf-8782-e53db20768a5/../x",
            &format!("{}0", id(7)),
        ] {
            assert!(!is_notion_id(bad), "{bad}");
        }
    }
}

//! `linear`: teams, users, projects, issues (with state, assignee and labels) and comments
//! through Linear's GraphQL API (`POST {base}/graphql`).
//!
//! A run walks the kinds in a fixed order (teams, users, projects, issues, comments), one
//! GraphQL page (`first`/`after`, `pageInfo { hasNextPage endCursor }`) per `next_page`; the
//! checkpoint names the kind, the page cursor and the run's cursor bookkeeping. After a completed
//! run the next one asks projects, issues and comments only for what changed
//! (`filter: { updatedAt: { gt: $since } }`, archived ones included so they can be reported
//! removed); teams and users are few and always listed whole, and what was deleted outright or
//! archived among them is dropped by the next full sync.
//!
//! Linear reports failures as GraphQL `errors` (often with HTTP 400): `extensions.code`
//! `RATELIMITED` is a rate limit and `AUTHENTICATION_ERROR` a rejected key, never data;
//! `FORBIDDEN` is a rejected key only when nothing else arrived, otherwise a partial answer.

use crate::base_url::BaseUrl;
use crate::source::Source;
use crate::upstream::{check_exchange, fetch, retry_after, Answer, PAGE_BODY_LIMIT};
use async_trait::async_trait;
use chrono::{DateTime, Duration as TimeDelta, SecondsFormat, Utc};
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
use std::time::Duration;

const NAME: &str = "Linear";
/// Nodes per page: Linear's default, and small enough that an issue page with its labels stays
/// far below the 10,000-point complexity cap of a single query.
const PAGE_SIZE: u32 = 50;
/// A rate limit that says nothing about when it ends: Linear's buckets refill within the hour,
/// a minute is a fair first wait.
const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// A reset already due still means "not this instant": the worker waits at least this long.
const MIN_RATE_LIMIT_WAIT: Duration = Duration::from_secs(1);
/// How far the next run's `updatedAt` filter reaches back before this run's start: an item
/// changed while the run was listing (its page already passed) is caught next time, and a
/// small clock difference between us and Linear loses nothing. Re-listed unchanged items are
/// only counted as kept.
const CURSOR_OVERLAP: TimeDelta = TimeDelta::minutes(5);
/// A `viewer` answer is tiny.
const CHECK_BODY_LIMIT: usize = 64 * 1024;
const REJECTED: &str = "invalid or revoked API key or token";

/// Linear (linear.app).
#[derive(Debug, Clone)]
pub struct LinearSource {
    spec: SourceSpec,
    client: reqwest::Client,
    base_url: BaseUrl,
}

impl LinearSource {
    pub const SHORT_NAME: &'static str = "linear";
    pub const DEFAULT_BASE_URL: &'static str = "https://api.linear.app";

    pub fn new(client: reqwest::Client, base_url: BaseUrl) -> Self {
        Self {
            spec: spec(),
            client,
            base_url,
        }
    }

    fn endpoint(&self) -> String {
        self.base_url.endpoint("graphql")
    }
}

fn spec() -> SourceSpec {
    SourceSpec {
        short_name: LinearSource::SHORT_NAME,
        name: "Linear",
        class_name: "LinearSource",
        description: "Teams, users, projects, issues and comments of a Linear workspace.",
        auth_methods: vec![
            AuthMethod::Direct,
            AuthMethod::OauthToken,
            AuthMethod::OauthBrowser,
            AuthMethod::OauthByoc,
            AuthMethod::AuthProvider,
        ],
        requires_byoc: false,
        auth_fields: vec![FieldSpec::new("api_key", "API Key", FieldType::String)
            .describe("A personal API key with read access (Linear: Settings, Security & access).")
            .required()
            .secret()],
        config_fields: vec![],
        supported_auth_providers: vec!["composio", "pipedream"],
        entity_types: Kind::ORDER.iter().map(|k| k.entity_type()).collect(),
        supports_continuous: false,
        supports_incremental: true,
        federated_search: false,
        labels: vec!["Project Management"],
        oauth: Some(OAuthSettings {
            authorize_url: "https://linear.app/oauth/authorize",
            token_url: "https://api.linear.app/oauth/token",
            scopes: vec!["read"],
            user_scopes: vec![],
            scope_separator: ",",
            pkce: true,
            client_auth: ClientAuth::RequestBody,
            access_token_pointer: "/access_token",
            refresh_token_pointer: Some("/refresh_token"),
            extra_authorize_params: vec![],
        }),
    }
}

/// The `Authorization` value: a personal API key goes as it is, an OAuth token as a bearer
/// token (Linear tells them apart by the scheme). The secret is exposed only here.
fn authorization(auth: &AuthenticationRequest) -> Result<HeaderValue, String> {
    let value = match auth {
        AuthenticationRequest::Direct(credentials) => credentials
            .string("api_key")
            .map(|key| key.trim().to_owned())
            .ok_or("api_key is required")?,
        AuthenticationRequest::OauthToken(token) => {
            format!("Bearer {}", token.access_token.expose_secret().trim())
        }
        other => {
            return Err(format!(
                "Linear does not take {} authentication here",
                other.method().as_str()
            ))
        }
    };
    let mut value = HeaderValue::try_from(value)
        .map_err(|_| "the key contains characters a key cannot have".to_owned())?;
    value.set_sensitive(true);
    Ok(value)
}

/// The kinds of a run, in the order a run lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Teams,
    Users,
    Projects,
    Issues,
    Comments,
}

impl Kind {
    const ORDER: [Kind; 5] = [
        Kind::Teams,
        Kind::Users,
        Kind::Projects,
        Kind::Issues,
        Kind::Comments,
    ];

    fn next(self) -> Option<Kind> {
        let at = Self::ORDER.iter().position(|k| *k == self)?;
        Self::ORDER.get(at + 1).copied()
    }

    /// The root field of the kind's query.
    fn field(self) -> &'static str {
        match self {
            Kind::Teams => "teams",
            Kind::Users => "users",
            Kind::Projects => "projects",
            Kind::Issues => "issues",
            Kind::Comments => "comments",
        }
    }

    fn entity_type(self) -> &'static str {
        match self {
            Kind::Teams => "linear_team",
            Kind::Users => "linear_user",
            Kind::Projects => "linear_project",
            Kind::Issues => "linear_issue",
            Kind::Comments => "linear_comment",
        }
    }

    /// Whether an incremental run asks this kind only for what changed.
    fn filtered_by_update(self) -> bool {
        matches!(self, Kind::Projects | Kind::Issues | Kind::Comments)
    }

    /// Only stable fields are asked for: nothing like `lastSeen`, `sortOrder` or `progress`
    /// that changes without the item changing, so an unchanged item hashes the same every run.
    fn query(self) -> &'static str {
        match self {
            Kind::Teams => {
                "query Teams($first: Int!, $after: String) { \
                 teams(first: $first, after: $after) { \
                 nodes { id key name description private createdAt updatedAt archivedAt } \
                 pageInfo { hasNextPage endCursor } } }"
            }
            Kind::Users => {
                "query Users($first: Int!, $after: String) { \
                 users(first: $first, after: $after) { \
                 nodes { id name displayName email active admin url createdAt updatedAt archivedAt } \
                 pageInfo { hasNextPage endCursor } } }"
            }
            Kind::Projects => {
                "query Projects($first: Int!, $after: String, $filter: ProjectFilter, $includeArchived: Boolean) { \
                 projects(first: $first, after: $after, filter: $filter, includeArchived: $includeArchived) { \
                 nodes { id name description content url status { name type } lead { id name } \
                 startDate targetDate createdAt updatedAt archivedAt completedAt canceledAt \
                 teams { nodes { id key } } } \
                 pageInfo { hasNextPage endCursor } } }"
            }
            Kind::Issues => {
                "query Issues($first: Int!, $after: String, $filter: IssueFilter, $includeArchived: Boolean) { \
                 issues(first: $first, after: $after, filter: $filter, includeArchived: $includeArchived) { \
                 nodes { id identifier title description url priority priorityLabel estimate dueDate \
                 createdAt updatedAt archivedAt completedAt canceledAt \
                 state { id name type } assignee { id name email } creator { id name } \
                 team { id key name } project { id name } labels(first: 50) { nodes { id name } } } \
                 pageInfo { hasNextPage endCursor } } }"
            }
            Kind::Comments => {
                "query Comments($first: Int!, $after: String, $filter: CommentFilter, $includeArchived: Boolean) { \
                 comments(first: $first, after: $after, filter: $filter, includeArchived: $includeArchived) { \
                 nodes { id body url createdAt updatedAt editedAt archivedAt user { id name } \
                 issue { id identifier } } \
                 pageInfo { hasNextPage endCursor } } }"
            }
        }
    }
}

const VIEWER_QUERY: &str = "query Viewer { viewer { id name } }";

/// Why an answer is not data: what both the credential check and a stream make of it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    Rejected(String),
    RateLimited(Duration),
    Unavailable(String),
    Malformed(String),
}

impl Refusal {
    fn into_stream(self) -> StreamError {
        match self {
            Refusal::Rejected(m) => StreamError::Rejected(m),
            Refusal::RateLimited(wait) => StreamError::RateLimited { wait },
            Refusal::Unavailable(m) => StreamError::Upstream(m),
            Refusal::Malformed(m) => StreamError::Malformed(m),
        }
    }

    fn into_check(self) -> CheckError {
        match self {
            Refusal::Rejected(m) => CheckError::Rejected(m),
            Refusal::RateLimited(wait) => CheckError::RateLimited {
                retry_after: Some(wait),
            },
            Refusal::Unavailable(m) | Refusal::Malformed(m) => CheckError::Unavailable(m),
        }
    }
}

/// The codes of a GraphQL answer's `errors`, upper-cased: `extensions.code`, or Linear's older
/// `extensions.type` (`"authentication error"` reads as `AUTHENTICATION_ERROR`).
fn error_codes(body: &Value) -> Vec<String> {
    let Some(errors) = body.get("errors").and_then(Value::as_array) else {
        return Vec::new();
    };
    errors
        .iter()
        .map(|error| {
            let extensions = error.get("extensions");
            let code = extensions
                .and_then(|e| e.get("code"))
                .and_then(Value::as_str)
                .or_else(|| {
                    extensions
                        .and_then(|e| e.get("type"))
                        .and_then(Value::as_str)
                })
                .unwrap_or("UNKNOWN");
            code.trim().to_ascii_uppercase().replace([' ', '-'], "_")
        })
        .collect()
}

/// What an answer means: its JSON body when it carries `data`, or why not. Error codes win over
/// the HTTP status, since Linear answers most errors with HTTP 400. Messages quote no part of
/// the answer but its error codes.
fn classify(answer: &Answer, now: DateTime<Utc>) -> Result<Value, Refusal> {
    let status = answer.status;
    let body: Option<Value> = serde_json::from_slice(&answer.body).ok();
    let codes = body.as_ref().map(error_codes).unwrap_or_default();
    let has = |code: &str| codes.iter().any(|c| c == code);

    if has("RATELIMITED") || status == StatusCode::TOO_MANY_REQUESTS {
        return Err(Refusal::RateLimited(rate_limit_wait(&answer.headers, now)));
    }
    if has("AUTHENTICATION_ERROR") || status == StatusCode::UNAUTHORIZED {
        return Err(Refusal::Rejected(REJECTED.into()));
    }
    // A refused field beside data that did arrive (a nested field the key may not read) is a
    // partial answer, not a refused key: only an answer with nothing in it is a rejection.
    let forbidden = has("FORBIDDEN") || status == StatusCode::FORBIDDEN;
    let carries_data = body.as_ref().is_some_and(carries_data);
    if forbidden && !carries_data {
        return Err(Refusal::Rejected(
            "the key or token may not read this Linear workspace".into(),
        ));
    }
    // A refused field beside data is answered whatever the status: Linear sends most GraphQL
    // errors, this partial answer included, with HTTP 400.
    let partial = forbidden && carries_data;
    if status.is_server_error() && !partial {
        return Err(Refusal::Unavailable(format!(
            "{NAME} is unavailable (HTTP {})",
            status.as_u16()
        )));
    }
    let Some(body) = body else {
        return Err(Refusal::Malformed(format!(
            "{NAME} answered HTTP {} with a body that is not JSON",
            status.as_u16()
        )));
    };
    let has_data = body.get("data").is_some_and(|d| !d.is_null());
    // A FORBIDDEN answer that carries data (HTTP 200, 400 or 403) is the partial answer
    // above, not a failed query.
    let answered = status.is_success() || partial;
    if !answered || !has_data {
        let codes = if codes.is_empty() {
            String::new()
        } else {
            format!(" ({})", codes.join(", "))
        };
        return Err(Refusal::Unavailable(format!(
            "{NAME} answered HTTP {} without data{codes}",
            status.as_u16()
        )));
    }
    if !codes.is_empty() || !status.is_success() {
        // Partial data: a nested field failed (or may not be read). What arrived is used; the
        // codes say what not. The errors' messages are not logged: they may quote the data.
        tracing::warn!(
            status = status.as_u16(),
            codes = ?codes,
            "{NAME} answered data with GraphQL errors"
        );
    }
    Ok(body)
}

/// Whether an answer's `data` holds anything: an object with at least one field that is not
/// null (a refused top-level field comes back as null).
fn carries_data(body: &Value) -> bool {
    body.get("data")
        .and_then(Value::as_object)
        .is_some_and(|data| data.values().any(|v| !v.is_null()))
}

/// Linear's rules: `Retry-After` first; then the reset of the budget that is spent (requests,
/// complexity or an endpoint's own), in UTC epoch milliseconds; otherwise a minute.
fn rate_limit_wait(headers: &HeaderMap, now: DateTime<Utc>) -> Duration {
    const BUDGETS: [(&str, &str); 3] = [
        (
            "x-ratelimit-requests-remaining",
            "x-ratelimit-requests-reset",
        ),
        (
            "x-ratelimit-complexity-remaining",
            "x-ratelimit-complexity-reset",
        ),
        (
            "x-ratelimit-endpoint-requests-remaining",
            "x-ratelimit-endpoint-requests-reset",
        ),
    ];
    let number =
        |name: &str| -> Option<i64> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
    let spent = BUDGETS
        .iter()
        .filter(|(remaining, _)| number(remaining) == Some(0))
        .filter_map(|(_, reset)| number(reset).map(|at| until(at, now)))
        .max();
    // A limited answer naming no spent budget: the latest reset it gives is safe.
    let any = || {
        BUDGETS
            .iter()
            .filter_map(|(_, reset)| number(reset).map(|at| until(at, now)))
            .max()
    };
    retry_after(headers, now)
        .or(spent)
        .or_else(any)
        .unwrap_or(DEFAULT_RATE_LIMIT_WAIT)
        .max(MIN_RATE_LIMIT_WAIT)
}

/// The wait until a reset instant: epoch milliseconds as Linear sends them, or epoch seconds
/// (a value too small to be milliseconds of this century), rounded up to whole seconds.
fn until(epoch: i64, now: DateTime<Utc>) -> Duration {
    let at_ms = if epoch < 100_000_000_000 {
        epoch.saturating_mul(1000)
    } else {
        epoch
    };
    let ms = at_ms.saturating_sub(now.timestamp_millis()).max(0);
    Duration::from_secs(u64::try_from((ms + 999) / 1000).unwrap_or(0))
}

/// One GraphQL page of a kind.
#[derive(Debug)]
struct Page {
    nodes: Vec<Value>,
    /// `endCursor` when there is a next page.
    next: Option<String>,
}

fn read_page(kind: Kind, body: &Value, sent_after: Option<&str>) -> Result<Page, StreamError> {
    let field = kind.field();
    let malformed = |what: &str| StreamError::Malformed(format!("{NAME}'s {field} page {what}"));
    let connection = body
        .pointer(&format!("/data/{field}"))
        .filter(|c| c.is_object())
        .ok_or_else(|| malformed("is missing"))?;
    let nodes = connection
        .get("nodes")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("has no list of nodes"))?;
    let has_next = connection
        .pointer("/pageInfo/hasNextPage")
        .and_then(Value::as_bool)
        .ok_or_else(|| malformed("has no pageInfo.hasNextPage"))?;
    let next = if has_next {
        let cursor = connection
            .pointer("/pageInfo/endCursor")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| malformed("says there is a next page but gives no endCursor"))?;
        // The same cursor again would list the same page forever.
        if Some(cursor) == sent_after {
            return Err(malformed("did not advance past its cursor"));
        }
        Some(cursor.to_owned())
    } else {
        None
    };
    Ok(Page {
        nodes: nodes.clone(),
        next,
    })
}

fn text(node: &Value, pointer: &str) -> Option<String> {
    node.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The value at `pointer`, `null` when absent.
fn at(node: &Value, pointer: &str) -> Value {
    node.pointer(pointer).cloned().unwrap_or(Value::Null)
}

fn time(node: &Value, pointer: &str) -> Option<DateTime<Utc>> {
    let s = node.pointer(pointer)?.as_str()?;
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `{id, name}` of a referenced user, `null` when there is none.
fn person(node: &Value, pointer: &str) -> Value {
    match node.pointer(pointer) {
        Some(p) if p.is_object() => json!({"id": at(p, "/id"), "name": at(p, "/name")}),
        _ => Value::Null,
    }
}

/// The names at `/<list>/nodes/*/<field>`, sorted: Linear does not promise an order.
fn sorted_names(node: &Value, list: &str, field: &str) -> Vec<String> {
    let mut names: Vec<String> = node
        .pointer(&format!("/{list}/nodes"))
        .and_then(Value::as_array)
        .map(|nodes| {
            nodes
                .iter()
                .filter_map(|n| n.get(field)?.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A node as an entity. Ids are Linear's UUIDs, stable for the item's life.
fn to_entity(kind: Kind, node: &Value) -> Result<Entity, String> {
    let id = text(node, "/id")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| format!("a node of {NAME}'s {} page has no id", kind.field()))?;
    let updated_at = time(node, "/updatedAt").ok_or_else(|| {
        format!(
            "a node of {NAME}'s {} page has no readable updatedAt",
            kind.field()
        )
    })?;
    let created_at = at(node, "/createdAt");
    let (title, payload) = match kind {
        Kind::Teams => {
            let name = text(node, "/name").unwrap_or_default();
            (
                name.clone(),
                json!({
                    "id": id,
                    "key": at(node, "/key"),
                    "name": name,
                    "description": at(node, "/description"),
                    "private": at(node, "/private"),
                    "created_at": created_at,
                }),
            )
        }
        Kind::Users => {
            let name = text(node, "/name").unwrap_or_default();
            (
                name.clone(),
                json!({
                    "id": id,
                    "name": name,
                    "display_name": at(node, "/displayName"),
                    "email": at(node, "/email"),
                    "active": at(node, "/active"),
                    "admin": at(node, "/admin"),
                    "url": at(node, "/url"),
                    "created_at": created_at,
                }),
            )
        }
        Kind::Projects => {
            let name = text(node, "/name").unwrap_or_default();
            (
                name.clone(),
                json!({
                    "id": id,
                    "name": name,
                    "description": at(node, "/description"),
                    "content": at(node, "/content"),
                    "url": at(node, "/url"),
                    "status": at(node, "/status/name"),
                    "status_type": at(node, "/status/type"),
                    "lead": person(node, "/lead"),
                    "teams": sorted_names(node, "teams", "key"),
                    "start_date": at(node, "/startDate"),
                    "target_date": at(node, "/targetDate"),
                    "created_at": created_at,
                    "completed_at": at(node, "/completedAt"),
                    "canceled_at": at(node, "/canceledAt"),
                }),
            )
        }
        Kind::Issues => {
            let identifier = text(node, "/identifier").unwrap_or_default();
            let title = text(node, "/title").unwrap_or_default();
            (
                format!("{identifier} {title}").trim().to_owned(),
                json!({
                    "id": id,
                    "identifier": identifier,
                    "title": title,
                    "description": at(node, "/description"),
                    "url": at(node, "/url"),
                    "priority": at(node, "/priority"),
                    "priority_label": at(node, "/priorityLabel"),
                    "estimate": at(node, "/estimate"),
                    "due_date": at(node, "/dueDate"),
                    "state": at(node, "/state/name"),
                    "state_type": at(node, "/state/type"),
                    "assignee": match node.pointer("/assignee") {
                        Some(a) if a.is_object() => json!({
                            "id": at(a, "/id"), "name": at(a, "/name"), "email": at(a, "/email"),
                        }),
                        _ => Value::Null,
                    },
                    "creator": person(node, "/creator"),
                    "team": match node.pointer("/team") {
                        Some(t) if t.is_object() => json!({
                            "id": at(t, "/id"), "key": at(t, "/key"), "name": at(t, "/name"),
                        }),
                        _ => Value::Null,
                    },
                    "project": person(node, "/project"),
                    "labels": sorted_names(node, "labels", "name"),
                    "created_at": created_at,
                    "completed_at": at(node, "/completedAt"),
                    "canceled_at": at(node, "/canceledAt"),
                }),
            )
        }
        Kind::Comments => {
            let author = text(node, "/user/name");
            let issue = text(node, "/issue/identifier");
            let title = match (&author, &issue) {
                (Some(a), Some(i)) => format!("Comment by {a} on {i}"),
                (None, Some(i)) => format!("Comment on {i}"),
                (Some(a), None) => format!("Comment by {a}"),
                (None, None) => "Comment".to_owned(),
            };
            (
                title,
                json!({
                    "id": id,
                    "body": at(node, "/body"),
                    "url": at(node, "/url"),
                    "author": person(node, "/user"),
                    // Not the issue's title: renaming the issue does not touch the comment's
                    // updatedAt, so an incremental run would keep a stale copy.
                    "issue": match node.pointer("/issue") {
                        Some(i) if i.is_object() => json!({
                            "id": at(i, "/id"), "identifier": at(i, "/identifier"),
                        }),
                        _ => Value::Null,
                    },
                    "created_at": created_at,
                    "edited_at": at(node, "/editedAt"),
                }),
            )
        }
    };
    Ok(Entity {
        entity_type: kind.entity_type().to_owned(),
        entity_id: id,
        title,
        updated_at: Some(updated_at),
        payload,
    })
}

/// What the last completed run leaves for the next one.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cursor {
    updated_after: DateTime<Utc>,
}

/// Where a run is, and what it needs for its final cursor: the checkpoint after each page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Progress {
    /// The kind the next page lists; `None` once the run has listed everything.
    next: Option<Kind>,
    /// The page cursor within `next`.
    after: Option<String>,
    /// The filter of an incremental run (the last run's cursor); `None` for a full run.
    updated_after: Option<DateTime<Utc>>,
    /// When the run began (the first delivery's clock, kept across resumptions).
    started_at: DateTime<Utc>,
    /// The newest `updatedAt` seen among the filtered kinds.
    newest: Option<DateTime<Utc>>,
}

impl Progress {
    fn start(updated_after: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Self {
        Self {
            next: Some(Kind::ORDER[0]),
            after: None,
            updated_after,
            started_at: now,
            newest: None,
        }
    }

    /// The next run's filter: what this run saw as changed reaches up to the newest update
    /// (or its own filter when nothing changed), but never past the run's start, less an
    /// overlap: a change made while the run was listing must not be skipped.
    fn cursor(&self) -> Cursor {
        let seen = self.newest.max(self.updated_after);
        let start = self.started_at - CURSOR_OVERLAP;
        Cursor {
            updated_after: seen.map_or(start, |seen| seen.min(start)),
        }
    }
}

struct LinearStream {
    client: reqwest::Client,
    endpoint: String,
    authorization: HeaderValue,
    progress: Progress,
}

impl LinearStream {
    fn variables(&self, kind: Kind) -> Value {
        let mut variables = json!({"first": PAGE_SIZE, "after": self.progress.after});
        if kind.filtered_by_update() {
            let since = self.progress.updated_after;
            // An incremental run asks for archived items too: they are reported removed.
            variables["includeArchived"] = json!(since.is_some());
            if let Some(since) = since {
                variables["filter"] = json!({"updatedAt": {
                    "gt": since.to_rfc3339_opts(SecondsFormat::Millis, true)
                }});
            }
        }
        variables
    }
}

#[async_trait]
impl EntityStream for LinearStream {
    async fn next_page(&mut self) -> Result<Option<EntityPage>, StreamError> {
        let Some(kind) = self.progress.next else {
            return Ok(None);
        };
        let request = self
            .client
            .post(&self.endpoint)
            .header(AUTHORIZATION, self.authorization.clone())
            .json(&json!({"query": kind.query(), "variables": self.variables(kind)}));
        let answer = fetch(NAME, request, PAGE_BODY_LIMIT).await?;
        let body = classify(&answer, Utc::now()).map_err(|refusal| {
            tracing::info!(status = answer.status.as_u16(), kind = kind.field(), outcome = ?refusal, "{NAME} refused a page");
            refusal.into_stream()
        })?;
        let page = read_page(kind, &body, self.progress.after.as_deref())?;

        let incremental = self.progress.updated_after.is_some();
        let (mut entities, mut removed) = (Vec::new(), Vec::new());
        for node in &page.nodes {
            let entity = to_entity(kind, node).map_err(StreamError::Malformed)?;
            if kind.filtered_by_update() {
                self.progress.newest = self.progress.newest.max(entity.updated_at);
            }
            let archived = node.get("archivedAt").is_some_and(|a| !a.is_null());
            if archived {
                // Only an incremental run asks for archived items; a full one drops them by
                // not yielding them.
                if incremental {
                    removed.push(
                        EntityKey::new(&entity.entity_type, &entity.entity_id)
                            .map_err(StreamError::Malformed)?,
                    );
                }
                continue;
            }
            entities.push(entity);
        }
        match page.next {
            Some(cursor) => self.progress.after = Some(cursor),
            None => {
                self.progress.next = kind.next();
                self.progress.after = None;
            }
        }
        Ok(Some(EntityPage {
            entities,
            removed,
            checkpoint: serde_json::to_value(&self.progress).expect("progress serializes"),
        }))
    }

    fn incremental(&self) -> bool {
        self.progress.updated_after.is_some()
    }

    fn cursor(&self) -> Option<Value> {
        if self.progress.next.is_some() {
            return None;
        }
        Some(serde_json::to_value(self.progress.cursor()).expect("a cursor serializes"))
    }
}

#[async_trait]
impl Source for LinearSource {
    fn spec(&self) -> &SourceSpec {
        &self.spec
    }

    /// `viewer { id name }`: the cheapest query that tells whether a key is valid.
    #[tracing::instrument(name = "linear_check_credentials", skip_all, fields(method = auth.method().as_str()))]
    async fn check_credentials(
        &self,
        auth: &AuthenticationRequest,
        _config: &Map<String, Value>,
    ) -> Result<(), CheckError> {
        let authorization = authorization(auth).map_err(CheckError::Rejected)?;
        let request = self
            .client
            .post(self.endpoint())
            .header(AUTHORIZATION, authorization)
            .json(&json!({"query": VIEWER_QUERY, "variables": {}}));
        check_exchange(NAME, request, CHECK_BODY_LIMIT, |answer| {
            let body = classify(answer, Utc::now()).map_err(Refusal::into_check)?;
            let viewer = body
                .pointer("/data/viewer/id")
                .and_then(Value::as_str)
                .is_some_and(|id| !id.is_empty());
            if viewer {
                Ok(())
            } else {
                Err(CheckError::Unavailable(format!(
                    "{NAME} answered with something other than a user"
                )))
            }
        })
        .await
    }

    fn open_stream(&self, request: StreamRequest) -> Result<Box<dyn EntityStream>, StreamError> {
        let authorization = authorization(&request.auth).map_err(StreamError::Rejected)?;
        let progress = match request.resume {
            Some(checkpoint) => serde_json::from_value(checkpoint).map_err(|_| {
                StreamError::Malformed(format!("the {NAME} checkpoint is unreadable"))
            })?,
            None => {
                // A cursor this source cannot read (another version's) means a full run.
                let since = request
                    .since
                    .and_then(|v| serde_json::from_value::<Cursor>(v).ok())
                    .map(|c| c.updated_after);
                Progress::start(since, Utc::now())
            }
        };
        Ok(Box::new(LinearStream {
            client: self.client.clone(),
            endpoint: self.endpoint(),
            authorization,
            progress,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{
        closed_port_url, header_map as headers, test_now as now, FakeUpstream, Reply, Seen,
    };
    use crate::upstream::http_client;
    use domain::auth::{Credentials, OauthToken};
    use secrecy::SecretString;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    const KEY: &str = "lin_api_unitTest0secret0never0shown";

    fn api_key(key: &str) -> AuthenticationRequest {
        let fields = json!({ "api_key": key });
        AuthenticationRequest::Direct(Credentials::new(fields.as_object().unwrap().clone()))
    }

    fn oauth(token: &str) -> AuthenticationRequest {
        AuthenticationRequest::OauthToken(OauthToken {
            access_token: SecretString::from(token.to_owned()),
            refresh_token: None,
            expires_at: None,
        })
    }

    fn answer(status: u16, pairs: &[(&'static str, &str)], body: &str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: headers(pairs),
            body: body.as_bytes().to_vec(),
        }
    }

    fn graphql_error(code: &str) -> String {
        json!({"errors": [{"message": "refused", "extensions": {"code": code}}]}).to_string()
    }

    fn ms_from_now(ms: i64) -> String {
        (now().timestamp_millis() + ms).to_string()
    }

    // --- the catalog entry ---

    #[test]
    fn the_catalog_entry_reads_as_documented() {
        let spec = spec();
        assert_eq!(
            (spec.short_name, spec.name, spec.class_name),
            ("linear", "Linear", "LinearSource")
        );
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
        assert!(field.name == "api_key" && field.required && field.is_secret);
        assert!(spec.config_fields.iter().all(|f| !f.required));
        assert_eq!(
            spec.entity_types,
            [
                "linear_team",
                "linear_user",
                "linear_project",
                "linear_issue",
                "linear_comment"
            ]
        );
        assert!(spec.supports_incremental && !spec.federated_search);
        let oauth = spec.oauth.unwrap();
        assert_eq!(oauth.authorize_url, "https://linear.app/oauth/authorize");
        assert_eq!(oauth.token_url, "https://api.linear.app/oauth/token");
        assert_eq!((oauth.scopes, oauth.scope_separator), (vec!["read"], ","));
        assert!(oauth.pkce && oauth.client_auth == ClientAuth::RequestBody);
        assert_eq!(oauth.access_token_pointer, "/access_token");
        assert_eq!(oauth.refresh_token_pointer, Some("/refresh_token"));
    }

    #[test]
    fn api_keys_go_as_they_are_and_oauth_tokens_as_bearer_tokens() {
        let key = authorization(&api_key(&format!(" {KEY} "))).unwrap();
        assert_eq!(key.to_str().unwrap(), KEY);
        assert!(key.is_sensitive());
        let token = authorization(&oauth("lin_oauth_abc")).unwrap();
        assert_eq!(token.to_str().unwrap(), "Bearer lin_oauth_abc");
        assert!(authorization(&AuthenticationRequest::OauthBrowser).is_err());
        let broken = authorization(&api_key("line\nbreak-secret")).unwrap_err();
        assert!(!broken.contains("break-secret"), "{broken}");
    }

    // --- what an answer means ---

    #[test]
    fn data_is_data_even_beside_a_partial_error() {
        let ok = answer(200, &[], r#"{"data": {"viewer": {"id": "u1"}}}"#);
        assert!(classify(&ok, now()).is_ok());
        let partial = json!({"data": {"issues": {"nodes": []}}, "errors": [{"message": "x", "extensions": {"code": "INTERNAL_ERROR"}}]});
        assert!(classify(&answer(200, &[], &partial.to_string()), now()).is_ok());
    }

    #[test]
    fn ratelimited_errors_wait_for_the_spent_budget() {
        // Linear answers a rate limit with HTTP 400 and resets in epoch milliseconds.
        let requests_spent = answer(
            400,
            &[
                ("x-ratelimit-requests-remaining", "0"),
                ("x-ratelimit-requests-reset", &ms_from_now(30_500)),
                ("x-ratelimit-complexity-remaining", "9000"),
                ("x-ratelimit-complexity-reset", &ms_from_now(3_600_000)),
            ],
            &graphql_error("RATELIMITED"),
        );
        assert_eq!(
            classify(&requests_spent, now()),
            Err(Refusal::RateLimited(Duration::from_secs(31)))
        );
        let complexity_spent = answer(
            400,
            &[
                ("x-ratelimit-requests-remaining", "100"),
                ("x-ratelimit-requests-reset", &ms_from_now(3_600_000)),
                ("x-ratelimit-complexity-remaining", "0"),
                ("x-ratelimit-complexity-reset", &ms_from_now(12_000)),
            ],
            &graphql_error("RATELIMITED"),
        );
        assert_eq!(
            classify(&complexity_spent, now()),
            Err(Refusal::RateLimited(Duration::from_secs(12)))
        );
        let retry_after = answer(429, &[("retry-after", "7")], "Too Many Requests");
        assert_eq!(
            classify(&retry_after, now()),
            Err(Refusal::RateLimited(Duration::from_secs(7)))
        );
        let older_shape = json!({"errors": [{"message": "Rate limit exceeded", "extensions": {"type": "ratelimited"}}]});
        assert_eq!(
            classify(&answer(400, &[], &older_shape.to_string()), now()),
            Err(Refusal::RateLimited(DEFAULT_RATE_LIMIT_WAIT))
        );
        let already_due = answer(
            400,
            &[
                ("x-ratelimit-requests-remaining", "0"),
                ("x-ratelimit-requests-reset", &ms_from_now(-5_000)),
            ],
            &graphql_error("RATELIMITED"),
        );
        assert_eq!(
            classify(&already_due, now()),
            Err(Refusal::RateLimited(MIN_RATE_LIMIT_WAIT))
        );
    }

    #[test]
    fn resets_read_as_milliseconds_or_seconds() {
        let in_ms = now().timestamp_millis() + 2_001;
        assert_eq!(until(in_ms, now()), Duration::from_secs(3));
        assert_eq!(
            until(now().timestamp() + 90, now()),
            Duration::from_secs(90)
        );
        assert_eq!(until(0, now()), Duration::ZERO);
    }

    #[test]
    fn authentication_errors_reject_the_credentials() {
        let rejected = Err(Refusal::Rejected(REJECTED.into()));
        assert_eq!(
            classify(
                &answer(400, &[], &graphql_error("AUTHENTICATION_ERROR")),
                now()
            ),
            rejected
        );
        let older_shape = json!({"errors": [{"message": "Authentication required, not authenticated", "extensions": {"type": "authentication error"}}]});
        assert_eq!(
            classify(&answer(400, &[], &older_shape.to_string()), now()),
            rejected
        );
        assert_eq!(classify(&answer(401, &[], "Unauthorized"), now()), rejected);
        assert!(matches!(
            classify(&answer(400, &[], &graphql_error("FORBIDDEN")), now()),
            Err(Refusal::Rejected(_))
        ));
    }

    #[test]
    fn forbidden_rejects_only_an_answer_without_data() {
        let forbidden = Err(Refusal::Rejected(
            "the key or token may not read this Linear workspace".into(),
        ));
        let refused = |data: Value| {
            json!({"data": data, "errors": [{"message": "Forbidden: secret project", "extensions": {"code": "FORBIDDEN"}}]})
                .to_string()
        };
        // Nothing arrived: the key may not read what was asked.
        for (status, body) in [
            (200, refused(Value::Null)),
            (200, refused(json!({"issues": null}))),
            (400, graphql_error("FORBIDDEN")),
            (403, "Forbidden".to_owned()),
            (403, refused(Value::Null)),
        ] {
            assert_eq!(
                classify(&answer(status, &[], &body), now()),
                forbidden,
                "{status} {body}"
            );
        }

        // One nested field was refused: the page is kept, the connection is not sent to
        // re-authenticate.
        let page = json!({"issues": {"nodes": [{"id": "i1", "project": null}], "pageInfo": {"hasNextPage": false}}});
        // Linear sends most GraphQL errors with HTTP 400, this one too.
        for status in [200, 400, 403] {
            let partial = refused(page.clone());
            let kept = classify(&answer(status, &[], &partial), now()).unwrap();
            assert_eq!(kept["data"], page, "{status}");
        }
        let viewer = refused(json!({"viewer": {"id": "u1", "organization": null}}));
        assert!(classify(&answer(200, &[], &viewer), now()).is_ok());
        assert!(classify(&answer(400, &[], &viewer), now()).is_ok());

        // Data beside another error (not FORBIDDEN) on a 400 is still a failed query.
        let invalid = json!({"data": page, "errors": [{"message": "x", "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}]});
        assert!(matches!(
            classify(&answer(400, &[], &invalid.to_string()), now()),
            Err(Refusal::Unavailable(m)) if m.contains("HTTP 400 without data")
        ));
    }

    #[test]
    fn authentication_errors_reject_even_beside_data() {
        let rejected = Err(Refusal::Rejected(REJECTED.into()));
        let page = json!({"issues": {"nodes": [], "pageInfo": {"hasNextPage": false}}});
        let with_data = json!({"data": page, "errors": [{"message": "x", "extensions": {"code": "AUTHENTICATION_ERROR"}}]});
        assert_eq!(
            classify(&answer(200, &[], &with_data.to_string()), now()),
            rejected
        );
        let unauthorized = json!({"data": page});
        assert_eq!(
            classify(&answer(401, &[], &unauthorized.to_string()), now()),
            rejected
        );
    }

    #[test]
    fn failures_and_garbage_are_not_data() {
        assert_eq!(
            classify(&answer(503, &[], "<html>down</html>"), now()),
            Err(Refusal::Unavailable(
                "Linear is unavailable (HTTP 503)".into()
            ))
        );
        assert_eq!(
            classify(
                &answer(200, &[], r#"{"data": {"issues": {"nodes": ["#),
                now()
            ),
            Err(Refusal::Malformed(
                "Linear answered HTTP 200 with a body that is not JSON".into()
            ))
        );
        let invalid = classify(
            &answer(400, &[], &graphql_error("GRAPHQL_VALIDATION_FAILED")),
            now(),
        );
        assert_eq!(
            invalid,
            Err(Refusal::Unavailable(
                "Linear answered HTTP 400 without data (GRAPHQL_VALIDATION_FAILED)".into()
            ))
        );
        assert!(matches!(
            classify(&answer(200, &[], r#"{"data": null}"#), now()),
            Err(Refusal::Unavailable(_))
        ));
    }

    // --- pages and entities ---

    fn connection(field: &str, nodes: Value, next: Option<&str>) -> Value {
        json!({"data": {field: {
            "nodes": nodes,
            "pageInfo": {"hasNextPage": next.is_some(), "endCursor": next},
        }}})
    }

    #[test]
    fn a_page_needs_its_nodes_and_a_cursor_that_advances() {
        let page = read_page(
            Kind::Issues,
            &connection("issues", json!([{"id": "a"}]), Some("c2")),
            Some("c1"),
        )
        .unwrap();
        assert_eq!((page.nodes.len(), page.next.as_deref()), (1, Some("c2")));
        let last = read_page(Kind::Teams, &connection("teams", json!([]), None), None).unwrap();
        assert_eq!(last.next, None);

        let stuck = read_page(
            Kind::Issues,
            &connection("issues", json!([]), Some("c1")),
            Some("c1"),
        );
        assert!(matches!(stuck, Err(StreamError::Malformed(m)) if m.contains("did not advance")));
        let no_cursor =
            json!({"data": {"issues": {"nodes": [], "pageInfo": {"hasNextPage": true}}}});
        assert!(read_page(Kind::Issues, &no_cursor, None).is_err());
        let wrong_field = connection("teams", json!([]), None);
        assert!(matches!(
            read_page(Kind::Issues, &wrong_field, None),
            Err(StreamError::Malformed(m)) if m == "Linear's issues page is missing"
        ));
        let not_a_list =
            json!({"data": {"issues": {"nodes": {}, "pageInfo": {"hasNextPage": false}}}});
        assert!(read_page(Kind::Issues, &not_a_list, None).is_err());
    }

    fn issue(id: &str, updated_at: &str, labels: &[&str]) -> Value {
        json!({
            "id": id, "identifier": "ENG-7", "title": "Login fails on Safari",
            "description": "Steps: open the page", "url": "https://linear.app/acme/issue/ENG-7",
            "priority": 2, "priorityLabel": "High", "estimate": 3, "dueDate": null,
            "createdAt": "2026-10-01T09:00:00.000Z", "updatedAt": updated_at,
            "archivedAt": null, "completedAt": null, "canceledAt": null,
            "state": {"id": "s1", "name": "In Progress", "type": "started"},
            "assignee": {"id": "u1", "name": "Ada Lovelace", "email": "ada@example.com"},
            "creator": {"id": "u2", "name": "Grace Hopper"},
            "team": {"id": "t1", "key": "ENG", "name": "Engineering"},
            "project": null,
            "labels": {"nodes": labels.iter().map(|l| json!({"id": format!("l-{l}"), "name": l})).collect::<Vec<_>>()},
        })
    }

    #[test]
    fn an_issue_keeps_what_a_user_searches_for() {
        let entity = to_entity(
            Kind::Issues,
            &issue("i-1", "2026-10-02T10:00:00.000Z", &["bug", "ui"]),
        )
        .unwrap();
        assert_eq!(
            (entity.entity_type.as_str(), entity.entity_id.as_str()),
            ("linear_issue", "i-1")
        );
        assert_eq!(entity.title, "ENG-7 Login fails on Safari");
        assert_eq!(
            entity.updated_at,
            Some("2026-10-02T10:00:00Z".parse().unwrap())
        );
        let p = &entity.payload;
        assert_eq!(p["state"], "In Progress");
        assert_eq!(p["assignee"]["name"], "Ada Lovelace");
        assert_eq!(p["team"]["key"], "ENG");
        assert_eq!(p["labels"], json!(["bug", "ui"]));
        assert_eq!(p["description"], "Steps: open the page");
        assert_eq!(p["url"], "https://linear.app/acme/issue/ENG-7");

        // Label order is not the item's content: the hash ignores it.
        let reordered = to_entity(
            Kind::Issues,
            &issue("i-1", "2026-10-02T10:00:00.000Z", &["ui", "bug"]),
        )
        .unwrap();
        assert_eq!(entity.content_hash(), reordered.content_hash());
        let edited = to_entity(
            Kind::Issues,
            &issue("i-1", "2026-10-03T10:00:00.000Z", &["bug", "ui"]),
        )
        .unwrap();
        assert_ne!(entity.content_hash(), edited.content_hash());

        assert!(to_entity(Kind::Issues, &json!({"updatedAt": "2026-10-02T10:00:00Z"})).is_err());
        assert!(to_entity(Kind::Issues, &json!({"id": "x", "updatedAt": "yesterday"})).is_err());
    }

    #[test]
    fn comments_are_titled_by_author_and_issue() {
        let comment = json!({
            "id": "c-1", "body": "Reproduced on 17.2", "url": "https://linear.app/acme/issue/ENG-7#comment-c1",
            "createdAt": "2026-10-02T10:00:00.000Z", "updatedAt": "2026-10-02T10:00:00.000Z",
            "editedAt": null, "archivedAt": null,
            "user": {"id": "u1", "name": "Ada Lovelace"},
            "issue": {"id": "i-1", "identifier": "ENG-7", "title": "Login fails on Safari"},
        });
        let entity = to_entity(Kind::Comments, &comment).unwrap();
        assert_eq!(entity.title, "Comment by Ada Lovelace on ENG-7");
        assert_eq!(entity.payload["body"], "Reproduced on 17.2");
        assert_eq!(entity.payload["issue"]["identifier"], "ENG-7");
    }

    // --- the cursor ---

    fn at_time(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_cursor_is_the_newest_update_but_never_past_the_start_less_the_overlap() {
        let start = at_time("2026-11-25T12:00:00Z");
        let mut full = Progress::start(None, start);
        full.next = None;
        assert_eq!(
            full.cursor().updated_after,
            start - CURSOR_OVERLAP,
            "nothing seen"
        );
        full.newest = Some(at_time("2026-11-20T08:00:00Z"));
        assert_eq!(full.cursor().updated_after, at_time("2026-11-20T08:00:00Z"));
        full.newest = Some(at_time("2026-11-25T11:59:00Z"));
        assert_eq!(full.cursor().updated_after, start - CURSOR_OVERLAP);

        let mut quiet = Progress::start(Some(at_time("2026-11-24T00:00:00Z")), start);
        quiet.next = None;
        assert_eq!(
            quiet.cursor().updated_after,
            at_time("2026-11-24T00:00:00Z"),
            "nothing changed: the same filter next time"
        );
    }

    fn stream(progress: Progress) -> LinearStream {
        LinearStream {
            client: http_client().unwrap(),
            endpoint: "http://127.0.0.1:9/graphql".into(),
            authorization: HeaderValue::from_static("k"),
            progress,
        }
    }

    #[test]
    fn only_an_incremental_run_filters_by_update_and_asks_for_archived_items() {
        let since = at_time("2026-11-24T00:00:00Z");
        let mut incremental = stream(Progress::start(Some(since), now()));
        incremental.progress.after = Some("cursor-9".into());
        let issues = incremental.variables(Kind::Issues);
        assert_eq!(
            issues,
            json!({
                "first": PAGE_SIZE, "after": "cursor-9", "includeArchived": true,
                "filter": {"updatedAt": {"gt": "2026-11-24T00:00:00.000Z"}},
            })
        );
        assert_eq!(
            incremental.variables(Kind::Teams),
            json!({"first": PAGE_SIZE, "after": "cursor-9"})
        );
        let full = stream(Progress::start(None, now()));
        assert_eq!(
            full.variables(Kind::Comments),
            json!({"first": PAGE_SIZE, "after": null, "includeArchived": false})
        );
    }

    // --- a run against a scripted Linear ---

    /// Answers each request with the next body of the script (Linear's pages in run order).
    async fn scripted(script: Vec<Reply>) -> FakeUpstream {
        let calls = Arc::new(AtomicUsize::new(0));
        FakeUpstream::start(move |_: &Seen| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            script
                .get(n)
                .cloned()
                .unwrap_or_else(|| Reply::status(500).text("script exhausted"))
        })
        .await
    }

    fn source_for(fake: &FakeUpstream) -> LinearSource {
        LinearSource::new(
            http_client().unwrap(),
            BaseUrl::parse(&fake.base_url).unwrap(),
        )
    }

    fn request(since: Option<Value>, resume: Option<Value>) -> StreamRequest {
        StreamRequest {
            auth: api_key(KEY),
            config: Map::new(),
            since,
            resume,
        }
    }

    fn node(id: &str, updated_at: &str) -> Value {
        json!({"id": id, "name": id, "updatedAt": updated_at, "archivedAt": null})
    }

    fn ok(body: Value) -> Reply {
        Reply::status(200).json(body)
    }

    /// Teams, users, projects: one page each; issues: two; comments: one.
    fn workspace_pages() -> Vec<Reply> {
        vec![
            ok(connection(
                "teams",
                json!([node("t1", "2026-01-01T00:00:00Z")]),
                None,
            )),
            ok(connection(
                "users",
                json!([
                    node("u1", "2026-01-01T00:00:00Z"),
                    node("u2", "2026-01-01T00:00:00Z")
                ]),
                None,
            )),
            ok(connection(
                "projects",
                json!([node("p1", "2026-03-01T00:00:00Z")]),
                None,
            )),
            ok(connection(
                "issues",
                json!([
                    issue("i1", "2026-04-01T00:00:00Z", &[]),
                    issue("i2", "2026-05-01T00:00:00Z", &[])
                ]),
                Some("after-i2"),
            )),
            ok(connection(
                "issues",
                json!([issue("i3", "2026-02-01T00:00:00Z", &[])]),
                None,
            )),
            ok(connection(
                "comments",
                json!([node("c1", "2026-04-15T00:00:00Z")]),
                None,
            )),
        ]
    }

    async fn drain(
        stream: &mut Box<dyn EntityStream>,
    ) -> (Vec<Entity>, Vec<EntityKey>, Vec<Value>, Option<StreamError>) {
        let (mut entities, mut removed, mut checkpoints) = (Vec::new(), Vec::new(), Vec::new());
        loop {
            match stream.next_page().await {
                Ok(Some(page)) => {
                    entities.extend(page.entities);
                    removed.extend(page.removed);
                    checkpoints.push(page.checkpoint);
                }
                Ok(None) => return (entities, removed, checkpoints, None),
                Err(e) => return (entities, removed, checkpoints, Some(e)),
            }
        }
    }

    fn ids(entities: &[Entity]) -> Vec<&str> {
        entities.iter().map(|e| e.entity_id.as_str()).collect()
    }

    #[tokio::test]
    async fn a_run_walks_every_kind_page_by_page_and_ends_with_a_cursor() {
        let fake = scripted(workspace_pages()).await;
        let mut stream = source_for(&fake).open_stream(request(None, None)).unwrap();
        assert!(fake.seen().is_empty(), "opening does no I/O");
        assert!(!stream.incremental());
        let (entities, removed, checkpoints, error) = drain(&mut stream).await;
        assert_eq!(error, None);
        assert!(removed.is_empty());
        assert_eq!(
            ids(&entities),
            ["t1", "u1", "u2", "p1", "i1", "i2", "i3", "c1"]
        );
        assert_eq!(checkpoints.len(), 6, "one page per GraphQL page");
        let types: Vec<&str> = entities.iter().map(|e| e.entity_type.as_str()).collect();
        assert_eq!(types[0], "linear_team");
        assert_eq!(types[7], "linear_comment");

        let seen = fake.seen();
        assert_eq!(seen.len(), 6);
        assert!(seen
            .iter()
            .all(|s| s.method == "POST" && s.path == "/graphql"));
        assert_eq!(
            seen[0].header("authorization"),
            Some(KEY),
            "the raw key, no Bearer"
        );

        // The newest update among projects, issues and comments, not the teams' or users'.
        assert_eq!(
            stream.cursor(),
            Some(json!({"updated_after": "2026-05-01T00:00:00Z"}))
        );
    }

    #[tokio::test]
    async fn a_resumed_run_continues_after_its_checkpoint() {
        let fake = scripted(workspace_pages()).await;
        let mut first = source_for(&fake).open_stream(request(None, None)).unwrap();
        let (_, _, checkpoints, _) = drain(&mut first).await;
        // After the first issues page: the issues' next page, then the comments.
        let after_first_issue_page = checkpoints[3].clone();
        assert_eq!(after_first_issue_page["next"], "issues");
        assert_eq!(after_first_issue_page["after"], "after-i2");

        let rest = scripted(workspace_pages()[4..].to_vec()).await;
        let mut resumed = source_for(&rest)
            .open_stream(request(None, Some(after_first_issue_page)))
            .unwrap();
        let (entities, _, _, error) = drain(&mut resumed).await;
        assert_eq!(error, None);
        assert_eq!(ids(&entities), ["i3", "c1"]);
        // What the pages before the checkpoint saw still counts for the cursor.
        assert_eq!(
            resumed.cursor(),
            Some(json!({"updated_after": "2026-05-01T00:00:00Z"}))
        );

        let unreadable = source_for(&rest).open_stream(request(None, Some(json!("page 3"))));
        assert!(matches!(unreadable, Err(StreamError::Malformed(_))));
    }

    #[tokio::test]
    async fn an_incremental_run_reports_archived_items_removed() {
        let mut archived = issue("i2", "2026-11-24T10:00:00Z", &[]);
        archived["archivedAt"] = json!("2026-11-24T10:00:00Z");
        let mut pages = workspace_pages();
        pages[3] = ok(connection(
            "issues",
            json!([issue("i1", "2026-11-24T09:00:00Z", &[]), archived]),
            None,
        ));
        pages.remove(4);
        let fake = scripted(pages.clone()).await;
        let since = json!({"updated_after": "2026-11-24T00:00:00Z"});
        let mut stream = source_for(&fake)
            .open_stream(request(Some(since), None))
            .unwrap();
        assert!(stream.incremental());
        let (entities, removed, _, error) = drain(&mut stream).await;
        assert_eq!(error, None);
        assert!(ids(&entities).contains(&"i1") && !ids(&entities).contains(&"i2"));
        assert_eq!(removed, [EntityKey::new("linear_issue", "i2").unwrap()]);

        // A full run drops an archived item by not yielding it; nothing is "removed".
        let fake = scripted(pages).await;
        let mut full = source_for(&fake)
            .open_stream(request(Some(json!("from an older version")), None))
            .unwrap();
        assert!(!full.incremental(), "an unreadable cursor means a full run");
        let (entities, removed, _, _) = drain(&mut full).await;
        assert!(removed.is_empty() && !ids(&entities).contains(&"i2"));
    }

    #[tokio::test]
    async fn refusals_end_the_stream_as_the_worker_expects() {
        let mut pages = workspace_pages();
        pages[1] = Reply::status(400)
            .json(serde_json::from_str(&graphql_error("AUTHENTICATION_ERROR")).unwrap());
        let fake = scripted(pages).await;
        let mut stream = source_for(&fake).open_stream(request(None, None)).unwrap();
        let (entities, _, _, error) = drain(&mut stream).await;
        assert_eq!(ids(&entities), ["t1"]);
        let Some(StreamError::Rejected(message)) = error else {
            panic!("rejected, got {error:?}");
        };
        assert!(!message.contains(KEY));
        assert_eq!(stream.cursor(), None, "no cursor before the end");

        let mut pages = workspace_pages();
        pages[2] = Reply::status(400)
            .header("x-ratelimit-requests-remaining", "0")
            .header(
                "x-ratelimit-requests-reset",
                (Utc::now().timestamp_millis() + 1_000).to_string(),
            )
            .json(serde_json::from_str(&graphql_error("RATELIMITED")).unwrap());
        let fake = scripted(pages).await;
        let mut stream = source_for(&fake).open_stream(request(None, None)).unwrap();
        let (_, _, checkpoints, error) = drain(&mut stream).await;
        assert_eq!(checkpoints.len(), 2);
        assert_eq!(
            error,
            Some(StreamError::RateLimited {
                wait: Duration::from_secs(1)
            })
        );

        let mut pages = workspace_pages();
        pages[0] = Reply::status(200).text(r#"{"data": {"teams": {"nodes": [{"id": "#);
        let fake = scripted(pages).await;
        let mut stream = source_for(&fake).open_stream(request(None, None)).unwrap();
        let (_, _, _, error) = drain(&mut stream).await;
        assert_eq!(
            error,
            Some(StreamError::Malformed(
                "Linear answered HTTP 200 with a body that is not JSON".into()
            ))
        );

        let unreachable = LinearSource::new(
            http_client().unwrap(),
            BaseUrl::parse(&closed_port_url().await).unwrap(),
        );
        let mut stream = unreachable.open_stream(request(None, None)).unwrap();
        assert!(matches!(
            stream.next_page().await,
            Err(StreamError::Upstream(m)) if m == "could not connect to Linear"
        ));
    }

    // --- the credential check ---

    async fn check(
        reply: Reply,
        auth: &AuthenticationRequest,
    ) -> (Result<(), CheckError>, Vec<Seen>) {
        let fake = FakeUpstream::start(move |_: &Seen| reply.clone()).await;
        let outcome = source_for(&fake).check_credentials(auth, &Map::new()).await;
        (outcome, fake.seen())
    }

    #[tokio::test]
    async fn the_viewer_query_checks_the_credentials() {
        let viewer = ok(json!({"data": {"viewer": {"id": "u1", "name": "Ada"}}}));
        let (outcome, seen) = check(viewer.clone(), &api_key(KEY)).await;
        assert_eq!(outcome, Ok(()));
        assert_eq!(
            (seen[0].method.as_str(), seen[0].path.as_str()),
            ("POST", "/graphql")
        );
        assert_eq!(seen[0].header("authorization"), Some(KEY));
        let (outcome, seen) = check(viewer, &oauth("lin_oauth_token")).await;
        assert_eq!(outcome, Ok(()));
        assert_eq!(
            seen[0].header("authorization"),
            Some("Bearer lin_oauth_token")
        );

        let refused = Reply::status(400)
            .json(serde_json::from_str(&graphql_error("AUTHENTICATION_ERROR")).unwrap());
        let (outcome, _) = check(refused, &api_key(KEY)).await;
        assert_eq!(outcome, Err(CheckError::Rejected(REJECTED.into())));

        let limited = Reply::status(429)
            .header("retry-after", "20")
            .text("slow down");
        let (outcome, _) = check(limited, &api_key(KEY)).await;
        assert_eq!(
            outcome,
            Err(CheckError::RateLimited {
                retry_after: Some(Duration::from_secs(20))
            })
        );

        let (outcome, _) = check(ok(json!({"data": {"viewer": null}})), &api_key(KEY)).await;
        assert!(matches!(outcome, Err(CheckError::Unavailable(_))));

        let unreachable = LinearSource::new(
            http_client().unwrap(),
            BaseUrl::parse(&closed_port_url().await).unwrap(),
        );
        assert_eq!(
            unreachable
                .check_credentials(&api_key(KEY), &Map::new())
                .await,
            Err(CheckError::Unavailable(
                "could not connect to Linear".into()
            ))
        );
    }
}

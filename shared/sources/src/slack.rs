//! `slack`: users, the channels a token can see, their messages and thread replies, through
//! Slack's Web API (`{base}/<method>`, the token as `Authorization: Bearer`).
//!
//! A run reads `auth.test` (the workspace's address, for links), `users.list`, then
//! `conversations.list` (public and private channels) one page at a time: after each page of
//! channels, for each channel of it the token can read, `conversations.history` and, for every
//! message with replies, `conversations.replies`; all paged by `response_metadata.next_cursor`.
//! One upstream call per page, so the worker's checkpoint lands after every call.
//!
//! The checkpoint stays under 200 KB whatever the workspace's size (it is saved on the job's
//! DynamoDB item, 400 KB at most): it holds the list's cursor, the channels of the current list
//! page still to read (at most a page), the threads of the current history page, and the next
//! cursor so far, which is bounded (see [`CURSOR_CHANNELS`]).
//!
//! Slack answers errors with HTTP 200 and `{"ok": false, "error": "<code>"}`, and rate limits
//! with HTTP 429 and `Retry-After`. A run after a completed one is incremental: per channel it
//! asks history only for messages newer than the newest one it saw (`oldest`), minus a lookback
//! window (`thread_lookback_days`) because Slack tells a channel's history nothing about new
//! replies or edits to older messages; re-read messages that did not change are simply kept.

use crate::base_url::BaseUrl;
use crate::source::Source;
use crate::upstream::{fetch, retry_after, PAGE_BODY_LIMIT};
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use domain::auth::AuthenticationRequest;
use domain::catalog::{AuthMethod, ClientAuth, FieldSpec, FieldType, OAuthSettings, SourceSpec};
use domain::entity::Entity;
use domain::ports::CheckError;
use domain::stream::{EntityPage, EntityStream, StreamError, StreamRequest};
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// Items asked per call; Slack advises no more than 200 and may answer fewer.
const PAGE_LIMIT: u32 = 200;
/// Slack always sends `Retry-After` with a 429; this covers an answer that does not.
const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(30);
/// An `auth.test` answer is a few hundred bytes.
const CHECK_BODY_LIMIT: usize = 64 * 1024;
const DEFAULT_LOOKBACK_DAYS: i64 = 7;
const MAX_LOOKBACK_DAYS: i64 = 365;
/// The longest message title; the whole text is in the payload.
const TITLE_CHARS: usize = 80;
/// The most channels a cursor remembers (the next run's `oldest` per channel), and the most
/// bytes their entries take as JSON whatever the ids' length: the cursor is saved on one
/// DynamoDB item and the checkpoint, which carries it, on another (400 KB each). When a run
/// outgrows either bound the channels with the oldest newest message are dropped, down to
/// [`CURSOR_TRIM_PERCENT`] of both so that trimming is rare. A channel missing from the cursor
/// is simply read in full by the next run: correct, only slower.
const CURSOR_CHANNELS: usize = 5_000;
const CURSOR_BYTES: usize = 170 * 1024;
const CURSOR_TRIM_PERCENT: usize = 90;
/// Error codes that mean the token no longer works: the user must give a new one.
const AUTH_ERRORS: [&str; 5] = [
    "invalid_auth",
    "token_revoked",
    "account_inactive",
    "not_authed",
    "token_expired",
];

/// Slack (slack.com, or a fake through `SOURCE_SLACK_BASE_URL`).
#[derive(Debug, Clone)]
pub struct SlackSource {
    spec: SourceSpec,
    client: reqwest::Client,
    base_url: BaseUrl,
}

impl SlackSource {
    pub const SHORT_NAME: &'static str = "slack";
    pub const DEFAULT_BASE_URL: &'static str = "https://slack.com/api";

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
        short_name: SlackSource::SHORT_NAME,
        name: "Slack",
        class_name: "SlackSource",
        description: "Messages, thread replies, channels and users of the Slack channels a bot \
                      or user token can read.",
        // A bot token is imported as an OAuth token; the browser flow comes with the OAuth
        // settings below.
        auth_methods: vec![
            AuthMethod::OauthToken,
            AuthMethod::OauthBrowser,
            AuthMethod::OauthByoc,
            AuthMethod::AuthProvider,
        ],
        requires_byoc: false,
        auth_fields: vec![],
        config_fields: vec![FieldSpec::new(
            "thread_lookback_days",
            "Thread lookback (days)",
            FieldType::Integer,
        )
        .describe(
            "How many days before a channel's newest synced message an incremental sync reads \
             again, to pick up new thread replies and edits (default 7; 0 reads only new \
             messages).",
        )
        .range(0, MAX_LOOKBACK_DAYS)],
        supported_auth_providers: vec!["composio", "pipedream"],
        entity_types: vec!["slack_channel", "slack_message", "slack_user"],
        supports_continuous: false,
        supports_incremental: true,
        federated_search: false,
        labels: vec!["Communication"],
        oauth: Some(OAuthSettings {
            authorize_url: "https://slack.com/oauth/v2/authorize",
            token_url: "https://slack.com/api/oauth.v2.access",
            scopes: vec![
                "channels:history",
                "channels:read",
                "groups:history",
                "groups:read",
                "users:read",
            ],
            user_scopes: vec!["search:read"],
            scope_separator: ",",
            pkce: false,
            client_auth: ClientAuth::RequestBody,
            access_token_pointer: "/access_token",
            refresh_token_pointer: None,
            extra_authorize_params: vec![],
        }),
    }
}

/// The `Authorization` value of a token; the secret is exposed only here.
fn authorization(auth: &AuthenticationRequest) -> Result<HeaderValue, String> {
    let AuthenticationRequest::OauthToken(token) = auth else {
        return Err(format!(
            "Slack takes a bot or user token (oauth_token), not {} authentication",
            auth.method().as_str()
        ));
    };
    let mut value = HeaderValue::try_from(format!(
        "Bearer {}",
        token.access_token.expose_secret().trim()
    ))
    .map_err(|_| "the token contains characters a token cannot have".to_owned())?;
    value.set_sensitive(true);
    Ok(value)
}

/// Why a Web API call gave no page.
#[derive(Debug, Clone, PartialEq)]
enum Failure {
    /// `{"ok": false, "error": code}` with a code that is not about the token or a rate limit.
    Api {
        method: &'static str,
        code: String,
        /// The scope a `missing_scope` answer names.
        needed: Option<String>,
    },
    Stream(StreamError),
}

impl Failure {
    fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            Self::Stream(_) => None,
        }
    }
}

impl From<StreamError> for Failure {
    fn from(e: StreamError) -> Self {
        Self::Stream(e)
    }
}

impl From<Failure> for StreamError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Api {
                method,
                code,
                needed,
            } => {
                let needed = needed
                    .map(|n| format!(" (needed: {n})"))
                    .unwrap_or_default();
                StreamError::Upstream(format!("{method} failed with error {code}{needed}"))
            }
            Failure::Stream(e) => e,
        }
    }
}

/// What one Web API answer of `method` means: its body when Slack says `ok`, otherwise why the
/// run stops. Nothing of the body is quoted but Slack's error code (and the scope it lacks).
fn classify(
    method: &'static str,
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Value, Failure> {
    let rate_limited = || {
        Failure::Stream(StreamError::RateLimited {
            wait: retry_after(headers, now).unwrap_or(DEFAULT_RATE_LIMIT_WAIT),
        })
    };
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Err(rate_limited());
    }
    if status.is_server_error() {
        return Err(Failure::Stream(StreamError::Upstream(format!(
            "Slack is unavailable (HTTP {} on {method})",
            status.as_u16()
        ))));
    }
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let Some(Value::Object(answer)) = parsed else {
        return Err(Failure::Stream(if status.is_success() {
            StreamError::Malformed(format!("the answer to {method} is not JSON"))
        } else {
            StreamError::Upstream(format!(
                "{method} answered unexpected HTTP {}",
                status.as_u16()
            ))
        }));
    };
    match answer.get("ok") {
        Some(Value::Bool(true)) if status.is_success() => Ok(Value::Object(answer)),
        Some(Value::Bool(_)) => {
            let code = answer
                .get("error")
                .and_then(Value::as_str)
                .filter(|c| is_token_like(c))
                .unwrap_or("unknown_error");
            if AUTH_ERRORS.contains(&code) {
                return Err(Failure::Stream(StreamError::Rejected(format!(
                    "{method} answered {code}"
                ))));
            }
            if code == "ratelimited" {
                return Err(rate_limited());
            }
            Err(Failure::Api {
                method,
                code: code.to_owned(),
                needed: answer
                    .get("needed")
                    .and_then(Value::as_str)
                    .filter(|n| is_token_like(n))
                    .map(str::to_owned),
            })
        }
        _ => Err(Failure::Stream(StreamError::Malformed(format!(
            "the answer to {method} is not a Web API answer"
        )))),
    }
}

/// Error codes and scopes are short words of `[a-z0-9_:.,-]`; anything else is not repeated.
fn is_token_like(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | ':' | '.' | ',' | '-')
        })
}

/// A Slack ts, `<seconds>.<microseconds>`: the message's id in its channel and its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Ts {
    seconds: i64,
    micros: u32,
}

impl Ts {
    fn parse(s: &str) -> Option<Self> {
        let (seconds, fraction) = match s.split_once('.') {
            Some((_, "")) => return None,
            Some(parts) => parts,
            None => (s, ""),
        };
        let digits =
            |d: &str| !d.is_empty() && d.len() <= 12 && d.bytes().all(|b| b.is_ascii_digit());
        if !digits(seconds) || !(fraction.is_empty() || digits(fraction) && fraction.len() <= 6) {
            return None;
        }
        let micros = format!("{fraction:0<6}").parse().ok()?;
        Some(Self {
            seconds: seconds.parse().ok()?,
            micros,
        })
    }

    fn time(self) -> Option<DateTime<Utc>> {
        Utc.timestamp_opt(self.seconds, self.micros * 1000).single()
    }

    /// The ts `days` earlier, as `oldest` takes it.
    fn minus_days(self, days: i64) -> String {
        let seconds = self.seconds.saturating_sub(days * 86_400).max(0);
        if days == 0 {
            format!("{}.{:06}", seconds, self.micros)
        } else {
            format!("{seconds}.000000")
        }
    }

    /// The `p<digits>` part of a message link.
    fn link_id(self) -> String {
        format!("p{}{:06}", self.seconds, self.micros)
    }
}

/// The newest top-level message read per channel: what the next run starts from. Bounded by
/// [`CURSOR_CHANNELS`] and [`CURSOR_BYTES`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Cursor {
    channels: BTreeMap<String, String>,
}

/// What the next call of the stream reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "read", rename_all = "snake_case")]
enum Step {
    /// `auth.test`: the workspace's address and the kind of token.
    Identity,
    Users {
        cursor: Option<String>,
    },
    Channels {
        cursor: Option<String>,
    },
    /// The history of the first of [`Position::channels`].
    History {
        cursor: Option<String>,
    },
    /// The replies of the first of [`Position::threads`].
    Replies {
        cursor: Option<String>,
    },
    Done,
}

/// Where a run is: the checkpoint after each page. Its size is bounded whatever the
/// workspace's: at most one list page of channels, one history page of threads, and the next
/// cursor so far (bounded by [`trim_latest`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Position {
    step: Step,
    /// `https://<workspace>.slack.com/`, from `auth.test`, for links.
    team_url: Option<String>,
    /// A user token reads every public channel; a bot token only those it is a member of.
    reads_public: bool,
    /// Readable channels of the current `conversations.list` page whose messages are still to
    /// read, the one being read first.
    channels: VecDeque<String>,
    /// Where `conversations.list` goes on once those are read; `None` after its last page. (A
    /// checkpoint of the version that listed every channel first has none: the channels it
    /// holds are read, then the list goes on from its step, if it was still listing.)
    #[serde(default)]
    channels_next: Option<String>,
    /// Thread parents (ts) of the history page just read whose replies are still to read.
    threads: VecDeque<String>,
    /// Where the current channel's history goes on once its threads are read.
    history_next: Option<String>,
    /// The next run's cursor so far.
    latest: BTreeMap<String, String>,
}

impl Position {
    fn start() -> Self {
        Self {
            step: Step::Identity,
            team_url: None,
            reads_public: false,
            channels: VecDeque::new(),
            channels_next: None,
            threads: VecDeque::new(),
            history_next: None,
            latest: BTreeMap::new(),
        }
    }

    /// After a history page and its threads: the next history page, or the next channel.
    fn after_history_page(&mut self) {
        self.step = match self.history_next.take() {
            Some(cursor) => Step::History {
                cursor: Some(cursor),
            },
            None => {
                self.channels.pop_front();
                self.first_history()
            }
        };
    }

    /// The next channel of the current list page, else the next list page, else the end.
    fn first_history(&mut self) -> Step {
        if !self.channels.is_empty() {
            Step::History { cursor: None }
        } else if let Some(cursor) = self.channels_next.take() {
            Step::Channels {
                cursor: Some(cursor),
            }
        } else {
            Step::Done
        }
    }

    /// Bounds the next cursor so far, sparing the channel being read (its newest message is
    /// on its first history page; dropping it mid-channel would record an older one).
    fn trim_latest(&mut self) {
        let reading = match self.step {
            Step::History { .. } | Step::Replies { .. } => self.channels.front().cloned(),
            _ => None,
        };
        trim_latest(&mut self.latest, reading.as_deref());
    }
}

/// The bytes a cursor entry takes as JSON: `"<id>":"<ts>",`.
fn entry_bytes(id: &str, ts: &str) -> usize {
    id.len() + ts.len() + 6
}

/// Keeps `latest` within [`CURSOR_CHANNELS`] entries and [`CURSOR_BYTES`]: once over either, it
/// drops the channels with the oldest newest message (an unreadable ts first) until under
/// [`CURSOR_TRIM_PERCENT`] of both; `spare` is never dropped. A dropped channel is read in full
/// next time, which is correct, only slower.
fn trim_latest(latest: &mut BTreeMap<String, String>, spare: Option<&str>) {
    let bytes: usize = latest.iter().map(|(id, ts)| entry_bytes(id, ts)).sum();
    if latest.len() <= CURSOR_CHANNELS && bytes <= CURSOR_BYTES {
        return;
    }
    let keep_channels = CURSOR_CHANNELS * CURSOR_TRIM_PERCENT / 100;
    let keep_bytes = CURSOR_BYTES * CURSOR_TRIM_PERCENT / 100;
    let mut oldest_first: Vec<(Option<Ts>, String)> = latest
        .iter()
        .filter(|(id, _)| Some(id.as_str()) != spare)
        .map(|(id, ts)| (Ts::parse(ts), id.clone()))
        .collect();
    oldest_first.sort_unstable();
    let (mut count, mut bytes) = (latest.len(), bytes);
    for (_, id) in oldest_first {
        if count <= keep_channels && bytes <= keep_bytes {
            break;
        }
        if let Some(ts) = latest.remove(&id) {
            count -= 1;
            bytes -= entry_bytes(&id, &ts);
        }
    }
}

/// One call: the Web API method and its arguments (never the token: that is a header).
#[derive(Debug, Clone, PartialEq)]
struct Call {
    method: &'static str,
    params: Vec<(&'static str, String)>,
}

struct SlackStream {
    client: reqwest::Client,
    base_url: BaseUrl,
    authorization: HeaderValue,
    /// The last completed run's cursor; `None` for a full run.
    since: Option<Cursor>,
    lookback_days: i64,
    position: Position,
}

impl SlackStream {
    /// The call the current step makes.
    fn call(&self) -> Option<Call> {
        let paged = |method, cursor: &Option<String>, mut params: Vec<(&'static str, String)>| {
            params.push(("limit", PAGE_LIMIT.to_string()));
            if let Some(cursor) = cursor {
                params.push(("cursor", cursor.clone()));
            }
            Call { method, params }
        };
        let channel = || self.position.channels.front().cloned().unwrap_or_default();
        Some(match &self.position.step {
            Step::Identity => Call {
                method: "auth.test",
                params: vec![],
            },
            Step::Users { cursor } => paged("users.list", cursor, vec![]),
            Step::Channels { cursor } => paged(
                "conversations.list",
                cursor,
                vec![
                    ("types", "public_channel,private_channel".into()),
                    ("exclude_archived", "false".into()),
                ],
            ),
            Step::History { cursor } => {
                let mut params = vec![("channel", channel())];
                if let Some(oldest) = self.oldest(&channel()) {
                    params.push(("oldest", oldest));
                }
                paged("conversations.history", cursor, params)
            }
            Step::Replies { cursor } => {
                let thread = self.position.threads.front().cloned().unwrap_or_default();
                paged(
                    "conversations.replies",
                    cursor,
                    vec![("channel", channel()), ("ts", thread)],
                )
            }
            Step::Done => return None,
        })
    }

    /// The start of an incremental run's window in `channel`: its newest message of the last
    /// run, minus the lookback.
    fn oldest(&self, channel: &str) -> Option<String> {
        let ts = self.since.as_ref()?.channels.get(channel)?;
        Some(Ts::parse(ts)?.minus_days(self.lookback_days))
    }

    async fn send(&self, call: &Call) -> Result<Value, Failure> {
        let request = self
            .client
            .get(self.base_url.endpoint(call.method))
            .header(AUTHORIZATION, self.authorization.clone())
            .query(&call.params);
        let answer = fetch("Slack", request, PAGE_BODY_LIMIT).await?;
        classify(
            call.method,
            answer.status,
            &answer.headers,
            &answer.body,
            Utc::now(),
        )
    }

    /// Applies one answer of the current step: the page's entities, and the next step.
    fn advance(&mut self, call: &Call, answer: Result<Value, Failure>) -> PageResult {
        let position = &mut self.position;
        let team_url = position.team_url.clone();
        let mut entities = Vec::new();
        match position.step.clone() {
            Step::Identity => {
                let body = answer?;
                position.team_url = body
                    .get("url")
                    .and_then(Value::as_str)
                    .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
                    .map(|u| format!("{}/", u.trim_end_matches('/')));
                // Bot tokens say which bot they belong to; a user token reads public channels
                // without being a member.
                position.reads_public = body.get("bot_id").is_none_or(Value::is_null);
                position.step = Step::Users { cursor: None };
            }
            Step::Users { .. } => {
                let body = answer?;
                for user in list(call.method, &body, "members")? {
                    entities.push(user_entity(user, team_url.as_deref())?);
                }
                position.step = match next_cursor(&body) {
                    Some(cursor) => Step::Users {
                        cursor: Some(cursor),
                    },
                    None => Step::Channels { cursor: None },
                };
            }
            Step::Channels { .. } => {
                let body = answer?;
                // The page's channels are read before the next page is listed: the checkpoint
                // never carries more than a page of them, whatever the workspace's size.
                for channel in list(call.method, &body, "channels")? {
                    let entity = channel_entity(channel, team_url.as_deref())?;
                    let member = channel.get("is_member").and_then(Value::as_bool) == Some(true);
                    let private = channel.get("is_private").and_then(Value::as_bool) == Some(true);
                    if member || (position.reads_public && !private) {
                        position.channels.push_back(entity.entity_id.clone());
                    }
                    entities.push(entity);
                }
                position.channels_next = next_cursor(&body);
                position.step = position.first_history();
            }
            Step::History { cursor } => {
                let channel = position.channels.front().cloned().unwrap_or_default();
                let body = match answer {
                    Err(f) if matches!(f.code(), Some("not_in_channel" | "channel_not_found")) => {
                        // Left or deleted since the list: nothing to read there any more.
                        tracing::info!(channel = %channel, code = f.code(), "Slack channel skipped");
                        position.latest.remove(&channel);
                        position.history_next = None;
                        position.after_history_page();
                        return Ok(entities);
                    }
                    other => other?,
                };
                if cursor.is_none() {
                    // The first page of a channel: its cursor starts where the last run's did.
                    if let Some(ts) = self.since.as_ref().and_then(|s| s.channels.get(&channel)) {
                        position.latest.insert(channel.clone(), ts.clone());
                    }
                }
                for message in list(call.method, &body, "messages")? {
                    let entity = message_entity(&channel, message, team_url.as_deref())?;
                    let ts = message_ts(message)?;
                    let newer = position
                        .latest
                        .get(&channel)
                        .and_then(|t| Ts::parse(t))
                        .is_none_or(|latest| ts > latest);
                    if newer {
                        position.latest.insert(channel.clone(), entity_ts(&entity));
                    }
                    let replies = message.get("reply_count").and_then(Value::as_u64);
                    let parent = message
                        .get("thread_ts")
                        .and_then(Value::as_str)
                        .is_none_or(|t| Ts::parse(t) == Some(ts));
                    if replies.unwrap_or(0) > 0 && parent {
                        position.threads.push_back(entity_ts(&entity));
                    }
                    entities.push(entity);
                }
                position.history_next = next_cursor(&body);
                if position.threads.is_empty() {
                    position.after_history_page();
                } else {
                    position.step = Step::Replies { cursor: None };
                }
                position.trim_latest();
            }
            Step::Replies { .. } => {
                let channel = position.channels.front().cloned().unwrap_or_default();
                let thread = position.threads.front().cloned().unwrap_or_default();
                let next = match answer {
                    // The parent was deleted since the history page: no thread to read.
                    Err(f) if f.code() == Some("thread_not_found") => None,
                    other => {
                        let body = other?;
                        for message in list(call.method, &body, "messages")? {
                            // Every page repeats the parent, which history yielded already.
                            if message.get("ts").and_then(Value::as_str) == Some(thread.as_str()) {
                                continue;
                            }
                            entities.push(message_entity(&channel, message, team_url.as_deref())?);
                        }
                        next_cursor(&body)
                    }
                };
                match next {
                    Some(cursor) => {
                        position.step = Step::Replies {
                            cursor: Some(cursor),
                        }
                    }
                    None => {
                        position.threads.pop_front();
                        if position.threads.is_empty() {
                            position.after_history_page();
                        } else {
                            position.step = Step::Replies { cursor: None };
                        }
                    }
                }
            }
            Step::Done => {}
        }
        Ok(entities)
    }
}

type PageResult = Result<Vec<Entity>, StreamError>;

/// The items of a list answer; an answer without them is not a page of the method.
fn list<'a>(method: &str, body: &'a Value, field: &str) -> Result<&'a Vec<Value>, StreamError> {
    body.get(field).and_then(Value::as_array).ok_or_else(|| {
        StreamError::Malformed(format!("the answer to {method} has no {field} list"))
    })
}

fn next_cursor(body: &Value) -> Option<String> {
    body.pointer("/response_metadata/next_cursor")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
}

fn string<'a>(item: &'a Value, pointer: &str) -> Option<&'a str> {
    item.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// An id Slack gives a user or a channel: letters and digits.
fn item_id(kind: &str, item: &Value) -> Result<String, StreamError> {
    string(item, "/id")
        .filter(|id| id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric()))
        .map(str::to_owned)
        .ok_or_else(|| StreamError::Malformed(format!("Slack listed a {kind} without a valid id")))
}

fn message_ts(message: &Value) -> Result<Ts, StreamError> {
    message
        .get("ts")
        .and_then(Value::as_str)
        .and_then(Ts::parse)
        .ok_or_else(|| StreamError::Malformed("Slack listed a message without a valid ts".into()))
}

/// The ts part of a message entity's id (`<channel>:<ts>`).
fn entity_ts(entity: &Entity) -> String {
    entity
        .entity_id
        .split_once(':')
        .map(|(_, ts)| ts.to_owned())
        .unwrap_or_default()
}

/// A user: names, title and kind; presence, status and avatars change too often to keep.
fn user_entity(user: &Value, team_url: Option<&str>) -> Result<Entity, StreamError> {
    let id = item_id("user", user)?;
    let name = string(user, "/name").unwrap_or_default();
    let real_name = string(user, "/real_name").or_else(|| string(user, "/profile/real_name"));
    let display_name = string(user, "/profile/display_name");
    let flag = |field: &str| user.get(field).and_then(Value::as_bool).unwrap_or(false);
    Ok(Entity {
        entity_type: "slack_user".into(),
        title: real_name.or(display_name).unwrap_or(name).to_owned(),
        updated_at: None,
        payload: json!({
            "id": id,
            "name": name,
            "real_name": real_name,
            "display_name": display_name,
            "title": string(user, "/profile/title"),
            "email": string(user, "/profile/email"),
            "timezone": string(user, "/tz"),
            "is_bot": flag("is_bot"),
            "is_admin": flag("is_admin"),
            "deleted": flag("deleted"),
            "url": team_url.map(|t| format!("{t}team/{id}")),
        }),
        entity_id: id,
    })
}

/// A channel: name, topic and purpose; member counts and read markers are left out (they move
/// without the channel changing).
fn channel_entity(channel: &Value, team_url: Option<&str>) -> Result<Entity, StreamError> {
    let id = item_id("channel", channel)?;
    let name = string(channel, "/name").unwrap_or_default();
    let created = channel
        .get("created")
        .and_then(Value::as_i64)
        .and_then(|s| Utc.timestamp_opt(s, 0).single());
    let flag = |field: &str| channel.get(field).and_then(Value::as_bool).unwrap_or(false);
    Ok(Entity {
        entity_type: "slack_channel".into(),
        title: format!("#{name}"),
        updated_at: None,
        payload: json!({
            "id": id,
            "name": name,
            "topic": string(channel, "/topic/value"),
            "purpose": string(channel, "/purpose/value"),
            "is_private": flag("is_private"),
            "is_archived": flag("is_archived"),
            "creator": string(channel, "/creator"),
            "created_at": created,
            "url": team_url.map(|t| format!("{t}archives/{id}")),
        }),
        entity_id: id,
    })
}

/// A message or a thread reply (`thread_ts` names its parent). Reply counts, reactions and read
/// markers are left out: a message hashes the same until its text changes.
fn message_entity(
    channel: &str,
    message: &Value,
    team_url: Option<&str>,
) -> Result<Entity, StreamError> {
    let ts = message_ts(message)?;
    let ts_text = message
        .get("ts")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let text = message
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let thread_ts = string(message, "/thread_ts").filter(|t| Ts::parse(t).is_some());
    let edited = message.get("edited").is_some_and(Value::is_object);
    let edited_at = string(message, "/edited/ts").and_then(Ts::parse);
    let url = team_url.map(|t| {
        let mut url = format!("{t}archives/{channel}/{}", ts.link_id());
        if let Some(parent) = thread_ts.filter(|p| *p != ts_text) {
            url.push_str(&format!("?thread_ts={parent}&cid={channel}"));
        }
        url
    });
    let title = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|line| line.chars().take(TITLE_CHARS).collect::<String>())
        .unwrap_or_else(|| "(message without text)".into());
    Ok(Entity {
        entity_type: "slack_message".into(),
        entity_id: format!("{channel}:{ts_text}"),
        title,
        updated_at: edited_at.or(Some(ts)).and_then(Ts::time),
        payload: json!({
            "text": text,
            "user": string(message, "/user").or_else(|| string(message, "/bot_id")),
            "channel": channel,
            "ts": ts_text,
            "thread_ts": thread_ts,
            "subtype": string(message, "/subtype"),
            "edited": edited,
            "url": url,
        }),
    })
}

#[async_trait]
impl EntityStream for SlackStream {
    async fn next_page(&mut self) -> Result<Option<EntityPage>, StreamError> {
        let mut entities = Vec::new();
        // The identity call yields nothing: the first page goes on with the users' first call.
        while let Some(call) = self.call() {
            let answer = self.send(&call).await;
            entities.extend(self.advance(&call, answer)?);
            if call.method != "auth.test" {
                break;
            }
        }
        if entities.is_empty() && self.position.step == Step::Done {
            return Ok(None);
        }
        Ok(Some(EntityPage {
            entities,
            removed: Vec::new(),
            checkpoint: serde_json::to_value(&self.position).expect("a position serializes"),
        }))
    }

    fn incremental(&self) -> bool {
        self.since.is_some()
    }

    fn cursor(&self) -> Option<Value> {
        let mut channels = self.position.latest.clone();
        trim_latest(&mut channels, None);
        Some(json!(Cursor { channels }))
    }
}

#[async_trait]
impl Source for SlackSource {
    fn spec(&self) -> &SourceSpec {
        &self.spec
    }

    /// `auth.test`: who the token is, with no scope needed.
    #[tracing::instrument(name = "slack_check_credentials", skip_all, fields(method = auth.method().as_str()))]
    async fn check_credentials(
        &self,
        auth: &AuthenticationRequest,
        _config: &Map<String, Value>,
    ) -> Result<(), CheckError> {
        let authorization = authorization(auth).map_err(CheckError::Rejected)?;
        let request = self
            .client
            .get(self.base_url.endpoint("auth.test"))
            .header(AUTHORIZATION, authorization);
        let outcome = match fetch("Slack", request, CHECK_BODY_LIMIT).await {
            Ok(answer) => classify(
                "auth.test",
                answer.status,
                &answer.headers,
                &answer.body,
                Utc::now(),
            )
            .map(|_| ())
            .map_err(StreamError::from),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => {
                tracing::info!("Slack accepted the token");
                Ok(())
            }
            Err(e) => {
                tracing::info!(outcome = %e, "Slack did not accept the check");
                Err(match e {
                    StreamError::Rejected(m) => CheckError::Rejected(m),
                    StreamError::RateLimited { wait } => CheckError::RateLimited {
                        retry_after: Some(wait),
                    },
                    StreamError::Upstream(m)
                    | StreamError::Malformed(m)
                    | StreamError::Unsupported(m) => CheckError::Unavailable(m),
                })
            }
        }
    }

    fn open_stream(&self, request: StreamRequest) -> Result<Box<dyn EntityStream>, StreamError> {
        let authorization = authorization(&request.auth).map_err(StreamError::Unsupported)?;
        let lookback_days = request
            .config
            .get("thread_lookback_days")
            .and_then(Value::as_i64)
            .filter(|d| (0..=MAX_LOOKBACK_DAYS).contains(d))
            .unwrap_or(DEFAULT_LOOKBACK_DAYS);
        // A cursor this source cannot read (another version's) asks for a full run.
        let since = request.since.and_then(|v| {
            let cursor = serde_json::from_value::<Cursor>(v).ok();
            if cursor.is_none() {
                tracing::warn!("Slack cursor unreadable; running a full sync");
            }
            cursor
        });
        let position = match request.resume {
            Some(v) => serde_json::from_value(v).map_err(|_| {
                StreamError::Malformed("the Slack sync's checkpoint is unreadable".into())
            })?,
            None => Position::start(),
        };
        Ok(Box::new(SlackStream {
            client: self.client.clone(),
            base_url: self.base_url.clone(),
            authorization,
            since,
            lookback_days,
            position,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{header_map as headers, test_now as now, FakeUpstream, Reply, Seen};
    use crate::upstream::http_client;
    use domain::auth::{Credentials, OauthToken};
    use domain::catalog::validate_fields;
    use secrecy::SecretString;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    const TOKEN: &str = "xoxb-test0secret0value0never0logged";

    fn token(value: &str) -> AuthenticationRequest {
        AuthenticationRequest::OauthToken(OauthToken {
            access_token: SecretString::from(value.to_owned()),
            refresh_token: None,
            expires_at: None,
        })
    }

    fn ok(body: Value) -> Reply {
        Reply::status(200).json(body)
    }

    fn slack_error(code: &str) -> Reply {
        ok(json!({"ok": false, "error": code}))
    }

    /// A fake that answers the `n`-th call (from 0) of each method with `script(method, n)`.
    async fn scripted(
        script: impl Fn(&str, usize) -> Reply + Send + Sync + 'static,
    ) -> FakeUpstream {
        let calls: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        FakeUpstream::start(move |seen: &Seen| {
            let method = seen.path.trim_start_matches('/').to_owned();
            let n = {
                let mut calls = calls.lock().unwrap();
                let count = calls.entry(method.clone()).or_insert(0);
                *count += 1;
                *count - 1
            };
            script(&method, n)
        })
        .await
    }

    fn msg(ts: &str, text: &str) -> Value {
        json!({"type": "message", "user": "U1", "text": text, "ts": ts})
    }

    /// A small workspace as Slack pages it: users in two pages, three channels (one the bot is
    /// not in), a channel history in two pages with a thread, and a private channel the bot was
    /// removed from between the list and its history.
    fn workspace(method: &str, n: usize) -> Reply {
        match (method, n) {
            ("auth.test", _) => ok(json!({
                "ok": true, "url": "https://acme.slack.com/", "team": "Acme", "user": "syncbot",
                "team_id": "T1", "user_id": "U9", "bot_id": "B1"
            })),
            ("users.list", 0) => ok(json!({
                "ok": true,
                "members": [
                    {"id": "U1", "name": "alice", "real_name": "Alice Liddell",
                     "profile": {"title": "Engineer", "status_text": "lunch", "image_72": "https://a/1.png"},
                     "tz": "Europe/Berlin", "updated": 1700000000},
                    {"id": "U2", "name": "deploybot", "is_bot": true, "profile": {}},
                ],
                "response_metadata": {"next_cursor": "dXNlcjpVMg=="}
            })),
            ("users.list", 1) => ok(json!({
                "ok": true,
                "members": [{"id": "U3", "name": "carol", "deleted": true, "profile": {"display_name": "caz"}}],
                "response_metadata": {"next_cursor": ""}
            })),
            ("conversations.list", 0) => ok(json!({
                "ok": true,
                "channels": [
                    {"id": "C1", "name": "general", "is_member": true, "num_members": 40,
                     "topic": {"value": "Company news", "last_set": 1}, "created": 1690000000},
                    {"id": "C2", "name": "random", "is_member": false},
                    {"id": "G3", "name": "secret", "is_private": true, "is_member": true},
                ],
                "response_metadata": {"next_cursor": ""}
            })),
            ("conversations.history", 0) => ok(json!({
                "ok": true,
                "messages": [
                    {"type": "message", "user": "U1", "text": "third, fixed", "ts": "1700000300.000100",
                     "edited": {"user": "U1", "ts": "1700000400.000000"}},
                    {"type": "message", "user": "U1", "text": "a thread", "ts": "1700000200.000100",
                     "thread_ts": "1700000200.000100", "reply_count": 2, "latest_reply": "1700000260.000100"},
                ],
                "has_more": true,
                "response_metadata": {"next_cursor": "bmV4dF90czox"}
            })),
            ("conversations.replies", 0) => ok(json!({
                "ok": true,
                "messages": [
                    {"type": "message", "user": "U1", "text": "a thread", "ts": "1700000200.000100",
                     "thread_ts": "1700000200.000100", "reply_count": 2},
                    {"type": "message", "user": "U2", "text": "reply one", "ts": "1700000250.000100",
                     "thread_ts": "1700000200.000100", "parent_user_id": "U1"},
                    {"type": "message", "user": "U3", "text": "reply two", "ts": "1700000260.000100",
                     "thread_ts": "1700000200.000100", "parent_user_id": "U1"},
                ],
                "has_more": false
            })),
            ("conversations.history", 1) => ok(json!({
                "ok": true, "messages": [msg("1700000100.000100", "first")], "has_more": false
            })),
            ("conversations.history", 2) => slack_error("not_in_channel"),
            _ => slack_error("unknown_method"),
        }
    }

    const EVERY_ID: [&str; 11] = [
        "U1",
        "U2",
        "U3",
        "C1",
        "C2",
        "G3",
        "C1:1700000300.000100",
        "C1:1700000200.000100",
        "C1:1700000250.000100",
        "C1:1700000260.000100",
        "C1:1700000100.000100",
    ];

    fn source_for(fake: &FakeUpstream) -> SlackSource {
        SlackSource::new(
            http_client().unwrap(),
            BaseUrl::parse(&fake.base_url).unwrap(),
        )
    }

    fn request(since: Option<Value>, resume: Option<Value>) -> StreamRequest {
        StreamRequest {
            auth: token(TOKEN),
            config: Map::new(),
            since,
            resume,
        }
    }

    /// Pages until the end or the first error.
    async fn pages(stream: &mut dyn EntityStream) -> (Vec<EntityPage>, Option<StreamError>) {
        let mut pages = Vec::new();
        loop {
            match stream.next_page().await {
                Ok(Some(page)) => pages.push(page),
                Ok(None) => return (pages, None),
                Err(e) => return (pages, Some(e)),
            }
        }
    }

    fn ids(pages: &[EntityPage]) -> Vec<String> {
        pages
            .iter()
            .flat_map(|p| p.entities.iter().map(|e| e.entity_id.clone()))
            .collect()
    }

    fn every_id() -> Vec<String> {
        EVERY_ID.iter().map(|s| (*s).to_owned()).collect()
    }

    // --- the catalog entry ---

    #[test]
    fn the_catalog_entry_reads_as_documented() {
        let spec = spec();
        assert_eq!((spec.short_name, spec.name), ("slack", "Slack"));
        assert_eq!(
            spec.auth_methods,
            [
                AuthMethod::OauthToken,
                AuthMethod::OauthBrowser,
                AuthMethod::OauthByoc,
                AuthMethod::AuthProvider
            ]
        );
        assert!(spec.auth_fields.is_empty());
        assert_eq!(
            spec.entity_types,
            ["slack_channel", "slack_message", "slack_user"]
        );
        assert!(spec.supports_incremental && !spec.federated_search);
        let oauth = spec.oauth.unwrap();
        assert_eq!(oauth.authorize_url, "https://slack.com/oauth/v2/authorize");
        assert_eq!(oauth.token_url, "https://slack.com/api/oauth.v2.access");
        assert_eq!(
            oauth.scopes,
            [
                "channels:history",
                "channels:read",
                "groups:history",
                "groups:read",
                "users:read"
            ]
        );
        assert_eq!(oauth.user_scopes, ["search:read"]);
        assert_eq!(oauth.scope_separator, ",");
        assert!(!oauth.pkce);
        assert_eq!(oauth.client_auth, ClientAuth::RequestBody);
        assert_eq!(oauth.access_token_pointer, "/access_token");
        assert_eq!(oauth.oauth_type(), "access_only");
    }

    #[test]
    fn the_lookback_is_bounded() {
        let errors = |v: Value| {
            validate_fields(&spec().config_fields, v.as_object().unwrap(), "config")
                .into_iter()
                .map(|e| e.field)
                .collect::<Vec<_>>()
        };
        assert!(errors(json!({})).is_empty());
        assert!(errors(json!({"thread_lookback_days": 0})).is_empty());
        assert_eq!(
            errors(json!({"thread_lookback_days": 366})),
            ["config.thread_lookback_days"]
        );
    }

    // --- classifying answers ---

    fn classify_reply(
        status: u16,
        pairs: &[(&'static str, &str)],
        body: &str,
    ) -> Result<Value, StreamError> {
        classify(
            "conversations.history",
            StatusCode::from_u16(status).unwrap(),
            &headers(pairs),
            body.as_bytes(),
            now(),
        )
        .map_err(StreamError::from)
    }

    #[test]
    fn token_errors_are_rejections_whatever_the_method() {
        for code in [
            "invalid_auth",
            "token_revoked",
            "account_inactive",
            "not_authed",
        ] {
            let body = json!({"ok": false, "error": code}).to_string();
            assert_eq!(
                classify_reply(200, &[], &body),
                Err(StreamError::Rejected(format!(
                    "conversations.history answered {code}"
                ))),
                "{code}"
            );
        }
    }

    #[test]
    fn a_429_waits_for_retry_after() {
        let body = r#"{"ok": false, "error": "ratelimited"}"#;
        assert_eq!(
            classify_reply(429, &[("retry-after", "7")], body),
            Err(StreamError::RateLimited {
                wait: Duration::from_secs(7)
            })
        );
        assert_eq!(
            classify_reply(429, &[], ""),
            Err(StreamError::RateLimited {
                wait: DEFAULT_RATE_LIMIT_WAIT
            })
        );
        // Some gateways answer 200 with the code: still a wait, not a failure.
        assert_eq!(
            classify_reply(200, &[("retry-after", "3")], body),
            Err(StreamError::RateLimited {
                wait: Duration::from_secs(3)
            })
        );
    }

    #[test]
    fn other_errors_fail_with_their_code_and_nothing_else_of_the_body() {
        assert_eq!(
            classify_reply(
                200,
                &[],
                r#"{"ok": false, "error": "missing_scope", "needed": "groups:history", "provided": "channels:history"}"#
            ),
            Err(StreamError::Upstream(
                "conversations.history failed with error missing_scope (needed: groups:history)"
                    .into()
            ))
        );
        assert_eq!(
            classify_reply(200, &[], r#"{"ok": false, "error": "invalid_cursor"}"#),
            Err(StreamError::Upstream(
                "conversations.history failed with error invalid_cursor".into()
            ))
        );
        let odd = format!(r#"{{"ok": false, "error": "Bearer {TOKEN} is odd"}}"#);
        let Err(StreamError::Upstream(m)) = classify_reply(200, &[], &odd) else {
            panic!("an upstream failure");
        };
        assert!(m.ends_with("unknown_error") && !m.contains(TOKEN), "{m}");
    }

    #[test]
    fn outages_and_foreign_bodies_are_told_apart() {
        assert_eq!(
            classify_reply(503, &[], "<html>down</html>"),
            Err(StreamError::Upstream(
                "Slack is unavailable (HTTP 503 on conversations.history)".into()
            ))
        );
        assert_eq!(
            classify_reply(200, &[], r#"{"ok": true, "messages": ["#),
            Err(StreamError::Malformed(
                "the answer to conversations.history is not JSON".into()
            ))
        );
        assert!(matches!(
            classify_reply(200, &[], r#"{"messages": []}"#),
            Err(StreamError::Malformed(_))
        ));
        assert!(matches!(
            classify_reply(404, &[], "Not Found"),
            Err(StreamError::Upstream(m)) if m.contains("HTTP 404")
        ));
        assert_eq!(
            classify_reply(200, &[], r#"{"ok": true, "messages": []}"#),
            Ok(json!({"ok": true, "messages": []}))
        );
    }

    // --- entities ---

    #[test]
    fn timestamps_parse_and_link() {
        let ts = Ts::parse("1700000200.000100").unwrap();
        assert_eq!(ts.link_id(), "p1700000200000100");
        assert_eq!(ts.minus_days(0), "1700000200.000100");
        assert_eq!(ts.minus_days(1), "1699913800.000000");
        assert!(Ts::parse("1700000200.5").unwrap() > Ts::parse("1700000200.000400").unwrap());
        for bad in ["", "abc", "1.2.3", "17000.1234567", "-1.0", "1700000200."] {
            assert_eq!(Ts::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_message_keeps_what_a_reader_searches_for() {
        let message = json!({
            "type": "message", "user": "U2", "text": "reply one\nmore", "ts": "1700000250.000100",
            "thread_ts": "1700000200.000100", "edited": {"user": "U2", "ts": "1700000500.000000"}
        });
        let entity = message_entity("C1", &message, Some("https://acme.slack.com/")).unwrap();
        assert_eq!(entity.entity_type, "slack_message");
        assert_eq!(entity.entity_id, "C1:1700000250.000100");
        assert_eq!(entity.title, "reply one");
        assert_eq!(
            entity.updated_at,
            Utc.timestamp_opt(1_700_000_500, 0).single()
        );
        assert_eq!(
            entity.payload,
            json!({
                "text": "reply one\nmore", "user": "U2", "channel": "C1", "ts": "1700000250.000100",
                "thread_ts": "1700000200.000100", "subtype": null, "edited": true,
                "url": "https://acme.slack.com/archives/C1/p1700000250000100?thread_ts=1700000200.000100&cid=C1"
            })
        );
        assert!(message_entity("C1", &json!({"text": "no ts"}), None).is_err());
    }

    #[test]
    fn volatile_fields_do_not_change_the_hash() {
        let hash = |m: Value| message_entity("C1", &m, None).unwrap().content_hash();
        let parent = json!({"type": "message", "user": "U1", "text": "a thread", "ts": "1700000200.000100",
                            "thread_ts": "1700000200.000100", "reply_count": 2});
        let mut busier = parent.clone();
        busier["reply_count"] = json!(5);
        busier["latest_reply"] = json!("1700000900.000100");
        busier["reactions"] = json!([{"name": "tada", "count": 3}]);
        assert_eq!(hash(parent.clone()), hash(busier));
        let mut edited = parent.clone();
        edited["text"] = json!("a better thread");
        assert_ne!(hash(parent), hash(edited));

        let channel = json!({"id": "C1", "name": "general", "num_members": 40, "topic": {"value": "news", "last_set": 1}});
        let mut grown = channel.clone();
        grown["num_members"] = json!(41);
        grown["topic"]["last_set"] = json!(2);
        let channel_hash = |c: Value| channel_entity(&c, None).unwrap().content_hash();
        assert_eq!(channel_hash(channel), channel_hash(grown));

        let user =
            json!({"id": "U1", "name": "alice", "profile": {"status_text": "lunch"}, "updated": 1});
        let mut back = user.clone();
        back["profile"]["status_text"] = json!("");
        back["updated"] = json!(2);
        let user_hash = |u: Value| user_entity(&u, None).unwrap().content_hash();
        assert_eq!(user_hash(user), user_hash(back));
    }

    // --- the calls ---

    fn stream_at(position: Position, since: Option<Cursor>, lookback_days: i64) -> SlackStream {
        SlackStream {
            client: http_client().unwrap(),
            base_url: BaseUrl::parse("https://slack.com/api").unwrap(),
            authorization: HeaderValue::from_static("Bearer x"),
            since,
            lookback_days,
            position,
        }
    }

    fn params(call: &Call) -> Vec<(&str, &str)> {
        call.params.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    #[test]
    fn each_step_asks_its_method_with_limit_cursor_and_window() {
        let mut position = Position::start();
        position.step = Step::Users {
            cursor: Some("dXNlcjpVMg==".into()),
        };
        let call = stream_at(position.clone(), None, 7).call().unwrap();
        assert_eq!(call.method, "users.list");
        assert_eq!(
            params(&call),
            [("limit", "200"), ("cursor", "dXNlcjpVMg==")]
        );

        position.step = Step::Channels { cursor: None };
        let call = stream_at(position.clone(), None, 7).call().unwrap();
        assert_eq!(call.method, "conversations.list");
        assert_eq!(
            params(&call),
            [
                ("types", "public_channel,private_channel"),
                ("exclude_archived", "false"),
                ("limit", "200")
            ]
        );

        position.channels = VecDeque::from(["C1".to_owned(), "C2".to_owned()]);
        position.step = Step::History { cursor: None };
        let since = Cursor {
            channels: BTreeMap::from([("C1".to_owned(), "1700000300.000100".to_owned())]),
        };
        let call = stream_at(position.clone(), Some(since.clone()), 0)
            .call()
            .unwrap();
        assert_eq!(call.method, "conversations.history");
        assert_eq!(
            params(&call),
            [
                ("channel", "C1"),
                ("oldest", "1700000300.000100"),
                ("limit", "200")
            ]
        );
        // A week of lookback re-reads recent threads for new replies and edits.
        let call = stream_at(position.clone(), Some(since.clone()), 7)
            .call()
            .unwrap();
        assert_eq!(params(&call)[1], ("oldest", "1699395500.000000"));
        // A full run, or a channel the last run did not read, reads the whole history.
        let call = stream_at(position.clone(), None, 7).call().unwrap();
        assert_eq!(params(&call), [("channel", "C1"), ("limit", "200")]);

        position.threads = VecDeque::from(["1700000200.000100".to_owned()]);
        position.step = Step::Replies {
            cursor: Some("bmV4dA==".into()),
        };
        let call = stream_at(position.clone(), Some(since), 7).call().unwrap();
        assert_eq!(call.method, "conversations.replies");
        assert_eq!(
            params(&call),
            [
                ("channel", "C1"),
                ("ts", "1700000200.000100"),
                ("limit", "200"),
                ("cursor", "bmV4dA==")
            ]
        );
        position.step = Step::Done;
        assert_eq!(stream_at(position, None, 7).call(), None);
    }

    // --- a workspace of any size ---

    /// A run through a workspace of `count` channels a user token reads (listed 200 a page),
    /// each with one message, channel `i`'s at second `i`: every answer is built here, no
    /// network. The stream is rebuilt from its checkpoint every `resume_every` calls.
    struct BigRun {
        /// The channels whose history was asked, in order, and whether with `oldest`.
        read: Vec<(String, bool)>,
        /// The largest checkpoint, serialized.
        largest_checkpoint: usize,
        cursor: Cursor,
    }

    fn big_run(ids: &[String], since: Option<Cursor>, resume_every: usize) -> BigRun {
        let index: HashMap<&str, usize> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        let ts = |i: usize| format!("{}.000100", 1_700_000_000 + i);
        let mut read = Vec::new();
        let mut answer = |call: &Call| -> Value {
            let param = |name: &str| {
                call.params
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.clone())
            };
            match call.method {
                "auth.test" => {
                    json!({"ok": true, "url": "https://big.slack.com/", "user_id": "U1"})
                }
                "users.list" => json!({"ok": true, "members": []}),
                "conversations.list" => {
                    let start: usize = param("cursor").map_or(0, |c| c.parse().unwrap());
                    let end = (start + PAGE_LIMIT as usize).min(ids.len());
                    let channels: Vec<Value> = ids[start..end]
                        .iter()
                        .map(|id| json!({"id": id, "name": id.to_lowercase(), "is_member": false}))
                        .collect();
                    let next = if end < ids.len() {
                        end.to_string()
                    } else {
                        String::new()
                    };
                    json!({"ok": true, "channels": channels, "response_metadata": {"next_cursor": next}})
                }
                "conversations.history" => {
                    let channel = param("channel").unwrap();
                    read.push((channel.clone(), param("oldest").is_some()));
                    let i = index[channel.as_str()];
                    json!({"ok": true, "messages": [msg(&ts(i), "hello")], "has_more": false})
                }
                other => panic!("unexpected {other}"),
            }
        };
        let mut stream = stream_at(Position::start(), since.clone(), 7);
        let mut largest_checkpoint = 0;
        let mut calls = 0;
        let long_ids = ids[0].len() > 20;
        while let Some(call) = stream.call() {
            let body = answer(&call);
            stream.advance(&call, Ok(body)).unwrap();
            calls += 1;
            let position = &stream.position;
            let entries = position.latest.len();
            assert!(entries <= CURSOR_CHANNELS);
            assert!(position.channels.len() <= PAGE_LIMIT as usize);
            // Serializing every checkpoint would take minutes: the largest are measured (the
            // cursor so far at a bound, the call before it is trimmed), and every resumed one.
            let near_a_bound = entries == CURSOR_CHANNELS
                || long_ids && {
                    let bytes: usize = position
                        .latest
                        .iter()
                        .map(|(id, ts)| entry_bytes(id, ts))
                        .sum();
                    assert!(bytes <= CURSOR_BYTES);
                    bytes + entry_bytes(&ids[0], &ts(0)) > CURSOR_BYTES
                };
            if near_a_bound || calls % resume_every == 0 {
                let checkpoint = serde_json::to_vec(position).unwrap();
                largest_checkpoint = largest_checkpoint.max(checkpoint.len());
                if calls % resume_every == 0 {
                    // A new invocation: nothing but the checkpoint carries over.
                    stream = SlackStream {
                        client: stream.client.clone(),
                        base_url: stream.base_url.clone(),
                        authorization: stream.authorization.clone(),
                        since: since.clone(),
                        lookback_days: 7,
                        position: serde_json::from_slice(&checkpoint).unwrap(),
                    };
                }
            }
        }
        let cursor = serde_json::from_value(stream.cursor().unwrap()).unwrap();
        BigRun {
            read,
            largest_checkpoint,
            cursor,
        }
    }

    /// The ids of the `kept` most recent of `ids` (the last ones: channel `i` spoke at `i`).
    fn most_recent(ids: &[String], kept: usize) -> Vec<String> {
        let mut recent = ids[ids.len() - kept..].to_vec();
        recent.sort();
        recent
    }

    #[test]
    fn checkpoints_and_the_cursor_stay_small_in_a_workspace_of_20000_channels() {
        const LIMIT: usize = 200 * 1024;
        let ids: Vec<String> = (0..20_000).map(|i| format!("C{i:010}")).collect();
        let full = big_run(&ids, None, 211);
        let in_order: Vec<String> = full.read.iter().map(|(id, _)| id.clone()).collect();
        assert_eq!(
            in_order, ids,
            "every channel read once, in order, across resumes"
        );
        assert!(
            full.largest_checkpoint < LIMIT,
            "checkpoint of {} bytes",
            full.largest_checkpoint
        );
        let cursor = serde_json::to_vec(&full.cursor).unwrap();
        assert!(cursor.len() < LIMIT, "cursor of {} bytes", cursor.len());
        let kept = full.cursor.channels.len();
        assert!(
            (CURSOR_CHANNELS * CURSOR_TRIM_PERCENT / 100..=CURSOR_CHANNELS).contains(&kept),
            "{kept} channels in the cursor"
        );
        assert_eq!(
            full.cursor.channels.keys().cloned().collect::<Vec<_>>(),
            most_recent(&ids, kept),
            "the channels with the most recent activity are kept"
        );
    }

    #[test]
    fn the_next_run_reads_in_full_only_the_channels_the_cursor_dropped() {
        let ids: Vec<String> = (0..6_000).map(|i| format!("C{i:010}")).collect();
        let first = big_run(&ids, None, 97);
        let in_cursor: Vec<String> = first.cursor.channels.keys().cloned().collect();
        assert!(in_cursor.len() < ids.len());

        // The remembered channels are asked from their newest message on, the others in
        // full; none is skipped or read twice across resumes.
        let next = big_run(&ids, Some(first.cursor.clone()), 89);
        let in_order: Vec<String> = next.read.iter().map(|(id, _)| id.clone()).collect();
        assert_eq!(in_order, ids);
        let windowed: Vec<String> = next
            .read
            .iter()
            .filter(|(_, oldest)| *oldest)
            .map(|(id, _)| id.clone())
            .collect();
        assert_eq!(windowed, in_cursor);
        assert!(next.largest_checkpoint < 200 * 1024);
        assert_eq!(next.cursor, first.cursor, "nothing new: the same cursor");
    }

    #[test]
    fn long_channel_ids_are_bounded_by_bytes_too() {
        let ids: Vec<String> = (0..4_000).map(|i| format!("C{i:063}")).collect();
        let run = big_run(&ids, None, 53);
        assert_eq!(run.read.len(), ids.len());
        let cursor = serde_json::to_vec(&run.cursor).unwrap();
        assert!(
            cursor.len() <= CURSOR_BYTES,
            "cursor of {} bytes",
            cursor.len()
        );
        assert!(run.largest_checkpoint < 200 * 1024);
        let kept = run.cursor.channels.len();
        assert!(kept < CURSOR_CHANNELS / 2, "{kept} channels");
        assert_eq!(
            run.cursor.channels.keys().cloned().collect::<Vec<_>>(),
            most_recent(&ids, kept)
        );
    }

    #[test]
    fn trimming_spares_the_channel_being_read() {
        let mut latest: BTreeMap<String, String> = (0..=CURSOR_CHANNELS)
            .map(|i| (format!("C{i:06}"), format!("{}.000100", 1_700_000_000 + i)))
            .collect();
        trim_latest(&mut latest, Some("C000000"));
        assert_eq!(latest.len(), CURSOR_CHANNELS * CURSOR_TRIM_PERCENT / 100);
        assert!(latest.contains_key("C000000"), "spared though the oldest");
        assert!(!latest.contains_key("C000001"));
        assert!(latest.contains_key(&format!("C{CURSOR_CHANNELS:06}")));
        let before = latest.clone();
        trim_latest(&mut latest, None);
        assert_eq!(latest, before, "within bounds: nothing dropped");
    }

    // --- streams on the wire ---

    #[tokio::test]
    async fn a_full_run_pages_through_users_channels_history_and_threads() {
        let fake = scripted(workspace).await;
        let source = source_for(&fake);
        let mut stream = source.open_stream(request(None, None)).unwrap();
        assert!(fake.seen().is_empty(), "opening does no I/O");

        let (pages, error) = pages(stream.as_mut()).await;
        assert_eq!(error, None);
        assert_eq!(ids(&pages), every_id());
        let per_page: Vec<usize> = pages.iter().map(|p| p.entities.len()).collect();
        // One call per page; the last call (the channel the bot left) ends the stream.
        assert_eq!(per_page, [2, 1, 3, 2, 2, 1]);
        assert!(!stream.incremental());
        assert_eq!(
            stream.cursor(),
            Some(json!({"channels": {"C1": "1700000300.000100"}})),
            "the newest top-level message; the private channel the bot left is not in it"
        );

        let seen = fake.seen();
        let methods: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(
            methods,
            [
                "/auth.test",
                "/users.list",
                "/users.list",
                "/conversations.list",
                "/conversations.history",
                "/conversations.replies",
                "/conversations.history",
                "/conversations.history",
            ],
            "no history of the channel the bot is not in"
        );
        let bearer = format!("Bearer {TOKEN}");
        assert!(seen
            .iter()
            .all(|s| s.method == "GET" && s.header("authorization") == Some(bearer.as_str())));

        let all: Vec<&Entity> = pages.iter().flat_map(|p| &p.entities).collect();
        let reply = all
            .iter()
            .find(|e| e.entity_id == "C1:1700000250.000100")
            .unwrap();
        assert_eq!(reply.payload["thread_ts"], "1700000200.000100");
        assert_eq!(reply.payload["user"], "U2");
        let edited = all
            .iter()
            .find(|e| e.entity_id == "C1:1700000300.000100")
            .unwrap();
        assert_eq!(edited.payload["edited"], true);
        assert_eq!(
            edited.payload["url"],
            "https://acme.slack.com/archives/C1/p1700000300000100"
        );
        let alice = all.iter().find(|e| e.entity_id == "U1").unwrap();
        assert_eq!(alice.title, "Alice Liddell");
        assert_eq!(alice.payload["title"], "Engineer");
        let general = all.iter().find(|e| e.entity_id == "C1").unwrap();
        assert_eq!(general.title, "#general");
        assert_eq!(general.payload["topic"], "Company news");
        assert_eq!(general.payload["url"], "https://acme.slack.com/archives/C1");
    }

    #[tokio::test]
    async fn a_resumed_stream_goes_on_after_the_checkpoint() {
        let fake = scripted(workspace).await;
        let source = source_for(&fake);
        let mut first = source.open_stream(request(None, None)).unwrap();
        let mut before = Vec::new();
        for _ in 0..4 {
            before.push(first.next_page().await.unwrap().unwrap());
        }
        let checkpoint = before.last().unwrap().checkpoint.clone();
        drop(first);

        // A new invocation: the fake answers the calls after the fourth page's.
        let mut resumed = source.open_stream(request(None, Some(checkpoint))).unwrap();
        let (after, error) = pages(resumed.as_mut()).await;
        assert_eq!(error, None);
        let mut all = ids(&before);
        all.extend(ids(&after));
        assert_eq!(all, every_id(), "nothing skipped, nothing repeated");
        assert_eq!(
            resumed.cursor(),
            Some(json!({"channels": {"C1": "1700000300.000100"}})),
            "the cursor carries over the checkpoint"
        );
        assert_eq!(fake.seen().len(), 8, "no call repeated");

        let garbage = source.open_stream(request(None, Some(json!({"read": "nowhere"}))));
        assert!(matches!(garbage, Err(StreamError::Malformed(_))));
    }

    #[tokio::test]
    async fn a_rate_limited_call_is_retried_by_the_resumed_stream() {
        let fake = scripted(|method, n| match (method, n) {
            ("conversations.history", 0) => Reply::status(429)
                .header("retry-after", "1")
                .json(json!({"ok": false, "error": "ratelimited"})),
            ("conversations.history", n) => workspace(method, n - 1),
            _ => workspace(method, n),
        })
        .await;
        let source = source_for(&fake);
        let mut stream = source.open_stream(request(None, None)).unwrap();
        let (before, error) = pages(stream.as_mut()).await;
        assert_eq!(
            error,
            Some(StreamError::RateLimited {
                wait: Duration::from_secs(1)
            })
        );
        let checkpoint = before.last().unwrap().checkpoint.clone();
        let mut resumed = source.open_stream(request(None, Some(checkpoint))).unwrap();
        let (after, error) = pages(resumed.as_mut()).await;
        assert_eq!(error, None);
        let mut all = ids(&before);
        all.extend(ids(&after));
        assert_eq!(all, every_id());
    }

    #[tokio::test]
    async fn a_revoked_token_stops_the_run_as_rejected() {
        let fake = scripted(|method, n| match method {
            "users.list" if n == 1 => slack_error("token_revoked"),
            _ => workspace(method, n),
        })
        .await;
        let mut stream = source_for(&fake).open_stream(request(None, None)).unwrap();
        let (pages, error) = pages(stream.as_mut()).await;
        assert_eq!(pages.len(), 1);
        assert_eq!(
            error,
            Some(StreamError::Rejected(
                "users.list answered token_revoked".into()
            ))
        );
    }

    #[tokio::test]
    async fn a_malformed_page_fails_without_quoting_it() {
        let fake = scripted(|method, n| match method {
            "conversations.history" => Reply::status(200)
                .header("content-type", "application/json")
                .text(&format!(r#"{{"ok": true, "messages": [{{"text": "{TOKEN}"#)),
            _ => workspace(method, n),
        })
        .await;
        let mut stream = source_for(&fake).open_stream(request(None, None)).unwrap();
        let (_, error) = pages(stream.as_mut()).await;
        let Some(StreamError::Malformed(m)) = error else {
            panic!("malformed, got {error:?}");
        };
        assert_eq!(m, "the answer to conversations.history is not JSON");

        let fake = scripted(|method, n| match method {
            "users.list" => ok(json!({"ok": true, "users": []})),
            _ => workspace(method, n),
        })
        .await;
        let mut stream = source_for(&fake).open_stream(request(None, None)).unwrap();
        assert_eq!(
            pages(stream.as_mut()).await.1,
            Some(StreamError::Malformed(
                "the answer to users.list has no members list".into()
            ))
        );
    }

    #[tokio::test]
    async fn an_incremental_run_moves_the_cursor_only_where_there_is_news() {
        // The last run saw C1 up to ...300 and G3 up to ...050; this run finds one new message
        // in C1 (history is newest first) and nothing in G3.
        let fake = scripted(|method, n| match (method, n) {
            ("conversations.history", 0) => ok(json!({
                "ok": true,
                "messages": [msg("1700000900.000100", "news"), msg("1700000300.000100", "third")],
                "has_more": false
            })),
            ("conversations.history", 1) => {
                ok(json!({"ok": true, "messages": [], "has_more": false}))
            }
            _ => workspace(method, n),
        })
        .await;
        let since = json!({"channels": {"C1": "1700000300.000100", "G3": "1700000050.000100", "C9": "1600000000.000100"}});
        let mut stream = source_for(&fake)
            .open_stream(request(Some(since), None))
            .unwrap();
        let (pages, error) = pages(stream.as_mut()).await;
        assert_eq!(error, None);
        assert!(stream.incremental());
        assert!(ids(&pages).contains(&"C1:1700000900.000100".to_owned()));
        assert_eq!(
            stream.cursor(),
            Some(json!({"channels": {"C1": "1700000900.000100", "G3": "1700000050.000100"}})),
            "a channel no longer listed leaves the cursor"
        );

        // A cursor of another shape runs a full sync.
        let stream = source_for(&fake)
            .open_stream(request(Some(json!("v0")), None))
            .unwrap();
        assert!(!stream.incremental());
    }

    // --- the credential check ---

    #[tokio::test]
    async fn the_check_is_auth_test_with_the_token_as_a_bearer() {
        let fake = scripted(workspace).await;
        let source = source_for(&fake);
        assert_eq!(
            source.check_credentials(&token(TOKEN), &Map::new()).await,
            Ok(())
        );
        let seen = fake.seen();
        assert_eq!(seen[0].path, "/auth.test");
        let bearer = format!("Bearer {TOKEN}");
        assert_eq!(seen[0].header("authorization"), Some(bearer.as_str()));
    }

    #[tokio::test]
    async fn the_check_tells_a_bad_token_from_a_busy_or_broken_slack() {
        let check = |reply: Reply| async move {
            let fake = scripted(move |_, _| reply.clone()).await;
            source_for(&fake)
                .check_credentials(&token(TOKEN), &Map::new())
                .await
        };
        assert_eq!(
            check(slack_error("invalid_auth")).await,
            Err(CheckError::Rejected(
                "auth.test answered invalid_auth".into()
            ))
        );
        assert_eq!(
            check(Reply::status(429).header("retry-after", "12")).await,
            Err(CheckError::RateLimited {
                retry_after: Some(Duration::from_secs(12))
            })
        );
        assert!(matches!(
            check(Reply::status(502).text("Bad Gateway")).await,
            Err(CheckError::Unavailable(m)) if !m.contains(TOKEN)
        ));

        let key = json!({"api_key": TOKEN});
        let direct =
            AuthenticationRequest::Direct(Credentials::new(key.as_object().unwrap().clone()));
        let fake = scripted(workspace).await;
        let Err(CheckError::Rejected(m)) = source_for(&fake)
            .check_credentials(&direct, &Map::new())
            .await
        else {
            panic!("rejected");
        };
        assert!(m.contains("oauth_token") && !m.contains(TOKEN), "{m}");
        assert!(fake.seen().is_empty());
    }
}

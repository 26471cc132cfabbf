//! The entity stream: where a run is (its `Checkpoint` and the `Step` in it), the next run's
//! `Cursor` and its bounds, the call each step makes (and sends) and what its answer yields.

use super::api::classify;
use super::api::{Call, Failure};
use super::entities::{channel_entity, entity_ts, message_entity, message_ts, user_entity, Ts};
use crate::base_url::BaseUrl;
use crate::upstream::{fetch, PAGE_BODY_LIMIT};
use async_trait::async_trait;
use chrono::Utc;
use domain::entity::Entity;
use domain::stream::{EntityPage, EntityStream, StreamError};
use reqwest::header::HeaderValue;
use reqwest::header::AUTHORIZATION;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};

/// Items asked per call; Slack advises no more than 200 and may answer fewer.
pub(super) const PAGE_LIMIT: u32 = 200;
/// The most channels a cursor remembers (the next run's `oldest` per channel), and the most
/// bytes their entries take as JSON whatever the ids' length: the cursor is saved on one
/// DynamoDB item and the checkpoint, which carries it, on another (400 KB each). When a run
/// outgrows either bound the channels with the oldest newest message are dropped, down to
/// [`CURSOR_TRIM_PERCENT`] of both so that trimming is rare. A channel missing from the cursor
/// is simply read in full by the next run: correct, only slower.
pub(super) const CURSOR_CHANNELS: usize = 5_000;
pub(super) const CURSOR_BYTES: usize = 170 * 1024;
pub(super) const CURSOR_TRIM_PERCENT: usize = 90;

/// The newest top-level message read per channel: what the next run starts from. Bounded by
/// [`CURSOR_CHANNELS`] and [`CURSOR_BYTES`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Cursor {
    pub channels: BTreeMap<String, String>,
}

/// What the next call of the stream reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "read", rename_all = "snake_case")]
pub(super) enum Step {
    /// `auth.test`: the workspace's address and the kind of token.
    Identity,
    Users {
        cursor: Option<String>,
    },
    Channels {
        cursor: Option<String>,
    },
    /// The history of the first of [`Checkpoint::channels`].
    History {
        cursor: Option<String>,
    },
    /// The replies of the first of [`Checkpoint::threads`].
    Replies {
        cursor: Option<String>,
    },
    Done,
}

/// Where a run is: the checkpoint after each page. Its size is bounded whatever the
/// workspace's: at most one list page of channels, one history page of threads, and the next
/// cursor so far (bounded by [`trim_latest`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Checkpoint {
    pub step: Step,
    /// `https://<workspace>.slack.com/`, from `auth.test`, for links.
    pub team_url: Option<String>,
    /// A user token reads every public channel; a bot token only those it is a member of.
    pub reads_public: bool,
    /// Readable channels of the current `conversations.list` page whose messages are still to
    /// read, the one being read first.
    pub channels: VecDeque<String>,
    /// Where `conversations.list` goes on once those are read; `None` after its last page. (A
    /// checkpoint of the version that listed every channel first has none: the channels it
    /// holds are read, then the list goes on from its step, if it was still listing.)
    #[serde(default)]
    pub channels_next: Option<String>,
    /// Thread parents (ts) of the history page just read whose replies are still to read.
    pub threads: VecDeque<String>,
    /// Where the current channel's history goes on once its threads are read.
    pub history_next: Option<String>,
    /// The next run's cursor so far.
    pub latest: BTreeMap<String, String>,
}

impl Checkpoint {
    pub fn start() -> Self {
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
pub(super) fn entry_bytes(id: &str, ts: &str) -> usize {
    id.len() + ts.len() + 6
}

/// Keeps `latest` within [`CURSOR_CHANNELS`] entries and [`CURSOR_BYTES`]: once over either, it
/// drops the channels with the oldest newest message (an unreadable ts first) until under
/// [`CURSOR_TRIM_PERCENT`] of both; `spare` is never dropped. A dropped channel is read in full
/// next time, which is correct, only slower.
pub(super) fn trim_latest(latest: &mut BTreeMap<String, String>, spare: Option<&str>) {
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

pub(super) struct SlackStream {
    pub client: reqwest::Client,
    pub base_url: BaseUrl,
    pub authorization: HeaderValue,
    /// The last completed run's cursor; `None` for a full run.
    pub since: Option<Cursor>,
    pub lookback_days: i64,
    pub position: Checkpoint,
}

impl SlackStream {
    /// The call the current step makes.
    pub fn call(&self) -> Option<Call> {
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

    /// Applies one answer of the current step: the page's entities, and the next step.
    pub fn advance(&mut self, call: &Call, answer: Result<Value, Failure>) -> PageResult {
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

impl SlackStream {
    pub async fn send(&self, call: &Call) -> Result<Value, Failure> {
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
}

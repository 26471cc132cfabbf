//! A fake of Slack's Web API on 127.0.0.1, shaped after the public method reference: methods at
//! `/<method>` (GET query or POST form), the token as `Authorization: Bearer` (or a `token`
//! argument), errors as HTTP 200 with `{"ok": false, "error": "<code>"}`, rate limits as HTTP 429
//! with `Retry-After`, and cursor pagination through `response_metadata.next_cursor` with `limit`.
//!
//! Methods: `auth.test`, `users.list`, `conversations.list`, `conversations.history` (newest
//! first, `oldest`/`latest`/`inclusive`), `conversations.replies` (the parent first on every
//! page, then the replies oldest first). Like a bot token, the token reads only the channels the
//! bot is a member of (`not_in_channel` otherwise); switched to a user token's answers, it reads
//! every public channel too, and `auth.test` names no bot.
//!
//! The workspace sits behind a mutex a test changes between syncs (post, reply, edit, delete,
//! add and remove channels and users, invite the bot or remove it); switches make the next
//! answers of a method rate-limited or malformed, or the token revoked. The fake remembers each
//! call's method and arguments, and whether the token came as a bearer header, never the token.

use crate::server::{FakeRequest, FakeResponse, FakeServer, Handler};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// The token the fake accepts under `make fakes`.
pub const DEMO_TOKEN: &str = "xoxb-0000000000-0000000000000-fakeDemoSlackToken";
/// The workspace's address, as `auth.test` answers it.
pub const TEAM_URL: &str = "https://fake-workspace.slack.com/";
const TEAM_ID: &str = "T0FAKE";
/// The fake's clock: the first post's second, and the seconds between two posts.
const EPOCH: i64 = 1_760_000_000;
const TICK: i64 = 60;
/// Slack's default `limit`, and the most it answers whatever is asked.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: String,
    pub name: String,
    pub real_name: String,
    pub title: String,
    pub is_bot: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    pub id: String,
    pub name: String,
    pub is_private: bool,
    /// Whether the bot was invited: only then does it read the history.
    pub is_member: bool,
    pub topic: String,
    pub created: i64,
    /// Top-level messages, oldest first.
    pub messages: Vec<Message>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub ts: String,
    pub user: String,
    pub text: String,
    /// When it was last edited.
    pub edited_ts: Option<String>,
    /// Thread replies, oldest first.
    pub replies: Vec<Message>,
}

/// One call the fake received: the method and its arguments, without the token.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: String,
    pub params: BTreeMap<String, String>,
    /// The HTTP method: `GET` or `POST`.
    pub http_method: String,
    /// Whether the token came as `Authorization: Bearer` (not as a `token` argument).
    pub bearer: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Switch {
    RateLimited {
        retry_after_secs: u64,
    },
    Malformed,
    /// An `ok` answer of this body instead of the method's (a page of the wrong shape).
    Body(Value),
}

#[derive(Debug)]
struct State {
    valid_token: String,
    revoked: bool,
    /// The token answers as a user token: `auth.test` names no bot, and every public
    /// channel's history is readable without membership.
    user_token: bool,
    clock: i64,
    /// The most items one page holds, whatever `limit` asks (Slack may answer fewer).
    page_size: usize,
    users: Vec<User>,
    channels: Vec<Channel>,
    /// Where each channel is in `channels`, so that a workspace of many thousands answers
    /// quickly (rebuilt whenever a channel is added or removed).
    channel_at: HashMap<String, usize>,
    /// Answers calls of a method get instead of the real one, in order: each after its count
    /// of calls answered normally.
    queued: Vec<(String, usize, Switch)>,
    calls: Vec<Call>,
}

impl State {
    /// An empty workspace that accepts `valid_token`.
    fn empty(valid_token: &str) -> Self {
        Self {
            valid_token: valid_token.to_owned(),
            revoked: false,
            user_token: false,
            clock: EPOCH,
            page_size: MAX_LIMIT,
            users: Vec::new(),
            channels: Vec::new(),
            channel_at: HashMap::new(),
            queued: Vec::new(),
            calls: Vec::new(),
        }
    }
}

impl State {
    fn tick(&mut self) -> String {
        self.clock += TICK;
        format!("{}.000100", self.clock)
    }

    fn position(&self, id: &str) -> Option<usize> {
        match self.channel_at.get(id) {
            Some(&i) if self.channels.get(i).is_some_and(|c| c.id == id) => Some(i),
            _ => self.channels.iter().position(|c| c.id == id),
        }
    }

    fn channel(&self, id: &str) -> Option<&Channel> {
        self.position(id).map(|i| &self.channels[i])
    }

    fn channel_mut(&mut self, id: &str) -> &mut Channel {
        let i = self
            .position(id)
            .unwrap_or_else(|| panic!("the fake has no channel {id}"));
        &mut self.channels[i]
    }

    fn add_channel(&mut self, channel: Channel) {
        self.channel_at
            .insert(channel.id.clone(), self.channels.len());
        self.channels.push(channel);
    }
}

pub struct FakeSlack {
    /// e.g. `http://127.0.0.1:54321`: the value for `SOURCE_SLACK_BASE_URL`.
    pub base_url: String,
    state: Arc<Mutex<State>>,
    _server: FakeServer,
}

impl FakeSlack {
    /// Serves an empty workspace on a random port of 127.0.0.1 until dropped.
    pub async fn start(valid_token: &str) -> FakeSlack {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), valid_token)
            .await
            .expect("bind the fake Slack")
    }

    /// Serves an empty workspace on `addr`.
    pub async fn start_on(addr: SocketAddr, valid_token: &str) -> std::io::Result<FakeSlack> {
        let state = Arc::new(Mutex::new(State::empty(valid_token)));
        let shared = Arc::clone(&state);
        let handler: Handler =
            Arc::new(move |request| answer(&mut shared.lock().expect("slack lock"), request));
        let server = FakeServer::start_on(addr, handler).await?;
        Ok(FakeSlack {
            base_url: server.base_url.clone(),
            state,
            _server: server,
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("slack lock")
    }

    /// The most items a page holds, so that a small workspace spans several pages.
    pub fn set_page_size(&self, size: usize) {
        self.state().page_size = size.clamp(1, MAX_LIMIT);
    }

    pub fn add_user(&self, id: &str, name: &str, real_name: &str) {
        self.state().users.push(User {
            id: id.into(),
            name: name.into(),
            real_name: real_name.into(),
            title: String::new(),
            is_bot: false,
        });
    }

    /// A user's profile title (e.g. "Engineering lead").
    pub fn set_title(&self, user: &str, title: &str) {
        let mut state = self.state();
        let user = state
            .users
            .iter_mut()
            .find(|u| u.id == user)
            .unwrap_or_else(|| panic!("the fake has no user {user}"));
        user.title = title.into();
    }

    pub fn remove_user(&self, id: &str) {
        self.state().users.retain(|u| u.id != id);
    }

    pub fn add_channel(&self, id: &str, name: &str, is_private: bool, is_member: bool) {
        let mut state = self.state();
        let created = state.clock;
        state.add_channel(Channel {
            id: id.into(),
            name: name.into(),
            is_private,
            is_member,
            topic: String::new(),
            created,
            messages: Vec::new(),
        });
    }

    pub fn set_topic(&self, channel: &str, topic: &str) {
        self.state().channel_mut(channel).topic = topic.into();
    }

    /// Invites the bot to a channel (`true`) or removes it (`false`): only a member reads the
    /// history.
    pub fn set_member(&self, channel: &str, is_member: bool) {
        self.state().channel_mut(channel).is_member = is_member;
    }

    /// A large workspace at once: public channels `ids`, each with one message of `user`,
    /// posted in the order given (the later a channel, the newer its message); answers the
    /// messages' ts, in that order.
    pub fn add_channels_with_a_message(
        &self,
        ids: &[String],
        is_member: bool,
        user: &str,
        text: &str,
    ) -> Vec<String> {
        let mut state = self.state();
        let mut stamps = Vec::with_capacity(ids.len());
        for id in ids {
            let created = state.clock;
            let ts = state.tick();
            state.add_channel(Channel {
                id: id.clone(),
                name: id.to_lowercase(),
                is_private: false,
                is_member,
                topic: String::new(),
                created,
                messages: vec![Message {
                    ts: ts.clone(),
                    user: user.into(),
                    text: text.into(),
                    edited_ts: None,
                    replies: Vec::new(),
                }],
            });
            stamps.push(ts);
        }
        stamps
    }

    /// Deletes a channel and everything in it.
    pub fn remove_channel(&self, id: &str) {
        let mut state = self.state();
        state.channels.retain(|c| c.id != id);
        state.channel_at = state
            .channels
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.clone(), i))
            .collect();
    }

    /// Posts a top-level message; answers its ts.
    pub fn post(&self, channel: &str, user: &str, text: &str) -> String {
        let mut state = self.state();
        let ts = state.tick();
        state.channel_mut(channel).messages.push(Message {
            ts: ts.clone(),
            user: user.into(),
            text: text.into(),
            edited_ts: None,
            replies: Vec::new(),
        });
        ts
    }

    /// Replies in the thread of `parent`; answers the reply's ts.
    pub fn reply(&self, channel: &str, parent: &str, user: &str, text: &str) -> String {
        let mut state = self.state();
        let ts = state.tick();
        let message = state
            .channel_mut(channel)
            .messages
            .iter_mut()
            .find(|m| m.ts == parent)
            .unwrap_or_else(|| panic!("no message {parent} in {channel}"));
        message.replies.push(Message {
            ts: ts.clone(),
            user: user.into(),
            text: text.into(),
            edited_ts: None,
            replies: Vec::new(),
        });
        ts
    }

    /// Edits a message or a reply, as Slack shows it: new text and an `edited` mark.
    pub fn edit(&self, channel: &str, ts: &str, text: &str) {
        let mut state = self.state();
        let edited = state.tick();
        let channel = state.channel_mut(channel);
        let target = find_mut(&mut channel.messages, ts)
            .unwrap_or_else(|| panic!("no message {ts} in {}", channel.id));
        target.text = text.into();
        target.edited_ts = Some(edited);
    }

    /// Deletes a message (with its thread) or a reply.
    pub fn delete(&self, channel: &str, ts: &str) {
        let mut state = self.state();
        let channel = state.channel_mut(channel);
        channel.messages.retain(|m| m.ts != ts);
        for message in &mut channel.messages {
            message.replies.retain(|r| r.ts != ts);
        }
    }

    /// The next call of `method` answers HTTP 429 with `Retry-After: <seconds>`, once.
    pub fn rate_limit_next(&self, method: &str, retry_after_secs: u64) {
        self.rate_limit_after(method, 0, retry_after_secs);
    }

    /// The call of `method` after the next `answered` ones answers HTTP 429 with
    /// `Retry-After: <seconds>`, once.
    pub fn rate_limit_after(&self, method: &str, answered: usize, retry_after_secs: u64) {
        self.state().queued.push((
            method.into(),
            answered,
            Switch::RateLimited { retry_after_secs },
        ));
    }

    /// The next call of `method` answers a cut-off JSON body, once.
    pub fn malform_next(&self, method: &str) {
        self.state()
            .queued
            .push((method.into(), 0, Switch::Malformed));
    }

    /// The next call of `method` answers `body` (with `"ok": true`) instead of its answer, as a
    /// page of the wrong shape, once.
    pub fn malform_next_with(&self, method: &str, body: Value) {
        self.state()
            .queued
            .push((method.into(), 0, Switch::Body(body)));
    }

    /// From now on the valid token answers `token_revoked`.
    pub fn revoke_token(&self) {
        self.state().revoked = true;
    }

    /// From now on the token answers as a user token (`xoxp-`): `auth.test` names no bot, and
    /// it reads the history of every public channel, member or not.
    pub fn answer_as_user_token(&self) {
        self.state().user_token = true;
    }

    /// Every call received, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    /// The arguments of every call of `method`, in order.
    pub fn calls_of(&self, method: &str) -> Vec<BTreeMap<String, String>> {
        self.state()
            .calls
            .iter()
            .filter(|c| c.method == method)
            .map(|c| c.params.clone())
            .collect()
    }

    /// A small workspace for `make fakes`: three people, a bot, two channels the bot reads
    /// (one private) and one it does not, messages with a thread and an edit.
    pub fn seed_demo_workspace(&self) {
        self.add_user("U0ALICE", "alice", "Alice Liddell");
        self.add_user("U0BOB", "bob", "Bob Builder");
        self.add_user("U0CAROL", "carol", "Carol Danvers");
        {
            let mut state = self.state();
            state.users[0].title = "Engineering lead".into();
            state.users.push(User {
                id: "U0BOT".into(),
                name: "syncbot".into(),
                real_name: "Sync Bot".into(),
                title: String::new(),
                is_bot: true,
            });
        }
        self.add_channel("C0GENERAL", "general", false, true);
        self.set_topic("C0GENERAL", "Company-wide announcements");
        self.add_channel("C0RANDOM", "random", false, false);
        self.add_channel("G0LEADS", "leads", true, true);
        let launch = self.post("C0GENERAL", "U0ALICE", "The launch is moved to Thursday.");
        self.reply(
            "C0GENERAL",
            &launch,
            "U0BOB",
            "Thanks, I'll update the plan.",
        );
        self.reply(
            "C0GENERAL",
            &launch,
            "U0CAROL",
            "Does that include the docs?",
        );
        let lunch = self.post("C0GENERAL", "U0BOB", "Team lunch at noon, room 4");
        self.edit("C0GENERAL", &lunch, "Team lunch at 12:30, room 4");
        self.post("C0RANDOM", "U0CAROL", "Anyone seen my umbrella?");
        self.post(
            "G0LEADS",
            "U0ALICE",
            "Hiring plan draft is in the shared folder.",
        );
    }
}

fn find_mut<'a>(messages: &'a mut [Message], ts: &str) -> Option<&'a mut Message> {
    for message in messages.iter_mut() {
        if message.ts == ts {
            return Some(message);
        }
        if let Some(reply) = message.replies.iter_mut().find(|r| r.ts == ts) {
            return Some(reply);
        }
    }
    None
}

fn ok(mut body: Value) -> FakeResponse {
    body["ok"] = json!(true);
    FakeResponse::json(200, &body)
}

/// Slack's error answer: HTTP 200 with the code.
fn error(code: &str) -> FakeResponse {
    FakeResponse::json(200, &json!({"ok": false, "error": code}))
}

fn answer(state: &mut State, request: &FakeRequest) -> FakeResponse {
    let method = request.path.trim_start_matches('/').to_owned();
    let mut params = request.query.clone();
    if request.method == "POST" {
        params.extend(request.form());
    }
    let bearer = request.bearer().map(str::to_owned);
    let by_header = bearer.is_some();
    let token = bearer.or_else(|| params.get("token").cloned());
    params.remove("token");
    state.calls.push(Call {
        method: method.clone(),
        params: params.clone(),
        http_method: request.method.clone(),
        bearer: by_header,
    });

    let due = match state.queued.iter_mut().find(|(m, _, _)| *m == method) {
        Some((_, answered, _)) if *answered > 0 => {
            *answered -= 1;
            None
        }
        Some(_) => state.queued.iter().position(|(m, _, _)| *m == method),
        None => None,
    };
    if let Some(i) = due {
        let (_, _, switch) = state.queued.remove(i);
        return match switch {
            Switch::RateLimited { retry_after_secs } => {
                FakeResponse::json(429, &json!({"ok": false, "error": "ratelimited"}))
                    .with_header("retry-after", retry_after_secs)
            }
            Switch::Malformed => FakeResponse::text(
                200,
                "application/json; charset=utf-8",
                r#"{"ok": true, "messages": [{"type": "message", "text": "cut of"#,
            ),
            Switch::Body(body) => ok(body),
        };
    }

    match token.as_deref() {
        None | Some("") => return error("not_authed"),
        Some(t) if t != state.valid_token => return error("invalid_auth"),
        Some(_) if state.revoked => return error("token_revoked"),
        Some(_) => {}
    }

    match method.as_str() {
        "auth.test" if state.user_token => ok(json!({
            "url": TEAM_URL,
            "team": "Fake Workspace",
            "user": "alice",
            "team_id": TEAM_ID,
            "user_id": "U0ALICE",
            "is_enterprise_install": false,
        })),
        "auth.test" => ok(json!({
            "url": TEAM_URL,
            "team": "Fake Workspace",
            "user": "syncbot",
            "team_id": TEAM_ID,
            "user_id": "U0BOT",
            "bot_id": "B0BOT",
            "is_enterprise_install": false,
        })),
        "users.list" => users_list(state, &params),
        "conversations.list" => conversations_list(state, &params),
        "conversations.history" => history(state, &params),
        "conversations.replies" => replies(state, &params),
        _ => error("unknown_method"),
    }
}

/// One page of `total` items from the `cursor` argument: the index range and the next cursor
/// (`""` on the last page), or `invalid_cursor`. Cursors are opaque base64, as Slack's are.
fn page(
    state: &State,
    params: &BTreeMap<String, String>,
    kind: &str,
    total: usize,
) -> Result<(std::ops::Range<usize>, String), FakeResponse> {
    let limit = match params.get("limit").map(|l| l.parse::<usize>()) {
        None => DEFAULT_LIMIT,
        Some(Ok(0)) => DEFAULT_LIMIT,
        Some(Ok(n)) => n.min(MAX_LIMIT),
        Some(Err(_)) => return Err(error("invalid_limit")),
    }
    .min(state.page_size);
    let start = match params.get("cursor").filter(|c| !c.is_empty()) {
        None => 0,
        Some(cursor) => BASE64
            .decode(cursor)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.strip_prefix(&format!("{kind}:"))
                    .and_then(|n| n.parse().ok())
            })
            .filter(|n| *n <= total)
            .ok_or_else(|| error("invalid_cursor"))?,
    };
    let end = (start + limit).min(total);
    let next = if end < total {
        BASE64.encode(format!("{kind}:{end}"))
    } else {
        String::new()
    };
    Ok((start..end, next))
}

fn users_list(state: &State, params: &BTreeMap<String, String>) -> FakeResponse {
    let (range, next) = match page(state, params, "user", state.users.len()) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let members: Vec<Value> = state.users[range]
        .iter()
        .map(|u| {
            json!({
                "id": u.id,
                "team_id": TEAM_ID,
                "name": u.name,
                "deleted": false,
                "real_name": u.real_name,
                "tz": "Europe/Berlin",
                "tz_label": "Central European Time",
                "tz_offset": 3600,
                "profile": {
                    "title": u.title,
                    "real_name": u.real_name,
                    "display_name": u.name,
                    "status_text": "",
                    "status_emoji": "",
                    "image_72": format!("https://avatars.slack-edge.com/{}_72.png", u.id),
                },
                "is_admin": false,
                "is_bot": u.is_bot,
                // Moves with every profile or status change; a sync must not keep it.
                "updated": state.clock,
            })
        })
        .collect();
    ok(json!({
        "members": members,
        "cache_ts": state.clock,
        "response_metadata": {"next_cursor": next},
    }))
}

fn conversations_list(state: &State, params: &BTreeMap<String, String>) -> FakeResponse {
    let types = params
        .get("types")
        .cloned()
        .unwrap_or_else(|| "public_channel".into());
    let asked = |kind: &str| types.split(',').any(|t| t.trim() == kind);
    let (public, private) = (asked("public_channel"), asked("private_channel"));
    let wanted: Vec<&Channel> = state
        .channels
        .iter()
        .filter(|c| if c.is_private { private } else { public })
        .collect();
    let (range, next) = match page(state, params, "channel", wanted.len()) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let channels: Vec<Value> = wanted[range]
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "name": c.name,
                "name_normalized": c.name,
                "is_channel": !c.is_private,
                "is_group": false,
                "is_im": false,
                "is_mpim": false,
                "is_private": c.is_private,
                "created": c.created,
                "is_archived": false,
                "is_general": c.name == "general",
                "is_shared": false,
                "is_org_shared": false,
                "is_member": c.is_member,
                "creator": "U0ALICE",
                "updated": state.clock * 1000,
                "num_members": 3 + c.messages.len(),
                "topic": {"value": c.topic, "creator": "U0ALICE", "last_set": c.created},
                "purpose": {"value": "", "creator": "", "last_set": 0},
                "previous_names": [],
            })
        })
        .collect();
    ok(json!({
        "channels": channels,
        "response_metadata": {"next_cursor": next},
    }))
}

/// The channel named by `channel`, if this token reads it.
fn readable<'a>(
    state: &'a State,
    params: &BTreeMap<String, String>,
) -> Result<&'a Channel, FakeResponse> {
    let id = params.get("channel").map(String::as_str).unwrap_or("");
    let channel = state
        .channel(id)
        .ok_or_else(|| error("channel_not_found"))?;
    if channel.is_member || (state.user_token && !channel.is_private) {
        Ok(channel)
    } else {
        Err(error("not_in_channel"))
    }
}

/// A ts (`<seconds>.<microseconds>`) as numbers, so bounds of any width compare right.
fn ts_number(ts: &str) -> (i64, i64) {
    let (seconds, fraction) = ts.split_once('.').unwrap_or((ts, ""));
    let micros: String = fraction.chars().take(6).collect();
    let micros = format!("{micros:0<6}");
    (seconds.parse().unwrap_or(0), micros.parse().unwrap_or(0))
}

fn history(state: &State, params: &BTreeMap<String, String>) -> FakeResponse {
    let channel = match readable(state, params) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let inclusive = matches!(
        params.get("inclusive").map(String::as_str),
        Some("true" | "1")
    );
    let oldest = params.get("oldest").map(|t| ts_number(t));
    let latest = params.get("latest").map(|t| ts_number(t));
    let in_window = |m: &&Message| {
        let ts = ts_number(&m.ts);
        let after = oldest.is_none_or(|o| ts > o || (inclusive && ts == o));
        let before = latest.is_none_or(|l| ts < l || (inclusive && ts == l));
        after && before
    };
    let newest_first: Vec<&Message> = channel.messages.iter().rev().filter(in_window).collect();
    let (range, next) = match page(state, params, "next_ts", newest_first.len()) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let messages: Vec<Value> = newest_first[range]
        .iter()
        .map(|m| message_json(m, None))
        .collect();
    let mut body = json!({
        "messages": messages,
        "has_more": !next.is_empty(),
        "pin_count": 0,
        "channel_actions_ts": null,
        "channel_actions_count": 0,
    });
    if !next.is_empty() {
        body["response_metadata"] = json!({"next_cursor": next});
    }
    ok(body)
}

fn replies(state: &State, params: &BTreeMap<String, String>) -> FakeResponse {
    let channel = match readable(state, params) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let ts = params.get("ts").map(String::as_str).unwrap_or("");
    let Some(parent) = channel.messages.iter().find(|m| m.ts == ts) else {
        return error("thread_not_found");
    };
    let (range, next) = match page(state, params, "next_reply", parent.replies.len()) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let mut messages = vec![message_json(parent, None)];
    messages.extend(
        parent.replies[range]
            .iter()
            .map(|r| message_json(r, Some(parent))),
    );
    let mut body = json!({"messages": messages, "has_more": !next.is_empty()});
    if !next.is_empty() {
        body["response_metadata"] = json!({"next_cursor": next});
    }
    ok(body)
}

/// A message as history and replies show it; a thread parent carries its reply summary.
fn message_json(message: &Message, parent: Option<&Message>) -> Value {
    let mut json = json!({
        "type": "message",
        "user": message.user,
        "text": message.text,
        "ts": message.ts,
        "team": TEAM_ID,
        "blocks": [{
            "type": "rich_text",
            "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": message.text}]}],
        }],
    });
    if let Some(edited) = &message.edited_ts {
        json["edited"] = json!({"user": message.user, "ts": edited});
    }
    if let Some(parent) = parent {
        json["thread_ts"] = json!(parent.ts);
        json["parent_user_id"] = json!(parent.user);
    } else if let Some(last) = message.replies.last() {
        let mut repliers: Vec<&str> = message.replies.iter().map(|r| r.user.as_str()).collect();
        repliers.sort_unstable();
        repliers.dedup();
        json["thread_ts"] = json!(message.ts);
        json["reply_count"] = json!(message.replies.len());
        json["reply_users_count"] = json!(repliers.len());
        json["reply_users"] = json!(repliers);
        json["latest_reply"] = json!(last.ts);
        json["is_locked"] = json!(false);
        json["subscribed"] = json!(false);
    }
    json
}

#[cfg(test)]
mod tests;

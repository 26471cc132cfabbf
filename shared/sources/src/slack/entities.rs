//! Slack's JSON as entities (users, channels, messages and thread replies), and `Ts`, the
//! timestamp that is a message's id in its channel.

use chrono::{DateTime, TimeZone, Utc};
use domain::entity::Entity;
use domain::stream::StreamError;
use serde_json::{json, Value};

/// The longest message title; the whole text is in the payload.
const TITLE_CHARS: usize = 80;

/// A Slack ts, `<seconds>.<microseconds>`: the message's id in its channel and its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Ts {
    seconds: i64,
    micros: u32,
}

impl Ts {
    pub fn parse(s: &str) -> Option<Self> {
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
    pub fn minus_days(self, days: i64) -> String {
        let seconds = self.seconds.saturating_sub(days * 86_400).max(0);
        if days == 0 {
            format!("{}.{:06}", seconds, self.micros)
        } else {
            format!("{seconds}.000000")
        }
    }

    /// The `p<digits>` part of a message link.
    pub fn link_id(self) -> String {
        format!("p{}{:06}", self.seconds, self.micros)
    }
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

pub(super) fn message_ts(message: &Value) -> Result<Ts, StreamError> {
    message
        .get("ts")
        .and_then(Value::as_str)
        .and_then(Ts::parse)
        .ok_or_else(|| StreamError::Malformed("Slack listed a message without a valid ts".into()))
}

/// The ts part of a message entity's id (`<channel>:<ts>`).
pub(super) fn entity_ts(entity: &Entity) -> String {
    entity
        .entity_id
        .split_once(':')
        .map(|(_, ts)| ts.to_owned())
        .unwrap_or_default()
}

/// A user: names, title and kind; presence, status and avatars change too often to keep.
pub(super) fn user_entity(user: &Value, team_url: Option<&str>) -> Result<Entity, StreamError> {
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
pub(super) fn channel_entity(
    channel: &Value,
    team_url: Option<&str>,
) -> Result<Entity, StreamError> {
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
pub(super) fn message_entity(
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

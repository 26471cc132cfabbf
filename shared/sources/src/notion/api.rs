//! What a Notion answer means: a list page, a vanished item, or why the stream stops, and how
//! long a rate limit asks to wait. The stream sends the requests (`stream.rs`).

use super::NAME;
use crate::upstream::{retry_after, Answer};
use chrono::{DateTime, Utc};
use domain::stream::StreamError;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

/// Notion always sends `Retry-After`; this is for an answer that does not.
pub(super) const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(5);

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
pub(super) fn status_text(status: StatusCode, body: &[u8]) -> String {
    match error_code(body) {
        Some(code) => format!("HTTP {} {code}", status.as_u16()),
        None => format!("HTTP {}", status.as_u16()),
    }
}

pub(super) fn rate_limit_wait(headers: &HeaderMap, now: DateTime<Utc>) -> Duration {
    retry_after(headers, now).unwrap_or(DEFAULT_RATE_LIMIT_WAIT)
}

/// One page of a Notion list (`{"object": "list", "results": [...], "has_more", "next_cursor"}`).
#[derive(Debug)]
pub(super) struct ListPage {
    pub results: Vec<Value>,
    /// The `start_cursor` of the next page; `None` on the last one.
    pub next_cursor: Option<String>,
}

/// What a stream call's answer means: a list page, `None` for 404 `object_not_found` (the
/// caller knows whether that is a vanished item or a failure), or why the stream stops.
pub(super) fn classify_list(
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

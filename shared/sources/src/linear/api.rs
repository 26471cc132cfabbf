//! What Linear's GraphQL answers mean: data, or why not (a rejected key, a rate limit and its
//! wait, an outage, a malformed answer) for the check and the stream alike; and a kind's page.

use super::kinds::Kind;
use super::NAME;
use crate::upstream::{retry_after, Answer};
use chrono::{DateTime, Utc};
use domain::ports::CheckError;
use domain::stream::StreamError;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

/// A rate limit that says nothing about when it ends: Linear's buckets refill within the hour,
/// a minute is a fair first wait.
pub(super) const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// A reset already due still means "not this instant": the worker waits at least this long.
pub(super) const MIN_RATE_LIMIT_WAIT: Duration = Duration::from_secs(1);
pub(super) const REJECTED: &str = "invalid or revoked API key or token";

/// Why an answer is not data: what both the credential check and a stream make of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refusal {
    Rejected(String),
    RateLimited(Duration),
    Unavailable(String),
    Malformed(String),
}

impl Refusal {
    pub fn into_stream(self) -> StreamError {
        match self {
            Refusal::Rejected(m) => StreamError::Rejected(m),
            Refusal::RateLimited(wait) => StreamError::RateLimited { wait },
            Refusal::Unavailable(m) => StreamError::Upstream(m),
            Refusal::Malformed(m) => StreamError::Malformed(m),
        }
    }

    pub fn into_check(self) -> CheckError {
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
pub(super) fn classify(answer: &Answer, now: DateTime<Utc>) -> Result<Value, Refusal> {
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
pub(super) fn until(epoch: i64, now: DateTime<Utc>) -> Duration {
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
pub(super) struct Page {
    pub nodes: Vec<Value>,
    /// `endCursor` when there is a next page.
    pub next: Option<String>,
}

pub(super) fn read_page(
    kind: Kind,
    body: &Value,
    sent_after: Option<&str>,
) -> Result<Page, StreamError> {
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

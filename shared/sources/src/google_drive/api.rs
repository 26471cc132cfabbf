//! What a refused Google Drive answer means: a rejected token, a rate limit or quota and how
//! long to wait for it, an outage, or a malformed page. The stream sends the requests
//! (`stream.rs`).

use super::API;
use crate::upstream::{retry_after, Answer};
use chrono::{DateTime, Utc};
use domain::ports::CheckError;
use domain::stream::StreamError;
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

/// Drive sends no `Retry-After` on most rate-limit answers; its guide asks for a back-off, and
/// half a minute lets a per-user quota (per 100 seconds) recover without stalling a sync long.
pub(super) const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(30);
/// A daily quota (`dailyLimitExceeded`, `quotaExceeded`) does not recover in seconds: waiting an
/// hour beats failing the run or asking again every half minute.
pub(super) const DAILY_LIMIT_WAIT: Duration = Duration::from_secs(60 * 60);
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
pub(super) enum Refusal {
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

pub(super) fn refusal(answer: &Answer, now: DateTime<Utc>) -> Option<Refusal> {
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
    pub fn into_stream_error(self) -> StreamError {
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

    pub fn into_check_error(self) -> CheckError {
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

/// A JSON answer of the API, or what its refusal means.
pub(super) fn json_of(path: &str, answer: Answer) -> Result<Value, StreamError> {
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

pub(super) fn malformed(path: &str) -> StreamError {
    StreamError::Malformed(format!("the answer to /{path} is not a page of the {API}"))
}

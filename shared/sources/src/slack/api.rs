//! What a Slack Web API answer means: its body when Slack says `ok`, otherwise a rejected
//! token, a rate limit, or a failure (`Failure`). The stream sends the calls (`stream.rs`).

use crate::upstream::retry_after;
use chrono::{DateTime, Utc};
use domain::stream::StreamError;
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

/// Slack always sends `Retry-After` with a 429; this covers an answer that does not.
pub(super) const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(30);
/// Error codes that mean the token no longer works: the user must give a new one.
const AUTH_ERRORS: [&str; 5] = [
    "invalid_auth",
    "token_revoked",
    "account_inactive",
    "not_authed",
    "token_expired",
];

/// Why a Web API call gave no page.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Failure {
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
    pub fn code(&self) -> Option<&str> {
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
pub(super) fn classify(
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

/// One call: the Web API method and its arguments (never the token: that is a header).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Call {
    pub method: &'static str,
    pub params: Vec<(&'static str, String)>,
}

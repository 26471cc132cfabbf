//! How the stream talks to Notion: its requests (with the token and the pinned version), what
//! an answer means (a list page, a vanished item, or why the stream stops), and rate-limit waits.

use super::stream::NotionStream;
use super::{NAME, NOTION_VERSION};
use crate::upstream::{fetch, retry_after, Answer, PAGE_BODY_LIMIT};
use chrono::{DateTime, Utc};
use domain::stream::StreamError;
use reqwest::header::{HeaderMap, AUTHORIZATION};
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

/// The stream's calls to Notion, each counted toward the page's [`CALLS_PER_PAGE`].
///
/// [`CALLS_PER_PAGE`]: super::stream::CALLS_PER_PAGE
impl NotionStream {
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.base_url.endpoint(path))
            .header(AUTHORIZATION, self.authorization.clone())
            .header("Notion-Version", NOTION_VERSION)
    }

    pub async fn call(
        &mut self,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<Option<ListPage>, StreamError> {
        let answer = self.call_answer(request).await?;
        self.classify(&answer, what)
    }

    pub async fn call_answer(
        &mut self,
        request: reqwest::RequestBuilder,
    ) -> Result<Answer, StreamError> {
        self.calls += 1;
        fetch(NAME, request, PAGE_BODY_LIMIT).await
    }

    pub fn classify(&self, answer: &Answer, what: &str) -> Result<Option<ListPage>, StreamError> {
        let outcome = classify_list(answer, what, Utc::now());
        if let Err(e) = &outcome {
            tracing::info!(status = answer.status.as_u16(), outcome = %e, "Notion answer stops the stream");
        }
        outcome
    }
}

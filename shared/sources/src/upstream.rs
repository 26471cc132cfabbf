//! What every HTTP source shares: the client and how upstream answers are read.

use chrono::{DateTime, Utc};
use domain::ports::CheckError;
use domain::stream::StreamError;
use reqwest::header::{HeaderMap, HeaderValue, InvalidHeaderValue, RETRY_AFTER};
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

/// The most a stream reads of one upstream answer: a page of any provider's API fits easily.
pub const PAGE_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// The most read of an answer that is one small object: a credential check's user or repository,
/// a token endpoint's token (a few KiB at most; more is not needed to tell its shape).
pub const CHECK_BODY_LIMIT: usize = 64 * 1024;

/// Connect timeout of every upstream call.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Whole-request timeout of every upstream call (well inside API Gateway's 29 s).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const USER_AGENT: &str = concat!("source-connections/", env!("CARGO_PKG_VERSION"));

/// The one HTTP client the sources share, built once per cold start. It never follows
/// redirects: a credential must not be replayed to wherever an upstream points.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    // TLS uses aws-lc-rs, the provider the AWS SDK's client already links, as the process
    // default; an earlier install (the same provider) is fine.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
        .build()
}

/// The `Authorization` value of a bearer token (an OAuth access token, or a key an API takes the
/// same way): `Bearer {token}`, the token trimmed, marked sensitive so that no log or debug
/// print shows it. An error when the token has characters a header cannot carry; the caller
/// says so in its own words, naming nothing of the token.
pub(crate) fn bearer(token: &str) -> Result<HeaderValue, InvalidHeaderValue> {
    secret_header(format!("Bearer {}", token.trim()))
}

/// A secret (a key sent as it is, a bearer value) as a header value marked sensitive.
pub(crate) fn secret_header(value: impl AsRef<str>) -> Result<HeaderValue, InvalidHeaderValue> {
    let mut value = HeaderValue::from_str(value.as_ref())?;
    value.set_sensitive(true);
    Ok(value)
}

/// `Retry-After` as delta-seconds or an HTTP-date (RFC 9110 section 10.2.3); a date in the past
/// means "now".
pub(crate) fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds).min(MAX_WAIT));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    Some(until(at.timestamp(), now))
}

/// The wait until an `x-ratelimit-reset` instant (UTC epoch seconds).
pub(crate) fn rate_limit_reset(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let epoch = headers
        .get("x-ratelimit-reset")?
        .to_str()
        .ok()?
        .trim()
        .parse::<i64>()
        .ok()?;
    Some(until(epoch, now))
}

/// `x-ratelimit-remaining`, when present and readable.
pub(crate) fn rate_limit_remaining(headers: &HeaderMap) -> Option<u64> {
    headers
        .get("x-ratelimit-remaining")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The longest wait an upstream's answer is taken at (a day): beyond it the value is nonsense.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);

fn until(epoch_seconds: i64, now: DateTime<Utc>) -> Duration {
    let seconds = epoch_seconds.saturating_sub(now.timestamp());
    Duration::from_secs(u64::try_from(seconds).unwrap_or(0)).min(MAX_WAIT)
}

/// A failed exchange as a check result. The message names neither the URL nor anything sent.
pub(crate) fn transport_error(source_name: &str, err: &reqwest::Error) -> CheckError {
    let message = if err.is_timeout() {
        format!("{source_name} did not answer in time")
    } else if err.is_connect() {
        format!("could not connect to {source_name}")
    } else {
        format!("the request to {source_name} failed")
    };
    CheckError::Unavailable(message)
}

/// One upstream answer of a stream: what the source classifies.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON, or a `Malformed` error that quotes nothing of it.
    pub fn json(&self, source_name: &str) -> Result<Value, StreamError> {
        serde_json::from_slice(&self.body).map_err(|_| {
            StreamError::Malformed(format!(
                "{source_name} answered HTTP {} with a body that is not JSON",
                self.status.as_u16()
            ))
        })
    }
}

/// Sends one request of a stream and reads its answer (at most `limit` bytes). A failed exchange
/// is `Upstream`, its message naming neither the URL nor anything sent.
pub(crate) async fn fetch(
    source_name: &str,
    request: reqwest::RequestBuilder,
    limit: usize,
) -> Result<Answer, StreamError> {
    let response = request.send().await.map_err(|e| {
        let e = e.without_url();
        tracing::warn!(error = %e, "{source_name} could not be reached");
        stream_transport_error(source_name, &e)
    })?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = read_capped(response, limit).await.map_err(|e| {
        let e = e.without_url();
        tracing::warn!(status = status.as_u16(), error = %e, "{source_name} answer could not be read");
        stream_transport_error(source_name, &e)
    })?;
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// One credential-check exchange: sends `request`, reads at most `limit` bytes and lets
/// `classify` judge the answer. Logs the status and the verdict, never the body; a failed
/// exchange is `Unavailable`, naming neither the URL nor anything sent.
pub(crate) async fn check_exchange(
    source_name: &str,
    request: reqwest::RequestBuilder,
    limit: usize,
    classify: impl FnOnce(&Answer) -> Result<(), CheckError>,
) -> Result<(), CheckError> {
    let response = request.send().await.map_err(|e| {
        let e = e.without_url();
        tracing::warn!(error = %e, "{source_name} credential check could not reach {source_name}");
        transport_error(source_name, &e)
    })?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = read_capped(response, limit).await.map_err(|e| {
        let e = e.without_url();
        tracing::warn!(status = status.as_u16(), error = %e, "{source_name} answer could not be read");
        transport_error(source_name, &e)
    })?;
    let answer = Answer {
        status,
        headers,
        body,
    };
    let outcome = classify(&answer);
    match &outcome {
        Ok(()) => tracing::info!(
            status = status.as_u16(),
            "{source_name} accepted the credentials"
        ),
        Err(e) => {
            tracing::info!(status = status.as_u16(), outcome = %e, "{source_name} did not accept the check")
        }
    }
    outcome
}

/// A failed exchange as a stream error.
pub(crate) fn stream_transport_error(source_name: &str, err: &reqwest::Error) -> StreamError {
    match transport_error(source_name, err) {
        CheckError::Unavailable(m) | CheckError::Rejected(m) => StreamError::Upstream(m),
        CheckError::RateLimited { .. } => StreamError::Upstream(format!("{source_name} failed")),
    }
}

/// Reads at most `limit` bytes of a body: enough to tell an answer's shape, never a memory hog.
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == limit {
            break;
        }
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{header_map as headers, test_now as now};

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let at = |v: &str| retry_after(&headers(&[("retry-after", v)]), now());
        assert_eq!(at("30"), Some(Duration::from_secs(30)));
        assert_eq!(at(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            at("Wed, 25 Nov 2026 12:01:30 GMT"),
            Some(Duration::from_secs(90))
        );
        assert_eq!(at("Wed, 25 Nov 2026 11:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(at("soon"), None);
        assert_eq!(at("99999999999999"), Some(MAX_WAIT), "capped at a day");
        assert_eq!(at("-5"), None);
        assert_eq!(retry_after(&HeaderMap::new(), now()), None);
    }

    #[test]
    fn a_bearer_value_is_the_trimmed_token_and_never_shown() {
        let value = bearer("  gho_abc\n").unwrap();
        assert_eq!(value.to_str().unwrap(), "Bearer gho_abc");
        assert!(value.is_sensitive());
        assert!(!format!("{value:?}").contains("gho_abc"));
        assert!(bearer("tok\u{0}en").is_err());
        let key = secret_header("lin_api_x").unwrap();
        assert_eq!(key.to_str().unwrap(), "lin_api_x");
        assert!(key.is_sensitive());
    }

    #[test]
    fn reset_is_epoch_seconds_from_now() {
        let in_ten_minutes = (now().timestamp() + 600).to_string();
        let h = headers(&[("x-ratelimit-reset", &in_ten_minutes)]);
        assert_eq!(rate_limit_reset(&h, now()), Some(Duration::from_secs(600)));
        let past = headers(&[("x-ratelimit-reset", "1000")]);
        assert_eq!(rate_limit_reset(&past, now()), Some(Duration::ZERO));
        assert_eq!(rate_limit_reset(&HeaderMap::new(), now()), None);
    }

    #[test]
    fn remaining_is_read_when_present() {
        assert_eq!(
            rate_limit_remaining(&headers(&[("x-ratelimit-remaining", "0")])),
            Some(0)
        );
        assert_eq!(
            rate_limit_remaining(&headers(&[("x-ratelimit-remaining", "4999")])),
            Some(4999)
        );
        assert_eq!(rate_limit_remaining(&HeaderMap::new()), None);
    }
}

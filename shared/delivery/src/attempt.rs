//! The outcome of one delivery attempt, as the attempt record and the retry schedule need it.

use std::error::Error as _;
use std::io;
use std::time::Duration;

/// What one POST to an endpoint came to. Nothing in it repeats what we sent (the signature,
/// the key, the payload or the URL): it is shown back to the customer as the attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptResult {
    /// The HTTP status of the answer; `None` when there was no answer.
    pub status_code: Option<u16>,
    /// At most the first 1024 bytes of the answer's body, as text (invalid UTF-8 replaced,
    /// cut on a character boundary); empty when there was no answer.
    pub response: String,
    /// The endpoint answered 2xx: the message is delivered and is not retried.
    pub delivered: bool,
    /// How long a non-2xx answer asked us to wait (`Retry-After`, at most a day), to be
    /// honoured by the retry schedule.
    pub retry_after: Option<Duration>,
    /// Why there was no answer: the target was refused, the request timed out, the connection
    /// was refused or reset, TLS failed. A short message for the attempt record.
    pub error: Option<String>,
}

impl AttemptResult {
    /// An attempt that got no answer, for the reason given.
    pub(crate) fn failed(error: impl Into<String>) -> Self {
        Self {
            status_code: None,
            response: String::new(),
            delivered: false,
            retry_after: None,
            error: Some(error.into()),
        }
    }
}

/// The reason a request got no answer, in a few words. reqwest's own message is never used:
/// it names the URL, which may carry a customer's query string.
pub(crate) fn no_answer(err: &reqwest::Error, timeout: Duration) -> String {
    if err.is_timeout() {
        return timed_out(timeout);
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = err.source();
    while let Some(cause) = source {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return format!("TLS error: {tls}");
        }
        let Some(io) = cause.downcast_ref::<io::Error>() else {
            source = cause.source();
            continue;
        };
        match io.kind() {
            io::ErrorKind::ConnectionRefused => return "connection refused".to_owned(),
            io::ErrorKind::ConnectionReset => return "connection reset".to_owned(),
            io::ErrorKind::ConnectionAborted => return "connection aborted".to_owned(),
            io::ErrorKind::TimedOut => return timed_out(timeout),
            _ => {}
        }
        // An io::Error's `source` skips the error it wraps (a TLS failure reaches hyper as
        // one io::Error inside another), so the walk goes through the wrapped error itself.
        source = match io.get_ref() {
            Some(inner) => Some(inner),
            None => io.source(),
        };
    }
    if err.is_connect() {
        "could not connect".to_owned()
    } else {
        "the connection failed before an answer".to_owned()
    }
}

/// The message of a request that ran out of time.
pub(crate) fn timed_out(timeout: Duration) -> String {
    format!("timed out after {timeout:?}")
}

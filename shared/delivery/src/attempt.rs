//! Why an attempt got no answer, in the few words the attempt record shows.

use std::error::Error as _;
use std::io;
use std::time::Duration;

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

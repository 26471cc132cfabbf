//! Logging: JSON lines when Lambda asks for them (`AWS_LAMBDA_LOG_FORMAT=JSON`) or
//! `LOG_FORMAT=json`, readable text otherwise. Ids are fields; payloads and secrets never are.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let json = ["AWS_LAMBDA_LOG_FORMAT", "LOG_FORMAT"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|f| f.eq_ignore_ascii_case("json")));
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let result = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.try_init()
    };
    // A second init (tests, the gateway after a function) keeps the first subscriber.
    let _ = result;
}

/// `outer: inner: innermost`, for the log.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

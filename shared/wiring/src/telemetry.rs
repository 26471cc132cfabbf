//! Logging: JSON lines when Lambda asks for them (`AWS_LAMBDA_LOG_FORMAT=JSON`) or
//! `LOG_FORMAT=json`, readable text otherwise. The level is `RUST_LOG`, else the function's
//! application log level (`AWS_LAMBDA_LOG_LEVEL`), else info. Ids are fields; payloads and
//! secrets never are.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let json = ["AWS_LAMBDA_LOG_FORMAT", "LOG_FORMAT"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|f| f.eq_ignore_ascii_case("json")));
    let directives = filter_directives(
        std::env::var("RUST_LOG").ok(),
        std::env::var("AWS_LAMBDA_LOG_LEVEL").ok(),
    );
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
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

/// `RUST_LOG` when set; else Lambda's application log level (`TRACE` .. `FATAL`, FATAL being
/// our error, TRACE our debug: trace is compiled out, see the workspace's `tracing`); else
/// `info`.
fn filter_directives(rust_log: Option<String>, lambda_level: Option<String>) -> String {
    if let Some(directives) = rust_log.filter(|d| !d.trim().is_empty()) {
        return directives;
    }
    match lambda_level
        .map(|l| l.trim().to_ascii_lowercase())
        .as_deref()
    {
        Some("trace") => "debug".to_owned(),
        Some(level @ ("debug" | "info" | "warn" | "error")) => level.to_owned(),
        Some("fatal") => "error".to_owned(),
        _ => "info".to_owned(),
    }
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

#[cfg(test)]
mod tests {
    use super::filter_directives;

    #[test]
    fn rust_log_wins_then_lambdas_level_then_info() {
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(
            filter_directives(some("debug,hyper=info"), some("ERROR")),
            "debug,hyper=info"
        );
        assert_eq!(filter_directives(None, some("WARN")), "warn");
        assert_eq!(filter_directives(None, some("TRACE")), "debug");
        assert_eq!(filter_directives(some(" "), some("FATAL")), "error");
        assert_eq!(filter_directives(None, some("LOUD")), "info");
        assert_eq!(filter_directives(None, None), "info");
    }
}

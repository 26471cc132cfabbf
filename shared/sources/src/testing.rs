//! What the sources' unit tests share beside the providers' fakes (the `fakes` crate): an
//! address nothing listens on, a fixed instant and header maps, and the page budgets the tests
//! open streams with.

use domain::auth::{AuthenticationRequest, Credentials, OauthToken};
use secrecy::SecretString;
use std::time::Duration;
use tokio::net::TcpListener;

/// An OAuth access token, with neither a refresh token nor an expiry.
pub(crate) fn oauth(token: &str) -> AuthenticationRequest {
    AuthenticationRequest::OauthToken(OauthToken {
        access_token: SecretString::from(token.to_owned()),
        refresh_token: None,
        expires_at: None,
    })
}

/// Direct credentials of one field.
pub(crate) fn direct_credential(field: &str, value: &str) -> AuthenticationRequest {
    let fields = serde_json::json!({ field: value });
    AuthenticationRequest::Direct(Credentials::new(fields.as_object().unwrap().clone()))
}

/// An address nothing listens on: bound, then released.
pub(crate) async fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    format!("http://{address}")
}

/// The fixed instant the header tests read rate-limit resets against.
pub(crate) fn test_now() -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    chrono::Utc
        .with_ymd_and_hms(2026, 11, 25, 12, 0, 0)
        .unwrap()
}

/// A response header map from name/value pairs.
pub(crate) fn header_map(pairs: &[(&'static str, &str)]) -> reqwest::header::HeaderMap {
    let mut map = reqwest::header::HeaderMap::new();
    for (name, value) in pairs {
        map.insert(
            *name,
            reqwest::header::HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

/// The page budget the sources' tests open streams with: the worker's default, so that only the
/// tests about the budget feel it.
pub(crate) const PAGE_BUDGET: Duration = Duration::from_secs(20);

/// How long a slow upstream takes over each call in the tests of a page's time.
pub(crate) const SLOW_CALL: Duration = Duration::from_millis(50);
/// The page budget of those tests: a few slow calls fit in it, and a page that went on past it
/// would take many times as long (a source allows itself 10 or more calls a page).
pub(crate) const SHORT_BUDGET: Duration = Duration::from_millis(120);

/// The most one `next_page` may take: its budget and the one call it may have started just
/// before the budget ran out, plus room for a machine busy with the other tests.
pub(crate) fn page_time_limit(budget: Duration) -> Duration {
    budget + SLOW_CALL + Duration::from_millis(150)
}

/// The stream's next page, asserted to have come within `budget` and the one call it may have
/// started just before the budget ran out.
pub(crate) async fn next_page_within(
    stream: &mut Box<dyn domain::stream::EntityStream>,
    budget: Duration,
) -> Option<domain::stream::EntityPage> {
    let began = tokio::time::Instant::now();
    let page = stream.next_page().await.expect("a page");
    let took = began.elapsed();
    assert!(
        took <= page_time_limit(budget),
        "a page took {took:?} of a {budget:?} budget"
    );
    page
}

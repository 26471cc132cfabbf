//! What the sources' unit tests share: a scripted upstream (the fakes crate's server, answering
//! every request with what the test's closure returns and remembering what it was sent), fixed
//! instants and headers, and the page budgets the tests open streams with.

use fakes::{FakeRequest, FakeResponse, FakeServer};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

/// A request as the fake saw it.
pub(crate) type Seen = FakeRequest;

/// What the fake answers.
#[derive(Debug, Clone)]
pub(crate) struct Reply(FakeResponse);

impl Reply {
    pub fn status(status: u16) -> Self {
        Self(FakeResponse {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: Duration::ZERO,
        })
    }

    pub fn header(self, name: &str, value: impl Into<String>) -> Self {
        Self(self.0.with_header(name, value.into()))
    }

    pub fn json(self, body: serde_json::Value) -> Self {
        let mut reply = self.header("content-type", "application/json; charset=utf-8");
        reply.0.body = body.to_string().into_bytes();
        reply
    }

    pub fn text(mut self, body: &str) -> Self {
        self.0.body = body.as_bytes().to_vec();
        self
    }
}

/// A scripted upstream on 127.0.0.1: the fakes crate's server with the test's closure as its
/// handler, keeping every request it was sent.
pub(crate) struct FakeUpstream {
    pub base_url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    server: FakeServer,
}

impl FakeUpstream {
    pub async fn start(reply: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&seen);
        let server = FakeServer::start(Arc::new(move |request: &FakeRequest| {
            recorded.lock().expect("lock").push(request.clone());
            reply(request).0
        }))
        .await;
        Self {
            base_url: server.base_url.clone(),
            seen,
            server,
        }
    }

    /// Every later answer is sent this long after its request comes in.
    pub fn answer_after(&self, delay: Duration) {
        self.server.answer_after(delay);
    }

    /// Accepts connections and never answers: for timeouts.
    pub async fn silent() -> Self {
        let server = FakeServer::silent().await;
        Self {
            base_url: server.base_url.clone(),
            seen: Arc::default(),
            server,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
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

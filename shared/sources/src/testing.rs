//! A scripted upstream on 127.0.0.1 for the sources' unit tests: it answers every request with
//! what the test's closure returns and remembers what it was sent.

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{HeaderMap, Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// A request as the fake saw it.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What the fake answers.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub fn json(self, body: serde_json::Value) -> Self {
        let mut reply = self.header("content-type", "application/json; charset=utf-8");
        reply.body = body.to_string();
        reply
    }

    pub fn text(mut self, body: &str) -> Self {
        self.body = body.to_owned();
        self
    }
}

pub(crate) struct FakeUpstream {
    pub base_url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// How long every answer waits before it is sent (a slow upstream).
    delay: Arc<Mutex<Duration>>,
    task: JoinHandle<()>,
}

impl FakeUpstream {
    pub async fn start(reply: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base_url = format!("http://{}", listener.local_addr().expect("address"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let delay = Arc::new(Mutex::new(Duration::ZERO));
        let reply = Arc::new(reply);
        let recorded = Arc::clone(&seen);
        let delayed = Arc::clone(&delay);
        let task = tokio::spawn(async move {
            // Dropping the set (when the task is aborted) closes kept-alive connections too.
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                while connections.try_join_next().is_some() {}
                let reply = Arc::clone(&reply);
                let recorded = Arc::clone(&recorded);
                let delayed = Arc::clone(&delayed);
                connections.spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let seen = Seen {
                            method: request.method().to_string(),
                            path: request.uri().path().to_owned(),
                            headers: request.headers().clone(),
                        };
                        recorded.lock().expect("lock").push(seen.clone());
                        let answer = reply(&seen);
                        let delay = *delayed.lock().expect("lock");
                        async move {
                            if !delay.is_zero() {
                                tokio::time::sleep(delay).await;
                            }
                            Ok::<_, Infallible>(respond(answer))
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            base_url,
            seen,
            delay,
            task,
        }
    }

    /// Every later answer is sent this long after its request comes in.
    pub fn answer_after(&self, delay: Duration) {
        *self.delay.lock().expect("lock") = delay;
    }

    /// Accepts connections and never answers: for timeouts.
    pub async fn silent() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base_url = format!("http://{}", listener.local_addr().expect("address"));
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        Self {
            base_url,
            seen: Arc::default(),
            delay: Arc::default(),
            task,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn respond(reply: Reply) -> Response<Full<Bytes>> {
    let mut response = Response::builder().status(reply.status);
    for (name, value) in reply.headers {
        response = response.header(name, value);
    }
    response
        .body(Full::new(Bytes::from(reply.body)))
        .expect("a valid scripted response")
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

//! The small HTTP server every fake runs on: 127.0.0.1, a random (or given) port, one handler
//! function over a whole request, stopped when dropped. It logs each request's method and path
//! (never a header or a body, so no fake ever holds a secret it could leak).

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{HeaderMap, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// A request as a fake sees it: whole, body read.
#[derive(Debug, Clone)]
pub struct FakeRequest {
    pub method: String,
    pub path: String,
    /// Query parameters, decoded; a repeated one keeps its last value.
    pub query: BTreeMap<String, String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl FakeRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    /// The token of `Authorization: Bearer <token>` (the scheme in any case).
    pub fn bearer(&self) -> Option<&str> {
        let (scheme, token) = self.header("authorization")?.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The body as `application/x-www-form-urlencoded` fields.
    pub fn form(&self) -> BTreeMap<String, String> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }
}

/// What a fake answers.
#[derive(Debug, Clone)]
pub struct FakeResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Sent this long after the answer is ready (a slow call), on top of the server's delay.
    pub delay: Duration,
}

impl FakeResponse {
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![(
                "content-type".into(),
                "application/json; charset=utf-8".into(),
            )],
            body: body.to_string().into_bytes(),
            delay: Duration::ZERO,
        }
    }

    pub fn text(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn with_header(mut self, name: &str, value: impl ToString) -> Self {
        self.headers.push((name.to_owned(), value.to_string()));
        self
    }

    /// Sent `delay` late: a slow answer, without holding the server's thread.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A handler: the whole request in, the whole answer out.
pub type Handler = Arc<dyn Fn(&FakeRequest) -> FakeResponse + Send + Sync>;

/// A running fake. Dropping it stops it (kept-alive connections included).
pub struct FakeServer {
    /// e.g. `http://127.0.0.1:54321`, the value for `SOURCE_<NAME>_BASE_URL`.
    pub base_url: String,
    log: Arc<Mutex<Vec<String>>>,
    /// How long every answer waits before it is sent (a slow upstream).
    delay: Arc<Mutex<Duration>>,
    task: JoinHandle<()>,
}

impl FakeServer {
    /// Serves `handler` on a random port of 127.0.0.1.
    pub async fn start(handler: Handler) -> Self {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), handler)
            .await
            .expect("bind a fake on 127.0.0.1")
    }

    /// Serves `handler` on `addr`.
    pub async fn start_on(addr: SocketAddr, handler: Handler) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let log = Arc::new(Mutex::new(Vec::new()));
        let delay = Arc::new(Mutex::new(Duration::ZERO));
        let task = tokio::spawn(serve(
            listener,
            handler,
            Arc::clone(&log),
            Arc::clone(&delay),
        ));
        Ok(Self {
            base_url,
            log,
            delay,
            task,
        })
    }

    /// Accepts connections on a random port of 127.0.0.1 and never answers (timeouts).
    pub async fn silent() -> Self {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind a fake on 127.0.0.1");
        let base_url = format!("http://{}", listener.local_addr().expect("an address"));
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        Self {
            base_url,
            log: Arc::default(),
            delay: Arc::default(),
            task,
        }
    }

    /// Every later answer is sent this long after its request came in.
    pub fn answer_after(&self, delay: Duration) {
        *self.delay.lock().expect("delay lock") = delay;
    }

    /// `"GET /path"` lines of the requests received, in order.
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().expect("log lock").clone()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    listener: TcpListener,
    handler: Handler,
    log: Arc<Mutex<Vec<String>>>,
    delay: Arc<Mutex<Duration>>,
) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        while connections.try_join_next().is_some() {}
        let handler = Arc::clone(&handler);
        let log = Arc::clone(&log);
        let delay = Arc::clone(&delay);
        connections.spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let handler = Arc::clone(&handler);
                let log = Arc::clone(&log);
                let delay = *delay.lock().expect("delay lock");
                async move {
                    let request = read(request).await;
                    log.lock()
                        .expect("log lock")
                        .push(format!("{} {}", request.method, request.path));
                    let answer = handler(&request);
                    let delay = delay + answer.delay;
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
}

async fn read(request: Request<Incoming>) -> FakeRequest {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let query = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    FakeRequest {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query,
        headers: parts.headers,
        body,
    }
}

fn respond(answer: FakeResponse) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(answer.body)));
    *response.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(&value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

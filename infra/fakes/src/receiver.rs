//! A customer's webhook endpoint: records every delivery (headers and body, which a receiver
//! must see to verify them) and answers from a script, then 200. What the webhook tests and the
//! delivery benchmark send to.

use crate::server::{FakeRequest, FakeResponse, FakeServer};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One delivery as the endpoint received it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Header names in lowercase.
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub received_at: Instant,
}

impl Delivery {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `webhook-id`: the message's id, the same on every attempt.
    pub fn webhook_id(&self) -> &str {
        self.header("webhook-id").unwrap_or_default()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_default()
    }
}

/// A scripted answer: a status, an optional `Retry-After`, and how long to wait before it.
#[derive(Debug, Clone, Copy)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<u32>,
    pub after: Duration,
}

impl Answer {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            retry_after: None,
            after: Duration::ZERO,
        }
    }
}

#[derive(Default)]
struct State {
    deliveries: Vec<Delivery>,
    script: VecDeque<Answer>,
}

pub struct FakeReceiver {
    /// e.g. `http://127.0.0.1:54321/hooks/in`, the subscription's URL.
    pub url: String,
    state: Arc<Mutex<State>>,
    _server: FakeServer,
}

impl FakeReceiver {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let recorded = Arc::clone(&state);
        let server = FakeServer::start(Arc::new(move |request: &FakeRequest| {
            let mut state = recorded.lock().expect("receiver lock");
            state.deliveries.push(Delivery {
                headers: request
                    .headers
                    .iter()
                    .map(|(n, v)| {
                        (
                            n.as_str().to_owned(),
                            v.to_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect(),
                body: String::from_utf8_lossy(&request.body).into_owned(),
                received_at: Instant::now(),
            });
            let answer = state
                .script
                .pop_front()
                .unwrap_or_else(|| Answer::status(200));
            let mut response = FakeResponse::text(
                answer.status,
                "text/plain",
                format!("answer {}", answer.status),
            )
            .after(answer.after);
            if let Some(seconds) = answer.retry_after {
                response = response.with_header("retry-after", seconds);
            }
            response
        }))
        .await;
        Self {
            url: format!("{}/hooks/in", server.base_url),
            state,
            _server: server,
        }
    }

    /// The next answers, in order (200 after them).
    pub fn script(&self, answers: &[Answer]) {
        self.state
            .lock()
            .expect("receiver lock")
            .script
            .extend(answers.iter().copied());
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state.lock().expect("receiver lock").deliveries.clone()
    }

    /// Waits until at least `count` deliveries came, up to `limit`; answers what came.
    pub async fn wait_for(&self, count: usize, limit: Duration) -> Vec<Delivery> {
        let deadline = Instant::now() + limit;
        loop {
            let got = self.deliveries();
            if got.len() >= count || Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

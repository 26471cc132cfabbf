//! The delivery queue and the transport of the sender's tests: the queue records each task
//! with its delay; the transport answers from a script and records what it was asked to send.

use super::{injected, lock};
use crate::ids::MessageId;
use crate::ports::{DeliveryQueue, QueueError, WebhookTransport};
use crate::webhooks::{AttemptResult, DeliveryTask, Outgoing};
use async_trait::async_trait;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Default)]
pub struct MemoryDeliveries {
    sent: Mutex<Vec<(DeliveryTask, Duration)>>,
    fail: AtomicBool,
}

impl MemoryDeliveries {
    /// Makes every enqueue fail until switched off.
    pub fn fail_enqueue(&self, fail: bool) {
        self.fail.store(fail, Ordering::SeqCst);
    }

    /// Takes the tasks queued so far, with their delays, as a consumer would.
    pub fn drain(&self) -> Vec<(DeliveryTask, Duration)> {
        std::mem::take(&mut *lock(&self.sent))
    }
}

#[async_trait]
impl DeliveryQueue for MemoryDeliveries {
    async fn enqueue_deliveries(
        &self,
        tasks: &[DeliveryTask],
        delay: Duration,
    ) -> Result<(), QueueError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(QueueError(injected("enqueue_deliveries")));
        }
        lock(&self.sent).extend(tasks.iter().map(|t| (t.clone(), delay)));
        Ok(())
    }
}

/// One POST as the transport saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    pub url: String,
    pub message_id: MessageId,
    pub body: String,
}

/// Answers each POST with the next scripted result (a 200 when the script is empty).
#[derive(Default)]
pub struct ScriptedTransport {
    script: Mutex<VecDeque<AttemptResult>>,
    posted: Mutex<Vec<Posted>>,
}

impl ScriptedTransport {
    /// Queues answers: a status code each (0: no answer, a refused connection), with an
    /// optional Retry-After.
    pub fn answer(&self, status: u16, retry_after: Option<Duration>) {
        let result = if status == 0 {
            AttemptResult::failed("connection refused")
        } else {
            AttemptResult {
                status_code: Some(status),
                response: format!("answered {status}"),
                delivered: (200..300).contains(&status),
                retry_after,
                error: None,
            }
        };
        lock(&self.script).push_back(result);
    }

    pub fn posted(&self) -> Vec<Posted> {
        lock(&self.posted).clone()
    }
}

#[async_trait]
impl WebhookTransport for ScriptedTransport {
    async fn post(&self, outgoing: Outgoing<'_>) -> AttemptResult {
        lock(&self.posted).push(Posted {
            url: outgoing.url.as_str().to_owned(),
            message_id: outgoing.message_id,
            body: outgoing.body.to_owned(),
        });
        lock(&self.script).pop_front().unwrap_or(AttemptResult {
            status_code: Some(200),
            response: "ok".into(),
            delivered: true,
            retry_after: None,
            error: None,
        })
    }
}

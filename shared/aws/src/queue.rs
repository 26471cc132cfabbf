//! The SQS queues: the sync queue (one message per job to run), the webhook delivery queue (one
//! message per attempt of a message to a subscription) and the scheduler's queue (one message
//! per shard of a minute's due schedules handed to another invocation).

use crate::clients::Deferred;
use crate::error::boxed;
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use domain::job::SyncMessage;
use domain::ports::{DeliveryQueue, QueueError, ScheduleHandOff, SyncQueue, MAX_QUEUE_DELAY};
use domain::schedule::ScheduleShard;
use domain::webhooks::DeliveryTask;
use std::time::Duration;

/// A message as the queue handed it out, for a consumer that is not Lambda's SQS integration
/// (the dev gateway's poller).
#[derive(Debug, Clone)]
pub struct ReceivedMessage {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    pub receive_count: u32,
    pub sent_at_millis: i64,
}

#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Deferred<Client>,
    queue_url: String,
}

impl SqsQueue {
    pub fn new(client: impl Into<Deferred<Client>>, queue_url: impl Into<String>) -> Self {
        Self {
            client: client.into(),
            queue_url: queue_url.into(),
        }
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// Up to `max` messages, waiting up to `wait` for the first (a long poll).
    pub async fn receive(
        &self,
        max: i32,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max)
            .wait_time_seconds(wait.as_secs() as i32)
            .message_system_attribute_names(
                aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
            )
            .message_system_attribute_names(
                aws_sdk_sqs::types::MessageSystemAttributeName::SentTimestamp,
            )
            .send()
            .await
            .map_err(|e| QueueError(boxed(e)))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                let attribute = |name| {
                    m.attributes()
                        .and_then(|a| a.get(&name))
                        .and_then(|v| v.parse().ok())
                };
                Some(ReceivedMessage {
                    receive_count: attribute(
                        aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
                    )
                    .unwrap_or(1) as u32,
                    sent_at_millis: attribute(
                        aws_sdk_sqs::types::MessageSystemAttributeName::SentTimestamp,
                    )
                    .unwrap_or(0),
                    message_id: m.message_id?,
                    receipt_handle: m.receipt_handle?,
                    body: m.body.unwrap_or_default(),
                })
            })
            .collect())
    }

    /// Acknowledges a message: it is not delivered again.
    pub async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map_err(|e| QueueError(boxed(e)))?;
        Ok(())
    }

    /// Sends `bodies` in batches of 10 (SQS's most), each delivered after `delay`. A batch with
    /// any entry refused is an error (the entries before it went through).
    async fn send_all(
        &self,
        bodies: impl IntoIterator<Item = String>,
        delay: Option<Duration>,
        what: &str,
    ) -> Result<(), QueueError> {
        let bodies: Vec<String> = bodies.into_iter().collect();
        for chunk in bodies.chunks(10) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, body) in chunk.iter().enumerate() {
                entries.push(
                    aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .set_delay_seconds(delay.map(delay_seconds))
                        .build()
                        .map_err(|e| QueueError(boxed(e)))?,
                );
            }
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| QueueError(boxed(e)))?;
            if let Some(failed) = out.failed.first() {
                return Err(QueueError(
                    format!(
                        "SQS refused {} of {} {what} ({})",
                        out.failed.len(),
                        chunk.len(),
                        failed.code
                    )
                    .into(),
                ));
            }
        }
        Ok(())
    }

    async fn send(&self, message: &SyncMessage, delay: Option<Duration>) -> Result<(), QueueError> {
        let body = serde_json::to_string(message).map_err(|e| QueueError(boxed(e)))?;
        let delay = delay.map(delay_seconds);
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .set_delay_seconds(delay)
            .send()
            .await
            .map_err(|e| QueueError(boxed(e)))?;
        Ok(())
    }
}

#[async_trait]
impl SyncQueue for SqsQueue {
    async fn enqueue(&self, message: &SyncMessage) -> Result<(), QueueError> {
        self.send(message, None).await
    }

    async fn enqueue_after(
        &self,
        message: &SyncMessage,
        delay: Duration,
    ) -> Result<(), QueueError> {
        self.send(message, Some(delay)).await
    }

    async fn enqueue_all(&self, messages: &[SyncMessage]) -> Result<(), QueueError> {
        let bodies = messages
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| QueueError(boxed(e)))?;
        self.send_all(bodies, None, "sync messages").await
    }
}

/// The scheduler's queue: each message a shard of the minute's due schedules, taken on by
/// another invocation of the scheduler.
#[async_trait]
impl ScheduleHandOff for SqsQueue {
    async fn hand_off(&self, shards: &[ScheduleShard]) -> Result<(), QueueError> {
        let bodies = shards
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| QueueError(boxed(e)))?;
        self.send_all(bodies, None, "schedule shards").await
    }
}

/// Whole seconds, rounded up (a wait of 1.5 s must not become 1 s), at most the queue's limit.
fn delay_seconds(delay: Duration) -> i32 {
    let rounded = Duration::from_secs(delay.as_secs() + u64::from(delay.subsec_nanos() > 0));
    rounded.min(MAX_QUEUE_DELAY).as_secs() as i32
}

#[async_trait]
impl DeliveryQueue for SqsQueue {
    /// In batches of 10 (SQS's most); a batch with any entry refused is an error, so the
    /// caller sends again (the entries that went through are then repeated, which the sender
    /// drops once their attempt is recorded).
    async fn enqueue_deliveries(
        &self,
        tasks: &[DeliveryTask],
        delay: Duration,
    ) -> Result<(), QueueError> {
        let bodies = tasks
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| QueueError(boxed(e)))?;
        self.send_all(bodies, Some(delay), "deliveries").await
    }
}

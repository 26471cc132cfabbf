//! The sync queue: one SQS message per job to run.

use crate::error::boxed;
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use domain::job::SyncMessage;
use domain::ports::{QueueError, SyncQueue};

#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
}

impl SqsQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }
}

#[async_trait]
impl SyncQueue for SqsQueue {
    async fn enqueue(&self, message: &SyncMessage) -> Result<(), QueueError> {
        let body = serde_json::to_string(message).map_err(|e| QueueError(boxed(e)))?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| QueueError(boxed(e)))?;
        Ok(())
    }
}

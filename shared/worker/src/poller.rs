//! Lambda's SQS integration, done locally (the dev gateway, tests): long-polls the sync queue,
//! hands each batch to [`crate::handle_batch`] and deletes exactly the messages it did not
//! report as failures; the others come back after the queue's visibility timeout.

use crate::{handle_batch, Worker};
use aws_adapters::SqsQueue;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;
use tracing::warn;

/// How long one invocation may run, as the deployed function's timeout.
pub const INVOCATION_TIME: Duration = Duration::from_secs(900);
/// Messages per batch, as the deployed event source mapping.
pub const BATCH_SIZE: i32 = 1;
const LONG_POLL: Duration = Duration::from_secs(20);

/// One long poll and the batch it brought; answers how many messages it handled.
pub async fn poll_once(worker: &Worker, queue: &SqsQueue, wait: Duration) -> usize {
    let received = match queue.receive(BATCH_SIZE, wait).await {
        Ok(received) => received,
        Err(e) => {
            warn!(error = %e, "could not receive sync messages");
            tokio::time::sleep(Duration::from_secs(1)).await;
            return 0;
        }
    };
    if received.is_empty() {
        return 0;
    }
    let mut event = SqsEvent::default();
    for m in &received {
        let mut record = SqsMessage::default();
        record.message_id = Some(m.message_id.clone());
        record.receipt_handle = Some(m.receipt_handle.clone());
        record.body = Some(m.body.clone());
        event.records.push(record);
    }
    let response = handle_batch(worker, event, Instant::now() + INVOCATION_TIME).await;
    for m in &received {
        let failed = response
            .batch_item_failures
            .iter()
            .any(|f| f.item_identifier == m.message_id);
        if !failed {
            if let Err(e) = queue.delete(&m.receipt_handle).await {
                warn!(error = %e, "could not delete a handled sync message");
            }
        }
    }
    received.len()
}

/// Polls until `shutdown` resolves.
pub async fn run(worker: Worker, queue: SqsQueue, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = poll_once(&worker, &queue, LONG_POLL) => {}
            () = &mut shutdown => break,
        }
    }
}

//! Lambda's SQS integration, done locally (the dev gateway, tests): long-polls a queue, hands
//! each batch to the function's handler ([`crate::handle_batch`] for the sync queue) and
//! deletes exactly the messages it did not report as failures; the others come back after the
//! queue's visibility timeout.

use crate::{handle_batch, Worker};
use aws_adapters::SqsQueue;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;
use tracing::warn;

/// How long one invocation may run, as the deployed function's timeout.
pub const INVOCATION_TIME: Duration = Duration::from_secs(900);
/// Messages per batch, as the deployed event source mapping.
pub const BATCH_SIZE: i32 = 1;
pub(crate) const LONG_POLL: Duration = Duration::from_secs(20);

/// One long poll and the batch it brought; answers how many messages it handled.
pub async fn poll_once(worker: &Worker, queue: &SqsQueue, wait: Duration) -> usize {
    poll_queue(queue, BATCH_SIZE, wait, |event| {
        handle_batch(worker, event, Instant::now() + INVOCATION_TIME)
    })
    .await
}

/// One long poll of up to `batch` messages, handed to `handler` as Lambda's SQS event; the
/// messages it did not report as failures are deleted. Answers how many it handled.
pub async fn poll_queue<F, Fut>(queue: &SqsQueue, batch: i32, wait: Duration, handler: F) -> usize
where
    F: FnOnce(SqsEvent) -> Fut,
    Fut: Future<Output = SqsBatchResponse>,
{
    let received = match queue.receive(batch, wait).await {
        Ok(received) => received,
        Err(e) => {
            warn!(error = %e, queue = queue.queue_url(), "could not receive messages");
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
    let response = handler(event).await;
    for m in &received {
        let failed = response
            .batch_item_failures
            .iter()
            .any(|f| f.item_identifier == m.message_id);
        if !failed {
            if let Err(e) = queue.delete(&m.receipt_handle).await {
                warn!(error = %e, "could not delete a handled message");
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

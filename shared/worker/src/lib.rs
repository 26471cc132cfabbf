//! The background functions' handlers. Here, the sync worker's: an SQS batch of sync messages
//! in, the ids of the messages to deliver again out (`ReportBatchItemFailures`); the scheduler's
//! tick and the webhook sender have modules of their own. The Lambda functions and the dev
//! gateway's pollers run exactly this code.

pub mod poller;
pub mod scheduler;
pub mod webhook_sender;

pub use wiring::{telemetry, StartupError};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use domain::job::SyncMessage;
use domain::usecases::sync::{run_sync, SyncSettings};
use domain::usecases::Platform;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;
use tracing::{error, info, info_span, warn, Instrument};

/// The worker's dependencies, built once per cold start.
#[derive(Clone)]
pub struct Worker {
    pub platform: Platform,
    pub settings: SyncSettings,
}

impl Worker {
    pub async fn from_env() -> Result<Self, StartupError> {
        Ok(Self {
            platform: wiring::platform_from_env().await?,
            settings: wiring::sync_settings(),
        })
    }
}

/// The instant of a Lambda deadline given in epoch milliseconds.
pub fn deadline_from_epoch_millis(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

/// Runs every message of the batch, one after the other, within the invocation's `deadline`.
/// A message that cannot be parsed, that hit an infrastructure failure, or whose job another
/// invocation holds is reported as a batch item failure: SQS delivers it again later (and to
/// the dead-letter queue after `maxReceiveCount` deliveries).
pub async fn handle_batch(worker: &Worker, event: SqsEvent, deadline: Instant) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let span = info_span!("sync_message", message_id = %id);
        let retry = handle_message(worker, &record, deadline)
            .instrument(span)
            .await;
        if retry {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// `true` when the message should be delivered again.
async fn handle_message(worker: &Worker, record: &SqsMessage, deadline: Instant) -> bool {
    let body = record.body.as_deref().unwrap_or_default();
    let message: SyncMessage = match serde_json::from_str(body) {
        Ok(message) => message,
        Err(e) => {
            // Never the body itself: it is not ours to log.
            error!(error = %e, bytes = body.len(), "not a sync message; left for the dead-letter queue");
            return true;
        }
    };
    let before = aws_adapters::metering::snapshot();
    let outcome = run_sync(&worker.platform, &worker.settings, &message, deadline).await;
    let aws_requests = aws_adapters::metering::since(&before);
    let requests = serde_json::to_string(&aws_requests).unwrap_or_default();
    match outcome {
        Ok(handled) => {
            info!(handled = ?handled, aws_requests = %requests, "sync message handled");
            handled.retry()
        }
        Err(e) => {
            let chain = telemetry::chain(&e);
            warn!(error = %chain, aws_requests = %requests, "sync message failed; it will be delivered again");
            true
        }
    }
}

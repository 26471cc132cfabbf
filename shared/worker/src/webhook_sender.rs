//! The webhook sender's handler. One function takes two event sources:
//! - the webhooks table's stream (new messages only, by the mapping's filter): each message is
//!   dispatched, one delivery task per subscription that wants it;
//! - the delivery queue: each task is one attempt, run concurrently within the batch.
//!
//! Both answer partial batch failures, so only what failed comes again. The Lambda function and
//! the dev gateway's pollers run exactly this code.

use crate::poller::{poll_queue, LONG_POLL};
use crate::StartupError;
use aws_adapters::{streamed_message, AwsClients, SqsQueue, StreamPoller};
use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use domain::usecases::webhooks::dispatch::dispatch;
use domain::usecases::webhooks::send::{send, SenderSettings};
use domain::usecases::Platform;
use domain::webhooks::DeliveryTask;
use serde_json::Value;
use std::future::Future;
use tracing::{error, info, warn};

/// Delivery tasks per batch, as the deployed event source mapping.
pub const BATCH_SIZE: i32 = 10;

/// The sender's dependencies, built once per cold start.
#[derive(Clone)]
pub struct Sender {
    pub platform: Platform,
    pub settings: SenderSettings,
}

impl Sender {
    pub async fn from_env() -> Result<Self, StartupError> {
        let config = wiring::Config::from_env()?;
        let upstreams = wiring::Upstreams::from_env()?;
        let clients = AwsClients::from_env().await;
        Ok(Self {
            platform: wiring::platform(&config, &clients, upstreams)?,
            settings: wiring::sender_settings(&config),
        })
    }
}

/// An event of either source, as Lambda sends it; answers the batch item failures.
pub async fn handle_event(sender: &Sender, event: Value) -> Value {
    let source = event["Records"][0]["eventSource"]
        .as_str()
        .unwrap_or_default();
    let answer = if source == "aws:dynamodb" {
        match serde_json::from_value::<StreamEvent>(event) {
            Ok(event) => serde_json::to_value(handle_stream(sender, event).await),
            Err(e) => {
                error!(error = %e, "not a DynamoDB stream event");
                return Value::Null;
            }
        }
    } else {
        match serde_json::from_value::<SqsEvent>(event) {
            Ok(event) => serde_json::to_value(handle_deliveries(sender, event).await),
            Err(e) => {
                error!(error = %e, "neither a stream nor an SQS event");
                return Value::Null;
            }
        }
    };
    answer.unwrap_or(Value::Null)
}

/// Dispatches the new messages of a stream batch, in order. The first that fails is reported
/// and the rest are left: the mapping hands that record and those after it over again.
pub async fn handle_stream(sender: &Sender, event: StreamEvent) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    for record in event.records {
        if record.event_name != "INSERT" {
            continue;
        }
        let failed = match streamed_message(record.change.new_image) {
            Ok(None) => false,
            Ok(Some(message)) => match dispatch(&sender.platform, &message).await {
                Ok(done) => {
                    info!(message_id = %message.id, event_type = %message.event_type, queued = done.queued, disabled = done.disabled, "webhook message dispatched");
                    false
                }
                Err(e) => {
                    warn!(message_id = %message.id, error = %wiring::telemetry::chain(&e), "could not dispatch a webhook message; it comes again");
                    true
                }
            },
            Err(e) => {
                // A malformed message is not dispatched by trying again: logged, left for the
                // sweep's log too.
                error!(error = %e, "a webhook message in the stream cannot be read");
                false
            }
        };
        if failed {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = record.change.sequence_number;
            response.batch_item_failures.push(failure);
            break;
        }
    }
    response
}

/// Runs every task of the batch at once (each is one POST of at most 15 s).
pub async fn handle_deliveries(sender: &Sender, event: SqsEvent) -> SqsBatchResponse {
    let mut running = tokio::task::JoinSet::new();
    for record in event.records {
        let sender = sender.clone();
        running.spawn(async move {
            let retry = handle_task(&sender, &record).await;
            (record.message_id.unwrap_or_default(), retry)
        });
    }
    let mut response = SqsBatchResponse::default();
    while let Some(done) = running.join_next().await {
        let (id, retry) = match done {
            Ok(done) => done,
            Err(e) => {
                // A task that panicked cannot name its message; it comes back after the
                // visibility timeout like a crash.
                error!(error = %e, "a delivery task panicked");
                continue;
            }
        };
        if retry {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// `true` when the task should come again.
async fn handle_task(sender: &Sender, record: &SqsMessage) -> bool {
    let body = record.body.as_deref().unwrap_or_default();
    let task: DeliveryTask = match serde_json::from_str(body) {
        Ok(task) => task,
        Err(e) => {
            error!(error = %e, bytes = body.len(), "not a delivery task; left for the dead-letter queue");
            return true;
        }
    };
    match send(&sender.platform, &sender.settings, &task).await {
        Ok(sent) => {
            info!(message_id = %task.message_id, subscription_id = %task.subscription_id, attempt = task.attempt, sent = ?sent, "delivery task done");
            false
        }
        Err(e) => {
            warn!(message_id = %task.message_id, subscription_id = %task.subscription_id, attempt = task.attempt, error = %wiring::telemetry::chain(&e), "delivery task failed; it comes again");
            true
        }
    }
}

/// The dev gateway's stand-in for both event source mappings: the stream read into
/// [`handle_stream`] and the delivery queue polled into [`handle_deliveries`], until
/// `shutdown` resolves.
pub async fn run_local(
    sender: Sender,
    stream: StreamPoller,
    queue: SqsQueue,
    shutdown: impl Future<Output = ()>,
) {
    let dispatching = {
        let sender = sender.clone();
        stream.run(
            move |event| {
                let sender = sender.clone();
                async move { handle_stream(&sender, event).await }
            },
            std::future::pending(),
        )
    };
    let delivering = async {
        loop {
            poll_queue(&queue, BATCH_SIZE, LONG_POLL, |event| {
                handle_deliveries(&sender, event)
            })
            .await;
        }
    };
    tokio::select! {
        () = dispatching => {}
        () = delivering => {}
        () = shutdown => {}
    }
}

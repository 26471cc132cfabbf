//! The scheduler's handler. Two events reach the function: EventBridge's minute event (one tick
//! of the scheduler: the due schedules, then the sweeps) and, from the scheduler's own SQS
//! queue, shards of a minute's due schedules that another invocation could not claim in time.
//! The Lambda function and the dev gateway (its minute timer, its poller of the queue) run
//! exactly this code.

use crate::poller::{poll_queue, LONG_POLL};
use aws_adapters::{AwsClients, SqsQueue};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use domain::ports::ScheduleHandOff;
use domain::schedule::ScheduleShard;
use domain::usecases::scheduler::{claim_shard, tick, TickLimits, TickReport};
use domain::usecases::Platform;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tracing::{error, info_span, warn, Instrument};
use wiring::{Config, StartupError, Upstreams};

/// What the function answers to a tick: its report (also its log line).
pub type TickSummary = TickReport;

/// The scheduler's dependencies, built once per cold start.
#[derive(Clone)]
pub struct Scheduler {
    pub platform: Platform,
    /// The scheduler's queue; `None` when the stack has none (the rest waits a minute).
    pub hand_off: Option<Arc<dyn ScheduleHandOff>>,
    pub limits: TickLimits,
}

impl Scheduler {
    pub async fn from_env() -> Result<Self, StartupError> {
        let config = Config::from_env()?;
        let clients = AwsClients::from_env().await;
        let platform = wiring::platform(&config, &clients, Upstreams::from_env()?)?;
        Ok(Self::new(platform, &config, &clients))
    }

    /// The scheduler of `platform`, handing off to the configured queue.
    pub fn new(platform: Platform, config: &Config, clients: &AwsClients) -> Self {
        let hand_off = config.scheduler_queue_url.as_ref().map(|url| {
            Arc::new(SqsQueue::new(clients.sqs.clone(), url.clone())) as Arc<dyn ScheduleHandOff>
        });
        Self {
            platform,
            hand_off,
            limits: TickLimits::default(),
        }
    }

    fn hand_off(&self) -> Option<&dyn ScheduleHandOff> {
        self.hand_off.as_deref()
    }
}

/// The function's answer to any event it receives: the tick's report, or the shards' batch
/// response.
pub async fn handle(scheduler: &Scheduler, event: serde_json::Value) -> serde_json::Value {
    let answer = if event.get("Records").is_some() {
        match serde_json::from_value::<SqsEvent>(event) {
            Ok(batch) => serde_json::to_value(handle_shards(scheduler, batch).await),
            Err(e) => {
                error!(error = %e, "not an SQS event of schedule shards");
                serde_json::to_value(SqsBatchResponse::default())
            }
        }
    } else {
        match serde_json::from_value::<EventBridgeEvent>(event) {
            Ok(event) => serde_json::to_value(handle_tick(scheduler, &event).await),
            Err(e) => {
                error!(error = %e, "not a scheduled event");
                Ok(serde_json::Value::Null)
            }
        }
    };
    answer.unwrap_or_default()
}

/// Runs one tick. The event only names the rule and the minute it fired for; the tick itself
/// works from the clock, so a late or repeated event is harmless.
pub async fn handle_tick(scheduler: &Scheduler, event: &EventBridgeEvent) -> TickSummary {
    let span = info_span!(
        "scheduler_tick",
        event_id = event.id.as_deref().unwrap_or_default(),
        scheduled_for = ?event.time,
    );
    tick(&scheduler.platform, &scheduler.limits, scheduler.hand_off())
        .instrument(span)
        .await
}

/// Claims each shard of the batch. None is ever delivered again: a claim is conditional, so a
/// shard that failed part-way leaves its schedules due, and the next tick claims them.
pub async fn handle_shards(scheduler: &Scheduler, batch: SqsEvent) -> SqsBatchResponse {
    for record in batch.records {
        let body = record.body.as_deref().unwrap_or_default();
        match serde_json::from_str::<ScheduleShard>(body) {
            Ok(shard) => {
                let span = info_span!(
                    "schedule_shard",
                    message_id = record.message_id.as_deref().unwrap_or_default()
                );
                claim_shard(
                    &scheduler.platform,
                    &scheduler.limits,
                    &shard,
                    scheduler.hand_off(),
                )
                .instrument(span)
                .await;
            }
            Err(e) => warn!(error = %e, bytes = body.len(), "not a schedule shard; dropped"),
        }
    }
    SqsBatchResponse::default()
}

/// The dev gateway's stand-in for the EventBridge rule: a tick every `period` until `shutdown`,
/// each fed the event the rule would send.
pub async fn run_every(scheduler: Scheduler, period: Duration, shutdown: impl Future<Output = ()>) {
    let ticks = async {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let event = serde_json::json!({
                "version": "0",
                "id": uuid::Uuid::new_v4().to_string(),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "time": scheduler.platform.clock.now().to_rfc3339(),
                "resources": ["dev-gateway/scheduler-tick"],
                "detail": {},
            });
            handle(&scheduler, event).await;
        }
    };
    tokio::select! {
        () = ticks => {}
        () = shutdown => {}
    }
}

/// The dev gateway's stand-in for the scheduler queue's event source mapping: shards, one at a
/// time, until `shutdown`.
pub async fn run_shards(scheduler: Scheduler, queue: SqsQueue, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = poll_queue(&queue, 1, LONG_POLL, |batch| handle_shards(&scheduler, batch)) => {}
            () = &mut shutdown => break,
        }
    }
}

//! The scheduler's handler: one EventBridge scheduled event in, one tick of the scheduler (due
//! schedules, then the sweeps), a summary of what it did out. The Lambda function and the dev
//! gateway's minute timer run exactly this code.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use domain::usecases::scheduler::{tick, TickLimits, TickReport};
use domain::usecases::Platform;
use std::future::Future;
use std::time::Duration;
use tracing::{info_span, warn, Instrument};

/// What the function answers: the tick's report (also its log line).
pub type TickSummary = TickReport;

/// Runs one tick. The event only names the rule and the minute it fired for; the tick itself
/// works from the clock, so a late or repeated event is harmless.
pub async fn handle_tick(platform: &Platform, event: &EventBridgeEvent) -> TickSummary {
    let span = info_span!(
        "scheduler_tick",
        event_id = event.id.as_deref().unwrap_or_default(),
        scheduled_for = ?event.time,
    );
    tick(platform, &TickLimits::default())
        .instrument(span)
        .await
}

/// The dev gateway's stand-in for the EventBridge rule: a tick every `period` until `shutdown`,
/// each fed the event the rule would send.
pub async fn run_every(platform: Platform, period: Duration, shutdown: impl Future<Output = ()>) {
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
                "time": platform.clock.now().to_rfc3339(),
                "resources": ["dev-gateway/scheduler-tick"],
                "detail": {},
            });
            match serde_json::from_value::<EventBridgeEvent>(event) {
                Ok(event) => {
                    handle_tick(&platform, &event).await;
                }
                Err(e) => warn!(error = %e, "could not build the scheduler's event"),
            }
        }
    };
    tokio::select! {
        () = ticks => {}
        () = shutdown => {}
    }
}

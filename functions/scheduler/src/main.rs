//! The `scheduler` Lambda function, run every minute by EventBridge: config -> clients -> run.
//! All logic lives in `shared/`.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use worker::scheduler::{handle_tick, TickSummary};
use worker::{telemetry, Worker};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let worker = Worker::from_env().await?;
    run(service_fn(move |event: LambdaEvent<EventBridgeEvent>| {
        let worker = worker.clone();
        async move { Ok::<TickSummary, Error>(handle_tick(&worker.platform, &event.payload).await) }
    }))
    .await
}

//! The `scheduler` Lambda function, run every minute by EventBridge and by its own queue's
//! shards: config -> clients -> run. All logic lives in `shared/`.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use worker::scheduler::{handle, Scheduler};
use worker::telemetry;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let scheduler = Scheduler::from_env().await?;
    run(service_fn(move |event: LambdaEvent<Value>| {
        let scheduler = scheduler.clone();
        async move { Ok::<Value, Error>(handle(&scheduler, event.payload).await) }
    }))
    .await
}

//! The `webhook-sender` Lambda function: the webhooks table's stream (dispatch) and the delivery
//! queue (attempts). config -> clients -> run. All logic lives in `shared/`.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use worker::telemetry;
use worker::webhook_sender::{handle_event, Sender};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let sender = Sender::from_env().await?;
    run(service_fn(move |event: LambdaEvent<Value>| {
        let sender = sender.clone();
        async move { Ok::<Value, Error>(handle_event(&sender, event.payload).await) }
    }))
    .await
}

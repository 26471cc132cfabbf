//! The `sync-worker` Lambda function: config -> clients -> run. All logic lives in `shared/`.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use worker::{deadline_from_epoch_millis, handle_batch, telemetry, Worker};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let worker = Worker::from_env().await?;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let worker = worker.clone();
        let deadline = deadline_from_epoch_millis(event.context.deadline);
        async move {
            Ok::<SqsBatchResponse, Error>(handle_batch(&worker, event.payload, deadline).await)
        }
    }))
    .await
}

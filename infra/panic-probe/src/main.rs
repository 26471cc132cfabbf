//! A handler that panics on `{"panic": true}` and answers every other event with itself, run
//! as the functions run theirs (`lambda_runtime::run` on a current-thread Tokio runtime).
//! `infra/bench/panic.py` drives it through a fake Runtime API: built with the workspace's
//! `panic = "unwind"` the runtime reports the panic as the invocation's error and serves the next
//! event; built with `panic = "abort"` the process dies with the event unanswered.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    run(service_fn(|event: LambdaEvent<Value>| async move {
        if event.payload["panic"] == true {
            panic!("the probe was asked to panic");
        }
        Ok::<_, Error>(event.payload)
    }))
    .await
}

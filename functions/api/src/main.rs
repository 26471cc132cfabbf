//! The `api` Lambda function: config -> clients -> run. All logic lives in `shared/`.

use http_api::{telemetry, App, Function};
use lambda_http::{run, service_fn, Error, Request};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let app = App::from_env().await?;
    run(service_fn(move |req: Request| {
        let app = app.clone();
        async move { Ok::<_, Error>(http_api::handle(&app, Function::Api, req).await) }
    }))
    .await
}

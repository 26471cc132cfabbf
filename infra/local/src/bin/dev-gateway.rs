//! `make dev`: bootstraps the emulator's resources, makes sure a dev API key exists in
//! `.dev/api-key`, serves every route on 127.0.0.1:$PORT, runs the sync worker on the
//! emulator's queue (as Lambda's SQS integration would), the webhook sender on the webhooks
//! table's stream and the delivery queue, and the scheduler's tick every minute
//! (as the EventBridge rule would; `SCHEDULER_TICK_SECONDS` changes the period) and its queue
//! of shards until interrupted. `OAUTH_<SHORT_NAME>_CLIENT_ID`/`_CLIENT_SECRET` become the platform's OAuth app
//! for that source in the emulator's Secrets Manager. `FAULT_RATE` (0..1, the soak benchmark)
//! fails that share of the platform's AWS requests at random, in the ways the fault matrix
//! does; the queue polling that stands in for Lambda's SQS integration is never failed.

use aws_adapters::{AwsClients, DynamoStore, SqsQueue, StreamPoller};
use http_api::{telemetry, App};
use local_stack::gateway;
use local_stack::stack::{bootstrap, ensure_dev_key, load_oauth_apps, LocalSettings};
use secrecy::ExposeSecret;
use std::path::PathBuf;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    telemetry::init();
    let settings = LocalSettings::from_env()?;
    let clients = AwsClients::from_env().await;
    let stack = bootstrap(&clients, &settings).await?;
    let config = stack.config;
    let store = DynamoStore::new(clients.dynamodb.clone(), config.state_table.clone());
    let dev_dir = std::env::var("DEV_DIR").map_or_else(|_| PathBuf::from(".dev"), PathBuf::from);
    let key_file = dev_dir.join("api-key");
    let key = ensure_dev_key(&store, &key_file).await?;

    let platform_clients = local_stack::faults::with_faults_from_env(&clients)?;
    let app = App::from_parts(&config, &platform_clients, wiring::Upstreams::from_env()?)?;
    let loaded = load_oauth_apps(
        app.platform.vault.as_ref(),
        app.platform.sources.as_ref(),
        |name| std::env::var(name).ok(),
    )
    .await?;
    if !loaded.is_empty() {
        println!("OAuth apps from the environment: {}", loaded.join(", "));
    }
    let worker = worker::Worker {
        platform: app.platform.clone(),
        settings: wiring::sync_settings(),
    };
    let queue = SqsQueue::new(clients.sqs.clone(), config.sync_queue_url.clone());
    let sender = worker::webhook_sender::Sender {
        platform: app.platform.clone(),
        settings: wiring::sender_settings(&config),
    };
    // They end with the process: the gateway returning ends `main`.
    tokio::spawn(worker::poller::run(worker, queue, std::future::pending()));
    tokio::spawn(worker::webhook_sender::run_local(
        sender,
        StreamPoller::new(clients.streams.clone(), stack.webhooks_stream_arn),
        SqsQueue::new(clients.sqs.clone(), config.webhook_queue_url.clone()),
        std::future::pending(),
    ));
    let scheduler = worker::scheduler::Scheduler::new(app.platform.clone(), &config, &clients);
    if let Some(url) = &config.scheduler_queue_url {
        let shards = SqsQueue::new(clients.sqs.clone(), url.clone());
        tokio::spawn(worker::scheduler::run_shards(
            scheduler.clone(),
            shards,
            std::future::pending(),
        ));
    }
    tokio::spawn(worker::scheduler::run_every(
        scheduler,
        settings.scheduler_tick,
        std::future::pending(),
    ));
    let listener = TcpListener::bind(("127.0.0.1", settings.port)).await?;
    // The dev key only opens the emulator's data; it goes to the terminal, never to the log.
    println!(
        "dev gateway on http://127.0.0.1:{}\ndev API key (emulator only, also in {}): {}",
        settings.port,
        key_file.display(),
        key.expose_secret()
    );
    gateway::serve(listener, app, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    Ok(())
}

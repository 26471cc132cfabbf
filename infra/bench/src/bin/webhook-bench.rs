//! The webhook benchmark (`make bench-webhooks`): on a fresh stack on the emulator, the sender
//! runs in-process as `make dev` runs it (the stream read four times a second as Lambda's
//! mapping does, the delivery queue long-polled), delivering to a local receiver.
//!
//! - Latency: one collection created at a time (its event recorded in the create's
//!   transaction); the time from the create's commit to the receiver's first byte of the POST.
//! - Throughput: on a second fresh stack, events recorded while the sender is stopped, then the
//!   sender started: the deliveries per second until the receiver has them all, and the AWS
//!   requests per delivery the platform made (the stream reads, SQS receives and deletes are
//!   Lambda's, not counted).
//!
//! Prints one JSON object; `infra/bench/webhooks.py` records it in BENCHMARKS.md.
//! Usage: webhook-bench [LATENCY_EVENTS] [THROUGHPUT_EVENTS]

use aws_adapters::{metering, AwsClients, SqsQueue, StreamPoller};
use domain::collection::CreateCollectionInput;
use domain::ports::BoxError;
use domain::usecases::collections::create_collection;
use domain::usecases::webhooks::subscriptions::create_subscription;
use domain::webhooks::NewSubscription;
use fakes::receiver::FakeReceiver;
use serde_json::json;
use std::time::{Duration, Instant};
use worker::webhook_sender::{run_local, Sender};

/// A fresh stack with one organization subscribed to `collection.created` at a local receiver.
struct Bench {
    clients: AwsClients,
    config: wiring::Config,
    stream_arn: String,
    platform: domain::usecases::Platform,
    org: domain::ids::OrganizationId,
    receiver: FakeReceiver,
    created: usize,
}

impl Bench {
    async fn new(clients: &AwsClients) -> Result<Self, BoxError> {
        let stack = bench::fresh_stack(clients, true).await?;
        let platform = wiring::platform(&stack.config, clients, wiring::Upstreams::from_env()?)?;
        let org =
            local_stack::stack::create_organization(platform.store.as_ref(), "Bench", None).await?;
        let receiver = FakeReceiver::start().await;
        create_subscription(
            &platform,
            org,
            NewSubscription {
                url: Some(receiver.url.clone()),
                event_types: Some(vec!["collection.created".into()]),
                ..NewSubscription::default()
            },
        )
        .await?;
        Ok(Self {
            clients: clients.clone(),
            config: stack.config,
            stream_arn: stack.webhooks_stream_arn,
            platform,
            org,
            receiver,
            created: 0,
        })
    }

    /// The sender on this stack, as `make dev` runs it, until the answered sender is dropped.
    fn start_sender(&self) -> tokio::sync::oneshot::Sender<()> {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let sender = Sender {
            platform: self.platform.clone(),
            settings: wiring::sender_settings(&self.config),
        };
        tokio::spawn(run_local(
            sender,
            StreamPoller::new(self.clients.streams.clone(), &self.stream_arn),
            SqsQueue::new(self.clients.sqs.clone(), &self.config.webhook_queue_url),
            async {
                let _ = stopped.await;
            },
        ));
        stop
    }

    /// A state change with an event: a collection created (its transaction records it).
    async fn create(&mut self) -> Result<(), BoxError> {
        self.created += 1;
        let n = self.created;
        create_collection(
            &self.platform,
            self.org,
            CreateCollectionInput {
                name: Some(format!("Bench {n}")),
                readable_id: Some(format!("bench-{n}")),
            },
        )
        .await?;
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let latency_events: usize = args.get(1).map_or(Ok(200), |a| a.parse())?;
    let throughput_events: usize = args.get(2).map_or(Ok(500), |a| a.parse())?;
    let clients = AwsClients::from_env().await;

    // Latency, one event at a time.
    let mut first = Bench::new(&clients).await?;
    let stop = first.start_sender();
    let mut latencies = Vec::with_capacity(latency_events);
    for i in 0..latency_events {
        first.create().await?;
        let committed = Instant::now();
        let got = first
            .receiver
            .wait_for(i + 1, Duration::from_secs(30))
            .await;
        let Some(delivery) = got.get(i) else {
            return Err(format!("event {} was not delivered within 30 s", i + 1).into());
        };
        latencies.push(delivery.received_at.saturating_duration_since(committed));
    }
    drop(stop);

    // Throughput: a backlog on a fresh stack, then the sender.
    let mut second = Bench::new(&clients).await?;
    for _ in 0..throughput_events {
        second.create().await?;
    }
    let requests_before = metering::snapshot();
    let started = Instant::now();
    let stop = second.start_sender();
    let got = second
        .receiver
        .wait_for(throughput_events, Duration::from_secs(1800))
        .await;
    if got.len() < throughput_events {
        return Err(format!("{} of {throughput_events} delivered", got.len()).into());
    }
    let elapsed = got[throughput_events - 1]
        .received_at
        .saturating_duration_since(started);
    let requests = metering::since(&requests_before);
    drop(stop);
    let platform_requests: u64 = requests
        .iter()
        .filter(|(op, _)| {
            !op.starts_with("DynamoDBStreams")
                && !op.ends_with("ReceiveMessage")
                && !op.ends_with("DeleteMessage")
                && !op.starts_with("entities.")
        })
        .map(|(_, n)| n)
        .sum();

    latencies.sort();
    let millis = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| latencies[((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1)];
    println!(
        "{}",
        json!({
            "latency_events": latency_events,
            "latency_median_ms": millis(at(0.5)),
            "latency_p99_ms": millis(at(0.99)),
            "latency_max_ms": millis(*latencies.last().unwrap()),
            "throughput_events": throughput_events,
            "throughput_seconds": elapsed.as_secs_f64(),
            "deliveries_per_second": throughput_events as f64 / elapsed.as_secs_f64(),
            "platform_requests_per_delivery": platform_requests as f64 / throughput_events as f64,
            "requests": requests,
        })
    );
    Ok(())
}

//! The fault matrix of webhooks: each operation of a subscribed organization is run once to
//! count its AWS requests from the API call to the last delivery (the change's transaction with
//! its event, the worker, the stream's dispatch, the sender's reads, POST and record), then once
//! per request with that request failed (the kinds taken in turn, as in the main matrix). Then
//! the client retries, SQS and the stream hand over again what was given back, time moves on
//! and the scheduler's sweeps run; then the invariants: the same events recorded as without the
//! fault, each once (none lost, none invented); every one delivered to the receiver and logged
//! with a successful attempt; every delivery of a message with that message's id (a repeat is
//! allowed: delivery is at least once).

use crate::helpers::app::{stub_body, TestApp};
use crate::helpers::clock::TestClock;
use crate::helpers::faults::{Call, Faults, Kind};
use aws_adapters::{DynamoStore, DynamoWebhooks, SecretsVault, SqsQueue, StreamPoller};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use chrono::{Duration, Utc};
use domain::usecases::scheduler::{tick, TickLimits};
use domain::usecases::sync::SyncSettings;
use domain::usecases::webhooks::send::SenderSettings;
use domain::webhooks::RetrySchedule;
use fakes::receiver::FakeReceiver;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;
use tokio::sync::Mutex;
use worker::webhook_sender::{handle_deliveries, handle_stream, Sender};
use worker::Worker;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    CreateCollection,
    RunSync,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::CreateCollection => "collection created, delivered",
            Op::RunSync => "POST run, synced, its three events delivered",
        }
    }
}

const EVENTS: [&str; 4] = [
    "collection.created",
    "sync.pending",
    "sync.running",
    "sync.completed",
];
const LEASE: std::time::Duration = std::time::Duration::from_secs(120);

struct World {
    app: TestApp,
    faults: Faults,
    clock: Arc<TestClock>,
    worker: Worker,
    sender: Sender,
    receiver: FakeReceiver,
    stream: Mutex<StreamPoller>,
    /// The queues without the interceptor: SQS's own hand-over to Lambda is not ours to fail.
    sync_queue: SqsQueue,
    deliveries: SqsQueue,
    connection: Option<String>,
}

impl World {
    async fn new(op: Op) -> World {
        let faults = Faults::default();
        let clock = Arc::new(TestClock::new(Utc::now()));
        let (f, c) = (faults.clone(), Arc::clone(&clock));
        let app = TestApp::spawn_customized(move |p, aws| {
            let dynamodb = f.dynamodb(&aws.clients.dynamodb);
            let secrets = SecretsVault::new(f.secrets(&aws.clients.secrets), &aws.secrets_prefix);
            p.store = Arc::new(
                DynamoStore::new(dynamodb.clone(), &aws.state_table)
                    .with_outbox(&aws.webhooks_table),
            );
            p.webhooks = Arc::new(DynamoWebhooks::new(dynamodb, &aws.webhooks_table));
            p.vault = Arc::new(secrets.clone());
            p.webhook_secrets = Arc::new(secrets);
            p.queue = Arc::new(SqsQueue::new(f.sqs(&aws.clients.sqs), &aws.queue_url));
            p.deliveries = Arc::new(SqsQueue::new(
                f.sqs(&aws.clients.sqs),
                &aws.webhook_queue_url,
            ));
            p.clock = c;
        })
        .await;
        let receiver = FakeReceiver::start().await;
        let subscribed = app
            .post(
                "/webhooks/subscriptions",
                &json!({"url": receiver.url, "event_types": EVENTS}),
            )
            .await;
        assert_eq!(subscribed.status(), 200);
        let worker = Worker {
            platform: app.platform.clone(),
            settings: SyncSettings {
                lease: LEASE,
                ..SyncSettings::default()
            },
        };
        let sender = Sender {
            platform: app.platform.clone(),
            settings: SenderSettings {
                schedule: RetrySchedule::parse("0,0,0,0").unwrap(),
                ..SenderSettings::default()
            },
        };
        let stream = Mutex::new(StreamPoller::new(
            app.aws.clients.streams.clone(),
            &app.aws.webhooks_stream_arn,
        ));
        let (sync_queue, deliveries) = (app.aws.queue(), app.aws.deliveries());
        let mut world = World {
            app,
            faults,
            clock,
            worker,
            sender,
            receiver,
            stream,
            sync_queue,
            deliveries,
            connection: None,
        };
        if op == Op::RunSync {
            world.app.create_collection("docs").await;
            let mut body = stub_body("docs", "k-matrix");
            body["sync_immediately"] = json!(false);
            let created = world.app.post("/source-connections", &body).await;
            assert_eq!(created.status(), 201);
            let created: Value = created.json().await.unwrap();
            world.connection = Some(created["id"].as_str().unwrap().to_owned());
        }
        // What the setup recorded goes out before the operation starts.
        world.flow().await;
        world
    }

    /// The operation's API call, then every hand-over it leads to.
    async fn act(&self, op: Op) {
        match op {
            Op::CreateCollection => {
                let body = json!({"name": "Matrix", "readable_id": "matrix"});
                self.app.post("/collections", &body).await;
            }
            Op::RunSync => {
                let id = self.connection.as_deref().unwrap();
                let path = format!("/source-connections/{id}/run");
                self.app.post(&path, &json!({})).await;
            }
        }
        self.flow().await;
    }

    /// Whether the operation was done, as the client reads it back (its answer is not enough:
    /// a 409 may be a fault's doing rather than an earlier success).
    async fn done(&self, op: Op) -> bool {
        match op {
            Op::CreateCollection => self.app.get("/collections/matrix").await.status() == 200,
            Op::RunSync => {
                let id = self.connection.as_deref().unwrap();
                !crate::helpers::syncing::jobs(&self.app, id)
                    .await
                    .is_empty()
            }
        }
    }

    /// Every hand-over the platform's triggers make, until nothing moves: the sync queue to
    /// the worker, the stream to the dispatch, the webhook queue to the sender. What a handler
    /// gives back comes again at once (leases run out on the moved clock).
    async fn flow(&self) {
        for _ in 0..40 {
            let mut moved = 0;
            for m in self
                .sync_queue
                .receive(10, std::time::Duration::ZERO)
                .await
                .unwrap()
            {
                moved += 1;
                let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(600);
                let handled =
                    worker::handle_batch(&self.worker, event_of(&m.message_id, &m.body), deadline)
                        .await
                        .batch_item_failures
                        .is_empty();
                self.settle(&self.sync_queue, &m.receipt_handle, handled)
                    .await;
            }
            let sender = &self.sender;
            moved += self
                .stream
                .lock()
                .await
                .poll_once(|event| handle_stream(sender, event))
                .await
                .unwrap_or(1);
            let tasks = self
                .deliveries
                .receive(10, std::time::Duration::ZERO)
                .await
                .unwrap();
            if !tasks.is_empty() {
                moved += tasks.len();
                let mut event = SqsEvent::default();
                for m in &tasks {
                    event
                        .records
                        .extend(event_of(&m.message_id, &m.body).records);
                }
                let failed = handle_deliveries(sender, event).await.batch_item_failures;
                for m in &tasks {
                    let handled = !failed.iter().any(|f| f.item_identifier == m.message_id);
                    self.settle(&self.deliveries, &m.receipt_handle, handled)
                        .await;
                }
            }
            if moved == 0 {
                return;
            }
        }
        panic!("the flow never settled: something loops");
    }

    async fn settle(&self, queue: &SqsQueue, receipt: &str, handled: bool) {
        if handled {
            queue.delete(receipt).await.expect("delete");
            return;
        }
        self.clock
            .advance(Duration::from_std(LEASE).unwrap() + Duration::seconds(1));
        self.app
            .aws
            .clients
            .sqs
            .change_message_visibility()
            .queue_url(queue.queue_url())
            .receipt_handle(receipt)
            .visibility_timeout(0)
            .send()
            .await
            .expect("visible again");
    }

    /// Time passes and the scheduler's sweeps run (lost sync messages, the webhook outbox).
    async fn recover(&self) {
        for step in [Duration::minutes(20), Duration::hours(2)] {
            self.clock.advance(step);
            tick(&self.app.platform, &TickLimits::default(), None).await;
            self.flow().await;
        }
    }
}

fn event_of(id: &str, body: &str) -> SqsEvent {
    let mut record = SqsMessage::default();
    record.message_id = Some(id.to_owned());
    record.body = Some(body.to_owned());
    let mut event = SqsEvent::default();
    event.records.push(record);
    event
}

/// The recorded events' types, with how often each was recorded.
type Recorded = BTreeMap<String, usize>;

/// The invariants after recovery; answers what was recorded and what is broken.
async fn invariants(w: &World) -> (Recorded, Vec<String>) {
    let mut violations = Vec::new();
    let messages: Vec<Value> = w
        .app
        .get("/webhooks/messages?limit=100")
        .await
        .json()
        .await
        .unwrap();
    let mut recorded = Recorded::new();
    let mut ids = BTreeMap::new();
    // Only what the receiver subscribed to is delivered (a connection's creation is not).
    for message in messages
        .iter()
        .filter(|m| EVENTS.contains(&m["event_type"].as_str().unwrap_or_default()))
    {
        let event_type = message["event_type"].as_str().unwrap().to_owned();
        *recorded.entry(event_type.clone()).or_default() += 1;
        let id = message["id"].as_str().unwrap().to_owned();
        let attempts = crate::webhook_delivery::attempts_of(&w.app, &id).await;
        if !attempts.iter().any(|a| a["status"] == "success") {
            violations.push(format!(
                "{event_type} {id} has no successful attempt: {attempts:?}"
            ));
        }
        ids.insert(id, event_type);
    }
    let received: BTreeSet<String> = w
        .receiver
        .deliveries()
        .iter()
        .map(|d| d.webhook_id().to_owned())
        .collect();
    for (id, event_type) in &ids {
        if !received.contains(id) {
            violations.push(format!("{event_type} {id} was never delivered"));
        }
    }
    for id in received.iter().filter(|id| !ids.contains_key(*id)) {
        violations.push(format!("{id} was delivered but is no recorded message"));
    }
    (recorded, violations)
}

struct Case {
    calls: Vec<Call>,
    injected: Option<(Call, Kind)>,
    recorded: Recorded,
    violations: Vec<String>,
}

async fn case(op: Op, fault: Option<(usize, Kind)>) -> Case {
    let w = World::new(op).await;
    w.faults.arm(fault);
    w.act(op).await;
    w.faults.disarm();
    let (calls, injected) = (w.faults.calls(), w.faults.injected());
    let mut violations = Vec::new();
    // The client sends again what it does not find done.
    if !w.done(op).await {
        w.act(op).await;
        if !w.done(op).await {
            violations.push("the client's retry did not do it".to_owned());
        }
    }
    w.recover().await;
    let (recorded, broken) = invariants(&w).await;
    violations.extend(broken);
    Case {
        calls,
        injected,
        recorded,
        violations,
    }
}

const PARALLEL: usize = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_aws_request_of_a_delivered_event_failed_once_loses_no_event() {
    // FAULT_MATRIX=full: every kind of fault that applies at every request (as the main matrix).
    let full = std::env::var("FAULT_MATRIX").is_ok_and(|mode| mode == "full");
    let mode = if full {
        "every kind of fault at every request"
    } else {
        "one kind of fault at every request, kinds in turn"
    };
    let mut table = format!(
        "webhook fault matrix ({mode}):\n| operation | AWS requests | faults injected | invariant violations |\n| --- | ---: | ---: | ---: |\n",
    );
    let mut details = Vec::new();
    for op in [Op::CreateCollection, Op::RunSync] {
        let clean = case(op, None).await;
        details.extend(
            clean
                .violations
                .iter()
                .map(|v| format!("{}: fault-free: {v}", op.name())),
        );
        let expected = Arc::new(clean.recorded);
        let slots = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
        let mut cases = tokio::task::JoinSet::new();
        for (index, call) in clean.calls.iter().enumerate() {
            let applicable: Vec<Kind> = Kind::ALL
                .into_iter()
                .filter(|kind| *kind != Kind::ConditionFailed || call.conditional)
                .collect();
            let kinds = if full {
                applicable
            } else {
                vec![applicable[index % applicable.len()]]
            };
            for kind in kinds {
                let slot = Arc::clone(&slots).acquire_owned().await.unwrap();
                let expected = Arc::clone(&expected);
                cases.spawn(async move {
                    let mut faulted = case(op, Some((index, kind))).await;
                    if faulted.recorded != *expected {
                        faulted.violations.push(format!(
                            "recorded {:?}, without the fault {:?}",
                            faulted.recorded, expected
                        ));
                    }
                    drop(slot);
                    (index, kind, faulted)
                });
            }
        }
        let (mut faults, mut violations) = (0, 0);
        while let Some(done) = cases.join_next().await {
            let (index, kind, faulted) = done.expect("a case panicked");
            let Some((hit, _)) = faulted.injected else {
                continue;
            };
            faults += 1;
            violations += faulted.violations.len();
            details.extend(
                faulted
                    .violations
                    .iter()
                    .map(|v| format!("{}: {kind:?} at #{index} {}: {v}", op.name(), hit.operation)),
            );
        }
        writeln!(
            table,
            "| {} | {} | {faults} | {violations} |",
            op.name(),
            clean.calls.len()
        )
        .unwrap();
    }
    crate::helpers::figures(&table);
    assert!(details.is_empty(), "{table}\n{}", details.join("\n"));
}

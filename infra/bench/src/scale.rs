//! The scheduler at scale (`make bench-scale`, and a 1,000-connection version in `make test`):
//! many connections due in the same minute on a fresh stack on the emulator, claimed by one
//! tick or by concurrent ticks, with the shards they hand off taken on through the scheduler's
//! own SQS queue as Lambda would. Every AWS request of the platform is counted by its own
//! clients (not the process's meter), so a run beside other tests counts only itself.

use crate::fresh_stack;
use aws_adapters::{AwsClients, SqsQueue};
use aws_sdk_dynamodb::types::{AttributeValue, Select};
use chrono::{DateTime, Duration as Minutes, Timelike, Utc};
use domain::clock::FixedClock;
use domain::collection::CreateCollectionInput;
use domain::ids::{ConnectionId, OrganizationId};
use domain::ports::{BoxError, NewConnection, ScheduleHandOff, ScheduleStore};
use domain::usecases::collections::create_collection;
use domain::usecases::create_connection::create_connection;
use domain::usecases::scheduler::{tick, TickLimits, TickReport};
use domain::usecases::Platform;
use local_stack::faults::Faults;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wiring::{Config, Upstreams};
use worker::scheduler::{handle_shards, Scheduler};

/// A fresh stack whose platform's requests are counted.
pub struct ScaleStack {
    pub platform: Platform,
    pub config: Config,
    /// The platform's clients, counted.
    clients: AwsClients,
    /// Uncounted clients, for the checks.
    raw: AwsClients,
    counter: Faults,
    organizations: Vec<OrganizationId>,
}

/// What claiming one minute did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MinuteReport {
    /// Ticks started at once (EventBridge delivering the minute's event more than once).
    pub ticks: usize,
    /// Jobs the minute created (ticks and shards together).
    pub fired: usize,
    /// The ticks' own counts (the shards log theirs).
    pub fired_by_ticks: usize,
    pub skipped_active: usize,
    pub claimed_elsewhere: usize,
    pub errors: usize,
    /// Shards handed off (by the ticks and by the shards themselves) and taken on.
    pub shards: usize,
    /// From the first tick's start to the last shard's end.
    pub seconds: f64,
    /// The platform's AWS requests, by operation.
    pub requests: BTreeMap<String, usize>,
}

impl MinuteReport {
    pub fn total_requests(&self) -> usize {
        self.requests.values().sum()
    }

    pub fn requests_per_claim(&self) -> f64 {
        self.total_requests() as f64 / self.fired.max(1) as f64
    }

    fn add(&mut self, report: &TickReport) {
        self.fired_by_ticks += report.fired.len();
        self.skipped_active += report.skipped_active;
        self.claimed_elsewhere += report.claimed_elsewhere;
        self.errors += report.errors;
    }
}

/// The next top of the hour after now: when every `0 * * * *` connection is due.
pub fn next_hour() -> DateTime<Utc> {
    let now = Utc::now();
    let hour = now
        .with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(now);
    hour + Minutes::hours(1)
}

impl ScaleStack {
    /// Fresh tables and queues, and `organizations` organizations with a collection each.
    pub async fn new(clients: &AwsClients, organizations: usize) -> Result<Self, BoxError> {
        let stack = fresh_stack(clients, false).await?;
        // A shard expires after 5 minutes: on AWS the next tick claims what it held. The
        // emulator is slow enough that a shard can wait that long for its turn, so here it is
        // kept an hour.
        if let Some(url) = &stack.config.scheduler_queue_url {
            clients
                .sqs
                .set_queue_attributes()
                .queue_url(url)
                .attributes(
                    aws_sdk_sqs::types::QueueAttributeName::MessageRetentionPeriod,
                    "3600",
                )
                .send()
                .await?;
        }
        let counter = Faults::default();
        let counted = AwsClients {
            dynamodb: counter.dynamodb(&clients.dynamodb),
            secrets: counter.secrets(&clients.secrets).into(),
            sqs: counter.sqs(&clients.sqs).into(),
            streams: clients.streams.clone(),
        };
        let platform = wiring::platform(&stack.config, &counted, Upstreams::from_env()?)?;
        let mut orgs = Vec::new();
        for _ in 0..organizations.max(1) {
            let org = OrganizationId::new();
            let input = CreateCollectionInput {
                name: Some("Scale".to_owned()),
                readable_id: Some("scale".to_owned()),
            };
            create_collection(&platform, org, input).await?;
            orgs.push(org);
        }
        Ok(Self {
            platform,
            config: stack.config,
            clients: counted,
            raw: clients.clone(),
            counter,
            organizations: orgs,
        })
    }

    /// `count` stub connections on `cron`, created at `created_at`, spread over the
    /// organizations. The first of each organization goes through the create use case (its
    /// secret, its checks); the others are copies of it under new ids, written by the store's
    /// create transaction without a secret of their own: the scheduler never reads one, and a
    /// debug build's create spends most of its time checking the cron's intervals over a year.
    pub async fn seed(
        &self,
        count: usize,
        cron: &str,
        created_at: DateTime<Utc>,
    ) -> Result<(), BoxError> {
        let mut platform = self.platform.clone();
        platform.clock = Arc::new(FixedClock(created_at));
        let mut templates = Vec::new();
        for (i, org) in self.organizations.iter().enumerate() {
            let input = serde_json::from_value(json!({
                "short_name": "stub",
                "readable_collection_id": "scale",
                "authentication": {"credentials": {"api_key": format!("stub-scale-{i}")}},
                "config": {"entity_count": 1},
                "schedule": {"cron": cron},
                "sync_immediately": false,
            }))?;
            let created = create_connection(&platform, *org, input, None).await?;
            templates.push(created.connection);
        }
        let store = &self.platform.store;
        let templates = &templates;
        let copies = (templates.len()..count).map(|i| async move {
            let mut copy = templates[i % templates.len()].clone();
            copy.id = ConnectionId::new();
            copy.name = format!("Scale {i}");
            store
                .insert_connection(NewConnection {
                    connection: &copy,
                    first_job: None,
                    idempotency: None,
                    events: &[],
                })
                .await
        });
        for result in at_most(copies, 8).await {
            result?;
        }
        Ok(())
    }

    /// Claims the minute at `at` with `ticks` ticks at once; the shards they hand off are taken
    /// on by `pollers` invocations at a time until none is left.
    pub async fn claim_minute(
        &self,
        at: DateTime<Utc>,
        ticks: usize,
        pollers: usize,
        limits: TickLimits,
    ) -> MinuteReport {
        let mut platform = self.platform.clone();
        platform.clock = Arc::new(FixedClock(at));
        let url = self.config.scheduler_queue_url.clone().unwrap_or_default();
        // The platform sends shards on its counted clients; Lambda's event source mapping
        // receives and deletes them, which is not the platform's request.
        let hand_off = SqsQueue::new(self.clients.sqs.clone(), url.clone());
        let queue = SqsQueue::new(self.raw.sqs.clone(), url);
        let scheduler = Scheduler {
            platform: platform.clone(),
            hand_off: Some(Arc::new(hand_off) as Arc<dyn ScheduleHandOff>),
            limits,
        };
        let jobs_before = self.jobs().await.unwrap_or_default();
        self.counter.arm(None);
        let started = Instant::now();
        let ticking = futures::future::join_all(
            (0..ticks).map(|_| tick(&platform, &limits, scheduler.hand_off.as_deref())),
        );
        let ticks_done = std::sync::atomic::AtomicBool::new(false);
        let shards = std::sync::atomic::AtomicUsize::new(0);
        let poll = || async {
            loop {
                let done = ticks_done.load(std::sync::atomic::Ordering::SeqCst);
                let handled =
                    worker::poller::poll_queue(&queue, 1, Duration::from_secs(1), |batch| {
                        handle_shards(&scheduler, batch)
                    })
                    .await;
                shards.fetch_add(handled, std::sync::atomic::Ordering::SeqCst);
                if handled == 0 && done {
                    return;
                }
            }
        };
        let ticked = async {
            let reports = ticking.await;
            ticks_done.store(true, std::sync::atomic::Ordering::SeqCst);
            reports
        };
        let (reports, _) = tokio::join!(
            ticked,
            futures::future::join_all((0..pollers.max(1)).map(|_| poll()))
        );
        let seconds = started.elapsed().as_secs_f64();
        let mut report = MinuteReport {
            ticks,
            seconds,
            shards: shards.into_inner(),
            ..MinuteReport::default()
        };
        for tick in &reports {
            report.add(tick);
        }
        report.requests = self.requests();
        let jobs_after = self.jobs().await.unwrap_or_default();
        report.fired = jobs_after.saturating_sub(jobs_before);
        report
    }

    /// The platform's requests since the last claim (or ever), by operation.
    pub fn requests(&self) -> BTreeMap<String, usize> {
        let mut requests = BTreeMap::new();
        for call in self.counter.calls() {
            let operation = call.operation.rsplit('.').next().unwrap_or_default();
            *requests.entry(operation.to_owned()).or_default() += 1;
        }
        requests
    }

    /// The jobs in the state table (a scan, outside the counted clients).
    pub async fn jobs(&self) -> Result<usize, BoxError> {
        self.count_items("begins_with(sk, :prefix)", "JOB#").await
    }

    /// Connections whose next run is still at or before `at` (none once every one was claimed).
    pub async fn still_due(&self, at: DateTime<Utc>) -> Result<usize, BoxError> {
        let mut due = 0;
        for bucket in 0..domain::schedule::BUCKETS {
            let store = aws_adapters::DynamoStore::new(
                self.raw.dynamodb.clone(),
                self.config.state_table.clone(),
            );
            let mut position = None;
            loop {
                let page = store
                    .due_schedules(bucket, at, 1000, position.as_deref())
                    .await?;
                due += page.connections.len();
                position = page.next;
                if position.is_none() {
                    break;
                }
            }
        }
        Ok(due)
    }

    /// Messages waiting in the sync queue.
    pub async fn queued_runs(&self) -> Result<usize, BoxError> {
        let out = self
            .raw
            .sqs
            .get_queue_attributes()
            .queue_url(&self.config.sync_queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await?;
        Ok(out
            .attributes()
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            })
            .and_then(|n| n.parse().ok())
            .unwrap_or(0))
    }

    /// Median milliseconds of one due-schedules Query on this table now (moto reads the whole
    /// table for each): where the emulator's time goes.
    pub async fn query_millis(&self, at: DateTime<Utc>) -> Result<f64, BoxError> {
        let store = aws_adapters::DynamoStore::new(
            self.raw.dynamodb.clone(),
            self.config.state_table.clone(),
        );
        let mut times = Vec::new();
        for bucket in 0..9 {
            let started = Instant::now();
            store.due_schedules(bucket, at, 100, None).await?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        Ok(times[times.len() / 2])
    }

    async fn count_items(&self, filter: &str, prefix: &str) -> Result<usize, BoxError> {
        let mut count = 0;
        let mut start = None;
        loop {
            let out = self
                .raw
                .dynamodb
                .scan()
                .table_name(&self.config.state_table)
                .filter_expression(filter)
                .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()))
                .select(Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await?;
            count += out.count as usize;
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(count),
            }
        }
    }
}

/// Runs the futures `at_once` at a time; answers their results in any order.
async fn at_most<F, T>(futures: impl IntoIterator<Item = F>, at_once: usize) -> Vec<T>
where
    F: std::future::Future<Output = T>,
{
    use futures::stream::StreamExt;
    futures::stream::iter(futures)
        .buffer_unordered(at_once)
        .collect()
        .await
}

//! The scheduler at scale, the version `make test` runs (`make bench-scale` runs 10,000 per
//! minute): 1,000 connections, half due at one minute and half at the next, on a fresh stack.
//! One tick claims the first minute, hurried so that it hands most buckets off through the
//! scheduler's SQS queue; two ticks at once claim the second. Every due schedule fires exactly
//! once, each claim is one transaction with no read before it, and the runs' messages go out
//! in batches.

use aws_adapters::AwsClients;
use bench::scale::{next_hour, ScaleStack};
use chrono::Duration;
use domain::schedule::BUCKETS;
use domain::usecases::scheduler::TickLimits;

const PER_MINUTE: usize = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_connections_due_together_each_fire_once_with_one_transaction_per_claim() {
    let stack = ScaleStack::new(&AwsClients::from_env().await, 10)
        .await
        .unwrap();
    let top = next_hour();
    let created = top - Duration::minutes(30);
    stack.seed(PER_MINUTE, "0 * * * *", created).await.unwrap();
    stack.seed(PER_MINUTE, "1 * * * *", created).await.unwrap();

    let hurried = TickLimits {
        hand_off_after: std::time::Duration::ZERO,
        ..TickLimits::default()
    };
    let first = stack
        .claim_minute(top + Duration::seconds(5), 1, 2, hurried)
        .await;
    crate::helpers::figures(&format!(
        "scheduler at scale: {} claims by one tick and {} shards in {:.1} s; requests {:?}",
        first.fired, first.shards, first.seconds, first.requests
    ));
    assert_eq!(first.fired, PER_MINUTE, "{first:?}");
    assert_eq!(first.errors, 0, "{first:?}");
    assert!(
        first.shards > 0,
        "the hurried tick handed buckets off: {first:?}"
    );
    let count = |op: &str| first.requests.get(op).copied().unwrap_or_default();
    assert_eq!(count("TransactWriteItems"), PER_MINUTE, "one per claim");
    // The sweeps read their two sweep positions; no claim reads its connection first.
    assert!(count("GetItem") <= 2, "{first:?}");
    // A batch per ten runs, and at most one part-filled batch per bucket.
    assert!(
        count("SendMessageBatch") <= PER_MINUTE / 10 + usize::from(BUCKETS),
        "{first:?}"
    );
    assert_eq!(count("SendMessage"), 0, "{first:?}");

    let second = stack
        .claim_minute(top + Duration::seconds(65), 2, 2, TickLimits::default())
        .await;
    assert_eq!(second.fired, PER_MINUTE, "{second:?}");
    assert_eq!(second.errors, 0, "{second:?}");
    assert_eq!(stack.jobs().await.unwrap(), 2 * PER_MINUTE);
    assert_eq!(
        stack.still_due(top + Duration::seconds(65)).await.unwrap(),
        0
    );
    assert_eq!(stack.queued_runs().await.unwrap(), 2 * PER_MINUTE);
}

//! `make bench-scale`: CONNECTIONS (10,000) stub connections on `0 * * * *` in ORGANIZATIONS
//! (100) organizations, all due at the same top of the hour, claimed on the emulator by one tick
//! (and the shards it hands off through the scheduler's queue), then, on a second fresh stack,
//! by two ticks at once. Prints one JSON line for infra/bench/scale.py.
//!
//! Usage: scale-bench [CONNECTIONS] [ORGANIZATIONS]

use aws_adapters::AwsClients;
use bench::scale::{next_hour, ScaleStack};
use chrono::Duration;
use domain::ports::BoxError;
use domain::usecases::scheduler::TickLimits;
use std::time::Instant;

/// Scheduler invocations taking on shards at once (the template's SchedulerMaxShards is 16;
/// the emulator serves one DynamoDB request at a time, so more would only queue there).
const POLLERS: usize = 4;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let connections: usize = args.next().map_or(Ok(10_000), |a| a.parse())?;
    let organizations: usize = args.next().map_or(Ok(100), |a| a.parse())?;
    let clients = AwsClients::from_env().await;
    let due = next_hour();
    let limits = TickLimits::default();
    let mut runs = Vec::new();
    for ticks in [1, 2] {
        let stack = ScaleStack::new(&clients, organizations).await?;
        let seeding = Instant::now();
        stack
            .seed(connections, "0 * * * *", due - Duration::minutes(30))
            .await?;
        let seed_seconds = seeding.elapsed().as_secs_f64();
        let minute = stack
            .claim_minute(due + Duration::seconds(5), ticks, POLLERS, limits)
            .await;
        let jobs = stack.jobs().await?;
        let still_due = stack.still_due(due + Duration::seconds(5)).await?;
        let queued = stack.queued_runs().await?;
        let query_ms = stack.query_millis(due + Duration::seconds(5)).await?;
        eprintln!(
            "{ticks} tick(s): {} claimed in {:.1} s, {:.2} requests per claim, {jobs} jobs, {still_due} still due",
            minute.fired,
            minute.seconds,
            minute.requests_per_claim()
        );
        runs.push(serde_json::json!({
            "ticks": ticks,
            "seed_seconds": seed_seconds,
            "minute": minute,
            "requests_per_claim": minute.requests_per_claim(),
            "claims_per_second": minute.fired as f64 / minute.seconds.max(1e-9),
            "jobs": jobs,
            "still_due": still_due,
            "queued_runs": queued,
            "query_ms": query_ms,
        }));
    }
    println!(
        "{}",
        serde_json::json!({
            "connections": connections,
            "organizations": organizations,
            "limits": {
                "schedule_page": limits.schedule_page,
                "parallel_buckets": limits.parallel_buckets,
                "parallel_claims": limits.parallel_claims,
                "hand_off_after_s": limits.hand_off_after.as_secs(),
                "claim_budget_s": limits.claim_budget.as_secs(),
            },
            "pollers": POLLERS,
            "runs": runs,
        })
    );
    Ok(())
}

//! Counts every AWS request this process sends, by operation (the `x-amz-target` the SDK sets,
//! e.g. `DynamoDB_20120810.BatchWriteItem`), and the entity items written: what the worker logs
//! after each job and the sync benchmark reports. An atomic add per request, nothing more.

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

/// The counter name of entity items written (puts, not deletes).
pub const ENTITY_ITEMS_WRITTEN: &str = "entities.items_written";

fn counts() -> &'static Mutex<BTreeMap<String, u64>> {
    static COUNTS: OnceLock<Mutex<BTreeMap<String, u64>>> = OnceLock::new();
    COUNTS.get_or_init(Mutex::default)
}

/// Adds `n` to the counter `name`.
pub fn add(name: &str, n: u64) {
    let mut counts = counts().lock().unwrap_or_else(|p| p.into_inner());
    match counts.get_mut(name) {
        Some(count) => *count += n,
        None => {
            counts.insert(name.to_owned(), n);
        }
    }
}

/// Every counter so far.
pub fn snapshot() -> BTreeMap<String, u64> {
    counts().lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// What changed between two snapshots (counters that did not move are left out).
pub fn since(before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    snapshot()
        .into_iter()
        .filter_map(|(name, now)| {
            let delta = now - before.get(&name).copied().unwrap_or(0);
            (delta > 0).then_some((name, delta))
        })
        .collect()
}

/// The SDK interceptor that counts requests; every client `AwsClients` builds carries it.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestMeter;

impl Intercept for RequestMeter {
    fn name(&self) -> &'static str {
        "RequestMeter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let target = context.request().headers().get("x-amz-target");
        add(target.unwrap_or("other"), 1);
        Ok(())
    }
}

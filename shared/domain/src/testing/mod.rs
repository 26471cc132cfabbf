//! In-memory fakes of the ports, for use-case tests, one module per port. Each fake keeps its
//! state behind one mutex, so every operation is atomic the way the real adapters' conditional
//! writes and transactions are, and each follows the contract written on its port. Switches
//! inject the failures the use cases must survive.

mod delivery;
mod entities;
mod fingerprint_key;
mod oauth;
mod queue;
mod sources;
mod store;
mod vault;
mod webhooks;

pub use delivery::{MemoryDeliveries, ScriptedTransport};
pub use entities::MemoryEntities;
pub use fingerprint_key::MemoryFingerprintKey;
pub use oauth::{FakeProviders, FakeTokens};
pub use queue::MemoryQueue;
pub use sources::{CheckCall, FakeSources, ScriptedStream};
pub use store::MemoryStore;
pub use vault::MemoryVault;
pub use webhooks::{FakeTargets, MemoryWebhooks};

use crate::clock::{Clock, FixedClock};
use crate::page::{Page, PageRequest};
use crate::usecases::Platform;
use chrono::{DateTime, TimeZone, Utc};
use std::sync::{Arc, Mutex, MutexGuard};

/// The instant every test runs at: a Wednesday afternoon, with seconds, so that defaults derived
/// from the clock (the daily schedule) show whether they truncate correctly.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 14, 7, 31).unwrap()
}

/// A clock a test moves by hand, for leases that must run out mid-test.
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn at(instant: DateTime<Utc>) -> Self {
        Self(Mutex::new(instant))
    }

    pub fn set(&self, instant: DateTime<Utc>) {
        *lock(&self.0) = instant;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *lock(&self.0)
    }
}

pub(crate) fn injected(what: &str) -> Box<dyn std::error::Error + Send + Sync> {
    format!("injected failure: {what}").into()
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock()
        .expect("a test panicked while holding a fake's lock")
}

/// One page of `items` (already in key order): after the cursor, then `skip`, then `limit`.
/// The cursor of the next page is the key of the last item, given only when more follow.
pub(crate) fn page_of<T>(items: Vec<(String, T)>, page: &PageRequest) -> Page<T> {
    let mut rest = items
        .into_iter()
        .filter(|(key, _)| page.cursor.as_ref().is_none_or(|c| key > c))
        .skip(page.skip);
    let taken: Vec<(String, T)> = rest.by_ref().take(page.limit).collect();
    let next_cursor = match rest.next() {
        Some(_) => taken.last().map(|(key, _)| key.clone()),
        None => None,
    };
    Page {
        items: taken.into_iter().map(|(_, item)| item).collect(),
        next_cursor,
    }
}

/// One page of listed secrets (`(key, org, id, created_at)` in key order), as the vault pages
/// them: after the key `after`, at most `limit`, the last key as the next page's start.
pub(crate) fn secrets_page<I>(
    entries: impl Iterator<Item = (String, crate::ids::OrganizationId, I, DateTime<Utc>)>,
    after: Option<&str>,
    limit: usize,
) -> crate::ports::SecretsPage<I> {
    let mut rest = entries.filter(|(key, ..)| after.is_none_or(|a| key.as_str() > a));
    let taken: Vec<_> = rest.by_ref().take(limit).collect();
    let next = match rest.next() {
        Some(_) => taken.last().map(|(key, ..)| key.clone()),
        None => None,
    };
    crate::ports::SecretsPage {
        secrets: taken
            .into_iter()
            .map(
                |(_, organization_id, id, created_at)| crate::ports::SecretEntry {
                    organization_id,
                    id,
                    created_at,
                },
            )
            .collect(),
        next,
    }
}

/// A platform wired to fresh fakes, and the fakes themselves for arranging and asserting.
pub struct Fakes {
    pub platform: Platform,
    pub store: Arc<MemoryStore>,
    pub entities: Arc<MemoryEntities>,
    pub vault: Arc<MemoryVault>,
    pub fingerprint_key: Arc<MemoryFingerprintKey>,
    pub queue: Arc<MemoryQueue>,
    pub sources: Arc<FakeSources>,
    pub tokens: Arc<FakeTokens>,
    pub providers: Arc<FakeProviders>,
    pub webhooks: Arc<MemoryWebhooks>,
    pub deliveries: Arc<MemoryDeliveries>,
    pub transport: Arc<ScriptedTransport>,
}

pub fn platform() -> Fakes {
    let store = Arc::new(MemoryStore::default());
    let entities = Arc::new(MemoryEntities::default());
    let vault = Arc::new(MemoryVault::default());
    let fingerprint_key = Arc::new(MemoryFingerprintKey::default());
    let queue = Arc::new(MemoryQueue::default());
    let sources = Arc::new(FakeSources::new());
    let tokens = Arc::new(FakeTokens::default());
    let providers = Arc::new(FakeProviders::default());
    let webhooks = Arc::new(MemoryWebhooks::default());
    let deliveries = Arc::new(MemoryDeliveries::default());
    let transport = Arc::new(ScriptedTransport::default());
    let platform = Platform {
        store: store.clone(),
        entities: entities.clone(),
        vault: vault.clone(),
        fingerprint_key: fingerprint_key.clone(),
        queue: queue.clone(),
        sources: sources.clone(),
        clock: Arc::new(FixedClock(now())),
        tokens: tokens.clone(),
        auth_providers: providers.clone(),
        oauth_redirect_uri: Some("https://api.example.com/oauth/callback".into()),
        default_redirect_origins: Vec::new(),
        feed: Default::default(),
        refresh_imported_tokens_with_platform_app: false,
        webhooks: webhooks.clone(),
        webhook_secrets: webhooks.clone(),
        webhook_targets: Arc::new(FakeTargets),
        deliveries: deliveries.clone(),
        webhook_transport: transport.clone(),
    };
    Fakes {
        platform,
        store,
        entities,
        vault,
        fingerprint_key,
        queue,
        sources,
        tokens,
        providers,
        webhooks,
        deliveries,
        transport,
    }
}

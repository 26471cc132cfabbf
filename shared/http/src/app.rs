//! The deps every handler shares, built once per cold start.

use aws_adapters::AwsClients;
use domain::ids::OrganizationId;
use domain::tenancy::ApiKeyHash;
use domain::usecases::Platform;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a resolved API key is trusted without asking the store again: a revoked key stops
/// working within this time on a warm function.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(5);
const KEY_CACHE_MAX: usize = 10_000;

#[derive(Clone)]
pub struct App {
    pub platform: Platform,
    keys: Arc<Mutex<HashMap<ApiKeyHash, (OrganizationId, Instant)>>>,
}

pub use wiring::StartupError;
use wiring::{Config, Upstreams};

impl App {
    pub fn new(platform: Platform) -> Self {
        Self {
            platform,
            keys: Arc::default(),
        }
    }

    /// Configuration and clients from the environment: what every function's `main` does.
    pub async fn from_env() -> Result<Self, StartupError> {
        Ok(Self::new(wiring::platform_from_env().await?))
    }

    pub fn from_parts(
        config: &Config,
        clients: &AwsClients,
        upstreams: Upstreams,
    ) -> Result<Self, StartupError> {
        Ok(Self::new(wiring::platform(config, clients, upstreams)?))
    }

    pub(crate) fn cached_organization(&self, key: &ApiKeyHash) -> Option<OrganizationId> {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.get(key)
            .filter(|(_, at)| at.elapsed() < KEY_CACHE_TTL)
            .map(|(org, _)| *org)
    }

    pub(crate) fn remember_organization(&self, key: ApiKeyHash, org: OrganizationId) {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if keys.len() >= KEY_CACHE_MAX {
            keys.retain(|_, (_, at)| at.elapsed() < KEY_CACHE_TTL);
            if keys.len() >= KEY_CACHE_MAX {
                keys.clear();
            }
        }
        keys.insert(key, (org, Instant::now()));
    }
}

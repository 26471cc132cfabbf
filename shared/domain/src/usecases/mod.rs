//! Use cases: what the API does, written against the ports only.

pub mod collections;
pub mod connections;
pub mod create_connection;
pub mod delete_connection;
pub mod jobs;
pub mod runs;
pub mod scheduler;
pub mod sync;
pub mod tenancy;
pub mod update_connection;

use crate::clock::Clock;
use crate::ports::{CredentialVault, EntityStore, SourceDirectory, Store, SyncQueue};
use std::sync::Arc;

/// Everything a use case may touch, built once per cold start and shared by all requests.
#[derive(Clone)]
pub struct Platform {
    pub store: Arc<dyn Store>,
    pub entities: Arc<dyn EntityStore>,
    pub vault: Arc<dyn CredentialVault>,
    pub queue: Arc<dyn SyncQueue>,
    pub sources: Arc<dyn SourceDirectory>,
    pub clock: Arc<dyn Clock>,
}

#[cfg(test)]
mod tests;

//! What every function's `main` assembles, once per cold start: the configuration from the
//! environment, logging, and the platform (the domain's ports) on AWS.

pub mod config;
pub mod telemetry;

pub use config::{Config, MissingVar};

use aws_adapters::{AwsClients, DynamoEntities, DynamoStore, SecretsVault, SqsQueue};
use domain::clock::SystemClock;
use domain::usecases::Platform;
use sources::Catalog;
use std::sync::Arc;

/// Why a function could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] MissingVar),
    #[error(transparent)]
    Sources(#[from] sources::CatalogError),
}

/// The configuration, the sources and the AWS clients from the environment, then the platform.
pub async fn platform_from_env() -> Result<Platform, StartupError> {
    let config = Config::from_env()?;
    let sources = Catalog::from_env()?;
    let clients = AwsClients::from_env().await;
    Ok(platform(&config, &clients, sources))
}

/// The platform on these clients and resources.
pub fn platform(config: &Config, clients: &AwsClients, sources: Catalog) -> Platform {
    Platform {
        store: Arc::new(DynamoStore::new(
            clients.dynamodb.clone(),
            config.state_table.clone(),
        )),
        entities: Arc::new(DynamoEntities::new(
            clients.dynamodb.clone(),
            config.entities_table.clone(),
        )),
        vault: Arc::new(SecretsVault::new(
            clients.secrets.clone(),
            config.secrets_prefix.clone(),
        )),
        queue: Arc::new(SqsQueue::new(
            clients.sqs.clone(),
            config.sync_queue_url.clone(),
        )),
        sources: Arc::new(sources),
        clock: Arc::new(SystemClock),
    }
}

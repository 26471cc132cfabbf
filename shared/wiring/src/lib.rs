//! What every function's `main` assembles, once per cold start: the configuration from the
//! environment, logging, and the platform (the domain's ports) on AWS.

pub mod config;
pub mod telemetry;

pub use config::{Config, ConfigError};

use aws_adapters::{
    AwsClients, DynamoEntities, DynamoStore, DynamoWebhooks, SecretsFingerprintKey, SecretsVault,
    SqsQueue,
};
use delivery::ports::TargetCheck;
use delivery::{TargetPolicy, Transport};
use domain::clock::SystemClock;
use domain::usecases::sync::SyncSettings;
use domain::usecases::webhooks::send::SenderSettings;
use domain::usecases::Platform;
use sources::{env_var, http_client, Catalog, CatalogError, OAuthTokens, ProviderClients};
use std::sync::Arc;

/// Why a function could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Sources(#[from] sources::CatalogError),
    #[error(transparent)]
    Webhooks(#[from] delivery::TransportError),
}

/// Everything outside AWS the platform calls: the sources, the providers' token endpoints and
/// the auth providers, each with its operator overrides from the environment.
pub struct Upstreams {
    pub sources: Catalog,
    pub tokens: OAuthTokens,
    pub providers: ProviderClients,
}

impl Upstreams {
    /// One HTTP client for all of them (connection pools and TLS set up once).
    pub fn from_env() -> Result<Self, StartupError> {
        let client = http_client().map_err(CatalogError::HttpClient)?;
        Ok(Self {
            sources: Catalog::from_lookup_with(client.clone(), env_var)?,
            tokens: OAuthTokens::new(client.clone()),
            providers: ProviderClients::from_lookup_with(client, env_var)?,
        })
    }
}

/// The sync worker's settings: the domain's defaults, with the sources' own request timeout, so
/// that the hand-over margin ([`SyncSettings::deadline_margin`]) allows for the page budget the
/// worker gives each stream, one upstream call of the client the sources really use, and the
/// hand-over.
pub fn sync_settings() -> SyncSettings {
    SyncSettings {
        request_timeout: sources::REQUEST_TIMEOUT,
        ..SyncSettings::default()
    }
}

/// The configuration, the upstreams and the AWS clients from the environment, then the
/// platform.
pub async fn platform_from_env() -> Result<Platform, StartupError> {
    let config = Config::from_env()?;
    let upstreams = Upstreams::from_env()?;
    let clients = AwsClients::from_env().await;
    platform(&config, &clients, upstreams)
}

/// The webhook sender's settings: the operator's retry schedule, Svix's disabling after 5 days.
pub fn sender_settings(config: &Config) -> SenderSettings {
    SenderSettings {
        schedule: config.webhook_retry_schedule.clone(),
        ..SenderSettings::default()
    }
}

/// The platform on these clients and resources. Fails only when the webhooks' HTTPS client
/// cannot be built.
pub fn platform(
    config: &Config,
    clients: &AwsClients,
    upstreams: Upstreams,
) -> Result<Platform, StartupError> {
    let Upstreams {
        sources,
        tokens,
        providers,
    } = upstreams;
    let vault = Arc::new(SecretsVault::new(
        clients.secrets.clone(),
        config.secrets_prefix.clone(),
    ));
    let policy = TargetPolicy {
        allow_private: config.webhook_allow_private_targets,
    };
    let transport = Transport::new(policy, delivery::DEFAULT_TIMEOUT)?;
    Ok(Platform {
        store: Arc::new(
            DynamoStore::new(clients.dynamodb.clone(), config.state_table.clone())
                .with_outbox(config.webhooks_table.clone())
                .with_job_retention(config.job_retention_days),
        ),
        entities: Arc::new(DynamoEntities::new(
            clients.dynamodb.clone(),
            config.entities_table.clone(),
        )),
        vault: vault.clone(),
        fingerprint_key: Arc::new(SecretsFingerprintKey::new(
            clients.secrets.clone(),
            &config.secrets_prefix,
        )),
        queue: Arc::new(SqsQueue::new(
            clients.sqs.clone(),
            config.sync_queue_url.clone(),
        )),
        sources: Arc::new(sources),
        clock: Arc::new(SystemClock),
        tokens: Arc::new(tokens),
        auth_providers: Arc::new(providers),
        oauth_redirect_uri: config.oauth_redirect_uri(),
        default_redirect_origins: config.default_redirect_origins.clone(),
        feed: config.feed,
        refresh_imported_tokens_with_platform_app: config.refresh_imported_tokens_with_platform_app,
        webhooks: Arc::new(DynamoWebhooks::new(
            clients.dynamodb.clone(),
            config.webhooks_table.clone(),
        )),
        webhook_secrets: vault,
        webhook_targets: Arc::new(TargetCheck { policy }),
        deliveries: Arc::new(SqsQueue::new(
            clients.sqs.clone(),
            config.webhook_queue_url.clone(),
        )),
        webhook_transport: Arc::new(transport),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_worker_allows_for_the_sources_request_timeout() {
        let settings = sync_settings();
        assert_eq!(settings.request_timeout, sources::REQUEST_TIMEOUT);
        assert_eq!(
            settings.deadline_margin(),
            settings.page_budget + sources::REQUEST_TIMEOUT + settings.hand_over
        );
        assert_eq!(settings.deadline_margin(), Duration::from_secs(45));
        // The domain's default (tests, the dev gateway) names the same timeout.
        assert_eq!(
            SyncSettings::default().request_timeout,
            sources::REQUEST_TIMEOUT
        );
    }
}

//! The emulator's resources and the dev tenant: what `make dev` and the admin CLI set up.

use aws_adapters::{bootstrap, AwsClients};
use domain::ids::OrganizationId;
use domain::oauth::OAuthApp;
use domain::ports::{BoxError, CredentialVault, SourceDirectory, StoreError, TenantStore};
use domain::tenancy::{api_key_from_random, ApiKeyHash, Organization, RedirectOrigin};
use domain::webhooks::RetrySchedule;
use http_api::Config;
use secrecy::{ExposeSecret, SecretString};
use std::env;
use std::path::Path;

/// Resource names for the local stack; each can be overridden by the variable the Lambda
/// functions read (`STATE_TABLE`, `ENTITIES_TABLE`, `SECRETS_PREFIX`) or `SYNC_QUEUE_NAME`,
/// `WEBHOOK_QUEUE_NAME` and `SCHEDULER_QUEUE_NAME`.
#[derive(Debug, Clone)]
pub struct LocalSettings {
    pub state_table: String,
    pub entities_table: String,
    pub webhooks_table: String,
    pub sync_queue_name: String,
    /// The webhook delivery queue (`WEBHOOK_QUEUE_NAME`).
    pub webhook_queue_name: String,
    /// The scheduler's queue of shards (`SCHEDULER_QUEUE_NAME`).
    pub scheduler_queue_name: String,
    pub secrets_prefix: String,
    pub api_base_url: String,
    pub port: u16,
    /// How often `make dev` runs the scheduler's tick (EventBridge: every minute).
    pub scheduler_tick: std::time::Duration,
}

impl LocalSettings {
    pub fn from_env() -> Result<Self, String> {
        let var = |name: &str, default: &str| {
            env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        let port: u16 = var("PORT", "3000")
            .parse()
            .map_err(|_| "PORT must be a port number".to_owned())?;
        let tick: u64 = var("SCHEDULER_TICK_SECONDS", "60")
            .parse()
            .ok()
            .filter(|s| *s > 0)
            .ok_or_else(|| "SCHEDULER_TICK_SECONDS must be a positive number".to_owned())?;
        Ok(Self {
            state_table: var("STATE_TABLE", "connectors-state"),
            entities_table: var("ENTITIES_TABLE", "connectors-entities"),
            webhooks_table: var("WEBHOOKS_TABLE", "connectors-webhooks"),
            sync_queue_name: var("SYNC_QUEUE_NAME", "connectors-sync"),
            webhook_queue_name: var("WEBHOOK_QUEUE_NAME", "connectors-webhook-deliveries"),
            scheduler_queue_name: var("SCHEDULER_QUEUE_NAME", "connectors-scheduler-shards"),
            secrets_prefix: var("SECRETS_PREFIX", "connectors-dev"),
            api_base_url: var("API_BASE_URL", &format!("http://127.0.0.1:{port}")),
            port,
            scheduler_tick: std::time::Duration::from_secs(tick),
        })
    }
}

/// What [`bootstrap`] made ready: the functions' config, and the webhooks table's stream (what
/// the local stand-in for the sender's stream trigger reads).
pub struct Bootstrapped {
    pub config: Config,
    pub webhooks_stream_arn: String,
}

/// Creates the tables, the queues (+DLQs) and the idempotency fingerprint key when missing, and
/// answers the functions' config.
pub async fn bootstrap(
    clients: &AwsClients,
    settings: &LocalSettings,
) -> Result<Bootstrapped, BoxError> {
    bootstrap::ensure_state_table(&clients.dynamodb, &settings.state_table).await?;
    bootstrap::ensure_entities_table(&clients.dynamodb, &settings.entities_table).await?;
    let webhooks_stream_arn =
        bootstrap::ensure_webhooks_table(&clients.dynamodb, &settings.webhooks_table).await?;
    let sync_queue_url = bootstrap::ensure_queue(&clients.sqs, &settings.sync_queue_name).await?;
    let webhook_queue_url =
        bootstrap::ensure_webhook_queue(&clients.sqs, &settings.webhook_queue_name).await?;
    let scheduler_queue_url =
        bootstrap::ensure_scheduler_queue(&clients.sqs, &settings.scheduler_queue_name).await?;
    bootstrap::ensure_fingerprint_key(&clients.secrets, &settings.secrets_prefix).await?;
    let config = Config {
        state_table: settings.state_table.clone(),
        entities_table: settings.entities_table.clone(),
        webhooks_table: settings.webhooks_table.clone(),
        // Local receivers listen on loopback: allowed unless set to false.
        webhook_allow_private_targets: env::var("WEBHOOK_ALLOW_PRIVATE_TARGETS")
            .map_or(true, |v| v.trim() != "false"),
        sync_queue_url,
        webhook_queue_url,
        scheduler_queue_url: Some(scheduler_queue_url),
        webhook_retry_schedule: match env::var("WEBHOOK_RETRY_SCHEDULE") {
            Ok(raw) if !raw.trim().is_empty() => RetrySchedule::parse(&raw)
                .map_err(|reason| format!("WEBHOOK_RETRY_SCHEDULE: {reason}"))?,
            _ => RetrySchedule::default(),
        },
        secrets_prefix: settings.secrets_prefix.clone(),
        api_base_url: Some(settings.api_base_url.clone()),
        // The dev organization carries its own allowlist; others get none by default.
        default_redirect_origins: Vec::new(),
        feed: wiring::config::env_feed_settings()?,
        job_retention_days: wiring::config::env_job_retention_days()?,
        refresh_imported_tokens_with_platform_app: wiring::config::env_flag(
            "REFRESH_IMPORTED_TOKENS_WITH_PLATFORM_APP",
        )?,
    };
    Ok(Bootstrapped {
        config,
        webhooks_stream_arn,
    })
}

/// The platform's OAuth apps from the environment: `OAUTH_<SHORT_NAME>_CLIENT_ID` and
/// `OAUTH_<SHORT_NAME>_CLIENT_SECRET` for each OAuth source of the catalog, stored in the vault
/// (`{prefix}/oauth-apps/<short_name>`). Answers the sources it stored; half a pair is an error.
pub async fn load_oauth_apps(
    vault: &dyn CredentialVault,
    sources: &dyn SourceDirectory,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, BoxError> {
    let mut loaded = Vec::new();
    for spec in sources.specs() {
        if spec.oauth.is_none() {
            continue;
        }
        let upper = spec.short_name.to_ascii_uppercase();
        let (id_var, secret_var) = (
            format!("OAUTH_{upper}_CLIENT_ID"),
            format!("OAUTH_{upper}_CLIENT_SECRET"),
        );
        let value = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        match (value(&id_var), value(&secret_var)) {
            (None, None) => {}
            (Some(client_id), Some(secret)) => {
                let app = OAuthApp {
                    client_id: client_id.trim().to_owned(),
                    client_secret: SecretString::from(secret.trim().to_owned()),
                };
                vault.put_oauth_app(spec.short_name, &app).await?;
                loaded.push(spec.short_name.to_owned());
            }
            _ => return Err(format!("set both {id_var} and {secret_var}, or neither").into()),
        }
    }
    Ok(loaded)
}

/// A new organization; `redirect_origins` is its OAuth redirect allowlist (`None`: the
/// platform's default).
pub async fn create_organization(
    store: &dyn TenantStore,
    name: &str,
    redirect_origins: Option<Vec<RedirectOrigin>>,
) -> Result<OrganizationId, BoxError> {
    let org = Organization {
        id: OrganizationId::new(),
        name: name.to_owned(),
        created_at: chrono::Utc::now(),
        redirect_origins,
    };
    store.insert_organization(&org).await?;
    Ok(org.id)
}

/// A new key for an existing organization. The key is returned once; only its hash is stored.
pub async fn create_api_key(
    store: &dyn TenantStore,
    org: OrganizationId,
) -> Result<SecretString, BoxError> {
    if store.get_organization(org).await?.is_none() {
        return Err(format!("no organization {org}").into());
    }
    // A new key whose id another key has already (a chance of 2^-48 per pair) is refused as
    // `AlreadyExists`: another draw gets a key of its own.
    let mut attempts = 0;
    loop {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
        let key = api_key_from_random(bytes);
        attempts += 1;
        match store
            .insert_api_key(&ApiKeyHash::of(&key), org, chrono::Utc::now())
            .await
        {
            Ok(()) => return Ok(key),
            Err(StoreError::AlreadyExists) if attempts < 3 => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// The dev API key in `path`: re-used while the store still knows it (the emulator keeps state
/// in memory, so a restart forgets it), else a new dev organization and key, written there.
pub async fn ensure_dev_key(
    store: &dyn TenantStore,
    path: &Path,
) -> Result<SecretString, BoxError> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        let key = SecretString::from(existing.trim().to_owned());
        if !key.expose_secret().is_empty()
            && store
                .organization_for_key(&ApiKeyHash::of(&key))
                .await?
                .is_some()
        {
            keep_private(path)?;
            return Ok(key);
        }
    }
    // A browser OAuth flow started locally may come back to any local port.
    let org = create_organization(
        store,
        "Dev organization",
        Some(RedirectOrigin::loopback_any_port()),
    )
    .await?;
    let key = create_api_key(store, org).await?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    write_private(path, key.expose_secret())?;
    Ok(key)
}

/// Writes the key readable by its owner only. The mode given at open applies only to a file it
/// creates, so an existing file's permissions are narrowed first, before the key is written.
#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")
}

/// A key file that is kept is made readable by its owner only, whatever it was.
#[cfg(unix)]
fn keep_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn keep_private(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, format!("{contents}\n"))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_dev_key_file_is_private_even_when_it_existed_with_other_permissions() {
        let dir = std::env::temp_dir().join(format!("dev-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("api-key");
        std::fs::write(&path, "old\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();

        write_private(&path, "new-key").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new-key\n");
        assert_eq!(mode(&path), 0o600, "rewritten: readable by its owner only");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        keep_private(&path).unwrap();
        assert_eq!(mode(&path), 0o600, "re-used: readable by its owner only");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

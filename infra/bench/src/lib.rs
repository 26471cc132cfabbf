//! What the benchmark tools share: a fresh stack on the emulator, its resources named uniquely.

pub mod feed;
pub mod scale;

use aws_adapters::bootstrap::{
    ensure_entities_table, ensure_queue, ensure_scheduler_queue, ensure_state_table,
    ensure_webhook_queue, ensure_webhooks_table,
};
use aws_adapters::AwsClients;
use domain::ports::BoxError;
use wiring::Config;

/// A stack's configuration, and its webhooks table's stream (what the sender's trigger reads).
pub struct Stack {
    pub config: Config,
    pub webhooks_stream_arn: String,
}

/// Creates the tables and queues of a new stack (`bench-*-<random>`); `allow_private_targets`
/// lets webhooks go to a local receiver.
pub async fn fresh_stack(
    clients: &AwsClients,
    allow_private_targets: bool,
) -> Result<Stack, BoxError> {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let config = Config {
        state_table: format!("bench-state-{suffix}"),
        entities_table: format!("bench-entities-{suffix}"),
        webhooks_table: format!("bench-webhooks-{suffix}"),
        webhook_allow_private_targets: allow_private_targets,
        sync_queue_url: ensure_queue(&clients.sqs, &format!("bench-sync-{suffix}")).await?,
        webhook_queue_url: ensure_webhook_queue(&clients.sqs, &format!("bench-hooks-{suffix}"))
            .await?,
        scheduler_queue_url: Some(
            ensure_scheduler_queue(&clients.sqs, &format!("bench-shards-{suffix}")).await?,
        ),
        webhook_retry_schedule: Default::default(),
        secrets_prefix: format!("bench-{suffix}"),
        api_base_url: None,
        default_redirect_origins: Vec::new(),
        feed: Default::default(),
        job_retention_days: aws_adapters::DEFAULT_JOB_RETENTION_DAYS,
        refresh_imported_tokens_with_platform_app: false,
    };
    ensure_state_table(&clients.dynamodb, &config.state_table).await?;
    ensure_entities_table(&clients.dynamodb, &config.entities_table).await?;
    let webhooks_stream_arn =
        ensure_webhooks_table(&clients.dynamodb, &config.webhooks_table).await?;
    Ok(Stack {
        config,
        webhooks_stream_arn,
    })
}

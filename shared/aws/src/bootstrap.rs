//! Creates the tables, queues and the idempotency fingerprint key the platform needs. Every
//! function is idempotent ("already exists" is success), so the local stack, the admin CLI and
//! the tests call them freely.

use crate::error::{adapter, boxed};
use crate::store::{SCHEDULE_INDEX, SWEEP_INDEX};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, IndexStatus, KeySchemaElement, KeyType,
    Projection, ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TableDescription, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_sqs::types::QueueAttributeName;
use domain::fingerprint::MIN_KEY_BYTES;
use domain::ports::BoxError;
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::{sleep, Instant};

#[derive(Debug, thiserror::Error)]
#[error("could not {action} '{resource}'")]
pub struct BootstrapError {
    action: &'static str,
    resource: String,
    #[source]
    source: BoxError,
}

impl BootstrapError {
    fn new(action: &'static str, resource: &str, source: BoxError) -> Self {
        Self {
            action,
            resource: resource.to_owned(),
            source,
        }
    }
}

/// How long a new table may take to become active.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_millis(250);

/// Seconds a sync message stays invisible while a worker runs it: the Lambda's 15 minutes.
pub const SYNC_VISIBILITY_TIMEOUT_SECS: u32 = 900;
/// Seconds a webhook delivery task stays invisible while the sender runs it: six times the
/// sender's 60 s timeout, as AWS advises for a queue feeding Lambda.
pub const WEBHOOK_VISIBILITY_TIMEOUT_SECS: u32 = 360;
/// Deliveries before a sync message moves to the dead-letter queue.
pub const SYNC_MAX_RECEIVE_COUNT: u32 = 5;
/// The scheduler queue's visibility timeout: six of the scheduler's timeouts (120 s), AWS's
/// advice for a queue a function consumes.
pub const SCHEDULER_VISIBILITY_TIMEOUT_SECS: u32 = 720;
/// How long a shard waits to be taken on: shorter than its visibility timeout, so a shard whose
/// invocation failed is not taken on again (the next tick claims what it held).
pub const SCHEDULER_SHARD_RETENTION_SECS: u32 = 300;
/// The dead-letter queue keeps messages as long as SQS allows (14 days).
const DLQ_RETENTION_SECS: u32 = 14 * 24 * 3600;

fn attribute(name: &str, kind: ScalarAttributeType) -> Result<AttributeDefinition, BoxError> {
    Ok(AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()?)
}

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement, BoxError> {
    Ok(KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()?)
}

/// A global secondary index over `hash`/`range` that carries every attribute of an item.
fn whole_item_index(name: &str, hash: &str, range: &str) -> Result<GlobalSecondaryIndex, BoxError> {
    Ok(GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key(hash, KeyType::Hash)?)
        .key_schema(key(range, KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()?)
}

/// The state table: `pk`/`sk` strings, the `due_schedules` index over
/// `sched_bucket`/`next_run_at` (the whole connection: a claim writes on the version the index
/// returned, with no read first), the `sweep` index
/// over `sweep_bucket`/`sweep_at` (keys plus a slot's job and organization) and TTL on `ttl`.
pub async fn ensure_state_table(
    dynamodb: &aws_sdk_dynamodb::Client,
    name: &str,
) -> Result<(), BootstrapError> {
    let fail = |source| BootstrapError::new("create the state table", name, source);
    let schedule = GlobalSecondaryIndex::builder()
        .index_name(SCHEDULE_INDEX)
        .key_schema(key("sched_bucket", KeyType::Hash).map_err(fail)?)
        .key_schema(key("next_run_at", KeyType::Range).map_err(fail)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(|e| fail(boxed(e)))?;
    let sweep = GlobalSecondaryIndex::builder()
        .index_name(SWEEP_INDEX)
        .key_schema(key("sweep_bucket", KeyType::Hash).map_err(fail)?)
        .key_schema(key("sweep_at", KeyType::Range).map_err(fail)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::Include)
                .non_key_attributes("job_id")
                .non_key_attributes("organization_id")
                .build(),
        )
        .build()
        .map_err(|e| fail(boxed(e)))?;
    let request = dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk", ScalarAttributeType::S).map_err(fail)?)
        .attribute_definitions(attribute("sk", ScalarAttributeType::S).map_err(fail)?)
        .attribute_definitions(attribute("sched_bucket", ScalarAttributeType::S).map_err(fail)?)
        .attribute_definitions(attribute("next_run_at", ScalarAttributeType::N).map_err(fail)?)
        .attribute_definitions(attribute("sweep_bucket", ScalarAttributeType::S).map_err(fail)?)
        .attribute_definitions(attribute("sweep_at", ScalarAttributeType::N).map_err(fail)?)
        .key_schema(key("pk", KeyType::Hash).map_err(fail)?)
        .key_schema(key("sk", KeyType::Range).map_err(fail)?)
        .global_secondary_indexes(schedule)
        .global_secondary_indexes(sweep);
    create_table(dynamodb, name, request).await?;
    enable_ttl(dynamodb, name, "ttl").await
}

/// The entities table: `pk = CONN#id` (live entities) or `GONE#id` (their deletion records),
/// `sk = <type>#<entity_id>`; the change feed's index over `feed`/`pos` (keys plus `bytes` and
/// `expires_at`), and TTL on `expires_at` (deletion records).
pub async fn ensure_entities_table(
    dynamodb: &aws_sdk_dynamodb::Client,
    name: &str,
) -> Result<(), BootstrapError> {
    let fail = |source| BootstrapError::new("create the entities table", name, source);
    let feed = GlobalSecondaryIndex::builder()
        .index_name(crate::entities::FEED_INDEX)
        .key_schema(key("feed", KeyType::Hash).map_err(fail)?)
        .key_schema(key("pos", KeyType::Range).map_err(fail)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::Include)
                .non_key_attributes("bytes")
                .non_key_attributes("expires_at")
                .build(),
        )
        .build()
        .map_err(|e| fail(boxed(e)))?;
    let request = dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk", ScalarAttributeType::S).map_err(fail)?)
        .attribute_definitions(attribute("sk", ScalarAttributeType::S).map_err(fail)?)
        .attribute_definitions(attribute("feed", ScalarAttributeType::S).map_err(fail)?)
        .attribute_definitions(attribute("pos", ScalarAttributeType::S).map_err(fail)?)
        .key_schema(key("pk", KeyType::Hash).map_err(fail)?)
        .key_schema(key("sk", KeyType::Range).map_err(fail)?)
        .global_secondary_indexes(feed);
    create_table(dynamodb, name, request).await?;
    enable_ttl(dynamodb, name, "expires_at").await
}

/// The webhooks index of a subscription's items, over `sub_pk`/`sub_sk`.
pub const WEBHOOK_SUBSCRIPTION_INDEX: &str = "by_subscription";
/// The webhooks index of events not dispatched yet, over `outbox_bucket`/`outbox_at`.
pub const WEBHOOK_OUTBOX_INDEX: &str = "undispatched";

/// The webhooks table: `pk`/`sk` strings, a stream of new images (what the dispatcher reads),
/// the [`WEBHOOK_SUBSCRIPTION_INDEX`] over `sub_pk`/`sub_sk` and the [`WEBHOOK_OUTBOX_INDEX`]
/// over `outbox_bucket`/`outbox_at` (both with every attribute) and TTL on `expires_at`.
/// Answers the ARN of the table's stream, of an existing table too; an existing table without
/// a stream is an error, not something this changes.
pub async fn ensure_webhooks_table(
    dynamodb: &aws_sdk_dynamodb::Client,
    name: &str,
) -> Result<String, BootstrapError> {
    let fail = |source| BootstrapError::new("create the webhooks table", name, source);
    let stream = StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(StreamViewType::NewImage)
        .build()
        .map_err(|e| fail(boxed(e)))?;
    let request = dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk", ScalarAttributeType::S).map_err(fail)?)
        .attribute_definitions(attribute("sk", ScalarAttributeType::S).map_err(fail)?)
        .attribute_definitions(attribute("sub_pk", ScalarAttributeType::S).map_err(fail)?)
        .attribute_definitions(attribute("sub_sk", ScalarAttributeType::S).map_err(fail)?)
        .attribute_definitions(attribute("outbox_bucket", ScalarAttributeType::S).map_err(fail)?)
        .attribute_definitions(attribute("outbox_at", ScalarAttributeType::S).map_err(fail)?)
        .key_schema(key("pk", KeyType::Hash).map_err(fail)?)
        .key_schema(key("sk", KeyType::Range).map_err(fail)?)
        .global_secondary_indexes(
            whole_item_index(WEBHOOK_SUBSCRIPTION_INDEX, "sub_pk", "sub_sk").map_err(fail)?,
        )
        .global_secondary_indexes(
            whole_item_index(WEBHOOK_OUTBOX_INDEX, "outbox_bucket", "outbox_at").map_err(fail)?,
        )
        .stream_specification(stream);
    let table = create_table(dynamodb, name, request).await?;
    enable_ttl(dynamodb, name, "expires_at").await?;
    let enabled = table
        .stream_specification()
        .is_some_and(|s| s.stream_enabled());
    // LatestStreamArn outlives a disabled stream, so it alone does not say there is one.
    match table.latest_stream_arn {
        Some(arn) if enabled => Ok(arn),
        _ => Err(fail(adapter("the table has no stream"))),
    }
}

/// Creates the table unless it exists; answers its description once it is active.
async fn create_table(
    dynamodb: &aws_sdk_dynamodb::Client,
    name: &str,
    request: aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder,
) -> Result<TableDescription, BootstrapError> {
    match request.send().await {
        Ok(_) => {}
        Err(e) if crate::error::service_code(&e) == Some("ResourceInUseException") => {}
        Err(e) => return Err(BootstrapError::new("create table", name, boxed(e))),
    }
    wait_until_active(dynamodb, name).await
}

async fn wait_until_active(
    dynamodb: &aws_sdk_dynamodb::Client,
    name: &str,
) -> Result<TableDescription, BootstrapError> {
    let deadline = Instant::now() + ACTIVE_TIMEOUT;
    loop {
        let out = dynamodb
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| BootstrapError::new("describe table", name, boxed(e)))?;
        let table = out.table();
        let active = table.and_then(|t| t.table_status()) == Some(&TableStatus::Active)
            && table.is_some_and(|t| {
                t.global_secondary_indexes()
                    .iter()
                    .all(|index| index.index_status() == Some(&IndexStatus::Active))
            });
        if let (true, Some(table)) = (active, out.table) {
            return Ok(table);
        }
        if Instant::now() >= deadline {
            return Err(BootstrapError::new(
                "wait for table",
                name,
                adapter("the table did not become active in time"),
            ));
        }
        sleep(POLL).await;
    }
}

async fn enable_ttl(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    attribute: &str,
) -> Result<(), BootstrapError> {
    let fail = |e| BootstrapError::new("enable TTL on table", table, e);
    let described = dynamodb
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| fail(boxed(e)))?;
    let status = described
        .time_to_live_description()
        .and_then(|d| d.time_to_live_status());
    if matches!(
        status,
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
    ) {
        return Ok(());
    }
    let spec = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(attribute)
        .build()
        .map_err(|e| fail(boxed(e)))?;
    dynamodb
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(spec)
        .send()
        .await
        .map_err(|e| fail(boxed(e)))?;
    Ok(())
}

/// The sync queue and its dead-letter queue `{name}-dlq`; answers the sync queue's URL.
pub async fn ensure_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> Result<String, BootstrapError> {
    ensure_queue_with_dlq(sqs, name, SYNC_VISIBILITY_TIMEOUT_SECS).await
}

/// The scheduler's queue (shards of a minute's due schedules handed to other invocations), as
/// template.yaml declares it: no dead-letter queue, and a shard not taken on within
/// [`SCHEDULER_SHARD_RETENTION_SECS`] expires (the next tick finds what it held).
pub async fn ensure_scheduler_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
) -> Result<String, BootstrapError> {
    ensure_one_queue(
        sqs,
        name,
        HashMap::from([
            (
                QueueAttributeName::VisibilityTimeout,
                SCHEDULER_VISIBILITY_TIMEOUT_SECS.to_string(),
            ),
            (
                QueueAttributeName::MessageRetentionPeriod,
                SCHEDULER_SHARD_RETENTION_SECS.to_string(),
            ),
        ]),
    )
    .await
}

/// The webhook delivery queue and its dead-letter queue `{name}-dlq`, as template.yaml
/// declares them (a visibility timeout of six sender timeouts); answers the queue's URL.
pub async fn ensure_webhook_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
) -> Result<String, BootstrapError> {
    ensure_queue_with_dlq(sqs, name, WEBHOOK_VISIBILITY_TIMEOUT_SECS).await
}

/// A queue whose messages go to `{name}-dlq` after their fifth receive.
async fn ensure_queue_with_dlq(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    visibility_timeout_secs: u32,
) -> Result<String, BootstrapError> {
    let dlq_name = format!("{name}-dlq");
    let dlq_url = ensure_one_queue(
        sqs,
        &dlq_name,
        HashMap::from([(
            QueueAttributeName::MessageRetentionPeriod,
            DLQ_RETENTION_SECS.to_string(),
        )]),
    )
    .await?;
    let fail = |e| BootstrapError::new("read the ARN of queue", &dlq_name, e);
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| fail(boxed(e)))?;
    let dlq_arn = attributes
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .ok_or_else(|| fail(adapter("the queue has no ARN")))?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": SYNC_MAX_RECEIVE_COUNT.to_string(),
    });
    ensure_one_queue(
        sqs,
        name,
        HashMap::from([
            (
                QueueAttributeName::VisibilityTimeout,
                visibility_timeout_secs.to_string(),
            ),
            (QueueAttributeName::RedrivePolicy, redrive.to_string()),
        ]),
    )
    .await
}

/// Creates a queue, or brings an existing one's attributes to these.
async fn ensure_one_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attributes: HashMap<QueueAttributeName, String>,
) -> Result<String, BootstrapError> {
    let fail = |e| BootstrapError::new("create queue", name, e);
    let created = sqs
        .create_queue()
        .queue_name(name)
        .set_attributes(Some(attributes.clone()))
        .send()
        .await;
    match created {
        Ok(out) => out
            .queue_url
            .ok_or_else(|| fail(adapter("CreateQueue answered no URL"))),
        Err(e)
            if matches!(
                crate::error::service_code(&e),
                Some(
                    "QueueAlreadyExists"
                        | "QueueNameExists"
                        | "AWS.SimpleQueueService.QueueNameExists"
                )
            ) =>
        {
            let url = sqs
                .get_queue_url()
                .queue_name(name)
                .send()
                .await
                .map_err(|e| fail(boxed(e)))?
                .queue_url
                .ok_or_else(|| fail(adapter("GetQueueUrl answered no URL")))?;
            sqs.set_queue_attributes()
                .queue_url(&url)
                .set_attributes(Some(attributes))
                .send()
                .await
                .map_err(|e| fail(boxed(e)))?;
            Ok(url)
        }
        Err(e) => Err(fail(boxed(e))),
    }
}

/// The idempotency fingerprint key, `{prefix}/idempotency-key`: `MIN_KEY_BYTES` random bytes in
/// hex, unless the secret exists. An existing key is kept: a new one would stop every stored
/// fingerprint from matching its retry. Answers the secret's name.
pub async fn ensure_fingerprint_key(
    secrets: &aws_sdk_secretsmanager::Client,
    prefix: &str,
) -> Result<String, BootstrapError> {
    let name = crate::fingerprint_key_name(prefix);
    let fail = |e| BootstrapError::new("create the fingerprint key", &name, e);
    let mut bytes = [0u8; MIN_KEY_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| fail(adapter(format!("no randomness: {e}"))))?;
    let key = SecretString::from(hex::encode(bytes));
    let created = secrets
        .create_secret()
        .name(&name)
        .description("Key of the idempotency fingerprints of keyed creates (HMAC-SHA256)")
        .secret_string(key.expose_secret())
        .send()
        .await;
    match created {
        Ok(_) => Ok(name),
        Err(e) if crate::error::service_code(&e) == Some("ResourceExistsException") => Ok(name),
        Err(e) => Err(fail(boxed(e))),
    }
}

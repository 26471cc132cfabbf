//! Fixtures of `make bench-sync` (infra/bench/sync.py): sets up a stub connection on the
//! emulator, queues its jobs, reads them back, and measures the emulator's raw write rate for
//! the very items the worker writes. Each subcommand prints one JSON line.
//!
//!   sync-fixture setup --entity-count N          fresh tables, queue, org, collection, connection
//!   sync-fixture job --org O --connection C [--config JSON] [--force-full]
//!   sync-fixture job-status --org O --connection C --job J
//!   sync-fixture ceiling --entity-count N        N stub items in 25-item BatchWriteItems
//!   sync-fixture feed-follow --org O --connection C --stop-file F
//!                                                follows the change feed until F exists, then
//!                                                checks its copy against the table
//!   sync-fixture feed-read --org O --connection C   the whole feed from the start, timed
//!   sync-fixture write-cost --connection C         write units per changed entity
//!
//! Every subcommand but `setup` and `ceiling` reads the functions' configuration
//! (STATE_TABLE, ENTITIES_TABLE, SYNC_QUEUE_URL, SECRETS_PREFIX) from the environment.

use aws_adapters::bootstrap::ensure_entities_table;
use aws_adapters::{metering, AwsClients, DynamoEntities};
use domain::collection::CreateCollectionInput;
use domain::entity::{Change, EntityWrite};
use domain::ids::{ConnectionId, JobId, OrganizationId};
use domain::job::{Job, Trigger};
use domain::ports::{BoxError, EntityStore};
use domain::usecases::collections::create_collection;
use domain::usecases::create_connection::{create_connection, CreateConnectionInput};
use serde_json::{json, Map, Value};
use sources::{StubConfig, STUB_PAGE_SIZE};
use std::time::Instant;

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let at = args.iter().position(|a| a == name)?;
    args.get(at + 1).map(String::as_str)
}

fn required<'a>(args: &'a [String], name: &str) -> Result<&'a str, BoxError> {
    flag(args, name).ok_or_else(|| format!("{name} is required").into())
}

fn entity_count(args: &[String]) -> Result<u32, BoxError> {
    Ok(required(args, "--entity-count")?.parse()?)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = match args.first().map(String::as_str) {
        Some("setup") => setup(entity_count(&args)?).await?,
        Some("job") => job(&args).await?,
        Some("job-status") => job_status(&args).await?,
        Some("ceiling") => ceiling(entity_count(&args)?).await?,
        Some("feed-follow") => {
            let platform = wiring::platform_from_env().await?;
            let (org, id) = ids(&args)?;
            let stop = std::path::PathBuf::from(required(&args, "--stop-file")?);
            bench::feed::follow(&platform, org, id, &stop).await?
        }
        Some("feed-read") => {
            let platform = wiring::platform_from_env().await?;
            let (org, id) = ids(&args)?;
            bench::feed::read_all(&platform, org, id).await?
        }
        Some("write-cost") => {
            let table = std::env::var("ENTITIES_TABLE")?;
            let id = required(&args, "--connection")?.parse()?;
            bench::feed::write_cost(&table, id).await?
        }
        _ => return Err("usage: sync-fixture setup|job|job-status|ceiling|feed-* ...".into()),
    };
    println!("{out}");
    Ok(())
}

async fn setup(count: u32) -> Result<Value, BoxError> {
    let clients = AwsClients::from_env().await;
    let config = bench::fresh_stack(&clients, false).await?.config;
    let platform = wiring::platform(&config, &clients, wiring::Upstreams::from_env()?)?;
    let org =
        local_stack::stack::create_organization(platform.store.as_ref(), "Bench", None).await?;
    let collection = CreateCollectionInput {
        name: Some("Bench".into()),
        readable_id: Some("bench".into()),
    };
    create_collection(&platform, org, collection).await?;
    let body = json!({
        "short_name": "stub",
        "readable_collection_id": "bench",
        "authentication": {"credentials": {"api_key": "bench-key"}},
        "config": {"entity_count": count, "seed": 1},
        "schedule": {"cron": null},
        "sync_immediately": false,
    });
    let input: CreateConnectionInput = serde_json::from_value(body)?;
    let created = create_connection(&platform, org, input, None).await?;
    Ok(json!({
        "env": {
            "STATE_TABLE": config.state_table,
            "ENTITIES_TABLE": config.entities_table,
            "WEBHOOKS_TABLE": config.webhooks_table,
            "SYNC_QUEUE_URL": config.sync_queue_url,
            "WEBHOOK_QUEUE_URL": config.webhook_queue_url,
            "SECRETS_PREFIX": config.secrets_prefix,
        },
        "org": org,
        "connection": created.connection.id,
    }))
}

fn ids(args: &[String]) -> Result<(OrganizationId, ConnectionId), BoxError> {
    Ok((
        required(args, "--org")?.parse()?,
        required(args, "--connection")?.parse()?,
    ))
}

async fn job(args: &[String]) -> Result<Value, BoxError> {
    let platform = wiring::platform_from_env().await?;
    let (org, id) = ids(args)?;
    let changes: Map<String, Value> = serde_json::from_str(flag(args, "--config").unwrap_or("{}"))?;
    let current = platform
        .store
        .get_versioned(org, id)
        .await?
        .ok_or("no such connection")?;
    let mut connection = current.value.clone();
    connection
        .config
        .get_or_insert_with(Map::new)
        .extend(changes);
    platform
        .store
        .replace_connection(&connection, current.version, &[])
        .await?;
    let mut job = Job::pending(JobId::new(), org, id, Trigger::Manual, platform.clock.now());
    job.force_full_sync = args.iter().any(|a| a == "--force-full");
    platform.store.start_job(&job, &[]).await?;
    platform.queue.enqueue(&job.message()).await?;
    Ok(json!({"job": job.id}))
}

async fn job_status(args: &[String]) -> Result<Value, BoxError> {
    let platform = wiring::platform_from_env().await?;
    let (_, id) = ids(args)?;
    let job: JobId = required(args, "--job")?.parse()?;
    let found = platform
        .store
        .get_job(id, job)
        .await?
        .ok_or("no such job")?;
    Ok(serde_json::to_value(found)?)
}

/// The worker's item writes and nothing else: the same entities, hashes and item shape, in
/// 25-item batches, one request at a time.
async fn ceiling(count: u32) -> Result<Value, BoxError> {
    let clients = AwsClients::from_env().await;
    let table = format!("bench-ceiling-{}", uuid::Uuid::new_v4().simple());
    ensure_entities_table(&clients.dynamodb, &table).await?;
    let entities = DynamoEntities::new(clients.dynamodb.clone(), &table);
    let stub = StubConfig::from_config(
        json!({"entity_count": count, "seed": 1})
            .as_object()
            .expect("an object"),
    );
    let (connection, job) = (ConnectionId::new(), JobId::new());
    let mut positions = domain::feed::Positions::new(job, 1);
    let before = metering::snapshot();
    let started = Instant::now();
    for page in (0..count).collect::<Vec<_>>().chunks(STUB_PAGE_SIZE) {
        let writes: Vec<EntityWrite> = page
            .iter()
            .map(|&i| {
                let entity = stub.entity(i, 0);
                let position = positions.next(chrono::Utc::now());
                EntityWrite {
                    key: entity.key().expect("stub keys are valid"),
                    hash: entity.content_hash(),
                    entity,
                    job,
                    change: Change::Inserted,
                    position,
                    added: position,
                }
            })
            .collect();
        for batch in writes.chunks(25) {
            entities.write(connection, batch).await?;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let requests = metering::since(&before);
    Ok(json!({
        "items": count,
        "seconds": seconds,
        "requests": requests.get("DynamoDB_20120810.BatchWriteItem").copied().unwrap_or(0),
    }))
}

//! Key layout of the state table (DESIGN section 7).

use domain::ids::{ConnectionId, JobId, OrganizationId};
use domain::names::ReadableId;
use domain::tenancy::ApiKeyHash;

pub(crate) const META: &str = "META";
pub(crate) const COLLECTION_PREFIX: &str = "COLL#";
pub(crate) const CONNECTION_PREFIX: &str = "CONN#";

/// The global secondary index over `sched_bucket` / `next_run_at` that finds due schedules.
/// Scheduled connections are spread over buckets "0".."9" ([`domain::schedule::BUCKETS`]).
pub const SCHEDULE_INDEX: &str = "schedule";

/// The schedule bucket of a connection: stable, derived from its id.
pub fn schedule_bucket(id: ConnectionId) -> String {
    domain::schedule::bucket_of(id).to_string()
}

/// The global secondary index over `sweep_bucket` / `sweep_at` that finds what the scheduler's
/// sweeps must look at: active-job slots (`job#<b>`) and tombstones of deletes (`delete#<b>`).
pub const SWEEP_INDEX: &str = "sweep";
pub(crate) const SWEEP_BUCKET: &str = "sweep_bucket";
pub(crate) const SWEEP_AT: &str = "sweep_at";

/// Kinds of items in the sweep index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sweep {
    Job,
    Delete,
}

/// The sweep bucket of one kind of item of a connection.
pub(crate) fn sweep_bucket(kind: Sweep, bucket: u8) -> String {
    let kind = match kind {
        Sweep::Job => "job",
        Sweep::Delete => "delete",
    };
    format!("{kind}#{bucket}")
}

/// The partition of a paginated sweep's saved position.
pub(crate) fn sweep_position_pk(sweep: &str) -> String {
    format!("SWEEP#{sweep}")
}

/// The organization and connection of a connection item's key.
pub(crate) fn parse_connection_key(pk: &str, sk: &str) -> Option<(OrganizationId, ConnectionId)> {
    let org = pk.strip_prefix("ORG#")?.parse().ok()?;
    let id = sk.strip_prefix(CONNECTION_PREFIX)?.parse().ok()?;
    Some((org, id))
}

pub(crate) fn organization_pk(org: OrganizationId) -> String {
    format!("ORG#{org}")
}

pub(crate) fn api_key_pk(key: &ApiKeyHash) -> String {
    format!("APIKEY#{}", key.as_str())
}

pub(crate) fn collection_sk(id: &ReadableId) -> String {
    format!("{COLLECTION_PREFIX}{id}")
}

pub(crate) fn connection_sk(id: ConnectionId) -> String {
    format!("{CONNECTION_PREFIX}{id}")
}

/// The partition of a connection's jobs.
pub(crate) fn connection_pk(id: ConnectionId) -> String {
    format!("CONN#{id}")
}

/// UUIDv7 ids make the sort key order jobs by creation time.
pub(crate) fn job_sk(id: JobId) -> String {
    format!("JOB#{id}")
}

/// The sort key of a connection's active-job slot (under `connection_pk`).
pub(crate) const ACTIVE_SLOT: &str = "ACTIVE";

/// The organization id has a fixed length, so the key after it needs no escaping.
pub(crate) fn idempotency_pk(org: OrganizationId, key: &str) -> String {
    format!("IDEMP#{org}#{key}")
}

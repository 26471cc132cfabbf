//! Key layout of the state table (DESIGN section 7).

use domain::ids::{ConnectionId, JobId, OrganizationId};
use domain::names::ReadableId;
use domain::tenancy::ApiKeyHash;

pub(crate) const META: &str = "META";
pub(crate) const COLLECTION_PREFIX: &str = "COLL#";
pub(crate) const CONNECTION_PREFIX: &str = "CONN#";

/// The global secondary index over `sched_bucket` / `next_run_at` that finds due schedules.
pub const SCHEDULE_INDEX: &str = "schedule";
/// Scheduled connections are spread over this many buckets ("0".."9") so that no single
/// partition of the index gets every schedule.
pub const SCHEDULE_BUCKETS: u8 = 10;

/// The schedule bucket of a connection: stable, derived from its id.
pub fn schedule_bucket(id: ConnectionId) -> String {
    (id.as_uuid().as_u128() % u128::from(SCHEDULE_BUCKETS)).to_string()
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

//! Key layout of the state table (DESIGN section 7), the attributes more than one store reads
//! or writes, and the items more than one store's transactions put: a connection and its
//! active-job slot.

use super::{key, n, s, to_item, Item};
use domain::connection::SourceConnection;
use domain::ids::{ConnectionId, JobId, OrganizationId};
use domain::job::Job;
use domain::names::ReadableId;
use domain::ports::StoreError;
use domain::schedule::bucket_of;
use domain::tenancy::{ApiKeyHash, ApiKeyId};
use domain::usecases::scheduler::LOST_MESSAGE_AFTER;

pub(crate) const META: &str = "META";
pub(crate) const COLLECTION_PREFIX: &str = "COLL#";
pub(crate) const CONNECTION_PREFIX: &str = "CONN#";

/// The global secondary index over `sched_bucket` / `next_run_at` that finds due schedules,
/// projecting the whole connection (a claim writes on the version it returns). Scheduled
/// connections are spread over buckets "0".."63" ([`domain::schedule::BUCKETS`]).
pub const SCHEDULE_INDEX: &str = "due_schedules";

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

pub(crate) const API_KEY_PREFIX: &str = "APIKEY#";

pub(crate) fn api_key_pk(key: &ApiKeyHash) -> String {
    format!("{API_KEY_PREFIX}{}", key.as_str())
}

/// The pointer from a key's id to its hash (`APIKEYID#<id> | META`). Not a prefix of
/// [`api_key_pk`]'s partitions, so a scan for key items never meets it.
pub(crate) fn api_key_id_pk(id: &ApiKeyId) -> String {
    format!("APIKEYID#{id}")
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

/// The optimistic-locking counter of a connection item; later updates condition on it.
pub(crate) const VERSION: &str = "version";
/// The condition of a versioned write: the connection is still at `:version` (`#version`), not
/// being deleted (`#deleting`).
pub(crate) const STILL_AT_VERSION: &str = "#version = :version AND attribute_not_exists(#deleting)";
/// Attributes of the scheduler's index, present only while a next run is planned.
pub(crate) const SCHED_BUCKET: &str = "sched_bucket";
pub(crate) const NEXT_RUN_AT: &str = "next_run_at";

/// Set on a connection whose delete has begun (epoch seconds): the item is a tombstone, hidden
/// from every read of live connections.
pub(crate) const DELETING_AT: &str = "deleting_at";

pub(crate) const JOB_ID: &str = "job_id";
pub(crate) const ORGANIZATION_ID: &str = "organization_id";

/// The item of a connection: its fields, its key, a version, and the schedule index attributes
/// while the connection is in the schedule (active and scheduled).
pub(crate) fn connection_item(connection: &SourceConnection) -> Result<Item, StoreError> {
    let mut item = to_item(
        connection,
        organization_pk(connection.organization_id),
        &connection_sk(connection.id),
    )?;
    item.insert(VERSION.to_owned(), n(1));
    if let Some(next_run) = connection.scheduled_run() {
        item.insert(SCHED_BUCKET.to_owned(), s(schedule_bucket(connection.id)));
        item.insert(NEXT_RUN_AT.to_owned(), n(next_run.timestamp()));
    }
    Ok(item)
}

/// The item of a connection's one active-job slot, held by `job`: whoever writes a job's start
/// puts it on the condition it does not exist; whoever writes the job's end deletes it. It is in
/// the sweep index, due for a first look once the job's message could have been lost.
pub(crate) fn active_slot(job: &Job) -> Item {
    let mut item = key(connection_pk(job.source_connection_id), ACTIVE_SLOT);
    item.insert(JOB_ID.to_owned(), s(job.id.to_string()));
    item.insert(
        ORGANIZATION_ID.to_owned(),
        s(job.organization_id.to_string()),
    );
    let bucket = sweep_bucket(Sweep::Job, bucket_of(job.source_connection_id));
    item.insert(SWEEP_BUCKET.to_owned(), s(bucket));
    let first_look = job.created_at + LOST_MESSAGE_AFTER;
    item.insert(SWEEP_AT.to_owned(), n(first_look.timestamp()));
    item
}

//! Ports: what the use cases need from the outside world. Adapters in `shared/aws` implement the
//! stores, the vault and the queue; `shared/sources` implements the source directory.

use crate::auth::AuthenticationRequest;
use crate::auth_provider::{AccountRef, ProviderConnection, ProviderCredentials, ProviderError};
use crate::catalog::SourceSpec;
use crate::collection::Collection;
use crate::connection::SourceConnection;
use crate::feed::{FeedMark, JobMarks};
use crate::idempotency::{Claim, KeyState, Reservation};
use crate::ids::{ConnectionId, JobId, OrganizationId};
use crate::job::{Counts, Job, JobClaim, JobStatus, Lease, RunState, SyncMessage};
use crate::names::ReadableId;
use crate::oauth::{OAuthEndpoints, PendingFlow, StateHash};
use crate::page::{Page, PageRequest};
use crate::stream::{EntityStream, StreamError, StreamRequest};
use crate::tenancy::{
    ApiKeyHash, ApiKeyId, ApiKeySummary, Organization, RedirectOrigin, StoredApiKey,
};
use crate::webhooks::Event;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::time::Duration;

mod entities;
mod vault;
mod webhooks;

pub use entities::{EntityStore, FeedChange, FeedEntry, FeedPage, FeedQuery, FeedSide, KeysPage};
pub use vault::{
    check_secret_size, CredentialVault, SecretEntry, SecretVersion, SecretsPage, VaultError,
    VersionedSecret, SECRET_VALUE_LIMIT,
};
pub use webhooks::{DeliveryQueue, WebhookSecrets, WebhookStore, WebhookTargets, WebhookTransport};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the item already exists")]
    AlreadyExists,
    #[error("the collection does not exist")]
    CollectionNotFound,
    #[error("the collection still has source connections")]
    CollectionNotEmpty,
    /// An idempotency key or a job's run was taken over by another holder.
    #[error("the lease was taken over by another holder")]
    LeaseLost,
    /// The item changed since it was read (optimistic locking): read again and retry.
    #[error("the item changed since it was read")]
    VersionConflict,
    /// The connection already has a job pending, running or cancelling.
    #[error("the connection already has an active job")]
    JobActive,
    /// The connection is gone, paused or waiting for authentication.
    #[error("the connection cannot run a job now")]
    NotRunnable,
    /// A list cursor this store did not issue.
    #[error("the cursor was not issued by this API")]
    InvalidCursor,
    #[error("state store failed")]
    Backend(#[source] BoxError),
}

#[async_trait]
pub trait TenantStore: Send + Sync {
    /// The organization of an API key; `None` when the key is unknown or revoked.
    async fn organization_for_key(
        &self,
        key: &ApiKeyHash,
    ) -> Result<Option<OrganizationId>, StoreError>;
    async fn insert_organization(&self, org: &Organization) -> Result<(), StoreError>;
    async fn get_organization(
        &self,
        org: OrganizationId,
    ) -> Result<Option<Organization>, StoreError>;
    async fn insert_api_key(
        &self,
        key: &ApiKeyHash,
        org: OrganizationId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// `false` when there was no such key.
    async fn revoke_api_key(&self, key: &ApiKeyHash) -> Result<bool, StoreError>;
    /// The keys whose id is `id`: none or one, unless two keys' hashes begin alike.
    async fn api_keys_with_id(&self, id: &ApiKeyId) -> Result<Vec<StoredApiKey>, StoreError>;
    /// The organization's keys, oldest first.
    async fn list_api_keys(&self, org: OrganizationId) -> Result<Vec<ApiKeySummary>, StoreError>;
    /// Replaces the organization's OAuth redirect allowlist (`None`: it has none of its own and
    /// the platform's default applies); `false` when there is no such organization.
    async fn set_redirect_origins(
        &self,
        org: OrganizationId,
        origins: Option<&[RedirectOrigin]>,
    ) -> Result<bool, StoreError>;
}

#[async_trait]
pub trait CollectionStore: Send + Sync {
    /// `AlreadyExists` when the organization already has this readable id. `events` are
    /// recorded with it (the outbox), as with every write below that takes them.
    async fn insert_collection(
        &self,
        collection: &Collection,
        events: &[Event],
    ) -> Result<(), StoreError>;
    async fn get_collection(
        &self,
        org: OrganizationId,
        id: &ReadableId,
    ) -> Result<Option<Collection>, StoreError>;
    async fn list_collections(
        &self,
        org: OrganizationId,
        page: &PageRequest,
    ) -> Result<Page<Collection>, StoreError>;
    /// `CollectionNotFound`, or `CollectionNotEmpty` while connections still belong to it;
    /// decided atomically with the connections' own writes.
    async fn delete_collection(
        &self,
        org: OrganizationId,
        id: &ReadableId,
        events: &[Event],
    ) -> Result<(), StoreError>;
}

/// Everything a create writes to the state store, in one transaction.
#[derive(Debug, Clone, Copy)]
pub struct NewConnection<'a> {
    pub connection: &'a SourceConnection,
    pub first_job: Option<&'a Job>,
    /// For a keyed create: the reservation it holds and the response to remember.
    pub idempotency: Option<(&'a Reservation, &'a str)>,
    /// Recorded in the same transaction (the outbox).
    pub events: &'a [Event],
}

#[async_trait]
pub trait ConnectionStore: Send + Sync {
    /// Writes the connection, its first job and the idempotency result atomically, on the
    /// condition that the collection exists (`CollectionNotFound`), the id is new
    /// (`AlreadyExists`) and the reservation is still held (`LeaseLost`).
    async fn insert_connection(&self, new: NewConnection<'_>) -> Result<(), StoreError>;
    async fn get_connection(
        &self,
        org: OrganizationId,
        id: ConnectionId,
    ) -> Result<Option<SourceConnection>, StoreError>;
    async fn list_connections(
        &self,
        org: OrganizationId,
        collection: Option<&ReadableId>,
        page: &PageRequest,
    ) -> Result<Page<SourceConnection>, StoreError>;
    /// The connection and its version, for a read-modify-write.
    async fn get_versioned(
        &self,
        org: OrganizationId,
        id: ConnectionId,
    ) -> Result<Option<Versioned<SourceConnection>>, StoreError>;
    /// Replaces the connection if it is still at `version` (`VersionConflict` otherwise, also
    /// when it was deleted).
    async fn replace_connection(
        &self,
        connection: &SourceConnection,
        version: u64,
        events: &[Event],
    ) -> Result<(), StoreError>;
    /// [`Self::replace_connection`] and, in the same transaction, marks the connection's
    /// secret version `secret` current (new credentials).
    async fn replace_connection_with_secret(
        &self,
        connection: &SourceConnection,
        version: u64,
        secret: &SecretVersion,
    ) -> Result<(), StoreError>;
    /// The first step of a delete, atomically and only if the connection is still at
    /// `version` (`VersionConflict`): the connection becomes a tombstone (hidden from every read
    /// above, out of the schedule, refused by `start_job`) and its collection's connection count
    /// drops. A retried DELETE or the sweep finishes the delete from the tombstone.
    async fn begin_delete(
        &self,
        connection: &SourceConnection,
        version: u64,
        now: DateTime<Utc>,
        events: &[Event],
    ) -> Result<(), StoreError>;
    /// The connection as it was when its delete began, while its tombstone remains.
    async fn deleting_connection(
        &self,
        org: OrganizationId,
        id: ConnectionId,
    ) -> Result<Option<SourceConnection>, StoreError>;
    /// Removes a page of the records kept under the connection (jobs, the active-job slot,
    /// checkpoint chunks, the cursor): `true` once none is left. A connection synced every five
    /// minutes keeps ~26,000 jobs over the job retention; the caller pages under its deadline.
    async fn delete_connection_records(&self, id: ConnectionId) -> Result<bool, StoreError>;
    /// The last step of a delete: removes the tombstone (a missing one is no error).
    async fn remove_tombstone(
        &self,
        org: OrganizationId,
        id: ConnectionId,
    ) -> Result<(), StoreError>;
    /// Whether anything is stored for this connection id, live or tombstone.
    async fn connection_exists(
        &self,
        org: OrganizationId,
        id: ConnectionId,
    ) -> Result<bool, StoreError>;
}

/// A connection found through an index: enough to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionRef {
    pub organization_id: OrganizationId,
    pub connection_id: ConnectionId,
}

/// A connection's active job, due for the sweep's look at `check_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobCheck {
    pub organization_id: OrganizationId,
    pub connection_id: ConnectionId,
    pub job_id: JobId,
    pub check_at: DateTime<Utc>,
}

/// What the scheduler finds through the indexes (never a scan), and how it claims it.
/// A page of due schedules.
#[derive(Debug, Clone, Default)]
pub struct DueSchedules {
    pub connections: Vec<Versioned<SourceConnection>>,
    /// Where the next page starts; `None` after the last.
    pub next: Option<String>,
}

/// Where the scheduler hands the buckets it cannot claim in time: another invocation takes each
/// shard (the scheduler's SQS queue).
#[async_trait]
pub trait ScheduleHandOff: Send + Sync {
    async fn hand_off(&self, shards: &[crate::schedule::ScheduleShard]) -> Result<(), QueueError>;
}

#[async_trait]
pub trait ScheduleStore: Send + Sync {
    /// A page of the active, scheduled connections of one bucket whose next run is at or before
    /// `now`, earliest first, at most `limit`, after `position` (a page's `next`). Each comes as
    /// the index holds it, which may lag the table: a claim writes on the condition of its
    /// version, so a stale copy only loses the claim.
    async fn due_schedules(
        &self,
        bucket: u8,
        now: DateTime<Utc>,
        limit: usize,
        position: Option<&str>,
    ) -> Result<DueSchedules, StoreError>;
    /// Active jobs of one bucket due for a check, at most `limit`.
    async fn due_job_checks(
        &self,
        bucket: u8,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<JobCheck>, StoreError>;
    /// Moves a job's next check to `to`, on the condition that it is still at `check.check_at`
    /// and the job still holds the slot: `false` when another sweep got there first.
    async fn postpone_job_check(
        &self,
        check: &JobCheck,
        to: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Frees the active-job slot if `job` still holds it (it ended without freeing it, or is gone).
    async fn free_slot(&self, connection: ConnectionId, job: JobId) -> Result<(), StoreError>;
    /// Tombstones of one bucket whose delete began before `before`, at most `limit`.
    async fn due_deletes(
        &self,
        bucket: u8,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ConnectionRef>, StoreError>;
    /// Where a paginated sweep stopped last time.
    async fn sweep_position(&self, sweep: &str) -> Result<Option<String>, StoreError>;
    async fn save_sweep_position(
        &self,
        sweep: &str,
        position: Option<&str>,
    ) -> Result<(), StoreError>;
}

/// A value and the version it was read at.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub value: T,
    pub version: u64,
}

/// What happens to the connection's sync cursor when a run ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CursorUpdate<'a> {
    Keep,
    Save(&'a Value),
    Clear,
}

/// A run's outcome, written atomically: the job's final state (if the run still holds it), the
/// connection's status and summaries (if it is still at the version read), and the cursor.
#[derive(Debug, Clone, Copy)]
pub struct FinishedRun<'a> {
    pub job: &'a Job,
    pub holder: &'a str,
    /// `None` when the connection no longer exists.
    pub connection: Option<(&'a SourceConnection, u64)>,
    pub cursor: CursorUpdate<'a>,
    /// Recorded with the outcome (the outbox).
    pub events: &'a [Event],
}

/// The events of a change to a job, given the job as the change leaves it; empty when the
/// organization records none.
pub type JobEvents<'a> = &'a (dyn Fn(&Job) -> Vec<Event> + Send + Sync);

/// Sync jobs (`CONN#id | JOB#<uuidv7>`), their leases and checkpoints, and the sync cursor.
#[async_trait]
pub trait JobStore: Send + Sync {
    async fn get_job(
        &self,
        connection: ConnectionId,
        job: JobId,
    ) -> Result<Option<Job>, StoreError>;
    /// Newest first.
    async fn list_jobs(
        &self,
        connection: ConnectionId,
        page: &PageRequest,
    ) -> Result<Page<Job>, StoreError>;
    /// Writes a new pending job and takes its connection's one active-job slot, atomically:
    /// `JobActive` while another job is pending, running or cancelling; `NotRunnable` when the
    /// connection is gone, paused (`inactive`) or waiting for authentication. The slot is freed
    /// with the job's end ([`JobStore::finish_job`], [`JobStore::cancel_job`]).
    async fn start_job(&self, job: &Job, events: &[Event]) -> Result<(), StoreError>;
    /// Like `start_job`, and in the same transaction replaces the connection (its advanced
    /// schedule) if it is still at `version`: `VersionConflict` when it changed (another
    /// scheduler claimed this run), `JobActive` when a job is active (nothing is written).
    async fn start_scheduled_job(
        &self,
        job: &Job,
        connection: &SourceConnection,
        version: u64,
        events: &[Event],
    ) -> Result<(), StoreError>;
    /// The connection's two newest jobs, newest first, with their feed marks.
    async fn feed_marks(&self, connection: ConnectionId) -> Result<Vec<JobMarks>, StoreError>;
    /// The job holding the connection's active-job slot.
    async fn active_job(&self, connection: ConnectionId) -> Result<Option<JobId>, StoreError>;
    /// The job and its run's lease (`None` when never claimed or released).
    async fn job_run(
        &self,
        connection: ConnectionId,
        job: JobId,
    ) -> Result<Option<(Job, Option<Lease>)>, StoreError>;
    /// Asks a job to stop: a pending job is cancelled at once (its slot freed), a running one
    /// becomes `cancelling` for its run to stop between pages, a cancelling one stays so.
    /// Answers the job as it now stands, or `None` when there is no such job; a job that had
    /// already ended is answered unchanged. `events` are those of the job as it then stands,
    /// recorded with the change (none when nothing changed).
    async fn cancel_job(
        &self,
        connection: ConnectionId,
        job: JobId,
        now: DateTime<Utc>,
        events: JobEvents<'_>,
    ) -> Result<Option<Job>, StoreError>;
    /// Takes the job for a run under `lease`: a pending job becomes running; a running or
    /// cancelling one is taken over (status kept) when its lease has run out or was released.
    /// `events` (of the job now running) are recorded when a pending job starts, not on a
    /// take-over.
    async fn claim_job(
        &self,
        connection: ConnectionId,
        job: JobId,
        lease: &Lease,
        now: DateTime<Utc>,
        events: JobEvents<'_>,
    ) -> Result<JobClaim, StoreError>;
    /// Writes the live counts and extends the lease to `lease.until`, and with `mark` records
    /// it as the job's newest feed mark (the one it replaces kept as the one before); answers
    /// the job's status (`cancelling` asks the run to stop). `LeaseLost` when the run no longer
    /// holds the job.
    async fn record_progress(
        &self,
        connection: ConnectionId,
        job: JobId,
        lease: &Lease,
        counts: &Counts,
        mark: Option<&FeedMark>,
    ) -> Result<JobStatus, StoreError>;
    /// Saves where the run stopped (counts included) and starts the count of failed attempts
    /// again. With `keep_until` the run goes on holding the job, its lease extended to then;
    /// without, the lease is released, so that the next delivery resumes at once (a
    /// hand-over). `mark` as with [`JobStore::record_progress`]. `LeaseLost` when the run no
    /// longer holds the job.
    async fn save_run_state(
        &self,
        connection: ConnectionId,
        job: JobId,
        holder: &str,
        checkpoint: &RunState,
        keep_until: Option<DateTime<Utc>>,
        mark: Option<&FeedMark>,
    ) -> Result<(), StoreError>;
    /// Counts an attempt of the job that failed, while `holder` holds it (`LeaseLost` when it
    /// does not): how many have failed since its run state was last saved.
    async fn count_failed_attempt(
        &self,
        connection: ConnectionId,
        job: JobId,
        holder: &str,
    ) -> Result<u32, StoreError>;
    /// Releases the lease without a checkpoint; the next delivery resumes from the last one.
    async fn release_job(
        &self,
        connection: ConnectionId,
        job: JobId,
        holder: &str,
    ) -> Result<(), StoreError>;
    /// `LeaseLost` when the run no longer holds the job (nothing is written);
    /// `VersionConflict` when the connection changed since it was read (nothing is written).
    async fn finish_job(&self, run: FinishedRun<'_>) -> Result<(), StoreError>;
    /// One chunk of a checkpoint's seen keys (at most the sync use case's `SEEN_CHUNK_BYTES`).
    async fn put_seen_chunk(
        &self,
        connection: ConnectionId,
        job: JobId,
        index: u32,
        keys: &[u8],
    ) -> Result<(), StoreError>;
    /// Chunks `0..count`, in order.
    async fn seen_chunks(
        &self,
        connection: ConnectionId,
        job: JobId,
        count: u32,
    ) -> Result<Vec<Vec<u8>>, StoreError>;
    /// Every seen-keys chunk of the job, however many were written.
    async fn delete_seen_chunks(
        &self,
        connection: ConnectionId,
        job: JobId,
    ) -> Result<(), StoreError>;
    /// The cursor the last completed run left.
    async fn sync_cursor(&self, connection: ConnectionId) -> Result<Option<Value>, StoreError>;
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Takes the key for `candidate` when it is free or expired, or when its holder's lease ran
    /// out and the holder's request had the same fingerprint (then the holder's connection and
    /// job ids are kept, with the candidate's lease). A different body never takes a key over:
    /// it is answered `Held`, which the use case turns into a 422.
    async fn claim_key(
        &self,
        candidate: &Reservation,
        now: DateTime<Utc>,
    ) -> Result<Claim, StoreError>;
    async fn read_key(
        &self,
        org: OrganizationId,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<KeyState>, StoreError>;
    /// Frees the key after a failed attempt, if this reservation still holds it.
    async fn release_key(&self, reservation: &Reservation) -> Result<(), StoreError>;
}

/// Browser flows waiting for their OAuth callback (`OAUTH#<state hash> | META`).
#[async_trait]
pub trait FlowStore: Send + Sync {
    /// Stores a pending flow, removed by the table's TTL after its expiry.
    async fn put_flow(&self, flow: &PendingFlow) -> Result<(), StoreError>;
    /// Consumes a flow atomically: it is removed and answered only when it exists and has not
    /// expired at `now`. An unknown, already used or expired state answers `None`, so a state
    /// works once, however many callbacks race for it.
    async fn take_flow(
        &self,
        state: &StateHash,
        now: DateTime<Utc>,
    ) -> Result<Option<PendingFlow>, StoreError>;
}

/// One refresher per connection: a lease (`CONN#id | REFRESH`) whose fencing version grows with
/// every acquisition, so a holder whose lease ran out can tell before it writes.
#[async_trait]
pub trait RefreshLeaseStore: Send + Sync {
    /// Takes the lease until `until` when it is free or ran out at `now`: the fencing version,
    /// or `None` while another holder has it.
    async fn acquire_refresh_lease(
        &self,
        connection: ConnectionId,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<u64>, StoreError>;
    /// Frees the lease if `holder` still has it.
    async fn release_refresh_lease(
        &self,
        connection: ConnectionId,
        holder: &str,
    ) -> Result<(), StoreError>;
}

/// Which version of a connection's secret is current (`CONN#id | SECRET`). Secrets Manager has
/// no conditional write: writers decide here, under a condition, whose version succeeds the
/// current one, then promote it in the vault.
#[async_trait]
pub trait SecretVersionStore: Send + Sync {
    /// The version last marked current; `None` when none was (the create's version is).
    async fn marked_secret_version(
        &self,
        id: ConnectionId,
    ) -> Result<Option<SecretVersion>, StoreError>;
    /// Marks `to` current, as `succession` allows and while the connection exists (not being
    /// deleted): `false` when it does not.
    async fn mark_secret_version(
        &self,
        org: OrganizationId,
        id: ConnectionId,
        to: &SecretVersion,
        succession: Succession<'_>,
    ) -> Result<bool, StoreError>;
}

/// Whose version a new one may succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Succession<'a> {
    /// Any: new credentials from the user or a new authorization.
    Replaces,
    /// Only `from`, the version that was read (when nothing is marked yet, the create's version
    /// is current, and it was read): tokens refreshed from it.
    Follows(&'a SecretVersion),
}

/// The organization's accounts at auth providers (`ORG#id | AUTHPROV#<readable_id>`); their
/// credentials are in the vault.
#[async_trait]
pub trait ProviderConnectionStore: Send + Sync {
    /// `AlreadyExists` when the organization already has this readable id.
    async fn insert_provider_connection(
        &self,
        connection: &ProviderConnection,
    ) -> Result<(), StoreError>;
    async fn get_provider_connection(
        &self,
        org: OrganizationId,
        readable_id: &ReadableId,
    ) -> Result<Option<ProviderConnection>, StoreError>;
    async fn list_provider_connections(
        &self,
        org: OrganizationId,
        page: &PageRequest,
    ) -> Result<Page<ProviderConnection>, StoreError>;
}

/// The whole state store, as the handlers hold it.
pub trait Store:
    TenantStore
    + CollectionStore
    + ConnectionStore
    + IdempotencyStore
    + JobStore
    + ScheduleStore
    + FlowStore
    + RefreshLeaseStore
    + SecretVersionStore
    + ProviderConnectionStore
{
}
impl<
        T: TenantStore
            + CollectionStore
            + ConnectionStore
            + IdempotencyStore
            + JobStore
            + ScheduleStore
            + FlowStore
            + RefreshLeaseStore
            + SecretVersionStore
            + ProviderConnectionStore,
    > Store for T
{
}

#[derive(Debug, thiserror::Error)]
#[error("sync queue failed")]
pub struct QueueError(#[source] pub BoxError);

#[async_trait]
pub trait SyncQueue: Send + Sync {
    async fn enqueue(&self, message: &SyncMessage) -> Result<(), QueueError>;
    /// Many messages in as few requests as the queue allows (SQS: 10 a request). An error
    /// means some may not have been sent.
    async fn enqueue_all(&self, messages: &[SyncMessage]) -> Result<(), QueueError> {
        for message in messages {
            self.enqueue(message).await?;
        }
        Ok(())
    }
    /// Delivered no sooner than `delay` from now (at most [`MAX_QUEUE_DELAY`]).
    async fn enqueue_after(&self, message: &SyncMessage, delay: Duration)
        -> Result<(), QueueError>;
}

/// The longest delay a queue takes (SQS: 15 minutes); longer waits are chained.
pub const MAX_QUEUE_DELAY: Duration = Duration::from_secs(900);

/// Why an upstream credential check did not pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// The upstream says the credential is invalid or revoked.
    #[error("{0}")]
    Rejected(String),
    #[error("rate limited")]
    RateLimited { retry_after: Option<Duration> },
    /// The upstream failed (5xx, network, unreadable answer).
    #[error("{0}")]
    Unavailable(String),
}

/// The catalog of sources and their credential checks.
#[async_trait]
pub trait SourceDirectory: Send + Sync {
    fn spec(&self, short_name: &str) -> Option<&SourceSpec>;
    fn specs(&self) -> Vec<&SourceSpec>;
    /// The source's cheapest "who am I" call with these credentials.
    async fn check_credentials(
        &self,
        short_name: &str,
        auth: &AuthenticationRequest,
        config: &Map<String, Value>,
    ) -> Result<(), CheckError>;
    /// The source's entities for one run.
    fn open_stream(
        &self,
        short_name: &str,
        request: StreamRequest,
    ) -> Result<Box<dyn EntityStream>, StreamError>;
    /// Where the source's OAuth authorize and token endpoints are (its catalog settings, unless
    /// the operator overrode them); `None` for a source without OAuth.
    fn oauth_endpoints(&self, short_name: &str) -> Option<OAuthEndpoints>;
}

/// The auth providers' APIs.
#[async_trait]
pub trait AuthProviders: Send + Sync {
    /// Whether the provider takes these credentials (Composio: an authenticated read;
    /// Pipedream: a client-credentials token).
    async fn verify(&self, credentials: &ProviderCredentials) -> Result<(), ProviderError>;

    /// Fresh credentials of the account for this source: an OAuth account's access token as
    /// [`AuthenticationRequest::OauthToken`] (no refresh token: the provider refreshes), an API
    /// key account's key as [`AuthenticationRequest::Direct`] under the source's first auth
    /// field. Checks that the account is alive and belongs to the source's app.
    async fn fetch(
        &self,
        credentials: &ProviderCredentials,
        source: &SourceSpec,
        account: &AccountRef,
    ) -> Result<AuthenticationRequest, ProviderError>;
}

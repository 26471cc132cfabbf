//! The state store: tenants, collections, connections with their jobs, idempotency keys.

use super::{injected, lock, page_of};
use crate::auth_provider::ProviderConnection;
use crate::collection::Collection;
use crate::connection::{ConnectionStatus, SourceConnection};
use crate::feed::{FeedMark, JobMarks};
use crate::idempotency::{Claim, KeyState, Reservation};
use crate::ids::{ConnectionId, JobId, OrganizationId};
use crate::job::{Counts, Job, JobClaim, JobStatus, Lease, RunState};
use crate::names::ReadableId;
use crate::oauth::{PendingFlow, StateHash};
use crate::page::{Page, PageRequest};
use crate::ports::{
    CollectionStore, ConnectionRef, ConnectionStore, CursorUpdate, DueSchedules, FinishedRun,
    FlowStore, IdempotencyStore, JobCheck, JobEvents, JobStore, NewConnection,
    ProviderConnectionStore, RefreshLeaseStore, ScheduleStore, SecretVersion, StoreError,
    TenantStore, Versioned,
};
use crate::schedule::bucket_of;
use crate::tenancy::{ApiKeyHash, Organization};
use crate::usecases::scheduler::LOST_MESSAGE_AFTER;
use crate::webhooks::Event;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use tokio::sync::oneshot;

mod secret_versions;

struct ApiKeyRow {
    organization_id: OrganizationId,
    revoked: bool,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

/// A collection and the number of connections that belong to it, kept in the same item so that
/// a delete can refuse atomically while the count is not zero.
struct CollectionRow {
    collection: Collection,
    connections: usize,
}

struct KeyRow {
    state: KeyState,
    expires_at: DateTime<Utc>,
}

/// A connection's refresh lease: its holder and until when (if held), and its fence.
type RefreshLease = (Option<(String, DateTime<Utc>)>, u64);

/// Job records one `delete_connection_records` call removes.
pub const RECORDS_PAGE: usize = 200;
#[derive(Default)]
struct State {
    organizations: BTreeMap<OrganizationId, Organization>,
    api_keys: BTreeMap<String, ApiKeyRow>,
    collections: BTreeMap<(OrganizationId, String), CollectionRow>,
    connections: BTreeMap<(OrganizationId, ConnectionId), SourceConnection>,
    versions: BTreeMap<ConnectionId, u64>,
    jobs: BTreeMap<(ConnectionId, JobId), Job>,
    /// A job's run: its lease (holder, until) and its checkpoint.
    runs: BTreeMap<JobId, (Option<Lease>, Option<RunState>)>,
    seen: BTreeMap<(JobId, u32), Vec<u8>>,
    /// Each connection's one active (pending, running or cancelling) job.
    active: BTreeMap<ConnectionId, JobId>,
    /// When the sweep next looks at each active slot.
    checks: BTreeMap<ConnectionId, (OrganizationId, DateTime<Utc>)>,
    /// Connections whose delete began, as they were, and when.
    tombstones: BTreeMap<(OrganizationId, ConnectionId), (SourceConnection, DateTime<Utc>)>,
    sweep_positions: BTreeMap<String, String>,
    flows: BTreeMap<String, PendingFlow>,
    refresh_leases: BTreeMap<ConnectionId, RefreshLease>,
    /// Failed attempts by job, since its run state was saved.
    failed_attempts: BTreeMap<JobId, u32>,
    /// Claims of each job so far.
    claims: BTreeMap<JobId, u16>,
    /// Each job's feed marks, newest first (two at most).
    marks: BTreeMap<JobId, Vec<FeedMark>>,
    /// Each connection's marked secret version (`SecretVersionStore`).
    secret_versions: BTreeMap<ConnectionId, SecretVersion>,
    provider_connections: BTreeMap<(OrganizationId, String), ProviderConnection>,
    cursors: BTreeMap<ConnectionId, Value>,
    keys: BTreeMap<(OrganizationId, String), KeyRow>,
    /// Every event recorded with a change (the outbox), in order.
    outbox: Vec<Event>,
}

/// Stops the next `insert_connection` before it writes anything, so a test can act in between.
pub struct InsertPause {
    /// Fires when a create has reached its transaction.
    pub reached: oneshot::Receiver<()>,
    /// Send (or drop) to let the transaction go on.
    pub resume: oneshot::Sender<()>,
}

struct PendingPause {
    reached: oneshot::Sender<()>,
    resume: oneshot::Receiver<()>,
}

/// The state store: tenants, collections, connections with their jobs, idempotency keys.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    fail_insert_connection: AtomicBool,
    fail_begin_delete: AtomicBool,
    fail_replace_connection: AtomicBool,
    fail_delete_records: AtomicBool,
    pause: Mutex<Option<PendingPause>>,
}

impl MemoryStore {
    /// Every event recorded with a change so far, in order.
    pub fn recorded_events(&self) -> Vec<Event> {
        lock(&self.state).outbox.clone()
    }

    /// Makes every `insert_connection` fail with a backend error until switched off.
    pub fn fail_insert_connection(&self, fail: bool) {
        self.fail_insert_connection.store(fail, Ordering::SeqCst);
    }

    /// Makes every `begin_delete` fail with a backend error until switched off.
    /// Makes every versioned connection write fail (a timeout) until switched off.
    pub fn fail_replace_connection(&self, fail: bool) {
        self.fail_replace_connection.store(fail, Ordering::SeqCst);
    }

    pub fn fail_begin_delete(&self, fail: bool) {
        self.fail_begin_delete.store(fail, Ordering::SeqCst);
    }

    /// Makes every `delete_connection_records` fail (a crash mid-delete) until switched off.
    pub fn fail_delete_records(&self, fail: bool) {
        self.fail_delete_records.store(fail, Ordering::SeqCst);
    }

    /// The tombstones of deletes that have not finished.
    pub fn tombstones(&self) -> Vec<ConnectionId> {
        lock(&self.state)
            .tombstones
            .keys()
            .map(|(_, id)| *id)
            .collect()
    }

    /// When the sweep next looks at the connection's active slot.
    pub fn slot_check(&self, connection: ConnectionId) -> Option<DateTime<Utc>> {
        lock(&self.state).checks.get(&connection).map(|(_, at)| *at)
    }

    pub fn active_slot(&self, connection: ConnectionId) -> Option<JobId> {
        lock(&self.state).active.get(&connection).copied()
    }

    pub fn pause_next_insert(&self) -> InsertPause {
        let (reached_tx, reached_rx) = oneshot::channel();
        let (resume_tx, resume_rx) = oneshot::channel();
        *lock(&self.pause) = Some(PendingPause {
            reached: reached_tx,
            resume: resume_rx,
        });
        InsertPause {
            reached: reached_rx,
            resume: resume_tx,
        }
    }

    /// Holds a key as a request that reserved it and then crashed (or is still running) would.
    pub fn put_reservation(&self, reservation: Reservation) {
        let key = (reservation.organization_id, reservation.key.clone());
        let expires_at = reservation.expires_at;
        lock(&self.state).keys.insert(
            key,
            KeyRow {
                state: KeyState::InProgress(reservation),
                expires_at,
            },
        );
    }

    pub fn connections(&self) -> Vec<SourceConnection> {
        lock(&self.state).connections.values().cloned().collect()
    }

    pub fn jobs(&self) -> Vec<Job> {
        lock(&self.state).jobs.values().cloned().collect()
    }

    pub fn job(&self, connection: ConnectionId, job: JobId) -> Option<Job> {
        lock(&self.state).jobs.get(&(connection, job)).cloned()
    }

    /// Changes a job behind the use cases' back (a cancel request, a crashed run's state).
    pub fn edit_job(&self, connection: ConnectionId, job: JobId, edit: impl FnOnce(&mut Job)) {
        if let Some(job) = lock(&self.state).jobs.get_mut(&(connection, job)) {
            edit(job);
        }
    }

    /// Forgets a job's checkpoint, as if its run died before writing one.
    pub fn clear_run_state(&self, job: JobId) {
        if let Some(run) = lock(&self.state).runs.get_mut(&job) {
            run.1 = None;
        }
    }

    /// The lease a job's run holds, if any.
    pub fn lease(&self, job: JobId) -> Option<Lease> {
        lock(&self.state)
            .runs
            .get(&job)
            .and_then(|(lease, _)| lease.clone())
    }

    /// Takes a job's lease as a run elsewhere would.
    pub fn set_lease(&self, job: JobId, lease: Option<Lease>) {
        lock(&self.state).runs.entry(job).or_default().0 = lease;
    }

    /// How many seen-keys chunks are stored, over all jobs.
    pub fn seen_chunk_count(&self) -> usize {
        lock(&self.state).seen.len()
    }

    pub fn cursor(&self, connection: ConnectionId) -> Option<Value> {
        lock(&self.state).cursors.get(&connection).cloned()
    }

    pub fn connection(&self, id: ConnectionId) -> Option<SourceConnection> {
        lock(&self.state)
            .connections
            .iter()
            .find(|((_, c), _)| *c == id)
            .map(|(_, c)| c.clone())
    }

    /// Changes a connection behind the use cases' back (a concurrent PATCH); bumps its version.
    pub fn edit_connection(&self, id: ConnectionId, edit: impl FnOnce(&mut SourceConnection)) {
        let mut state = lock(&self.state);
        if let Some((_, c)) = state.connections.iter_mut().find(|((_, c), _)| *c == id) {
            edit(c);
            *state.versions.entry(id).or_default() += 1;
        }
    }

    /// What is held under a key, expired or not.
    pub fn key_state(&self, org: OrganizationId, key: &str) -> Option<KeyState> {
        lock(&self.state)
            .keys
            .get(&(org, key.to_owned()))
            .map(|row| row.state.clone())
    }

    /// The connection count kept on a collection; `None` when there is no such collection.
    pub fn connection_count(&self, org: OrganizationId, readable_id: &str) -> Option<usize> {
        lock(&self.state)
            .collections
            .get(&(org, readable_id.to_owned()))
            .map(|row| row.connections)
    }

    /// Deletes a collection behind the use cases' back (and whatever its count says), as a
    /// concurrent request could between a create's read and its transaction.
    pub fn remove_collection(&self, org: OrganizationId, readable_id: &str) {
        lock(&self.state)
            .collections
            .remove(&(org, readable_id.to_owned()));
    }
}

#[async_trait]
impl TenantStore for MemoryStore {
    async fn organization_for_key(
        &self,
        key: &ApiKeyHash,
    ) -> Result<Option<OrganizationId>, StoreError> {
        Ok(lock(&self.state)
            .api_keys
            .get(key.as_str())
            .filter(|row| !row.revoked)
            .map(|row| row.organization_id))
    }

    async fn insert_organization(&self, org: &Organization) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        if state.organizations.contains_key(&org.id) {
            return Err(StoreError::AlreadyExists);
        }
        state.organizations.insert(org.id, org.clone());
        Ok(())
    }

    async fn get_organization(
        &self,
        org: OrganizationId,
    ) -> Result<Option<Organization>, StoreError> {
        Ok(lock(&self.state).organizations.get(&org).cloned())
    }

    async fn insert_api_key(
        &self,
        key: &ApiKeyHash,
        org: OrganizationId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        if state.api_keys.contains_key(key.as_str()) {
            return Err(StoreError::AlreadyExists);
        }
        state.api_keys.insert(
            key.as_str().to_owned(),
            ApiKeyRow {
                organization_id: org,
                revoked: false,
                created_at: now,
                revoked_at: None,
            },
        );
        Ok(())
    }

    async fn revoke_api_key(&self, key: &ApiKeyHash) -> Result<bool, StoreError> {
        Ok(match lock(&self.state).api_keys.get_mut(key.as_str()) {
            Some(row) => {
                row.revoked = true;
                row.revoked_at.get_or_insert_with(Utc::now);
                true
            }
            None => false,
        })
    }

    async fn api_keys_with_id(
        &self,
        id: &crate::tenancy::ApiKeyId,
    ) -> Result<Vec<crate::tenancy::StoredApiKey>, StoreError> {
        Ok(lock(&self.state)
            .api_keys
            .iter()
            .filter(|(hash, _)| hash.starts_with(id.as_str()))
            .map(|(hash, row)| crate::tenancy::StoredApiKey {
                hash: ApiKeyHash::parse(hash).expect("a stored hash"),
                organization_id: row.organization_id,
            })
            .collect())
    }

    async fn list_api_keys(
        &self,
        org: OrganizationId,
    ) -> Result<Vec<crate::tenancy::ApiKeySummary>, StoreError> {
        let mut keys: Vec<_> = lock(&self.state)
            .api_keys
            .iter()
            .filter(|(_, row)| row.organization_id == org)
            .map(|(hash, row)| crate::tenancy::ApiKeySummary {
                key_id: ApiKeyHash::parse(hash).expect("a stored hash").key_id(),
                created_at: row.created_at,
                revoked_at: row.revoked_at,
            })
            .collect();
        keys.sort_by_key(|k| k.created_at);
        Ok(keys)
    }

    async fn set_redirect_origins(
        &self,
        org: OrganizationId,
        origins: Option<&[crate::tenancy::RedirectOrigin]>,
    ) -> Result<bool, StoreError> {
        Ok(match lock(&self.state).organizations.get_mut(&org) {
            Some(o) => {
                o.redirect_origins = origins.map(<[_]>::to_vec);
                true
            }
            None => false,
        })
    }
}

#[async_trait]
impl CollectionStore for MemoryStore {
    async fn insert_collection(
        &self,
        collection: &Collection,
        events: &[Event],
    ) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        let key = (
            collection.organization_id,
            collection.readable_id.as_str().to_owned(),
        );
        if state.collections.contains_key(&key) {
            return Err(StoreError::AlreadyExists);
        }
        state.collections.insert(
            key,
            CollectionRow {
                collection: collection.clone(),
                connections: 0,
            },
        );
        state.outbox.extend_from_slice(events);
        Ok(())
    }

    async fn get_collection(
        &self,
        org: OrganizationId,
        id: &ReadableId,
    ) -> Result<Option<Collection>, StoreError> {
        Ok(lock(&self.state)
            .collections
            .get(&(org, id.as_str().to_owned()))
            .map(|row| row.collection.clone()))
    }

    async fn list_collections(
        &self,
        org: OrganizationId,
        page: &PageRequest,
    ) -> Result<Page<Collection>, StoreError> {
        let items = lock(&self.state)
            .collections
            .iter()
            .filter(|((o, _), _)| *o == org)
            .map(|((_, id), row)| (id.clone(), row.collection.clone()))
            .collect();
        Ok(page_of(items, page))
    }

    async fn delete_collection(
        &self,
        org: OrganizationId,
        id: &ReadableId,
        events: &[Event],
    ) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        let key = (org, id.as_str().to_owned());
        match state.collections.get(&key) {
            None => Err(StoreError::CollectionNotFound),
            Some(row) if row.connections > 0 => Err(StoreError::CollectionNotEmpty),
            Some(_) => {
                state.collections.remove(&key);
                state.outbox.extend_from_slice(events);
                Ok(())
            }
        }
    }
}

#[async_trait]
impl ConnectionStore for MemoryStore {
    async fn insert_connection(&self, new: NewConnection<'_>) -> Result<(), StoreError> {
        let pause = lock(&self.pause).take();
        if let Some(pause) = pause {
            let _ = pause.reached.send(());
            let _ = pause.resume.await;
        }
        if self.fail_insert_connection.load(Ordering::SeqCst) {
            return Err(StoreError::Backend(injected("insert_connection")));
        }

        let mut state = lock(&self.state);
        let connection = new.connection;
        let org = connection.organization_id;
        // Every condition first, so that a failed one leaves nothing written.
        let collection_key = (org, connection.readable_collection_id.clone());
        if !state.collections.contains_key(&collection_key) {
            return Err(StoreError::CollectionNotFound);
        }
        if state.connections.contains_key(&(org, connection.id)) {
            return Err(StoreError::AlreadyExists);
        }
        if let Some(job) = new.first_job {
            if state.jobs.contains_key(&(job.source_connection_id, job.id)) {
                return Err(StoreError::AlreadyExists);
            }
        }
        if let Some((reservation, _)) = new.idempotency {
            let key = (reservation.organization_id, reservation.key.clone());
            let held = matches!(
                state.keys.get(&key),
                Some(KeyRow { state: KeyState::InProgress(holder), .. })
                    if holder.lease_token == reservation.lease_token
            );
            if !held {
                return Err(StoreError::LeaseLost);
            }
        }

        if let Some(row) = state.collections.get_mut(&collection_key) {
            row.connections += 1;
        }
        state
            .connections
            .insert((org, connection.id), connection.clone());
        state.versions.insert(connection.id, 1);
        if let Some(job) = new.first_job {
            state
                .jobs
                .insert((job.source_connection_id, job.id), job.clone());
            take_slot(&mut state, job);
        }
        if let Some((reservation, response)) = new.idempotency {
            let key = (reservation.organization_id, reservation.key.clone());
            if let Some(row) = state.keys.get_mut(&key) {
                row.state = KeyState::Completed {
                    fingerprint: reservation.fingerprint.clone(),
                    response: response.to_owned(),
                };
            }
        }
        state.outbox.extend_from_slice(new.events);
        Ok(())
    }

    async fn get_connection(
        &self,
        org: OrganizationId,
        id: ConnectionId,
    ) -> Result<Option<SourceConnection>, StoreError> {
        Ok(lock(&self.state).connections.get(&(org, id)).cloned())
    }

    async fn list_connections(
        &self,
        org: OrganizationId,
        collection: Option<&ReadableId>,
        page: &PageRequest,
    ) -> Result<Page<SourceConnection>, StoreError> {
        let items = lock(&self.state)
            .connections
            .iter()
            .filter(|((o, _), c)| {
                *o == org && collection.is_none_or(|id| c.readable_collection_id == id.as_str())
            })
            .map(|((_, id), c)| (id.to_string(), c.clone()))
            .collect();
        Ok(page_of(items, page))
    }

    async fn get_versioned(
        &self,
        org: OrganizationId,
        id: ConnectionId,
    ) -> Result<Option<Versioned<SourceConnection>>, StoreError> {
        let state = lock(&self.state);
        Ok(state.connections.get(&(org, id)).map(|c| Versioned {
            value: c.clone(),
            version: state.versions.get(&id).copied().unwrap_or(1),
        }))
    }

    async fn replace_connection(
        &self,
        connection: &SourceConnection,
        version: u64,
        events: &[Event],
    ) -> Result<(), StoreError> {
        if self.fail_replace_connection.load(Ordering::SeqCst) {
            return Err(StoreError::Backend(injected("replace_connection")));
        }
        let mut state = lock(&self.state);
        replace(&mut state, connection, version)?;
        state.outbox.extend_from_slice(events);
        Ok(())
    }

    async fn replace_connection_with_secret(
        &self,
        connection: &SourceConnection,
        version: u64,
        secret: &SecretVersion,
    ) -> Result<(), StoreError> {
        if self.fail_replace_connection.load(Ordering::SeqCst) {
            return Err(StoreError::Backend(injected(
                "replace_connection_with_secret",
            )));
        }
        let mut state = lock(&self.state);
        replace(&mut state, connection, version)?;
        state.secret_versions.insert(connection.id, secret.clone());
        Ok(())
    }

    async fn begin_delete(
        &self,
        connection: &SourceConnection,
        version: u64,
        now: DateTime<Utc>,
        events: &[Event],
    ) -> Result<(), StoreError> {
        if self.fail_begin_delete.load(Ordering::SeqCst) {
            return Err(StoreError::Backend(injected("begin_delete")));
        }
        let mut state = lock(&self.state);
        let key = (connection.organization_id, connection.id);
        let current = state.versions.get(&connection.id).copied().unwrap_or(1);
        let Some(stored) = state.connections.get(&key).cloned() else {
            return Err(StoreError::VersionConflict);
        };
        if current != version {
            return Err(StoreError::VersionConflict);
        }
        state.connections.remove(&key);
        let collection = (
            connection.organization_id,
            stored.readable_collection_id.clone(),
        );
        if let Some(row) = state.collections.get_mut(&collection) {
            row.connections = row.connections.saturating_sub(1);
        }
        state.tombstones.insert(key, (stored, now));
        state.outbox.extend_from_slice(events);
        Ok(())
    }

    async fn deleting_connection(
        &self,
        org: OrganizationId,
        id: ConnectionId,
    ) -> Result<Option<SourceConnection>, StoreError> {
        Ok(lock(&self.state)
            .tombstones
            .get(&(org, id))
            .map(|(c, _)| c.clone()))
    }

    async fn delete_connection_records(&self, id: ConnectionId) -> Result<bool, StoreError> {
        if self.fail_delete_records.load(Ordering::SeqCst) {
            return Err(StoreError::Backend(injected("delete_connection_records")));
        }
        let mut state = lock(&self.state);
        // A page of jobs at a time, as the adapter deletes them.
        let jobs: Vec<JobId> = state
            .jobs
            .keys()
            .filter(|(c, _)| *c == id)
            .map(|(_, j)| *j)
            .take(RECORDS_PAGE)
            .collect();
        if jobs.len() == RECORDS_PAGE {
            for job in &jobs {
                state.jobs.remove(&(id, *job));
                state.runs.remove(job);
                state.seen.retain(|(j, _), _| j != job);
            }
            return Ok(false);
        }
        for job in &jobs {
            state.jobs.remove(&(id, *job));
            state.runs.remove(job);
            state.seen.retain(|(j, _), _| j != job);
        }
        state.active.remove(&id);
        state.checks.remove(&id);
        state.cursors.remove(&id);
        state.secret_versions.remove(&id);
        state.refresh_leases.remove(&id);
        Ok(true)
    }

    async fn remove_tombstone(
        &self,
        org: OrganizationId,
        id: ConnectionId,
    ) -> Result<(), StoreError> {
        lock(&self.state).tombstones.remove(&(org, id));
        Ok(())
    }

    async fn connection_exists(
        &self,
        org: OrganizationId,
        id: ConnectionId,
    ) -> Result<bool, StoreError> {
        let state = lock(&self.state);
        Ok(state.connections.contains_key(&(org, id)) || state.tombstones.contains_key(&(org, id)))
    }
}

#[async_trait]
impl FlowStore for MemoryStore {
    async fn put_flow(&self, flow: &PendingFlow) -> Result<(), StoreError> {
        let copy = PendingFlow {
            state: flow.state.clone(),
            organization_id: flow.organization_id,
            connection_id: flow.connection_id,
            pkce_verifier: flow
                .pkce_verifier
                .as_ref()
                .map(|v| crate::oauth::PkceVerifier::from_stored(v.expose().to_owned())),
            redirect_url: flow.redirect_url.clone(),
            expires_at: flow.expires_at,
        };
        lock(&self.state)
            .flows
            .insert(flow.state.as_str().to_owned(), copy);
        Ok(())
    }

    async fn take_flow(
        &self,
        state: &StateHash,
        now: DateTime<Utc>,
    ) -> Result<Option<PendingFlow>, StoreError> {
        let mut guard = lock(&self.state);
        match guard.flows.get(state.as_str()) {
            Some(flow) if flow.expires_at > now => Ok(guard.flows.remove(state.as_str())),
            _ => Ok(None),
        }
    }
}

#[async_trait]
impl ScheduleStore for MemoryStore {
    async fn due_schedules(
        &self,
        bucket: u8,
        now: DateTime<Utc>,
        limit: usize,
        position: Option<&str>,
    ) -> Result<DueSchedules, StoreError> {
        let state = lock(&self.state);
        let mut due: Vec<(DateTime<Utc>, Versioned<SourceConnection>)> = state
            .connections
            .values()
            .filter(|c| bucket_of(c.id) == bucket)
            .filter_map(|c| {
                c.scheduled_run().filter(|at| *at <= now).map(|at| {
                    let version = state.versions.get(&c.id).copied().unwrap_or(1);
                    (
                        at,
                        Versioned {
                            value: c.clone(),
                            version,
                        },
                    )
                })
            })
            .collect();
        due.sort_by_key(|(at, c)| (*at, c.value.id));
        // The position is the (time, id) of the last connection handed out.
        let after = position.and_then(|p| {
            let (at, id) = p.split_once('|')?;
            Some((
                at.parse::<DateTime<Utc>>().ok()?,
                id.parse::<ConnectionId>().ok()?,
            ))
        });
        let page: Vec<_> = due
            .into_iter()
            .filter(|(at, c)| after.is_none_or(|a| (*at, c.value.id) > a))
            .take(limit + 1)
            .collect();
        let more = page.len() > limit;
        let connections: Vec<_> = page.into_iter().take(limit).collect();
        let next = more
            .then(|| connections.last())
            .flatten()
            .map(|(at, c)| format!("{}|{}", at.to_rfc3339(), c.value.id));
        Ok(DueSchedules {
            connections: connections.into_iter().map(|(_, c)| c).collect(),
            next,
        })
    }

    async fn due_job_checks(
        &self,
        bucket: u8,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<JobCheck>, StoreError> {
        let state = lock(&self.state);
        let mut due: Vec<JobCheck> = state
            .active
            .iter()
            .filter(|(c, _)| bucket_of(**c) == bucket)
            .filter_map(|(c, job)| {
                let (org, at) = state.checks.get(c)?;
                (*at <= now).then_some(JobCheck {
                    organization_id: *org,
                    connection_id: *c,
                    job_id: *job,
                    check_at: *at,
                })
            })
            .collect();
        due.sort_by_key(|c| c.check_at);
        due.truncate(limit);
        Ok(due)
    }

    async fn postpone_job_check(
        &self,
        check: &JobCheck,
        to: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut state = lock(&self.state);
        let holds = state.active.get(&check.connection_id) == Some(&check.job_id);
        match state.checks.get_mut(&check.connection_id) {
            Some((_, at)) if holds && *at == check.check_at => {
                *at = to;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn free_slot(&self, connection: ConnectionId, job: JobId) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        if state.active.get(&connection) == Some(&job) {
            state.active.remove(&connection);
            state.checks.remove(&connection);
        }
        Ok(())
    }

    async fn due_deletes(
        &self,
        bucket: u8,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ConnectionRef>, StoreError> {
        Ok(lock(&self.state)
            .tombstones
            .iter()
            .filter(|((_, id), (_, at))| bucket_of(*id) == bucket && *at <= before)
            .take(limit)
            .map(|((org, id), _)| ConnectionRef {
                organization_id: *org,
                connection_id: *id,
            })
            .collect())
    }

    async fn sweep_position(&self, sweep: &str) -> Result<Option<String>, StoreError> {
        Ok(lock(&self.state).sweep_positions.get(sweep).cloned())
    }

    async fn save_sweep_position(
        &self,
        sweep: &str,
        position: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        match position {
            Some(p) => state.sweep_positions.insert(sweep.to_owned(), p.to_owned()),
            None => state.sweep_positions.remove(sweep),
        };
        Ok(())
    }
}

fn replace(
    state: &mut State,
    connection: &SourceConnection,
    version: u64,
) -> Result<(), StoreError> {
    let key = (connection.organization_id, connection.id);
    let current = state.versions.get(&connection.id).copied().unwrap_or(1);
    if !state.connections.contains_key(&key) || current != version {
        return Err(StoreError::VersionConflict);
    }
    state.connections.insert(key, connection.clone());
    state.versions.insert(connection.id, version + 1);
    Ok(())
}

/// The job takes its connection's active slot, due for the sweep's first look.
fn take_slot(state: &mut State, job: &Job) {
    state.active.insert(job.source_connection_id, job.id);
    state.checks.insert(
        job.source_connection_id,
        (job.organization_id, job.created_at + LOST_MESSAGE_AFTER),
    );
}

fn holds(state: &State, job: JobId, holder: &str) -> bool {
    matches!(state.runs.get(&job), Some((Some(lease), _)) if lease.holder == holder)
}

#[async_trait]
impl JobStore for MemoryStore {
    async fn get_job(
        &self,
        connection: ConnectionId,
        job: JobId,
    ) -> Result<Option<Job>, StoreError> {
        Ok(lock(&self.state).jobs.get(&(connection, job)).cloned())
    }

    async fn list_jobs(
        &self,
        connection: ConnectionId,
        page: &PageRequest,
    ) -> Result<Page<Job>, StoreError> {
        let items = lock(&self.state)
            .jobs
            .iter()
            .rev()
            .filter(|((c, _), _)| *c == connection)
            // Newest first: a key that sorts descending by id.
            .map(|((_, id), job)| {
                (
                    format!("{:032x}", u128::MAX - id.as_uuid().as_u128()),
                    job.clone(),
                )
            })
            .collect();
        Ok(page_of(items, page))
    }

    async fn start_job(&self, job: &Job, events: &[Event]) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        let connection = state
            .connections
            .get(&(job.organization_id, job.source_connection_id))
            .ok_or(StoreError::NotRunnable)?;
        if matches!(
            connection.status,
            ConnectionStatus::Inactive
                | ConnectionStatus::PendingAuth
                | ConnectionStatus::NeedsReauth
        ) {
            return Err(StoreError::NotRunnable);
        }
        if state.active.contains_key(&job.source_connection_id) {
            return Err(StoreError::JobActive);
        }
        take_slot(&mut state, job);
        state
            .jobs
            .insert((job.source_connection_id, job.id), job.clone());
        state.outbox.extend_from_slice(events);
        Ok(())
    }

    async fn start_scheduled_job(
        &self,
        job: &Job,
        connection: &SourceConnection,
        version: u64,
        events: &[Event],
    ) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        let key = (connection.organization_id, connection.id);
        let current = state.versions.get(&connection.id).copied().unwrap_or(1);
        if !state.connections.contains_key(&key) || current != version {
            return Err(StoreError::VersionConflict);
        }
        if state.active.contains_key(&job.source_connection_id) {
            return Err(StoreError::JobActive);
        }
        replace(&mut state, connection, version)?;
        take_slot(&mut state, job);
        state
            .jobs
            .insert((job.source_connection_id, job.id), job.clone());
        state.outbox.extend_from_slice(events);
        Ok(())
    }

    async fn feed_marks(&self, connection: ConnectionId) -> Result<Vec<JobMarks>, StoreError> {
        let state = lock(&self.state);
        Ok(state
            .jobs
            .range((connection, JobId::from_uuid(uuid::Uuid::nil()))..)
            .take_while(|((c, _), _)| *c == connection)
            .map(|(_, job)| job)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .take(2)
            .map(|job| JobMarks {
                job: job.id,
                created_at: job.created_at,
                ended_at: job
                    .status
                    .is_terminal()
                    .then_some(job.completed_at)
                    .flatten(),
                marks: state.marks.get(&job.id).cloned().unwrap_or_default(),
            })
            .collect())
    }

    async fn active_job(&self, connection: ConnectionId) -> Result<Option<JobId>, StoreError> {
        Ok(lock(&self.state).active.get(&connection).copied())
    }

    async fn job_run(
        &self,
        connection: ConnectionId,
        job: JobId,
    ) -> Result<Option<(Job, Option<Lease>)>, StoreError> {
        let state = lock(&self.state);
        Ok(state.jobs.get(&(connection, job)).map(|j| {
            let lease = state.runs.get(&job).and_then(|(lease, _)| lease.clone());
            (j.clone(), lease)
        }))
    }

    async fn cancel_job(
        &self,
        connection: ConnectionId,
        job: JobId,
        now: DateTime<Utc>,
        events: JobEvents<'_>,
    ) -> Result<Option<Job>, StoreError> {
        let mut state = lock(&self.state);
        let Some(stored) = state.jobs.get_mut(&(connection, job)) else {
            return Ok(None);
        };
        match stored.status {
            JobStatus::Pending => {
                stored.status = JobStatus::Cancelled;
                stored.completed_at = Some(now);
                let cancelled = stored.clone();
                if state.active.get(&connection) == Some(&job) {
                    state.active.remove(&connection);
                }
                state.outbox.extend(events(&cancelled));
                Ok(Some(cancelled))
            }
            JobStatus::Running => {
                stored.status = JobStatus::Cancelling;
                let cancelling = stored.clone();
                state.outbox.extend(events(&cancelling));
                Ok(Some(cancelling))
            }
            _ => Ok(Some(stored.clone())),
        }
    }

    async fn claim_job(
        &self,
        connection: ConnectionId,
        job: JobId,
        lease: &Lease,
        now: DateTime<Utc>,
        events: JobEvents<'_>,
    ) -> Result<JobClaim, StoreError> {
        let mut state = lock(&self.state);
        let Some(stored) = state.jobs.get(&(connection, job)).cloned() else {
            return Ok(JobClaim::Missing);
        };
        if stored.status.is_terminal() {
            return Ok(JobClaim::Finished(stored.status));
        }
        let (held, checkpoint) = state.runs.get(&job).cloned().unwrap_or_default();
        if let Some(held) = held.filter(|l| l.until > now) {
            if stored.status != JobStatus::Pending {
                return Ok(JobClaim::Busy { until: held.until });
            }
        }
        let mut claimed = stored;
        claimed.started_at.get_or_insert(now);
        if claimed.status == JobStatus::Pending {
            claimed.status = JobStatus::Running;
            let recorded = events(&claimed);
            state.outbox.extend(recorded);
        }
        state.jobs.insert((connection, job), claimed.clone());
        state
            .runs
            .insert(job, (Some(lease.clone()), checkpoint.clone()));
        let claims = state.claims.entry(job).or_default();
        *claims += 1;
        Ok(JobClaim::Claimed {
            job: Box::new(claimed),
            state: checkpoint,
            claim: *claims,
        })
    }

    async fn record_progress(
        &self,
        connection: ConnectionId,
        job: JobId,
        lease: &Lease,
        counts: &Counts,
        mark: Option<&FeedMark>,
    ) -> Result<JobStatus, StoreError> {
        let mut state = lock(&self.state);
        if !holds(&state, job, &lease.holder) {
            return Err(StoreError::LeaseLost);
        }
        record_mark(&mut state, job, mark);
        state.runs.entry(job).or_default().0 = Some(lease.clone());
        let stored = state
            .jobs
            .get_mut(&(connection, job))
            .ok_or(StoreError::LeaseLost)?;
        stored.set_counts(counts);
        Ok(stored.status)
    }

    async fn save_run_state(
        &self,
        connection: ConnectionId,
        job: JobId,
        holder: &str,
        checkpoint: &RunState,
        keep_until: Option<DateTime<Utc>>,
        mark: Option<&FeedMark>,
    ) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        if !holds(&state, job, holder) {
            return Err(StoreError::LeaseLost);
        }
        record_mark(&mut state, job, mark);
        let lease = keep_until.map(|until| Lease {
            holder: holder.to_owned(),
            until,
        });
        state.runs.insert(job, (lease, Some(checkpoint.clone())));
        state.failed_attempts.remove(&job);
        if let Some(stored) = state.jobs.get_mut(&(connection, job)) {
            stored.set_counts(&checkpoint.counts);
        }
        Ok(())
    }

    async fn count_failed_attempt(
        &self,
        _connection: ConnectionId,
        job: JobId,
        holder: &str,
    ) -> Result<u32, StoreError> {
        let mut state = lock(&self.state);
        if !holds(&state, job, holder) {
            return Err(StoreError::LeaseLost);
        }
        let count = state.failed_attempts.entry(job).or_default();
        *count += 1;
        Ok(*count)
    }

    async fn release_job(
        &self,
        _connection: ConnectionId,
        job: JobId,
        holder: &str,
    ) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        if holds(&state, job, holder) {
            state.runs.entry(job).or_default().0 = None;
        }
        Ok(())
    }

    async fn finish_job(&self, run: FinishedRun<'_>) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        let job = run.job;
        let key = (job.source_connection_id, job.id);
        let live = state
            .jobs
            .get(&key)
            .is_some_and(|j| !j.status.is_terminal());
        if !live || !holds(&state, job.id, run.holder) {
            return Err(StoreError::LeaseLost);
        }
        if let Some((connection, version)) = run.connection {
            let current = state.versions.get(&connection.id).copied().unwrap_or(1);
            if current != version {
                return Err(StoreError::VersionConflict);
            }
            replace(&mut state, connection, version)?;
        }
        state.jobs.insert(key, job.clone());
        state.runs.insert(job.id, (None, None));
        if state.active.get(&job.source_connection_id) == Some(&job.id) {
            state.active.remove(&job.source_connection_id);
        }
        match run.cursor {
            CursorUpdate::Keep => {}
            CursorUpdate::Save(cursor) => {
                state
                    .cursors
                    .insert(job.source_connection_id, cursor.clone());
            }
            CursorUpdate::Clear => {
                state.cursors.remove(&job.source_connection_id);
            }
        }
        state.outbox.extend_from_slice(run.events);
        Ok(())
    }

    async fn put_seen_chunk(
        &self,
        _connection: ConnectionId,
        job: JobId,
        index: u32,
        keys: &[u8],
    ) -> Result<(), StoreError> {
        lock(&self.state).seen.insert((job, index), keys.to_vec());
        Ok(())
    }

    async fn seen_chunks(
        &self,
        _connection: ConnectionId,
        job: JobId,
        count: u32,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let state = lock(&self.state);
        Ok((0..count)
            .filter_map(|i| state.seen.get(&(job, i)).cloned())
            .collect())
    }

    async fn delete_seen_chunks(
        &self,
        _connection: ConnectionId,
        job: JobId,
    ) -> Result<(), StoreError> {
        lock(&self.state).seen.retain(|(j, _), _| *j != job);
        Ok(())
    }

    async fn sync_cursor(&self, connection: ConnectionId) -> Result<Option<Value>, StoreError> {
        Ok(lock(&self.state).cursors.get(&connection).cloned())
    }
}

#[async_trait]
impl IdempotencyStore for MemoryStore {
    async fn claim_key(
        &self,
        candidate: &Reservation,
        now: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        let mut state = lock(&self.state);
        let key = (candidate.organization_id, candidate.key.clone());
        match state.keys.get_mut(&key) {
            Some(row) if row.expires_at > now => match &row.state {
                // The holder's lease ran out: take over its reservation (ids, so that its secret
                // and this retry converge on one connection) with the candidate's lease. A
                // different body never takes a key over; the caller answers 422 for it.
                KeyState::InProgress(holder)
                    if holder.lease_until <= now && holder.fingerprint == candidate.fingerprint =>
                {
                    let taken = Reservation {
                        lease_token: candidate.lease_token.clone(),
                        lease_until: candidate.lease_until,
                        ..holder.clone()
                    };
                    row.state = KeyState::InProgress(taken.clone());
                    Ok(Claim::Acquired(taken))
                }
                held => Ok(Claim::Held(held.clone())),
            },
            _ => {
                state.keys.insert(
                    key,
                    KeyRow {
                        state: KeyState::InProgress(candidate.clone()),
                        expires_at: candidate.expires_at,
                    },
                );
                Ok(Claim::Acquired(candidate.clone()))
            }
        }
    }

    async fn read_key(
        &self,
        org: OrganizationId,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<KeyState>, StoreError> {
        Ok(lock(&self.state)
            .keys
            .get(&(org, key.to_owned()))
            .filter(|row| row.expires_at > now)
            .map(|row| row.state.clone()))
    }

    async fn release_key(&self, reservation: &Reservation) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        let key = (reservation.organization_id, reservation.key.clone());
        let ours = matches!(
            state.keys.get(&key),
            Some(KeyRow { state: KeyState::InProgress(holder), .. })
                if holder.lease_token == reservation.lease_token
        );
        if ours {
            state.keys.remove(&key);
        }
        Ok(())
    }
}

#[async_trait]
impl RefreshLeaseStore for MemoryStore {
    async fn acquire_refresh_lease(
        &self,
        connection: ConnectionId,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<u64>, StoreError> {
        let mut state = lock(&self.state);
        let (lease, fence) = state.refresh_leases.entry(connection).or_default();
        if lease.as_ref().is_some_and(|(_, until)| *until > now) {
            return Ok(None);
        }
        *fence += 1;
        *lease = Some((holder.to_owned(), until));
        Ok(Some(*fence))
    }

    async fn release_refresh_lease(
        &self,
        connection: ConnectionId,
        holder: &str,
    ) -> Result<(), StoreError> {
        if let Some((lease, _)) = lock(&self.state).refresh_leases.get_mut(&connection) {
            if lease.as_ref().is_some_and(|(h, _)| h == holder) {
                *lease = None;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl ProviderConnectionStore for MemoryStore {
    async fn insert_provider_connection(
        &self,
        connection: &ProviderConnection,
    ) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        let key = (connection.organization_id, connection.readable_id.clone());
        if state.provider_connections.contains_key(&key) {
            return Err(StoreError::AlreadyExists);
        }
        state.provider_connections.insert(key, connection.clone());
        Ok(())
    }

    async fn get_provider_connection(
        &self,
        org: OrganizationId,
        readable_id: &ReadableId,
    ) -> Result<Option<ProviderConnection>, StoreError> {
        Ok(lock(&self.state)
            .provider_connections
            .get(&(org, readable_id.as_str().to_owned()))
            .cloned())
    }

    async fn list_provider_connections(
        &self,
        org: OrganizationId,
        page: &PageRequest,
    ) -> Result<Page<ProviderConnection>, StoreError> {
        let items = lock(&self.state)
            .provider_connections
            .iter()
            .filter(|((o, _), _)| *o == org)
            .map(|((_, id), c)| (id.clone(), c.clone()))
            .collect();
        Ok(page_of(items, page))
    }
}

/// A job's newest mark goes first; the one it replaces is kept as the one before.
fn record_mark(state: &mut State, job: JobId, mark: Option<&FeedMark>) {
    if let Some(mark) = mark {
        let marks = state.marks.entry(job).or_default();
        marks.insert(0, *mark);
        marks.truncate(2);
    }
}

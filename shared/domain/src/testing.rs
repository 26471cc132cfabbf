//! In-memory fakes of the ports, for use-case tests. Each fake keeps its state behind one mutex,
//! so every operation is atomic the way the real adapters' conditional writes and transactions
//! are, and each follows the contract written on its port. Switches inject the failures the
//! use cases must survive.

use crate::auth::AuthenticationRequest;
use crate::catalog::{AuthMethod, FieldSpec, FieldType, SourceSpec};
use crate::clock::{Clock, FixedClock};
use crate::collection::Collection;
use crate::connection::SourceConnection;
use crate::idempotency::{Claim, KeyState, Reservation};
use crate::ids::{ConnectionId, JobId, OrganizationId};
use crate::job::{Job, SyncMessage};
use crate::names::ReadableId;
use crate::page::{Page, PageRequest};
use crate::ports::{
    CheckError, CollectionStore, ConnectionStore, CredentialVault, IdempotencyStore, NewConnection,
    QueueError, SourceDirectory, StoreError, SyncQueue, TenantStore, VaultError,
};
use crate::tenancy::{ApiKeyHash, Organization};
use crate::usecases::Platform;
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// The instant every test runs at: a Wednesday afternoon, with seconds, so that defaults derived
/// from the clock (the daily schedule) show whether they truncate correctly.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 14, 7, 31).unwrap()
}

/// A clock a test moves by hand, for leases that must run out mid-test.
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn at(instant: DateTime<Utc>) -> Self {
        Self(Mutex::new(instant))
    }

    pub fn set(&self, instant: DateTime<Utc>) {
        *lock(&self.0) = instant;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *lock(&self.0)
    }
}

fn injected(what: &str) -> Box<dyn std::error::Error + Send + Sync> {
    format!("injected failure: {what}").into()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock()
        .expect("a test panicked while holding a fake's lock")
}

/// One page of `items` (already in key order): after the cursor, then `skip`, then `limit`.
/// The cursor of the next page is the key of the last item, given only when more follow.
fn page_of<T>(items: Vec<(String, T)>, page: &PageRequest) -> Page<T> {
    let mut rest = items
        .into_iter()
        .filter(|(key, _)| page.cursor.as_ref().is_none_or(|c| key > c))
        .skip(page.skip);
    let taken: Vec<(String, T)> = rest.by_ref().take(page.limit).collect();
    let next_cursor = match rest.next() {
        Some(_) => taken.last().map(|(key, _)| key.clone()),
        None => None,
    };
    Page {
        items: taken.into_iter().map(|(_, item)| item).collect(),
        next_cursor,
    }
}

struct ApiKeyRow {
    organization_id: OrganizationId,
    revoked: bool,
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

#[derive(Default)]
struct State {
    organizations: BTreeMap<OrganizationId, Organization>,
    api_keys: BTreeMap<String, ApiKeyRow>,
    collections: BTreeMap<(OrganizationId, String), CollectionRow>,
    connections: BTreeMap<(OrganizationId, ConnectionId), SourceConnection>,
    jobs: BTreeMap<(ConnectionId, JobId), Job>,
    keys: BTreeMap<(OrganizationId, String), KeyRow>,
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
    pause: Mutex<Option<PendingPause>>,
}

impl MemoryStore {
    /// Makes every `insert_connection` fail with a backend error until switched off.
    pub fn fail_insert_connection(&self, fail: bool) {
        self.fail_insert_connection.store(fail, Ordering::SeqCst);
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
        _now: DateTime<Utc>,
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
            },
        );
        Ok(())
    }

    async fn revoke_api_key(&self, key: &ApiKeyHash) -> Result<bool, StoreError> {
        Ok(match lock(&self.state).api_keys.get_mut(key.as_str()) {
            Some(row) => {
                row.revoked = true;
                true
            }
            None => false,
        })
    }
}

#[async_trait]
impl CollectionStore for MemoryStore {
    async fn insert_collection(&self, collection: &Collection) -> Result<(), StoreError> {
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
    ) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        let key = (org, id.as_str().to_owned());
        match state.collections.get(&key) {
            None => Err(StoreError::CollectionNotFound),
            Some(row) if row.connections > 0 => Err(StoreError::CollectionNotEmpty),
            Some(_) => {
                state.collections.remove(&key);
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
        if let Some(job) = new.first_job {
            state
                .jobs
                .insert((job.source_connection_id, job.id), job.clone());
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

struct StoredSecret {
    value: String,
    request_token: String,
}

#[derive(Default)]
struct VaultState {
    secrets: BTreeMap<(OrganizationId, ConnectionId), StoredSecret>,
    puts: usize,
    deletes: usize,
}

/// The credential vault: one secret per (organization, connection).
#[derive(Default)]
pub struct MemoryVault {
    state: Mutex<VaultState>,
    fail_put: AtomicBool,
}

/// A secret as the vault holds it, exposed for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRecord {
    pub organization_id: OrganizationId,
    pub connection_id: ConnectionId,
    pub value: String,
    pub request_token: String,
}

impl MemoryVault {
    /// Makes every put fail with a backend error until switched off.
    pub fn fail_put(&self, fail: bool) {
        self.fail_put.store(fail, Ordering::SeqCst);
    }

    pub fn secrets(&self) -> Vec<SecretRecord> {
        lock(&self.state)
            .secrets
            .iter()
            .map(|((org, id), s)| SecretRecord {
                organization_id: *org,
                connection_id: *id,
                value: s.value.clone(),
                request_token: s.request_token.clone(),
            })
            .collect()
    }

    /// Successful puts, including idempotent repeats and secrets deleted since.
    pub fn puts(&self) -> usize {
        lock(&self.state).puts
    }

    /// Deletes of a secret that existed.
    pub fn deletes(&self) -> usize {
        lock(&self.state).deletes
    }
}

#[async_trait]
impl CredentialVault for MemoryVault {
    async fn put_connection_secret(
        &self,
        org: OrganizationId,
        id: ConnectionId,
        value: &SecretString,
        request_token: &str,
    ) -> Result<(), VaultError> {
        if self.fail_put.load(Ordering::SeqCst) {
            return Err(VaultError::Backend(injected("put_connection_secret")));
        }
        let mut state = lock(&self.state);
        let value = value.expose_secret();
        if let Some(existing) = state.secrets.get(&(org, id)) {
            if existing.request_token == request_token && existing.value != value {
                return Err(VaultError::TokenReused);
            }
        }
        state.secrets.insert(
            (org, id),
            StoredSecret {
                value: value.to_owned(),
                request_token: request_token.to_owned(),
            },
        );
        state.puts += 1;
        Ok(())
    }

    async fn get_connection_secret(
        &self,
        org: OrganizationId,
        id: ConnectionId,
    ) -> Result<Option<SecretString>, VaultError> {
        Ok(lock(&self.state)
            .secrets
            .get(&(org, id))
            .map(|s| SecretString::from(s.value.clone())))
    }

    async fn delete_connection_secret(
        &self,
        org: OrganizationId,
        id: ConnectionId,
    ) -> Result<(), VaultError> {
        let mut state = lock(&self.state);
        if state.secrets.remove(&(org, id)).is_some() {
            state.deletes += 1;
        }
        Ok(())
    }
}

/// The sync queue: records what was sent.
#[derive(Default)]
pub struct MemoryQueue {
    messages: Mutex<Vec<SyncMessage>>,
    fail: AtomicBool,
}

impl MemoryQueue {
    /// Makes every enqueue fail until switched off.
    pub fn fail_enqueue(&self, fail: bool) {
        self.fail.store(fail, Ordering::SeqCst);
    }

    pub fn messages(&self) -> Vec<SyncMessage> {
        lock(&self.messages).clone()
    }
}

#[async_trait]
impl SyncQueue for MemoryQueue {
    async fn enqueue(&self, message: &SyncMessage) -> Result<(), QueueError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(QueueError(injected("enqueue")));
        }
        lock(&self.messages).push(message.clone());
        Ok(())
    }
}

/// A credential check as the directory received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckCall {
    pub short_name: String,
    pub method: AuthMethod,
}

/// Three sources, each standing for a shape of the real catalog:
/// - `stub` ("Stub"): direct only, a required secret `api_key`, config `entity_count` 1-1000;
/// - `tokens` ("Tokens"): direct (`personal_access_token`) and oauth_token, federated search;
/// - `portal` ("Portal"): OAuth flows only (browser, BYOC, auth provider).
pub struct FakeSources {
    specs: Vec<SourceSpec>,
    answer: Mutex<Result<(), CheckError>>,
    calls: Mutex<Vec<CheckCall>>,
}

impl FakeSources {
    pub fn new() -> Self {
        Self {
            specs: vec![stub_spec(), tokens_spec(), portal_spec()],
            answer: Mutex::new(Ok(())),
            calls: Mutex::new(Vec::new()),
        }
    }

    /// What every later credential check answers.
    pub fn answer_checks_with(&self, answer: Result<(), CheckError>) {
        *lock(&self.answer) = answer;
    }

    pub fn check_calls(&self) -> Vec<CheckCall> {
        lock(&self.calls).clone()
    }
}

fn spec(short_name: &'static str, name: &'static str, auth_methods: Vec<AuthMethod>) -> SourceSpec {
    SourceSpec {
        short_name,
        name,
        class_name: name,
        description: "a fake source for use-case tests",
        auth_methods,
        requires_byoc: false,
        auth_fields: Vec::new(),
        config_fields: Vec::new(),
        supported_auth_providers: Vec::new(),
        entity_types: vec!["item"],
        supports_continuous: false,
        federated_search: false,
        labels: Vec::new(),
    }
}

fn stub_spec() -> SourceSpec {
    SourceSpec {
        auth_fields: vec![FieldSpec::new("api_key", "API key", FieldType::String)
            .required()
            .secret()],
        config_fields: vec![
            FieldSpec::new("entity_count", "Entity count", FieldType::Integer).range(1, 1000),
        ],
        ..spec("stub", "Stub", vec![AuthMethod::Direct])
    }
}

fn tokens_spec() -> SourceSpec {
    SourceSpec {
        auth_fields: vec![FieldSpec::new(
            "personal_access_token",
            "Personal access token",
            FieldType::String,
        )
        .required()
        .secret()],
        federated_search: true,
        ..spec(
            "tokens",
            "Tokens",
            vec![AuthMethod::Direct, AuthMethod::OauthToken],
        )
    }
}

fn portal_spec() -> SourceSpec {
    SourceSpec {
        supported_auth_providers: vec!["composio", "pipedream"],
        ..spec(
            "portal",
            "Portal",
            vec![
                AuthMethod::OauthBrowser,
                AuthMethod::OauthByoc,
                AuthMethod::AuthProvider,
            ],
        )
    }
}

#[async_trait]
impl SourceDirectory for FakeSources {
    fn spec(&self, short_name: &str) -> Option<&SourceSpec> {
        self.specs.iter().find(|s| s.short_name == short_name)
    }

    fn specs(&self) -> Vec<&SourceSpec> {
        self.specs.iter().collect()
    }

    async fn check_credentials(
        &self,
        short_name: &str,
        auth: &AuthenticationRequest,
        _config: &Map<String, Value>,
    ) -> Result<(), CheckError> {
        lock(&self.calls).push(CheckCall {
            short_name: short_name.to_owned(),
            method: auth.method(),
        });
        lock(&self.answer).clone()
    }
}

/// A platform wired to fresh fakes, and the fakes themselves for arranging and asserting.
pub struct Fakes {
    pub platform: Platform,
    pub store: Arc<MemoryStore>,
    pub vault: Arc<MemoryVault>,
    pub queue: Arc<MemoryQueue>,
    pub sources: Arc<FakeSources>,
}

pub fn platform() -> Fakes {
    let store = Arc::new(MemoryStore::default());
    let vault = Arc::new(MemoryVault::default());
    let queue = Arc::new(MemoryQueue::default());
    let sources = Arc::new(FakeSources::new());
    let platform = Platform {
        store: store.clone(),
        vault: vault.clone(),
        queue: queue.clone(),
        sources: sources.clone(),
        clock: Arc::new(FixedClock(now())),
    };
    Fakes {
        platform,
        store,
        vault,
        queue,
        sources,
    }
}

//! Ports: what the use cases need from the outside world. Adapters in `shared/aws` implement the
//! stores, the vault and the queue; `shared/sources` implements the source directory.

use crate::auth::AuthenticationRequest;
use crate::catalog::SourceSpec;
use crate::collection::Collection;
use crate::connection::SourceConnection;
use crate::idempotency::{Claim, KeyState, Reservation};
use crate::ids::{ConnectionId, OrganizationId};
use crate::job::{Job, SyncMessage};
use crate::names::ReadableId;
use crate::page::{Page, PageRequest};
use crate::tenancy::{ApiKeyHash, Organization};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde_json::{Map, Value};
use std::time::Duration;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the item already exists")]
    AlreadyExists,
    #[error("the collection does not exist")]
    CollectionNotFound,
    #[error("the collection still has source connections")]
    CollectionNotEmpty,
    #[error("the idempotency key was taken over by another request")]
    LeaseLost,
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
}

#[async_trait]
pub trait CollectionStore: Send + Sync {
    /// `AlreadyExists` when the organization already has this readable id.
    async fn insert_collection(&self, collection: &Collection) -> Result<(), StoreError>;
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
    ) -> Result<(), StoreError>;
}

/// Everything a create writes to the state store, in one transaction.
#[derive(Debug, Clone, Copy)]
pub struct NewConnection<'a> {
    pub connection: &'a SourceConnection,
    pub first_job: Option<&'a Job>,
    /// For a keyed create: the reservation it holds and the response to remember.
    pub idempotency: Option<(&'a Reservation, &'a str)>,
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

/// The whole state store, as the handlers hold it.
pub trait Store: TenantStore + CollectionStore + ConnectionStore + IdempotencyStore {}
impl<T: TenantStore + CollectionStore + ConnectionStore + IdempotencyStore> Store for T {}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("a different secret was already written with this request token")]
    TokenReused,
    #[error("secret store failed")]
    Backend(#[source] BoxError),
}

/// One secret per connection, named from the organization and connection ids.
#[async_trait]
pub trait CredentialVault: Send + Sync {
    /// Idempotent for the same `request_token` and value.
    async fn put_connection_secret(
        &self,
        org: OrganizationId,
        id: ConnectionId,
        value: &SecretString,
        request_token: &str,
    ) -> Result<(), VaultError>;
    async fn get_connection_secret(
        &self,
        org: OrganizationId,
        id: ConnectionId,
    ) -> Result<Option<SecretString>, VaultError>;
    /// Deletes at once, without a recovery window; deleting a missing secret succeeds.
    async fn delete_connection_secret(
        &self,
        org: OrganizationId,
        id: ConnectionId,
    ) -> Result<(), VaultError>;
}

#[derive(Debug, thiserror::Error)]
#[error("sync queue failed")]
pub struct QueueError(#[source] pub BoxError);

#[async_trait]
pub trait SyncQueue: Send + Sync {
    async fn enqueue(&self, message: &SyncMessage) -> Result<(), QueueError>;
}

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
}

//! The entities table: what the sync worker compares, writes and deletes, what the entities
//! listing reads, and the change feed's read of a connection's changes in commit order.

use super::StoreError;
use crate::entity::{EntityKey, EntityRecord, EntityWrite, StoredEntity};
use crate::feed::{FeedPosition, Removal};
use crate::ids::ConnectionId;
use crate::page::{Page, PageRequest};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// One page of stored entity keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeysPage {
    pub keys: Vec<EntityKey>,
    /// Where the next page starts; `None` after the last.
    pub next: Option<String>,
}

/// Which changes a feed read wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedSide {
    /// Live entities and deletion records.
    All,
    /// Live entities only.
    Live,
    /// Deletion records only.
    Gone,
}

/// One read of the change feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedQuery {
    /// Changes after this position (`None`: from the first).
    pub after: Option<FeedPosition>,
    /// Changes at or before this position (`None`: to the last).
    pub through: Option<FeedPosition>,
    /// Only changes written after this time (`modified_after`).
    pub written_after: Option<DateTime<Utc>>,
    pub entity_type: Option<String>,
    pub side: FeedSide,
    /// Most changes answered.
    pub limit: usize,
    /// Most bytes of stored items answered (one change at least).
    pub budget: usize,
    /// Deletion records that expired by then are left out.
    pub now: DateTime<Utc>,
}

/// What changed about one entity, as it stands now.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedChange {
    /// It exists; added at `added`.
    Live {
        record: EntityRecord,
        added: FeedPosition,
    },
    /// It was deleted (its deletion record).
    Gone,
}

/// One entity's latest change.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedEntry {
    pub position: FeedPosition,
    pub key: EntityKey,
    pub change: FeedChange,
}

/// A page of the feed, in commit order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FeedPage {
    pub entries: Vec<FeedEntry>,
    /// The last position examined (a change left out counts): the next read goes on after it.
    pub last: Option<FeedPosition>,
    /// Whether changes may follow `last` (within `through`).
    pub more: bool,
}

/// The entities table: one partition per connection, one item per entity, and a partition of
/// its deletion records apart, both ordered by feed position in an index.
#[async_trait]
pub trait EntityStore: Send + Sync {
    /// Whether the connection has any stored (live) entity.
    async fn has_entities(&self, connection: ConnectionId) -> Result<bool, StoreError>;
    /// What is stored of these keys; absent keys are left out.
    async fn stored(
        &self,
        connection: ConnectionId,
        keys: &[EntityKey],
    ) -> Result<HashMap<EntityKey, StoredEntity>, StoreError>;
    /// Writes (puts) the entities, 25 to a request.
    async fn write(
        &self,
        connection: ConnectionId,
        entities: &[EntityWrite],
    ) -> Result<(), StoreError>;
    /// Deletes the entities a sync found gone, leaving a deletion record of each that expires at
    /// `expires_at`: the deletion records are written before the entities are deleted, so a failure
    /// in between loses no deletion.
    async fn remove(
        &self,
        connection: ConnectionId,
        removals: &[Removal],
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Deletes the entities for good, no deletion record (the connection is being deleted), 25 to a
    /// request; a missing one is no error.
    async fn delete(&self, connection: ConnectionId, keys: &[EntityKey]) -> Result<(), StoreError>;
    /// Deletes one page of the connection's deletion records; how many there were (0: none left).
    async fn purge_deletions(&self, connection: ConnectionId) -> Result<usize, StoreError>;
    /// One page of the stored keys (keys only); `after` is the previous page's `next`.
    async fn keys(
        &self,
        connection: ConnectionId,
        after: Option<&str>,
    ) -> Result<KeysPage, StoreError>;
    /// Stored entities in key order, optionally of one type.
    async fn list(
        &self,
        connection: ConnectionId,
        entity_type: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<EntityRecord>, StoreError>;
    /// The connection's latest change of each entity, in commit order.
    async fn changes(
        &self,
        connection: ConnectionId,
        query: &FeedQuery,
    ) -> Result<FeedPage, StoreError>;
}

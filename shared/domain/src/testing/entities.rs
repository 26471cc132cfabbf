//! The entities table: one map per connection, with the requests a test wants to count.

use super::{injected, lock, page_of};
use crate::entity::{EntityKey, EntityRecord, EntityWrite, StoredEntity};
use crate::feed::{FeedPosition, Removal};
use crate::ids::ConnectionId;
use crate::page::{Page, PageRequest};
use crate::ports::{
    EntityStore, FeedChange, FeedEntry, FeedPage, FeedQuery, FeedSide, KeysPage, StoreError,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Keys per page of [`EntityStore::keys`]: small, so that tests cross pages.
const KEYS_PAGE: usize = 7;

/// What a test can count: items written, write and read requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EntityTraffic {
    pub items_written: usize,
    pub write_requests: usize,
    pub read_requests: usize,
    pub items_deleted: usize,
    /// Pages of stored keys read.
    pub key_pages: usize,
}

/// What a deletion leaves for the change feed.
#[derive(Debug, Clone)]
struct DeletionRecord {
    position: FeedPosition,
    expires_at: DateTime<Utc>,
}

#[derive(Default)]
pub struct MemoryEntities {
    rows: Mutex<BTreeMap<(ConnectionId, EntityKey), EntityWrite>>,
    deletions: Mutex<BTreeMap<(ConnectionId, EntityKey), DeletionRecord>>,
    traffic: Mutex<EntityTraffic>,
    fail_writes: AtomicBool,
}

impl MemoryEntities {
    pub fn traffic(&self) -> EntityTraffic {
        *lock(&self.traffic)
    }

    /// Makes every write fail until switched off.
    pub fn fail_writes(&self, fail: bool) {
        self.fail_writes.store(fail, Ordering::SeqCst);
    }

    /// The stored entities of a connection, in key order.
    pub fn stored_of(&self, connection: ConnectionId) -> Vec<EntityWrite> {
        lock(&self.rows)
            .iter()
            .filter(|((c, _), _)| *c == connection)
            .map(|(_, row)| row.clone())
            .collect()
    }
}

#[async_trait]
impl EntityStore for MemoryEntities {
    async fn has_entities(&self, connection: ConnectionId) -> Result<bool, StoreError> {
        Ok(lock(&self.rows).keys().any(|(c, _)| *c == connection))
    }

    async fn stored(
        &self,
        connection: ConnectionId,
        keys: &[EntityKey],
    ) -> Result<HashMap<EntityKey, StoredEntity>, StoreError> {
        lock(&self.traffic).read_requests += keys.len().div_ceil(100);
        let rows = lock(&self.rows);
        Ok(keys
            .iter()
            .filter_map(|key| {
                rows.get(&(connection, key.clone())).map(|row| {
                    let stored = StoredEntity {
                        hash: row.hash,
                        written_by: Some(row.job),
                        change: Some(row.change),
                        added: Some(row.added),
                    };
                    (key.clone(), stored)
                })
            })
            .collect())
    }

    async fn write(
        &self,
        connection: ConnectionId,
        entities: &[EntityWrite],
    ) -> Result<(), StoreError> {
        if self.fail_writes.load(Ordering::SeqCst) {
            return Err(StoreError::Backend(injected("write entities")));
        }
        {
            let mut traffic = lock(&self.traffic);
            traffic.items_written += entities.len();
            traffic.write_requests += entities.len().div_ceil(25);
        }
        let mut rows = lock(&self.rows);
        for e in entities {
            rows.insert((connection, e.key.clone()), e.clone());
        }
        Ok(())
    }

    async fn delete(&self, connection: ConnectionId, keys: &[EntityKey]) -> Result<(), StoreError> {
        {
            let mut traffic = lock(&self.traffic);
            traffic.items_deleted += keys.len();
            traffic.write_requests += keys.len().div_ceil(25);
        }
        let mut rows = lock(&self.rows);
        for key in keys {
            rows.remove(&(connection, key.clone()));
        }
        Ok(())
    }

    async fn remove(
        &self,
        connection: ConnectionId,
        removals: &[Removal],
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if self.fail_writes.load(Ordering::SeqCst) {
            return Err(StoreError::Backend(injected("remove entities")));
        }
        {
            let mut traffic = lock(&self.traffic);
            traffic.items_deleted += removals.len();
            traffic.write_requests += 2 * removals.len().div_ceil(25);
        }
        let mut deletions = lock(&self.deletions);
        let mut rows = lock(&self.rows);
        for removal in removals {
            let record = DeletionRecord {
                position: removal.position,
                expires_at,
            };
            deletions.insert((connection, removal.key.clone()), record);
            rows.remove(&(connection, removal.key.clone()));
        }
        Ok(())
    }

    async fn purge_deletions(&self, connection: ConnectionId) -> Result<usize, StoreError> {
        let mut deletions = lock(&self.deletions);
        let page: Vec<_> = deletions
            .keys()
            .filter(|(c, _)| *c == connection)
            .take(KEYS_PAGE)
            .cloned()
            .collect();
        for key in &page {
            deletions.remove(key);
        }
        Ok(page.len())
    }

    async fn keys(
        &self,
        connection: ConnectionId,
        after: Option<&str>,
    ) -> Result<KeysPage, StoreError> {
        lock(&self.traffic).key_pages += 1;
        let rows = lock(&self.rows);
        let mut keys = rows
            .keys()
            .filter(|(c, key)| *c == connection && after.is_none_or(|a| key.as_str() > a))
            .map(|(_, key)| key.clone());
        let page: Vec<EntityKey> = keys.by_ref().take(KEYS_PAGE).collect();
        let next = match keys.next() {
            Some(_) => page.last().map(|k| k.as_str().to_owned()),
            None => None,
        };
        Ok(KeysPage { keys: page, next })
    }

    async fn list(
        &self,
        connection: ConnectionId,
        entity_type: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<EntityRecord>, StoreError> {
        let items = lock(&self.rows)
            .iter()
            .filter(|((c, key), _)| {
                *c == connection && entity_type.is_none_or(|t| key.entity_type() == t)
            })
            .map(|((_, key), row)| (key.as_str().to_owned(), record_of(row)))
            .collect();
        Ok(page_of(items, page))
    }

    async fn changes(
        &self,
        connection: ConnectionId,
        query: &FeedQuery,
    ) -> Result<FeedPage, StoreError> {
        let mut all: Vec<FeedEntry> = Vec::new();
        if query.side != FeedSide::Gone {
            for ((c, key), row) in lock(&self.rows).iter() {
                if *c == connection {
                    all.push(FeedEntry {
                        position: row.position,
                        key: key.clone(),
                        change: FeedChange::Live {
                            record: record_of(row),
                            added: row.added,
                        },
                    });
                }
            }
        }
        if query.side != FeedSide::Live {
            let rows = lock(&self.rows);
            for ((c, key), record) in lock(&self.deletions).iter() {
                let revived = rows
                    .get(&(*c, key.clone()))
                    .is_some_and(|row| row.position > record.position);
                if *c == connection && record.expires_at > query.now && !revived {
                    all.push(FeedEntry {
                        position: record.position,
                        key: key.clone(),
                        change: FeedChange::Gone,
                    });
                }
            }
        }
        all.sort_by_key(|entry| entry.position);
        let mut in_range = all.into_iter().filter(|entry| {
            query.after.is_none_or(|after| entry.position > after)
                && query
                    .through
                    .is_none_or(|through| entry.position <= through)
        });
        let mut page = FeedPage::default();
        for entry in in_range.by_ref() {
            page.last = Some(entry.position);
            let wanted = query
                .entity_type
                .as_deref()
                .is_none_or(|t| entry.key.entity_type() == t)
                && query
                    .written_after
                    .is_none_or(|at| entry.position.written_at() > at);
            if wanted {
                page.entries.push(entry);
            }
            if page.entries.len() == query.limit {
                break;
            }
        }
        page.more = in_range.next().is_some();
        Ok(page)
    }
}

fn record_of(row: &EntityWrite) -> EntityRecord {
    EntityRecord {
        entity_type: row.entity.entity_type.clone(),
        entity_id: row.entity.entity_id.clone(),
        title: row.entity.title.clone(),
        updated_at: row.entity.updated_at,
        payload: row.entity.payload.clone(),
        payload_truncated: false,
    }
}

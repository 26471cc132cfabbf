//! The entities table: one map per connection, with the requests a test wants to count.

use super::{injected, lock, page_of};
use crate::entity::{EntityKey, EntityRecord, EntityWrite, StoredEntity};
use crate::ids::ConnectionId;
use crate::page::{Page, PageRequest};
use crate::ports::{EntityStore, KeysPage, StoreError};
use async_trait::async_trait;
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

#[derive(Default)]
pub struct MemoryEntities {
    rows: Mutex<BTreeMap<(ConnectionId, EntityKey), EntityWrite>>,
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
            .map(|((_, key), row)| {
                let record = EntityRecord {
                    entity_type: row.entity.entity_type.clone(),
                    entity_id: row.entity.entity_id.clone(),
                    title: row.entity.title.clone(),
                    updated_at: row.entity.updated_at,
                    payload: row.entity.payload.clone(),
                    payload_truncated: false,
                };
                (key.as_str().to_owned(), record)
            })
            .collect();
        Ok(page_of(items, page))
    }
}

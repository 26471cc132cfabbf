//! The entities table: `pk = CONN#id`, `sk = <type>#<entity_id>`, with the content hash, the
//! title, `updated_at`, the payload as JSON text (cut to fit an item, `payload_truncated` then
//! set), and the job that last wrote it with what it did (`job_id`, `change`), so that a run
//! replaying pages after a crash counts what it had already written.
//!
//! The change feed: each item also carries its feed position (`pos`), where the entity was added
//! (`added`), the connection (`feed`) and an estimate of its answer's size (`bytes`); a deletion
//! leaves a deletion record (`pk = GONE#id`, same `sk`, `pos`, `feed`, `expires_at` for TTL) in a
//! partition of its own, so listings and delete-by-absence never read one. The `by_position`
//! index (`feed`, `pos`; keys, `bytes` and `expires_at` projected) holds both in commit order.

mod feed;

use crate::batch::{delete_all, read_all, write_all, Read, MAX_READ_BATCH, MAX_WRITE_BATCH};
use crate::error::{adapter, boxed};
use crate::store::paging::{list_items_within, Order};
use crate::store::{backend, build_error, key, s, Item};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use domain::entity::{Change, ContentHash, EntityKey, EntityRecord, EntityWrite, StoredEntity};
use domain::feed::{FeedPosition, Removal};
use domain::ids::{ConnectionId, JobId};
use domain::page::{Page, PageRequest};
use domain::ports::{EntityStore, FeedPage, FeedQuery, KeysPage, StoreError};
use serde_json::Value;
use std::collections::HashMap;

/// The payload's JSON text is cut to this many bytes: an item holds 400 KB in all.
pub const MAX_PAYLOAD_BYTES: usize = 350_000;
/// Titles are cut to this many bytes.
const MAX_TITLE_BYTES: usize = 2_000;

const HASH: &str = "content_hash";
const JOB: &str = "job_id";
const CHANGE: &str = "change";
const PAYLOAD: &str = "payload";
const TRUNCATED: &str = "payload_truncated";
const FEED: &str = "feed";
const POSITION: &str = "pos";
const ADDED: &str = "added";
const BYTES: &str = "bytes";
const EXPIRES_AT: &str = "expires_at";
/// The index of a connection's changes in commit order.
pub const FEED_INDEX: &str = "by_position";
/// What a change's answer adds to its stored text (names, quoting, the op and times).
const CHANGE_OVERHEAD: usize = 300;
/// Most deletion record keys one purge reads.
const PURGE_PAGE: i32 = 1000;

/// Implements the domain's `EntityStore` on its own table.
#[derive(Debug, Clone)]
pub struct DynamoEntities {
    client: Client,
    table: String,
    /// Tests: the feed's index shows half the writes (by key) only this long after them (the
    /// emulator's indexes have no lag; DynamoDB's may, unevenly across partitions).
    index_lag: Option<chrono::Duration>,
}

/// What the partition key of a connection's live entities starts with.
const LIVE_PREFIX: &str = "CONN#";
/// What the partition key of a connection's deletion records starts with.
const GONE_PREFIX: &str = "GONE#";

fn partition(connection: ConnectionId) -> String {
    format!("{LIVE_PREFIX}{connection}")
}

/// The partition of the connection's deletion records.
fn gone_partition(connection: ConnectionId) -> String {
    format!("{GONE_PREFIX}{connection}")
}

/// Whether an item (or index entry) is a deletion record.
fn is_deletion_record(item: &Item) -> bool {
    text(item, "pk").is_some_and(|pk| pk.starts_with(GONE_PREFIX))
}

/// `s` cut to at most `max` bytes, on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn change_str(change: Change) -> &'static str {
    match change {
        Change::Inserted => "inserted",
        Change::Updated => "updated",
    }
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)?.as_s().ok().map(String::as_str)
}

impl DynamoEntities {
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        Self {
            client,
            table: table_name.into(),
            index_lag: None,
        }
    }

    /// Fault injection: the feed's index leaves out the writes of half the keys while they are
    /// younger than `lag`, as an unevenly lagging global secondary index would.
    pub fn with_index_lag(mut self, lag: std::time::Duration) -> Self {
        self.index_lag = chrono::Duration::from_std(lag).ok();
        self
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }

    fn item(connection: ConnectionId, write: &EntityWrite) -> Item {
        let entity = &write.entity;
        let mut item = key(partition(connection), write.key.as_str());
        let payload = entity.payload.to_string();
        let stored = cut(&payload, MAX_PAYLOAD_BYTES);
        let truncated = stored.len() < payload.len();
        if truncated {
            item.insert(TRUNCATED.to_owned(), AttributeValue::Bool(true));
        }
        item.insert(PAYLOAD.to_owned(), s(stored));
        item.insert("title".to_owned(), s(cut(&entity.title, MAX_TITLE_BYTES)));
        if let Some(at) = entity.updated_at {
            item.insert("updated_at".to_owned(), s(at.to_rfc3339()));
        }
        item.insert(HASH.to_owned(), s(write.hash.to_hex()));
        item.insert(JOB.to_owned(), s(write.job.to_string()));
        item.insert(CHANGE.to_owned(), s(change_str(write.change)));
        item.insert(FEED.to_owned(), s(connection.to_string()));
        item.insert(POSITION.to_owned(), s(write.position.to_string()));
        item.insert(ADDED.to_owned(), s(write.added.to_string()));
        // A truncated payload is answered as a JSON string: its quotes are escaped.
        let payload_bytes = stored.len() * if truncated { 2 } else { 1 };
        let bytes = payload_bytes + entity.title.len() + write.key.as_str().len() + CHANGE_OVERHEAD;
        item.insert(BYTES.to_owned(), AttributeValue::N(bytes.to_string()));
        item
    }

    fn deletion_record(
        connection: ConnectionId,
        removal: &Removal,
        expires_at: DateTime<Utc>,
    ) -> Item {
        let mut item = key(gone_partition(connection), removal.key.as_str());
        item.insert(FEED.to_owned(), s(connection.to_string()));
        item.insert(POSITION.to_owned(), s(removal.position.to_string()));
        let expires = expires_at.timestamp().to_string();
        item.insert(EXPIRES_AT.to_owned(), AttributeValue::N(expires));
        item
    }

    fn record(item: &Item) -> Result<EntityRecord, StoreError> {
        let sk = text(item, "sk").unwrap_or_default();
        let key = EntityKey::parse(sk)
            .ok_or_else(|| StoreError::Backend(adapter("an entity item with a malformed key")))?;
        let truncated = matches!(item.get(TRUNCATED), Some(AttributeValue::Bool(true)));
        let raw = text(item, PAYLOAD).unwrap_or("null");
        let payload = if truncated {
            Value::String(raw.to_owned())
        } else {
            serde_json::from_str(raw).map_err(|e| StoreError::Backend(boxed(e)))?
        };
        Ok(EntityRecord {
            entity_type: key.entity_type().to_owned(),
            entity_id: key.entity_id().to_owned(),
            title: text(item, "title").unwrap_or_default().to_owned(),
            updated_at: text(item, "updated_at")
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc)),
            payload,
            payload_truncated: truncated,
        })
    }

    /// Sends `requests` in batches of 25.
    async fn write_requests(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        let mut requests = requests.into_iter().peekable();
        while requests.peek().is_some() {
            let batch: Vec<WriteRequest> = requests.by_ref().take(MAX_WRITE_BATCH).collect();
            write_all(&self.client, &self.table, batch).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl EntityStore for DynamoEntities {
    async fn has_entities(&self, connection: ConnectionId) -> Result<bool, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(partition(connection)))
            .projection_expression("pk")
            .limit(1)
            .send()
            .await
            .map_err(backend)?;
        Ok(out.count > 0)
    }

    async fn stored(
        &self,
        connection: ConnectionId,
        keys: &[EntityKey],
    ) -> Result<HashMap<EntityKey, StoredEntity>, StoreError> {
        let names = HashMap::from([
            ("#sk".to_owned(), "sk".to_owned()),
            ("#hash".to_owned(), HASH.to_owned()),
            ("#job".to_owned(), JOB.to_owned()),
            ("#change".to_owned(), CHANGE.to_owned()),
            ("#added".to_owned(), ADDED.to_owned()),
        ]);
        let mut found = HashMap::with_capacity(keys.len());
        for batch in keys.chunks(MAX_READ_BATCH) {
            let request: Vec<Item> = batch
                .iter()
                .map(|k| key(partition(connection), k.as_str()))
                .collect();
            let read = Read::Attributes {
                projection: "#sk, #hash, #job, #change, #added",
                names: &names,
            };
            let items = read_all(&self.client, &self.table, request, read).await?;
            for item in items {
                let (Some(key), Some(hash)) = (
                    text(&item, "sk").and_then(EntityKey::parse),
                    text(&item, HASH).and_then(ContentHash::from_hex),
                ) else {
                    continue;
                };
                let stored = StoredEntity {
                    hash,
                    written_by: text(&item, JOB).and_then(|j| j.parse::<JobId>().ok()),
                    change: match text(&item, CHANGE) {
                        Some("inserted") => Some(Change::Inserted),
                        Some("updated") => Some(Change::Updated),
                        _ => None,
                    },
                    added: text(&item, ADDED).and_then(|p| p.parse::<FeedPosition>().ok()),
                };
                found.insert(key, stored);
            }
        }
        Ok(found)
    }

    async fn write(
        &self,
        connection: ConnectionId,
        entities: &[EntityWrite],
    ) -> Result<(), StoreError> {
        let requests = entities
            .iter()
            .map(|e| {
                let put = PutRequest::builder()
                    .set_item(Some(Self::item(connection, e)))
                    .build()
                    .map_err(build_error)?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.write_requests(requests).await?;
        crate::metering::add(crate::metering::ENTITY_ITEMS_WRITTEN, entities.len() as u64);
        Ok(())
    }

    async fn delete(&self, connection: ConnectionId, keys: &[EntityKey]) -> Result<(), StoreError> {
        let keys: Vec<Item> = keys
            .iter()
            .map(|k| key(partition(connection), k.as_str()))
            .collect();
        delete_all(&self.client, &self.table, &keys).await
    }

    async fn remove(
        &self,
        connection: ConnectionId,
        removals: &[Removal],
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        for batch in removals.chunks(MAX_WRITE_BATCH) {
            let deletions = batch
                .iter()
                .map(|removal| {
                    let put = PutRequest::builder()
                        .set_item(Some(Self::deletion_record(connection, removal, expires_at)))
                        .build()
                        .map_err(build_error)?;
                    Ok(WriteRequest::builder().put_request(put).build())
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            // The deletion records first: a failure before the deletes leaves the entities and
            // their deletions both recorded, and the run that resumes deletes them again.
            write_all(&self.client, &self.table, deletions).await?;
            let keys: Vec<Item> = batch
                .iter()
                .map(|removal| key(partition(connection), removal.key.as_str()))
                .collect();
            delete_all(&self.client, &self.table, &keys).await?;
        }
        Ok(())
    }

    async fn purge_deletions(&self, connection: ConnectionId) -> Result<usize, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(gone_partition(connection)))
            .projection_expression("pk, sk")
            .limit(PURGE_PAGE)
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        let keys = out.items.unwrap_or_default();
        delete_all(&self.client, &self.table, &keys).await?;
        Ok(keys.len())
    }

    async fn changes(
        &self,
        connection: ConnectionId,
        query: &FeedQuery,
    ) -> Result<FeedPage, StoreError> {
        self.read_changes(connection, query).await
    }

    async fn keys(
        &self,
        connection: ConnectionId,
        after: Option<&str>,
    ) -> Result<KeysPage, StoreError> {
        let pk = partition(connection);
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk.clone()))
            .projection_expression("sk")
            .consistent_read(true)
            .set_exclusive_start_key(after.map(|sk| key(pk.clone(), sk)))
            .send()
            .await
            .map_err(backend)?;
        let keys = out
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(|item| text(item, "sk").and_then(EntityKey::parse))
            .collect();
        let next = out
            .last_evaluated_key
            .as_ref()
            .and_then(|last| text(last, "sk"))
            .map(str::to_owned);
        Ok(KeysPage { keys, next })
    }

    async fn list(
        &self,
        connection: ConnectionId,
        entity_type: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<EntityRecord>, StoreError> {
        let prefix = entity_type.map(|t| format!("{t}#")).unwrap_or_default();
        // Payloads reach 350 KB: a page ends by size too, so its answer stays under Lambda's
        // 6 MB and the function's 128 MB.
        let items = list_items_within(
            &self.client,
            &self.table,
            partition(connection),
            &prefix,
            None,
            page,
            Order::Ascending,
            PageRequest::MAX_BYTES,
        )
        .await?;
        items.try_map(|item| Self::record(&item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutting_keeps_whole_characters() {
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("héllo", 3), "hé");
        assert_eq!(cut("abc", 10), "abc");
    }
}

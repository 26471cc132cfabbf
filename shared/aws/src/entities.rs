//! The entities table: `pk = CONN#id`, `sk = <type>#<entity_id>`, with the content hash, the
//! title, `updated_at`, the payload as JSON text (cut to fit an item, `payload_truncated` then
//! set), and the job that last wrote it with what it did (`job_id`, `change`), so that a run
//! replaying pages after a crash counts what it had already written.

use crate::batch::{read_all, write_all, MAX_READ_BATCH, MAX_WRITE_BATCH};
use crate::error::{adapter, boxed};
use crate::store::paging::{list_items_within, Order};
use crate::store::{backend, build_error, key, s, Item};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use domain::entity::{Change, ContentHash, EntityKey, EntityRecord, EntityWrite, StoredEntity};
use domain::ids::{ConnectionId, JobId};
use domain::page::{Page, PageRequest};
use domain::ports::{EntityStore, KeysPage, StoreError};
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

/// Implements the domain's `EntityStore` on its own table.
#[derive(Debug, Clone)]
pub struct DynamoEntities {
    client: Client,
    table: String,
}

fn partition(connection: ConnectionId) -> String {
    format!("CONN#{connection}")
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
        }
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }

    fn item(connection: ConnectionId, write: &EntityWrite) -> Item {
        let entity = &write.entity;
        let mut item = key(partition(connection), write.key.as_str());
        let payload = entity.payload.to_string();
        let stored = cut(&payload, MAX_PAYLOAD_BYTES);
        if stored.len() < payload.len() {
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
        ]);
        let mut found = HashMap::with_capacity(keys.len());
        for batch in keys.chunks(MAX_READ_BATCH) {
            let request: Vec<Item> = batch
                .iter()
                .map(|k| key(partition(connection), k.as_str()))
                .collect();
            let items = read_all(
                &self.client,
                &self.table,
                request,
                "#sk, #hash, #job, #change",
                &names,
            )
            .await?;
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
        let requests = keys
            .iter()
            .map(|k| {
                let delete = DeleteRequest::builder()
                    .set_key(Some(key(partition(connection), k.as_str())))
                    .build()
                    .map_err(build_error)?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.write_requests(requests).await
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

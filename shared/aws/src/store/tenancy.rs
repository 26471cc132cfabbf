//! Organizations and API keys. A key item (`APIKEY#<hash> | META`) holds only the key's hash,
//! its organization and whether (and when) it was revoked; the organization's partition keeps a
//! listing entry per key (`ORG#o | APIKEY#<key id>`), and a pointer item (`APIKEYID#<key id> |
//! META`) finds the key by its id alone; all three are written in one transaction. Keys created
//! before pointers existed have none: their id is found by a scan (see `api_keys_with_id`).

use super::keys::{api_key_id_pk, api_key_pk, organization_pk, API_KEY_PREFIX, META};
use super::{backend, from_item, is_condition_failure, s, to_item, DynamoStore};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use domain::ids::OrganizationId;
use domain::page::PageRequest;
use domain::ports::{StoreError, TenantStore};
use domain::tenancy::{
    ApiKeyHash, ApiKeyId, ApiKeySummary, Organization, RedirectOrigin, StoredApiKey,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct ApiKeyRecord {
    organization_id: OrganizationId,
    revoked: bool,
    created_at: DateTime<Utc>,
}

/// An organization's listing entry for one of its keys.
#[derive(Debug, Serialize, Deserialize)]
struct KeyEntry {
    key_id: ApiKeyId,
    created_at: DateTime<Utc>,
    /// Absent until revoked (so that the revoke's `if_not_exists` keeps the first time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revoked_at: Option<DateTime<Utc>>,
}

/// Which key an id names, and whose it is. Written with the key, so that two keys can never share a pointer:
/// the second key's transaction fails (`AlreadyExists`) and its creator draws another key.
#[derive(Debug, Serialize, Deserialize)]
struct KeyIdPointer {
    key_hash: ApiKeyHash,
    organization_id: OrganizationId,
}

/// What a scan for key items reads of each besides its key.
#[derive(Debug, Deserialize)]
struct KeyOwner {
    organization_id: OrganizationId,
}

const KEY_ENTRY_PREFIX: &str = "APIKEY#";

fn key_entry_sk(id: &ApiKeyId) -> String {
    format!("{KEY_ENTRY_PREFIX}{id}")
}

#[async_trait]
impl TenantStore for DynamoStore {
    async fn organization_for_key(
        &self,
        key: &ApiKeyHash,
    ) -> Result<Option<OrganizationId>, StoreError> {
        let Some(item) = self.get(api_key_pk(key), META).await? else {
            return Ok(None);
        };
        let record: ApiKeyRecord = from_item(item)?;
        Ok((!record.revoked).then_some(record.organization_id))
    }

    async fn insert_organization(&self, org: &Organization) -> Result<(), StoreError> {
        let item = to_item(org, organization_pk(org.id), META)?;
        self.put_new(item).await
    }

    async fn get_organization(
        &self,
        org: OrganizationId,
    ) -> Result<Option<Organization>, StoreError> {
        self.get(organization_pk(org), META)
            .await?
            .map(from_item)
            .transpose()
    }

    async fn insert_api_key(
        &self,
        key: &ApiKeyHash,
        org: OrganizationId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let record = ApiKeyRecord {
            organization_id: org,
            revoked: false,
            created_at: now,
        };
        let item = to_item(&record, api_key_pk(key), META)?;
        let entry = to_item(
            &KeyEntry {
                key_id: key.key_id(),
                created_at: now,
                revoked_at: None,
            },
            organization_pk(org),
            &key_entry_sk(&key.key_id()),
        )?;
        let pointer = to_item(
            &KeyIdPointer {
                key_hash: key.clone(),
                organization_id: org,
            },
            api_key_id_pk(&key.key_id()),
            META,
        )?;
        let items = vec![
            self.put_new_write(item)?,
            self.put_new_write(entry)?,
            self.put_new_write(pointer)?,
        ];
        match self.transact(items).await? {
            true => Ok(()),
            false => Err(StoreError::AlreadyExists),
        }
    }

    async fn revoke_api_key(&self, key: &ApiKeyHash) -> Result<bool, StoreError> {
        let Some(item) = self.get(api_key_pk(key), META).await? else {
            return Ok(false);
        };
        let record: ApiKeyRecord = from_item(item)?;
        let now: AttributeValue = serde_dynamo::to_attribute_value(Utc::now())
            .map_err(|e| StoreError::Backend(crate::error::boxed(e)))?;
        // The key item decides; the listing entry follows it.
        let revoked = self
            .update_existing(
                api_key_pk(key),
                META,
                "SET revoked = :true, revoked_at = if_not_exists(revoked_at, :now)",
                vec![(":true", AttributeValue::Bool(true)), (":now", now.clone())],
            )
            .await?;
        self.update_existing(
            organization_pk(record.organization_id),
            &key_entry_sk(&key.key_id()),
            "SET revoked_at = if_not_exists(revoked_at, :now)",
            vec![(":now", now)],
        )
        .await?;
        Ok(revoked)
    }

    async fn api_keys_with_id(&self, id: &ApiKeyId) -> Result<Vec<StoredApiKey>, StoreError> {
        // A pointer names the one key created with it. A key from before pointers with the same
        // id (a chance of 2^-48 per pair) is not looked for then.
        if let Some(item) = self.get(api_key_id_pk(id), META).await? {
            let pointer: KeyIdPointer = from_item(item)?;
            return Ok(vec![StoredApiKey {
                hash: pointer.key_hash,
                organization_id: pointer.organization_id,
            }]);
        }
        self.scan_api_keys_starting_with(id).await
    }

    async fn list_api_keys(&self, org: OrganizationId) -> Result<Vec<ApiKeySummary>, StoreError> {
        let mut keys = Vec::new();
        let mut page = PageRequest {
            limit: 100,
            ..PageRequest::default()
        };
        loop {
            let found = self
                .list_items(organization_pk(org), KEY_ENTRY_PREFIX, None, &page)
                .await?;
            for item in found.items {
                let entry: KeyEntry = from_item(item)?;
                keys.push(ApiKeySummary {
                    key_id: entry.key_id,
                    created_at: entry.created_at,
                    revoked_at: entry.revoked_at,
                });
            }
            match found.next_cursor {
                Some(cursor) => page.cursor = Some(cursor),
                None => break,
            }
        }
        keys.sort_by_key(|k| k.created_at);
        Ok(keys)
    }

    async fn set_redirect_origins(
        &self,
        org: OrganizationId,
        origins: Option<&[RedirectOrigin]>,
    ) -> Result<bool, StoreError> {
        let Some(origins) = origins else {
            return self
                .update_existing(
                    organization_pk(org),
                    META,
                    "REMOVE redirect_origins",
                    vec![],
                )
                .await;
        };
        let list = origins
            .iter()
            .map(|o| AttributeValue::S(o.to_string()))
            .collect();
        self.update_existing(
            organization_pk(org),
            META,
            "SET redirect_origins = :origins",
            vec![(":origins", AttributeValue::L(list))],
        )
        .await
    }
}

impl DynamoStore {
    /// The key items whose hash begins with `id`: how a key created before pointers existed is
    /// found by its id. A scan of the whole table, read by the operator's CLI alone and rarely
    /// (a revocation by id of such a key), never on a request's path.
    async fn scan_api_keys_starting_with(
        &self,
        id: &ApiKeyId,
    ) -> Result<Vec<StoredApiKey>, StoreError> {
        let mut keys = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(pk, :prefix) AND sk = :meta")
                .expression_attribute_values(":prefix", s(format!("{API_KEY_PREFIX}{id}")))
                .expression_attribute_values(":meta", s(META))
                .projection_expression("pk, organization_id")
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(backend)?;
            for item in out.items.unwrap_or_default() {
                let hash = item
                    .get("pk")
                    .and_then(|pk| pk.as_s().ok())
                    .and_then(|pk| pk.strip_prefix(API_KEY_PREFIX))
                    .and_then(|hash| ApiKeyHash::parse(hash).ok())
                    .ok_or_else(|| {
                        StoreError::Backend(format!("not a key item's pk: {item:?}").into())
                    })?;
                let owner: KeyOwner = from_item(item)?;
                keys.push(StoredApiKey {
                    hash,
                    organization_id: owner.organization_id,
                });
            }
            match out.last_evaluated_key {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => return Ok(keys),
            }
        }
    }

    /// Updates the item `pk`/`sk` if it exists: `false` when it does not.
    async fn update_existing(
        &self,
        pk: String,
        sk: &str,
        expression: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<bool, StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(super::key(pk, sk)))
            .update_expression(expression)
            .condition_expression("attribute_exists(pk)");
        for (name, value) in values {
            update = update.expression_attribute_values(name, value);
        }
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(backend(e)),
        }
    }
}

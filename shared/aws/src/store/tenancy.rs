//! Organizations and API keys. A key item (`APIKEY#<hash> | META`) holds only the key's hash,
//! its organization and whether (and when) it was revoked; the organization's partition keeps a
//! listing entry per key (`ORG#o | APIKEY#<first 12 hex digits>`), written in the same
//! transaction, for operators.

use super::failed_conditions;
use super::keys::{api_key_pk, organization_pk, META};
use super::{backend, from_item, is_condition_failure, to_item, DynamoStore};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use domain::ids::OrganizationId;
use domain::page::PageRequest;
use domain::ports::{StoreError, TenantStore};
use domain::tenancy::{ApiKeyHash, ApiKeySummary, Organization, RedirectOrigin};
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
    key_id: String,
    created_at: DateTime<Utc>,
    /// Absent until revoked (so that the revoke's `if_not_exists` keeps the first time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revoked_at: Option<DateTime<Utc>>,
}

const KEY_ENTRY_PREFIX: &str = "APIKEY#";

fn key_entry_sk(key: &ApiKeyHash) -> String {
    format!("{KEY_ENTRY_PREFIX}{}", key.key_id())
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
            &key_entry_sk(key),
        )?;
        let items = vec![self.put_new_write(item)?, self.put_new_write(entry)?];
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if failed_conditions(&e).contains(&true) => Err(StoreError::AlreadyExists),
            Err(e) => Err(backend(e)),
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
            &key_entry_sk(key),
            "SET revoked_at = if_not_exists(revoked_at, :now)",
            vec![(":now", now)],
        )
        .await?;
        Ok(revoked)
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

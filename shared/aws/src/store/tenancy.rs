//! Organizations and API keys. A key item holds only the key's hash, its organization and
//! whether (and when) it was revoked.

use super::keys::{api_key_pk, organization_pk, META};
use super::{backend, from_item, is_condition_failure, to_item, DynamoStore};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use domain::ids::OrganizationId;
use domain::ports::{StoreError, TenantStore};
use domain::tenancy::{ApiKeyHash, Organization, RedirectOrigin};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct ApiKeyRecord {
    organization_id: OrganizationId,
    revoked: bool,
    created_at: DateTime<Utc>,
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
        self.put_new(item).await
    }

    async fn revoke_api_key(&self, key: &ApiKeyHash) -> Result<bool, StoreError> {
        let now = serde_dynamo::to_attribute_value(Utc::now())
            .map_err(|e| StoreError::Backend(crate::error::boxed(e)))?;
        self.update_existing(
            api_key_pk(key),
            "SET revoked = :true, revoked_at = if_not_exists(revoked_at, :now)",
            vec![(":true", AttributeValue::Bool(true)), (":now", now)],
        )
        .await
    }

    async fn set_redirect_origins(
        &self,
        org: OrganizationId,
        origins: &[RedirectOrigin],
    ) -> Result<bool, StoreError> {
        let list = origins
            .iter()
            .map(|o| AttributeValue::S(o.to_string()))
            .collect();
        self.update_existing(
            organization_pk(org),
            "SET redirect_origins = :origins",
            vec![(":origins", AttributeValue::L(list))],
        )
        .await
    }
}

impl DynamoStore {
    /// Updates the `META` item of `pk` if it exists: `false` when it does not.
    async fn update_existing(
        &self,
        pk: String,
        expression: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<bool, StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(super::key(pk, META)))
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

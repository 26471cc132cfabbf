//! Which version of a connection's secret is current: `CONN#id | SECRET` holds `version`, the
//! Secrets Manager version id its last writer marked. Every mark is a transaction with a check
//! that the connection exists and is not being deleted, so a deleted connection never gets the
//! item back; it lives in the connection's partition and goes with its delete.

use super::keys::{connection_pk, connection_sk, organization_pk, DELETING_AT};
use super::{build_error, key, s, DynamoStore};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ConditionCheck, TransactWriteItem, Update};
use domain::ids::{ConnectionId, OrganizationId};
use domain::ports::{SecretVersion, SecretVersionStore, StoreError, Succession};

const SECRET: &str = "SECRET";
const VERSION: &str = "version";

impl DynamoStore {
    /// The write that marks `to` current, as `succession` allows.
    pub(super) fn secret_version_mark(
        &self,
        id: ConnectionId,
        to: &SecretVersion,
        succession: Succession<'_>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(connection_pk(id), SECRET)))
            .update_expression("SET #version = :to")
            .expression_attribute_names("#version", VERSION)
            .expression_attribute_values(":to", s(to.as_str()));
        if let Succession::Follows(from) = succession {
            update = update
                .condition_expression("attribute_not_exists(#version) OR #version = :from")
                .expression_attribute_values(":from", s(from.as_str()));
        }
        Ok(TransactWriteItem::builder()
            .update(update.build().map_err(build_error)?)
            .build())
    }
}

#[async_trait]
impl SecretVersionStore for DynamoStore {
    async fn marked_secret_version(
        &self,
        id: ConnectionId,
    ) -> Result<Option<SecretVersion>, StoreError> {
        let item = self.get(connection_pk(id), SECRET).await?;
        Ok(item
            .as_ref()
            .and_then(|i| i.get(VERSION)?.as_s().ok())
            .map(|v| SecretVersion::new(v.clone())))
    }

    async fn mark_secret_version(
        &self,
        org: OrganizationId,
        id: ConnectionId,
        to: &SecretVersion,
        succession: Succession<'_>,
    ) -> Result<bool, StoreError> {
        let exists = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(organization_pk(org), &connection_sk(id))))
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(#deleting)")
            .expression_attribute_names("#deleting", DELETING_AT)
            .build()
            .map_err(build_error)?;
        let items = vec![
            TransactWriteItem::builder().condition_check(exists).build(),
            self.secret_version_mark(id, to, succession)?,
        ];
        self.transact(items).await
    }
}

//! The organization's auth provider connections: `ORG#o | AUTHPROV#readable_id`. Their
//! credentials are in the vault, never here.

use super::keys::organization_pk;
use super::{from_item, to_item, DynamoStore};
use async_trait::async_trait;
use domain::auth_provider::ProviderConnection;
use domain::ids::OrganizationId;
use domain::names::ReadableId;
use domain::page::{Page, PageRequest};
use domain::ports::{ProviderConnectionStore, StoreError};

const PREFIX: &str = "AUTHPROV#";

fn provider_sk(readable_id: &str) -> String {
    format!("{PREFIX}{readable_id}")
}

#[async_trait]
impl ProviderConnectionStore for DynamoStore {
    async fn insert_provider_connection(
        &self,
        connection: &ProviderConnection,
    ) -> Result<(), StoreError> {
        let item = to_item(
            connection,
            organization_pk(connection.organization_id),
            &provider_sk(&connection.readable_id),
        )?;
        self.put_new(item).await
    }

    async fn get_provider_connection(
        &self,
        org: OrganizationId,
        readable_id: &ReadableId,
    ) -> Result<Option<ProviderConnection>, StoreError> {
        self.get(organization_pk(org), &provider_sk(readable_id.as_str()))
            .await?
            .map(from_item)
            .transpose()
    }

    async fn list_provider_connections(
        &self,
        org: OrganizationId,
        page: &PageRequest,
    ) -> Result<Page<ProviderConnection>, StoreError> {
        let page = self
            .list_items(organization_pk(org), PREFIX, None, page)
            .await?;
        page.try_map(from_item)
    }
}

//! Collections: `ORG#o | COLL#readable_id`, with a `connection_count` that connection writes
//! keep in the same transactions, so that deleting a non-empty collection is refused atomically.

use super::keys::{collection_sk, organization_pk, COLLECTION_PREFIX};
use super::{backend, build_error, from_item, is_condition_failure, n, to_item, DynamoStore};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::types::{Delete, ReturnValuesOnConditionCheckFailure, TransactWriteItem};
use domain::collection::Collection;
use domain::ids::OrganizationId;
use domain::names::ReadableId;
use domain::page::{Page, PageRequest};
use domain::ports::{CollectionStore, StoreError};
use domain::webhooks::Event;

/// The attribute counting a collection's connections.
pub(crate) const CONNECTION_COUNT: &str = "connection_count";

#[async_trait]
impl CollectionStore for DynamoStore {
    async fn insert_collection(
        &self,
        collection: &Collection,
        events: &[Event],
    ) -> Result<(), StoreError> {
        let mut item = to_item(
            collection,
            organization_pk(collection.organization_id),
            &collection_sk(&collection.readable_id),
        )?;
        item.insert(CONNECTION_COUNT.to_owned(), n(0));
        if events.is_empty() {
            return self.put_new(item).await;
        }
        let mut items = vec![self.put_new_write(item)?];
        items.extend(self.outbox_items(events)?);
        match self.transact(items).await? {
            true => Ok(()),
            false => Err(StoreError::AlreadyExists),
        }
    }

    async fn get_collection(
        &self,
        org: OrganizationId,
        id: &ReadableId,
    ) -> Result<Option<Collection>, StoreError> {
        self.get(organization_pk(org), &collection_sk(id))
            .await?
            .map(from_item)
            .transpose()
    }

    async fn list_collections(
        &self,
        org: OrganizationId,
        page: &PageRequest,
    ) -> Result<Page<Collection>, StoreError> {
        let page = self
            .list_items(organization_pk(org), COLLECTION_PREFIX, None, page)
            .await?;
        page.try_map(from_item)
    }

    async fn delete_collection(
        &self,
        org: OrganizationId,
        id: &ReadableId,
        events: &[Event],
    ) -> Result<(), StoreError> {
        let sk = collection_sk(id);
        if !events.is_empty() {
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(super::key(organization_pk(org), &sk)))
                .condition_expression(
                    "attribute_exists(pk) AND (attribute_not_exists(#count) OR #count = :zero)",
                )
                .expression_attribute_names("#count", CONNECTION_COUNT)
                .expression_attribute_values(":zero", n(0))
                .build()
                .map_err(build_error)?;
            let mut items = vec![TransactWriteItem::builder().delete(delete).build()];
            items.extend(self.outbox_items(events)?);
            if self.transact(items).await? {
                return Ok(());
            }
            return match self.get(organization_pk(org), &sk).await? {
                Some(_) => Err(StoreError::CollectionNotEmpty),
                None => Err(StoreError::CollectionNotFound),
            };
        }
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(super::key(organization_pk(org), &sk)))
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(#count) OR #count = :zero)",
            )
            .expression_attribute_names("#count", CONNECTION_COUNT)
            .expression_attribute_values(":zero", n(0))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let e = match result {
            Ok(_) => return Ok(()),
            Err(e) if is_condition_failure(&e) => e,
            Err(e) => return Err(backend(e)),
        };
        // The old item tells a missing collection from a non-empty one; without it (an
        // emulator that does not return it), read the item.
        let returned_old = matches!(
            e.as_service_error(),
            Some(DeleteItemError::ConditionalCheckFailedException(failed)) if failed.item().is_some()
        );
        if returned_old || self.get(organization_pk(org), &sk).await?.is_some() {
            Err(StoreError::CollectionNotEmpty)
        } else {
            Err(StoreError::CollectionNotFound)
        }
    }
}

//! Collections: create, read, list, delete.

use super::Platform;
use crate::collection::{Collection, CreateCollectionInput};
use crate::error::{DomainError, FieldError};
use crate::ids::OrganizationId;
use crate::names::{CollectionName, ReadableId};
use crate::page::{Page, PageRequest};
use crate::ports::StoreError;
use crate::usecases::webhooks::outbox::Outbox;
use crate::webhooks::{Event, EventType};

fn not_found(id: &str) -> DomainError {
    DomainError::NotFound(format!("collection '{id}' not found"))
}

fn parse_id(id: &str) -> Result<ReadableId, DomainError> {
    // A malformed id cannot name a stored collection: answer as for any unknown id.
    ReadableId::parse(id).map_err(|_| not_found(id))
}

pub async fn create_collection(
    platform: &Platform,
    org: OrganizationId,
    input: CreateCollectionInput,
) -> Result<Collection, DomainError> {
    let mut errors = Vec::new();
    let name = match input.name.as_deref() {
        None => {
            errors.push(FieldError::new("name", "is required"));
            None
        }
        Some(n) => CollectionName::parse(n)
            .map_err(|m| errors.push(FieldError::new("name", m)))
            .ok(),
    };
    let readable_id = input.readable_id.as_deref().and_then(|id| {
        ReadableId::parse(id)
            .map_err(|m| errors.push(FieldError::new("readable_id", m)))
            .ok()
    });
    let Some(name) = name.filter(|_| errors.is_empty()) else {
        return Err(DomainError::invalid(errors));
    };
    let explicit = readable_id.is_some();
    let readable_id = readable_id.unwrap_or_else(|| {
        let suffix: String = uuid::Uuid::new_v4().simple().to_string()[..6].to_owned();
        ReadableId::generate(&name, &suffix)
    });
    let now = platform.clock.now();
    let collection = Collection {
        readable_id,
        name,
        organization_id: org,
        created_at: now,
        modified_at: now,
    };
    let events = Outbox::of(platform, org)
        .await
        .record(|| Event::collection(EventType::CollectionCreated, &collection, now));
    match platform.store.insert_collection(&collection, &events).await {
        Ok(()) => Ok(collection),
        Err(StoreError::AlreadyExists) if explicit => Err(DomainError::Conflict(format!(
            "a collection with readable_id '{}' already exists",
            collection.readable_id
        ))),
        Err(StoreError::AlreadyExists) => Err(DomainError::Conflict(
            "the generated readable_id collided with an existing collection; retry".into(),
        )),
        Err(e) => Err(DomainError::internal(e)),
    }
}

pub async fn get_collection(
    platform: &Platform,
    org: OrganizationId,
    id: &str,
) -> Result<Collection, DomainError> {
    let readable_id = parse_id(id)?;
    platform
        .store
        .get_collection(org, &readable_id)
        .await
        .map_err(DomainError::internal)?
        .ok_or_else(|| not_found(id))
}

pub async fn list_collections(
    platform: &Platform,
    org: OrganizationId,
    page: &PageRequest,
) -> Result<Page<Collection>, DomainError> {
    platform
        .store
        .list_collections(org, page)
        .await
        .map_err(super::list_error)
}

/// Deletes an empty collection; 409 while source connections still belong to it.
pub async fn delete_collection(
    platform: &Platform,
    org: OrganizationId,
    id: &str,
) -> Result<Collection, DomainError> {
    let collection = get_collection(platform, org, id).await?;
    let events = Outbox::of(platform, org).await.record(|| {
        Event::collection(
            EventType::CollectionDeleted,
            &collection,
            platform.clock.now(),
        )
    });
    match platform
        .store
        .delete_collection(org, &collection.readable_id, &events)
        .await
    {
        Ok(()) => Ok(collection),
        Err(StoreError::CollectionNotFound) => Err(not_found(id)),
        Err(StoreError::CollectionNotEmpty) => Err(DomainError::Conflict(format!(
            "collection '{id}' still has source connections; delete them first"
        ))),
        Err(e) => Err(DomainError::internal(e)),
    }
}

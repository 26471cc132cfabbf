//! Reading what syncs did: a connection's jobs and its entities. Jobs and entities are keyed by
//! connection, so every read first reads the connection within the caller's organization: a
//! foreign connection answers 404 exactly as an unknown one does.

use super::connections::get_connection;
use super::list_error;
use super::Platform;
use crate::entity::EntityRecord;
use crate::error::DomainError;
use crate::ids::{JobId, OrganizationId};
use crate::job::Job;
use crate::page::{Page, PageRequest};

/// A connection's jobs, newest first.
pub async fn list_jobs(
    platform: &Platform,
    org: OrganizationId,
    connection_id: &str,
    page: &PageRequest,
) -> Result<Page<Job>, DomainError> {
    let connection = get_connection(platform, org, connection_id).await?;
    platform
        .store
        .list_jobs(connection.id, page)
        .await
        .map_err(list_error)
}

/// One job with its live counts.
pub async fn get_job(
    platform: &Platform,
    org: OrganizationId,
    connection_id: &str,
    job_id: &str,
) -> Result<Job, DomainError> {
    let connection = get_connection(platform, org, connection_id).await?;
    let not_found = || DomainError::NotFound(format!("sync job '{job_id}' not found"));
    let job: JobId = job_id.parse().map_err(|_| not_found())?;
    platform
        .store
        .get_job(connection.id, job)
        .await
        .map_err(DomainError::internal)?
        .ok_or_else(not_found)
}

/// A connection's entities in key order, optionally of one type.
pub async fn list_entities(
    platform: &Platform,
    org: OrganizationId,
    connection_id: &str,
    entity_type: Option<&str>,
    page: &PageRequest,
) -> Result<Page<EntityRecord>, DomainError> {
    let connection = get_connection(platform, org, connection_id).await?;
    if let Some(t) = entity_type {
        if t.is_empty() || t.contains('#') || t.len() > 255 {
            return Err(DomainError::invalid_field(
                "type",
                "must be an entity type (no '#', at most 255 characters)",
            ));
        }
    }
    platform
        .entities
        .list(connection.id, entity_type, page)
        .await
        .map_err(list_error)
}

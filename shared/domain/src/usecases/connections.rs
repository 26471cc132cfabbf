//! Reading source connections.

use super::Platform;
use crate::connection::SourceConnection;
use crate::error::DomainError;
use crate::ids::{ConnectionId, OrganizationId};
use crate::names::ReadableId;
use crate::page::{Page, PageRequest};

pub(crate) fn not_found(id: &str) -> DomainError {
    DomainError::NotFound(format!("source connection '{id}' not found"))
}

/// One connection of the caller's organization; another organization's id is 404 as well.
pub async fn get_connection(
    platform: &Platform,
    org: OrganizationId,
    id: &str,
) -> Result<SourceConnection, DomainError> {
    let parsed: ConnectionId = id.parse().map_err(|_| not_found(id))?;
    platform
        .store
        .get_connection(org, parsed)
        .await
        .map_err(DomainError::internal)?
        .ok_or_else(|| not_found(id))
}

/// The organization's connections, optionally of one collection. An unknown collection is an
/// empty list, as in Airweave's API.
pub async fn list_connections(
    platform: &Platform,
    org: OrganizationId,
    collection: Option<&str>,
    page: &PageRequest,
) -> Result<Page<SourceConnection>, DomainError> {
    let collection = match collection {
        None => None,
        Some(id) => match ReadableId::parse(id) {
            Ok(id) => Some(id),
            Err(_) => {
                return Ok(Page {
                    items: Vec::new(),
                    next_cursor: None,
                })
            }
        },
    };
    platform
        .store
        .list_connections(org, collection.as_ref(), page)
        .await
        .map_err(super::list_error)
}

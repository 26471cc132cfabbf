//! Collections group an organization's source connections.

use crate::ids::OrganizationId;
use crate::names::{CollectionName, ReadableId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Collection {
    pub readable_id: ReadableId,
    pub name: CollectionName,
    pub organization_id: OrganizationId,
    pub created_at: DateTime<Utc>,
    pub modified_at: DateTime<Utc>,
}

/// The body of `POST /collections`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCollectionInput {
    pub name: Option<String>,
    pub readable_id: Option<String>,
}

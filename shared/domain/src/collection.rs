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
    /// 4-64 characters.
    #[schema(value_type = String, min_length = 4, max_length = 64)]
    pub name: Option<String>,
    /// Generated from the name when omitted.
    #[schema(pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", min_length = 3, max_length = 64)]
    pub readable_id: Option<String>,
}

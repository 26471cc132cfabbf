//! `GET /source-connections/{id}/changes` (DESIGN section 13): what changed since a cursor, in
//! commit order, each entity once with its net change and latest state.
//!
//! The feed reads only the settled part of the order ([`settled_through`]): a change becomes
//! visible once the job that wrote it has marked it done and the settle delay has passed, so a
//! change that reaches the index late is never skipped. The cursor carries the last position
//! the reader has passed and a time before which nothing it has not seen was committed: once
//! that time is older than the deletion records' retention, a deletion may have been forgotten, and
//! the cursor answers 410.

use super::connections::get_connection;
use super::Platform;
use crate::error::{DomainError, FieldError};
use crate::feed::FeedCursor;
use crate::feed::{settled_through, FeedPosition};
use crate::ids::OrganizationId;
use crate::page::PageRequest;
use crate::ports::{FeedChange, FeedQuery, FeedSide};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

/// The net change of an entity since the cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChangeOp {
    /// It did not exist at the cursor (even if updated since).
    Added,
    /// It existed at the cursor and was changed.
    Updated,
    /// It was deleted.
    Deleted,
}

impl ChangeOp {
    /// The `filter` parameter.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        match raw {
            "added" => Ok(Self::Added),
            "updated" => Ok(Self::Updated),
            "deleted" => Ok(Self::Deleted),
            _ => Err(FieldError::new(
                "filter",
                "must be added, updated or deleted",
            )),
        }
    }
}

/// One entity's net change.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EntityChange {
    pub op: ChangeOp,
    #[serde(rename = "type")]
    pub entity_type: String,
    pub entity_id: String,
    /// `null` when deleted.
    pub title: Option<String>,
    /// The source's own time of the entity's last change; `null` when deleted or unknown.
    pub updated_at: Option<DateTime<Utc>>,
    /// When the deletion was recorded; `null` unless deleted.
    pub deleted_at: Option<DateTime<Utc>>,
    /// The entity's JSON payload as it now stands (a JSON string of its first bytes when
    /// `payload_truncated`); `null` when deleted.
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Value>,
    pub payload_truncated: bool,
}

/// One page of the feed.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ChangesPage {
    pub changes: Vec<EntityChange>,
    /// Where the next read goes on: pass it as `cursor`, whether `has_more` or not.
    pub next_cursor: String,
    /// Whether more changes are already readable; `false` means caught up (poll again later).
    pub has_more: bool,
}

/// Where a read starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedStart {
    /// Every change, each entity `added` or `deleted`.
    Beginning,
    /// After a cursor.
    Cursor(FeedCursor),
    /// What was changed after this time (`modified_after`).
    ModifiedAfter(DateTime<Utc>),
}

/// A read of the feed, its parameters parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangesRequest {
    pub start: FeedStart,
    pub limit: usize,
    pub filter: Option<ChangeOp>,
    pub entity_type: Option<String>,
}

/// One page of a connection's change feed.
pub async fn read_changes(
    platform: &Platform,
    org: OrganizationId,
    connection_id: &str,
    request: &ChangesRequest,
) -> Result<ChangesPage, DomainError> {
    let connection = get_connection(platform, org, connection_id).await?;
    if let Some(t) = &request.entity_type {
        if t.is_empty() || t.contains('#') || t.len() > 255 {
            return Err(DomainError::invalid_field(
                "type",
                "must be an entity type (no '#', at most 255 characters)",
            ));
        }
    }
    let now = platform.clock.now();
    let retention = platform.feed.deletion_retention;
    // `seeking`: the `modified_after` whose first change is still to be found; the net ops
    // are against it until then, and against the cursor's position after.
    let (after, since, seeking) = match request.start {
        FeedStart::Beginning => (None, None, None),
        FeedStart::Cursor(c) => (c.after(), Some(c.since()), c.sought()),
        FeedStart::ModifiedAfter(at) => (None, Some(at), Some(at)),
    };
    if since.is_some_and(|since| since + retention <= now) {
        let days = retention.as_secs() / 86_400;
        return Err(DomainError::Gone(format!(
            "deletions are kept {days} days and this position is older: some may be gone; \
             start over with a full listing (GET /source-connections/{connection_id}/entities) \
             and read the feed without a cursor"
        )));
    }
    let marks = platform
        .store
        .feed_marks(connection.id)
        .await
        .map_err(DomainError::internal)?;
    let settle = chrono::Duration::from_std(platform.feed.settle).unwrap_or_default();
    let unchanged = |since: Option<DateTime<Utc>>| ChangesPage {
        changes: Vec::new(),
        next_cursor: FeedCursor::new(after, since.unwrap_or(now - settle))
            .seeking(seeking)
            .encode(),
        has_more: false,
    };
    let Some(settled) = settled_through(&marks, now, settle) else {
        return Ok(unchanged(since));
    };
    if let (Some(after), Some(through)) = (after, settled.through) {
        if through <= after {
            // The settled mark is behind the reader (a job's marks are replaced at its end).
            return Ok(unchanged(since));
        }
    }
    let side = match request.filter {
        None => FeedSide::All,
        Some(ChangeOp::Deleted) => FeedSide::Gone,
        Some(_) => FeedSide::Live,
    };
    let query = FeedQuery {
        after,
        through: settled.through,
        written_after: seeking,
        entity_type: request.entity_type.clone(),
        side,
        limit: request.limit,
        budget: PageRequest::MAX_BYTES,
        now,
    };
    let page = platform
        .entities
        .changes(connection.id, &query)
        .await
        .map_err(DomainError::internal)?;
    let existed = |added: FeedPosition| match seeking {
        Some(at) => added.written_at() <= at,
        None => after.is_some_and(|after| added <= after),
    };
    // Changes come in commit order, so once one after `seeking` is found, all that follow are.
    let still_seeking = seeking.filter(|_| page.more && page.entries.is_empty());
    let changes = page
        .entries
        .into_iter()
        .map(|entry| {
            let (entity_type, entity_id) = (entry.key.entity_type(), entry.key.entity_id());
            match entry.change {
                FeedChange::Live { record, added } => EntityChange {
                    op: match existed(added) {
                        true => ChangeOp::Updated,
                        false => ChangeOp::Added,
                    },
                    entity_type: entity_type.to_owned(),
                    entity_id: entity_id.to_owned(),
                    title: Some(record.title),
                    updated_at: record.updated_at,
                    deleted_at: None,
                    payload: Some(record.payload),
                    payload_truncated: record.payload_truncated,
                },
                FeedChange::Gone => EntityChange {
                    op: ChangeOp::Deleted,
                    entity_type: entity_type.to_owned(),
                    entity_id: entity_id.to_owned(),
                    title: None,
                    updated_at: None,
                    deleted_at: Some(entry.position.written_at()),
                    payload: None,
                    payload_truncated: false,
                },
            }
        })
        .filter(|change| request.filter.is_none_or(|op| change.op == op))
        .collect();
    // Unread changes were committed after the last position passed, or, caught up, after the
    // settled mark.
    let next = FeedCursor::new(
        page.last.or(after),
        match (page.more, page.last) {
            (true, Some(last)) => last.written_at(),
            (true, None) => since.unwrap_or(now),
            (false, _) => settled.since,
        },
    )
    .seeking(still_seeking);
    Ok(ChangesPage {
        changes,
        next_cursor: next.encode(),
        has_more: page.more,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_takes_the_three_ops_only() {
        assert_eq!(ChangeOp::parse("deleted"), Ok(ChangeOp::Deleted));
        assert!(ChangeOp::parse("removed").is_err());
    }
}

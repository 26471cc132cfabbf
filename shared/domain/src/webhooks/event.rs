//! Events: what happened, as receivers get it. The payload is flat JSON with the event's type,
//! UTC `Z` timestamp and organization, and the ids and counts of what changed.

use crate::collection::Collection;
use crate::connection::{ConnectionStatus, SourceConnection};
use crate::feed::FeedCursor;
use crate::ids::{MessageId, OrganizationId};
use crate::job::{Job, JobStatus};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

/// The events we emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    SyncPending,
    SyncRunning,
    SyncCancelling,
    SyncCompleted,
    SyncFailed,
    SyncCancelled,
    ConnectionCreated,
    ConnectionAuthCompleted,
    ConnectionDeleted,
    ConnectionNeedsReauth,
    CollectionCreated,
    CollectionDeleted,
}

impl EventType {
    pub const ALL: [EventType; 12] = [
        Self::SyncPending,
        Self::SyncRunning,
        Self::SyncCancelling,
        Self::SyncCompleted,
        Self::SyncFailed,
        Self::SyncCancelled,
        Self::ConnectionCreated,
        Self::ConnectionAuthCompleted,
        Self::ConnectionDeleted,
        Self::ConnectionNeedsReauth,
        Self::CollectionCreated,
        Self::CollectionDeleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SyncPending => "sync.pending",
            Self::SyncRunning => "sync.running",
            Self::SyncCancelling => "sync.cancelling",
            Self::SyncCompleted => "sync.completed",
            Self::SyncFailed => "sync.failed",
            Self::SyncCancelled => "sync.cancelled",
            Self::ConnectionCreated => "source_connection.created",
            Self::ConnectionAuthCompleted => "source_connection.auth_completed",
            Self::ConnectionDeleted => "source_connection.deleted",
            Self::ConnectionNeedsReauth => "source_connection.needs_reauth",
            Self::CollectionCreated => "collection.created",
            Self::CollectionDeleted => "collection.deleted",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The event of a job entering `status`.
    pub fn of_job(status: JobStatus) -> Self {
        match status {
            JobStatus::Pending => Self::SyncPending,
            JobStatus::Running => Self::SyncRunning,
            JobStatus::Cancelling => Self::SyncCancelling,
            JobStatus::Completed => Self::SyncCompleted,
            JobStatus::Failed => Self::SyncFailed,
            JobStatus::Cancelled => Self::SyncCancelled,
        }
    }
}

/// Event names a subscription may filter on but that never fire here: the rest of Airweave's
/// enum (its SDKs offer every name, so a subscription naming one is accepted).
pub const NEVER_EMITTED: [&str; 13] = [
    "entity.batch_processed",
    "query.processed",
    "access_control.batch_processed",
    "collection.updated",
    "organization.created",
    "organization.deleted",
    "organization.member_added",
    "organization.member_removed",
    "search.started",
    "search.completed",
    "search.failed",
    "search.reranking",
    "search.thinking",
];

/// Airweave's last search event name, also never emitted.
const SEARCH_TOOL_CALLED: &str = "search.tool_called";

/// Whether a subscription may name this event type.
pub fn is_known_event_type(name: &str) -> bool {
    EventType::parse(name).is_some() || NEVER_EMITTED.contains(&name) || name == SEARCH_TOOL_CALLED
}

/// One event, recorded with the change it reports; its id is the message id receivers see.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: MessageId,
    pub organization_id: OrganizationId,
    pub event_type: EventType,
    pub timestamp: DateTime<Utc>,
    pub payload: Map<String, Value>,
}

impl Event {
    fn new(
        organization_id: OrganizationId,
        event_type: EventType,
        timestamp: DateTime<Utc>,
        fields: Value,
    ) -> Self {
        let mut payload = Map::new();
        payload.insert("event_type".into(), json!(event_type.as_str()));
        payload.insert("timestamp".into(), json!(utc(timestamp)));
        payload.insert("organization_id".into(), json!(organization_id));
        if let Value::Object(fields) = fields {
            payload.extend(fields);
        }
        Self {
            id: MessageId::new(),
            organization_id,
            event_type,
            timestamp,
            payload,
        }
    }

    /// The job's event as it now stands (its status names the event), with its real counts.
    /// `entities_skipped` is Airweave's name for unchanged entities, our kept ones. A completed
    /// job's carries `changes_cursor`: the change feed just after everything the job wrote.
    pub fn sync(
        job: &Job,
        connection: &SourceConnection,
        collection_name: &str,
        at: DateTime<Utc>,
    ) -> Self {
        let mut event = Self::new(
            job.organization_id,
            EventType::of_job(job.status),
            at,
            json!({
                "sync_id": connection.sync_id,
                "sync_job_id": job.id,
                "collection_id": connection.readable_collection_id,
                "collection_name": collection_name,
                "collection_readable_id": connection.readable_collection_id,
                "source_connection_id": connection.id,
                "source_type": connection.short_name,
                "entities_inserted": job.entities_inserted,
                "entities_updated": job.entities_updated,
                "entities_deleted": job.entities_deleted,
                "entities_kept": job.entities_kept,
                "entities_skipped": job.entities_kept,
                "error": job.error,
            }),
        );
        if job.status == crate::job::JobStatus::Completed {
            let cursor = FeedCursor::after_job(job.id, job.completed_at.unwrap_or(at));
            event
                .payload
                .insert("changes_cursor".into(), json!(cursor.encode()));
        }
        event
    }

    /// A connection event (created, auth_completed, deleted, needs_reauth), the connection as
    /// it stands after the change.
    pub fn connection(
        event_type: EventType,
        connection: &SourceConnection,
        at: DateTime<Utc>,
    ) -> Self {
        let is_authenticated = !matches!(
            connection.status,
            ConnectionStatus::PendingAuth | ConnectionStatus::NeedsReauth
        );
        let mut fields = json!({
            "source_connection_id": connection.id,
            "collection_readable_id": connection.readable_collection_id,
            "source_type": connection.short_name,
            "is_authenticated": is_authenticated,
        });
        if let Some(category) = connection.error_category {
            fields["error_category"] = json!(category);
        }
        Self::new(connection.organization_id, event_type, at, fields)
    }

    /// A collection event (created, deleted).
    pub fn collection(event_type: EventType, collection: &Collection, at: DateTime<Utc>) -> Self {
        Self::new(
            collection.organization_id,
            event_type,
            at,
            json!({
                "collection_id": collection.readable_id,
                "collection_name": collection.name,
                "collection_readable_id": collection.readable_id,
            }),
        )
    }
}

/// RFC 3339 in UTC with a `Z`, to the millisecond.
pub fn utc(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Millis, true)
}

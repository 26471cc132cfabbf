//! Sync jobs and the message that asks the worker to run one.

use crate::connection::ErrorCategory;
use crate::ids::{ConnectionId, JobId, OrganizationId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Pending,
    Running,
    Cancelling,
    Cancelled,
    Completed,
    Failed,
}

impl JobStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Cancelled | Self::Completed | Self::Failed)
    }
}

/// Why a job exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// The first sync right after a connection is created or authorized.
    Initial,
    /// `POST /source-connections/{id}/run`.
    Manual,
    /// The connection's cron schedule.
    Scheduled,
}

/// A sync job, as stored under its connection and as `GET .../jobs` answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    pub source_connection_id: ConnectionId,
    pub organization_id: OrganizationId,
    pub status: JobStatus,
    pub trigger: Trigger,
    pub force_full_sync: bool,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub duration_seconds: Option<f64>,
    pub entities_inserted: u64,
    pub entities_updated: u64,
    pub entities_deleted: u64,
    pub entities_kept: u64,
    pub entities_failed: u64,
    pub error: Option<String>,
    pub error_category: Option<ErrorCategory>,
}

impl Job {
    pub fn pending(
        id: JobId,
        organization_id: OrganizationId,
        source_connection_id: ConnectionId,
        trigger: Trigger,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            source_connection_id,
            organization_id,
            status: JobStatus::Pending,
            trigger,
            force_full_sync: false,
            created_at: now,
            started_at: None,
            completed_at: None,
            duration_seconds: None,
            entities_inserted: 0,
            entities_updated: 0,
            entities_deleted: 0,
            entities_kept: 0,
            entities_failed: 0,
            error: None,
            error_category: None,
        }
    }

    pub fn message(&self) -> SyncMessage {
        SyncMessage {
            job_id: self.id,
            connection_id: self.source_connection_id,
            organization_id: self.organization_id,
            trigger: self.trigger,
            force_full_sync: self.force_full_sync,
        }
    }
}

/// The SQS message body that asks the sync worker to run a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncMessage {
    pub job_id: JobId,
    pub connection_id: ConnectionId,
    pub organization_id: OrganizationId,
    pub trigger: Trigger,
    pub force_full_sync: bool,
}

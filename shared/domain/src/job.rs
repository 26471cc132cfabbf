//! Sync jobs and the message that asks the worker to run one.

use crate::error_category::ErrorCategory;
use crate::ids::{ConnectionId, JobId, OrganizationId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

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
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Cancelling => "cancelling",
            Self::Cancelled => "cancelled",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Cancelled | Self::Completed | Self::Failed)
    }
}

/// Why a job exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
            not_before: None,
        }
    }

    pub fn counts(&self) -> Counts {
        Counts {
            inserted: self.entities_inserted,
            updated: self.entities_updated,
            deleted: self.entities_deleted,
            kept: self.entities_kept,
            failed: self.entities_failed,
        }
    }

    pub fn set_counts(&mut self, counts: &Counts) {
        self.entities_inserted = counts.inserted;
        self.entities_updated = counts.updated;
        self.entities_deleted = counts.deleted;
        self.entities_kept = counts.kept;
        self.entities_failed = counts.failed;
    }
}

/// The entity counts of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
    pub kept: u64,
    pub failed: u64,
}

/// A run's counts for one entity type, for the connection's entity summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeTally {
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
    pub kept: u64,
}

impl TypeTally {
    /// Whether the run changed anything of this type.
    pub fn changed(&self) -> bool {
        self.inserted + self.updated + self.deleted > 0
    }
}

/// A run's hold on its job: only the holder writes progress or the outcome, until `until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub holder: String,
    pub until: DateTime<Utc>,
}

/// The worker's own record of a run, saved on its job when it hands over to another invocation
/// (deadline, rate limit) or before a page of deletes: the next invocation resumes from here and
/// ends exactly as one long run would. Not to be confused with the source's checkpoint (its
/// position within the run, one field of this) or the source's cursor (where the next run
/// starts, saved when a run completes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// The source's checkpoint after the last processed page; `None` before the first.
    #[serde(rename = "resume")]
    pub stream_checkpoint: Option<Value>,
    /// Whether the stream has ended (the run was past it, deleting what it did not see).
    pub stream_done: bool,
    /// Past the stream: the stored keys were compared up to this page position.
    pub deleting_after: Option<String>,
    /// Past the stream: how many seen entities of each type the compared pages held.
    pub remaining: BTreeMap<String, u64>,
    pub counts: Counts,
    pub tallies: BTreeMap<String, TypeTally>,
    /// How many chunks of seen keys are stored with the run state.
    pub seen_chunks: u32,
    /// The connection had no entity when the run began: nothing to compare against.
    pub store_was_empty: bool,
    /// Past the stream: the keys of the page at `deleting_after` that were counted as deleted
    /// before they were deleted (hex fingerprints). A run that resumes there deletes them
    /// again if they are still stored, without counting them twice.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counted_deletes: Vec<String>,
}

/// What a claim of a job found.
#[derive(Debug, Clone, PartialEq)]
pub enum JobClaim {
    /// The run is the caller's: the job as it now stands, where an earlier invocation
    /// stopped, if one did, and how many times the job has been claimed, this claim included
    /// (its writes' feed positions sort after every earlier claim's).
    Claimed {
        job: Box<Job>,
        state: Option<RunState>,
        claim: u16,
    },
    /// Another invocation holds the job until then.
    Busy { until: DateTime<Utc> },
    /// The job has already ended.
    Finished(JobStatus),
    /// No such job (its connection was deleted).
    Missing,
}

/// The SQS message body that asks the sync worker to run a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncMessage {
    pub job_id: JobId,
    pub connection_id: ConnectionId,
    pub organization_id: OrganizationId,
    pub trigger: Trigger,
    pub force_full_sync: bool,
    /// A deferred run (rate limit) waits until then; a delivery before it is sent on again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateTime<Utc>>,
}

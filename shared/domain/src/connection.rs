//! The source connection: what is stored and, field for field, what the API answers
//! (DESIGN section 4).

use crate::catalog::AuthMethod;
use crate::error_category::ErrorCategory;
use crate::ids::{ConnectionId, JobId, OrganizationId};
use crate::job::{Job, JobStatus};
use crate::schedule::{CronSchedule, ScheduleDetails};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    Active,
    Inactive,
    PendingAuth,
    Syncing,
    Error,
    NeedsReauth,
}

impl ConnectionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
            Self::PendingAuth => "pending_auth",
            Self::Syncing => "syncing",
            Self::Error => "error",
            Self::NeedsReauth => "needs_reauth",
        }
    }
}

/// Authentication state. Never a secret, token or code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuthDetails {
    pub method: AuthMethod,
    pub authenticated: bool,
    pub authenticated_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub auth_url: Option<String>,
    pub auth_url_expires: Option<DateTime<Utc>>,
    pub redirect_url: Option<String>,
    pub provider_readable_id: Option<String>,
}

/// The latest job as the connection summarizes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobDetails {
    pub id: JobId,
    pub status: JobStatus,
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

impl From<&Job> for JobDetails {
    fn from(job: &Job) -> Self {
        Self {
            id: job.id,
            status: job.status,
            started_at: job.started_at,
            completed_at: job.completed_at,
            duration_seconds: job.duration_seconds,
            entities_inserted: job.entities_inserted,
            entities_updated: job.entities_updated,
            entities_deleted: job.entities_deleted,
            entities_kept: job.entities_kept,
            entities_failed: job.entities_failed,
            error: job.error.clone(),
            error_category: job.error_category,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SyncDetails {
    pub total_runs: u64,
    pub successful_runs: u64,
    pub failed_runs: u64,
    pub last_job: Option<JobDetails>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EntityTypeStats {
    pub count: u64,
    pub last_updated: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EntitySummary {
    pub total_entities: u64,
    pub by_type: BTreeMap<String, EntityTypeStats>,
}

/// A source connection: the stored state and, serialized, the API's response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SourceConnection {
    pub id: ConnectionId,
    pub organization_id: OrganizationId,
    pub name: String,
    pub short_name: String,
    pub readable_collection_id: String,
    pub status: ConnectionStatus,
    pub created_at: DateTime<Utc>,
    pub modified_at: DateTime<Utc>,
    pub auth: AuthDetails,
    pub description: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub config: Option<Map<String, Value>>,
    pub schedule: Option<ScheduleDetails>,
    pub sync: Option<SyncDetails>,
    pub sync_id: Option<String>,
    pub entities: Option<EntitySummary>,
    pub error_category: Option<ErrorCategory>,
    pub error_message: Option<String>,
    pub provider_settings_url: Option<String>,
    pub provider_short_name: Option<String>,
    pub federated_search: bool,
}

impl SourceConnection {
    /// A connection out of the schedule plans no run; one that comes back into it (resumed, new
    /// credentials) plans its next run from now, not from when it left.
    pub fn replan_schedule(&mut self, before: &SourceConnection, now: DateTime<Utc>) {
        let scheduled = |c: &SourceConnection| {
            !matches!(
                c.status,
                ConnectionStatus::Inactive
                    | ConnectionStatus::PendingAuth
                    | ConnectionStatus::NeedsReauth
            )
        };
        let (now_in, was_in) = (scheduled(self), scheduled(before));
        let Some(schedule) = self.schedule.as_mut() else {
            return;
        };
        if !now_in {
            schedule.next_run = None;
        } else if !was_in || schedule.next_run.is_none() {
            schedule.next_run = schedule
                .cron
                .as_deref()
                .and_then(|text| CronSchedule::parse(text).ok())
                .and_then(|cron| cron.next_after(now));
        }
    }

    /// When the scheduler should start its next run: only an active (or syncing, or failed)
    /// connection with a schedule has one. Paused connections and those waiting for
    /// authentication are out of the schedule until they come back.
    pub fn scheduled_run(&self) -> Option<DateTime<Utc>> {
        match self.status {
            ConnectionStatus::Active | ConnectionStatus::Syncing | ConnectionStatus::Error => {
                self.schedule.as_ref().and_then(|s| s.next_run)
            }
            ConnectionStatus::Inactive
            | ConnectionStatus::PendingAuth
            | ConnectionStatus::NeedsReauth => None,
        }
    }
}

/// The lightweight shape of `GET /source-connections`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SourceConnectionListItem {
    pub id: ConnectionId,
    pub name: String,
    pub short_name: String,
    pub readable_collection_id: String,
    pub created_at: DateTime<Utc>,
    pub modified_at: DateTime<Utc>,
    pub is_authenticated: bool,
    pub entity_count: u64,
    pub federated_search: bool,
    pub auth_method: AuthMethod,
    pub status: ConnectionStatus,
}

impl From<&SourceConnection> for SourceConnectionListItem {
    fn from(c: &SourceConnection) -> Self {
        Self {
            id: c.id,
            name: c.name.clone(),
            short_name: c.short_name.clone(),
            readable_collection_id: c.readable_collection_id.clone(),
            created_at: c.created_at,
            modified_at: c.modified_at,
            is_authenticated: c.auth.authenticated,
            entity_count: c.entities.as_ref().map_or(0, |e| e.total_entities),
            federated_search: c.federated_search,
            auth_method: c.auth.method,
            status: c.status,
        }
    }
}

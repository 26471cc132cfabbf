//! Recovery: `POST /webhooks/subscriptions/{id}/recover {since, until?}` (and a PATCH that
//! re-enables with `recover_since`) sends again every message of the window whose delivery to
//! the subscription did not succeed: each starts over with a first attempt, on the schedule.

use super::subscriptions::{parse_id, read};
use crate::error::{DomainError, FieldError};
use crate::ids::OrganizationId;
use crate::usecases::Platform;
use crate::webhooks::{AttemptStatus, DeliveryState, DeliveryTask};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A delivery restarted by a recovery whose first task was never queued (the queue failed
/// after the restart) is taken up again by a later recovery once it is this old.
const STALLED_AFTER: Duration = Duration::from_secs(15 * 60);

/// The window of a recovery.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct RecoverRequest {
    pub since: DateTime<Utc>,
    /// Now when absent.
    pub until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RecoveryStatus {
    Running,
    Completed,
}

/// What a recovery answers (Airweave's `RecoverOut`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RecoveryView {
    pub id: uuid::Uuid,
    /// `completed`: every delivery of the window is queued again (its attempts follow).
    pub status: RecoveryStatus,
    /// Deliveries queued again.
    pub requeued: usize,
}

/// Queues again the window's deliveries to the subscription that did not succeed.
pub async fn recover(
    platform: &Platform,
    org: OrganizationId,
    id: &str,
    request: &RecoverRequest,
) -> Result<RecoveryView, DomainError> {
    let now = platform.clock.now();
    let since = request.since;
    let until = request.until.unwrap_or(now);
    if until <= since {
        return Err(DomainError::invalid(vec![FieldError::new(
            "until",
            "must be later than since",
        )]));
    }
    let sid = parse_id(id)?;
    read(platform, org, id).await?;
    let requeued = resend(platform, org, sid, since, until).await?;
    Ok(RecoveryView {
        id: uuid::Uuid::now_v7(),
        status: RecoveryStatus::Completed,
        requeued,
    })
}

/// Restarts and queues the deliveries; answers how many.
pub(crate) async fn resend(
    platform: &Platform,
    org: OrganizationId,
    subscription: crate::ids::SubscriptionId,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<usize, DomainError> {
    let now = platform.clock.now();
    let store = &platform.webhooks;
    let found = store
        .unsuccessful_deliveries(org, subscription, since, until)
        .await
        .map_err(DomainError::internal)?;
    let mut tasks = Vec::new();
    for read in found.iter().filter(|d| restartable(d, now)) {
        if store
            .restart_delivery(org, read, now)
            .await
            .map_err(DomainError::internal)?
        {
            tasks.push(DeliveryTask::first(org, read.message_id, subscription));
        }
    }
    if !tasks.is_empty() {
        platform
            .deliveries
            .enqueue_deliveries(&tasks, Duration::ZERO)
            .await
            .map_err(DomainError::internal)?;
    }
    Ok(tasks.len())
}

/// A failed delivery, or one a recovery restarted whose first attempt never came.
fn restartable(delivery: &DeliveryState, now: DateTime<Utc>) -> bool {
    match delivery.status {
        AttemptStatus::Failed => true,
        AttemptStatus::Pending => {
            delivery.attempts == 0
                && (now - delivery.updated_at).to_std().unwrap_or_default() >= STALLED_AFTER
        }
        AttemptStatus::Success => false,
    }
}

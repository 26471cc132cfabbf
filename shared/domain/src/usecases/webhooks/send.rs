//! The sender: one task of the delivery queue is one attempt of one message to one
//! subscription. It POSTs the message signed with the subscription's secret, queues the next
//! attempt when this one failed and attempts remain, records the attempt together with the
//! delivery's new state, and keeps the subscription's failing streak (a subscription failing
//! for [`SenderSettings::disable_after`] is disabled).
//!
//! A task is at least once: a task whose attempt is already recorded is dropped, and a task
//! whose run was cut short (a crash, a timeout) before the record comes back and is attempted
//! again, with the same message id.

use crate::error::DomainError;
use crate::ids::AttemptId;
use crate::ports::{StoreError, MAX_QUEUE_DELAY};
use crate::usecases::Platform;
use crate::webhooks::{
    AttemptResult, AttemptStatus, DeliveryAttempt, DeliveryState, DeliveryTask, Outgoing,
    RetrySchedule, Subscription,
};
use chrono::{DateTime, Utc};
use std::time::Duration;
use tracing::{info, warn};

/// How the sender retries and when it gives up on a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderSettings {
    pub schedule: RetrySchedule,
    /// A subscription whose deliveries have failed for this long with no success between is
    /// disabled (Svix: 5 days).
    pub disable_after: Duration,
}

impl Default for SenderSettings {
    fn default() -> Self {
        Self {
            schedule: RetrySchedule::default(),
            disable_after: Duration::from_secs(5 * 24 * 3600),
        }
    }
}

/// How early a task may arrive and still be attempted (queue delays are whole seconds).
const EARLY_TOLERANCE: Duration = Duration::from_secs(1);

/// What became of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sent {
    /// The endpoint answered 2xx.
    Delivered,
    /// The attempt failed; the next one is queued.
    Retrying { next_attempt: u32 },
    /// The last attempt failed.
    Failed,
    /// The task came before its time (a wait longer than the queue's longest delay) and was
    /// queued again for the rest.
    Waiting,
    /// The attempt was already recorded (a repeated task), or the delivery is over.
    Repeated,
    /// The subscription is disabled: the delivery is recorded as failed without an attempt.
    Disabled,
    /// The subscription, its secret or the message is gone (deleted, or past retention).
    Gone,
}

/// Runs one task.
pub async fn send(
    platform: &Platform,
    settings: &SenderSettings,
    task: &DeliveryTask,
) -> Result<Sent, DomainError> {
    let now = platform.clock.now();
    let org = task.organization_id;
    if let Some(wait) = remaining_wait(task.not_before, now) {
        platform
            .deliveries
            .enqueue_deliveries(std::slice::from_ref(task), wait.min(MAX_QUEUE_DELAY))
            .await
            .map_err(DomainError::internal)?;
        return Ok(Sent::Waiting);
    }
    let store = &platform.webhooks;
    let state = store
        .delivery(org, task.message_id, task.subscription_id)
        .await
        .map_err(DomainError::internal)?;
    if attempt_done(state.as_ref(), task.attempt) {
        return Ok(Sent::Repeated);
    }
    let Some(subscription) = store
        .get_subscription(org, task.subscription_id)
        .await
        .map_err(DomainError::internal)?
    else {
        return Ok(Sent::Gone);
    };
    let (subscription, version) = (subscription.value, subscription.version);
    let Some(message) = store
        .get_message(org, task.message_id)
        .await
        .map_err(DomainError::internal)?
    else {
        return Ok(Sent::Gone);
    };
    if subscription.disabled {
        let ended = DeliveryState {
            message_id: task.message_id,
            subscription_id: task.subscription_id,
            status: AttemptStatus::Failed,
            attempts: task.attempt - 1,
            updated_at: now,
        };
        store
            .fail_delivery(org, &ended)
            .await
            .map_err(DomainError::internal)?;
        return Ok(Sent::Disabled);
    }
    let Some(secret) = platform
        .webhook_secrets
        .webhook_secret(org, task.subscription_id)
        .await
        .map_err(DomainError::internal)?
    else {
        return Ok(Sent::Gone);
    };
    let body = serde_json::to_string(&message.payload).map_err(DomainError::internal)?;
    let result = platform
        .webhook_transport
        .post(Outgoing {
            url: &subscription.url,
            message_id: message.id,
            timestamp: now,
            body: &body,
            secret: &secret,
        })
        .await;

    let last = task.attempt >= settings.schedule.attempts();
    let outcome = if result.delivered {
        Sent::Delivered
    } else if last {
        Sent::Failed
    } else {
        // Queued before the attempt is recorded: a crash between the two sends this attempt
        // again (the same message id) rather than losing the retries.
        let (next, wait) = next_task(task, &settings.schedule, &result, now);
        platform
            .deliveries
            .enqueue_deliveries(std::slice::from_ref(&next), wait.min(MAX_QUEUE_DELAY))
            .await
            .map_err(DomainError::internal)?;
        Sent::Retrying {
            next_attempt: next.attempt,
        }
    };
    let attempt = DeliveryAttempt {
        id: AttemptId::new(),
        message_id: message.id,
        endpoint_id: subscription.id,
        response: result.shown_response(),
        response_status_code: result.status_code.unwrap_or(0),
        status: if result.delivered {
            AttemptStatus::Success
        } else {
            AttemptStatus::Failed
        },
        timestamp: now,
        url: subscription.url.as_str().to_owned(),
    };
    let state = DeliveryState {
        message_id: message.id,
        subscription_id: subscription.id,
        status: match outcome {
            Sent::Delivered => AttemptStatus::Success,
            Sent::Failed => AttemptStatus::Failed,
            _ => AttemptStatus::Pending,
        },
        attempts: task.attempt,
        updated_at: now,
    };
    let recorded = store
        .record_attempt(org, &attempt, &state)
        .await
        .map_err(DomainError::internal)?;
    if !recorded {
        // Refused: another run of the same task recorded this attempt first, and this POST was
        // a repeat. Unless the state says so, the task comes again (an attempt is never left
        // unrecorded).
        let now_stored = store
            .delivery(org, task.message_id, task.subscription_id)
            .await
            .map_err(DomainError::internal)?;
        if attempt_done(now_stored.as_ref(), task.attempt) {
            return Ok(Sent::Repeated);
        }
        return Err(DomainError::Internal(
            "the attempt's record was refused and no other run recorded it".into(),
        ));
    }
    info!(
        message_id = %message.id,
        subscription_id = %subscription.id,
        attempt = task.attempt,
        status = result.status_code.unwrap_or(0),
        outcome = ?outcome,
        "webhook attempt recorded"
    );
    keep_streak(
        platform,
        settings,
        subscription,
        version,
        result.delivered,
        now,
    )
    .await;
    Ok(outcome)
}

/// Whether the stored state says attempt `attempt` needs no run: it is recorded, or the
/// delivery is over.
fn attempt_done(stored: Option<&DeliveryState>, attempt: u32) -> bool {
    stored.is_some_and(|s| s.status != AttemptStatus::Pending || s.attempts >= attempt)
}

/// How long a task still has to wait, when it came early by more than the queue's rounding.
fn remaining_wait(not_before: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<Duration> {
    let wait = (not_before? - now).to_std().ok()?;
    (wait > EARLY_TOLERANCE).then_some(wait)
}

/// The next attempt's task and its wait: the schedule's, or longer when the endpoint asked
/// (Retry-After).
fn next_task(
    task: &DeliveryTask,
    schedule: &RetrySchedule,
    result: &AttemptResult,
    now: DateTime<Utc>,
) -> (DeliveryTask, Duration) {
    let attempt = task.attempt + 1;
    let scheduled = schedule.delay_before(attempt).unwrap_or_default();
    let wait = result
        .retry_after
        .map_or(scheduled, |asked| asked.max(scheduled));
    let not_before = (wait > MAX_QUEUE_DELAY)
        .then(|| now + chrono::Duration::from_std(wait).unwrap_or_default());
    (
        DeliveryTask {
            attempt,
            not_before,
            ..task.clone()
        },
        wait,
    )
}

/// Starts, ends or acts on the subscription's failing streak: the first failure after a
/// success starts it, a success ends it, and a failure when it has lasted `disable_after`
/// disables the subscription. A write that loses a race is left to the next attempt.
async fn keep_streak(
    platform: &Platform,
    settings: &SenderSettings,
    mut subscription: Subscription,
    version: u64,
    delivered: bool,
    now: DateTime<Utc>,
) {
    let limit = chrono::Duration::from_std(settings.disable_after).unwrap_or_default();
    match (delivered, subscription.failing_since) {
        (true, None) => return,
        (true, Some(_)) => subscription.failing_since = None,
        (false, None) => subscription.failing_since = Some(now),
        (false, Some(since)) if now - since >= limit && !subscription.disabled => {
            subscription.disabled = true;
            subscription.updated_at = now;
            warn!(subscription_id = %subscription.id, failing_since = %since, "webhook subscription disabled: its deliveries have failed too long");
        }
        (false, Some(_)) => return,
    }
    match platform
        .webhooks
        .replace_subscription(&subscription, version)
        .await
    {
        Ok(()) | Err(StoreError::VersionConflict) => {}
        Err(e) => {
            warn!(subscription_id = %subscription.id, error = %e, "could not update the subscription's failing streak");
        }
    }
}

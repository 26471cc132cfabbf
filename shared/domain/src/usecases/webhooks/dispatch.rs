//! Dispatch: a recorded message becomes one delivery task per subscription that wants it. The
//! webhooks table's stream hands each new message to [`dispatch`] (no request is added to the
//! change that recorded it); the scheduler's [`sweep_outbox`] dispatches what that missed.

use crate::ids::MessageId;
use crate::ports::StoreError;
use crate::usecases::Platform;
use crate::webhooks::{AttemptStatus, DeliveryState, DeliveryTask, Message};
use chrono::{DateTime, Utc};
use std::time::Duration;
use tracing::warn;

/// How long after its event a message still in the outbox is taken for lost by the sweep (the
/// stream normally dispatches it within a second).
pub const DISPATCH_GRACE: Duration = Duration::from_secs(60);

/// What a dispatch did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Dispatched {
    /// Deliveries queued (enabled subscriptions that want the event).
    pub queued: usize,
    /// Deliveries recorded as failed at once: their subscription is disabled (a recovery can
    /// send them later).
    pub disabled: usize,
}

/// Why a dispatch did not finish; nothing is lost: the message stays in the outbox, and the
/// stream (or the sweep) dispatches it again.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("could not read or update the webhooks table")]
    Store(#[from] StoreError),
    #[error("could not queue the deliveries")]
    Queue(#[from] crate::ports::QueueError),
}

/// Queues the message's deliveries, then takes it out of the outbox. Dispatching a message
/// again queues its deliveries again; the sender drops a task whose attempt is already
/// recorded, so a repeated dispatch makes no second attempt once the first is recorded.
pub async fn dispatch(platform: &Platform, message: &Message) -> Result<Dispatched, DispatchError> {
    let org = message.organization_id;
    let mut done = Dispatched::default();
    let mut tasks = Vec::new();
    for subscription in platform.webhooks.list_subscriptions(org).await? {
        if !subscription.wants(&message.event_type) {
            continue;
        }
        if subscription.disabled {
            let state = DeliveryState {
                message_id: message.id,
                subscription_id: subscription.id,
                status: AttemptStatus::Failed,
                attempts: 0,
                updated_at: platform.clock.now(),
            };
            platform.webhooks.fail_delivery(org, &state).await?;
            done.disabled += 1;
            continue;
        }
        tasks.push(DeliveryTask::first(org, message.id, subscription.id));
    }
    if !tasks.is_empty() {
        platform
            .deliveries
            .enqueue_deliveries(&tasks, Duration::ZERO)
            .await?;
    }
    done.queued = tasks.len();
    platform.webhooks.mark_dispatched(org, message.id).await?;
    Ok(done)
}

/// What a sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Swept {
    /// Messages the stream had not dispatched, dispatched now.
    pub dispatched: Vec<MessageId>,
    pub errors: usize,
}

/// Dispatches messages still in the outbox [`DISPATCH_GRACE`] after their event, at most
/// `limit`.
pub async fn sweep_outbox(
    platform: &Platform,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Swept, StoreError> {
    let before = now - chrono::Duration::from_std(DISPATCH_GRACE).unwrap_or_default();
    let mut swept = Swept::default();
    for message in platform.webhooks.undispatched(before, limit).await? {
        match dispatch(platform, &message).await {
            Ok(_) => swept.dispatched.push(message.id),
            Err(e) => {
                swept.errors += 1;
                warn!(message_id = %message.id, error = %e, "could not dispatch a message the stream missed");
            }
        }
    }
    Ok(swept)
}

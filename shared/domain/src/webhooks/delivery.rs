//! Delivering a message to one subscription: the queue's task for each attempt, where the
//! delivery stands, and what one attempt came to.

use super::{AttemptStatus, WebhookSecret, WebhookUrl};
use crate::ids::{MessageId, OrganizationId, SubscriptionId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Where the delivery of one message to one subscription stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryState {
    pub message_id: MessageId,
    pub subscription_id: SubscriptionId,
    /// `pending` while attempts remain, then `success` or `failed`.
    pub status: AttemptStatus,
    /// Attempts made so far (in this round: a recovery starts a new one at 0).
    pub attempts: u32,
    pub updated_at: DateTime<Utc>,
}

/// The delivery queue's message: make attempt `attempt` (1 is the first) of a message to a
/// subscription, not before `not_before` (a wait longer than the queue's longest delay is
/// chained: the task comes back early and is queued again for the rest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryTask {
    pub organization_id: OrganizationId,
    pub message_id: MessageId,
    pub subscription_id: SubscriptionId,
    pub attempt: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateTime<Utc>>,
}

impl DeliveryTask {
    /// The first attempt of a message to a subscription, at once.
    pub fn first(
        organization_id: OrganizationId,
        message_id: MessageId,
        subscription_id: SubscriptionId,
    ) -> Self {
        Self {
            organization_id,
            message_id,
            subscription_id,
            attempt: 1,
            not_before: None,
        }
    }
}

/// One signed POST of a message to a subscription's endpoint.
#[derive(Clone, Copy)]
pub struct Outgoing<'a> {
    pub url: &'a WebhookUrl,
    /// The same on every attempt, so that a receiver can drop repeats.
    pub message_id: MessageId,
    /// When this attempt is made.
    pub timestamp: DateTime<Utc>,
    /// The JSON payload, sent and signed byte for byte.
    pub body: &'a str,
    pub secret: &'a WebhookSecret,
}

/// What one POST to an endpoint came to. Nothing in it repeats what we sent (the signature,
/// the secret, the payload or the URL): it is shown back to the customer as the attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptResult {
    /// The HTTP status of the answer; `None` when there was no answer.
    pub status_code: Option<u16>,
    /// At most the first 1024 bytes of the answer's body, as text (invalid UTF-8 replaced,
    /// cut on a character boundary); empty when there was no answer.
    pub response: String,
    /// The endpoint answered 2xx: the message is delivered and is not retried.
    pub delivered: bool,
    /// How long a non-2xx answer asked us to wait (`Retry-After`, at most a day), honoured by
    /// the retry schedule.
    pub retry_after: Option<Duration>,
    /// Why there was no answer: the target was refused, the request timed out, the connection
    /// was refused or reset, TLS failed. A short message for the attempt record.
    pub error: Option<String>,
}

impl AttemptResult {
    /// An attempt that got no answer, for the reason given.
    pub fn failed(error: impl Into<String>) -> Self {
        Self {
            status_code: None,
            response: String::new(),
            delivered: false,
            retry_after: None,
            error: Some(error.into()),
        }
    }

    /// What the attempt record shows as the answer: its body, or why there was none.
    pub fn shown_response(&self) -> Option<String> {
        match (&self.error, self.status_code) {
            (Some(error), None) => Some(error.clone()),
            _ => Some(self.response.clone()),
        }
    }
}

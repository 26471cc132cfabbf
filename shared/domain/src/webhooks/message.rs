//! Messages (recorded events), their deliveries to each subscription and every attempt.

use crate::ids::{AttemptId, MessageId, OrganizationId, SubscriptionId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// An event as the message log keeps it (30 days).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    pub organization_id: OrganizationId,
    pub event_type: String,
    pub payload: Map<String, Value>,
    pub timestamp: DateTime<Utc>,
}

impl From<super::Event> for Message {
    fn from(event: super::Event) -> Self {
        Self {
            id: event.id,
            organization_id: event.organization_id,
            event_type: event.event_type.as_str().to_owned(),
            payload: event.payload,
            timestamp: event.timestamp,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AttemptStatus {
    Success,
    Pending,
    Failed,
}

/// One POST of a message to a subscription's URL, and what came back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveryAttempt {
    pub id: AttemptId,
    pub message_id: MessageId,
    /// The subscription's id.
    pub endpoint_id: SubscriptionId,
    /// The first 1 KB of the answer's body, or why there was no answer.
    pub response: Option<String>,
    /// 0 when there was no answer (a timeout, a refused connection or target).
    pub response_status_code: u16,
    pub status: AttemptStatus,
    pub timestamp: DateTime<Utc>,
    pub url: String,
}

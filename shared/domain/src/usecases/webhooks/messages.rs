//! `/webhooks/messages`: the events recorded for the organization (30 days), newest first, and
//! each one's delivery attempts.

use crate::error::{DomainError, FieldError};
use crate::ids::{MessageId, OrganizationId};
use crate::page::{Page, PageRequest};
use crate::usecases::{list_error, Platform};
use crate::webhooks::event::is_known_event_type;
use crate::webhooks::{DeliveryAttempt, Message};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

/// A message as the API shows it (Airweave's `WebhookMessage`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MessageView {
    pub id: MessageId,
    pub event_type: String,
    /// The event, exactly as delivered.
    #[schema(value_type = Object)]
    pub payload: Map<String, Value>,
    pub timestamp: DateTime<Utc>,
    /// The event type.
    pub channels: Vec<String>,
    pub tags: Vec<String>,
    /// Newest first; with `include_attempts=true` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_attempts: Option<Vec<DeliveryAttempt>>,
}

impl From<Message> for MessageView {
    fn from(message: Message) -> Self {
        Self {
            id: message.id,
            channels: vec![message.event_type.clone()],
            event_type: message.event_type,
            payload: message.payload,
            timestamp: message.timestamp,
            tags: Vec::new(),
            delivery_attempts: None,
        }
    }
}

pub async fn list_messages(
    platform: &Platform,
    org: OrganizationId,
    event_types: &[String],
    page: &PageRequest,
) -> Result<Page<MessageView>, DomainError> {
    if let Some(unknown) = event_types.iter().find(|t| !is_known_event_type(t)) {
        return Err(DomainError::invalid(vec![FieldError::new(
            "event_types",
            format!("{unknown:?} is not an event type"),
        )]));
    }
    let found = platform
        .webhooks
        .list_messages(org, event_types, page)
        .await
        .map_err(list_error)?;
    Ok(found.map(MessageView::from))
}

pub async fn get_message(
    platform: &Platform,
    org: OrganizationId,
    id: &str,
    include_attempts: bool,
) -> Result<MessageView, DomainError> {
    let not_found = || DomainError::NotFound(format!("webhook message '{id}' not found"));
    let mid: MessageId = id.parse().map_err(|_| not_found())?;
    let message = platform
        .webhooks
        .get_message(org, mid)
        .await
        .map_err(DomainError::internal)?
        .ok_or_else(not_found)?;
    let mut view = MessageView::from(message);
    if include_attempts {
        view.delivery_attempts = Some(
            platform
                .webhooks
                .message_attempts(org, mid)
                .await
                .map_err(DomainError::internal)?,
        );
    }
    Ok(view)
}

//! The domain's error type. One function in the HTTP layer maps it to a status and problem+json.

use std::time::Duration;

/// One invalid input field: the dotted path of the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The value, or its error recorded against `field`.
pub(crate) fn ok_or_record<T>(
    errors: &mut Vec<FieldError>,
    field: &str,
    parsed: Result<T, String>,
) -> Option<T> {
    parsed
        .map_err(|m| errors.push(FieldError::new(field, m)))
        .ok()
}

/// Everything a use case can answer other than success.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// Malformed input (422), with every offending field.
    #[error("{detail}")]
    Invalid {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// Unknown, or belonging to another organization (404).
    #[error("{0}")]
    NotFound(String),
    /// A method the source does not support, or a request the current state forbids (400).
    #[error("{0}")]
    BadRequest(String),
    /// A conflicting write (409).
    #[error("{0}")]
    Conflict(String),
    /// What was asked for is no longer kept (410), e.g. a change feed cursor older than the
    /// deletion records' retention.
    #[error("{0}")]
    Gone(String),
    /// No or an unknown API key (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The upstream API rate-limited the credential check (429).
    #[error("{source_name} rate-limited the credential check")]
    UpstreamRateLimited {
        source_name: String,
        retry_after: Option<Duration>,
    },
    /// The upstream API failed during validation (502).
    #[error("{0}")]
    UpstreamFailed(String),
    /// Our own fault: the cause chain goes to the log, never to the caller (500).
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl DomainError {
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        Self::Invalid { detail, errors }
    }

    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::invalid(vec![FieldError::new(field, message)])
    }

    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(e))
    }
}

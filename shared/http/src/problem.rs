//! RFC 9457 problem details. The one place where domain errors become statuses.

use domain::{DomainError, FieldError};
use http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use serde::Serialize;
use wiring::telemetry::chain;

pub const CONTENT_TYPE: &str = "application/problem+json";

/// A problem response body: `type, title, status, detail`, the request id, and for 422 the
/// offending fields. `detail` is always a string (Airweave's SDKs parse it as one).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Always `about:blank`: the status and title say what happened.
    #[serde(rename = "type", serialize_with = "about_blank")]
    #[schema(value_type = String, example = "about:blank")]
    kind: (),
    pub(crate) title: &'static str,
    pub(crate) status: u16,
    pub(crate) detail: String,
    pub(crate) request_id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) errors: Vec<FieldError>,
    #[serde(skip)]
    pub(crate) retry_after: Option<u32>,
}

fn about_blank<S: serde::Serializer>(_: &(), s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("about:blank")
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>, request_id: &str) -> Self {
        Self {
            kind: (),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: detail.into(),
            request_id: request_id.to_owned(),
            errors: Vec::new(),
            retry_after: None,
        }
    }

    pub fn invalid(errors: Vec<FieldError>, request_id: &str) -> Self {
        Self::from_domain(DomainError::invalid(errors), request_id)
    }

    /// Maps a domain error; a 500 is logged with its cause chain and answers only the id.
    pub fn from_domain(err: DomainError, request_id: &str) -> Self {
        match err {
            DomainError::Invalid { detail, errors } => Self {
                errors,
                ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail, request_id)
            },
            DomainError::NotFound(m) => Self::new(StatusCode::NOT_FOUND, m, request_id),
            DomainError::BadRequest(m) => Self::new(StatusCode::BAD_REQUEST, m, request_id),
            DomainError::Conflict(m) => Self::new(StatusCode::CONFLICT, m, request_id),
            DomainError::Gone(m) => Self::new(StatusCode::GONE, m, request_id),
            DomainError::Unauthorized(m) => Self::new(StatusCode::UNAUTHORIZED, m, request_id),
            DomainError::UpstreamRateLimited {
                source_name,
                retry_after,
            } => Self {
                retry_after: retry_after.map(|d| d.as_secs().clamp(1, u64::from(u32::MAX)) as u32),
                ..Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("{source_name} rate-limited the credential check; retry later"),
                    request_id,
                )
            },
            DomainError::UpstreamFailed(m) => Self::new(StatusCode::BAD_GATEWAY, m, request_id),
            DomainError::Internal(cause) => {
                tracing::error!(request_id, error = %chain(cause.as_ref()), "internal error");
                Self::internal(request_id)
            }
        }
    }

    pub fn internal(request_id: &str) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error; quote request id {request_id} when reporting it"),
            request_id,
        )
    }

    pub fn into_response(self) -> Response<Body> {
        let body = serde_json::to_string(&self).expect("a problem always serializes");
        let mut response = Response::builder()
            .status(self.status)
            .header(header::CONTENT_TYPE, CONTENT_TYPE)
            .header("x-request-id", self.request_id.as_str())
            .body(Body::Text(body))
            .expect("valid problem response");
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

//! Turning SDK failures into the ports' errors. The SDK error itself becomes the `source`, so the
//! log shows its whole chain (`DisplayErrorContext`) while messages stay free of payloads.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use domain::ports::BoxError;

/// Something the adapter could not make sense of, or gave up on; never carries a payload.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct AdapterError(pub String);

pub(crate) fn boxed(e: impl std::error::Error + Send + Sync + 'static) -> BoxError {
    Box::new(e)
}

pub(crate) fn adapter(message: impl Into<String>) -> BoxError {
    Box::new(AdapterError(message.into()))
}

/// The error code the service answered with, if it answered at all.
pub(crate) fn service_code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    e.as_service_error().and_then(ProvideErrorMetadata::code)
}

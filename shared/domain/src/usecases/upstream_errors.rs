//! How the API answers an upstream that refused or failed while it was asked to check
//! credentials: a source's credential check, or an auth provider.

use crate::auth_provider::{ProviderError, ProviderKind};
use crate::catalog::SourceSpec;
use crate::error::DomainError;
use crate::ports::CheckError;

/// A failed upstream credential check, as the API answers it.
pub(crate) fn credential_check_failed(spec: &SourceSpec, e: CheckError) -> DomainError {
    match e {
        CheckError::Rejected(m) => {
            DomainError::BadRequest(format!("{} rejected the credentials: {m}", spec.name))
        }
        CheckError::RateLimited { retry_after } => DomainError::UpstreamRateLimited {
            source_name: spec.name.to_owned(),
            retry_after,
        },
        CheckError::Unavailable(m) => DomainError::UpstreamFailed(format!(
            "{} could not check the credentials: {m}",
            spec.name
        )),
    }
}

/// A provider failure, as the API answers it.
pub(crate) fn auth_provider_failed(kind: ProviderKind, e: ProviderError) -> DomainError {
    let name = kind.display_name();
    match e {
        ProviderError::CredentialsRejected(m)
        | ProviderError::AccountGone(m)
        | ProviderError::WrongApp(m)
        | ProviderError::CredentialsUnusable(m) => DomainError::BadRequest(m),
        ProviderError::RateLimited { retry_after } => DomainError::UpstreamRateLimited {
            source_name: name.to_owned(),
            retry_after,
        },
        ProviderError::Unavailable(m) => DomainError::UpstreamFailed(format!("{name}: {m}")),
    }
}

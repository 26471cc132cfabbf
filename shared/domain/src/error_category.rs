//! Why a connection needs re-authentication: the category a failed job and its connection carry
//! (DESIGN section 4).

use crate::catalog::AuthMethod;
use serde::{Deserialize, Serialize};

/// Why a connection needs re-authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCategory {
    OauthCredentialsExpired,
    ApiKeyInvalid,
    AuthProviderAccountGone,
    AuthProviderCredentialsInvalid,
}

impl ErrorCategory {
    /// Why a connection whose credentials the source refused needs re-authentication, by how
    /// it authenticates.
    pub fn of_rejected(method: AuthMethod) -> Self {
        match method {
            AuthMethod::Direct => Self::ApiKeyInvalid,
            AuthMethod::AuthProvider => Self::AuthProviderCredentialsInvalid,
            _ => Self::OauthCredentialsExpired,
        }
    }
}

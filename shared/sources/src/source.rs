//! What every connector provides to the platform.

use async_trait::async_trait;
use domain::auth::AuthenticationRequest;
use domain::catalog::SourceSpec;
use domain::ports::CheckError;
use serde_json::{Map, Value};

/// One external source type (GitHub, the synthetic stub, …).
///
/// A source is built once per cold start with its operator-configured base URL and the shared
/// HTTP client, and is then used concurrently by every request, hence `Send + Sync`.
///
/// # Entity stream (added with sync)
///
/// The sync worker will need a third capability here: given the resolved credentials, the
/// validated config and an optional cursor, produce the source's entities page by page, with
/// the cursor to resume from after each page (DESIGN section 8). It lands with the sync issue,
/// together with the entity and cursor types it needs; until then a source is only a catalog
/// entry and a credential check.
#[async_trait]
pub trait Source: Send + Sync {
    /// The catalog entry: names, auth methods, auth and config field schemas, entity types.
    fn spec(&self) -> &SourceSpec;

    /// The source's cheapest "who am I" call with these credentials.
    ///
    /// `auth` and `config` were already validated against [`Source::spec`]'s field schemas and
    /// supported auth methods by the create use case. Implementations never put a secret in an
    /// error message or a log line.
    async fn check_credentials(
        &self,
        auth: &AuthenticationRequest,
        config: &Map<String, Value>,
    ) -> Result<(), CheckError>;
}

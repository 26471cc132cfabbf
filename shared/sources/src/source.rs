//! What every connector provides to the platform.

use async_trait::async_trait;
use domain::auth::AuthenticationRequest;
use domain::catalog::SourceSpec;
use domain::ports::CheckError;
use domain::stream::{EntityStream, StreamError, StreamRequest};
use serde_json::{Map, Value};

/// One external source type (GitHub, the synthetic stub, …).
///
/// A source is built once per cold start with its operator-configured base URL and the shared
/// HTTP client, and is then used concurrently by every request, hence `Send + Sync`.
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

    /// The source's entities for one run, pulled page by page by the worker (DESIGN section 8).
    /// Opening does no I/O; the first page does. A stream owns what it needs (credentials,
    /// config, the shared client), never sleeps, and never holds more than a page.
    fn open_stream(&self, request: StreamRequest) -> Result<Box<dyn EntityStream>, StreamError>;
}

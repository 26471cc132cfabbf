//! The sources a connection can pull from: the [`Source`] trait every connector implements, the
//! [`Catalog`] that holds them (the domain's `SourceDirectory`), and one module per source.
//!
//! Every upstream base URL comes from operator configuration (`SOURCE_<SHORT_NAME>_BASE_URL`),
//! which is how tests point a source at a fake server on 127.0.0.1.

mod auth;
mod base_url;
mod budget;
mod catalog;
mod github;
mod google_drive;
mod linear;
mod listing;
mod notion;
mod slack;
mod source;
mod stub;
mod upstream;

#[cfg(test)]
mod testing;

pub use auth::{OAuthTokens, ProviderClients};
pub use base_url::BaseUrl;
pub use catalog::{env_var, Catalog, CatalogError};
pub use github::{check_branch, check_repo_name, GitHubSource};
pub use google_drive::GoogleDriveSource;
pub use linear::LinearSource;
pub use notion::NotionSource;
pub use slack::SlackSource;
pub use source::Source;
pub use stub::{StubConfig, StubFailure, StubSource, STUB_PAGE_SIZE, STUB_RATE_LIMIT_WAIT};
pub use upstream::{http_client, REQUEST_TIMEOUT};

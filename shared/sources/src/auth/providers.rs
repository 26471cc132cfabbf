//! The external auth providers' APIs as the domain's [`AuthProviders`] port: whether an
//! organization's provider credentials are good, and the fresh credentials of one connected
//! account, checked to be alive and to belong to the source's app. Each provider's API is its
//! own module ([`super::composio`], [`super::pipedream`]); what they share is
//! [`super::accounts`].
//!
//! No error and no log line holds a key, a secret, a token or a provider's answer: at most an
//! HTTP status, an account id, and an account status or app slug when it looks like one.

use super::composio::{Composio, COMPOSIO_DEFAULT_BASE_URL};
use super::pipedream::{Pipedream, PIPEDREAM_DEFAULT_BASE_URL};
use crate::base_url::BaseUrl;
use crate::catalog::{configured_url, CatalogError};
use crate::upstream::http_client;
use async_trait::async_trait;
use domain::auth::AuthenticationRequest;
use domain::auth_provider::{AccountRef, ProviderCredentials, ProviderError, ProviderKind};
use domain::catalog::SourceSpec;
use domain::ports::AuthProviders;
use std::fmt;

/// Composio and Pipedream over the shared HTTP client; cheap to clone (clones share the token
/// cache), built once per cold start.
#[derive(Clone)]
pub struct ProviderClients {
    composio: Composio,
    pipedream: Pipedream,
}

impl fmt::Debug for ProviderClients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderClients")
            .field("composio", &self.composio.base)
            .field("pipedream", &self.pipedream.base)
            .finish_non_exhaustive()
    }
}

impl ProviderClients {
    /// `client` must never follow redirects ([`crate::http_client`] does not).
    pub fn new(client: reqwest::Client, composio: BaseUrl, pipedream: BaseUrl) -> Self {
        Self {
            composio: Composio::new(client.clone(), composio),
            pipedream: Pipedream::new(client, pipedream),
        }
    }

    /// From the process environment: `AUTH_PROVIDER_<KIND>_BASE_URL` overrides a provider's
    /// API (unset or empty means its public one).
    pub fn from_env() -> Result<Self, CatalogError> {
        Self::from_lookup(crate::catalog::env_var)
    }

    /// As [`ProviderClients::from_env`], reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, CatalogError> {
        Self::from_lookup_with(http_client().map_err(CatalogError::HttpClient)?, lookup)
    }

    /// As [`ProviderClients::from_lookup`], on a client the process already built.
    pub fn from_lookup_with(
        client: reqwest::Client,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, CatalogError> {
        let url = |kind: ProviderKind, default: &str| {
            configured_url(&lookup, Self::base_url_variable(kind), default)
        };
        let composio = url(ProviderKind::Composio, COMPOSIO_DEFAULT_BASE_URL)?;
        let pipedream = url(ProviderKind::Pipedream, PIPEDREAM_DEFAULT_BASE_URL)?;
        Ok(Self::new(client, composio, pipedream))
    }

    /// `AUTH_PROVIDER_COMPOSIO_BASE_URL` for Composio.
    pub fn base_url_variable(kind: ProviderKind) -> String {
        format!(
            "AUTH_PROVIDER_{}_BASE_URL",
            kind.short_name().to_ascii_uppercase()
        )
    }
}

#[async_trait]
impl AuthProviders for ProviderClients {
    async fn verify(&self, credentials: &ProviderCredentials) -> Result<(), ProviderError> {
        match credentials {
            ProviderCredentials::Composio { api_key } => self.composio.verify(api_key).await,
            // Always a new token: a check says what the provider thinks now.
            ProviderCredentials::Pipedream {
                client_id,
                client_secret,
                ..
            } => self
                .pipedream
                .token(client_id, client_secret, false)
                .await
                .map(|_| ()),
        }
    }

    async fn fetch(
        &self,
        credentials: &ProviderCredentials,
        source: &SourceSpec,
        account: &AccountRef,
    ) -> Result<AuthenticationRequest, ProviderError> {
        match credentials {
            ProviderCredentials::Composio { api_key } => {
                self.composio.fetch(api_key, source, account).await
            }
            ProviderCredentials::Pipedream {
                client_id,
                client_secret,
                project_id,
                environment,
            } => {
                self.pipedream
                    .fetch(
                        client_id,
                        client_secret,
                        project_id,
                        environment,
                        source,
                        account,
                    )
                    .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_come_from_the_environment_and_are_checked() {
        let clients = ProviderClients::from_lookup(|name| {
            (name == "AUTH_PROVIDER_PIPEDREAM_BASE_URL").then(|| "http://127.0.0.1:4800".into())
        })
        .unwrap();
        assert_eq!(
            clients.composio.base.as_str(),
            "https://backend.composio.dev/"
        );
        assert_eq!(clients.pipedream.base.as_str(), "http://127.0.0.1:4800/");
        let err = ProviderClients::from_lookup(|name| {
            (name == "AUTH_PROVIDER_COMPOSIO_BASE_URL").then(|| "http://composio.internal".into())
        })
        .unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("AUTH_PROVIDER_COMPOSIO_BASE_URL "),
            "{message}"
        );
        assert!(!message.contains("composio.internal"), "{message}");
    }
}

//! The credential vault: one Secrets Manager secret per connection, named
//! `{prefix}/connections/{org}/{id}`. Secret values never reach an error or a log line.
//!
//! A connection's secret is created once (its first version's id is the create's request
//! token); later values are staged under the `STAGED` label and promoted to `AWSCURRENT` by
//! `UpdateSecretVersionStage`, which refuses unless the version it moves the label from still
//! holds it. The current value is always read by its label.

use crate::clients::Deferred;
use crate::error::{boxed, service_code};
use async_trait::async_trait;
use aws_sdk_secretsmanager::error::SdkError;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType};
use aws_sdk_secretsmanager::Client;
use chrono::DateTime;
use domain::ids::{ConnectionId, OrganizationId};
use domain::names::ReadableId;
use domain::oauth::OAuthApp;
use domain::ports::{
    CredentialVault, SecretEntry, SecretVersion, SecretsPage, VaultError, VersionedSecret,
};
use secrecy::{ExposeSecret, SecretString};

#[derive(Debug, Clone)]
pub struct SecretsVault {
    client: Deferred<Client>,
    prefix: String,
    /// Subscriptions' secrets read recently (they never change; see `webhooks::secrets`).
    pub(crate) webhook_secrets: crate::webhooks::SecretCache,
}

impl SecretsVault {
    /// `prefix` names this deployment's secrets, e.g. `connectors-prod`.
    pub fn new(client: impl Into<Deferred<Client>>, prefix: impl Into<String>) -> Self {
        let prefix: String = prefix.into();
        Self {
            client: client.into(),
            prefix: prefix.trim_end_matches('/').to_owned(),
            webhook_secrets: Default::default(),
        }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    pub fn connection_secret_name(&self, org: OrganizationId, id: ConnectionId) -> String {
        format!("{}/connections/{org}/{id}", self.prefix)
    }

    pub fn oauth_app_secret_name(&self, short_name: &str) -> String {
        format!("{}/oauth-apps/{short_name}", self.prefix)
    }

    pub fn provider_secret_name(&self, org: OrganizationId, readable_id: &ReadableId) -> String {
        format!("{}/auth-providers/{org}/{readable_id}", self.prefix)
    }

    /// The current value of a secret, `None` when there is no such secret.
    pub(crate) async fn read(&self, name: &str) -> Result<Option<SecretString>, VaultError> {
        let result = self.client.get_secret_value().secret_id(name).send().await;
        match result {
            Ok(out) => Ok(out.secret_string.map(SecretString::from)),
            Err(e) if service_code(&e) == Some(RESOURCE_NOT_FOUND) => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }

    /// Deletes a secret at once; a missing one is no error.
    pub(crate) async fn remove(&self, name: &str) -> Result<(), VaultError> {
        let result = self
            .client
            .delete_secret()
            .secret_id(name)
            .force_delete_without_recovery(true)
            .send()
            .await;
        match result {
            Err(e) if service_code(&e) != Some(RESOURCE_NOT_FOUND) => Err(backend(e)),
            _ => Ok(()),
        }
    }
}

pub(crate) fn backend<E, R>(e: SdkError<E, R>) -> VaultError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    VaultError::Backend(boxed(e))
}

const RESOURCE_EXISTS: &str = "ResourceExistsException";
const RESOURCE_NOT_FOUND: &str = "ResourceNotFoundException";
/// Also what a secret being deleted answers.
const INVALID_REQUEST: &str = "InvalidRequestException";
const INVALID_PARAMETER: &str = "InvalidParameterException";
/// The label of the current version.
const CURRENT: &str = "AWSCURRENT";
/// The label of a version written but not promoted yet (it moves to each newer staged version;
/// a version without labels is kept at least 24 hours).
const STAGED: &str = "STAGED";

/// Whether the secret is gone: deleted, or being deleted.
fn is_gone<E, R>(e: &SdkError<E, R>) -> bool
where
    E: aws_sdk_secretsmanager::error::ProvideErrorMetadata,
{
    matches!(service_code(e), Some(RESOURCE_NOT_FOUND | INVALID_REQUEST))
}

#[async_trait]
impl CredentialVault for SecretsVault {
    async fn put_connection_secret(
        &self,
        org: OrganizationId,
        id: ConnectionId,
        value: &SecretString,
        request_token: &str,
    ) -> Result<(), VaultError> {
        VaultError::check_size(value.expose_secret())?;
        let name = self.connection_secret_name(org, id);
        let created = self
            .client
            .create_secret()
            .name(&name)
            .secret_string(value.expose_secret())
            .client_request_token(request_token)
            .send()
            .await;
        match created {
            Ok(_) => return Ok(()),
            Err(e) if service_code(&e) == Some(RESOURCE_EXISTS) => {}
            Err(e) => return Err(backend(e)),
        }
        // The secret exists: a retry of the same request finds its own version, with its value.
        let version = self
            .client
            .get_secret_value()
            .secret_id(&name)
            .version_id(request_token)
            .send()
            .await;
        match version {
            Ok(out) if out.secret_string() == Some(value.expose_secret()) => Ok(()),
            Ok(_) => Err(VaultError::TokenReused),
            // No version of this token: another request wrote this secret.
            Err(e) if service_code(&e) == Some(RESOURCE_NOT_FOUND) => Err(VaultError::TokenReused),
            Err(e) => Err(backend(e)),
        }
    }

    async fn get_connection_secret(
        &self,
        org: OrganizationId,
        id: ConnectionId,
    ) -> Result<Option<VersionedSecret>, VaultError> {
        let result = self
            .client
            .get_secret_value()
            .secret_id(self.connection_secret_name(org, id))
            .version_stage(CURRENT)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out
                .secret_string
                .zip(out.version_id)
                .map(|(value, version)| VersionedSecret {
                    value: SecretString::from(value),
                    version: SecretVersion::new(version),
                })),
            Err(e) if service_code(&e) == Some(RESOURCE_NOT_FOUND) => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }

    async fn get_connection_secret_version(
        &self,
        org: OrganizationId,
        id: ConnectionId,
        version: &SecretVersion,
    ) -> Result<Option<SecretString>, VaultError> {
        let result = self
            .client
            .get_secret_value()
            .secret_id(self.connection_secret_name(org, id))
            .version_id(version.as_str())
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.secret_string.map(SecretString::from)),
            Err(e) if service_code(&e) == Some(RESOURCE_NOT_FOUND) => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }

    async fn stage_connection_secret(
        &self,
        org: OrganizationId,
        id: ConnectionId,
        value: &SecretString,
    ) -> Result<SecretVersion, VaultError> {
        VaultError::check_size(value.expose_secret())?;
        let version = uuid::Uuid::new_v4().to_string();
        // A version under our own label: PutSecretValue without one would make it current.
        let put = self
            .client
            .put_secret_value()
            .secret_id(self.connection_secret_name(org, id))
            .secret_string(value.expose_secret())
            .client_request_token(&version)
            .version_stages(STAGED)
            .send()
            .await;
        match put {
            Ok(_) => Ok(SecretVersion::new(version)),
            Err(e) if is_gone(&e) => Err(VaultError::Missing),
            Err(e) => Err(backend(e)),
        }
    }

    async fn current_connection_secret_version(
        &self,
        org: OrganizationId,
        id: ConnectionId,
    ) -> Result<Option<SecretVersion>, VaultError> {
        let result = self
            .client
            .describe_secret()
            .secret_id(self.connection_secret_name(org, id))
            .send()
            .await;
        match result {
            Ok(out) => Ok(out
                .version_ids_to_stages
                .unwrap_or_default()
                .into_iter()
                .find(|(_, stages)| stages.iter().any(|s| s == CURRENT))
                .map(|(version, _)| SecretVersion::new(version))),
            Err(e) if service_code(&e) == Some(RESOURCE_NOT_FOUND) => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }

    async fn promote_connection_secret(
        &self,
        org: OrganizationId,
        id: ConnectionId,
        from: &SecretVersion,
        to: &SecretVersion,
    ) -> Result<bool, VaultError> {
        // Secrets Manager refuses the move unless `from` holds the label: a compare-and-swap.
        let result = self
            .client
            .update_secret_version_stage()
            .secret_id(self.connection_secret_name(org, id))
            .version_stage(CURRENT)
            .remove_from_version_id(from.as_str())
            .move_to_version_id(to.as_str())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if service_code(&e) == Some(INVALID_PARAMETER) => Ok(false),
            Err(e) if is_gone(&e) => Err(VaultError::Missing),
            Err(e) => Err(backend(e)),
        }
    }

    async fn delete_connection_secret(
        &self,
        org: OrganizationId,
        id: ConnectionId,
    ) -> Result<(), VaultError> {
        self.remove(&self.connection_secret_name(org, id)).await
    }

    async fn get_oauth_app(&self, short_name: &str) -> Result<Option<OAuthApp>, VaultError> {
        Ok(self
            .read(&self.oauth_app_secret_name(short_name))
            .await?
            .and_then(|doc| OAuthApp::from_document(&doc)))
    }

    async fn put_oauth_app(&self, short_name: &str, app: &OAuthApp) -> Result<(), VaultError> {
        let name = self.oauth_app_secret_name(short_name);
        let document = app.document();
        VaultError::check_size(document.expose_secret())?;
        let put = self
            .client
            .put_secret_value()
            .secret_id(&name)
            .secret_string(document.expose_secret())
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            Err(e) if service_code(&e) == Some(RESOURCE_NOT_FOUND) => self
                .client
                .create_secret()
                .name(&name)
                .secret_string(document.expose_secret())
                .send()
                .await
                .map(|_| ())
                .map_err(backend),
            Err(e) => Err(backend(e)),
        }
    }

    async fn get_provider_secret(
        &self,
        org: OrganizationId,
        readable_id: &ReadableId,
    ) -> Result<Option<SecretString>, VaultError> {
        self.read(&self.provider_secret_name(org, readable_id))
            .await
    }

    async fn put_provider_secret(
        &self,
        org: OrganizationId,
        readable_id: &ReadableId,
        value: &SecretString,
    ) -> Result<(), VaultError> {
        VaultError::check_size(value.expose_secret())?;
        let name = self.provider_secret_name(org, readable_id);
        let created = self
            .client
            .create_secret()
            .name(&name)
            .secret_string(value.expose_secret())
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            // A retry with the same credentials finds them; other credentials are refused.
            Err(e) if service_code(&e) == Some(RESOURCE_EXISTS) => match self.read(&name).await? {
                Some(stored) if stored.expose_secret() == value.expose_secret() => Ok(()),
                _ => Err(VaultError::TokenReused),
            },
            Err(e) => Err(backend(e)),
        }
    }

    async fn delete_provider_secret(
        &self,
        org: OrganizationId,
        readable_id: &ReadableId,
    ) -> Result<(), VaultError> {
        self.remove(&self.provider_secret_name(org, readable_id))
            .await
    }

    async fn list_connection_secrets(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<SecretsPage, VaultError> {
        self.list_under("connections", after, limit).await
    }
}

impl SecretsVault {
    /// One page of the secrets named `{prefix}/{kind}/{org}/{id}`; names of another shape are
    /// left out.
    pub(crate) async fn list_under<I: std::str::FromStr>(
        &self,
        kind: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<SecretsPage<I>, VaultError> {
        let prefix = format!("{}/{kind}/", self.prefix);
        let filter = Filter::builder()
            .key(FilterNameStringType::Name)
            .values(&prefix)
            .build();
        let out = self
            .client
            .list_secrets()
            .filters(filter)
            .max_results(limit.clamp(1, 100) as i32)
            .set_next_token(after.map(str::to_owned))
            .send()
            .await
            .map_err(backend)?;
        let secrets = out
            .secret_list()
            .iter()
            .filter_map(|entry| {
                let rest = entry.name()?.strip_prefix(&prefix)?;
                let (org, id) = rest.split_once('/')?;
                let created = entry.created_date()?;
                Some(SecretEntry {
                    organization_id: org.parse().ok()?,
                    id: id.parse().ok()?,
                    created_at: DateTime::from_timestamp(created.secs(), created.subsec_nanos())?,
                })
            })
            .collect();
        Ok(SecretsPage {
            secrets,
            next: out.next_token.filter(|t| !t.is_empty()),
        })
    }
}

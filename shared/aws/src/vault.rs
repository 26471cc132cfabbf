//! The credential vault: one Secrets Manager secret per connection, named
//! `{prefix}/connections/{org}/{id}`. Secret values never reach an error or a log line.

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
use domain::ports::{CredentialVault, SecretEntry, SecretsPage, VaultError};
use secrecy::{ExposeSecret, SecretString};

#[derive(Debug, Clone)]
pub struct SecretsVault {
    client: Deferred<Client>,
    prefix: String,
}

impl SecretsVault {
    /// `prefix` names this deployment's secrets, e.g. `connectors-prod`.
    pub fn new(client: impl Into<Deferred<Client>>, prefix: impl Into<String>) -> Self {
        let prefix: String = prefix.into();
        Self {
            client: client.into(),
            prefix: prefix.trim_end_matches('/').to_owned(),
        }
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
    async fn read(&self, name: &str) -> Result<Option<SecretString>, VaultError> {
        let result = self.client.get_secret_value().secret_id(name).send().await;
        match result {
            Ok(out) => Ok(out.secret_string.map(SecretString::from)),
            Err(e) if service_code(&e) == Some(RESOURCE_NOT_FOUND) => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }

    /// Deletes a secret at once; a missing one is no error.
    async fn remove(&self, name: &str) -> Result<(), VaultError> {
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

fn backend<E, R>(e: SdkError<E, R>) -> VaultError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    VaultError::Backend(boxed(e))
}

const RESOURCE_EXISTS: &str = "ResourceExistsException";
const RESOURCE_NOT_FOUND: &str = "ResourceNotFoundException";

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
    ) -> Result<Option<SecretString>, VaultError> {
        self.read(&self.connection_secret_name(org, id)).await
    }

    async fn replace_connection_secret(
        &self,
        org: OrganizationId,
        id: ConnectionId,
        value: &SecretString,
    ) -> Result<(), VaultError> {
        VaultError::check_size(value.expose_secret())?;
        let name = self.connection_secret_name(org, id);
        let put = self
            .client
            .put_secret_value()
            .secret_id(&name)
            .secret_string(value.expose_secret())
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            Err(e) if service_code(&e) == Some(RESOURCE_NOT_FOUND) => {
                let token = uuid::Uuid::new_v4().to_string();
                self.put_connection_secret(org, id, value, &token).await
            }
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
        let prefix = format!("{}/connections/", self.prefix);
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
                    connection_id: id.parse().ok()?,
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

//! The credential vault: one Secrets Manager secret per connection, named
//! `{prefix}/connections/{org}/{id}`. Secret values never reach an error or a log line.

use crate::error::{boxed, service_code};
use async_trait::async_trait;
use aws_sdk_secretsmanager::error::SdkError;
use aws_sdk_secretsmanager::Client;
use domain::ids::{ConnectionId, OrganizationId};
use domain::ports::{CredentialVault, VaultError};
use secrecy::{ExposeSecret, SecretString};

#[derive(Debug, Clone)]
pub struct SecretsVault {
    client: Client,
    prefix: String,
}

impl SecretsVault {
    /// `prefix` names this deployment's secrets, e.g. `connectors-prod`.
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        let prefix: String = prefix.into();
        Self {
            client,
            prefix: prefix.trim_end_matches('/').to_owned(),
        }
    }

    pub fn connection_secret_name(&self, org: OrganizationId, id: ConnectionId) -> String {
        format!("{}/connections/{org}/{id}", self.prefix)
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
        let result = self
            .client
            .get_secret_value()
            .secret_id(self.connection_secret_name(org, id))
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.secret_string.map(SecretString::from)),
            Err(e) if service_code(&e) == Some(RESOURCE_NOT_FOUND) => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }

    async fn delete_connection_secret(
        &self,
        org: OrganizationId,
        id: ConnectionId,
    ) -> Result<(), VaultError> {
        let result = self
            .client
            .delete_secret()
            .secret_id(self.connection_secret_name(org, id))
            .force_delete_without_recovery(true)
            .send()
            .await;
        match result {
            Err(e) if service_code(&e) != Some(RESOURCE_NOT_FOUND) => Err(backend(e)),
            _ => Ok(()),
        }
    }
}

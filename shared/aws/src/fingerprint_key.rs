//! The idempotency fingerprint key in Secrets Manager, `{prefix}/idempotency-key`: created by
//! the template at deploy (and by the local bootstrap), read by the first keyed create of a
//! process and kept for the process's life, so a warm create asks Secrets Manager nothing.

use crate::clients::Deferred;
use crate::error::{boxed, service_code};
use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use domain::fingerprint::{FingerprintKey, FingerprintKeyError, Fingerprinter};
use secrecy::SecretString;
use std::sync::Arc;
use tokio::sync::OnceCell;

/// The secret's name under a deployment's prefix.
pub fn fingerprint_key_name(prefix: &str) -> String {
    format!("{}/idempotency-key", prefix.trim_end_matches('/'))
}

#[derive(Debug, Clone)]
pub struct SecretsFingerprintKey {
    client: Deferred<Client>,
    name: String,
    /// Filled by the first read that succeeds; a failed read is tried again by the next create.
    cached: Arc<OnceCell<Fingerprinter>>,
}

impl SecretsFingerprintKey {
    /// `prefix` names this deployment's secrets, as for the vault.
    pub fn new(client: impl Into<Deferred<Client>>, prefix: &str) -> Self {
        Self {
            client: client.into(),
            name: fingerprint_key_name(prefix),
            cached: Arc::default(),
        }
    }

    async fn read(&self) -> Result<Fingerprinter, FingerprintKeyError> {
        let result = self
            .client
            .get_secret_value()
            .secret_id(&self.name)
            .send()
            .await;
        match result {
            Ok(out) => match out.secret_string {
                Some(value) => Fingerprinter::new(&SecretString::from(value)),
                // A binary secret is not one we wrote.
                None => Err(FingerprintKeyError::Missing(self.name.clone())),
            },
            Err(e) if service_code(&e) == Some("ResourceNotFoundException") => {
                Err(FingerprintKeyError::Missing(self.name.clone()))
            }
            Err(e) => Err(FingerprintKeyError::Backend(boxed(e))),
        }
    }
}

#[async_trait]
impl FingerprintKey for SecretsFingerprintKey {
    async fn fingerprinter(&self) -> Result<Fingerprinter, FingerprintKeyError> {
        // Concurrent first creates wait for one read instead of each making their own.
        self.cached.get_or_try_init(|| self.read()).await.cloned()
    }
}

//! API keys and organizations. Keys are stored only as SHA-256 hashes.

use crate::ids::OrganizationId;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The hex SHA-256 of an API key: what the store keeps and looks up.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApiKeyHash(String);

impl ApiKeyHash {
    pub fn of(key: &SecretString) -> Self {
        Self(hex::encode(Sha256::digest(key.expose_secret().as_bytes())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new API key: 32 random bytes, hex, with a recognizable prefix. Shown once, stored hashed.
pub fn api_key_from_random(bytes: [u8; 32]) -> SecretString {
    SecretString::from(format!("sc_{}", hex::encode(bytes)))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Organization {
    pub id: OrganizationId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_sha256_hex_of_the_key() {
        let key = SecretString::from("abc".to_owned());
        assert_eq!(
            ApiKeyHash::of(&key).as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn generated_keys_differ_by_their_bytes() {
        let a = api_key_from_random([1; 32]);
        let b = api_key_from_random([2; 32]);
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert!(a.expose_secret().starts_with("sc_"));
        assert_eq!(a.expose_secret().len(), 3 + 64);
    }
}

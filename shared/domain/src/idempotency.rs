//! `Idempotency-Key` for creates: the same key and body within 24 h answers the first result;
//! the same key with another body is a 422; concurrent retries create one connection.

use crate::ids::{ConnectionId, JobId, OrganizationId};
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

/// How long a key is remembered.
pub const RETENTION: Duration = Duration::hours(24);
/// How long a request may hold a key before another delivery may take it over.
pub const LEASE: Duration = Duration::seconds(30);

/// A caller-chosen key: 1-255 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX: usize = 255;

    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > Self::MAX || !s.chars().all(|c| c.is_ascii_graphic()) {
            return Err(format!(
                "must be 1-{} printable ASCII characters without spaces",
                Self::MAX
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The SHA-256 of a request body's canonical JSON (object keys sorted), so that key order and
/// whitespace do not make two equal bodies differ.
pub fn fingerprint(body: &serde_json::Value) -> String {
    hex::encode(Sha256::digest(body.to_string().as_bytes()))
}

/// The ids a keyed create reserves up front, so that a retry after a crash re-uses them (and the
/// secret's request token) instead of creating a second connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub organization_id: OrganizationId,
    pub key: String,
    pub fingerprint: String,
    pub connection_id: ConnectionId,
    pub job_id: JobId,
    /// Fencing token: a new value every time a request takes the key.
    pub lease_token: String,
    pub lease_until: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What the store holds under a key.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyState {
    InProgress(Reservation),
    /// The stored 201 body of the first request.
    Completed {
        fingerprint: String,
        response: String,
    },
}

/// The answer to an attempt to take a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The key was free (or its holder's lease ran out): the caller owns it.
    Acquired(Reservation),
    /// Someone holds or has completed it.
    Held(KeyState),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_bounds() {
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("a").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
    }

    #[test]
    fn fingerprint_ignores_key_order() {
        let a: serde_json::Value = serde_json::from_str(r#"{"a":1,"b":{"c":2,"d":3}}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{"b":{"d":3,"c":2},"a":1}"#).unwrap();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&json!({"a": 2})));
    }
}

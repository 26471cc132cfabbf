//! `Idempotency-Key` for creates: the same key and body within 24 h answers the first result;
//! the same key with another body is a 422; concurrent retries create one connection. A record
//! tells bodies apart by their keyed fingerprint ([`crate::fingerprint`]), never by the body.

use crate::ids::{ConnectionId, JobId, OrganizationId};
use chrono::{DateTime, Duration, Utc};

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

/// A create sent with an `Idempotency-Key`: the key, and the body as it was sent, whose
/// keyed fingerprint ([`crate::fingerprint`]) the key's record keeps. No `Debug`: the body
/// holds credentials.
#[derive(Clone, Copy)]
pub struct KeyedRequest<'a> {
    pub key: &'a IdempotencyKey,
    pub body: &'a serde_json::Value,
}

/// The ids a keyed create reserves up front, so that a retry after a crash re-uses them (and the
/// secret's request token) instead of creating a second connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub organization_id: OrganizationId,
    pub key: String,
    /// The keyed fingerprint of the body that took the key.
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

    #[test]
    fn key_bounds() {
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("a").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
    }
}

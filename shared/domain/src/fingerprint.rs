//! The fingerprint of a keyed create's body, which its `Idempotency-Key` record keeps to tell a
//! retry (the same body) from the key's reuse (another body). The body carries credentials, and
//! some are guessable (a short API key): a plain hash of it would let anyone who can read the
//! table test guesses offline. So the fingerprint is an HMAC-SHA256 under the platform's
//! fingerprint key, a server-side secret: without that key the stored value says nothing about
//! the body. There is no unkeyed fingerprint: the only way to one is a [`Fingerprinter`], and
//! the only way to that is the key.

use crate::ports::BoxError;
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use std::fmt;

/// The fewest bytes a fingerprint key may have: the size of HMAC-SHA256's output (RFC 2104
/// §3). The bootstrap writes 64 hex characters, the template 64 random letters and digits.
pub const MIN_KEY_BYTES: usize = 32;

/// Fingerprints bodies under one key. Cheap to clone; `Debug` never shows the key.
#[derive(Clone)]
pub struct Fingerprinter(Hmac<Sha256>);

impl Fingerprinter {
    /// Every byte of the secret's text is key material (no decoding: whatever generated it).
    pub fn new(key: &SecretString) -> Result<Self, FingerprintKeyError> {
        let key = key.expose_secret().as_bytes();
        if key.len() < MIN_KEY_BYTES {
            return Err(FingerprintKeyError::TooShort);
        }
        Hmac::new_from_slice(key)
            .map(Self)
            .map_err(|_| FingerprintKeyError::TooShort)
    }

    /// The HMAC-SHA256 of the body's canonical JSON (object keys sorted, no whitespace), in
    /// hex, so that key order and spacing do not make two equal bodies differ.
    pub fn fingerprint(&self, body: &serde_json::Value) -> String {
        let mut mac = self.0.clone();
        mac.update(body.to_string().as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

impl fmt::Debug for Fingerprinter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Fingerprinter([redacted])")
    }
}

/// Why there is no fingerprinter. None of them carries the key.
#[derive(Debug, thiserror::Error)]
pub enum FingerprintKeyError {
    /// Names where the key should be (a secret's name), never its value.
    #[error("the idempotency fingerprint key ({0}) does not exist")]
    Missing(String),
    #[error("the idempotency fingerprint key is shorter than {MIN_KEY_BYTES} bytes")]
    TooShort,
    #[error("the idempotency fingerprint key could not be read")]
    Backend(#[source] BoxError),
}

/// The platform's fingerprint key. Only keyed creates ask for it; an adapter reads it once per
/// process and keeps it, so a warm create asks the secret store nothing. It never falls back to
/// an unkeyed fingerprint: without the key, a keyed create fails.
#[async_trait]
pub trait FingerprintKey: Send + Sync {
    async fn fingerprinter(&self) -> Result<Fingerprinter, FingerprintKeyError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sha2::Digest;

    fn under(key: &str) -> Fingerprinter {
        Fingerprinter::new(&SecretString::from(key.to_owned())).unwrap()
    }

    const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn key_order_and_whitespace_do_not_matter() {
        let a: serde_json::Value = serde_json::from_str(r#"{"a":1,"b":{"c":2,"d":3}}"#).unwrap();
        let b: serde_json::Value =
            serde_json::from_str(r#"{ "b": {"d": 3, "c": 2}, "a": 1 }"#).unwrap();
        let f = under(KEY);
        assert_eq!(f.fingerprint(&a), f.fingerprint(&b));
        assert_ne!(f.fingerprint(&a), f.fingerprint(&json!({"a": 2})));
    }

    #[test]
    fn it_is_the_hmac_of_the_canonical_body_never_its_plain_hash() {
        let body = json!({"authentication": {"credentials": {"api_key": "1234"}}});
        let canonical = body.to_string();
        let fingerprint = under(KEY).fingerprint(&body);

        assert_ne!(
            fingerprint,
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        // HMAC-SHA256 keyed with the secret's bytes, over the canonical JSON.
        let mut expected = Hmac::<Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
        expected.update(canonical.as_bytes());
        assert_eq!(fingerprint, hex::encode(expected.finalize().into_bytes()));
    }

    #[test]
    fn another_key_gives_another_fingerprint() {
        let body = json!({"authentication": {"credentials": {"api_key": "1234"}}});
        let other = KEY.replace('0', "f");
        assert_ne!(
            under(KEY).fingerprint(&body),
            under(&other).fingerprint(&body)
        );
    }

    #[test]
    fn a_short_key_is_refused() {
        let short = SecretString::from("k".repeat(MIN_KEY_BYTES - 1));
        assert!(matches!(
            Fingerprinter::new(&short),
            Err(FingerprintKeyError::TooShort)
        ));
        assert!(Fingerprinter::new(&SecretString::from("k".repeat(MIN_KEY_BYTES))).is_ok());
    }

    #[test]
    fn debug_never_shows_the_key() {
        let shown = format!("{:?}", under(KEY));
        assert_eq!(shown, "Fingerprinter([redacted])");
        assert!(!shown.contains("0123"));
    }
}

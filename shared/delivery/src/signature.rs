//! Standard Webhooks signatures, the ones Svix's and standardwebhooks' verifiers check.
//!
//! A receiver builds its verifier from the secret string we showed it. Every such verifier
//! (standardwebhooks for Python, Svix's Python, JavaScript, Go and Rust libraries) does the same
//! with that string: it drops a leading `whsec_` when there is one and base64-decodes the rest;
//! the decoded bytes are the HMAC key. None of them uses the text itself as the key, prefix or
//! not. So [`secret_key`] does exactly that, and refuses a secret that is not base64, since no
//! verifier could be built from it.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix that marks a Standard Webhooks symmetric secret (`whsec_<base64 of the key>`).
pub const SECRET_PREFIX: &str = "whsec_";

/// Why a secret string gives no signing key. Neither message quotes the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// What follows the optional `whsec_` is not padded standard base64 (RFC 4648 section 4),
    /// which every verifier needs to rebuild the key.
    #[error("must be standard base64, optionally prefixed with whsec_")]
    NotBase64,
    /// The base64 decodes to no bytes: an HMAC key of nothing signs nothing.
    #[error("must not be empty")]
    Empty,
}

/// The HMAC key a receiver's verifier derives from `secret`: the base64-decoded text after an
/// optional `whsec_` prefix. A customer's own secret is read the same way, because that is what
/// the verifier they pass it to does; a secret that is not padded standard base64 is refused
/// (an API answers that as a 422 when the secret is set, not at the first delivery).
pub fn secret_key(secret: &str) -> Result<Vec<u8>, SecretError> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    let key = STANDARD
        .decode(encoded)
        .map_err(|_| SecretError::NotBase64)?;
    if key.is_empty() {
        return Err(SecretError::Empty);
    }
    Ok(key)
}

/// The `webhook-signature` (and `svix-signature`) value of one delivery: `v1,` then the
/// standard base64 of HMAC-SHA256 under `key` of `{message_id}.{timestamp}.{body}`, with
/// `timestamp` in unix seconds, the same number sent as `webhook-timestamp`.
pub fn sign(key: &[u8], message_id: &str, timestamp: i64, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        // HMAC pads or hashes a key of any length (RFC 2104 section 2), so this cannot fail.
        unreachable!("HMAC-SHA256 accepts a key of any length")
    };
    mac.update(message_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The test vector of the Standard Webhooks reference libraries (standardwebhooks'
    // `test_sign_function`), also the example of Svix's verification docs.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const MESSAGE_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signs_the_reference_vector() {
        let key = secret_key(SECRET).unwrap();
        assert_eq!(sign(&key, MESSAGE_ID, TIMESTAMP, BODY), EXPECTED);
    }

    #[test]
    fn a_secret_without_the_prefix_is_the_same_key() {
        let key = secret_key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(key, secret_key(SECRET).unwrap());
        assert_eq!(key.len(), 24);
        assert_eq!(sign(&key, MESSAGE_ID, TIMESTAMP, BODY), EXPECTED);
    }

    #[test]
    fn padded_base64_decodes() {
        // 25 bytes, so the text ends in `==`.
        let key = secret_key("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGA==").unwrap();
        assert_eq!(key, (0u8..25).collect::<Vec<_>>());
    }

    #[test]
    fn a_secret_that_is_not_base64_is_refused() {
        for secret in [
            "my-own-secret-that-is-long-enough",
            "whsec_not base64 at all, but long",
            "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGA",
            "whsec_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_",
            "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGA==x",
        ] {
            assert_eq!(secret_key(secret), Err(SecretError::NotBase64), "{secret}");
        }
    }

    #[test]
    fn an_empty_secret_is_refused() {
        assert_eq!(secret_key("whsec_"), Err(SecretError::Empty));
        assert_eq!(secret_key(""), Err(SecretError::Empty));
    }

    #[test]
    fn the_message_id_timestamp_and_body_are_all_signed() {
        let key = secret_key(SECRET).unwrap();
        let reference = sign(&key, MESSAGE_ID, TIMESTAMP, BODY);
        assert_ne!(sign(&key, "msg_other", TIMESTAMP, BODY), reference);
        assert_ne!(sign(&key, MESSAGE_ID, TIMESTAMP + 1, BODY), reference);
        assert_ne!(sign(&key, MESSAGE_ID, TIMESTAMP, b"{}"), reference);
        assert_ne!(sign(b"another key", MESSAGE_ID, TIMESTAMP, BODY), reference);
    }

    #[test]
    fn errors_do_not_quote_the_secret() {
        let secret = "whsec_not base64 at all, but long";
        let message = secret_key(secret).unwrap_err().to_string();
        assert!(!message.contains("not base64 at all"));
    }
}

//! A receiver's verification, written from the Standard Webhooks spec as a customer would:
//! the key is the base64 after `whsec_`, the signed content `{id}.{timestamp}.{body}`, and any
//! `v1,` signature of the space-separated list may match.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Whether `signatures` (a `webhook-signature` value) holds a valid signature of the message
/// under the secret the customer was shown.
pub fn verifies(secret: &str, id: &str, timestamp: &str, body: &[u8], signatures: &str) -> bool {
    let key = STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = mac.finalize().into_bytes();
    signatures.split(' ').any(|versioned| {
        versioned
            .strip_prefix("v1,")
            .and_then(|signature| STANDARD.decode(signature).ok())
            .is_some_and(|signature| signature == expected.as_slice())
    })
}

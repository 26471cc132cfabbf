//! OAuth 2.0 building blocks (DESIGN section 6, RFC 6749, RFC 7636 PKCE, RFC 9700): the state
//! of a browser flow (only its SHA-256 is ever stored), PKCE verifiers and challenges, the
//! platform's or the customer's OAuth app, the tokens a token endpoint answers, and the port
//! through which code exchanges and refreshes reach a provider.

use crate::catalog::OAuthSettings;
use crate::ids::{ConnectionId, OrganizationId};
use async_trait::async_trait;
use base64_url::encode;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// How long a browser flow's state is honoured.
pub const STATE_LIFETIME: chrono::Duration = chrono::Duration::minutes(10);

mod base64_url {
    /// Unpadded base64url (RFC 4648 section 5), as PKCE and our state values use it.
    pub fn encode(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            let chars = chunk.len() + 1;
            for i in 0..chars {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
}

/// 32 bytes from the operating system's random source.
pub fn random_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    // Without randomness no flow can be secure: this is not an error a request can answer.
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes
}

/// The `state` of a browser flow: 256 random bits, given to the browser once. Only its hash is
/// stored, so a leaked table never yields a usable state.
pub struct FlowState(SecretString);

impl FlowState {
    pub fn from_random(bytes: [u8; 32]) -> Self {
        Self(SecretString::from(encode(&bytes)))
    }

    /// What arrives back at the callback, untrusted.
    pub fn from_callback(value: &str) -> Self {
        Self(SecretString::from(value.to_owned()))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The stored key: hex SHA-256 of the value.
    pub fn hash(&self) -> StateHash {
        StateHash(hex::encode(Sha256::digest(
            self.0.expose_secret().as_bytes(),
        )))
    }
}

/// The hex SHA-256 of a flow's state: the key of its stored record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StateHash(String);

impl StateHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A stored hash read back (64 lowercase hex digits), or `None`.
    pub fn parse(value: &str) -> Option<Self> {
        (value.len() == 64
            && value
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| Self(value.to_owned()))
    }
}

/// A PKCE code verifier (RFC 7636 section 4.1: 43 characters of base64url from 32 random bytes).
pub struct PkceVerifier(SecretString);

impl PkceVerifier {
    pub fn from_random(bytes: [u8; 32]) -> Self {
        Self(SecretString::from(encode(&bytes)))
    }

    pub fn from_stored(value: String) -> Self {
        Self(SecretString::from(value))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The S256 challenge: base64url(SHA-256(verifier)), unpadded.
    pub fn challenge(&self) -> String {
        encode(&Sha256::digest(self.0.expose_secret().as_bytes()))
    }
}

/// A browser flow waiting for its callback (`OAUTH#<hash> | META`, expiring by TTL).
pub struct PendingFlow {
    pub state: StateHash,
    pub organization_id: OrganizationId,
    pub connection_id: ConnectionId,
    pub pkce_verifier: Option<PkceVerifier>,
    pub redirect_url: Option<String>,
    pub expires_at: DateTime<Utc>,
}

/// An OAuth client: the platform's app for a source, or the customer's own (BYOC).
#[derive(Clone)]
pub struct OAuthApp {
    pub client_id: String,
    pub client_secret: SecretString,
}

impl OAuthApp {
    /// The app as the vault keeps it: `{"client_id": .., "client_secret": ..}`.
    pub fn document(&self) -> SecretString {
        SecretString::from(
            serde_json::json!({
                "client_id": self.client_id,
                "client_secret": self.client_secret.expose_secret(),
            })
            .to_string(),
        )
    }

    /// An app read back from the vault; `None` when the document is not one.
    pub fn from_document(document: &SecretString) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_str(document.expose_secret()).ok()?;
        let text = |name: &str| {
            value
                .get(name)?
                .as_str()
                .filter(|v| !v.trim().is_empty())
                .map(str::to_owned)
        };
        Some(Self {
            client_id: text("client_id")?,
            client_secret: SecretString::from(text("client_secret")?),
        })
    }
}

impl std::fmt::Debug for OAuthApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthApp")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Where a source's OAuth endpoints are, after operator overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthEndpoints {
    pub authorize_url: String,
    pub token_url: String,
}

/// What a token endpoint answered.
pub struct TokenSet {
    pub access_token: SecretString,
    /// `None` when the provider issued none (the caller keeps any it had: a refresh token is
    /// never replaced by nothing).
    pub refresh_token: Option<SecretString>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Why a token endpoint call did not give tokens. Messages carry the provider's error code at
/// most, never a token, a code or a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// `invalid_grant`, `invalid_client`, `unauthorized_client`: the grant or the client is no
    /// good any more; the user must authorize again.
    #[error("the provider refused the grant ({0})")]
    Refused(String),
    /// 429: try again after the wait (when given).
    #[error("the provider rate-limited the token request")]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx, network, timeout: retryable, never an auth failure.
    #[error("{0}")]
    Unavailable(String),
    /// An answer that is not a token response.
    #[error("{0}")]
    Malformed(String),
}

/// A provider's token endpoint: the code exchange of a browser flow, and refreshes.
#[async_trait]
pub trait TokenEndpoint: Send + Sync {
    async fn exchange_code(
        &self,
        settings: &OAuthSettings,
        endpoints: &OAuthEndpoints,
        app: &OAuthApp,
        code: &str,
        redirect_uri: &str,
        pkce_verifier: Option<&PkceVerifier>,
    ) -> Result<TokenSet, TokenError>;

    async fn refresh(
        &self,
        settings: &OAuthSettings,
        endpoints: &OAuthEndpoints,
        app: &OAuthApp,
        refresh_token: &SecretString,
    ) -> Result<TokenSet, TokenError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_rfc_7636s_example() {
        // RFC 7636 appendix B: this verifier gives this S256 challenge.
        let verifier =
            PkceVerifier::from_stored("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_owned());
        assert_eq!(
            verifier.challenge(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn an_app_round_trips_through_its_document_and_debug_hides_the_secret() {
        let app = OAuthApp {
            client_id: "client-1".into(),
            client_secret: SecretString::from("s3cr3t".to_owned()),
        };
        let back = OAuthApp::from_document(&app.document()).unwrap();
        assert_eq!(back.client_id, "client-1");
        assert_eq!(back.client_secret.expose_secret(), "s3cr3t");
        assert!(!format!("{app:?}").contains("s3cr3t"));
        let half = SecretString::from("{\"client_id\": \"x\"}".to_owned());
        assert!(OAuthApp::from_document(&half).is_none());
    }

    #[test]
    fn random_values_are_43_url_safe_characters() {
        let verifier = PkceVerifier::from_random([7; 32]);
        assert_eq!(verifier.expose().len(), 43);
        assert!(verifier
            .expose()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let state = FlowState::from_random([9; 32]);
        assert_eq!(state.expose().len(), 43);
    }

    #[test]
    fn only_the_hash_of_a_state_is_kept_and_it_parses_back() {
        let state = FlowState::from_random([1; 32]);
        let hash = state.hash();
        assert_eq!(hash.as_str().len(), 64);
        assert!(!hash.as_str().contains(state.expose()));
        assert_eq!(StateHash::parse(hash.as_str()), Some(hash.clone()));
        assert_eq!(FlowState::from_callback(state.expose()).hash(), hash);
        assert_eq!(StateHash::parse("xyz"), None);
        assert_eq!(StateHash::parse(&"A".repeat(64)), None);
    }
}

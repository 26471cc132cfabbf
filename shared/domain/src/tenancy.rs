//! API keys and organizations. Keys are stored only as SHA-256 hashes.

use crate::ids::OrganizationId;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The hex SHA-256 of an API key: what the store keeps and looks up.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ApiKeyHash(String);

impl ApiKeyHash {
    pub fn of(key: &SecretString) -> Self {
        Self(hex::encode(Sha256::digest(key.expose_secret().as_bytes())))
    }

    /// A hash as the store keeps it: 64 lowercase hex digits.
    pub fn parse(value: &str) -> Result<Self, String> {
        if is_lowercase_hex(value, 64) {
            Ok(Self(value.to_owned()))
        } else {
            Err(format!("'{value}' is not the SHA-256 of an API key"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key's id: the first 12 hex digits of its hash.
    pub fn key_id(&self) -> ApiKeyId {
        ApiKeyId(self.0[..ApiKeyId::LEN].to_owned())
    }
}

impl TryFrom<String> for ApiKeyHash {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(&value)
    }
}

impl From<ApiKeyHash> for String {
    fn from(value: ApiKeyHash) -> Self {
        value.0
    }
}

/// What names an API key to an operator without its plaintext: the first 12 hex digits of its
/// SHA-256 (so keys stored before ids existed have the id their listing always showed).
/// `create-api-key` shows it, `list-api-keys` lists it, `revoke-api-key --id` takes it. Two
/// keys share one with a chance of about 2^-48 per pair; a revocation by id refuses then.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ApiKeyId(String);

impl ApiKeyId {
    pub const LEN: usize = 12;

    pub fn parse(value: &str) -> Result<Self, String> {
        if is_lowercase_hex(value, Self::LEN) {
            Ok(Self(value.to_owned()))
        } else {
            Err(format!(
                "not a key id: '{value}' (an id is 12 lowercase hex digits, as list-api-keys shows)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ApiKeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, so that the CLI's listing lines ids up in their column.
        f.pad(&self.0)
    }
}

impl TryFrom<String> for ApiKeyId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(&value)
    }
}

impl From<ApiKeyId> for String {
    fn from(value: ApiKeyId) -> Self {
        value.0
    }
}

fn is_lowercase_hex(value: &str, len: usize) -> bool {
    value.len() == len
        && value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A new API key: 32 random bytes, hex, with a recognizable prefix. Shown once, stored hashed.
pub fn api_key_from_random(bytes: [u8; 32]) -> SecretString {
    SecretString::from(format!("sc_{}", hex::encode(bytes)))
}

/// A stored key as its id finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredApiKey {
    pub hash: ApiKeyHash,
    pub organization_id: OrganizationId,
}

/// An API key as an operator sees it: never the key, only its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeySummary {
    pub key_id: ApiKeyId,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Organization {
    pub id: OrganizationId,
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// Where a browser OAuth flow may send the user back (`redirect_url`), by scheme, host and
    /// port. `None`: the organization has no list of its own and the platform's default
    /// (`DEFAULT_REDIRECT_ORIGINS`) applies; empty: no redirect_url is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_origins: Option<Vec<RedirectOrigin>>,
}

impl Organization {
    /// Whether `url` (an absolute http(s) URL) may be redirected to: by the organization's own
    /// list, or `default` when it has none.
    pub fn allows_redirect(&self, url: &url::Url, default: &[RedirectOrigin]) -> bool {
        self.redirect_origins
            .as_deref()
            .unwrap_or(default)
            .iter()
            .any(|o| o.matches(url))
    }
}

/// One entry of an organization's redirect allowlist: `scheme://host[:port]`, or
/// `scheme://host:*` for any port (the dev organization's `http://localhost:*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RedirectOrigin {
    scheme: String,
    host: String,
    /// `None`: any port.
    port: Option<u16>,
}

impl RedirectOrigin {
    /// The loopback origins a local development organization allows.
    pub fn loopback_any_port() -> Vec<Self> {
        ["http://localhost:*", "http://127.0.0.1:*"]
            .iter()
            .map(|o| Self::parse(o).expect("a valid origin"))
            .collect()
    }

    pub fn parse(value: &str) -> Result<Self, String> {
        let (text, any_port) = match value.strip_suffix(":*") {
            Some(rest) => (rest, true),
            None => (value, false),
        };
        let url = url::Url::parse(text).map_err(|_| format!("'{value}' is not an origin"))?;
        let origin_only = url.path() == "/"
            && url.query().is_none()
            && url.fragment().is_none()
            && url.username().is_empty()
            && url.password().is_none();
        if !matches!(url.scheme(), "http" | "https") || !origin_only {
            return Err(format!(
                "'{value}' is not an origin: scheme://host[:port] or scheme://host:* (http or https, no path)"
            ));
        }
        let host = url
            .host_str()
            .ok_or_else(|| format!("'{value}' names no host"))?;
        if any_port && url.port().is_some() {
            return Err(format!("'{value}' gives a port and '*'"));
        }
        Ok(Self {
            scheme: url.scheme().to_owned(),
            host: host.to_owned(),
            port: (!any_port).then(|| url.port_or_known_default()).flatten(),
        })
    }

    pub fn matches(&self, url: &url::Url) -> bool {
        url.scheme() == self.scheme
            && url.host_str() == Some(self.host.as_str())
            && self
                .port
                .is_none_or(|port| url.port_or_known_default() == Some(port))
    }
}

impl std::fmt::Display for RedirectOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            None => write!(f, "{}://{}:*", self.scheme, self.host),
            Some(port) => write!(f, "{}://{}:{port}", self.scheme, self.host),
        }
    }
}

impl TryFrom<String> for RedirectOrigin {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(&value)
    }
}

impl From<RedirectOrigin> for String {
    fn from(value: RedirectOrigin) -> Self {
        value.to_string()
    }
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
    fn redirect_origins_match_by_scheme_host_and_port() {
        let url = |u: &str| url::Url::parse(u).unwrap();
        let allowed = |org: &Organization, u: &url::Url| org.allows_redirect(u, &[]);
        let org = Organization {
            id: OrganizationId::new(),
            name: "o".into(),
            created_at: Utc::now(),
            redirect_origins: Some(
                vec![RedirectOrigin::parse("https://app.example.com").unwrap()]
                    .into_iter()
                    .chain(RedirectOrigin::loopback_any_port())
                    .collect(),
            ),
        };
        assert!(allowed(&org, &url("https://app.example.com/done?x=1")));
        assert!(allowed(&org, &url("https://app.example.com:443/")));
        assert!(!allowed(&org, &url("http://app.example.com/done")));
        assert!(!allowed(&org, &url("https://app.example.com:8443/done")));
        assert!(!allowed(&org, &url("https://app.example.com.evil.io/")));
        assert!(!allowed(
            &org,
            &url("https://evil.io/?https://app.example.com")
        ));
        assert!(allowed(&org, &url("http://localhost:5173/cb")));
        assert!(allowed(&org, &url("http://127.0.0.1:9/")));
        assert!(!allowed(&org, &url("https://localhost:5173/cb")));
        for bad in [
            "app.example.com",
            "https://app.example.com/path",
            "ftp://x.example",
            "https://u:p@x.example",
            "https://x.example:8080:*",
        ] {
            assert!(RedirectOrigin::parse(bad).is_err(), "{bad}");
        }
        let json = serde_json::to_string(&org).unwrap();
        assert_eq!(serde_json::from_str::<Organization>(&json).unwrap(), org);
        assert!(json.contains("http://localhost:*"), "{json}");
        // No list of its own: the platform's default; an empty one: nothing.
        let default = [RedirectOrigin::parse("https://default.example.com").unwrap()];
        let mut own = org.clone();
        own.redirect_origins = None;
        assert!(own.allows_redirect(&url("https://default.example.com/cb"), &default));
        assert!(!own.allows_redirect(&url("https://app.example.com/cb"), &default));
        own.redirect_origins = Some(Vec::new());
        assert!(!own.allows_redirect(&url("https://default.example.com/cb"), &default));
    }

    #[test]
    fn a_keys_id_is_the_start_of_its_hash_and_parses_only_as_such() {
        let hash = ApiKeyHash::of(&SecretString::from("abc".to_owned()));
        assert_eq!(hash.key_id().as_str(), "ba7816bf8f01");
        assert_eq!(ApiKeyId::parse("ba7816bf8f01"), Ok(hash.key_id()));
        assert_eq!(format!("{:<14}|", hash.key_id()), "ba7816bf8f01  |");
        for bad in [
            "",
            "ba7816bf8f0",
            "ba7816bf8f01c",
            "BA7816BF8F01",
            "ba7816bf8f0g",
            " ba7816bf8f0",
        ] {
            assert!(ApiKeyId::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(ApiKeyHash::parse(hash.as_str()), Ok(hash.clone()));
        assert!(ApiKeyHash::parse(&hash.as_str()[..63]).is_err());
        assert!(ApiKeyHash::parse(&hash.as_str().to_uppercase()).is_err());
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

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

/// An API key as an operator sees it: never the key, only the start of its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeySummary {
    /// The first 12 hex digits of the key's SHA-256: enough to tell keys apart.
    pub key_id: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKeyHash {
    /// What identifies the key in listings.
    pub fn key_id(&self) -> String {
        self.0.chars().take(12).collect()
    }
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
    fn generated_keys_differ_by_their_bytes() {
        let a = api_key_from_random([1; 32]);
        let b = api_key_from_random([2; 32]);
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert!(a.expose_secret().starts_with("sc_"));
        assert_eq!(a.expose_secret().len(), 3 + 64);
    }
}

//! External auth providers (Composio, Pipedream): an organization connects its account at a
//! provider once (`POST /auth-providers/connections`); source connections then name it with
//! `provider_readable_id` and find their account through `provider_config`. The provider owns
//! the tokens: the platform fetches fresh credentials at every run and never refreshes them.

use crate::error::FieldError;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use std::fmt;
use std::time::Duration;

/// The providers the platform speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    Composio,
    Pipedream,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 2] = [ProviderKind::Composio, ProviderKind::Pipedream];

    pub fn parse(short_name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.short_name() == short_name)
    }

    pub fn short_name(self) -> &'static str {
        match self {
            Self::Composio => "composio",
            Self::Pipedream => "pipedream",
        }
    }

    pub fn display_name(self) -> &'static str {
        match self {
            Self::Composio => "Composio",
            Self::Pipedream => "Pipedream",
        }
    }

    /// Where the customer manages the provider's accounts (shown with provider errors).
    pub fn settings_url(self) -> &'static str {
        match self {
            Self::Composio => "https://platform.composio.dev",
            Self::Pipedream => "https://pipedream.com/connect",
        }
    }
}

/// An organization's account at an auth provider, as stored and answered (never its
/// credentials).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ProviderConnection {
    pub id: uuid::Uuid,
    pub organization_id: crate::ids::OrganizationId,
    pub name: String,
    pub readable_id: String,
    /// `composio` or `pipedream`.
    pub short_name: String,
    pub description: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub modified_at: chrono::DateTime<chrono::Utc>,
}

/// The organization's credentials for a provider. `Debug` never shows a secret.
#[derive(Clone)]
pub enum ProviderCredentials {
    Composio {
        api_key: SecretString,
    },
    Pipedream {
        client_id: String,
        client_secret: SecretString,
        project_id: String,
        /// `production` or `development`.
        environment: String,
    },
}

impl fmt::Debug for ProviderCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Composio { .. } => f.write_str("ProviderCredentials::Composio(redacted)"),
            Self::Pipedream {
                client_id,
                project_id,
                environment,
                ..
            } => f
                .debug_struct("ProviderCredentials::Pipedream")
                .field("client_id", client_id)
                .field("project_id", project_id)
                .field("environment", environment)
                .finish_non_exhaustive(),
        }
    }
}

impl ProviderCredentials {
    pub fn kind(&self) -> ProviderKind {
        match self {
            Self::Composio { .. } => ProviderKind::Composio,
            Self::Pipedream { .. } => ProviderKind::Pipedream,
        }
    }

    /// The `auth_fields` of a create request, every problem at once, under `auth_fields.<name>`.
    pub fn parse(kind: ProviderKind, fields: &Map<String, Value>) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let allowed: &[&str] = match kind {
            ProviderKind::Composio => &["api_key"],
            ProviderKind::Pipedream => &["client_id", "client_secret", "project_id", "environment"],
        };
        for key in fields.keys() {
            if !allowed.contains(&key.as_str()) {
                errors.push(FieldError::new(
                    format!("auth_fields.{key}"),
                    "unknown field",
                ));
            }
        }
        let mut text = |name: &str, required: bool| -> Option<String> {
            match fields.get(name) {
                Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 1024 => {
                    Some(s.trim().to_owned())
                }
                None | Some(Value::Null) if !required => None,
                None | Some(Value::Null) => {
                    errors.push(FieldError::new(
                        format!("auth_fields.{name}"),
                        "is required",
                    ));
                    None
                }
                Some(_) => {
                    errors.push(FieldError::new(
                        format!("auth_fields.{name}"),
                        "must be a non-empty string of at most 1024 characters",
                    ));
                    None
                }
            }
        };
        let parsed = match kind {
            ProviderKind::Composio => text("api_key", true).map(|k| Self::Composio {
                api_key: SecretString::from(k),
            }),
            ProviderKind::Pipedream => {
                let client_id = text("client_id", true);
                let client_secret = text("client_secret", true);
                let project_id = text("project_id", true);
                let environment = text("environment", false).unwrap_or_else(|| "production".into());
                if !matches!(environment.as_str(), "production" | "development") {
                    errors.push(FieldError::new(
                        "auth_fields.environment",
                        "must be production or development",
                    ));
                }
                match (client_id, client_secret, project_id) {
                    (Some(client_id), Some(secret), Some(project_id)) => Some(Self::Pipedream {
                        client_id,
                        client_secret: SecretString::from(secret),
                        project_id,
                        environment,
                    }),
                    _ => None,
                }
            }
        };
        match (parsed, errors.is_empty()) {
            (Some(p), true) => Ok(p),
            _ => Err(errors),
        }
    }

    /// As the vault keeps it.
    pub fn document(&self) -> SecretString {
        let value = match self {
            Self::Composio { api_key } => serde_json::json!({
                "provider": "composio",
                "api_key": api_key.expose_secret(),
            }),
            Self::Pipedream {
                client_id,
                client_secret,
                project_id,
                environment,
            } => serde_json::json!({
                "provider": "pipedream",
                "client_id": client_id,
                "client_secret": client_secret.expose_secret(),
                "project_id": project_id,
                "environment": environment,
            }),
        };
        SecretString::from(value.to_string())
    }

    /// Read back from the vault; `None` when the document is not one.
    pub fn from_document(document: &SecretString) -> Option<Self> {
        let value: Value = serde_json::from_str(document.expose_secret()).ok()?;
        let kind = ProviderKind::parse(value.get("provider")?.as_str()?)?;
        let mut fields = value.as_object()?.clone();
        fields.remove("provider");
        Self::parse(kind, &fields).ok()
    }
}

/// Which account at the provider holds a source connection's credentials (`provider_config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRef {
    /// Composio: the connected account id (`ca_...`); Pipedream: the account id (`apn_...`).
    pub account_id: String,
    /// Composio: the auth config the account must belong to, when given.
    pub auth_config_id: Option<String>,
    /// Pipedream: the external user the account must belong to, when given.
    pub external_user_id: Option<String>,
}

impl AccountRef {
    /// `provider_config` of a create request, errors under `authentication.provider_config.<name>`.
    pub fn parse(
        kind: ProviderKind,
        config: Option<&Map<String, Value>>,
    ) -> Result<Self, Vec<FieldError>> {
        let empty = Map::new();
        let config = config.unwrap_or(&empty);
        let path = |name: &str| format!("authentication.provider_config.{name}");
        let allowed: &[&str] = match kind {
            ProviderKind::Composio => &["account_id", "auth_config_id"],
            ProviderKind::Pipedream => &["account_id", "external_user_id"],
        };
        let mut errors: Vec<FieldError> = config
            .keys()
            .filter(|k| !allowed.contains(&k.as_str()))
            .map(|k| FieldError::new(path(k), "unknown field"))
            .collect();
        let mut text = |name: &str| match config.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s))
                if !s.is_empty()
                    && s.len() <= 256
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) =>
            {
                Some(s.clone())
            }
            Some(_) => {
                errors.push(FieldError::new(
                    path(name),
                    "must be an identifier (letters, digits, '-', '_', '.')",
                ));
                None
            }
        };
        let account_id = text("account_id");
        let auth_config_id = text("auth_config_id");
        let external_user_id = text("external_user_id");
        if account_id.is_none() && !config.contains_key("account_id") {
            errors.push(FieldError::new(path("account_id"), "is required"));
        }
        match (account_id, errors.is_empty()) {
            (Some(account_id), true) => Ok(Self {
                account_id,
                auth_config_id,
                external_user_id,
            }),
            _ => Err(errors),
        }
    }

    pub fn to_config(&self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("account_id".into(), Value::String(self.account_id.clone()));
        if let Some(v) = &self.auth_config_id {
            map.insert("auth_config_id".into(), Value::String(v.clone()));
        }
        if let Some(v) = &self.external_user_id {
            map.insert("external_user_id".into(), Value::String(v.clone()));
        }
        map
    }
}

/// Why a provider gave no usable credentials. Messages say what to fix and never carry a
/// secret, a token or a provider's raw answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The provider refused the organization's own credentials (API key, client).
    #[error("{0}")]
    CredentialsRejected(String),
    /// The account does not exist, was deleted, or is disabled/expired at the provider.
    #[error("{0}")]
    AccountGone(String),
    /// The account belongs to another app than the source (or another auth config / user).
    #[error("{0}")]
    WrongApp(String),
    /// The account exists but its credentials are redacted or missing.
    #[error("{0}")]
    CredentialsUnusable(String),
    #[error("the auth provider rate-limited the request")]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx, network, an unreadable answer: retryable.
    #[error("{0}")]
    Unavailable(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn credentials_parse_per_provider_and_round_trip_through_the_vault() {
        let c =
            ProviderCredentials::parse(ProviderKind::Composio, &map(json!({"api_key": "ak_1"})))
                .unwrap();
        let back = ProviderCredentials::from_document(&c.document()).unwrap();
        assert!(
            matches!(back, ProviderCredentials::Composio { api_key } if api_key.expose_secret() == "ak_1")
        );
        assert!(!format!("{c:?}").contains("ak_1"));

        let p = ProviderCredentials::parse(
            ProviderKind::Pipedream,
            &map(json!({"client_id": "id", "client_secret": "shh", "project_id": "proj_1"})),
        )
        .unwrap();
        let ProviderCredentials::Pipedream { environment, .. } =
            ProviderCredentials::from_document(&p.document()).unwrap()
        else {
            panic!("pipedream");
        };
        assert_eq!(environment, "production");
        assert!(!format!("{p:?}").contains("shh"));
    }

    #[test]
    fn every_missing_or_unknown_field_is_named() {
        let e = ProviderCredentials::parse(
            ProviderKind::Pipedream,
            &map(json!({"client_id": "id", "environment": "staging", "api_key": "x"})),
        )
        .unwrap_err();
        let fields: Vec<&str> = e.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"auth_fields.api_key"), "{fields:?}");
        assert!(fields.contains(&"auth_fields.client_secret"), "{fields:?}");
        assert!(fields.contains(&"auth_fields.project_id"), "{fields:?}");
        assert!(fields.contains(&"auth_fields.environment"), "{fields:?}");
    }

    #[test]
    fn an_account_needs_its_id_and_only_known_fields() {
        let a = AccountRef::parse(
            ProviderKind::Composio,
            Some(&map(
                json!({"account_id": "ca_1", "auth_config_id": "ac_1"}),
            )),
        )
        .unwrap();
        assert_eq!(a.account_id, "ca_1");
        assert_eq!(
            AccountRef::parse(ProviderKind::Composio, Some(&a.to_config())).unwrap(),
            a
        );
        let e = AccountRef::parse(ProviderKind::Pipedream, None).unwrap_err();
        assert_eq!(e[0].field, "authentication.provider_config.account_id");
        let e = AccountRef::parse(
            ProviderKind::Pipedream,
            Some(&map(json!({"account_id": "a/../b", "auth_config_id": "x"}))),
        )
        .unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
    }
}

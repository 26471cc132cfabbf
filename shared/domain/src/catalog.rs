//! What the platform knows about a source type: its catalog entry and the schemas of its
//! authentication and configuration fields, plus the generic validation against those schemas.

use crate::error::FieldError;
use serde::Serialize;
use serde_json::{Map, Value};

/// How a source connection authenticates upstream.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    Direct,
    OauthBrowser,
    OauthToken,
    OauthByoc,
    AuthProvider,
}

impl AuthMethod {
    /// The method of a name as `as_str` spells it.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Direct,
            Self::OauthBrowser,
            Self::OauthToken,
            Self::OauthByoc,
            Self::AuthProvider,
        ]
        .into_iter()
        .find(|m| m.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::OauthBrowser => "oauth_browser",
            Self::OauthToken => "oauth_token",
            Self::OauthByoc => "oauth_byoc",
            Self::AuthProvider => "auth_provider",
        }
    }
}

/// The JSON type of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    String,
    Integer,
    Number,
    Boolean,
}

/// A source-specific rule beyond the type and bounds, e.g. `owner/repo`.
pub type FieldCheck = fn(&Value) -> Result<(), String>;

/// The longest a string field may be, in characters (API keys, tokens, client secrets and
/// config values alike): far more than any real one, and inside the 64 KiB a secret in
/// Secrets Manager holds (the whole stored document is checked against that too).
pub const MAX_STRING_CHARS: usize = 16 * 1024;

/// One authentication or configuration field of a source.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FieldSpec {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    pub required: bool,
    pub is_secret: bool,
    pub enum_values: Option<Vec<&'static str>>,
    /// The most characters a string field takes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    #[serde(skip)]
    pub min: Option<i64>,
    #[serde(skip)]
    pub max: Option<i64>,
    #[serde(skip)]
    pub check: Option<FieldCheck>,
}

impl FieldSpec {
    pub fn new(name: &'static str, title: &'static str, field_type: FieldType) -> Self {
        Self {
            name,
            title,
            description: "",
            field_type,
            required: false,
            is_secret: false,
            enum_values: None,
            max_length: matches!(field_type, FieldType::String).then_some(MAX_STRING_CHARS),
            min: None,
            max: None,
            check: None,
        }
    }

    pub fn describe(mut self, description: &'static str) -> Self {
        self.description = description;
        self
    }

    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    pub fn secret(mut self) -> Self {
        self.is_secret = true;
        self
    }

    pub fn range(mut self, min: i64, max: i64) -> Self {
        self.min = Some(min);
        self.max = Some(max);
        self
    }

    pub fn checked(mut self, check: FieldCheck) -> Self {
        self.check = Some(check);
        self
    }

    fn validate(&self, value: &Value, path: &str) -> Option<FieldError> {
        let err = |m: String| Some(FieldError::new(path, m));
        match self.field_type {
            FieldType::String => {
                let Some(s) = value.as_str() else {
                    return err("must be a string".into());
                };
                if s.trim().is_empty() {
                    return err("must not be empty".into());
                }
                if let Some(max) = self.max_length.filter(|max| s.chars().count() > *max) {
                    return err(format!("must be at most {max} characters"));
                }
                if let Some(allowed) = &self.enum_values {
                    if !allowed.contains(&s) {
                        return err(format!("must be one of {}", allowed.join(", ")));
                    }
                }
            }
            FieldType::Integer => {
                let Some(n) = value.as_i64() else {
                    return err("must be an integer".into());
                };
                if let (Some(min), Some(max)) = (self.min, self.max) {
                    if n < min || n > max {
                        return err(format!("must be between {min} and {max}"));
                    }
                }
            }
            FieldType::Number => {
                if !value.is_number() {
                    return err("must be a number".into());
                }
            }
            FieldType::Boolean => {
                if !value.is_boolean() {
                    return err("must be true or false".into());
                }
            }
        }
        self.check
            .and_then(|check| check(value).err())
            .map(|m| FieldError::new(path, m))
    }
}

/// Validates an object against a field schema: unknown fields, missing required fields, types,
/// bounds and source-specific checks. `null` counts as absent. Errors name `{prefix}.{field}`.
pub fn validate_fields(
    fields: &[FieldSpec],
    values: &Map<String, Value>,
    prefix: &str,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for key in values.keys() {
        if !fields.iter().any(|f| f.name == key) {
            let known: Vec<&str> = fields.iter().map(|f| f.name).collect();
            let hint = if known.is_empty() {
                "this source takes no fields here".to_owned()
            } else {
                format!("known fields: {}", known.join(", "))
            };
            errors.push(FieldError::new(
                format!("{prefix}.{key}"),
                format!("unknown field ({hint})"),
            ));
        }
    }
    for field in fields {
        let path = format!("{prefix}.{}", field.name);
        match values.get(field.name) {
            None | Some(Value::Null) if field.required => {
                errors.push(FieldError::new(path, "is required"));
            }
            None | Some(Value::Null) => {}
            Some(value) => errors.extend(field.validate(value, &path)),
        }
    }
    errors
}

/// How the client authenticates at a token endpoint (RFC 6749 section 2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// `Authorization: Basic base64(client_id:client_secret)`.
    Basic,
    /// `client_id` and `client_secret` in the form body.
    RequestBody,
}

/// A source's OAuth 2.0 app settings, as data the OAuth flow reads (DESIGN section 6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OAuthSettings {
    pub authorize_url: &'static str,
    pub token_url: &'static str,
    pub scopes: Vec<&'static str>,
    /// Scopes asked for the user beside the app's (Slack's `user_scope`).
    pub user_scopes: Vec<&'static str>,
    /// How the scopes are joined in the authorize URL (`" "` by RFC 6749, `","` for Slack).
    pub scope_separator: &'static str,
    /// Whether the provider takes PKCE (S256).
    pub pkce: bool,
    pub client_auth: ClientAuth,
    /// Where the access token sits in the token response, as a JSON pointer.
    pub access_token_pointer: &'static str,
    /// Where the refresh token sits, when the provider issues one.
    pub refresh_token_pointer: Option<&'static str>,
    /// Parameters the authorize URL always carries (Google: `access_type=offline`).
    pub extra_authorize_params: Vec<(&'static str, &'static str)>,
}

impl OAuthSettings {
    /// Airweave's `oauth_type`: `access_only` or `with_refresh`.
    pub fn oauth_type(&self) -> &'static str {
        if self.refresh_token_pointer.is_some() {
            "with_refresh"
        } else {
            "access_only"
        }
    }
}

/// A source type as the catalog describes it.
#[derive(Debug, Clone, Serialize)]
pub struct SourceSpec {
    pub short_name: &'static str,
    pub name: &'static str,
    pub class_name: &'static str,
    pub description: &'static str,
    pub auth_methods: Vec<AuthMethod>,
    pub requires_byoc: bool,
    pub auth_fields: Vec<FieldSpec>,
    pub config_fields: Vec<FieldSpec>,
    pub supported_auth_providers: Vec<&'static str>,
    pub entity_types: Vec<&'static str>,
    pub supports_continuous: bool,
    /// Runs after a completed one fetch only what changed: schedules may be as short as
    /// [`crate::schedule::MIN_INCREMENTAL_INTERVAL`] instead of [`crate::schedule::MIN_FULL_INTERVAL`].
    pub supports_incremental: bool,
    pub federated_search: bool,
    pub labels: Vec<&'static str>,
    /// The OAuth app settings of a source that takes a browser OAuth flow.
    pub oauth: Option<OAuthSettings>,
}

impl SourceSpec {
    pub fn supports(&self, method: AuthMethod) -> bool {
        self.auth_methods.contains(&method)
    }

    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.auth_fields.iter().find(|f| f.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Vec<FieldSpec> {
        vec![
            FieldSpec::new("count", "Count", FieldType::Integer)
                .required()
                .range(1, 10),
            FieldSpec::new("label", "Label", FieldType::String).checked(|v| {
                if v.as_str().is_some_and(|s| s.contains('/')) {
                    Ok(())
                } else {
                    Err("must look like a/b".into())
                }
            }),
            FieldSpec::new("flag", "Flag", FieldType::Boolean),
        ]
    }

    fn check(v: Value) -> Vec<String> {
        let map = v.as_object().unwrap().clone();
        validate_fields(&schema(), &map, "config")
            .into_iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect()
    }

    #[test]
    fn valid_object_passes() {
        assert!(check(json!({"count": 1, "label": "a/b", "flag": true})).is_empty());
        assert!(check(json!({"count": 10, "label": null})).is_empty());
    }

    #[test]
    fn each_rule_reports_its_field() {
        assert_eq!(check(json!({})), ["config.count: is required"]);
        assert_eq!(
            check(json!({"count": 0})),
            ["config.count: must be between 1 and 10"]
        );
        assert_eq!(
            check(json!({"count": 11})),
            ["config.count: must be between 1 and 10"]
        );
        assert_eq!(
            check(json!({"count": "3"})),
            ["config.count: must be an integer"]
        );
        assert_eq!(
            check(json!({"count": 2, "label": "ab"})),
            ["config.label: must look like a/b"]
        );
        assert_eq!(
            check(json!({"count": 2, "flag": 1})),
            ["config.flag: must be true or false"]
        );
        let unknown = check(json!({"count": 2, "colour": "red"}));
        assert_eq!(unknown.len(), 1);
        assert!(unknown[0].starts_with("config.colour: unknown field"));
    }
}

//! Authentication method detection. A create request's `authentication` carries no type tag: the
//! method follows from which fields are present (DESIGN section 4).

use crate::auth_provider::{AccountRef, ProviderKind};
use crate::catalog::{AuthMethod, MAX_STRING_CHARS};
use crate::error::FieldError;
use crate::names::ReadableId;
use crate::oauth::OAuthApp;
use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use std::fmt;

/// Credentials as the user gave them (API keys, tokens). `Debug` shows field names, never values.
#[derive(Clone, PartialEq)]
pub struct Credentials(Map<String, Value>);

impl Credentials {
    pub fn new(fields: Map<String, Value>) -> Self {
        Self(fields)
    }

    pub fn expose(&self) -> &Map<String, Value> {
        &self.0
    }

    /// A string field, e.g. `personal_access_token`.
    pub fn string(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&String> = self.0.keys().collect();
        write!(f, "Credentials({keys:?}, values redacted)")
    }
}

/// What the caller asked for, after detection and field checks (schema checks against the
/// source's auth fields happen in the create use case, which knows the source).
#[derive(Debug, Clone)]
pub enum AuthenticationRequest {
    Direct(Credentials),
    OauthToken(OauthToken),
    OauthBrowser,
    OauthByoc {
        client_id: String,
        client_secret: SecretString,
    },
    AuthProvider {
        provider_readable_id: ReadableId,
        provider_config: Option<Map<String, Value>>,
    },
}

/// An OAuth access token the caller already holds.
#[derive(Debug, Clone)]
pub struct OauthToken {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl AuthenticationRequest {
    pub fn method(&self) -> AuthMethod {
        match self {
            Self::Direct(_) => AuthMethod::Direct,
            Self::OauthToken(_) => AuthMethod::OauthToken,
            Self::OauthBrowser => AuthMethod::OauthBrowser,
            Self::OauthByoc { .. } => AuthMethod::OauthByoc,
            Self::AuthProvider { .. } => AuthMethod::AuthProvider,
        }
    }
}

/// The fields each row of the detection table owns. `redirect_uri` belongs to both browser rows.
const DIRECT: &[&str] = &["credentials"];
const TOKEN: &[&str] = &["access_token", "refresh_token", "expires_at", "expires_in"];
const BYOC: &[&str] = &[
    "client_id",
    "client_secret",
    "consumer_key",
    "consumer_secret",
];
const PROVIDER: &[&str] = &["provider_readable_id", "provider_config"];
const BROWSER: &[&str] = &["redirect_uri"];

const PREFIX: &str = "authentication";
/// The optional tag naming the method.
const TYPE: &str = "type";

fn path(field: &str) -> String {
    format!("{PREFIX}.{field}")
}

/// Detects the authentication method of a create request. `None`, `null` and `{}` are the
/// browser flow. A mix of fields from two rows is an error that names both.
pub fn detect(
    authentication: Option<&Value>,
    now: DateTime<Utc>,
) -> Result<AuthenticationRequest, Vec<FieldError>> {
    let fields = match authentication {
        None | Some(Value::Null) => return Ok(AuthenticationRequest::OauthBrowser),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(vec![FieldError::new(PREFIX, "must be an object")]),
    };
    // `null` values count as absent, as the SDKs send explicit nulls for unset optionals.
    let mut present: Map<String, Value> = fields
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // An optional tag (Airweave's CLI sends `"type": "direct"`): it must name the method the
    // other fields give.
    let tagged = match present.remove(TYPE) {
        None => None,
        Some(Value::String(tag)) => match AuthMethod::parse(&tag) {
            Some(method) => Some(method),
            None => return Err(vec![unknown_type()]),
        },
        Some(_) => return Err(vec![unknown_type()]),
    };
    let detected = detect_untagged(&present, now)?;
    match tagged {
        Some(method) if method != detected.method() => Err(vec![FieldError::new(
            path(TYPE),
            format!(
                "is '{}', but the fields given are those of '{}'",
                method.as_str(),
                detected.method().as_str()
            ),
        )]),
        _ => Ok(detected),
    }
}

fn unknown_type() -> FieldError {
    FieldError::new(
        path(TYPE),
        "must be one of direct, oauth_token, oauth_browser, oauth_byoc, auth_provider",
    )
}

/// The method the fields give, without a tag.
fn detect_untagged(
    present: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<AuthenticationRequest, Vec<FieldError>> {
    let unknown: Vec<FieldError> = present
        .keys()
        .filter(|k| {
            ![DIRECT, TOKEN, BYOC, PROVIDER, BROWSER]
                .iter()
                .any(|row| row.contains(&k.as_str()))
        })
        .map(|k| FieldError::new(path(k), "unknown field"))
        .collect();
    if !unknown.is_empty() {
        return Err(unknown);
    }

    let rows: [(AuthMethod, &[&str]); 4] = [
        (AuthMethod::Direct, DIRECT),
        (AuthMethod::OauthToken, TOKEN),
        (AuthMethod::OauthByoc, BYOC),
        (AuthMethod::AuthProvider, PROVIDER),
    ];
    let mut matched: Vec<(AuthMethod, Vec<&str>)> = rows
        .iter()
        .filter_map(|(method, names)| {
            let hits: Vec<&str> = names
                .iter()
                .copied()
                .filter(|n| present.contains_key(*n))
                .collect();
            (!hits.is_empty()).then_some((*method, hits))
        })
        .collect();
    let redirect_uri = present.contains_key("redirect_uri");
    if redirect_uri && matched.iter().any(|(m, _)| *m != AuthMethod::OauthByoc) {
        matched.push((AuthMethod::OauthBrowser, vec!["redirect_uri"]));
    }
    if matched.len() > 1 {
        let described: Vec<String> = matched
            .iter()
            .map(|(m, hits)| format!("{} ({})", hits.join(", "), m.as_str()))
            .collect();
        return Err(vec![FieldError::new(
            PREFIX,
            format!(
                "fields of different authentication methods cannot be mixed: {}",
                described.join(" and ")
            ),
        )]);
    }

    match matched.first().map(|(m, _)| *m) {
        None => Ok(AuthenticationRequest::OauthBrowser),
        Some(AuthMethod::Direct) => direct(present),
        Some(AuthMethod::OauthToken) => token(present, now),
        Some(AuthMethod::OauthByoc) => byoc(present),
        Some(_) => provider(present),
    }
}

fn direct(present: &Map<String, Value>) -> Result<AuthenticationRequest, Vec<FieldError>> {
    match present.get("credentials") {
        Some(Value::Object(c)) if !c.is_empty() => {
            Ok(AuthenticationRequest::Direct(Credentials::new(c.clone())))
        }
        Some(Value::Object(_)) => Err(vec![FieldError::new(
            path("credentials"),
            "must not be empty",
        )]),
        _ => Err(vec![FieldError::new(
            path("credentials"),
            "must be an object",
        )]),
    }
}

fn non_empty_string(
    present: &Map<String, Value>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    match present.get(field) {
        None => None,
        Some(Value::String(s)) if s.chars().count() > MAX_STRING_CHARS => {
            errors.push(FieldError::new(
                path(field),
                format!("must be at most {MAX_STRING_CHARS} characters"),
            ));
            None
        }
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(_) => {
            errors.push(FieldError::new(path(field), "must be a non-empty string"));
            None
        }
    }
}

fn token(
    present: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<AuthenticationRequest, Vec<FieldError>> {
    let mut errors = Vec::new();
    let access_token = non_empty_string(present, "access_token", &mut errors);
    if access_token.is_none() && !present.contains_key("access_token") {
        errors.push(FieldError::new(path("access_token"), "is required"));
    }
    let refresh_token = non_empty_string(present, "refresh_token", &mut errors);
    let expires_at = match (present.get("expires_at"), present.get("expires_in")) {
        (Some(_), Some(_)) => {
            errors.push(FieldError::new(
                path("expires_in"),
                "give expires_at or expires_in, not both",
            ));
            None
        }
        (Some(Value::String(s)), None) => match DateTime::parse_from_rfc3339(s) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                errors.push(FieldError::new(
                    path("expires_at"),
                    "must be an RFC 3339 timestamp",
                ));
                None
            }
        },
        (Some(_), None) => {
            errors.push(FieldError::new(
                path("expires_at"),
                "must be an RFC 3339 timestamp",
            ));
            None
        }
        (None, Some(v)) => match v.as_i64() {
            Some(secs) if secs > 0 && secs <= 10 * 365 * 24 * 3600 => {
                Some(now + Duration::seconds(secs))
            }
            _ => {
                errors.push(FieldError::new(
                    path("expires_in"),
                    "must be a positive number of seconds",
                ));
                None
            }
        },
        (None, None) => None,
    };
    if let Some(at) = expires_at {
        if at <= now && refresh_token.is_none() {
            errors.push(FieldError::new(
                path("expires_at"),
                "the access token has already expired and no refresh_token was given",
            ));
        }
    }
    match (errors.is_empty(), access_token) {
        (true, Some(access_token)) => Ok(AuthenticationRequest::OauthToken(OauthToken {
            access_token: SecretString::from(access_token),
            refresh_token: refresh_token.map(SecretString::from),
            expires_at,
        })),
        _ => Err(errors),
    }
}

fn byoc(present: &Map<String, Value>) -> Result<AuthenticationRequest, Vec<FieldError>> {
    let mut errors = Vec::new();
    for (a, b) in [
        ("client_id", "client_secret"),
        ("consumer_key", "consumer_secret"),
    ] {
        match (present.contains_key(a), present.contains_key(b)) {
            (true, false) => errors.push(FieldError::new(path(b), format!("is required with {a}"))),
            (false, true) => errors.push(FieldError::new(path(a), format!("is required with {b}"))),
            _ => {}
        }
    }
    let id = non_empty_string(present, "client_id", &mut errors)
        .or_else(|| non_empty_string(present, "consumer_key", &mut errors));
    let secret = non_empty_string(present, "client_secret", &mut errors)
        .or_else(|| non_empty_string(present, "consumer_secret", &mut errors));
    match (errors.is_empty(), id, secret) {
        (true, Some(client_id), Some(secret)) => Ok(AuthenticationRequest::OauthByoc {
            client_id,
            client_secret: SecretString::from(secret),
        }),
        _ => Err(errors),
    }
}

fn provider(present: &Map<String, Value>) -> Result<AuthenticationRequest, Vec<FieldError>> {
    let mut errors = Vec::new();
    let id = match present.get("provider_readable_id") {
        Some(Value::String(s)) => match ReadableId::parse(s) {
            Ok(id) => Some(id),
            Err(m) => {
                errors.push(FieldError::new(path("provider_readable_id"), m));
                None
            }
        },
        Some(_) => {
            errors.push(FieldError::new(
                path("provider_readable_id"),
                "must be a string",
            ));
            None
        }
        None => {
            errors.push(FieldError::new(
                path("provider_readable_id"),
                "is required with provider_config",
            ));
            None
        }
    };
    let config = match present.get("provider_config") {
        None => None,
        Some(Value::Object(m)) => Some(m.clone()),
        Some(_) => {
            errors.push(FieldError::new(
                path("provider_config"),
                "must be an object",
            ));
            None
        }
    };
    match (errors.is_empty(), id) {
        (true, Some(provider_readable_id)) => Ok(AuthenticationRequest::AuthProvider {
            provider_readable_id,
            provider_config: config,
        }),
        _ => Err(errors),
    }
}

/// What the vault keeps for a connection: the whole credential as one JSON document.
pub fn credential_document(auth: &AuthenticationRequest) -> Option<SecretString> {
    let stored = match auth {
        AuthenticationRequest::Direct(c) => StoredCredential::Direct(c.clone()),
        AuthenticationRequest::OauthToken(t) => StoredCredential::Tokens {
            method: AuthMethod::OauthToken,
            token: t.clone(),
            obtained_at: None,
            client: None,
        },
        // The customer's app, kept until the callback adds the tokens.
        AuthenticationRequest::OauthByoc {
            client_id,
            client_secret,
        } => StoredCredential::AwaitingAuthorization {
            method: AuthMethod::OauthByoc,
            client: Some(crate::oauth::OAuthApp {
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
            }),
        },
        _ => return None,
    };
    Some(stored.document())
}

/// The credentials a vault document holds, as the source takes them. The error names what is
/// wrong with the document's shape, never a value.
pub fn parse_credential_document(document: &SecretString) -> Result<AuthenticationRequest, String> {
    StoredCredential::parse(document)?
        .auth()
        .ok_or_else(|| "the connection has not been authorized yet".to_owned())
}

/// A connection's secret, whole: what a source takes, and what the platform needs beside it
/// (the customer's OAuth app of a BYOC flow, the auth provider's account).
#[derive(Debug, Clone)]
pub enum StoredCredential {
    Direct(Credentials),
    /// OAuth tokens: imported (`oauth_token`) or from a browser flow (`oauth_browser`,
    /// `oauth_byoc`, whose customer app is kept for refreshes).
    Tokens {
        method: AuthMethod,
        token: OauthToken,
        /// When the access token was issued (for refreshing ahead of its expiry).
        obtained_at: Option<DateTime<Utc>>,
        client: Option<OAuthApp>,
    },
    /// A browser flow before its callback: a BYOC flow's customer app, or nothing.
    AwaitingAuthorization {
        method: AuthMethod,
        client: Option<OAuthApp>,
    },
    /// Credentials live at an auth provider, fetched at every run.
    Provider {
        provider_readable_id: ReadableId,
        account: AccountRef,
    },
}

impl StoredCredential {
    pub fn method(&self) -> AuthMethod {
        match self {
            Self::Direct(_) => AuthMethod::Direct,
            Self::Tokens { method, .. } => *method,
            Self::AwaitingAuthorization { method, .. } => *method,
            Self::Provider { .. } => AuthMethod::AuthProvider,
        }
    }

    /// What a source takes, when the secret holds it.
    pub fn auth(&self) -> Option<AuthenticationRequest> {
        match self {
            Self::Direct(c) => Some(AuthenticationRequest::Direct(c.clone())),
            Self::Tokens { token, .. } => Some(AuthenticationRequest::OauthToken(token.clone())),
            _ => None,
        }
    }

    /// The customer's OAuth app of a BYOC connection.
    pub fn client(&self) -> Option<&OAuthApp> {
        match self {
            Self::Tokens { client, .. } => client.as_ref(),
            Self::AwaitingAuthorization { client, .. } => client.as_ref(),
            _ => None,
        }
    }

    pub fn document(&self) -> SecretString {
        let client = |c: Option<&OAuthApp>| {
            c.map(|c| {
                serde_json::json!({
                    "client_id": c.client_id,
                    "client_secret": c.client_secret.expose_secret(),
                })
            })
        };
        let doc = match self {
            Self::Direct(c) => serde_json::json!({
                "method": "direct",
                "credentials": c.expose(),
            }),
            Self::Tokens {
                method,
                token,
                obtained_at,
                client: app,
            } => serde_json::json!({
                "method": method.as_str(),
                "access_token": token.access_token.expose_secret(),
                "refresh_token": token.refresh_token.as_ref().map(|r| r.expose_secret()),
                "expires_at": token.expires_at,
                "obtained_at": obtained_at,
                "client": client(app.as_ref()),
            }),
            Self::AwaitingAuthorization {
                method,
                client: app,
            } => serde_json::json!({
                "method": method.as_str(),
                "client": client(app.as_ref()),
            }),
            Self::Provider {
                provider_readable_id,
                account,
            } => serde_json::json!({
                "method": "auth_provider",
                "provider_readable_id": provider_readable_id.as_str(),
                "provider_config": account.to_config(),
            }),
        };
        SecretString::from(doc.to_string())
    }

    /// A vault document read back. The error names what is wrong with its shape, never a value.
    pub fn parse(document: &SecretString) -> Result<Self, String> {
        let value: Value = serde_json::from_str(document.expose_secret())
            .map_err(|_| "the stored credentials are not JSON".to_owned())?;
        let string = |name: &str| value.get(name).and_then(Value::as_str);
        let timestamp = |name: &str| match value.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => serde_json::from_value::<DateTime<Utc>>(v.clone())
                .map(Some)
                .map_err(|_| format!("the stored {name} is not a timestamp")),
        };
        let client = match value.get("client") {
            None | Some(Value::Null) => None,
            Some(c) => Some(
                OAuthApp::from_document(&SecretString::from(c.to_string()))
                    .ok_or("the stored OAuth client is incomplete")?,
            ),
        };
        let method = string("method").ok_or("the stored credentials name no method")?;
        match method {
            "direct" => match value.get("credentials") {
                Some(Value::Object(c)) => Ok(Self::Direct(Credentials::new(c.clone()))),
                _ => Err("the stored direct credentials have no credentials object".into()),
            },
            "oauth_token" | "oauth_browser" | "oauth_byoc" => {
                let method = match method {
                    "oauth_token" => AuthMethod::OauthToken,
                    "oauth_browser" => AuthMethod::OauthBrowser,
                    _ => AuthMethod::OauthByoc,
                };
                let Some(access_token) = string("access_token") else {
                    return match (method, client) {
                        (AuthMethod::OauthByoc, Some(client)) => Ok(Self::AwaitingAuthorization {
                            method,
                            client: Some(client),
                        }),
                        (AuthMethod::OauthBrowser, None) => Ok(Self::AwaitingAuthorization {
                            method,
                            client: None,
                        }),
                        _ => Err("the stored token has no access_token".into()),
                    };
                };
                Ok(Self::Tokens {
                    method,
                    token: OauthToken {
                        access_token: SecretString::from(access_token.to_owned()),
                        refresh_token: string("refresh_token")
                            .map(|r| SecretString::from(r.to_owned())),
                        expires_at: timestamp("expires_at")?,
                    },
                    obtained_at: timestamp("obtained_at")?,
                    client,
                })
            }
            "auth_provider" => {
                let id = string("provider_readable_id")
                    .and_then(|id| ReadableId::parse(id).ok())
                    .ok_or("the stored auth provider id is missing")?;
                let config = value.get("provider_config").and_then(Value::as_object);
                let account = [ProviderKind::Composio, ProviderKind::Pipedream]
                    .into_iter()
                    .find_map(|kind| AccountRef::parse(kind, config).ok())
                    .ok_or("the stored auth provider account is unreadable")?;
                Ok(Self::Provider {
                    provider_readable_id: id,
                    account,
                })
            }
            other => Err(format!(
                "stored credentials of method '{other}' are unknown"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
    }

    fn method(v: Value) -> AuthMethod {
        detect(Some(&v), now()).expect("detects").method()
    }

    fn errors(v: Value) -> Vec<String> {
        detect(Some(&v), now())
            .expect_err("rejects")
            .into_iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect()
    }

    /// Airweave's CLI tags the method (`"type": "direct"`): a tag that names the method the
    /// fields give is accepted, any other is a 422 on `authentication.type`.
    #[test]
    fn a_type_tag_must_name_the_method_the_fields_give() {
        assert_eq!(
            method(json!({"type": "direct", "credentials": {"api_key": "k"}})),
            AuthMethod::Direct
        );
        assert_eq!(
            method(json!({"type": "oauth_browser"})),
            AuthMethod::OauthBrowser
        );
        assert_eq!(
            method(json!({"type": null, "access_token": "t"})),
            AuthMethod::OauthToken
        );
        assert_eq!(
            errors(json!({"type": "oauth_token", "credentials": {"api_key": "k"}})),
            ["authentication.type: is 'oauth_token', but the fields given are those of 'direct'"]
        );
        for bad in [json!("basic"), json!(3)] {
            assert_eq!(
                errors(json!({"type": bad, "credentials": {"api_key": "k"}})),
                ["authentication.type: must be one of direct, oauth_token, oauth_browser, oauth_byoc, auth_provider"]
            );
        }
    }

    #[test]
    fn each_row_of_the_table_is_detected() {
        assert_eq!(
            method(json!({"credentials": {"api_key": "k"}})),
            AuthMethod::Direct
        );
        assert_eq!(method(json!({"access_token": "t"})), AuthMethod::OauthToken);
        assert_eq!(
            method(json!({"access_token": "t", "refresh_token": "r", "expires_in": 3600})),
            AuthMethod::OauthToken
        );
        assert_eq!(method(json!({})), AuthMethod::OauthBrowser);
        assert_eq!(
            method(json!({"redirect_uri": "https://app.example.com"})),
            AuthMethod::OauthBrowser
        );
        assert_eq!(
            detect(None, now()).unwrap().method(),
            AuthMethod::OauthBrowser
        );
        assert_eq!(
            detect(Some(&Value::Null), now()).unwrap().method(),
            AuthMethod::OauthBrowser
        );
        assert_eq!(
            method(json!({"client_id": "i", "client_secret": "s"})),
            AuthMethod::OauthByoc
        );
        assert_eq!(
            method(json!({"provider_readable_id": "my-composio"})),
            AuthMethod::AuthProvider
        );
        assert_eq!(
            method(
                json!({"provider_readable_id": "my-composio", "provider_config": {"auth_config_id": "x"}})
            ),
            AuthMethod::AuthProvider
        );
    }

    #[test]
    fn explicit_nulls_count_as_absent() {
        assert_eq!(
            method(json!({"access_token": "t", "refresh_token": null, "credentials": null})),
            AuthMethod::OauthToken
        );
    }

    #[test]
    fn a_mix_of_two_rows_names_the_conflict() {
        let e = errors(json!({"credentials": {"api_key": "k"}, "access_token": "t"}));
        assert_eq!(e.len(), 1);
        assert!(e[0].contains("credentials (direct)"), "{e:?}");
        assert!(e[0].contains("access_token (oauth_token)"), "{e:?}");

        let e =
            errors(json!({"client_id": "i", "client_secret": "s", "provider_readable_id": "p-1"}));
        assert!(
            e[0].contains("oauth_byoc") && e[0].contains("auth_provider"),
            "{e:?}"
        );

        let e = errors(json!({"access_token": "t", "redirect_uri": "https://x.example"}));
        assert!(e[0].contains("redirect_uri (oauth_browser)"), "{e:?}");
    }

    #[test]
    fn byoc_needs_both_halves() {
        assert_eq!(
            errors(json!({"client_id": "i"})),
            ["authentication.client_secret: is required with client_id"]
        );
        assert_eq!(
            errors(json!({"client_secret": "s"})),
            ["authentication.client_id: is required with client_secret"]
        );
    }

    #[test]
    fn direct_credentials_must_be_a_non_empty_object() {
        assert_eq!(
            errors(json!({"credentials": {}})),
            ["authentication.credentials: must not be empty"]
        );
        assert_eq!(
            errors(json!({"credentials": "k"})),
            ["authentication.credentials: must be an object"]
        );
    }

    #[test]
    fn token_fields_are_checked() {
        assert_eq!(
            errors(json!({"refresh_token": "r"})),
            ["authentication.access_token: is required"]
        );
        assert_eq!(
            errors(json!({"access_token": ""})),
            ["authentication.access_token: must be a non-empty string"]
        );
        assert_eq!(
            errors(json!({"access_token": "t", "expires_at": "tomorrow"})),
            ["authentication.expires_at: must be an RFC 3339 timestamp"]
        );
        assert_eq!(
            errors(json!({"access_token": "t", "expires_in": 0})),
            ["authentication.expires_in: must be a positive number of seconds"]
        );
        assert_eq!(
            errors(
                json!({"access_token": "t", "expires_in": 60, "expires_at": "2030-01-01T00:00:00Z"})
            ),
            ["authentication.expires_in: give expires_at or expires_in, not both"]
        );
        let expired = errors(json!({"access_token": "t", "expires_at": "2020-01-01T00:00:00Z"}));
        assert!(expired[0].contains("already expired"), "{expired:?}");
    }

    #[test]
    fn expires_in_becomes_an_instant() {
        let AuthenticationRequest::OauthToken(t) = detect(
            Some(&json!({"access_token": "t", "expires_in": 3600})),
            now(),
        )
        .unwrap() else {
            panic!("token");
        };
        assert_eq!(t.expires_at, Some(now() + Duration::hours(1)));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert_eq!(
            errors(json!({"api_key": "k"})),
            ["authentication.api_key: unknown field"]
        );
        assert_eq!(
            errors(json!("token")),
            ["authentication: must be an object"]
        );
    }

    #[test]
    fn credential_documents_round_trip() {
        let direct = detect(Some(&json!({"credentials": {"api_key": "k-1"}})), now()).unwrap();
        let doc = credential_document(&direct).unwrap();
        let AuthenticationRequest::Direct(c) = parse_credential_document(&doc).unwrap() else {
            panic!("direct");
        };
        assert_eq!(c.string("api_key"), Some("k-1"));

        let token = detect(
            Some(&json!({"access_token": "t-1", "refresh_token": "r-1", "expires_in": 60})),
            now(),
        )
        .unwrap();
        let doc = credential_document(&token).unwrap();
        let AuthenticationRequest::OauthToken(t) = parse_credential_document(&doc).unwrap() else {
            panic!("token");
        };
        assert_eq!(t.access_token.expose_secret(), "t-1");
        assert_eq!(t.refresh_token.unwrap().expose_secret(), "r-1");
        assert_eq!(t.expires_at, Some(now() + Duration::seconds(60)));

        let bad =
            SecretString::from(r#"{"method": "direct", "credentials": "sk-secret"}"#.to_owned());
        let e = parse_credential_document(&bad).unwrap_err();
        assert!(!e.contains("sk-secret"), "{e}");
        assert!(
            parse_credential_document(&SecretString::from("sk-not-json".to_owned()))
                .unwrap_err()
                .contains("not JSON")
        );
    }

    /// Every type that holds a credential, with known secret values, through `{:?}` and
    /// `{:#?}`: none of the values shows.
    #[test]
    fn debug_of_every_credential_type_redacts_its_secrets() {
        use crate::auth_provider::ProviderCredentials;
        use crate::oauth::OAuthApp;
        let secrets = [
            "sk-direct-secret-1",
            "at-access-secret-2",
            "rt-refresh-secret-3",
            "cs-client-secret-4",
            "ak-composio-secret-5",
            "pd-client-secret-6",
        ];
        let app = || OAuthApp {
            client_id: "client-id-shown".into(),
            client_secret: SecretString::from(secrets[3].to_owned()),
        };
        let token = OauthToken {
            access_token: SecretString::from(secrets[1].to_owned()),
            refresh_token: Some(SecretString::from(secrets[2].to_owned())),
            expires_at: Some(now()),
        };
        let Ok(AuthenticationRequest::Direct(direct)) = detect(
            Some(&json!({"credentials": {"api_key": secrets[0]}})),
            now(),
        ) else {
            panic!("direct credentials");
        };
        let shown = [
            format!("{:?}", StoredCredential::Direct(direct.clone())),
            format!(
                "{:#?}",
                StoredCredential::Tokens {
                    method: AuthMethod::OauthByoc,
                    token: token.clone(),
                    obtained_at: Some(now()),
                    client: Some(app()),
                }
            ),
            format!(
                "{:?}",
                StoredCredential::AwaitingAuthorization {
                    method: AuthMethod::OauthByoc,
                    client: Some(app())
                }
            ),
            format!("{:?}", AuthenticationRequest::Direct(direct)),
            format!("{:?}", AuthenticationRequest::OauthToken(token)),
            format!(
                "{:?}",
                AuthenticationRequest::OauthByoc {
                    client_id: "client-id-shown".into(),
                    client_secret: SecretString::from(secrets[3].to_owned()),
                }
            ),
            format!(
                "{:?}",
                ProviderCredentials::Composio {
                    api_key: SecretString::from(secrets[4].to_owned())
                }
            ),
            format!(
                "{:#?}",
                ProviderCredentials::Pipedream {
                    client_id: "pd-client-id".into(),
                    client_secret: SecretString::from(secrets[5].to_owned()),
                    project_id: "proj_1".into(),
                    environment: "production".into(),
                }
            ),
        ];
        for text in &shown {
            for secret in secrets {
                assert!(!text.contains(secret), "{secret} in {text}");
            }
        }
        assert!(
            shown[2].contains("client-id-shown"),
            "what is not secret still shows"
        );
    }

    #[test]
    fn debug_never_shows_secret_values() {
        let auth = detect(
            Some(&json!({"credentials": {"api_key": "sk-very-secret"}})),
            now(),
        )
        .unwrap();
        assert!(!format!("{auth:?}").contains("sk-very-secret"));
        let token = detect(Some(&json!({"access_token": "tok-very-secret"})), now()).unwrap();
        assert!(!format!("{token:?}").contains("tok-very-secret"));
    }
}

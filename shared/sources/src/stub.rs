//! `stub`: a synthetic source with no network, for demos, load tests and benchmarks.

use crate::source::Source;
use async_trait::async_trait;
use domain::auth::AuthenticationRequest;
use domain::catalog::{AuthMethod, FieldSpec, FieldType, SourceSpec};
use domain::ports::CheckError;
use serde_json::{Map, Value};

/// The synthetic source. Its sync (added later) generates `entity_count` deterministic entities
/// from `seed`; its credential check accepts any non-empty `api_key`.
#[derive(Debug, Clone)]
pub struct StubSource {
    spec: SourceSpec,
}

impl StubSource {
    pub const SHORT_NAME: &'static str = "stub";

    pub fn new() -> Self {
        Self { spec: spec() }
    }
}

impl Default for StubSource {
    fn default() -> Self {
        Self::new()
    }
}

/// The stub's config with its defaults applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StubConfig {
    pub entity_count: u32,
    pub seed: u32,
}

impl StubConfig {
    pub const DEFAULT_ENTITY_COUNT: u32 = 100;
    pub const MAX_ENTITY_COUNT: u32 = 1_000_000;
    pub const DEFAULT_SEED: u32 = 0;
    pub const MAX_SEED: u32 = i32::MAX as u32;

    /// Reads a config that already passed the spec's validation; absent (or out-of-range,
    /// which validation rules out) values take their defaults.
    pub fn from_config(config: &Map<String, Value>) -> Self {
        let read = |name: &str, max: u32, default: u32| {
            config
                .get(name)
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n <= max)
                .unwrap_or(default)
        };
        Self {
            entity_count: read(
                "entity_count",
                Self::MAX_ENTITY_COUNT,
                Self::DEFAULT_ENTITY_COUNT,
            )
            .max(1),
            seed: read("seed", Self::MAX_SEED, Self::DEFAULT_SEED),
        }
    }
}

fn spec() -> SourceSpec {
    SourceSpec {
        short_name: StubSource::SHORT_NAME,
        name: "Stub",
        class_name: "StubSource",
        description: "A synthetic source that generates deterministic entities without any \
                      network access, for demos, load tests and benchmarks.",
        auth_methods: vec![AuthMethod::Direct],
        requires_byoc: false,
        auth_fields: vec![FieldSpec::new("api_key", "API Key", FieldType::String)
            .describe("Any non-empty value; the stub source checks nothing upstream.")
            .required()
            .secret()],
        config_fields: vec![
            FieldSpec::new("entity_count", "Entity count", FieldType::Integer)
                .describe("How many entities a sync generates (default 100).")
                .range(1, i64::from(StubConfig::MAX_ENTITY_COUNT)),
            FieldSpec::new("seed", "Seed", FieldType::Integer)
                .describe(
                    "Seed of the generator: the same seed and count give the same entities \
                     (default 0).",
                )
                .range(0, i64::from(StubConfig::MAX_SEED)),
        ],
        supported_auth_providers: vec![],
        entity_types: vec!["stub_container", "stub_item"],
        supports_continuous: false,
        federated_search: false,
        labels: vec!["Internal"],
    }
}

#[async_trait]
impl Source for StubSource {
    fn spec(&self) -> &SourceSpec {
        &self.spec
    }

    async fn check_credentials(
        &self,
        auth: &AuthenticationRequest,
        _config: &Map<String, Value>,
    ) -> Result<(), CheckError> {
        match auth {
            AuthenticationRequest::Direct(credentials) => match credentials.string("api_key") {
                Some(key) if !key.trim().is_empty() => Ok(()),
                _ => Err(CheckError::Rejected("api_key must not be empty".into())),
            },
            other => Err(CheckError::Rejected(format!(
                "the stub source does not take {} authentication",
                other.method().as_str()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::auth::Credentials;
    use domain::catalog::validate_fields;
    use serde_json::json;

    fn object(v: Value) -> Map<String, Value> {
        v.as_object().expect("object").clone()
    }

    fn config_errors(v: Value) -> Vec<String> {
        validate_fields(&spec().config_fields, &object(v), "config")
            .into_iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect()
    }

    #[test]
    fn config_is_optional_and_bounded() {
        assert!(config_errors(json!({})).is_empty());
        assert!(config_errors(json!({"entity_count": 1, "seed": 0})).is_empty());
        assert!(
            config_errors(json!({"entity_count": 1_000_000, "seed": 2_147_483_647})).is_empty()
        );
        assert_eq!(
            config_errors(json!({"entity_count": 0})),
            ["config.entity_count: must be between 1 and 1000000"]
        );
        assert_eq!(
            config_errors(json!({"entity_count": 1_000_001})),
            ["config.entity_count: must be between 1 and 1000000"]
        );
        assert_eq!(
            config_errors(json!({"seed": -1})),
            ["config.seed: must be between 0 and 2147483647"]
        );
        assert_eq!(
            config_errors(json!({"seed": 2_147_483_648_i64})),
            ["config.seed: must be between 0 and 2147483647"]
        );
    }

    #[test]
    fn defaults_apply_to_absent_fields() {
        assert_eq!(
            StubConfig::from_config(&Map::new()),
            StubConfig {
                entity_count: 100,
                seed: 0
            }
        );
        assert_eq!(
            StubConfig::from_config(&object(json!({"entity_count": 7, "seed": 42}))),
            StubConfig {
                entity_count: 7,
                seed: 42
            }
        );
    }

    #[tokio::test]
    async fn any_non_empty_key_passes_without_network() {
        let stub = StubSource::new();
        let auth =
            AuthenticationRequest::Direct(Credentials::new(object(json!({"api_key": "anything"}))));
        assert_eq!(stub.check_credentials(&auth, &Map::new()).await, Ok(()));

        let blank =
            AuthenticationRequest::Direct(Credentials::new(object(json!({"api_key": " "}))));
        assert!(matches!(
            stub.check_credentials(&blank, &Map::new()).await,
            Err(CheckError::Rejected(_))
        ));
        assert!(matches!(
            stub.check_credentials(&AuthenticationRequest::OauthBrowser, &Map::new())
                .await,
            Err(CheckError::Rejected(_))
        ));
    }
}

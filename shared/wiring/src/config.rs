//! Configuration: environment only, parsed once at cold start. A missing value fails start-up
//! with a message naming it.

use std::env;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// DynamoDB single table for state (`STATE_TABLE`).
    pub state_table: String,
    /// DynamoDB table for synced entities (`ENTITIES_TABLE`).
    pub entities_table: String,
    /// SQS queue the sync worker consumes (`SYNC_QUEUE_URL`).
    pub sync_queue_url: String,
    /// Secrets Manager name prefix (`SECRETS_PREFIX`), e.g. `connectors`.
    pub secrets_prefix: String,
    /// Public base URL of the API (`API_BASE_URL`), used for OAuth redirect URIs.
    pub api_base_url: Option<String>,
}

impl Config {
    /// `{API_BASE_URL}/oauth/callback`: the exact redirect URI of every browser OAuth flow.
    pub fn oauth_redirect_uri(&self) -> Option<String> {
        self.api_base_url
            .as_deref()
            .map(|base| format!("{}/oauth/callback", base.trim_end_matches('/')))
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("missing or empty environment variable {0}")]
pub struct MissingVar(pub &'static str);

impl Config {
    pub fn from_env() -> Result<Self, MissingVar> {
        Self::from_lookup(|name| env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, MissingVar> {
        let required = |name: &'static str| {
            lookup(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or(MissingVar(name))
        };
        Ok(Self {
            state_table: required("STATE_TABLE")?,
            entities_table: required("ENTITIES_TABLE")?,
            sync_queue_url: required("SYNC_QUEUE_URL")?,
            secrets_prefix: required("SECRETS_PREFIX")?,
            api_base_url: lookup("API_BASE_URL").filter(|v| !v.trim().is_empty()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn every_required_variable_is_named_when_missing() {
        let all = [
            ("STATE_TABLE", "s"),
            ("ENTITIES_TABLE", "e"),
            ("SYNC_QUEUE_URL", "q"),
            ("SECRETS_PREFIX", "p"),
        ];
        assert!(Config::from_lookup(vars(&all)).is_ok());
        for skip in 0..all.len() {
            let partial: Vec<_> = all
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, kv)| *kv)
                .collect();
            assert_eq!(
                Config::from_lookup(vars(&partial)).unwrap_err(),
                MissingVar(all[skip].0)
            );
        }
        let mut blank = all.to_vec();
        blank[0] = ("STATE_TABLE", "  ");
        assert_eq!(
            Config::from_lookup(vars(&blank)).unwrap_err(),
            MissingVar("STATE_TABLE")
        );
    }
}

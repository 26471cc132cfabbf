//! Every source the platform offers, built once per cold start.

use crate::base_url::BaseUrl;
use crate::github::GitHubSource;
use crate::source::Source;
use crate::stub::StubSource;
use crate::upstream::http_client;
use async_trait::async_trait;
use domain::auth::AuthenticationRequest;
use domain::catalog::SourceSpec;
use domain::oauth::OAuthEndpoints;
use domain::ports::{CheckError, SourceDirectory};
use domain::stream::{EntityStream, StreamError, StreamRequest};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// Why the catalog could not be built at start-up.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The message names the variable and the rule, never the value.
    #[error("{variable} {reason}")]
    InvalidBaseUrl { variable: String, reason: String },
    #[error("could not build the HTTP client of the sources")]
    HttpClient(#[source] reqwest::Error),
}

/// The sources by short name; cheap to clone, shared by every request of a process.
#[derive(Clone)]
pub struct Catalog {
    sources: BTreeMap<&'static str, Arc<dyn Source>>,
    /// Each OAuth source's authorize and token URLs, operator overrides applied.
    oauth: BTreeMap<&'static str, OAuthEndpoints>,
}

/// A process environment variable, as the `from_lookup` constructors read them.
pub fn env_var(name: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(value) => Some(value),
        Err(std::env::VarError::NotPresent) => None,
        // Not a URL either way; parsing it reports the variable.
        Err(std::env::VarError::NotUnicode(_)) => Some("<not unicode>".to_owned()),
    }
}

impl Catalog {
    /// Builds every source from the process environment: `SOURCE_<SHORT_NAME>_BASE_URL`
    /// overrides a source's upstream (unset or empty means its public API).
    pub fn from_env() -> Result<Self, CatalogError> {
        Self::from_lookup(env_var)
    }

    /// As [`Catalog::from_env`], reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, CatalogError> {
        Self::from_lookup_with(http_client().map_err(CatalogError::HttpClient)?, lookup)
    }

    /// As [`Catalog::from_lookup`], on a client the process already built.
    pub fn from_lookup_with(
        client: reqwest::Client,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, CatalogError> {
        let url = |short_name, default| base_url(&lookup, short_name, default);
        let mut sources: Vec<Arc<dyn Source>> = vec![Arc::new(StubSource::new())];
        // One line per source: its short name, its public API, and how it is built.
        sources.push(Arc::new(GitHubSource::new(
            client.clone(),
            url(GitHubSource::SHORT_NAME, GitHubSource::DEFAULT_BASE_URL)?,
        )));
        sources.push(Arc::new(crate::notion::NotionSource::new(
            client.clone(),
            url(
                crate::notion::NotionSource::SHORT_NAME,
                crate::notion::NotionSource::DEFAULT_BASE_URL,
            )?,
        )));
        sources.push(Arc::new(crate::linear::LinearSource::new(
            client.clone(),
            url(
                crate::linear::LinearSource::SHORT_NAME,
                crate::linear::LinearSource::DEFAULT_BASE_URL,
            )?,
        )));
        sources.push(Arc::new(crate::google_drive::GoogleDriveSource::new(
            client.clone(),
            url(
                crate::google_drive::GoogleDriveSource::SHORT_NAME,
                crate::google_drive::GoogleDriveSource::DEFAULT_BASE_URL,
            )?,
        )));
        sources.push(Arc::new(crate::slack::SlackSource::new(
            client.clone(),
            url(
                crate::slack::SlackSource::SHORT_NAME,
                crate::slack::SlackSource::DEFAULT_BASE_URL,
            )?,
        )));
        let mut catalog = Self::from_sources(sources);
        catalog.oauth = oauth_endpoints(&catalog, &lookup)?;
        Ok(catalog)
    }

    /// Every source with its public API, except GitHub at `url` (a fake, in tests).
    pub fn with_github_base_url(url: &str) -> Result<Self, CatalogError> {
        Self::with_base_urls(&[(GitHubSource::SHORT_NAME, url)])
    }

    /// Every source with its public API, except these (short name, base URL) pairs: fakes, in
    /// tests.
    pub fn with_base_urls(urls: &[(&str, &str)]) -> Result<Self, CatalogError> {
        let urls: Vec<(String, String)> = urls
            .iter()
            .map(|(name, url)| (Self::base_url_variable(name), (*url).to_owned()))
            .collect();
        Self::from_lookup(move |variable| {
            urls.iter()
                .find(|(v, _)| v == variable)
                .map(|(_, url)| url.clone())
        })
    }

    /// A catalog of exactly these sources; a later one replaces an earlier one of the same
    /// short name.
    pub fn from_sources(sources: Vec<Arc<dyn Source>>) -> Self {
        let sources: BTreeMap<&'static str, Arc<dyn Source>> = sources
            .into_iter()
            .map(|source| (source.spec().short_name, source))
            .collect();
        let oauth = sources
            .iter()
            .filter_map(|(name, source)| {
                let settings = source.spec().oauth.as_ref()?;
                Some((
                    *name,
                    OAuthEndpoints {
                        authorize_url: settings.authorize_url.to_owned(),
                        token_url: settings.token_url.to_owned(),
                    },
                ))
            })
            .collect();
        Self { sources, oauth }
    }

    /// `SOURCE_GITHUB_BASE_URL` for `github`.
    pub fn base_url_variable(short_name: &str) -> String {
        format!("SOURCE_{}_BASE_URL", short_name.to_ascii_uppercase())
    }

    pub fn source(&self, short_name: &str) -> Option<&dyn Source> {
        self.sources.get(short_name).map(|s| s.as_ref())
    }
}

/// Each OAuth source's endpoints: `SOURCE_<SHORT_NAME>_AUTHORIZE_URL` and
/// `SOURCE_<SHORT_NAME>_TOKEN_URL` override the catalog's (how tests and `make dev` reach a fake
/// provider), with the base URLs' rules: https, or http on loopback only.
fn oauth_endpoints(
    catalog: &Catalog,
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<BTreeMap<&'static str, OAuthEndpoints>, CatalogError> {
    let mut endpoints = BTreeMap::new();
    for (name, defaults) in &catalog.oauth {
        let upper = name.to_ascii_uppercase();
        let pick = |kind: &str, default: &str| -> Result<String, CatalogError> {
            configured_url(lookup, format!("SOURCE_{upper}_{kind}_URL"), default)
                .map(|url| url.as_str().to_owned())
        };
        endpoints.insert(
            *name,
            OAuthEndpoints {
                authorize_url: pick("AUTHORIZE", &defaults.authorize_url)?,
                token_url: pick("TOKEN", &defaults.token_url)?,
            },
        );
    }
    Ok(endpoints)
}

fn base_url(
    lookup: &impl Fn(&str) -> Option<String>,
    short_name: &str,
    default: &str,
) -> Result<BaseUrl, CatalogError> {
    configured_url(lookup, Catalog::base_url_variable(short_name), default)
}

/// The URL `variable` names (unset or empty: `default`), under the base URLs' rules; the error
/// names the variable, never its value.
pub(crate) fn configured_url(
    lookup: &impl Fn(&str) -> Option<String>,
    variable: String,
    default: &str,
) -> Result<BaseUrl, CatalogError> {
    let configured = lookup(&variable).filter(|v| !v.trim().is_empty());
    BaseUrl::parse(configured.as_deref().unwrap_or(default))
        .map_err(|reason| CatalogError::InvalidBaseUrl { variable, reason })
}

impl fmt::Debug for Catalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Catalog")
            .field("sources", &self.sources.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[async_trait]
impl SourceDirectory for Catalog {
    fn spec(&self, short_name: &str) -> Option<&SourceSpec> {
        self.source(short_name).map(Source::spec)
    }

    /// Sorted by short name.
    fn specs(&self) -> Vec<&SourceSpec> {
        self.sources.values().map(|s| s.spec()).collect()
    }

    async fn check_credentials(
        &self,
        short_name: &str,
        auth: &AuthenticationRequest,
        config: &Map<String, Value>,
    ) -> Result<(), CheckError> {
        match self.source(short_name) {
            Some(source) => source.check_credentials(auth, config).await,
            // The use case looks the spec up first, so this is a caller's bug.
            None => {
                tracing::error!(
                    short_name,
                    "credential check for a source not in the catalog"
                );
                Err(CheckError::Unavailable(format!(
                    "source '{short_name}' is not in the catalog"
                )))
            }
        }
    }

    fn oauth_endpoints(&self, short_name: &str) -> Option<OAuthEndpoints> {
        self.oauth.get(short_name).cloned()
    }

    fn open_stream(
        &self,
        short_name: &str,
        request: StreamRequest,
    ) -> Result<Box<dyn EntityStream>, StreamError> {
        match self.source(short_name) {
            Some(source) => source.open_stream(request),
            None => Err(StreamError::Unsupported(format!(
                "source '{short_name}' is not in the catalog"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::auth::Credentials;
    use domain::catalog::{AuthMethod, FieldType};
    use domain::names::ShortName;
    use serde_json::json;

    fn catalog() -> Catalog {
        Catalog::from_lookup(|_| None).expect("the defaults are valid")
    }

    #[test]
    fn specs_are_sorted_by_short_name() {
        let catalog = catalog();
        let names: Vec<&str> = catalog.specs().iter().map(|s| s.short_name).collect();
        assert_eq!(
            names,
            [
                "github",
                "google_drive",
                "linear",
                "notion",
                "slack",
                "stub"
            ]
        );
    }

    #[test]
    fn every_entry_is_well_formed() {
        for spec in catalog().specs() {
            assert!(
                ShortName::parse(spec.short_name).is_ok(),
                "{}",
                spec.short_name
            );
            assert!(!spec.name.is_empty() && !spec.description.is_empty());
            assert!(spec.class_name.ends_with("Source"));
            assert!(!spec.auth_methods.is_empty());
            assert!(!spec.entity_types.is_empty());
            for field in spec.auth_fields.iter().chain(&spec.config_fields) {
                assert!(!field.title.is_empty() && !field.description.is_empty());
                if field.field_type == FieldType::Integer {
                    assert!(field.min.is_some() && field.max.is_some(), "{}", field.name);
                }
            }
            assert!(
                spec.auth_fields.iter().all(|f| f.is_secret),
                "auth fields of {} are secrets",
                spec.short_name
            );
        }
    }

    #[test]
    fn every_real_source_syncs_and_says_how_it_signs_in() {
        for spec in catalog().specs() {
            if spec.short_name == "stub" {
                continue;
            }
            assert!(!spec.federated_search, "{} is synced", spec.short_name);
            let oauth = spec
                .oauth
                .as_ref()
                .unwrap_or_else(|| panic!("{} has its OAuth app settings", spec.short_name));
            assert!(oauth.authorize_url.starts_with("https://"));
            assert!(oauth.token_url.starts_with("https://"));
            assert!(oauth.access_token_pointer.starts_with('/'));
        }
    }

    #[test]
    fn the_stub_and_github_entries_read_as_documented() {
        let catalog = catalog();
        let stub = catalog.spec("stub").unwrap();
        assert_eq!((stub.name, stub.class_name), ("Stub", "StubSource"));
        assert_eq!(stub.auth_methods, [AuthMethod::Direct]);
        let config: Vec<(&str, bool)> = stub
            .config_fields
            .iter()
            .map(|f| (f.name, f.required))
            .collect();
        assert_eq!(
            config,
            [
                ("entity_count", false),
                ("seed", false),
                ("revision", false),
                ("page_size", false),
                ("incremental", false),
                ("fail_after", false),
                ("fail_with", false)
            ]
        );
        assert!(!stub.supports_continuous && !stub.federated_search);

        let github = catalog.spec("github").unwrap();
        assert_eq!((github.name, github.class_name), ("GitHub", "GitHubSource"));
        assert_eq!(
            github.auth_methods,
            [
                AuthMethod::Direct,
                AuthMethod::OauthToken,
                AuthMethod::OauthBrowser,
                AuthMethod::OauthByoc,
                AuthMethod::AuthProvider
            ]
        );
        assert_eq!(github.supported_auth_providers, ["composio", "pipedream"]);
        let config: Vec<(&str, bool)> = github
            .config_fields
            .iter()
            .map(|f| (f.name, f.required))
            .collect();
        assert_eq!(config, [("repo_name", true), ("branch", false)]);
        assert!(catalog.spec("jira").is_none());
    }

    #[test]
    fn the_wire_shape_of_a_spec_hides_internal_rules() {
        let value = serde_json::to_value(catalog().spec("stub").unwrap()).unwrap();
        let field = &value["config_fields"][0];
        assert_eq!(field["name"], "entity_count");
        assert_eq!(field["type"], "integer");
        assert!(field.get("min").is_none() && field.get("check").is_none());
        assert_eq!(value["auth_methods"], json!(["direct"]));
    }

    #[test]
    fn oauth_endpoints_come_from_the_catalog_unless_the_operator_overrides_them() {
        let catalog = Catalog::from_lookup(|name| match name {
            "SOURCE_GITHUB_TOKEN_URL" => Some("http://127.0.0.1:4799/token".into()),
            _ => None,
        })
        .unwrap();
        let github = catalog.oauth_endpoints("github").unwrap();
        assert_eq!(
            github.authorize_url,
            "https://github.com/login/oauth/authorize"
        );
        assert_eq!(github.token_url, "http://127.0.0.1:4799/token");
        assert_eq!(catalog.oauth_endpoints("stub"), None);
        assert!(catalog.oauth_endpoints("slack").is_some());

        let err = Catalog::from_lookup(|name| {
            (name == "SOURCE_SLACK_AUTHORIZE_URL").then(|| "http://slack.internal/auth".into())
        })
        .unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("SOURCE_SLACK_AUTHORIZE_URL "),
            "{message}"
        );
        assert!(!message.contains("slack.internal"), "{message}");
    }

    #[test]
    fn base_urls_come_from_the_environment_and_are_checked() {
        let catalog = Catalog::with_github_base_url("http://127.0.0.1:9999").unwrap();
        let github = catalog.source("github").unwrap();
        assert_eq!(github.spec().short_name, "github");

        let defaulted = Catalog::from_lookup(|_| Some("  ".into())).unwrap();
        assert!(defaulted.source("github").is_some());

        let err = Catalog::from_lookup(|name| {
            (name == "SOURCE_GITHUB_BASE_URL").then(|| "http://github.internal".into())
        })
        .unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("SOURCE_GITHUB_BASE_URL "), "{message}");
        assert!(!message.contains("github.internal"), "{message}");

        assert!(Catalog::with_github_base_url("not a url").is_err());
    }

    #[tokio::test]
    async fn checks_are_dispatched_by_short_name() {
        let catalog = catalog();
        let key = json!({"api_key": "k"});
        let auth =
            AuthenticationRequest::Direct(Credentials::new(key.as_object().unwrap().clone()));
        assert_eq!(
            catalog.check_credentials("stub", &auth, &Map::new()).await,
            Ok(())
        );
        assert!(matches!(
            catalog.check_credentials("nope", &auth, &Map::new()).await,
            Err(CheckError::Unavailable(_))
        ));
    }
}

//! `linear`: teams, users, projects, issues (with state, assignee and labels) and comments
//! through Linear's GraphQL API (`POST {base}/graphql`).
//!
//! A run walks the kinds in a fixed order (teams, users, projects, issues, comments), one
//! GraphQL page (`first`/`after`, `pageInfo { hasNextPage endCursor }`) per `next_page`; the
//! checkpoint names the kind, the page cursor and the run's cursor bookkeeping. After a completed
//! run the next one asks projects, issues and comments only for what changed
//! (`filter: { updatedAt: { gt: $since } }`, archived ones included so they can be reported
//! removed); teams and users are few and always listed whole, and what was deleted outright or
//! archived among them is dropped by the next full sync.
//!
//! Linear reports failures as GraphQL `errors` (often with HTTP 400): `extensions.code`
//! `RATELIMITED` is a rate limit and `AUTHENTICATION_ERROR` a rejected key, never data;
//! `FORBIDDEN` is a rejected key only when nothing else arrived, otherwise a partial answer.

mod api;
mod entities;
mod kinds;
mod stream;

use crate::base_url::BaseUrl;
use crate::source::Source;
use crate::upstream::{bearer, check_exchange, secret_header, CHECK_BODY_LIMIT};
use api::{classify, Refusal};
use async_trait::async_trait;
use chrono::Utc;
use domain::auth::AuthenticationRequest;
use domain::catalog::{AuthMethod, ClientAuth, FieldSpec, FieldType, OAuthSettings, SourceSpec};
use domain::ports::CheckError;
use domain::stream::{EntityStream, StreamError, StreamRequest};
use kinds::Kind;
use reqwest::header::{HeaderValue, AUTHORIZATION};
use secrecy::ExposeSecret;
use serde_json::{json, Map, Value};
use stream::{Checkpoint, Cursor, LinearStream};

const NAME: &str = "Linear";

/// Linear (linear.app).
#[derive(Debug, Clone)]
pub struct LinearSource {
    spec: SourceSpec,
    client: reqwest::Client,
    base_url: BaseUrl,
}

impl LinearSource {
    pub const SHORT_NAME: &'static str = "linear";
    pub const DEFAULT_BASE_URL: &'static str = "https://api.linear.app";

    pub fn new(client: reqwest::Client, base_url: BaseUrl) -> Self {
        Self {
            spec: spec(),
            client,
            base_url,
        }
    }

    fn endpoint(&self) -> String {
        self.base_url.endpoint("graphql")
    }
}

fn spec() -> SourceSpec {
    SourceSpec {
        short_name: LinearSource::SHORT_NAME,
        name: "Linear",
        class_name: "LinearSource",
        description: "Teams, users, projects, issues and comments of a Linear workspace.",
        auth_methods: vec![
            AuthMethod::Direct,
            AuthMethod::OauthToken,
            AuthMethod::OauthBrowser,
            AuthMethod::OauthByoc,
            AuthMethod::AuthProvider,
        ],
        requires_byoc: false,
        auth_fields: vec![FieldSpec::new("api_key", "API Key", FieldType::String)
            .describe("A personal API key with read access (Linear: Settings, Security & access).")
            .required()
            .secret()],
        config_fields: vec![],
        supported_auth_providers: vec!["composio", "pipedream"],
        entity_types: Kind::ORDER.iter().map(|k| k.entity_type()).collect(),
        supports_continuous: false,
        supports_incremental: true,
        federated_search: false,
        labels: vec!["Project Management"],
        oauth: Some(OAuthSettings {
            authorize_url: "https://linear.app/oauth/authorize",
            token_url: "https://api.linear.app/oauth/token",
            scopes: vec!["read"],
            user_scopes: vec![],
            scope_separator: ",",
            pkce: true,
            client_auth: ClientAuth::RequestBody,
            access_token_pointer: "/access_token",
            refresh_token_pointer: Some("/refresh_token"),
            extra_authorize_params: vec![],
        }),
    }
}

/// The `Authorization` value: a personal API key goes as it is, an OAuth token as a bearer
/// token (Linear tells them apart by the scheme). The secret is exposed only here.
fn authorization(auth: &AuthenticationRequest) -> Result<HeaderValue, String> {
    let value = match auth {
        AuthenticationRequest::Direct(credentials) => credentials
            .string("api_key")
            .map(|key| secret_header(key.trim()))
            .ok_or("api_key is required")?,
        AuthenticationRequest::OauthToken(token) => bearer(token.access_token.expose_secret()),
        other => {
            return Err(format!(
                "Linear does not take {} authentication here",
                other.method().as_str()
            ))
        }
    };
    value.map_err(|_| "the key contains characters a key cannot have".to_owned())
}

const VIEWER_QUERY: &str = "query Viewer { viewer { id name } }";

#[async_trait]
impl Source for LinearSource {
    fn spec(&self) -> &SourceSpec {
        &self.spec
    }

    /// `viewer { id name }`: the cheapest query that tells whether a key is valid.
    #[tracing::instrument(name = "linear_check_credentials", skip_all, fields(method = auth.method().as_str()))]
    async fn check_credentials(
        &self,
        auth: &AuthenticationRequest,
        _config: &Map<String, Value>,
    ) -> Result<(), CheckError> {
        let authorization = authorization(auth).map_err(CheckError::Rejected)?;
        let request = self
            .client
            .post(self.endpoint())
            .header(AUTHORIZATION, authorization)
            .json(&json!({"query": VIEWER_QUERY, "variables": {}}));
        check_exchange(NAME, request, CHECK_BODY_LIMIT, |answer| {
            let body = classify(answer, Utc::now()).map_err(Refusal::into_check)?;
            let viewer = body
                .pointer("/data/viewer/id")
                .and_then(Value::as_str)
                .is_some_and(|id| !id.is_empty());
            if viewer {
                Ok(())
            } else {
                Err(CheckError::Unavailable(format!(
                    "{NAME} answered with something other than a user"
                )))
            }
        })
        .await
    }

    fn open_stream(&self, request: StreamRequest) -> Result<Box<dyn EntityStream>, StreamError> {
        let authorization = authorization(&request.auth).map_err(StreamError::Rejected)?;
        let progress = match request.checkpoint {
            Some(checkpoint) => serde_json::from_value(checkpoint).map_err(|_| {
                StreamError::Malformed(format!("the {NAME} checkpoint is unreadable"))
            })?,
            None => {
                // A cursor this source cannot read (another version's) means a full run.
                let since = request
                    .cursor
                    .and_then(|v| serde_json::from_value::<Cursor>(v).ok())
                    .map(|c| c.updated_after);
                Checkpoint::start(since, Utc::now())
            }
        };
        Ok(Box::new(LinearStream {
            client: self.client.clone(),
            endpoint: self.endpoint(),
            authorization,
            progress,
        }))
    }
}

#[cfg(test)]
mod tests;

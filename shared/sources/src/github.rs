//! `github`: a repository, its issues, pull requests and comments, and the files of a branch,
//! through GitHub's REST API. The catalog entry and the credential check live here; the entity
//! stream in [`stream`].

mod api;
mod entities;
mod files;
mod stream;

use crate::base_url::BaseUrl;
use crate::source::Source;
use crate::upstream::{
    bearer, rate_limit_remaining, rate_limit_reset, read_capped, retry_after, transport_error,
    CHECK_BODY_LIMIT,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::auth::AuthenticationRequest;
use domain::catalog::{AuthMethod, ClientAuth, FieldSpec, FieldType, OAuthSettings, SourceSpec};
use domain::ports::CheckError;
use domain::stream::{EntityStream, StreamError, StreamRequest};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Map, Value};
use std::time::Duration;
use stream::{Checkpoint, Cursor, GitHubStream};

/// The REST API version every request pins.
const API_VERSION: &str = "2022-11-28";
/// GitHub's advice when a rate-limit answer says nothing about when to retry.
const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
const REJECTED: &str = "invalid or revoked token";

/// GitHub (github.com, or GitHub Enterprise Server through its `/api/v3` base URL).
#[derive(Debug, Clone)]
pub struct GitHubSource {
    spec: SourceSpec,
    client: reqwest::Client,
    base_url: BaseUrl,
}

impl GitHubSource {
    pub const SHORT_NAME: &'static str = "github";
    pub const DEFAULT_BASE_URL: &'static str = "https://api.github.com";

    pub fn new(client: reqwest::Client, base_url: BaseUrl) -> Self {
        Self {
            spec: spec(),
            client,
            base_url,
        }
    }

    pub fn base_url(&self) -> &BaseUrl {
        &self.base_url
    }
}

fn spec() -> SourceSpec {
    SourceSpec {
        short_name: GitHubSource::SHORT_NAME,
        name: "GitHub",
        class_name: "GitHubSource",
        description: "A GitHub repository: its issues, pull requests and their comments, and the \
                      files of a branch (text content up to 256 KiB), synced incrementally.",
        auth_methods: vec![
            AuthMethod::Direct,
            AuthMethod::OauthToken,
            AuthMethod::OauthBrowser,
            AuthMethod::OauthByoc,
            AuthMethod::AuthProvider,
        ],
        requires_byoc: false,
        auth_fields: vec![FieldSpec::new(
            "personal_access_token",
            "Personal Access Token",
            FieldType::String,
        )
        .describe(
            "A fine-grained or classic personal access token with read access to the repository.",
        )
        .required()
        .secret()],
        config_fields: vec![
            FieldSpec::new("repo_name", "Repository", FieldType::String)
                .describe("The repository to sync, as owner/repo.")
                .required()
                .checked(check_repo_name),
            FieldSpec::new("branch", "Branch", FieldType::String)
                .describe("The branch to sync (default: the repository's default branch).")
                .checked(check_branch),
        ],
        supported_auth_providers: vec!["composio", "pipedream"],
        entity_types: vec![
            entities::REPOSITORY,
            entities::ISSUE,
            entities::PULL_REQUEST,
            entities::COMMENT,
            entities::FILE,
        ],
        supports_continuous: false,
        supports_incremental: true,
        federated_search: false,
        labels: vec!["Code"],
        oauth: Some(OAuthSettings {
            authorize_url: "https://github.com/login/oauth/authorize",
            token_url: "https://github.com/login/oauth/access_token",
            scopes: vec!["repo", "read:user"],
            user_scopes: vec![],
            scope_separator: " ",
            pkce: true,
            client_auth: ClientAuth::RequestBody,
            access_token_pointer: "/access_token",
            // GitHub Apps with expiring user tokens send one (8 hours / 6 months); OAuth apps
            // issue tokens that do not expire and no refresh token.
            refresh_token_pointer: Some("/refresh_token"),
            extra_authorize_params: vec![],
        }),
    }
}

/// `owner/repo`: two non-empty segments of `[A-Za-z0-9._-]`, the owner at most 39 characters
/// and the repository at most 100, neither `.` nor `..` (they would change the API path).
pub fn check_repo_name(value: &Value) -> Result<(), String> {
    const SHAPE: &str = "must be owner/repo";
    let s = value.as_str().ok_or("must be a string")?;
    let (owner, repo) = s.split_once('/').ok_or(SHAPE)?;
    let legal = |segment: &str| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    if !legal(owner) || !legal(repo) {
        return Err(format!(
            "{SHAPE}, each part made of letters, digits, '.', '_' and '-'"
        ));
    }
    if owner.len() > 39 {
        return Err("the owner must be at most 39 characters".into());
    }
    if repo.len() > 100 {
        return Err("the repository name must be at most 100 characters".into());
    }
    Ok(())
}

/// A branch name git would accept (the rules of `git check-ref-format --branch`, minus the
/// rarely used ones), at most 255 bytes.
pub fn check_branch(value: &Value) -> Result<(), String> {
    let s = value.as_str().ok_or("must be a string")?;
    let bad_char = |c: char| {
        c.is_ascii_control() || c == ' ' || matches!(c, '~' | '^' | ':' | '?' | '*' | '[' | '\\')
    };
    let legal = s.len() <= 255
        && !s.starts_with(['-', '/', '.'])
        && !s.ends_with(['/', '.'])
        && !s.ends_with(".lock")
        && !s.contains("..")
        && !s.contains("//")
        && !s.contains("/.")
        && !s.contains("@{")
        && s != "@"
        && !s.chars().any(bad_char);
    if legal {
        Ok(())
    } else {
        Err("must be a valid git branch name".into())
    }
}

/// The `Authorization` value for a supported method; the secret is exposed only here.
fn authorization(auth: &AuthenticationRequest) -> Result<HeaderValue, CheckError> {
    let token =
        match auth {
            AuthenticationRequest::Direct(credentials) => credentials
                .string("personal_access_token")
                .ok_or_else(|| CheckError::Rejected("personal_access_token is required".into()))?,
            AuthenticationRequest::OauthToken(token) => token.access_token.expose_secret(),
            other => {
                return Err(CheckError::Rejected(format!(
                    "GitHub does not take {} authentication here",
                    other.method().as_str()
                )))
            }
        };
    bearer(token).map_err(|_| {
        CheckError::Rejected("the token contains characters a token cannot have".into())
    })
}

/// What GitHub's answer to `GET /user` means for the credential.
fn classify(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), CheckError> {
    if status.is_success() {
        return if is_user(body) {
            Ok(())
        } else {
            Err(CheckError::Unavailable(
                "GitHub answered with something other than a user".into(),
            ))
        };
    }
    Err(refusal(status, headers, body, now, REJECTED))
}

/// What GitHub's answer to `GET /repos/{owner}/{repo}` means for a token `GET /user` accepted:
/// a repository the token may not read is a 404 (or a 403) to it, as if it did not exist.
fn classify_repository(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
    repo: &str,
) -> Result<(), CheckError> {
    if status.is_success() {
        return if is_repository(body) {
            Ok(())
        } else {
            Err(CheckError::Unavailable(
                "GitHub answered with something other than a repository".into(),
            ))
        };
    }
    let cannot_read = format!("token cannot read {repo}");
    match status {
        StatusCode::NOT_FOUND => Err(CheckError::Rejected(cannot_read)),
        _ => Err(refusal(status, headers, body, now, &cannot_read)),
    }
}

/// A failed answer of a check; `forbidden` is what a 403 that is no rate limit means.
fn refusal(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
    forbidden: &str,
) -> CheckError {
    match status {
        StatusCode::UNAUTHORIZED => CheckError::Rejected(REJECTED.into()),
        StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS
            if status == StatusCode::TOO_MANY_REQUESTS || is_rate_limit(headers, body) =>
        {
            CheckError::RateLimited {
                retry_after: Some(rate_limit_wait(headers, now)),
            }
        }
        StatusCode::FORBIDDEN => CheckError::Rejected(forbidden.into()),
        s if s.is_server_error() => {
            CheckError::Unavailable(format!("GitHub is unavailable (HTTP {})", s.as_u16()))
        }
        s => CheckError::Unavailable(format!(
            "GitHub answered with unexpected HTTP {}",
            s.as_u16()
        )),
    }
}

fn is_repository(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("full_name")?.as_str().map(|name| !name.is_empty()))
        .unwrap_or(false)
}

fn is_user(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("login")?.as_str().map(|login| !login.is_empty()))
        .unwrap_or(false)
}

/// A 403 is a rate limit when the primary limit is spent (`x-ratelimit-remaining: 0`), when it
/// says when to retry, or when its message says so (secondary limits may carry neither header).
fn is_rate_limit(headers: &HeaderMap, body: &[u8]) -> bool {
    rate_limit_remaining(headers) == Some(0)
        || headers.contains_key(reqwest::header::RETRY_AFTER)
        || serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.get("message")?.as_str().map(str::to_ascii_lowercase))
            .is_some_and(|m| m.contains("rate limit"))
}

/// GitHub's rules: `retry-after` first; then `x-ratelimit-reset` when the primary limit is spent
/// (or the remaining count is not given); otherwise wait a minute.
fn rate_limit_wait(headers: &HeaderMap, now: DateTime<Utc>) -> Duration {
    retry_after(headers, now)
        .or_else(|| match rate_limit_remaining(headers) {
            Some(0) | None => rate_limit_reset(headers, now),
            Some(_) => None,
        })
        .unwrap_or(DEFAULT_RATE_LIMIT_WAIT)
}

impl GitHubSource {
    /// One GET of the credential check: the answer's status, headers and (capped) body.
    async fn check_get(
        &self,
        path: &str,
        authorization: &HeaderValue,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), CheckError> {
        let sent = self
            .client
            .get(self.base_url.endpoint(path))
            .header(AUTHORIZATION, authorization.clone())
            .header(ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", API_VERSION)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(err) => {
                let err = err.without_url();
                tracing::warn!(error = %err, "GitHub credential check could not reach GitHub");
                return Err(transport_error("GitHub", &err));
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        match read_capped(response, CHECK_BODY_LIMIT).await {
            Ok(body) => Ok((status, headers, body)),
            Err(err) => {
                let err = err.without_url();
                tracing::warn!(status = status.as_u16(), error = %err, "GitHub answer could not be read");
                Err(transport_error("GitHub", &err))
            }
        }
    }
}

#[async_trait]
impl Source for GitHubSource {
    fn spec(&self) -> &SourceSpec {
        &self.spec
    }

    /// `GET /user`, the cheapest call that tells whether a token is valid; then, with a
    /// configured repository, `GET /repos/{owner}/{repo}`: a token that cannot read it would
    /// only fail at the first sync.
    #[tracing::instrument(name = "github_check_credentials", skip_all, fields(method = auth.method().as_str()))]
    async fn check_credentials(
        &self,
        auth: &AuthenticationRequest,
        config: &Map<String, Value>,
    ) -> Result<(), CheckError> {
        let authorization = authorization(auth)?;
        let (status, headers, body) = self.check_get("user", &authorization).await?;
        let outcome = classify(status, &headers, &body, Utc::now());
        let repo = config.get("repo_name").and_then(Value::as_str);
        let outcome = match (outcome, repo) {
            (Ok(()), Some(repo)) if check_repo_name(&Value::from(repo)).is_ok() => {
                let (status, headers, body) = self
                    .check_get(&format!("repos/{repo}"), &authorization)
                    .await?;
                classify_repository(status, &headers, &body, Utc::now(), repo)
            }
            (outcome, _) => outcome,
        };
        match &outcome {
            Ok(()) => tracing::info!(status = status.as_u16(), "GitHub accepted the token"),
            Err(e) => {
                tracing::info!(status = status.as_u16(), outcome = %e, "GitHub did not accept the check")
            }
        }
        outcome
    }

    fn open_stream(&self, request: StreamRequest) -> Result<Box<dyn EntityStream>, StreamError> {
        let authorization = authorization(&request.auth).map_err(|e| match e {
            CheckError::Rejected(m) => StreamError::Rejected(m),
            other => StreamError::Upstream(other.to_string()),
        })?;
        let repo = request
            .config
            .get("repo_name")
            .filter(|v| check_repo_name(v).is_ok())
            .and_then(Value::as_str)
            .ok_or_else(|| {
                StreamError::Unsupported("the connection has no valid repo_name".into())
            })?
            .to_owned();
        let branch = request
            .config
            .get("branch")
            .filter(|v| check_branch(v).is_ok())
            .and_then(Value::as_str)
            .map(str::to_owned);
        // A cursor of another repository (the config changed) says nothing about this one.
        let since = request
            .cursor
            .and_then(|v| serde_json::from_value::<Cursor>(v).ok())
            .filter(|cursor| cursor.repo == repo);
        let resume = request
            .checkpoint
            .map(|v| {
                serde_json::from_value::<Checkpoint>(v).map_err(|_| {
                    StreamError::Malformed("the GitHub sync's checkpoint is unreadable".into())
                })
            })
            .transpose()?;
        let api = api::Api::new(self.client.clone(), self.base_url.clone(), authorization);
        Ok(Box::new(GitHubStream::new(
            api,
            repo,
            branch,
            since,
            resume,
            request.page_budget,
        )))
    }
}

#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod tests;

//! `notion`: pages, databases and database rows of a Notion workspace, through Notion's public
//! API pinned at version 2022-06-28.
//!
//! A run walks `POST /v1/search` sorted by `last_edited_time`, 100 results a call: a full run
//! oldest first, so whatever is edited while it runs moves to the end of the search and is read
//! again (newest first, an edited item would move to the part already read, never be yielded,
//! and be deleted as absent with, for a database, its rows); an incremental run newest first,
//! down to its cursor (the search has no time filter). A page becomes a `notion_page` with its content (its block children, nested up to
//! [`MAX_DEPTH`] levels, flattened to text); a database becomes a `notion_database`. On a full
//! run each database's rows (`POST /v1/databases/{id}/query`) follow it as
//! `notion_database_row`s, and the rows the search also returns are skipped, so each is read
//! once. An incremental run stops the search at the first result older than the cursor and takes
//! the changed rows from the search itself: querying every database would list the whole
//! workspace again to find a few edited rows. The cursor is the newest `last_edited_time` seen.
//! An incremental run cannot see an old page newly shared with the integration, nor a page
//! unshared from it (neither changes `last_edited_time`); a forced full sync picks both up.
//!
//! One `next_page` works through at most about [`CALLS_PER_PAGE`] upstream calls and starts no
//! call once the request's page budget has passed (an item whose content is half read then is
//! read again by the next page); a listing page stays in memory between `next_page` calls and is
//! fetched again only when a new stream resumes from a checkpoint: it goes on after the last
//! item handed out, or hands out the whole page again if that item left it.
//!
//! [`MAX_DEPTH`]: stream::MAX_DEPTH
//! [`CALLS_PER_PAGE`]: stream::CALLS_PER_PAGE

mod api;
mod entities;
mod stream;

use crate::base_url::BaseUrl;
use crate::budget::PageBudget;
use crate::source::Source;
use crate::upstream::{bearer, check_exchange, CHECK_BODY_LIMIT};
use api::{rate_limit_wait, status_text};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::auth::AuthenticationRequest;
use domain::catalog::{AuthMethod, ClientAuth, FieldSpec, FieldType, OAuthSettings, SourceSpec};
use domain::ports::CheckError;
use domain::stream::{EntityStream, StreamError, StreamRequest};
use entities::is_notion_id;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Map, Value};
use stream::{Checkpoint, Cursor, Listing, NotionStream};

/// The API version every request pins (the `Notion-Version` header).
const NOTION_VERSION: &str = "2022-06-28";
const NAME: &str = "Notion";
/// The credential field of the direct method: an internal integration's secret.
const TOKEN_FIELD: &str = "access_token";

/// Notion (api.notion.com), with an internal integration's secret or an OAuth access token.
#[derive(Debug, Clone)]
pub struct NotionSource {
    spec: SourceSpec,
    client: reqwest::Client,
    base_url: BaseUrl,
}

impl NotionSource {
    pub const SHORT_NAME: &'static str = "notion";
    pub const DEFAULT_BASE_URL: &'static str = "https://api.notion.com";

    pub fn new(client: reqwest::Client, base_url: BaseUrl) -> Self {
        Self {
            spec: spec(),
            client,
            base_url,
        }
    }
}

fn spec() -> SourceSpec {
    SourceSpec {
        short_name: NotionSource::SHORT_NAME,
        name: "Notion",
        class_name: "NotionSource",
        description: "Pages, databases and database rows of a Notion workspace, with the text of \
                      each page.",
        auth_methods: vec![
            AuthMethod::Direct,
            AuthMethod::OauthToken,
            AuthMethod::OauthBrowser,
            AuthMethod::OauthByoc,
            AuthMethod::AuthProvider,
        ],
        requires_byoc: false,
        auth_fields: vec![FieldSpec::new(
            TOKEN_FIELD,
            "Internal Integration Secret",
            FieldType::String,
        )
        .describe(
            "The secret of an internal integration with the Read content capability; only the \
             pages and databases shared with the integration are synced.",
        )
        .required()
        .secret()],
        config_fields: vec![],
        supported_auth_providers: vec!["composio", "pipedream"],
        entity_types: vec!["notion_page", "notion_database", "notion_database_row"],
        supports_continuous: false,
        supports_incremental: true,
        federated_search: false,
        labels: vec!["Knowledge Base"],
        oauth: Some(OAuthSettings {
            authorize_url: "https://api.notion.com/v1/oauth/authorize",
            token_url: "https://api.notion.com/v1/oauth/token",
            // A public integration's access is chosen by the user on Notion's consent page.
            scopes: vec![],
            user_scopes: vec![],
            scope_separator: " ",
            pkce: false,
            client_auth: ClientAuth::Basic,
            access_token_pointer: "/access_token",
            refresh_token_pointer: Some("/refresh_token"),
            // Notion's authorize endpoint requires it: the user (not a workspace) grants access.
            extra_authorize_params: vec![("owner", "user")],
        }),
    }
}

/// The `Authorization` value for a supported method; the secret is exposed only here.
fn authorization(auth: &AuthenticationRequest) -> Result<HeaderValue, String> {
    let token = match auth {
        AuthenticationRequest::Direct(credentials) => credentials
            .string(TOKEN_FIELD)
            .ok_or_else(|| format!("{TOKEN_FIELD} is required"))?,
        AuthenticationRequest::OauthToken(token) => token.access_token.expose_secret(),
        other => {
            return Err(format!(
                "Notion does not take {} authentication here",
                other.method().as_str()
            ))
        }
    };
    bearer(token).map_err(|_| "the token contains characters a token cannot have".to_owned())
}

/// What Notion's answer to `GET /v1/users/me` means for the credential.
fn classify_check(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), CheckError> {
    if status.is_success() {
        let is_user = serde_json::from_slice::<Value>(body)
            .ok()
            .is_some_and(|v| v.get("object").and_then(Value::as_str) == Some("user"));
        return if is_user {
            Ok(())
        } else {
            Err(CheckError::Unavailable(
                "Notion answered with something other than a user".into(),
            ))
        };
    }
    match status {
        StatusCode::UNAUTHORIZED => Err(CheckError::Rejected(
            "Notion says the token is invalid or revoked".into(),
        )),
        StatusCode::FORBIDDEN => Err(CheckError::Rejected(format!(
            "Notion refused the token ({})",
            status_text(status, body)
        ))),
        StatusCode::TOO_MANY_REQUESTS => Err(CheckError::RateLimited {
            retry_after: Some(rate_limit_wait(headers, now)),
        }),
        s if s.is_server_error() => Err(CheckError::Unavailable(format!(
            "Notion is unavailable ({})",
            status_text(s, body)
        ))),
        s => Err(CheckError::Unavailable(format!(
            "Notion answered with unexpected {}",
            status_text(s, body)
        ))),
    }
}

#[async_trait]
impl Source for NotionSource {
    fn spec(&self) -> &SourceSpec {
        &self.spec
    }

    /// `GET /v1/users/me`: the integration's bot user, the cheapest call that needs a valid token.
    #[tracing::instrument(name = "notion_check_credentials", skip_all, fields(method = auth.method().as_str()))]
    async fn check_credentials(
        &self,
        auth: &AuthenticationRequest,
        _config: &Map<String, Value>,
    ) -> Result<(), CheckError> {
        let authorization = authorization(auth).map_err(CheckError::Rejected)?;
        let request = self
            .client
            .get(self.base_url.endpoint("v1/users/me"))
            .header(AUTHORIZATION, authorization)
            .header("Notion-Version", NOTION_VERSION);
        check_exchange(NAME, request, CHECK_BODY_LIMIT, |answer| {
            classify_check(answer.status, &answer.headers, &answer.body, Utc::now())
        })
        .await
    }

    fn open_stream(&self, request: StreamRequest) -> Result<Box<dyn EntityStream>, StreamError> {
        Ok(Box::new(self.stream(request)?))
    }
}

impl NotionSource {
    fn stream(&self, request: StreamRequest) -> Result<NotionStream, StreamError> {
        let authorization = authorization(&request.auth).map_err(StreamError::Rejected)?;
        // An unreadable cursor (another format) means a full run, which is always correct.
        let since = request
            .cursor
            .and_then(|v| serde_json::from_value::<Cursor>(v).ok())
            .map(|s| s.last_edited_time);
        let position = match request.checkpoint {
            Some(v) => serde_json::from_value::<Checkpoint>(v).map_err(|_| {
                StreamError::Malformed("the Notion checkpoint is unreadable".into())
            })?,
            None => Checkpoint::default(),
        };
        let rows = position
            .rows
            .filter(|r| is_notion_id(&r.database_id))
            .map(|r| (r.database_id, Listing::at(r.place)));
        Ok(NotionStream {
            client: self.client.clone(),
            base_url: self.base_url.clone(),
            authorization,
            since,
            search: Listing::at(position.search),
            rows,
            newest: position.newest,
            done: position.done,
            calls: 0,
            page_budget: request.page_budget,
            page: PageBudget::start(request.page_budget),
            progressed: false,
        })
    }
}

#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod tests;

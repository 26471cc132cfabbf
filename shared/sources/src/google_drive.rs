//! `google_drive`: the user's files (with the text of Google Docs and small text files) and
//! shared drives, through the Drive API v3.
//!
//! A full run first asks `changes/startPageToken`, then lists the first page of shared drives,
//! then the files of `corpora=user` (the user's own and those shared with them, shared-drive
//! files shared directly with the user included), then each shared drive's files of that page
//! (`corpora=drive&driveId=…`) one drive after the other, then the next page of drives and its
//! drives' files, and so on: `corpora=allDrives` answers `incompleteSearch` for users in many
//! shared drives, and a full run must not end on an incomplete listing (it deletes what it did
//! not list). The checkpoint holds one page of drive ids and the `drives.list` token of the next,
//! so it stays small however many shared drives the user is in. The token becomes the cursor, so
//! whatever changed while the run listed is seen again by the next one. An incremental run reads
//! `changes` from the saved token until Drive answers `newStartPageToken`, the next cursor; files
//! reported removed or trashed are the page's `removed`.
//!
//! A listed page of files is handed out in slices that fetch at most
//! [`CONTENT_FETCHES_PER_PAGE`] contents each and start no download once the request's page
//! budget has passed, so no `next_page` runs long; a slice's checkpoint names the listing (user or
//! which shared drive), the listing page and the id of the last item handed out. A resumed
//! stream lists that page again and goes on after that id; if the id is no longer in the page
//! (Drive's answer for a token may change as files come and go), it hands out the whole page
//! again: a duplicate is harmless, a skipped file would be deleted as absent.
//!
//! [`CONTENT_FETCHES_PER_PAGE`]: stream::CONTENT_FETCHES_PER_PAGE

mod api;
mod entities;
mod stream;

use crate::base_url::BaseUrl;
use crate::source::Source;
use crate::upstream::{bearer, check_exchange, CHECK_BODY_LIMIT};
use api::refusal;
use async_trait::async_trait;
use chrono::Utc;
use domain::auth::AuthenticationRequest;
use domain::catalog::{AuthMethod, ClientAuth, OAuthSettings, SourceSpec};
use domain::ports::CheckError;
use domain::stream::{EntityStream, StreamError, StreamRequest};
use entities::{DRIVE_TYPE, FILE_TYPE};
use reqwest::header::{HeaderValue, AUTHORIZATION};
use secrecy::ExposeSecret;
use serde_json::{Map, Value};
use stream::{Checkpoint, DriveStream, Step};

/// How transport errors name the upstream.
const NAME: &str = "Google Drive";
/// How other messages name it.
const API: &str = "the Drive API";

/// Google Drive (files, Google Docs text, shared drives).
#[derive(Debug, Clone)]
pub struct GoogleDriveSource {
    spec: SourceSpec,
    client: reqwest::Client,
    base_url: BaseUrl,
}

impl GoogleDriveSource {
    pub const SHORT_NAME: &'static str = "google_drive";
    pub const DEFAULT_BASE_URL: &'static str = "https://www.googleapis.com";

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
        short_name: GoogleDriveSource::SHORT_NAME,
        name: NAME,
        class_name: "GoogleDriveSource",
        description: "Files and folders of My Drive, shared with me and shared drives, with the \
                      text of Google Docs and small text files.",
        auth_methods: vec![
            AuthMethod::OauthToken,
            AuthMethod::OauthBrowser,
            AuthMethod::OauthByoc,
            AuthMethod::AuthProvider,
        ],
        requires_byoc: false,
        auth_fields: vec![],
        config_fields: vec![],
        supported_auth_providers: vec!["composio", "pipedream"],
        entity_types: vec![FILE_TYPE, DRIVE_TYPE],
        supports_continuous: false,
        supports_incremental: true,
        federated_search: false,
        labels: vec!["File Storage"],
        oauth: Some(OAuthSettings {
            authorize_url: "https://accounts.google.com/o/oauth2/v2/auth",
            token_url: "https://oauth2.googleapis.com/token",
            scopes: vec!["https://www.googleapis.com/auth/drive.readonly"],
            user_scopes: vec![],
            scope_separator: " ",
            pkce: true,
            client_auth: ClientAuth::RequestBody,
            access_token_pointer: "/access_token",
            refresh_token_pointer: Some("/refresh_token"),
            // Google issues a refresh token only with offline access, and again only when the
            // user is asked to consent again.
            extra_authorize_params: vec![("access_type", "offline"), ("prompt", "consent")],
        }),
    }
}

/// The `Authorization` value of an OAuth token; the secret is exposed only here.
fn authorization(auth: &AuthenticationRequest) -> Result<HeaderValue, String> {
    let token = match auth {
        AuthenticationRequest::OauthToken(token) => token.access_token.expose_secret(),
        other => {
            return Err(format!(
                "Google Drive takes an OAuth access token, not {} authentication",
                other.method().as_str()
            ))
        }
    };
    bearer(token).map_err(|_| "the access token contains characters a token cannot have".to_owned())
}

/// Whether an `about?fields=user` body names a user.
fn is_about_user(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .is_some_and(|v| v.get("user").is_some_and(Value::is_object))
}

#[async_trait]
impl Source for GoogleDriveSource {
    fn spec(&self) -> &SourceSpec {
        &self.spec
    }

    /// `GET /drive/v3/about?fields=user`: the cheapest call that needs a valid Drive token.
    #[tracing::instrument(name = "google_drive_check_credentials", skip_all, fields(method = auth.method().as_str()))]
    async fn check_credentials(
        &self,
        auth: &AuthenticationRequest,
        _config: &Map<String, Value>,
    ) -> Result<(), CheckError> {
        let authorization = authorization(auth).map_err(CheckError::Rejected)?;
        let request = self
            .client
            .get(self.base_url.endpoint("drive/v3/about"))
            .query(&[("fields", "user")])
            .header(AUTHORIZATION, authorization);
        check_exchange(NAME, request, CHECK_BODY_LIMIT, |answer| {
            match refusal(answer, Utc::now()) {
                Some(refused) => Err(refused.into_check_error()),
                None if is_about_user(&answer.body) => Ok(()),
                None => Err(CheckError::Unavailable(format!(
                    "{API} answered with something other than the user"
                ))),
            }
        })
        .await
    }

    fn open_stream(&self, request: StreamRequest) -> Result<Box<dyn EntityStream>, StreamError> {
        let authorization = authorization(&request.auth).map_err(StreamError::Unsupported)?;
        let since = request
            .cursor
            .as_ref()
            .and_then(|v| v.get("start_page_token")?.as_str())
            .filter(|token| !token.is_empty())
            .map(str::to_owned);
        let position = match request.checkpoint {
            Some(checkpoint) => serde_json::from_value::<Checkpoint>(checkpoint).map_err(|_| {
                StreamError::Malformed("the Google Drive checkpoint is unreadable".into())
            })?,
            None => Checkpoint::start(since.as_deref()),
        };
        // A checkpoint of a full run from before drives were listed one by one (it listed
        // `allDrives`), or one that was still listing every page of drives before any file,
        // cannot tell which drives are left: that run starts over.
        let position = match (&position.step, &position.drives) {
            (Step::Files { .. }, None) | (Step::Drives { .. }, _) => {
                Checkpoint::start(since.as_deref())
            }
            _ => position,
        };
        Ok(Box::new(DriveStream {
            client: self.client.clone(),
            base_url: self.base_url.clone(),
            authorization,
            incremental: since.is_some(),
            position,
            listing: None,
            page_budget: request.page_budget,
        }))
    }
}

#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod tests;

//! `slack`: users, the channels a token can see, their messages and thread replies, through
//! Slack's Web API (`{base}/<method>`, the token as `Authorization: Bearer`).
//!
//! A run reads `auth.test` (the workspace's address, for links), `users.list`, then
//! `conversations.list` (public and private channels) one page at a time: after each page of
//! channels, for each channel of it the token can read, `conversations.history` and, for every
//! message with replies, `conversations.replies`; all paged by `response_metadata.next_cursor`.
//! One upstream call per page, so the worker's checkpoint lands after every call.
//!
//! The checkpoint stays under 200 KB whatever the workspace's size (it is saved on the job's
//! DynamoDB item, 400 KB at most): it holds the list's cursor, the channels of the current list
//! page still to read (at most a page), the threads of the current history page, and the next
//! cursor so far, which is bounded (see [`CURSOR_CHANNELS`]).
//!
//! Slack answers errors with HTTP 200 and `{"ok": false, "error": "<code>"}`, and rate limits
//! with HTTP 429 and `Retry-After`. A run after a completed one is incremental: per channel it
//! asks history only for messages newer than the newest one it saw (`oldest`), minus a lookback
//! window (`thread_lookback_days`) because Slack tells a channel's history nothing about new
//! replies or edits to older messages; re-read messages that did not change are simply kept.
//!
//! [`CURSOR_CHANNELS`]: stream::CURSOR_CHANNELS

mod api;
mod entities;
mod stream;

use crate::base_url::BaseUrl;
use crate::source::Source;
use crate::upstream::{bearer, fetch, CHECK_BODY_LIMIT};
use api::classify;
use async_trait::async_trait;
use chrono::Utc;
use domain::auth::AuthenticationRequest;
use domain::catalog::{AuthMethod, ClientAuth, FieldSpec, FieldType, OAuthSettings, SourceSpec};
use domain::ports::CheckError;
use domain::stream::{EntityStream, StreamError, StreamRequest};
use reqwest::header::{HeaderValue, AUTHORIZATION};
use secrecy::ExposeSecret;
use serde_json::{Map, Value};
use stream::{Checkpoint, Cursor, SlackStream};

const DEFAULT_LOOKBACK_DAYS: i64 = 7;
const MAX_LOOKBACK_DAYS: i64 = 365;

/// Slack (slack.com, or a fake through `SOURCE_SLACK_BASE_URL`).
#[derive(Debug, Clone)]
pub struct SlackSource {
    spec: SourceSpec,
    client: reqwest::Client,
    base_url: BaseUrl,
}

impl SlackSource {
    pub const SHORT_NAME: &'static str = "slack";
    pub const DEFAULT_BASE_URL: &'static str = "https://slack.com/api";

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
        short_name: SlackSource::SHORT_NAME,
        name: "Slack",
        class_name: "SlackSource",
        description: "Messages, thread replies, channels and users of the Slack channels a bot \
                      or user token can read.",
        // A bot token is imported as an OAuth token; the browser flow comes with the OAuth
        // settings below.
        auth_methods: vec![
            AuthMethod::OauthToken,
            AuthMethod::OauthBrowser,
            AuthMethod::OauthByoc,
            AuthMethod::AuthProvider,
        ],
        requires_byoc: false,
        auth_fields: vec![],
        config_fields: vec![FieldSpec::new(
            "thread_lookback_days",
            "Thread lookback (days)",
            FieldType::Integer,
        )
        .describe(
            "How many days before a channel's newest synced message an incremental sync reads \
             again, to pick up new thread replies and edits (default 7; 0 reads only new \
             messages).",
        )
        .range(0, MAX_LOOKBACK_DAYS)],
        supported_auth_providers: vec!["composio", "pipedream"],
        entity_types: vec!["slack_channel", "slack_message", "slack_user"],
        supports_continuous: false,
        supports_incremental: true,
        federated_search: false,
        labels: vec!["Communication"],
        oauth: Some(OAuthSettings {
            authorize_url: "https://slack.com/oauth/v2/authorize",
            token_url: "https://slack.com/api/oauth.v2.access",
            scopes: vec![
                "channels:history",
                "channels:read",
                "groups:history",
                "groups:read",
                "users:read",
            ],
            user_scopes: vec!["search:read"],
            scope_separator: ",",
            pkce: false,
            client_auth: ClientAuth::RequestBody,
            access_token_pointer: "/access_token",
            refresh_token_pointer: None,
            extra_authorize_params: vec![],
        }),
    }
}

/// The `Authorization` value of a token; the secret is exposed only here.
fn authorization(auth: &AuthenticationRequest) -> Result<HeaderValue, String> {
    let AuthenticationRequest::OauthToken(token) = auth else {
        return Err(format!(
            "Slack takes a bot or user token (oauth_token), not {} authentication",
            auth.method().as_str()
        ));
    };
    bearer(token.access_token.expose_secret())
        .map_err(|_| "the token contains characters a token cannot have".to_owned())
}

#[async_trait]
impl Source for SlackSource {
    fn spec(&self) -> &SourceSpec {
        &self.spec
    }

    /// `auth.test`: who the token is, with no scope needed.
    #[tracing::instrument(name = "slack_check_credentials", skip_all, fields(method = auth.method().as_str()))]
    async fn check_credentials(
        &self,
        auth: &AuthenticationRequest,
        _config: &Map<String, Value>,
    ) -> Result<(), CheckError> {
        let authorization = authorization(auth).map_err(CheckError::Rejected)?;
        let request = self
            .client
            .get(self.base_url.endpoint("auth.test"))
            .header(AUTHORIZATION, authorization);
        let outcome = match fetch("Slack", request, CHECK_BODY_LIMIT).await {
            Ok(answer) => classify(
                "auth.test",
                answer.status,
                &answer.headers,
                &answer.body,
                Utc::now(),
            )
            .map(|_| ())
            .map_err(StreamError::from),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => {
                tracing::info!("Slack accepted the token");
                Ok(())
            }
            Err(e) => {
                tracing::info!(outcome = %e, "Slack did not accept the check");
                Err(match e {
                    StreamError::Rejected(m) => CheckError::Rejected(m),
                    StreamError::RateLimited { wait } => CheckError::RateLimited {
                        retry_after: Some(wait),
                    },
                    StreamError::Upstream(m)
                    | StreamError::Malformed(m)
                    | StreamError::Unsupported(m) => CheckError::Unavailable(m),
                })
            }
        }
    }

    fn open_stream(&self, request: StreamRequest) -> Result<Box<dyn EntityStream>, StreamError> {
        let authorization = authorization(&request.auth).map_err(StreamError::Unsupported)?;
        let lookback_days = request
            .config
            .get("thread_lookback_days")
            .and_then(Value::as_i64)
            .filter(|d| (0..=MAX_LOOKBACK_DAYS).contains(d))
            .unwrap_or(DEFAULT_LOOKBACK_DAYS);
        // A cursor this source cannot read (another version's) asks for a full run.
        let since = request.cursor.and_then(|v| {
            let cursor = serde_json::from_value::<Cursor>(v).ok();
            if cursor.is_none() {
                tracing::warn!("Slack cursor unreadable; running a full sync");
            }
            cursor
        });
        let position = match request.checkpoint {
            Some(v) => serde_json::from_value(v).map_err(|_| {
                StreamError::Malformed("the Slack sync's checkpoint is unreadable".into())
            })?,
            None => Checkpoint::start(),
        };
        Ok(Box::new(SlackStream {
            client: self.client.clone(),
            base_url: self.base_url.clone(),
            authorization,
            since,
            lookback_days,
            position,
        }))
    }
}

#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod tests;

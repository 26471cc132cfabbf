//! Browser OAuth flows, BYOC, token import with refresh, refreshes in the worker, and auth
//! providers, against the in-memory fakes.

use super::{create, setup, with};
use crate::auth::StoredCredential;
use crate::auth_provider::ProviderError;
use crate::connection::ConnectionStatus;
use crate::error::DomainError;
use crate::error_category::ErrorCategory;
use crate::ids::{ConnectionId, OrganizationId};
use crate::job::{JobStatus, SyncMessage};
use crate::oauth::{OAuthApp, TokenError};
use crate::ports::{CredentialVault, TenantStore};
use crate::stream::StreamError;
use crate::tenancy::{Organization, RedirectOrigin};
use crate::testing::{now, Fakes, ManualClock, ScriptedStream};
use crate::usecases::auth_providers::{create_provider_connection, CreateProviderConnectionInput};
use crate::usecases::oauth_flow::{
    complete_oauth, reinitiate_oauth, CallbackInput, CallbackOutcome,
};
use crate::usecases::sync::{run_sync, Handled, SyncSettings};
use crate::usecases::Platform;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::time::Instant;

const PLATFORM_CLIENT: &str = "platform-client-id";

fn portal(authentication: Value) -> Value {
    json!({
        "short_name": "portal",
        "readable_collection_id": "docs",
        "authentication": authentication,
    })
}

/// A browser flow that returns to the organization's allowed app.
fn browser_back_to_app() -> Value {
    with(
        portal(json!({})),
        json!({"redirect_url": "https://app.example.com/done"}),
    )
}

/// Fakes with the platform's app for `portal` and `tokens`, and an organization that allows
/// `https://app.example.com`.
async fn oauth_setup() -> (Fakes, OrganizationId) {
    let (f, org) = setup().await;
    let app = OAuthApp {
        client_id: PLATFORM_CLIENT.into(),
        client_secret: SecretString::from("platform-client-secret".to_owned()),
    };
    for source in ["portal", "tokens"] {
        f.vault.put_oauth_app(source, &app).await.unwrap();
    }
    f.store
        .insert_organization(&Organization {
            id: org,
            name: "Acme".into(),
            created_at: now(),
            redirect_origins: Some(vec![
                RedirectOrigin::parse("https://app.example.com").unwrap()
            ]),
        })
        .await
        .unwrap();
    (f, org)
}

fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Starts a browser flow: the connection and the query of its authorize URL.
async fn started(
    f: &Fakes,
    org: OrganizationId,
    body: Value,
) -> (ConnectionId, HashMap<String, String>) {
    let created = create(&f.platform, org, body).await.unwrap().connection;
    let url = created.auth.auth_url.clone().expect("an authorize URL");
    (created.id, query(&url))
}

async fn callback(
    platform: &Platform,
    state: &str,
    code: Option<&str>,
    error: Option<&str>,
) -> CallbackOutcome {
    complete_oauth(
        platform,
        CallbackInput {
            state: Some(state.to_owned()),
            code: code.map(str::to_owned),
            error: error.map(str::to_owned),
        },
    )
    .await
    .unwrap()
}

fn stored(f: &Fakes, id: ConnectionId) -> Option<StoredCredential> {
    f.vault
        .secrets()
        .into_iter()
        .find(|s| s.connection_id == id)
        .map(|s| StoredCredential::parse(&SecretString::from(s.value)).unwrap())
}

/// Whether the connection's secret holds no tokens: none yet, or waiting for its callback.
fn no_tokens(f: &Fakes, id: ConnectionId) -> bool {
    matches!(
        stored(f, id),
        None | Some(StoredCredential::AwaitingAuthorization { .. })
    )
}

/// The tokens stored for a connection.
fn tokens(f: &Fakes, id: ConnectionId) -> crate::auth::OauthToken {
    match stored(f, id) {
        Some(StoredCredential::Tokens { token, .. }) => token,
        other => panic!("tokens expected, found {other:?}"),
    }
}

#[tokio::test]
async fn a_browser_flow_answers_an_authorize_url_and_stores_only_the_states_hash() {
    let (f, org) = oauth_setup().await;
    let body = browser_back_to_app();
    let created = create(&f.platform, org, body).await.unwrap().connection;

    assert_eq!(created.status, ConnectionStatus::PendingAuth);
    assert!(!created.auth.authenticated);
    assert_eq!(
        created.auth.auth_url_expires,
        Some(now() + chrono::Duration::minutes(10))
    );
    assert_eq!(
        created.auth.redirect_url.as_deref(),
        Some("https://app.example.com/done")
    );
    let url = created.auth.auth_url.clone().unwrap();
    assert!(
        url.starts_with("https://provider.example.com/oauth/authorize?"),
        "{url}"
    );
    let q = query(&url);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], PLATFORM_CLIENT);
    assert_eq!(q["redirect_uri"], "https://api.example.com/oauth/callback");
    assert_eq!(q["scope"], "read offline");
    assert_eq!(q["prompt"], "consent");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["state"].len(), 43, "256 bits, base64url");

    // Nothing to sync until authorized: no job, no schedule, no secret.
    assert!(f.queue.messages().is_empty());
    let kept = f.store.connection(created.id).unwrap();
    assert_eq!(kept.schedule.unwrap().next_run, None);
    assert_eq!(
        kept.auth.auth_url, None,
        "the URL with its state is not stored"
    );
    assert!(stored(&f, created.id).is_none());
}

#[tokio::test]
async fn the_callback_activates_the_connection_once_and_the_state_is_single_use() {
    let (f, org) = oauth_setup().await;
    let (id, q) = started(&f, org, browser_back_to_app()).await;

    let outcome = callback(&f.platform, &q["state"], Some("code-1"), None).await;
    assert_eq!(
        outcome,
        CallbackOutcome::Authorized {
            connection_id: id,
            redirect_url: Some("https://app.example.com/done".into())
        }
    );
    let c = f.store.connection(id).unwrap();
    assert_eq!(c.status, ConnectionStatus::Active);
    assert!(c.auth.authenticated);
    assert_eq!(c.auth.auth_url_expires, None);
    assert!(
        c.schedule.unwrap().next_run.is_some(),
        "scheduled once authorized"
    );
    let messages = f.queue.messages();
    assert_eq!(messages.len(), 1, "the first sync is queued");
    let token = tokens(&f, id);
    assert_eq!(token.access_token.expose_secret(), "access-for-code-1");
    assert_eq!(
        token.refresh_token.unwrap().expose_secret(),
        "refresh-for-code-1"
    );

    assert_eq!(
        callback(&f.platform, &q["state"], Some("code-1"), None).await,
        CallbackOutcome::InvalidState,
        "a state works once"
    );
    assert_eq!(
        callback(&f.platform, "forged-state", Some("code-1"), None).await,
        CallbackOutcome::InvalidState
    );
    assert_eq!(f.queue.messages().len(), 1);
}

/// A connection paused while its user is on the provider's consent page (re-authorizing it)
/// stays paused: the new tokens are kept, but no job starts and it stays out of the schedule
/// until it is resumed.
#[tokio::test]
async fn a_callback_keeps_a_connection_paused_during_consent_paused() {
    use crate::usecases::update_connection::{update_connection, UpdateConnectionInput};
    let status = |s: &str| UpdateConnectionInput {
        status: Some(s.into()),
        ..Default::default()
    };
    let (f, org) = oauth_setup().await;
    let (id, first) = started(&f, org, browser_back_to_app()).await;
    callback(&f.platform, &first["state"], Some("code-1"), None).await;
    f.queue.drain();
    let jobs_before = f.store.jobs().len();
    // The provider revoked the tokens: the user is sent to re-authorize, then it is paused.
    f.store
        .edit_connection(id, |c| c.status = ConnectionStatus::NeedsReauth);
    let fresh = reinitiate_oauth(&f.platform, org, &id.to_string())
        .await
        .unwrap();
    let again = query(fresh.auth.auth_url.as_deref().unwrap());
    update_connection(&f.platform, org, &id.to_string(), status("inactive"))
        .await
        .unwrap();

    let outcome = callback(&f.platform, &again["state"], Some("code-2"), None).await;
    assert!(
        matches!(outcome, CallbackOutcome::Authorized { .. }),
        "{outcome:?}"
    );
    let c = f.store.connection(id).unwrap();
    assert_eq!(c.status, ConnectionStatus::Inactive, "still paused");
    assert!(c.auth.authenticated, "the new tokens were kept");
    assert_eq!(c.scheduled_run(), None);
    assert!(f.queue.messages().is_empty(), "no job started");
    assert_eq!(f.store.jobs().len(), jobs_before);
    assert_eq!(
        tokens(&f, id).access_token.expose_secret(),
        "access-for-code-2"
    );

    let resumed = update_connection(&f.platform, org, &id.to_string(), status("active"))
        .await
        .unwrap();
    assert_eq!(resumed.status, ConnectionStatus::Active);
    assert!(resumed.scheduled_run().is_some(), "back in the schedule");
}

#[tokio::test]
async fn an_expired_state_is_refused() {
    let (f, org) = oauth_setup().await;
    let (id, q) = started(&f, org, portal(json!({}))).await;
    let later = Platform {
        clock: Arc::new(ManualClock::at(now() + chrono::Duration::minutes(11))),
        ..f.platform.clone()
    };
    assert_eq!(
        callback(&later, &q["state"], Some("code"), None).await,
        CallbackOutcome::InvalidState
    );
    assert_eq!(
        f.store.connection(id).unwrap().status,
        ConnectionStatus::PendingAuth
    );
}

#[tokio::test]
async fn every_failure_after_a_valid_state_redirects_and_leaves_the_connection_pending() {
    let cases: [(Option<TokenError>, Option<&str>, &str); 4] = [
        (None, Some("access_denied"), "access_denied"),
        (None, Some("<script>"), "provider_error"),
        (
            Some(TokenError::Refused("invalid_grant".into())),
            None,
            "token_exchange_failed",
        ),
        (
            Some(TokenError::Unavailable("503".into())),
            None,
            "provider_unavailable",
        ),
    ];
    for (token_error, provider_error, code) in cases {
        let (f, org) = oauth_setup().await;
        let (id, q) = started(&f, org, browser_back_to_app()).await;
        if let Some(e) = token_error {
            f.tokens.fail_next(e);
        }
        let outcome = callback(&f.platform, &q["state"], Some("code"), provider_error).await;
        let CallbackOutcome::Failed {
            connection_id,
            redirect_url,
            error,
            ..
        } = outcome
        else {
            panic!("{code}: {outcome:?}");
        };
        assert_eq!((connection_id, error.as_str()), (id, code));
        assert_eq!(
            redirect_url.as_deref(),
            Some("https://app.example.com/done")
        );
        assert_eq!(
            f.store.connection(id).unwrap().status,
            ConnectionStatus::PendingAuth
        );
        assert!(f.queue.messages().is_empty());
        assert!(no_tokens(&f, id), "{code}: no tokens are stored");
    }
}

#[tokio::test]
async fn a_token_the_source_rejects_is_not_stored() {
    let (f, org) = oauth_setup().await;
    let (id, q) = started(&f, org, portal(json!({}))).await;
    f.sources
        .answer_checks_with(Err(crate::ports::CheckError::Rejected("401".into())));
    let outcome = callback(&f.platform, &q["state"], Some("code"), None).await;
    assert!(
        matches!(&outcome, CallbackOutcome::Failed { error, redirect_url: None, .. } if error == "credentials_rejected"),
        "{outcome:?}"
    );
    assert!(no_tokens(&f, id));
}

#[tokio::test]
async fn byoc_keeps_the_customers_client_and_exchanges_with_it() {
    let (f, org) = oauth_setup().await;
    let (id, q) = started(
        &f,
        org,
        portal(json!({"client_id": "customer-app", "client_secret": "customer-secret"})),
    )
    .await;
    assert_eq!(q["client_id"], "customer-app");
    let Some(StoredCredential::AwaitingAuthorization {
        client: Some(client),
        ..
    }) = stored(&f, id)
    else {
        panic!("the customer's app is kept");
    };
    assert_eq!(client.client_secret.expose_secret(), "customer-secret");

    let outcome = callback(&f.platform, &q["state"], Some("c"), None).await;
    assert!(
        matches!(outcome, CallbackOutcome::Authorized { .. }),
        "{outcome:?}"
    );
    assert_eq!(f.tokens.clients(), ["customer-app"]);
    let Some(StoredCredential::Tokens {
        client: Some(client),
        ..
    }) = stored(&f, id)
    else {
        panic!("tokens and the client are kept for refreshes");
    };
    assert_eq!(client.client_id, "customer-app");
}

#[tokio::test]
async fn a_redirect_url_off_the_allowlist_is_refused_and_nothing_is_written() {
    let (f, org) = oauth_setup().await;
    for url in [
        "https://evil.example.com/x",
        "http://app.example.com/done",
        "https://app.example.com:8443/",
    ] {
        let body = with(portal(json!({})), json!({"redirect_url": url}));
        match create(&f.platform, org, body).await {
            Err(DomainError::Invalid { errors, .. }) => assert_eq!(errors[0].field, "redirect_url"),
            other => panic!("{url}: {other:?}"),
        }
    }
    assert!(f.store.connections().is_empty());
    f.store.set_redirect_origins(org, Some(&[])).await.unwrap();
    let body = browser_back_to_app();
    assert!(matches!(
        create(&f.platform, org, body).await,
        Err(DomainError::Invalid { .. })
    ));
}

/// An organization with no list of its own uses the platform's default allowlist; one whose
/// list was set empty accepts no redirect_url, whatever the default; and reinitiate checks the
/// stored redirect_url against the allowlist as it is now.
#[tokio::test]
async fn the_redirect_allowlist_is_the_organizations_own_or_else_the_default() {
    let (mut f, org) = oauth_setup().await;
    f.platform.default_redirect_origins =
        vec![RedirectOrigin::parse("https://default.example.com").unwrap()];
    let to = |url: &str| with(portal(json!({})), json!({"redirect_url": url}));
    let refused = |result: Result<super::Created, DomainError>| matches!(result, Err(DomainError::Invalid { errors, .. }) if errors[0].field == "redirect_url");

    // Its own list: the default does not widen it.
    assert!(refused(
        create(&f.platform, org, to("https://default.example.com/cb")).await
    ));

    // No list of its own: the default.
    f.store.set_redirect_origins(org, None).await.unwrap();
    let created = create(&f.platform, org, to("https://default.example.com/cb"))
        .await
        .expect("the default allows it");
    assert!(refused(
        create(&f.platform, org, to("https://app.example.com/cb")).await
    ));

    // Set empty: no redirect_url at all, not even the default's.
    f.store.set_redirect_origins(org, Some(&[])).await.unwrap();
    assert!(refused(
        create(&f.platform, org, to("https://default.example.com/cb")).await
    ));

    // The stored redirect_url is checked again when the flow is started again.
    let reinitiated = reinitiate_oauth(&f.platform, org, &created.connection.id.to_string()).await;
    assert!(
        matches!(&reinitiated, Err(DomainError::Invalid { errors, .. }) if errors[0].field == "redirect_url"),
        "{reinitiated:?}"
    );
}

#[tokio::test]
async fn reinitiate_retires_the_previous_link() {
    let (f, org) = oauth_setup().await;
    let (id, old) = started(&f, org, portal(json!({}))).await;
    let fresh = reinitiate_oauth(&f.platform, org, &id.to_string())
        .await
        .unwrap();
    let new = query(fresh.auth.auth_url.as_deref().unwrap());
    assert_ne!(new["state"], old["state"]);
    assert_eq!(
        fresh.auth.auth_url_expires,
        Some(now() + chrono::Duration::minutes(10) + chrono::Duration::seconds(1)),
        "strictly later than the link it replaces"
    );

    assert_eq!(
        callback(&f.platform, &old["state"], Some("c"), None).await,
        CallbackOutcome::InvalidState
    );
    assert!(matches!(
        callback(&f.platform, &new["state"], Some("c"), None).await,
        CallbackOutcome::Authorized { .. }
    ));
    let healthy = reinitiate_oauth(&f.platform, org, &id.to_string()).await;
    assert!(
        matches!(&healthy, Err(DomainError::BadRequest(m)) if m.contains("healthy")),
        "{healthy:?}"
    );
}

#[tokio::test]
async fn an_expired_imported_token_is_refreshed_then_checked_and_the_refresh_token_kept() {
    let (mut f, org) = oauth_setup().await;
    f.platform.refresh_imported_tokens_with_platform_app = true;
    let body = json!({
        "short_name": "tokens",
        "readable_collection_id": "docs",
        "authentication": {
            "access_token": "old-access",
            "refresh_token": "import-refresh",
            "expires_at": "2026-01-01T00:00:00+00:00",
        },
    });
    let created = create(&f.platform, org, body).await.unwrap().connection;
    assert_eq!(f.tokens.refreshes(), ["import-refresh"]);
    assert_eq!(f.tokens.clients(), [PLATFORM_CLIENT]);
    let token = tokens(&f, created.id);
    assert_eq!(token.access_token.expose_secret(), "access-1");
    assert_eq!(token.refresh_token.unwrap().expose_secret(), "refresh-1");

    // A provider that does not rotate: the imported refresh token stays.
    let (f, org) = oauth_setup().await;
    f.tokens.without_rotation();
    let body = json!({
        "short_name": "tokens",
        "readable_collection_id": "docs",
        "authentication": {"access_token": "a", "refresh_token": "kept", "expires_in": 30},
    });
    let created = create(&f.platform, org, body).await.unwrap().connection;
    let token = tokens(&f, created.id);
    assert_eq!(token.refresh_token.unwrap().expose_secret(), "kept");
}

/// An authorized `tokens` connection whose first job is queued; its token expires at
/// `expires_in` seconds from now.
/// A connection of an imported token (`access-0`, `refresh-0`), on a platform that refreshes
/// imported tokens with its own app.
async fn token_connection(expires_in: i64) -> (Fakes, OrganizationId, ConnectionId, SyncMessage) {
    let (mut f, org) = oauth_setup().await;
    f.platform.refresh_imported_tokens_with_platform_app = true;
    let body = json!({
        "short_name": "tokens",
        "readable_collection_id": "docs",
        "authentication": {"access_token": "access-0", "refresh_token": "refresh-0", "expires_in": expires_in},
    });
    let created = create(&f.platform, org, body).await.unwrap().connection;
    let message = f.queue.drain().pop().unwrap();
    f.sources.stream(ScriptedStream::pages(vec![vec![]]));
    (f, org, created.id, message)
}

async fn run(f: &Fakes, message: &SyncMessage) -> Handled {
    let deadline = Instant::now() + std::time::Duration::from_secs(900);
    run_sync(&f.platform, &SyncSettings::default(), message, deadline)
        .await
        .unwrap()
}

/// By default the platform's OAuth app never refreshes a token it did not issue: an imported
/// token is used while it works, and when it expires or is refused the connection asks for
/// re-authorization, without a call to the token endpoint.
#[tokio::test]
async fn an_imported_token_is_not_refreshed_with_the_platform_app_unless_allowed() {
    let imported = |expires_at: &str| {
        json!({
            "short_name": "tokens",
            "readable_collection_id": "docs",
            "authentication": {"access_token": "access-0", "refresh_token": "refresh-0", "expires_at": expires_at},
        })
    };
    // Near its expiry: checked and stored as it is, and used while it works.
    let (f, org) = oauth_setup().await;
    let near = (now() + chrono::Duration::minutes(4)).to_rfc3339();
    create(&f.platform, org, imported(&near)).await.unwrap();
    let message = f.queue.drain().pop().unwrap();
    f.sources.stream(ScriptedStream::pages(vec![vec![]]));
    assert_eq!(
        run(&f, &message).await,
        Handled::Finished(JobStatus::Completed)
    );
    assert_eq!(f.sources.stream_tokens(), ["access-0"]);

    // Refused by the source: no refresh, re-authorization.
    let (f, org) = oauth_setup().await;
    let created = create(&f.platform, org, imported(&near)).await.unwrap();
    let message = f.queue.drain().pop().unwrap();
    f.sources.stream(
        ScriptedStream::pages(vec![vec![]]).fail_before(0, StreamError::Rejected("401".into())),
    );
    assert_eq!(
        run(&f, &message).await,
        Handled::Finished(JobStatus::Failed)
    );
    let c = f.store.connection(created.connection.id).unwrap();
    assert_eq!(c.status, ConnectionStatus::NeedsReauth);
    assert_eq!(
        c.error_category,
        Some(ErrorCategory::OauthCredentialsExpired)
    );
    assert!(
        f.tokens.refreshes().is_empty(),
        "the token endpoint was never called"
    );
}

#[tokio::test]
async fn the_worker_refreshes_ahead_of_expiry_and_persists_the_rotated_token() {
    // One hour left: nothing to do.
    let (f, _, _, message) = token_connection(3600).await;
    assert_eq!(
        run(&f, &message).await,
        Handled::Finished(JobStatus::Completed)
    );
    assert!(f.tokens.refreshes().is_empty());
    assert_eq!(f.sources.stream_tokens(), ["access-0"]);

    // Four minutes left: refreshed first.
    let (f, _, id, message) = token_connection(240).await;
    assert_eq!(
        run(&f, &message).await,
        Handled::Finished(JobStatus::Completed)
    );
    assert_eq!(f.tokens.refreshes(), ["refresh-0"]);
    assert_eq!(f.sources.stream_tokens(), ["access-1"]);
    let token = tokens(&f, id);
    assert_eq!(token.refresh_token.unwrap().expose_secret(), "refresh-1");
}

#[tokio::test]
async fn a_401_mid_sync_refreshes_once_and_retries_the_page() {
    let (f, _, _, message) = token_connection(3600).await;
    f.sources.stream(
        ScriptedStream::pages(vec![vec![], vec![]])
            .fail_before(1, StreamError::Rejected("401".into())),
    );
    assert_eq!(
        run(&f, &message).await,
        Handled::Finished(JobStatus::Completed)
    );
    assert_eq!(f.tokens.refreshes(), ["refresh-0"]);
    assert_eq!(f.sources.stream_tokens(), ["access-0", "access-1"]);
    let reopened = f.sources.opened();
    assert_eq!(
        reopened[1].1,
        Some(json!({"next": 1})),
        "resumed after the last page"
    );
}

#[tokio::test]
async fn invalid_grant_asks_for_reauthorization_and_a_down_endpoint_defers() {
    let (f, _, id, message) = token_connection(120).await;
    f.tokens
        .fail_next(TokenError::Refused("invalid_grant".into()));
    assert_eq!(
        run(&f, &message).await,
        Handled::Finished(JobStatus::Failed)
    );
    let c = f.store.connection(id).unwrap();
    assert_eq!(c.status, ConnectionStatus::NeedsReauth);
    assert_eq!(
        c.error_category,
        Some(ErrorCategory::OauthCredentialsExpired)
    );
    let token = tokens(&f, id);
    assert_eq!(
        token.refresh_token.unwrap().expose_secret(),
        "refresh-0",
        "never nulled"
    );

    let (f, _, id, message) = token_connection(120).await;
    let later = Platform {
        clock: Arc::new(ManualClock::at(now() + chrono::Duration::minutes(3))),
        ..f.platform.clone()
    };
    f.tokens.fail_next(TokenError::Unavailable("502".into()));
    let deadline = Instant::now() + std::time::Duration::from_secs(900);
    let handled = run_sync(&later, &SyncSettings::default(), &message, deadline)
        .await
        .unwrap();
    assert_eq!(
        handled,
        Handled::Deferred,
        "an expired token and a down endpoint: wait"
    );
    assert_ne!(
        f.store.connection(id).unwrap().status,
        ConnectionStatus::NeedsReauth
    );
}

#[tokio::test]
async fn concurrent_refreshers_make_one_token_call() {
    let (f, org, id, _) = token_connection(120).await;
    f.tokens.slow(std::time::Duration::from_millis(300));
    let spec = crate::ports::SourceDirectory::spec(f.sources.as_ref(), "tokens")
        .unwrap()
        .clone();
    let credentials = |platform: Platform| {
        let spec = spec.clone();
        async move { crate::usecases::sync::credentials_for_tests(&platform, org, id, &spec).await }
    };
    let (a, b) = tokio::join!(
        credentials(f.platform.clone()),
        credentials(f.platform.clone())
    );
    assert_eq!(f.tokens.refreshes().len(), 1, "one refresher");
    assert_eq!(a, Some("access-1".to_owned()));
    assert_eq!(
        b,
        Some("access-1".to_owned()),
        "the loser reads the winner's token"
    );
}

async fn composio(f: &Fakes, org: OrganizationId) {
    create_provider_connection(
        &f.platform,
        org,
        CreateProviderConnectionInput {
            name: Some("Our Composio".into()),
            readable_id: Some("our-composio".into()),
            short_name: Some("composio".into()),
            auth_fields: Some(json!({"api_key": "ak_secret_1"})),
            ..Default::default()
        },
    )
    .await
    .unwrap();
}

/// A connection through the organization's Composio account `our-composio` (created first).
async fn through_composio(f: &Fakes, org: OrganizationId) -> crate::connection::SourceConnection {
    composio(f, org).await;
    let body = portal(json!({
        "provider_readable_id": "our-composio",
        "provider_config": {"account_id": "ca_1"},
    }));
    create(&f.platform, org, body).await.unwrap().connection
}

/// A lasting cause before the first page (the provider connection's secret is gone): one retry
/// after a backoff, then the job fails with a message to act on, the connection shows `error`
/// and its slot is free for the next run; the message is never redelivered forever.
#[tokio::test]
async fn a_run_that_keeps_failing_to_start_fails_its_job_after_bounded_attempts() {
    let (f, org) = oauth_setup().await;
    let created = through_composio(&f, org).await;
    let message = f.queue.drain().pop().unwrap();
    f.vault
        .delete_provider_secret(
            org,
            &crate::names::ReadableId::parse("our-composio").unwrap(),
        )
        .await
        .unwrap();

    let deadline = Instant::now() + std::time::Duration::from_secs(900);
    let first = run_sync(&f.platform, &SyncSettings::default(), &message, deadline).await;
    assert!(matches!(first, Ok(Handled::Deferred)), "{first:?}");
    assert_eq!(
        f.queue.delays(),
        [Some(std::time::Duration::from_secs(30))],
        "tried again after a backoff, as a new message"
    );
    let again = f.queue.drain().pop().unwrap();
    let second = run_sync(&f.platform, &SyncSettings::default(), &again, deadline).await;
    assert!(
        matches!(second, Ok(Handled::Finished(JobStatus::Failed))),
        "{second:?}"
    );
    assert!(f.queue.messages().is_empty(), "nothing more is queued");
    let job = f.store.job(created.id, message.job_id).unwrap();
    let error = job.error.unwrap();
    assert!(
        error.contains("failed 2 times in a row")
            && error.contains("auth provider connection 'our-composio' could not be read")
            && error.contains("check the connection's credentials"),
        "{error}"
    );
    assert!(!error.contains("ak_secret_1"));
    let connection = f.store.connection(created.id).unwrap();
    assert_eq!(connection.status, ConnectionStatus::Error);
    crate::usecases::runs::run_connection(&f.platform, org, &created.id.to_string(), false)
        .await
        .expect("the slot is free for a new run");
}

#[tokio::test]
async fn auth_provider_connections_fetch_fresh_credentials_every_run() {
    let (f, org) = oauth_setup().await;
    let created = through_composio(&f, org).await;
    assert_eq!(created.status, ConnectionStatus::Active);
    assert_eq!(
        created.auth.provider_readable_id.as_deref(),
        Some("our-composio")
    );
    assert_eq!(created.provider_short_name.as_deref(), Some("composio"));
    assert_eq!(f.providers.fetches(), 1, "checked at create");

    let message = f.queue.drain().pop().unwrap();
    f.sources.stream(ScriptedStream::pages(vec![vec![]]));
    assert_eq!(
        run(&f, &message).await,
        Handled::Finished(JobStatus::Completed)
    );
    assert_eq!(f.providers.fetches(), 2, "fetched again for the run");
    assert_eq!(f.sources.stream_tokens(), ["provider-token-ca_1"]);
    assert!(
        f.tokens.refreshes().is_empty(),
        "never refreshed by the platform"
    );

    f.providers.fail_fetch(Some(ProviderError::AccountGone(
        "the account was deleted".into(),
    )));
    let job =
        crate::usecases::runs::run_connection(&f.platform, org, &created.id.to_string(), false)
            .await
            .unwrap();
    assert_eq!(
        run(&f, &job.message()).await,
        Handled::Finished(JobStatus::Failed)
    );
    let c = f.store.connection(created.id).unwrap();
    assert_eq!(c.status, ConnectionStatus::NeedsReauth);
    assert_eq!(
        c.error_category,
        Some(ErrorCategory::AuthProviderAccountGone)
    );
}

#[tokio::test]
async fn a_provider_that_does_not_serve_the_source_or_a_bad_account_is_a_bad_request() {
    let (f, org) = oauth_setup().await;
    composio(&f, org).await;
    let on_tokens = json!({
        "short_name": "tokens",
        "readable_collection_id": "docs",
        "authentication": {"provider_readable_id": "our-composio", "provider_config": {"account_id": "ca_1"}},
    });
    let refused = create(&f.platform, org, on_tokens).await;
    assert!(
        matches!(&refused, Err(DomainError::BadRequest(_))),
        "{refused:?}"
    );

    f.providers
        .fail_fetch(Some(ProviderError::CredentialsUnusable(
            "secrets are masked".into(),
        )));
    let body = portal(
        json!({"provider_readable_id": "our-composio", "provider_config": {"account_id": "ca_1"}}),
    );
    let refused = create(&f.platform, org, body).await;
    assert!(
        matches!(&refused, Err(DomainError::BadRequest(m)) if m.contains("masked")),
        "{refused:?}"
    );
    assert!(f.store.connections().is_empty());

    let missing = portal(json!({"provider_readable_id": "our-composio"}));
    assert!(matches!(
        create(&f.platform, org, missing).await,
        Err(DomainError::Invalid { .. })
    ));
}

#[tokio::test]
async fn provider_credentials_are_never_answered_and_a_duplicate_is_a_conflict() {
    let (f, org) = oauth_setup().await;
    composio(&f, org).await;
    let again = create_provider_connection(
        &f.platform,
        org,
        CreateProviderConnectionInput {
            readable_id: Some("our-composio".into()),
            short_name: Some("composio".into()),
            auth_fields: Some(json!({"api_key": "other"})),
            ..Default::default()
        },
    )
    .await;
    assert!(matches!(again, Err(DomainError::Conflict(_))), "{again:?}");
    let listed = crate::usecases::auth_providers::list_provider_connections(
        &f.platform,
        org,
        &crate::page::PageRequest::default(),
    )
    .await
    .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert!(!serde_json::to_string(&listed.items)
        .unwrap()
        .contains("ak_secret_1"));
}

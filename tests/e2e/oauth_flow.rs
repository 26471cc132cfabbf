//! The browser OAuth flow over HTTP against the emulator and a fake OAuth provider on
//! 127.0.0.1, wired in only through the catalog's environment overrides. The test plays the
//! browser: it opens the answered auth_url (the fake consents at once and redirects), then
//! follows the redirect to our callback, without following the callback's own redirect.

use crate::helpers::app::{TestApp, GITHUB_TOKEN};
use crate::helpers::github::FakeGithub;
use crate::helpers::logs;
use crate::helpers::syncing::{connection, drain, jobs};
use chrono::Utc;
use domain::ids::ConnectionId;
use domain::oauth::{FlowState, PendingFlow};
use fakes::oauth::{FakeClientAuth, FakeOAuthConfig, FakeOAuthProvider};
use reqwest::redirect::Policy;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const PLATFORM_CLIENT: &str = "platform-github-app";
const PLATFORM_SECRET: &str = "platform-secret-9f8e7d";
const REDIRECT: &str = "http://127.0.0.1:9/connected";

pub(crate) struct Flow {
    pub app: TestApp,
    pub provider: FakeOAuthProvider,
    pub github: FakeGithub,
}

/// An app whose GitHub OAuth endpoints are the fake's (the environment overrides), with the
/// platform's app in the vault. The fake issues the GitHub fake's token, so checks and syncs
/// pass with what the flow obtained.
pub(crate) async fn flow() -> Flow {
    let mut config = FakeOAuthConfig::new(PLATFORM_CLIENT, PLATFORM_SECRET, FakeClientAuth::Body);
    config.issued_access_token = Some(GITHUB_TOKEN.to_owned());
    let provider = FakeOAuthProvider::start_with(config).await;
    let (authorize, token) = (provider.authorize_url(), provider.token_url());
    let github = FakeGithub::start(GITHUB_TOKEN).await;
    let catalog = sources::Catalog::from_lookup(|name| match name {
        "SOURCE_GITHUB_AUTHORIZE_URL" => Some(authorize.clone()),
        "SOURCE_GITHUB_TOKEN_URL" => Some(token.clone()),
        "SOURCE_GITHUB_BASE_URL" => Some(github.base_url.clone()),
        _ => None,
    })
    .expect("catalog");
    let app = TestApp::spawn_with(move |p| p.sources = Arc::new(catalog)).await;
    app.put_oauth_app("github", PLATFORM_CLIENT, PLATFORM_SECRET)
        .await;
    app.create_collection("docs").await;
    Flow {
        app,
        provider,
        github,
    }
}

pub(crate) fn github(authentication: Value) -> Value {
    json!({
        "short_name": "github",
        "readable_collection_id": "docs",
        "config": {"repo_name": "octo-org/hello-world"},
        "authentication": authentication,
        "redirect_url": REDIRECT,
    })
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

pub(crate) fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Creates a browser flow connection: its id and auth_url.
pub(crate) async fn start(f: &Flow, authentication: Value) -> (String, String) {
    let response = f.app.create_connection(&github(authentication)).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "pending_auth");
    (
        body["id"].as_str().unwrap().to_owned(),
        body["auth"]["auth_url"].as_str().unwrap().to_owned(),
    )
}

/// The provider's answer to the authorize URL: where it sends the browser back.
pub(crate) async fn consent(auth_url: &str) -> String {
    let answer = browser().get(auth_url).send().await.unwrap();
    assert_eq!(answer.status(), 302, "the fake consents and redirects");
    answer.headers()["location"].to_str().unwrap().to_owned()
}

/// The callback's answer: status, Location (if any), body.
pub(crate) async fn callback(
    url: &str,
) -> (u16, Option<String>, String, reqwest::header::HeaderMap) {
    let answer = browser().get(url).send().await.unwrap();
    let status = answer.status().as_u16();
    let headers = answer.headers().clone();
    let location = headers
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    (status, location, answer.text().await.unwrap(), headers)
}

#[tokio::test]
async fn the_whole_browser_flow_activates_the_connection_and_syncs_it() {
    let f = flow().await;
    let (id, auth_url) = start(&f, json!({})).await;
    let q = query(&auth_url);
    assert_eq!(q["client_id"], PLATFORM_CLIENT);
    assert_eq!(
        q["redirect_uri"],
        format!("{}/oauth/callback", f.app.base_url)
    );
    assert_eq!(q["code_challenge_method"], "S256");
    let state = q["state"].clone();

    let back = consent(&auth_url).await;
    assert!(
        back.starts_with(&format!("{}/oauth/callback?", f.app.base_url)),
        "{back}"
    );
    let code = query(&back)["code"].clone();
    let (status, location, _, headers) = callback(&back).await;
    assert_eq!(status, 303);
    assert_eq!(
        location.as_deref(),
        Some(format!("{REDIRECT}?status=success&source_connection_id={id}").as_str())
    );
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(
        f.provider.code_exchanges(),
        1,
        "PKCE verifier and redirect_uri matched"
    );

    let c = connection(&f.app, &id).await;
    assert_eq!(c["status"], "active", "{c}");
    assert_eq!(c["auth"]["authenticated"], true);
    assert!(c["auth"]["auth_url"].is_null());
    drain(&f.app, Duration::from_secs(2)).await;
    let job = &jobs(&f.app, &id).await[0];
    assert_eq!(job["status"], "completed", "{job}");

    // Used once: the same callback again is refused with a page, no redirect.
    let (status, location, page, _) = callback(&back).await;
    assert_eq!((status, location), (400, None));
    assert!(page.contains("not valid"), "{page}");
    assert_eq!(f.provider.code_exchanges(), 1);

    // Nothing secret in what was answered or logged.
    let refresh = stored_refresh_token(&f, &id).await;
    let logs = logs::captured();
    for secret in [
        state.as_str(),
        code.as_str(),
        refresh.as_str(),
        PLATFORM_SECRET,
        GITHUB_TOKEN,
    ] {
        assert!(!logs.contains(secret), "a secret reached the logs");
        assert!(!c.to_string().contains(secret));
    }
}

#[tokio::test]
async fn forged_and_expired_states_get_a_page_and_no_redirect() {
    let f = flow().await;
    let forged = format!("{}/oauth/callback?state=forged&code=x", f.app.base_url);
    let (status, location, page, headers) = callback(&forged).await;
    assert_eq!((status, location), (400, None));
    assert!(page.starts_with("<!doctype html>"), "{page}");
    assert_eq!(headers["cache-control"], "no-store");

    let (id, _) = start(&f, json!({})).await;
    let state = FlowState::from_random([3; 32]);
    f.app
        .platform
        .store
        .put_flow(&PendingFlow {
            state: state.hash(),
            organization_id: f.app.org,
            connection_id: id.parse().unwrap(),
            pkce_verifier: None,
            redirect_url: Some(REDIRECT.into()),
            expires_at: Utc::now() - chrono::Duration::seconds(1),
        })
        .await
        .unwrap();
    let expired = format!(
        "{}/oauth/callback?state={}&code=x",
        f.app.base_url,
        state.expose()
    );
    let (status, location, _, _) = callback(&expired).await;
    assert_eq!((status, location), (400, None));
    assert_eq!(connection(&f.app, &id).await["status"], "pending_auth");
}

#[tokio::test]
async fn every_failure_after_a_valid_state_redirects_with_its_code() {
    let f = flow().await;
    for (arrange, expected) in [
        ("deny", "access_denied"),
        ("400", "token_exchange_failed"),
        ("500", "provider_unavailable"),
    ] {
        let (id, auth_url) = start(&f, json!({})).await;
        match arrange {
            "deny" => f.provider.deny_next_authorization(),
            "400" => f.provider.fail_next_with_invalid_grant(),
            _ => f.provider.fail_next_with_server_error(),
        }
        let back = consent(&auth_url).await;
        let (status, location, _, _) = callback(&back).await;
        assert_eq!(status, 303, "{arrange}");
        assert_eq!(
            location.as_deref(),
            Some(
                format!("{REDIRECT}?status=error&error={expected}&source_connection_id={id}")
                    .as_str()
            ),
            "{arrange}"
        );
        assert_eq!(connection(&f.app, &id).await["status"], "pending_auth");
    }
}

#[tokio::test]
async fn byoc_uses_the_customers_client_for_the_whole_flow() {
    let f = flow().await;
    f.provider
        .register_client("customer-app", "customer-secret-42");
    let (id, auth_url) = start(
        &f,
        json!({"client_id": "customer-app", "client_secret": "customer-secret-42"}),
    )
    .await;
    assert_eq!(query(&auth_url)["client_id"], "customer-app");
    let (status, location, _, _) = callback(&consent(&auth_url).await).await;
    assert_eq!(status, 303);
    assert!(location.unwrap().contains("status=success"));
    assert_eq!(
        f.provider.code_exchanges(),
        1,
        "the customer's secret authenticated"
    );
    let c = connection(&f.app, &id).await;
    assert_eq!(c["auth"]["method"], "oauth_byoc");
    assert!(!c.to_string().contains("customer-secret-42"));

    // One half of a pair is refused.
    let half = f
        .app
        .create_connection(&github(json!({"client_id": "customer-app"})))
        .await;
    assert_eq!(half.status(), 422);
}

#[tokio::test]
async fn a_redirect_url_off_the_allowlist_is_a_422() {
    let f = flow().await;
    let mut body = github(json!({}));
    body["redirect_url"] = json!("https://evil.example.com/steal");
    let response = f.app.create_connection(&body).await;
    assert_eq!(response.status(), 422);
    let p: Value = response.json().await.unwrap();
    assert_eq!(p["errors"][0]["field"], "redirect_url");

    body["redirect_url"] = json!(REDIRECT);
    body["sync_immediately"] = json!(true);
    assert_eq!(f.app.create_connection(&body).await.status(), 400);
}

#[tokio::test]
async fn reinitiate_answers_a_fresh_link_and_retires_the_old_one() {
    let f = flow().await;
    let (id, old_url) = start(&f, json!({})).await;
    let response = f
        .app
        .post(
            &format!("/source-connections/{id}/reinitiate-oauth"),
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let fresh: Value = response.json().await.unwrap();
    let new_url = fresh["auth"]["auth_url"].as_str().unwrap().to_owned();
    assert_ne!(query(&new_url)["state"], query(&old_url)["state"]);

    let (status, location, _, _) = callback(&consent(&old_url).await).await;
    assert_eq!((status, location), (400, None), "the old link is dead");
    let (status, _, _, _) = callback(&consent(&new_url).await).await;
    assert_eq!(status, 303);
    let healthy = f
        .app
        .post(
            &format!("/source-connections/{id}/reinitiate-oauth"),
            &json!({}),
        )
        .await;
    assert_eq!(healthy.status(), 400);
}

/// A refresh token the provider really issued to the platform's client, obtained outside the
/// platform.
pub(crate) async fn issued_refresh_token(f: &Flow) -> String {
    let code = f.provider.mint_code(
        PLATFORM_CLIENT,
        "https://elsewhere.example/cb",
        None,
        "repo",
    );
    let issued: Value = reqwest::Client::new()
        .post(f.provider.token_url())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "https://elsewhere.example/cb"),
            ("client_id", PLATFORM_CLIENT),
            ("client_secret", PLATFORM_SECRET),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refresh_token = issued["refresh_token"].as_str().unwrap().to_owned();
    crate::helpers::hygiene::register(&refresh_token);
    refresh_token
}

/// A token connection imported with `expires_in`; its id.
pub(crate) async fn import(f: &Flow, refresh_token: &str, expires_in: u64) -> String {
    let mut body = github(json!({
        "access_token": GITHUB_TOKEN,
        "refresh_token": refresh_token,
        "expires_in": expires_in,
    }));
    body.as_object_mut().unwrap().remove("redirect_url");
    let created: Value = f.app.create_connection(&body).await.json().await.unwrap();
    assert_eq!(created["status"], "active", "{created}");
    created["id"].as_str().unwrap().to_owned()
}

pub(crate) async fn stored_refresh_token(f: &Flow, id: &str) -> String {
    let doc = f
        .app
        .platform
        .vault
        .get_connection_secret(f.app.org, id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let doc: Value = serde_json::from_str(doc.value.expose_secret()).unwrap();
    let refresh_token = doc["refresh_token"].as_str().unwrap().to_owned();
    crate::helpers::hygiene::register(&refresh_token);
    refresh_token
}

#[tokio::test]
async fn the_worker_refreshes_a_token_near_expiry_and_a_revoked_grant_needs_reauth() {
    let f = flow().await;
    let first = issued_refresh_token(&f).await;
    let id = import(&f, &first, 120).await;
    drain(&f.app, Duration::from_secs(2)).await;
    assert_eq!(jobs(&f.app, &id).await[0]["status"], "completed");
    assert_eq!(f.provider.refreshes(), 1, "refreshed ahead of expiry");
    let rotated = stored_refresh_token(&f, &id).await;
    assert_ne!(rotated, first, "the rotated refresh token was persisted");

    let second = issued_refresh_token(&f).await;
    let id = import(&f, &second, 120).await;
    f.provider.fail_next_with_invalid_grant();
    drain(&f.app, Duration::from_secs(2)).await;
    let c = connection(&f.app, &id).await;
    assert_eq!(c["status"], "needs_reauth", "{c}");
    assert_eq!(c["error_category"], "oauth_credentials_expired");
    assert_eq!(
        stored_refresh_token(&f, &id).await,
        second,
        "never replaced by nothing"
    );
}

#[tokio::test]
async fn an_expired_imported_token_is_refreshed_and_the_new_refresh_token_kept() {
    let f = flow().await;
    let imported_refresh = issued_refresh_token(&f).await;
    let mut body = github(json!({
        "access_token": "gho_expired",
        "refresh_token": imported_refresh,
        "expires_at": "2026-01-01T00:00:00+00:00",
    }));
    body.as_object_mut().unwrap().remove("redirect_url");
    let response = f.app.create_connection(&body).await;
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["status"], "active", "{created}");
    assert_eq!(f.provider.refreshes(), 1, "refreshed before the check");

    let id: ConnectionId = created["id"].as_str().unwrap().parse().unwrap();
    let doc = f
        .app
        .platform
        .vault
        .get_connection_secret(f.app.org, id)
        .await
        .unwrap()
        .unwrap();
    let doc: Value = serde_json::from_str(doc.value.expose_secret()).unwrap();
    let kept = doc["refresh_token"].as_str().unwrap();
    assert_ne!(
        kept, imported_refresh,
        "the rotated refresh token is stored"
    );
    assert!(!kept.is_empty());
    assert!(!created.to_string().contains(kept));
}

#[tokio::test]
async fn the_refresh_lease_has_one_holder_and_a_growing_fence() {
    let app = TestApp::spawn().await;
    let store = &app.platform.store;
    let id = ConnectionId::new();
    let now = Utc::now();
    let until = now + chrono::Duration::seconds(60);
    let first = store
        .acquire_refresh_lease(id, "a", now, until)
        .await
        .unwrap();
    assert_eq!(first, Some(1));
    assert_eq!(
        store
            .acquire_refresh_lease(id, "b", now, until)
            .await
            .unwrap(),
        None
    );
    // Ran out: taken over with a higher fence.
    let later = until + chrono::Duration::seconds(1);
    let second = store
        .acquire_refresh_lease(id, "b", later, later + chrono::Duration::seconds(60))
        .await
        .unwrap();
    assert_eq!(second, Some(2));
    store.release_refresh_lease(id, "a").await.unwrap();
    assert_eq!(
        store
            .acquire_refresh_lease(id, "c", later, later)
            .await
            .unwrap(),
        None,
        "a stale release does nothing"
    );
    store.release_refresh_lease(id, "b").await.unwrap();
    assert_eq!(
        store
            .acquire_refresh_lease(id, "c", later, later)
            .await
            .unwrap(),
        Some(3)
    );
}

/// Two runs' credential look-ups at once on a token near its expiry, through the refresh lease
/// on DynamoDB: one token call, and both get the refreshed token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_refreshes_of_one_token_make_one_token_call() {
    let f = flow().await;
    let first = issued_refresh_token(&f).await;
    let id: domain::ids::ConnectionId = import(&f, &first, 120).await.parse().unwrap();
    let calls_before = f.provider.token_calls();
    let spec = f.app.platform.sources.spec("github").unwrap().clone();
    let lookup = || {
        let (platform, spec, org) = (f.app.platform.clone(), spec.clone(), f.app.org);
        tokio::spawn(async move {
            domain::usecases::sync::credentials_for_tests(&platform, org, id, &spec).await
        })
    };
    let (a, b) = tokio::join!(lookup(), lookup());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(f.provider.token_calls() - calls_before, 1, "one refresher");
    assert!(a.is_some(), "a token");
    assert_eq!(a, b, "the loser reads the winner's token");
    assert_ne!(
        stored_refresh_token(&f, &id.to_string()).await,
        first,
        "rotated and kept"
    );
    crate::helpers::figures(
        "concurrency: 2 concurrent refreshes of one connection's token -> 1 token call",
    );
}

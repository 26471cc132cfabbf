//! Races on a connection's secret, against the emulator and slow fakes: a DELETE during an
//! OAuth token exchange or a credentials PATCH leaves no secret behind, and tokens a provider
//! issued after the refresh lease ran out are kept (review findings 4, 8 and 12).

use crate::helpers::app::GITHUB_TOKEN;
use crate::oauth_flow::{
    callback, consent, flow, import, issued_refresh_token, start, stored_refresh_token, Flow,
};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

/// How long the slow fake takes to answer: long enough for the test to act meanwhile.
const SLOW: Duration = Duration::from_millis(1500);

async fn has_secret(f: &Flow, id: &str) -> bool {
    f.app
        .aws
        .secret_names_under_prefix()
        .await
        .iter()
        .any(|name| name.ends_with(id))
}

/// Waits until `received` grows past `before`: the request under way has reached the fake
/// (within 20 s: the emulator is shared with every other test of the run).
async fn until_received(received: impl Fn() -> usize, before: usize) {
    for _ in 0..2000 {
        if received() > before {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the request never reached the fake");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_during_the_token_exchange_leaves_no_secret() {
    let f = flow().await;
    let (id, auth_url) = start(&f, json!({})).await;
    let back = consent(&auth_url).await;
    f.provider.server.answer_after(SLOW);
    let before = f.provider.server.requests().len();
    let callback = tokio::spawn(async move { callback(&back).await });
    until_received(|| f.provider.server.requests().len(), before).await;

    let deleted = f.app.delete(&format!("/source-connections/{id}")).await;
    assert_eq!(deleted.status(), 200);
    let (status, location, _, _) = callback.await.unwrap();
    assert_eq!(status, 303);
    let location = location.unwrap();
    assert!(
        location.contains("error=connection_not_found"),
        "{location}"
    );
    assert!(
        !has_secret(&f, &id).await,
        "the tokens got a secret for a deleted connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_during_a_credentials_patch_answers_404_and_leaves_no_secret() {
    let f = flow().await;
    let created: Value = f
        .app
        .create_connection(&json!({
            "short_name": "github",
            "readable_collection_id": "docs",
            "config": {"repo_name": "octo-org/hello-world"},
            "authentication": {"credentials": {"personal_access_token": GITHUB_TOKEN}},
            "sync_immediately": false,
        }))
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(has_secret(&f, &id).await);

    // The PATCH's credential check waits on the slow source while the connection is deleted.
    f.github.answer_after(SLOW);
    let before = f.github.requests();
    let app = &f.app;
    let path = format!("/source-connections/{id}");
    let body = json!({"authentication": {"credentials": {"personal_access_token": GITHUB_TOKEN}}});
    let patch = app.request(Method::PATCH, &path, Some(&app.api_key), Some(&body), &[]);
    let delete = async {
        until_received(|| f.github.requests(), before).await;
        app.delete(&path).await
    };
    let (patched, deleted) = tokio::join!(patch, delete);
    assert_eq!(deleted.status(), 200);
    assert_eq!(patched.status(), 404);
    assert!(
        !has_secret(&f, &id).await,
        "the PATCH re-created the deleted connection's secret"
    );
}

/// The lease runs out while the token call is under way and another run takes it over. The
/// provider has rotated the refresh token by then: its new tokens are the only live ones, so
/// they are stored, not dropped (which left the connection needing re-authorization).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_issued_after_the_refresh_lease_ran_out_are_kept() {
    let f = flow().await;
    let first = issued_refresh_token(&f).await;
    let id: domain::ids::ConnectionId = import(&f, &first, 120).await.parse().unwrap();
    let spec = f.app.platform.sources.spec("github").unwrap().clone();
    f.provider.server.answer_after(SLOW);
    let before = f.provider.server.requests().len();
    let (platform, org) = (f.app.platform.clone(), f.app.org);
    let refresh = tokio::spawn(async move {
        domain::usecases::sync::credentials_for_tests(&platform, org, id, &spec).await
    });
    until_received(|| f.provider.server.requests().len(), before).await;
    // As if a minute passed: the lease is free for another run, which takes it.
    let later = chrono::Utc::now() + chrono::Duration::minutes(2);
    let taken = f
        .app
        .platform
        .store
        .acquire_refresh_lease(id, "another-run", later, later)
        .await
        .unwrap();
    assert!(taken.is_some(), "the lease ran out");

    let token = refresh.await.unwrap();
    assert!(token.is_some(), "the run goes on with the new token");
    assert_eq!(f.provider.refreshes(), 1);
    let stored = stored_refresh_token(&f, &id.to_string()).await;
    assert_ne!(stored, first, "the rotated refresh token is stored");
}

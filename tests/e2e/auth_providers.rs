//! Auth provider connections over HTTP against the emulator and fake Composio and Pipedream
//! servers: credentials checked and kept out of every answer, source connections whose
//! credentials are fetched fresh at every run, and accounts that die at the provider.

use crate::helpers::app::{TestApp, GITHUB_TOKEN};
use crate::helpers::github::FakeGithub;
use crate::helpers::logs;
use crate::helpers::syncing::{connection, drain, jobs};
use fakes::composio::{ComposioAccount, FakeComposio};
use fakes::pipedream::{FakePipedream, PipedreamAccount};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const COMPOSIO_KEY: &str = "ak_e2eComposioKey_5b1d";
const PD_CLIENT: (&str, &str, &str) = ("pd-client-e2e", "pd-secret-e2e-77", "proj_e2e");

struct Providers {
    app: TestApp,
    composio: FakeComposio,
    pipedream: FakePipedream,
    _github: FakeGithub,
}

async fn providers() -> Providers {
    let composio = FakeComposio::start(COMPOSIO_KEY).await;
    let pipedream = FakePipedream::start(PD_CLIENT.0, PD_CLIENT.1, PD_CLIENT.2).await;
    let github = FakeGithub::start(GITHUB_TOKEN).await;
    let (c, p, g) = (
        composio.base_url.clone(),
        pipedream.base_url.clone(),
        github.base_url.clone(),
    );
    let app = TestApp::spawn_with(move |platform| {
        platform.auth_providers = Arc::new(
            sources::ProviderClients::from_lookup(|name| match name {
                "AUTH_PROVIDER_COMPOSIO_BASE_URL" => Some(c.clone()),
                "AUTH_PROVIDER_PIPEDREAM_BASE_URL" => Some(p.clone()),
                _ => None,
            })
            .expect("provider clients"),
        );
        platform.sources = Arc::new(sources::Catalog::with_github_base_url(&g).expect("catalog"));
    })
    .await;
    app.create_collection("docs").await;
    Providers {
        app,
        composio,
        pipedream,
        _github: github,
    }
}

async fn add_provider(app: &TestApp, body: Value) -> (u16, Value) {
    let response = app.post("/auth-providers/connections", &body).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn github_through(provider: &str, account: &str) -> Value {
    json!({
        "short_name": "github",
        "readable_collection_id": "docs",
        "config": {"repo_name": "octo-org/hello-world"},
        "authentication": {"provider_readable_id": provider, "provider_config": {"account_id": account}},
    })
}

#[tokio::test]
async fn a_composio_account_syncs_with_fresh_credentials_and_a_dead_one_needs_reauth() {
    let p = providers().await;
    p.composio
        .add_account(ComposioAccount::oauth("ca_gh1", "github", GITHUB_TOKEN));
    let (status, created) = add_provider(
        &p.app,
        json!({"name": "Our Composio", "readable_id": "our-composio", "short_name": "composio",
               "auth_fields": {"api_key": COMPOSIO_KEY}}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["short_name"], "composio");
    let listed = p
        .app
        .get("/auth-providers/connections")
        .await
        .text()
        .await
        .unwrap();
    assert!(listed.contains("our-composio"));

    let response = p
        .app
        .create_connection(&github_through("our-composio", "ca_gh1"))
        .await;
    let c: Value = response.json().await.unwrap();
    assert_eq!(c["status"], "active", "{c}");
    assert_eq!(c["auth"]["method"], "auth_provider");
    assert_eq!(c["auth"]["provider_readable_id"], "our-composio");
    assert_eq!(c["provider_short_name"], "composio");
    let id = c["id"].as_str().unwrap().to_owned();
    let fetches = p.composio.account_fetches();
    drain(&p.app, Duration::from_secs(2)).await;
    assert_eq!(jobs(&p.app, &id).await[0]["status"], "completed");
    assert_eq!(
        p.composio.account_fetches(),
        fetches + 1,
        "the run fetched the account again"
    );

    p.composio.remove_account("ca_gh1");
    let run = p
        .app
        .post(&format!("/source-connections/{id}/run"), &json!({}))
        .await;
    assert_eq!(run.status(), 202);
    drain(&p.app, Duration::from_secs(2)).await;
    let c = connection(&p.app, &id).await;
    assert_eq!(c["status"], "needs_reauth", "{c}");
    assert_eq!(c["error_category"], "auth_provider_account_gone");

    let logs = logs::captured();
    for answer in [created.to_string(), listed, c.to_string()] {
        assert!(!answer.contains(COMPOSIO_KEY));
        assert!(!answer.contains(GITHUB_TOKEN));
    }
    assert!(!logs.contains(COMPOSIO_KEY));
}

#[tokio::test]
async fn unusable_accounts_and_credentials_are_refused_with_what_to_fix() {
    let p = providers().await;
    let (status, problem) = add_provider(
        &p.app,
        json!({"readable_id": "bad-key", "short_name": "composio", "auth_fields": {"api_key": "wrong"}}),
    )
    .await;
    assert_eq!(status, 400, "{problem}");
    assert!(!problem.to_string().contains("wrong\""));

    let (status, _) = add_provider(
        &p.app,
        json!({"readable_id": "our-pipedream", "short_name": "pipedream",
               "auth_fields": {"client_id": PD_CLIENT.0, "client_secret": PD_CLIENT.1, "project_id": PD_CLIENT.2}}),
    )
    .await;
    assert_eq!(status, 201);
    p.pipedream.add_account(
        PipedreamAccount::oauth("apn_hidden", "github", "user-1", GITHUB_TOKEN)
            .without_credentials(),
    );
    p.pipedream.add_account(PipedreamAccount::oauth(
        "apn_linear",
        "linear_app",
        "user-1",
        "lin_oauth_x",
    ));
    for (account, says) in [
        ("apn_hidden", "credentials"),
        ("apn_linear", "github"),
        ("apn_missing", "apn_missing"),
    ] {
        let response = p
            .app
            .create_connection(&github_through("our-pipedream", account))
            .await;
        assert_eq!(response.status(), 400, "{account}");
        let problem: Value = response.json().await.unwrap();
        let detail = problem["detail"].as_str().unwrap().to_lowercase();
        assert!(detail.contains(says), "{account}: {detail}");
    }
    let unknown = p
        .app
        .create_connection(&github_through("nobody", "apn_x"))
        .await;
    assert_eq!(unknown.status(), 404);
    assert!(p
        .app
        .aws
        .secret_names_under_prefix()
        .await
        .iter()
        .all(|n| !n.contains("/connections/")));
}

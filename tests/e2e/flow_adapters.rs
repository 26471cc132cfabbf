//! OAuth's stored pieces on the emulator: browser flows (a state is stored only as its hash,
//! works once, and not after it expires, however many callbacks race for it) and the
//! platform's OAuth apps in Secrets Manager.

use crate::helpers::aws::TestAws;
use chrono::{Duration, Utc};
use domain::ids::{ConnectionId, OrganizationId};
use domain::oauth::{FlowState, PendingFlow, PkceVerifier, STATE_LIFETIME};
use domain::ports::{CredentialVault, FlowStore};
use secrecy::ExposeSecret;

fn flow(state: &FlowState, expires_in: Duration) -> PendingFlow {
    PendingFlow {
        state: state.hash(),
        organization_id: OrganizationId::new(),
        connection_id: ConnectionId::new(),
        pkce_verifier: Some(PkceVerifier::from_random([3; 32])),
        redirect_url: Some("https://app.example.com/done".into()),
        expires_at: Utc::now() + expires_in,
    }
}

#[tokio::test]
async fn a_flow_is_taken_once_and_never_after_it_expires() {
    let aws = TestAws::fresh().await;
    let store = aws.store();
    let state = FlowState::from_random([5; 32]);
    let stored = flow(&state, STATE_LIFETIME);
    store.put_flow(&stored).await.unwrap();

    let item = aws
        .item(&format!("OAUTH#{}", state.hash().as_str()), "META")
        .await
        .expect("stored under the hash");
    let text = format!("{item:?}");
    assert!(
        !text.contains(state.expose()),
        "the state itself is never stored"
    );
    assert!(item.contains_key("ttl"));

    // Ten callbacks race: one gets the flow.
    let now = Utc::now();
    let mut racing = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let store = store.clone();
        let hash = FlowState::from_callback(state.expose()).hash();
        racing.spawn(async move { store.take_flow(&hash, now).await.unwrap() });
    }
    let taken: Vec<PendingFlow> = racing.join_all().await.into_iter().flatten().collect();
    assert_eq!(taken.len(), 1);
    let got = &taken[0];
    assert_eq!(
        (got.organization_id, got.connection_id),
        (stored.organization_id, stored.connection_id)
    );
    assert_eq!(
        got.pkce_verifier.as_ref().map(PkceVerifier::challenge),
        stored.pkce_verifier.as_ref().map(PkceVerifier::challenge)
    );
    assert_eq!(got.redirect_url, stored.redirect_url);
    assert!(
        store.take_flow(&state.hash(), now).await.unwrap().is_none(),
        "used"
    );

    let expired_state = FlowState::from_random([6; 32]);
    store
        .put_flow(&flow(&expired_state, Duration::seconds(-1)))
        .await
        .unwrap();
    let late = store
        .take_flow(&expired_state.hash(), Utc::now())
        .await
        .unwrap();
    assert!(late.is_none(), "expired");
    let unknown = FlowState::from_random([7; 32]);
    assert!(store
        .take_flow(&unknown.hash(), Utc::now())
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn oauth_apps_come_from_the_environment_into_the_vault() {
    let aws = TestAws::fresh().await;
    let vault = aws.vault();
    let catalog = sources::Catalog::with_base_urls(&[]).unwrap();
    assert!(vault.get_oauth_app("github").await.unwrap().is_none());

    let env = |name: &str| match name {
        "OAUTH_GITHUB_CLIENT_ID" => Some("gh-client".to_owned()),
        "OAUTH_GITHUB_CLIENT_SECRET" => Some("gh-secret-value".to_owned()),
        "OAUTH_STUB_CLIENT_ID" => Some("ignored: stub has no OAuth".to_owned()),
        _ => None,
    };
    let loaded = local_stack::stack::load_oauth_apps(&vault, &catalog, env)
        .await
        .unwrap();
    assert_eq!(loaded, ["github"]);
    let app = vault.get_oauth_app("github").await.unwrap().unwrap();
    assert_eq!(app.client_id, "gh-client");
    assert_eq!(app.client_secret.expose_secret(), "gh-secret-value");

    // Loading again replaces the app.
    let rotated = |name: &str| match name {
        "OAUTH_GITHUB_CLIENT_ID" => Some("gh-client-2".to_owned()),
        "OAUTH_GITHUB_CLIENT_SECRET" => Some("gh-secret-2".to_owned()),
        _ => None,
    };
    local_stack::stack::load_oauth_apps(&vault, &catalog, rotated)
        .await
        .unwrap();
    let app = vault.get_oauth_app("github").await.unwrap().unwrap();
    assert_eq!(app.client_id, "gh-client-2");

    let half = |name: &str| (name == "OAUTH_SLACK_CLIENT_ID").then(|| "only-id".to_owned());
    let err = local_stack::stack::load_oauth_apps(&vault, &catalog, half)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("OAUTH_SLACK_CLIENT_SECRET"),
        "{err}"
    );
    assert!(vault.get_oauth_app("slack").await.unwrap().is_none());
}

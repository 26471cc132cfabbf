//! The token endpoint client (`sources::OAuthTokens`) against the fake OAuth 2.0 server: code
//! exchanges with PKCE, client authentication, refresh rotation, and how every failure is
//! classified without a secret in its message.

use chrono::Utc;
use domain::catalog::{ClientAuth, OAuthSettings};
use domain::oauth::{OAuthApp, OAuthEndpoints, PkceVerifier, TokenEndpoint, TokenError, TokenSet};
use fakes::oauth::{Dialect, FakeClientAuth, FakeOAuthConfig, FakeOAuthProvider};
use fakes::FakeResponse;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sources::OAuthTokens;
use std::time::Duration;

const CLIENT_ID: &str = "platform-app-1";
const CLIENT_SECRET: &str = "client-secret-Zq9!&=:";
const REDIRECT_URI: &str = "https://api.example.test/oauth/callback";

fn settings(client_auth: ClientAuth) -> OAuthSettings {
    OAuthSettings {
        authorize_url: "https://provider.example.test/authorize",
        token_url: "https://provider.example.test/token",
        scopes: vec!["read"],
        user_scopes: vec![],
        scope_separator: " ",
        pkce: true,
        client_auth,
        access_token_pointer: "/access_token",
        refresh_token_pointer: Some("/refresh_token"),
        extra_authorize_params: vec![],
    }
}

fn slack_settings() -> OAuthSettings {
    OAuthSettings {
        scope_separator: ",",
        pkce: false,
        access_token_pointer: "/authed_user/access_token",
        refresh_token_pointer: Some("/authed_user/refresh_token"),
        ..settings(ClientAuth::RequestBody)
    }
}

fn endpoints(fake: &FakeOAuthProvider) -> OAuthEndpoints {
    OAuthEndpoints {
        authorize_url: fake.authorize_url(),
        token_url: fake.token_url(),
    }
}

fn app() -> OAuthApp {
    OAuthApp {
        client_id: CLIENT_ID.to_owned(),
        client_secret: SecretString::from(CLIENT_SECRET.to_owned()),
    }
}

fn tokens() -> OAuthTokens {
    OAuthTokens::new(sources::http_client().expect("http client"))
}

async fn exchange(
    fake: &FakeOAuthProvider,
    settings: &OAuthSettings,
    code: &str,
    verifier: Option<&PkceVerifier>,
) -> Result<TokenSet, TokenError> {
    tokens()
        .exchange_code(
            settings,
            &endpoints(fake),
            &app(),
            code,
            REDIRECT_URI,
            verifier,
        )
        .await
}

/// A fresh code exchanged with PKCE, as the callback does.
async fn authorize(fake: &FakeOAuthProvider, settings: &OAuthSettings) -> TokenSet {
    let verifier = PkceVerifier::from_random([42; 32]);
    let code = fake.mint_code(CLIENT_ID, REDIRECT_URI, Some(&verifier.challenge()), "read");
    match exchange(fake, settings, &code, Some(&verifier)).await {
        Ok(set) => set,
        Err(e) => panic!("exchange failed: {e:?}"),
    }
}

fn refused(code: &str) -> Option<TokenError> {
    Some(TokenError::Refused(code.to_owned()))
}

/// Neither the message nor the debug form of an error shows any of `secrets`, nor the URL.
fn assert_says_nothing_secret(err: &TokenError, secrets: &[&str]) {
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains("127.0.0.1"), "a URL in {shown:?}");
        for secret in secrets {
            assert!(!shown.contains(secret), "a secret in {shown:?}");
        }
    }
}

#[tokio::test]
async fn a_code_exchanged_with_its_pkce_verifier_gives_live_tokens() {
    let fake = FakeOAuthProvider::start(CLIENT_ID, CLIENT_SECRET, FakeClientAuth::Body).await;
    let before = Utc::now();
    let set = authorize(&fake, &settings(ClientAuth::RequestBody)).await;
    assert!(fake.is_live(set.access_token.expose_secret()));
    assert!(set.refresh_token.is_some());
    let expires_at = set.expires_at.expect("expires_in was given");
    assert!(expires_at >= before + chrono::Duration::seconds(3600));
    assert!(expires_at <= Utc::now() + chrono::Duration::seconds(3600));
    assert_eq!((fake.token_calls(), fake.code_exchanges()), (1, 1));
}

#[tokio::test]
async fn a_wrong_verifier_or_a_reused_code_is_refused() {
    let fake = FakeOAuthProvider::start(CLIENT_ID, CLIENT_SECRET, FakeClientAuth::Body).await;
    let settings = settings(ClientAuth::RequestBody);
    let verifier = PkceVerifier::from_random([1; 32]);
    let code = fake.mint_code(CLIENT_ID, REDIRECT_URI, Some(&verifier.challenge()), "read");
    let other = PkceVerifier::from_random([2; 32]);
    let err = exchange(&fake, &settings, &code, Some(&other)).await.err();
    assert_eq!(err, refused("invalid_grant"));
    assert_says_nothing_secret(
        err.as_ref().unwrap(),
        &[&code, other.expose(), CLIENT_SECRET],
    );
    // The code was used up by that attempt.
    let err = exchange(&fake, &settings, &code, Some(&verifier))
        .await
        .err();
    assert_eq!(err, refused("invalid_grant"));
}

#[tokio::test]
async fn the_client_authenticates_the_way_the_settings_say() {
    for (fake_auth, good, bad) in [
        (
            FakeClientAuth::Basic,
            ClientAuth::Basic,
            ClientAuth::RequestBody,
        ),
        (
            FakeClientAuth::Body,
            ClientAuth::RequestBody,
            ClientAuth::Basic,
        ),
    ] {
        let fake = FakeOAuthProvider::start(CLIENT_ID, CLIENT_SECRET, fake_auth).await;
        let set = authorize(&fake, &settings(good)).await;
        assert!(fake.is_live(set.access_token.expose_secret()));

        let code = fake.mint_code(CLIENT_ID, REDIRECT_URI, None, "read");
        let err = exchange(&fake, &settings(bad), &code, None).await.err();
        assert_eq!(err, refused("invalid_client"), "{fake_auth:?}");
        assert_says_nothing_secret(err.as_ref().unwrap(), &[&code, CLIENT_SECRET]);
    }
}

#[tokio::test]
async fn a_refresh_rotates_the_refresh_token() {
    let fake = FakeOAuthProvider::start(CLIENT_ID, CLIENT_SECRET, FakeClientAuth::Basic).await;
    let settings = settings(ClientAuth::Basic);
    let first = authorize(&fake, &settings).await;
    let old_refresh = first.refresh_token.expect("a refresh token");
    let second = match tokens()
        .refresh(&settings, &endpoints(&fake), &app(), &old_refresh)
        .await
    {
        Ok(set) => set,
        Err(e) => panic!("refresh failed: {e:?}"),
    };
    let new_refresh = second.refresh_token.expect("a rotated refresh token");
    assert_ne!(new_refresh.expose_secret(), old_refresh.expose_secret());
    assert_ne!(
        second.access_token.expose_secret(),
        first.access_token.expose_secret()
    );
    assert!(fake.is_live(second.access_token.expose_secret()));
    assert!(second.expires_at.is_some());

    let err = tokens()
        .refresh(&settings, &endpoints(&fake), &app(), &old_refresh)
        .await
        .err();
    assert_eq!(err, refused("invalid_grant"), "the old one stopped working");
    assert_says_nothing_secret(
        err.as_ref().unwrap(),
        &[
            old_refresh.expose_secret(),
            new_refresh.expose_secret(),
            CLIENT_SECRET,
        ],
    );
    assert_eq!((fake.refreshes(), fake.token_calls()), (1, 3));
}

#[tokio::test]
async fn a_revoked_grant_is_refused() {
    let fake = FakeOAuthProvider::start(CLIENT_ID, CLIENT_SECRET, FakeClientAuth::Body).await;
    let settings = settings(ClientAuth::RequestBody);
    let set = authorize(&fake, &settings).await;
    let refresh_token = set.refresh_token.expect("a refresh token");
    let (client, endpoints, app) = (tokens(), endpoints(&fake), app());
    let refresh = || client.refresh(&settings, &endpoints, &app, &refresh_token);

    fake.fail_next_with_invalid_grant();
    assert_eq!(refresh().await.err(), refused("invalid_grant"));
    fake.revoke_all();
    assert!(!fake.is_live(set.access_token.expose_secret()));
    assert_eq!(refresh().await.err(), refused("invalid_grant"));
}

#[tokio::test]
async fn server_errors_rate_limits_and_odd_answers_are_classified() {
    let fake = FakeOAuthProvider::start(CLIENT_ID, CLIENT_SECRET, FakeClientAuth::Body).await;
    let settings = settings(ClientAuth::RequestBody);
    let code = fake.mint_code(CLIENT_ID, REDIRECT_URI, None, "read");
    let secrets = [code.as_str(), CLIENT_SECRET];

    fake.fail_next_with_server_error();
    let err = exchange(&fake, &settings, &code, None).await.err();
    assert!(matches!(err, Some(TokenError::Unavailable(_))), "{err:?}");
    assert_says_nothing_secret(err.as_ref().unwrap(), &secrets);

    fake.fail_next_rate_limited(7);
    let err = exchange(&fake, &settings, &code, None).await.err();
    assert_eq!(
        err,
        Some(TokenError::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        })
    );

    fake.fail_next_token_call(FakeResponse::json(
        200,
        &json!({"token_type": "Bearer", "expires_in": 3600}),
    ));
    let err = exchange(&fake, &settings, &code, None).await.err();
    assert!(matches!(err, Some(TokenError::Malformed(_))), "{err:?}");
    assert_says_nothing_secret(err.as_ref().unwrap(), &secrets);

    // A redirect is never followed: a credential must not go where it points.
    fake.fail_next_token_call(
        FakeResponse::text(302, "text/plain", "").with_header("location", fake.token_url()),
    );
    let err = exchange(&fake, &settings, &code, None).await.err();
    assert!(matches!(err, Some(TokenError::Malformed(_))), "{err:?}");
    assert_eq!(
        fake.server.requests().len(),
        4,
        "the redirect was not followed"
    );

    // None of those used the code up: it still works.
    assert!(exchange(&fake, &settings, &code, None).await.is_ok());
}

#[tokio::test]
async fn an_unreachable_token_endpoint_is_unavailable() {
    let fake = FakeOAuthProvider::start(CLIENT_ID, CLIENT_SECRET, FakeClientAuth::Body).await;
    let endpoints = endpoints(&fake);
    drop(fake);
    let err = tokens()
        .exchange_code(
            &settings(ClientAuth::RequestBody),
            &endpoints,
            &app(),
            "some-code-value",
            REDIRECT_URI,
            None,
        )
        .await
        .err();
    assert!(matches!(err, Some(TokenError::Unavailable(_))), "{err:?}");
    assert_says_nothing_secret(err.as_ref().unwrap(), &["some-code-value", CLIENT_SECRET]);
}

#[tokio::test]
async fn slacks_user_token_is_read_where_its_pointer_says() {
    let mut config = FakeOAuthConfig::new(CLIENT_ID, CLIENT_SECRET, FakeClientAuth::Body);
    config.dialect = Dialect::Slack;
    let fake = FakeOAuthProvider::start_with(config).await;
    let settings = slack_settings();

    let code = fake.mint_code(CLIENT_ID, REDIRECT_URI, None, "search:read");
    let set = match exchange(&fake, &settings, &code, None).await {
        Ok(set) => set,
        Err(e) => panic!("exchange failed: {e:?}"),
    };
    assert!(set.access_token.expose_secret().starts_with("fake-at-"));
    assert!(fake.is_live(set.access_token.expose_secret()));
    assert!(set.refresh_token.is_some() && set.expires_at.is_some());

    // Slack answers HTTP 200 `{"ok": false, "error": "invalid_code"}`.
    let err = exchange(&fake, &settings, "never-issued-code", None)
        .await
        .err();
    assert_eq!(err, refused("invalid_code"));
    let err = exchange(&fake, &settings, &code, None).await.err();
    assert_eq!(err, refused("code_already_used"));
    assert_says_nothing_secret(
        err.as_ref().unwrap(),
        &[&code, set.access_token.expose_secret(), CLIENT_SECRET],
    );
}

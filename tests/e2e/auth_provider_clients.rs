//! The auth providers' clients (`sources::ProviderClients`) against the fake Composio and the
//! fake Pipedream: what each kind of account gives, how every failure is classified, that a
//! Pipedream token is reused and renewed once when refused, and that no error or log line ever
//! shows a key, a secret or a token. No emulator needed.

use crate::helpers::logs;
use domain::auth::AuthenticationRequest;
use domain::auth_provider::{AccountRef, ProviderCredentials, ProviderError};
use domain::catalog::SourceSpec;
use domain::ports::AuthProviders;
use domain::ports::SourceDirectory;
use fakes::composio::{ComposioAccount, FakeComposio};
use fakes::pipedream::{FakePipedream, PipedreamAccount};
use secrecy::{ExposeSecret, SecretString};
use sources::{Catalog, ProviderClients};
use std::time::Duration;

const COMPOSIO_KEY: &str = "ak_e2eComposioKey_9f3Kq";
const GITHUB_TOKEN: &str = "gho_e2eComposioAccessToken0001";
const LINEAR_KEY: &str = "lin_api_e2eComposioLinearKey0001";
const PD_CLIENT_ID: &str = "pd-e2e-client";
const PD_CLIENT_SECRET: &str = "pd-e2e-secret-Zq9!&=";
const PD_PROJECT: &str = "proj_e2e1";
const SLACK_TOKEN: &str = "xoxp-e2ePipedreamAccessToken0001";
/// Every secret of these tests: none may show in an error or a log line.
const SECRETS: [&str; 6] = [
    COMPOSIO_KEY,
    GITHUB_TOKEN,
    LINEAR_KEY,
    PD_CLIENT_SECRET,
    SLACK_TOKEN,
    "pd-fake-",
];

fn catalog() -> Catalog {
    Catalog::from_lookup(|_| None).expect("catalog")
}

fn spec<'a>(catalog: &'a Catalog, short_name: &str) -> &'a SourceSpec {
    catalog.spec(short_name).expect("a source of the catalog")
}

fn clients(composio: Option<&FakeComposio>, pipedream: Option<&FakePipedream>) -> ProviderClients {
    logs::install();
    let composio = composio.map(|f| f.base_url.clone());
    let pipedream = pipedream.map(|f| f.base_url.clone());
    ProviderClients::from_lookup(move |variable| match variable {
        "AUTH_PROVIDER_COMPOSIO_BASE_URL" => composio.clone(),
        "AUTH_PROVIDER_PIPEDREAM_BASE_URL" => pipedream.clone(),
        _ => None,
    })
    .expect("provider clients")
}

fn composio_credentials(api_key: &str) -> ProviderCredentials {
    ProviderCredentials::Composio {
        api_key: SecretString::from(api_key.to_owned()),
    }
}

fn pipedream_credentials(secret: &str, environment: &str) -> ProviderCredentials {
    ProviderCredentials::Pipedream {
        client_id: PD_CLIENT_ID.to_owned(),
        client_secret: SecretString::from(secret.to_owned()),
        project_id: PD_PROJECT.to_owned(),
        environment: environment.to_owned(),
    }
}

fn account(id: &str) -> AccountRef {
    AccountRef {
        account_id: id.to_owned(),
        auth_config_id: None,
        external_user_id: None,
    }
}

/// Neither the message nor the debug form of `err` shows a secret or a fake's address.
fn assert_says_nothing_secret(err: &ProviderError) {
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains("127.0.0.1"), "a URL in {shown:?}");
        for secret in SECRETS {
            assert!(!shown.contains(secret), "a secret in {shown:?}");
        }
    }
}

fn assert_logs_say_nothing_secret() {
    let captured = logs::captured();
    for secret in SECRETS {
        assert!(!captured.contains(secret), "a secret in the logs");
    }
}

fn token_of(got: AuthenticationRequest) -> (String, bool, bool) {
    let AuthenticationRequest::OauthToken(token) = got else {
        panic!("an OAuth token, not {got:?}");
    };
    (
        token.access_token.expose_secret().to_owned(),
        token.refresh_token.is_some(),
        token.expires_at.is_some(),
    )
}

async fn fetch_err(
    clients: &ProviderClients,
    credentials: &ProviderCredentials,
    source: &SourceSpec,
    id: &str,
) -> ProviderError {
    match clients.fetch(credentials, source, &account(id)).await {
        Ok(got) => panic!("a failure, not {got:?}"),
        Err(err) => err,
    }
}

async fn composio_with_accounts() -> FakeComposio {
    let fake = FakeComposio::start(COMPOSIO_KEY).await;
    fake.add_account(ComposioAccount::oauth("ca_github1", "github", GITHUB_TOKEN));
    fake.add_account(ComposioAccount::api_key("ca_linear1", "linear", LINEAR_KEY));
    fake
}

async fn pipedream_with_accounts() -> FakePipedream {
    let fake = FakePipedream::start(PD_CLIENT_ID, PD_CLIENT_SECRET, PD_PROJECT).await;
    fake.add_account(PipedreamAccount::oauth(
        "apn_slack1",
        "slack",
        "user-1",
        SLACK_TOKEN,
    ));
    fake
}

#[tokio::test]
async fn composio_checks_the_api_key_with_one_cheap_read() {
    let fake = composio_with_accounts().await;
    let clients = clients(Some(&fake), None);
    clients
        .verify(&composio_credentials(COMPOSIO_KEY))
        .await
        .expect("the key is good");
    let err = clients
        .verify(&composio_credentials("ak_wrong_key"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::CredentialsRejected(m) if m.contains("Composio refused the API key")),
        "{err:?}"
    );
    assert_says_nothing_secret(&err);
    assert_eq!(fake.key_checks(), 2);
    assert_eq!(fake.account_fetches(), 0);
}

#[tokio::test]
async fn a_composio_oauth_account_gives_its_access_token_and_no_refresh_token() {
    let fake = composio_with_accounts().await;
    let catalog = catalog();
    let got = clients(Some(&fake), None)
        .fetch(
            &composio_credentials(COMPOSIO_KEY),
            spec(&catalog, "github"),
            &account("ca_github1"),
        )
        .await
        .expect("credentials");
    let (token, refresh, expires) = token_of(got);
    assert_eq!(token, GITHUB_TOKEN);
    assert!(!refresh, "the provider refreshes");
    assert!(expires, "expires_in was given");
    assert_eq!(fake.asked(), ["ca_github1"]);
    assert_logs_say_nothing_secret();
}

#[tokio::test]
async fn a_composio_key_account_gives_the_key_under_the_sources_field() {
    let fake = composio_with_accounts().await;
    let catalog = catalog();
    let mut wanted = account("ca_linear1");
    wanted.auth_config_id = Some("ac_linear".into());
    let got = clients(Some(&fake), None)
        .fetch(
            &composio_credentials(COMPOSIO_KEY),
            spec(&catalog, "linear"),
            &wanted,
        )
        .await
        .expect("credentials");
    let AuthenticationRequest::Direct(credentials) = got else {
        panic!("direct credentials, not {got:?}");
    };
    assert_eq!(credentials.string("api_key"), Some(LINEAR_KEY));
    assert!(!format!("{credentials:?}").contains(LINEAR_KEY));
}

#[tokio::test]
async fn a_missing_expired_or_foreign_composio_account_is_named_as_such() {
    let fake = composio_with_accounts().await;
    fake.add_account(
        ComposioAccount::oauth("ca_expired", "github", GITHUB_TOKEN).status("EXPIRED"),
    );
    let catalog = catalog();
    let clients = clients(Some(&fake), None);
    let credentials = composio_credentials(COMPOSIO_KEY);
    let github = spec(&catalog, "github");
    let err = fetch_err(&clients, &credentials, github, "ca_nowhere").await;
    assert!(
        matches!(&err, ProviderError::AccountGone(m) if m.contains("ca_nowhere")),
        "{err:?}"
    );
    assert_says_nothing_secret(&err);

    let err = fetch_err(&clients, &credentials, github, "ca_expired").await;
    assert!(
        matches!(&err, ProviderError::AccountGone(m) if m.contains("EXPIRED")),
        "{err:?}"
    );
    assert_says_nothing_secret(&err);

    let err = fetch_err(&clients, &credentials, github, "ca_linear1").await;
    assert!(
        matches!(&err, ProviderError::WrongApp(m) if m.contains("linear") && m.contains("GitHub")),
        "{err:?}"
    );
    assert_says_nothing_secret(&err);

    let mut other_config = account("ca_github1");
    other_config.auth_config_id = Some("ac_someone_else".into());
    let err = clients
        .fetch(&credentials, github, &other_config)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::WrongApp(_)), "{err:?}");

    let err = fetch_err(&clients, &credentials, spec(&catalog, "stub"), "ca_github1").await;
    assert_eq!(
        err,
        ProviderError::WrongApp("Composio has no app for Stub".into())
    );
    assert_eq!(
        fake.account_fetches(),
        4,
        "the stub is refused before asking"
    );
}

#[tokio::test]
async fn masked_composio_secrets_are_unusable_and_say_how_to_fix_it() {
    let fake = composio_with_accounts().await;
    fake.add_account(ComposioAccount::oauth("ca_masked", "github", GITHUB_TOKEN).masked());
    let catalog = catalog();
    let clients = clients(Some(&fake), None);
    let credentials = composio_credentials(COMPOSIO_KEY);

    let err = clients
        .fetch(
            &credentials,
            spec(&catalog, "github"),
            &account("ca_masked"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::CredentialsUnusable(m) if m.contains("secret masking")),
        "{err:?}"
    );
    assert_says_nothing_secret(&err);

    fake.mask_secrets(true);
    let err = clients
        .fetch(
            &credentials,
            spec(&catalog, "linear"),
            &account("ca_linear1"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::CredentialsUnusable(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_refused_composio_key_is_rejected_on_fetch_too() {
    let fake = composio_with_accounts().await;
    let catalog = catalog();
    let err = clients(Some(&fake), None)
        .fetch(
            &composio_credentials("ak_not_the_key"),
            spec(&catalog, "github"),
            &account("ca_github1"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::CredentialsRejected(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn composio_rate_limits_and_outages_are_retryable() {
    let fake = composio_with_accounts().await;
    let catalog = catalog();
    let clients = clients(Some(&fake), None);
    let credentials = composio_credentials(COMPOSIO_KEY);
    let github = spec(&catalog, "github");

    fake.rate_limit_next(17);
    let err = clients
        .fetch(&credentials, github, &account("ca_github1"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ProviderError::RateLimited {
            retry_after: Some(Duration::from_secs(17))
        }
    );

    fake.fail_next_with_server_error();
    let err = clients.verify(&credentials).await.unwrap_err();
    assert!(
        matches!(&err, ProviderError::Unavailable(m) if m.contains("Composio") && m.contains("500")),
        "{err:?}"
    );
    assert_says_nothing_secret(&err);

    fake.fail_next(fakes::FakeResponse::text(
        200,
        "text/html",
        "<html>login</html>",
    ));
    let err = clients
        .fetch(&credentials, github, &account("ca_github1"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    assert!(!err.to_string().contains("login"), "{err}");
}

#[tokio::test]
async fn an_unreachable_provider_is_unavailable() {
    let fake = FakeComposio::start(COMPOSIO_KEY).await;
    let base_url = fake.base_url.clone();
    drop(fake);
    logs::install();
    let clients = ProviderClients::from_lookup(move |variable| {
        (variable == "AUTH_PROVIDER_COMPOSIO_BASE_URL").then(|| base_url.clone())
    })
    .expect("provider clients");
    let err = clients
        .verify(&composio_credentials(COMPOSIO_KEY))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    assert_says_nothing_secret(&err);
}

#[tokio::test]
async fn pipedream_checks_the_client_with_a_client_credentials_token() {
    let fake = pipedream_with_accounts().await;
    let clients = clients(None, Some(&fake));
    clients
        .verify(&pipedream_credentials(PD_CLIENT_SECRET, "production"))
        .await
        .expect("the client is good");
    let err = clients
        .verify(&pipedream_credentials("not-the-secret", "production"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::CredentialsRejected(m) if m.contains("Pipedream")),
        "{err:?}"
    );
    assert_says_nothing_secret(&err);
    assert_eq!(fake.token_calls(), 2);
}

#[tokio::test]
async fn a_pipedream_token_serves_many_fetches() {
    let fake = pipedream_with_accounts().await;
    let catalog = catalog();
    let clients = clients(None, Some(&fake));
    let credentials = pipedream_credentials(PD_CLIENT_SECRET, "production");
    let slack = spec(&catalog, "slack");
    let mut wanted = account("apn_slack1");
    wanted.external_user_id = Some("user-1".into());
    for _ in 0..2 {
        let got = clients
            .fetch(&credentials, slack, &wanted)
            .await
            .expect("credentials");
        let (token, refresh, expires) = token_of(got);
        assert_eq!(token, SLACK_TOKEN);
        assert!(!refresh && expires);
    }
    assert_eq!((fake.token_calls(), fake.account_fetches()), (1, 2));
    assert_eq!(
        fake.environments(),
        [Some("production".to_owned()), Some("production".to_owned())]
    );

    // A clone shares the cache; another secret for the same client does not get the token.
    let err = clients
        .clone()
        .fetch(
            &pipedream_credentials("someone-elses-guess", "production"),
            slack,
            &wanted,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::CredentialsRejected(_)),
        "{err:?}"
    );
    assert_eq!((fake.token_calls(), fake.account_fetches()), (2, 2));
    assert_logs_say_nothing_secret();
}

#[tokio::test]
async fn a_refused_pipedream_token_is_renewed_once() {
    let fake = pipedream_with_accounts().await;
    let catalog = catalog();
    let clients = clients(None, Some(&fake));
    let credentials = pipedream_credentials(PD_CLIENT_SECRET, "production");
    let slack = spec(&catalog, "slack");
    clients
        .fetch(&credentials, slack, &account("apn_slack1"))
        .await
        .expect("credentials");

    fake.revoke_tokens();
    clients
        .fetch(&credentials, slack, &account("apn_slack1"))
        .await
        .expect("credentials with a new token");
    assert_eq!((fake.token_calls(), fake.account_fetches()), (2, 3));

    // Refused again with a new token: the client itself is no good, no loop.
    fake.revoke_tokens();
    fake.fail_next_account_call(fakes::FakeResponse::json(
        401,
        &serde_json::json!({"error": "invalid or expired token"}),
    ));
    fake.fail_next_account_call(fakes::FakeResponse::json(
        401,
        &serde_json::json!({"error": "invalid or expired token"}),
    ));
    let err = clients
        .fetch(&credentials, slack, &account("apn_slack1"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::CredentialsRejected(_)),
        "{err:?}"
    );
    assert_eq!((fake.token_calls(), fake.account_fetches()), (3, 5));
}

#[tokio::test]
async fn a_dead_foreign_or_credential_less_pipedream_account_is_named_as_such() {
    let fake = pipedream_with_accounts().await;
    fake.add_account(PipedreamAccount::oauth("apn_dead", "slack", "user-1", SLACK_TOKEN).dead());
    fake.add_account(
        PipedreamAccount::oauth("apn_managed", "slack", "user-1", SLACK_TOKEN)
            .without_credentials(),
    );
    fake.add_account(PipedreamAccount::oauth(
        "apn_github",
        "github",
        "user-1",
        GITHUB_TOKEN,
    ));
    let catalog = catalog();
    let clients = clients(None, Some(&fake));
    let credentials = pipedream_credentials(PD_CLIENT_SECRET, "production");
    let slack = spec(&catalog, "slack");

    let err = clients
        .fetch(&credentials, slack, &account("apn_dead"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::AccountGone(m) if m.contains("dead")),
        "{err:?}"
    );

    let err = clients
        .fetch(&credentials, slack, &account("apn_nowhere"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::AccountGone(_)), "{err:?}");

    let err = clients
        .fetch(&credentials, slack, &account("apn_managed"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::CredentialsUnusable(m) if m.contains("own OAuth client")),
        "{err:?}"
    );

    let err = clients
        .fetch(&credentials, slack, &account("apn_github"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::WrongApp(_)), "{err:?}");

    let mut someone_else = account("apn_slack1");
    someone_else.external_user_id = Some("user-2".into());
    let err = clients
        .fetch(&credentials, slack, &someone_else)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::WrongApp(_)), "{err:?}");
    assert_eq!(fake.token_calls(), 1);
}

#[tokio::test]
async fn a_pipedream_account_is_only_found_in_its_environment() {
    let fake = pipedream_with_accounts().await;
    fake.add_account(
        PipedreamAccount::oauth("apn_dev", "slack", "user-1", SLACK_TOKEN)
            .in_environment("development"),
    );
    let catalog = catalog();
    let clients = clients(None, Some(&fake));
    let slack = spec(&catalog, "slack");

    let err = clients
        .fetch(
            &pipedream_credentials(PD_CLIENT_SECRET, "development"),
            slack,
            &account("apn_slack1"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::AccountGone(m) if m.contains("development")),
        "{err:?}"
    );
    clients
        .fetch(
            &pipedream_credentials(PD_CLIENT_SECRET, "development"),
            slack,
            &account("apn_dev"),
        )
        .await
        .expect("the development account");
    assert_eq!(
        fake.environments(),
        [
            Some("development".to_owned()),
            Some("development".to_owned())
        ]
    );
}

#[tokio::test]
async fn pipedream_rate_limits_and_outages_are_retryable() {
    let fake = pipedream_with_accounts().await;
    fake.wrap_in_data(true);
    let catalog = catalog();
    let clients = clients(None, Some(&fake));
    let credentials = pipedream_credentials(PD_CLIENT_SECRET, "production");
    let slack = spec(&catalog, "slack");

    fake.rate_limit_next(30);
    let err = clients
        .fetch(&credentials, slack, &account("apn_slack1"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ProviderError::RateLimited {
            retry_after: Some(Duration::from_secs(30))
        }
    );

    fake.fail_next_with_server_error();
    let err = clients
        .fetch(&credentials, slack, &account("apn_slack1"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Unavailable(m) if m.contains("Pipedream")),
        "{err:?}"
    );
    assert_says_nothing_secret(&err);

    fake.fail_next_token_call(fakes::FakeResponse::text(503, "text/plain", "busy"));
    let err = clients.verify(&credentials).await.unwrap_err();
    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");

    // The wrapped answer reads as well as the bare one.
    let got = clients
        .fetch(&credentials, slack, &account("apn_slack1"))
        .await
        .expect("credentials");
    assert_eq!(token_of(got).0, SLACK_TOKEN);
    assert_logs_say_nothing_secret();
}

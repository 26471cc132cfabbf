use super::*;
use crate::testing::{
    closed_port_url, direct_credential, header_map as headers, oauth, test_now as now,
};
use crate::upstream::http_client;
use domain::catalog::validate_fields;
use fakes::github::{FakeGithub, Fault, Repo, Workspace};
use serde_json::json;
use std::sync::{Arc, Mutex, OnceLock};

const PAT: &str = "ghp_test0secret0value0never0logged";

fn pat(token: &str) -> AuthenticationRequest {
    direct_credential("personal_access_token", token)
}

/// The fake GitHub, accepting [`PAT`], with `octo/hello`.
async fn github() -> FakeGithub {
    let mut workspace = Workspace::default();
    workspace.add_repo(Repo::new("octo/hello", "main"));
    FakeGithub::start_with(PAT, workspace).await
}

fn source_for(fake: &FakeGithub) -> GitHubSource {
    GitHubSource::new(
        http_client().unwrap(),
        BaseUrl::parse(&fake.base_url).unwrap(),
    )
}

/// The check of [`PAT`] (no repository configured) against the fake GitHub after `setup`.
async fn check_after(setup: impl FnOnce(&FakeGithub)) -> Result<(), CheckError> {
    let fake = github().await;
    setup(&fake);
    source_for(&fake)
        .check_credentials(&pat(PAT), &Map::new())
        .await
}

/// The check of [`PAT`] when GitHub answers `GET /user` with `fault`.
async fn check_with(fault: Fault) -> Result<(), CheckError> {
    check_after(|fake| fake.fail_next("/user", fault)).await
}

fn waited(result: Result<(), CheckError>) -> Duration {
    match result {
        Err(CheckError::RateLimited {
            retry_after: Some(wait),
        }) => wait,
        other => panic!("expected a rate limit with a wait, got {other:?}"),
    }
}

// --- the catalog entry ---

fn config_errors(config: serde_json::Value) -> Vec<String> {
    validate_fields(&spec().config_fields, config.as_object().unwrap(), "config")
        .into_iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect()
}

#[test]
fn repo_name_must_be_owner_slash_repo() {
    for ok in [
        "octocat/Hello-World",
        "a/b",
        "my.org/repo_name.rs",
        "airweave-ai/airweave",
    ] {
        assert!(check_repo_name(&json!(ok)).is_ok(), "{ok}");
    }
    let too_long_owner = format!("{}/repo", "o".repeat(40));
    let too_long_repo = format!("owner/{}", "r".repeat(101));
    for bad in [
        "octocat",
        "/repo",
        "owner/",
        "a/b/c",
        "owner/re po",
        "owner/..",
        "./repo",
        "owner/repo?x=1",
        "ow%2Fner/repo",
        too_long_owner.as_str(),
        too_long_repo.as_str(),
    ] {
        assert!(check_repo_name(&json!(bad)).is_err(), "{bad}");
    }
    assert!(check_repo_name(&json!(format!("{}/{}", "o".repeat(39), "r".repeat(100)))).is_ok());
}

#[test]
fn config_requires_the_repository_and_checks_the_branch() {
    assert_eq!(config_errors(json!({})), ["config.repo_name: is required"]);
    assert!(config_errors(json!({"repo_name": "octocat/Hello-World"})).is_empty());
    assert!(
        config_errors(json!({"repo_name": "octocat/Hello-World", "branch": "feature/x-1.2"}))
            .is_empty()
    );
    for bad in ["a..b", "-x", "x.lock", "x y", "x:y", "x/", "@", "a@{b"] {
        assert_eq!(
            config_errors(json!({"repo_name": "o/r", "branch": bad})),
            ["config.branch: must be a valid git branch name"],
            "{bad}"
        );
    }
}

#[test]
fn the_token_is_a_required_secret() {
    let spec = spec();
    let token = spec.field("personal_access_token").unwrap();
    assert!(token.required && token.is_secret);
    assert!(spec.supports(AuthMethod::Direct) && spec.supports(AuthMethod::OauthToken));
    assert!(spec.supports(AuthMethod::OauthBrowser) && spec.supports(AuthMethod::AuthProvider));
}

// --- the check, on the wire ---

#[tokio::test]
async fn a_valid_token_is_sent_as_a_bearer_to_get_user() {
    let fake = github().await;
    let github = source_for(&fake);

    assert_eq!(
        github.check_credentials(&pat(PAT), &Map::new()).await,
        Ok(())
    );
    // An OAuth token is sent the same way: GitHub takes it once it is the one it issued.
    assert_eq!(
        github
            .check_credentials(&oauth("gho_oauth"), &Map::new())
            .await,
        Err(CheckError::Rejected(REJECTED.into()))
    );
    fake.set_valid_token("gho_oauth");
    assert_eq!(
        github
            .check_credentials(&oauth("gho_oauth"), &Map::new())
            .await,
        Ok(())
    );

    let seen = fake.received();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].path, "/user");
    assert_eq!(seen[0].auth_scheme.as_deref(), Some("Bearer"));
    assert_eq!(
        seen[0].header("accept"),
        Some("application/vnd.github+json")
    );
    assert_eq!(seen[0].header("x-github-api-version"), Some("2022-11-28"));
    assert!(seen[0]
        .header("user-agent")
        .is_some_and(|ua| ua.starts_with("source-connections/")));
    assert_eq!(seen[2].auth_scheme.as_deref(), Some("Bearer"));
}

#[tokio::test]
async fn a_base_url_path_prefix_is_kept() {
    // GitHub Enterprise Server roots its API at `/api/v3`.
    let fake = github().await;
    fake.serve_under("/api/v3");
    let github = GitHubSource::new(
        http_client().unwrap(),
        BaseUrl::parse(&format!("{}/api/v3/", fake.base_url)).unwrap(),
    );
    assert_eq!(
        github.check_credentials(&pat(PAT), &Map::new()).await,
        Ok(())
    );
    assert_eq!(fake.paths(), ["GET /api/v3/user"]);
}

#[tokio::test]
async fn bad_credentials_are_rejected_without_echoing_the_token() {
    let fake = FakeGithub::start("ghp_theOnlyTokenGithubKnows").await;
    let result = source_for(&fake)
        .check_credentials(&pat(PAT), &Map::new())
        .await;
    assert_eq!(result, Err(CheckError::Rejected(REJECTED.into())));
}

#[tokio::test]
async fn a_forbidden_token_that_is_not_rate_limited_is_rejected() {
    assert_eq!(
        check_with(Fault::SamlEnforced).await,
        Err(CheckError::Rejected(REJECTED.into()))
    );
}

#[tokio::test]
async fn a_spent_primary_limit_waits_until_the_reset() {
    let wait = waited(check_after(|fake| fake.respond_primary_limit_exhausted(600)).await);
    assert!((598..=600).contains(&wait.as_secs()), "{wait:?}");
}

#[tokio::test]
async fn a_secondary_limit_on_403_follows_retry_after_or_waits_a_minute() {
    let with_header = Fault::SecondaryLimitForbidden {
        retry_after_secs: Some(42),
    };
    assert_eq!(
        waited(check_with(with_header).await),
        Duration::from_secs(42)
    );

    // The message only, while requests remain.
    let message_only = Fault::SecondaryLimitForbidden {
        retry_after_secs: None,
    };
    assert_eq!(
        waited(check_with(message_only).await),
        Duration::from_secs(60)
    );
}

#[tokio::test]
async fn too_many_requests_reads_every_retry_hint() {
    let seconds = check_after(|fake| fake.respond_rate_limited(Some(30))).await;
    assert_eq!(waited(seconds), Duration::from_secs(30));

    // `Retry-After` may be an HTTP date too (GitHub sends seconds; the header allows both).
    let in_two_minutes = (now() + chrono::Duration::seconds(120))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let date = headers(&[("retry-after", &in_two_minutes)]);
    assert_eq!(
        waited(classify(StatusCode::TOO_MANY_REQUESTS, &date, b"", now())),
        Duration::from_secs(120)
    );

    let reset = check_with(Fault::PrimaryLimitTooManyRequests { reset_in_secs: 300 }).await;
    let wait = waited(reset);
    assert!((298..=300).contains(&wait.as_secs()), "{wait:?}");

    let nothing = check_after(|fake| fake.respond_rate_limited(None)).await;
    assert_eq!(waited(nothing), Duration::from_secs(60));
}

#[tokio::test]
async fn server_errors_and_odd_answers_are_unavailable() {
    let results = [
        check_after(FakeGithub::respond_unavailable).await,
        check_with(Fault::ServerError).await,
        check_with(Fault::Malformed).await,
        check_with(Fault::WrongShape).await,
        // A base URL without GitHub Enterprise's `/api/v3`: a 404 for `/user`.
        check_after(|fake| fake.serve_under("/api/v3")).await,
    ];
    for result in results {
        let Err(CheckError::Unavailable(message)) = result else {
            panic!("expected unavailable, got {result:?}");
        };
        assert!(
            !message.contains(PAT) && !message.contains("127.0.0.1"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let fake = github().await;
    fake.fail_next("/user", Fault::MovedPermanently);
    let result = source_for(&fake)
        .check_credentials(&pat(PAT), &Map::new())
        .await;
    assert!(
        matches!(result, Err(CheckError::Unavailable(_))),
        "{result:?}"
    );
    assert_eq!(
        fake.requests(),
        1,
        "the token never reaches the redirect target"
    );
}

#[tokio::test]
async fn network_failures_are_unavailable_and_name_no_url() {
    let github = GitHubSource::new(
        http_client().unwrap(),
        BaseUrl::parse(&closed_port_url().await).unwrap(),
    );
    assert_eq!(
        github.check_credentials(&pat(PAT), &Map::new()).await,
        Err(CheckError::Unavailable(
            "could not connect to GitHub".into()
        ))
    );

    let silent = fakes::FakeServer::silent().await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let github = GitHubSource::new(impatient, BaseUrl::parse(&silent.base_url).unwrap());
    assert_eq!(
        github.check_credentials(&pat(PAT), &Map::new()).await,
        Err(CheckError::Unavailable(
            "GitHub did not answer in time".into()
        ))
    );
}

#[tokio::test]
async fn other_methods_and_unsendable_tokens_are_rejected_before_any_request() {
    let fake = github().await;
    let github = source_for(&fake);
    for auth in [AuthenticationRequest::OauthBrowser, pat("line\nbreak")] {
        let result = github.check_credentials(&auth, &Map::new()).await;
        assert!(matches!(result, Err(CheckError::Rejected(_))), "{result:?}");
    }
    assert_eq!(fake.requests(), 0);
}

/// Every log line of this test binary from the first call on. A global subscriber, not a scoped
/// one: tests run in parallel, and a scoped subscriber races with callsites that other threads
/// register while it is set.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static CAPTURED: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    let captured = CAPTURED.get_or_init(|| {
        let captured = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&captured);
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || LogSink(Arc::clone(&sink)))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        captured
    });
    tracing::callsite::rebuild_interest_cache();
    Arc::clone(captured)
}

#[tokio::test]
async fn logs_never_carry_the_token() {
    let captured = captured_logs();
    // Accepted, refused, rate limited, unavailable.
    let _ = check_after(|_| ()).await;
    let _ = check_after(FakeGithub::revoke_token).await;
    let _ = check_after(|fake| fake.respond_rate_limited(Some(1))).await;
    let _ = check_after(FakeGithub::respond_unavailable).await;
    let refusing = FakeGithub::start("gho_anotherToken").await;
    let _ = source_for(&refusing)
        .check_credentials(&oauth(PAT), &Map::new())
        .await;
    let _ = GitHubSource::new(
        http_client().unwrap(),
        BaseUrl::parse(&closed_port_url().await).unwrap(),
    )
    .check_credentials(&pat(PAT), &Map::new())
    .await;

    let logs = String::from_utf8(captured.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("github_check_credentials") && logs.contains("could not reach GitHub"),
        "nothing captured: {logs}"
    );
    assert!(!logs.contains(PAT), "{logs}");
}

struct LogSink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// --- the mapping, at fixed instants ---

#[test]
fn retry_after_wins_over_the_reset() {
    let h = headers(&[
        ("retry-after", "5"),
        ("x-ratelimit-remaining", "0"),
        ("x-ratelimit-reset", "1795000000"),
    ]);
    assert_eq!(
        classify(StatusCode::FORBIDDEN, &h, b"", now()),
        Err(CheckError::RateLimited {
            retry_after: Some(Duration::from_secs(5))
        })
    );
}

#[test]
fn a_reset_is_ignored_while_requests_remain() {
    let reset = (now().timestamp() + 3000).to_string();
    let h = headers(&[
        ("x-ratelimit-remaining", "10"),
        ("x-ratelimit-reset", &reset),
    ]);
    assert_eq!(
        classify(StatusCode::TOO_MANY_REQUESTS, &h, b"", now()),
        Err(CheckError::RateLimited {
            retry_after: Some(DEFAULT_RATE_LIMIT_WAIT)
        })
    );
    let spent = headers(&[
        ("x-ratelimit-remaining", "0"),
        ("x-ratelimit-reset", &reset),
    ]);
    assert_eq!(
        classify(StatusCode::TOO_MANY_REQUESTS, &spent, b"", now()),
        Err(CheckError::RateLimited {
            retry_after: Some(Duration::from_secs(3000))
        })
    );
}

// --- the repository check ---

fn repo_config() -> Map<String, serde_json::Value> {
    json!({"repo_name": "octo/hello"})
        .as_object()
        .unwrap()
        .clone()
}

/// The check of [`PAT`] with `octo/hello` configured, after `setup`, and the requests sent.
async fn check_repo_after(
    setup: impl FnOnce(&FakeGithub),
) -> (Result<(), CheckError>, Vec<String>) {
    let fake = github().await;
    setup(&fake);
    let result = source_for(&fake)
        .check_credentials(&pat(PAT), &repo_config())
        .await;
    (result, fake.paths())
}

/// The same, GitHub answering `GET /repos/octo/hello` with `fault`.
async fn check_repo_with(fault: Fault) -> Result<(), CheckError> {
    check_repo_after(|fake| fake.fail_next("/repos/octo/hello", fault))
        .await
        .0
}

#[tokio::test]
async fn a_configured_repository_must_be_readable_with_the_token() {
    let (result, paths) = check_repo_after(|_| ()).await;
    assert_eq!(result, Ok(()));
    assert_eq!(paths, ["GET /user", "GET /repos/octo/hello"]);

    let cannot_read = Err(CheckError::Rejected("token cannot read octo/hello".into()));
    // Missing, or hidden from the token: a 404 alike.
    let (not_found, _) = check_repo_after(|fake| {
        fake.workspace().lock().unwrap().repos.remove("octo/hello");
    })
    .await;
    assert_eq!(not_found, cannot_read);
    assert_eq!(check_repo_with(Fault::NotAccessible).await, cannot_read);

    assert_eq!(
        check_repo_with(Fault::SecondaryLimit {
            retry_after_secs: 9
        })
        .await,
        Err(CheckError::RateLimited {
            retry_after: Some(Duration::from_secs(9))
        })
    );
    assert!(matches!(
        check_repo_with(Fault::WrongShape).await,
        Err(CheckError::Unavailable(_))
    ));
}

#[tokio::test]
async fn a_rejected_token_is_not_asked_about_the_repository() {
    let fake = github().await;
    fake.revoke_token();
    let result = source_for(&fake)
        .check_credentials(&pat(PAT), &repo_config())
        .await;
    assert_eq!(result, Err(CheckError::Rejected(REJECTED.into())));
    assert_eq!(fake.requests(), 1);
}

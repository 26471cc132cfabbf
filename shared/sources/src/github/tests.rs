use super::*;
use crate::testing::{
    closed_port_url, header_map as headers, test_now as now, FakeUpstream, Reply, Seen,
};
use crate::upstream::http_client;
use domain::auth::{Credentials, OauthToken};
use domain::catalog::validate_fields;
use secrecy::SecretString;
use serde_json::json;
use std::sync::{Arc, Mutex, OnceLock};

const PAT: &str = "ghp_test0secret0value0never0logged";

fn pat(token: &str) -> AuthenticationRequest {
    let fields = json!({ "personal_access_token": token });
    AuthenticationRequest::Direct(Credentials::new(fields.as_object().unwrap().clone()))
}

fn oauth(token: &str) -> AuthenticationRequest {
    AuthenticationRequest::OauthToken(OauthToken {
        access_token: SecretString::from(token.to_owned()),
        refresh_token: None,
        expires_at: None,
    })
}

fn user() -> serde_json::Value {
    json!({"login": "octocat", "id": 1, "type": "User", "site_admin": false})
}

fn source_for(fake: &FakeUpstream) -> GitHubSource {
    GitHubSource::new(
        http_client().unwrap(),
        BaseUrl::parse(&fake.base_url).unwrap(),
    )
}

async fn check_against(reply: Reply, auth: &AuthenticationRequest) -> Result<(), CheckError> {
    let fake = FakeUpstream::start(move |_: &Seen| reply.clone()).await;
    source_for(&fake).check_credentials(auth, &Map::new()).await
}

fn epoch_in(seconds: i64) -> String {
    (Utc::now().timestamp() + seconds).to_string()
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
    let fake = FakeUpstream::start(|_: &Seen| Reply::status(200).json(user())).await;
    let github = source_for(&fake);

    assert_eq!(
        github.check_credentials(&pat(PAT), &Map::new()).await,
        Ok(())
    );
    assert_eq!(
        github
            .check_credentials(&oauth("gho_oauth"), &Map::new())
            .await,
        Ok(())
    );

    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].path, "/user");
    let expected_pat = format!("Bearer {PAT}");
    assert_eq!(seen[0].header("authorization"), Some(expected_pat.as_str()));
    assert_eq!(
        seen[0].header("accept"),
        Some("application/vnd.github+json")
    );
    assert_eq!(seen[0].header("x-github-api-version"), Some("2022-11-28"));
    assert!(seen[0]
        .header("user-agent")
        .is_some_and(|ua| ua.starts_with("source-connections/")));
    assert_eq!(seen[1].header("authorization"), Some("Bearer gho_oauth"));
}

#[tokio::test]
async fn a_base_url_path_prefix_is_kept() {
    let fake = FakeUpstream::start(|seen: &Seen| {
        if seen.path == "/api/v3/user" {
            Reply::status(200).json(user())
        } else {
            Reply::status(404)
        }
    })
    .await;
    let github = GitHubSource::new(
        http_client().unwrap(),
        BaseUrl::parse(&format!("{}/api/v3/", fake.base_url)).unwrap(),
    );
    assert_eq!(
        github.check_credentials(&pat(PAT), &Map::new()).await,
        Ok(())
    );
}

#[tokio::test]
async fn bad_credentials_are_rejected_without_echoing_the_token() {
    let body = json!({
        "message": "Bad credentials",
        "documentation_url": "https://docs.github.com/rest",
        "status": "401"
    });
    let result = check_against(Reply::status(401).json(body), &pat(PAT)).await;
    assert_eq!(result, Err(CheckError::Rejected(REJECTED.into())));
}

#[tokio::test]
async fn a_forbidden_token_that_is_not_rate_limited_is_rejected() {
    let reply = Reply::status(403)
        .header("x-ratelimit-remaining", "4999")
        .header("x-ratelimit-reset", epoch_in(3600))
        .json(json!({"message": "Resource protected by organization SAML enforcement."}));
    assert_eq!(
        check_against(reply, &pat(PAT)).await,
        Err(CheckError::Rejected(REJECTED.into()))
    );
}

#[tokio::test]
async fn a_spent_primary_limit_waits_until_the_reset() {
    let reply = Reply::status(403)
        .header("x-ratelimit-limit", "5000")
        .header("x-ratelimit-remaining", "0")
        .header("x-ratelimit-reset", epoch_in(600))
        .json(json!({"message": "API rate limit exceeded for user ID 1."}));
    let wait = waited(check_against(reply, &pat(PAT)).await);
    assert!((598..=600).contains(&wait.as_secs()), "{wait:?}");
}

#[tokio::test]
async fn a_secondary_limit_on_403_follows_retry_after_or_waits_a_minute() {
    let with_header = Reply::status(403)
        .header("retry-after", "42")
        .json(json!({"message": "You have exceeded a secondary rate limit."}));
    assert_eq!(
        waited(check_against(with_header, &pat(PAT)).await),
        Duration::from_secs(42)
    );

    let message_only = Reply::status(403)
        .header("x-ratelimit-remaining", "14")
        .json(json!({"message": "You have exceeded a secondary rate limit. Please wait."}));
    assert_eq!(
        waited(check_against(message_only, &pat(PAT)).await),
        Duration::from_secs(60)
    );
}

#[tokio::test]
async fn too_many_requests_reads_every_retry_hint() {
    let seconds = Reply::status(429).header("retry-after", "30");
    assert_eq!(
        waited(check_against(seconds, &pat(PAT)).await),
        Duration::from_secs(30)
    );

    let in_two_minutes = (Utc::now() + chrono::Duration::seconds(120))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let date = Reply::status(429).header("retry-after", in_two_minutes);
    let wait = waited(check_against(date, &pat(PAT)).await);
    assert!((118..=120).contains(&wait.as_secs()), "{wait:?}");

    let reset = Reply::status(429)
        .header("x-ratelimit-remaining", "0")
        .header("x-ratelimit-reset", epoch_in(300));
    let wait = waited(check_against(reset, &pat(PAT)).await);
    assert!((298..=300).contains(&wait.as_secs()), "{wait:?}");

    let nothing = Reply::status(429);
    assert_eq!(
        waited(check_against(nothing, &pat(PAT)).await),
        Duration::from_secs(60)
    );
}

#[tokio::test]
async fn server_errors_and_odd_answers_are_unavailable() {
    for reply in [
        Reply::status(503).text("Service Unavailable"),
        Reply::status(500).json(json!({"message": "Server Error"})),
        Reply::status(200).text("<html>captive portal</html>"),
        Reply::status(200).json(json!({})),
        Reply::status(404).json(json!({"message": "Not Found"})),
    ] {
        let result = check_against(reply, &pat(PAT)).await;
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
    let fake = FakeUpstream::start(|seen: &Seen| {
        if seen.path == "/user" {
            Reply::status(302).header("location", "/elsewhere")
        } else {
            Reply::status(200).json(user())
        }
    })
    .await;
    let result = source_for(&fake)
        .check_credentials(&pat(PAT), &Map::new())
        .await;
    assert!(
        matches!(result, Err(CheckError::Unavailable(_))),
        "{result:?}"
    );
    assert_eq!(
        fake.seen().len(),
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

    let silent = FakeUpstream::silent().await;
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
    let fake = FakeUpstream::start(|_: &Seen| Reply::status(200).json(user())).await;
    let github = source_for(&fake);
    for auth in [AuthenticationRequest::OauthBrowser, pat("line\nbreak")] {
        let result = github.check_credentials(&auth, &Map::new()).await;
        assert!(matches!(result, Err(CheckError::Rejected(_))), "{result:?}");
    }
    assert!(fake.seen().is_empty());
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
    for reply in [
        Reply::status(200).json(user()),
        Reply::status(401).json(json!({"message": "Bad credentials"})),
        Reply::status(429).header("retry-after", "1"),
        Reply::status(503),
    ] {
        let _ = check_against(reply, &pat(PAT)).await;
        let _ = check_against(Reply::status(401), &oauth(PAT)).await;
    }
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

async fn check_repo_against(repo_reply: Reply) -> (Result<(), CheckError>, Vec<String>) {
    let fake = FakeUpstream::start(move |seen: &Seen| {
        if seen.path == "/user" {
            Reply::status(200).json(user())
        } else {
            repo_reply.clone()
        }
    })
    .await;
    let result = source_for(&fake)
        .check_credentials(&pat(PAT), &repo_config())
        .await;
    (result, fake.seen().into_iter().map(|s| s.path).collect())
}

#[tokio::test]
async fn a_configured_repository_must_be_readable_with_the_token() {
    let (result, paths) =
        check_repo_against(Reply::status(200).json(json!({"id": 7, "full_name": "octo/hello"})))
            .await;
    assert_eq!(result, Ok(()));
    assert_eq!(paths, ["/user", "/repos/octo/hello"]);

    let cannot_read = Err(CheckError::Rejected("token cannot read octo/hello".into()));
    let not_found = Reply::status(404).json(json!({"message": "Not Found"}));
    assert_eq!(check_repo_against(not_found).await.0, cannot_read);
    let forbidden = Reply::status(403)
        .header("x-ratelimit-remaining", "4999")
        .json(json!({"message": "Resource not accessible by personal access token"}));
    assert_eq!(check_repo_against(forbidden).await.0, cannot_read);

    let limited = Reply::status(429).header("retry-after", "9");
    assert_eq!(
        check_repo_against(limited).await.0,
        Err(CheckError::RateLimited {
            retry_after: Some(Duration::from_secs(9))
        })
    );
    let odd = Reply::status(200).json(json!({"login": "not a repository"}));
    assert!(matches!(
        check_repo_against(odd).await.0,
        Err(CheckError::Unavailable(_))
    ));
}

#[tokio::test]
async fn a_rejected_token_is_not_asked_about_the_repository() {
    let fake = FakeUpstream::start(|_: &Seen| {
        Reply::status(401).json(json!({"message": "Bad credentials"}))
    })
    .await;
    let result = source_for(&fake)
        .check_credentials(&pat(PAT), &repo_config())
        .await;
    assert_eq!(result, Err(CheckError::Rejected(REJECTED.into())));
    assert_eq!(fake.seen().len(), 1);
}

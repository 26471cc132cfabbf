//! The catalog entry, what each kind of refused answer means, and the credential check against
//! the fake Drive (`fakes::google_drive`); the helpers both test modules share.

use super::api::{refusal, Refusal, DAILY_LIMIT_WAIT, DEFAULT_RATE_LIMIT_WAIT};
use super::*;
use crate::testing::{header_map as headers, test_now as now};
use crate::upstream::{http_client, Answer};
use domain::auth::{Credentials, OauthToken};
use fakes::google_drive::{FakeGoogleDrive, RateLimit};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::json;
use std::time::Duration;

pub(super) const TOKEN: &str = "ya29.test-secret-access-token-never-logged";

pub(super) fn oauth(token: &str) -> AuthenticationRequest {
    AuthenticationRequest::OauthToken(OauthToken {
        access_token: SecretString::from(token.to_owned()),
        refresh_token: Some(SecretString::from("1//refresh-secret".to_owned())),
        expires_at: None,
    })
}

/// The fake Drive, with an empty workspace, accepting [`TOKEN`].
pub(super) async fn fake_drive() -> FakeGoogleDrive {
    FakeGoogleDrive::start(TOKEN).await
}

pub(super) fn source_for(fake: &FakeGoogleDrive) -> GoogleDriveSource {
    GoogleDriveSource::new(
        http_client().unwrap(),
        BaseUrl::parse(&fake.base_url).unwrap(),
    )
}

// --- the catalog entry ---

#[test]
fn the_catalog_entry_reads_as_documented() {
    let spec = spec();
    assert_eq!(spec.short_name, "google_drive");
    assert_eq!(spec.name, "Google Drive");
    assert_eq!(
        spec.auth_methods,
        [
            AuthMethod::OauthToken,
            AuthMethod::OauthBrowser,
            AuthMethod::OauthByoc,
            AuthMethod::AuthProvider
        ]
    );
    assert!(!spec.requires_byoc && spec.supports_incremental && !spec.federated_search);
    assert_eq!(
        spec.entity_types,
        ["google_drive_file", "google_drive_drive"]
    );
    let oauth = spec.oauth.unwrap();
    assert_eq!(
        oauth.scopes,
        ["https://www.googleapis.com/auth/drive.readonly"]
    );
    assert_eq!(oauth.oauth_type(), "with_refresh");
    assert!(oauth.pkce);
    assert_eq!(
        oauth.extra_authorize_params,
        [("access_type", "offline"), ("prompt", "consent")]
    );
}

// --- classification of answers ---

fn answer(status: u16, pairs: &[(&'static str, &str)], body: Value) -> Answer {
    Answer {
        status: StatusCode::from_u16(status).unwrap(),
        headers: headers(pairs),
        body: body.to_string().into_bytes(),
    }
}

pub(super) fn error_body(code: u16, reason: &str) -> Value {
    json!({"error": {"code": code, "message": "m", "errors": [{"reason": reason}]}})
}

#[test]
fn rate_limits_are_403_with_a_rate_reason_or_429() {
    let at = |a: Answer| refusal(&a, now());
    assert_eq!(
        at(answer(403, &[], error_body(403, "userRateLimitExceeded"))),
        Some(Refusal::RateLimited(DEFAULT_RATE_LIMIT_WAIT))
    );
    assert_eq!(
        at(answer(
            403,
            &[("retry-after", "1")],
            error_body(403, "rateLimitExceeded")
        )),
        Some(Refusal::RateLimited(Duration::from_secs(1)))
    );
    assert_eq!(
        at(answer(429, &[], json!("Too Many Requests"))),
        Some(Refusal::RateLimited(DEFAULT_RATE_LIMIT_WAIT))
    );
    assert_eq!(
        at(answer(403, &[], error_body(403, "insufficientPermissions"))),
        Some(Refusal::Forbidden(Some("insufficientPermissions".into())))
    );
    assert_eq!(at(answer(200, &[], json!({}))), None);
}

#[test]
fn quotas_wait_and_only_scope_or_policy_refusals_ask_for_a_new_token() {
    let error = |status, reason: &str| {
        refusal(&answer(status, &[], error_body(status, reason)), now())
            .unwrap()
            .into_stream_error()
    };
    let daily = StreamError::RateLimited {
        wait: DAILY_LIMIT_WAIT,
    };
    assert_eq!(error(403, "dailyLimitExceeded"), daily);
    assert_eq!(error(403, "quotaExceeded"), daily);
    assert_eq!(error(429, "dailyLimitExceeded"), daily);
    assert_eq!(
        error(403, "sharingRateLimitExceeded"),
        StreamError::RateLimited {
            wait: DEFAULT_RATE_LIMIT_WAIT
        }
    );
    assert_eq!(
        refusal(
            &answer(
                403,
                &[("retry-after", "120")],
                error_body(403, "dailyLimitExceeded")
            ),
            now()
        ),
        Some(Refusal::RateLimited(Duration::from_secs(120)))
    );
    for reason in ["insufficientPermissions", "domainPolicy", "authError"] {
        assert!(
            matches!(error(403, reason), StreamError::Rejected(_)),
            "{reason}"
        );
    }
    for reason in [
        "insufficientFilePermissions",
        "cannotDownloadFile",
        "forbidden",
    ] {
        let e = error(403, reason);
        assert!(
            matches!(&e, StreamError::Upstream(m) if m.contains(reason)),
            "{reason}: {e:?}"
        );
    }
}

#[test]
fn other_refusals_say_what_the_user_must_do() {
    let error = |a: Answer| refusal(&a, now()).unwrap().into_stream_error();
    let revoked = error(answer(401, &[], error_body(401, "authError")));
    assert!(
        matches!(revoked, StreamError::Rejected(ref m) if m.contains("expired or revoked")),
        "{revoked:?}"
    );
    let scope = error(answer(403, &[], error_body(403, "insufficientPermissions")));
    assert!(
        matches!(scope, StreamError::Rejected(ref m) if m.contains("drive.readonly")),
        "{scope:?}"
    );
    assert_eq!(
        error(answer(503, &[], json!({}))),
        StreamError::Upstream("the Drive API is unavailable (HTTP 503)".into())
    );
    assert_eq!(
        error(answer(404, &[], error_body(404, "notFound"))),
        StreamError::Upstream("the Drive API answered HTTP 404 (notFound)".into())
    );
    // A reason that is not one of Google's words is not repeated.
    assert_eq!(
        error(answer(400, &[], error_body(400, "see https://x?token=abc"))),
        StreamError::Upstream("the Drive API answered with unexpected HTTP 400".into())
    );
}

// --- credential checks ---

#[tokio::test]
async fn the_check_asks_about_the_user_with_the_bearer_token() {
    // The fake answers only `Authorization: Bearer <its token>`.
    let fake = fake_drive().await;
    let source = source_for(&fake);
    assert_eq!(
        source.check_credentials(&oauth(TOKEN), &Map::new()).await,
        Ok(())
    );
    let asked = fake.queries_of("/drive/v3/about");
    assert_eq!(asked.len(), 1, "{:?}", fake.requests());
    assert_eq!(asked[0].get("fields").map(String::as_str), Some("user"));
    assert!(matches!(
        source
            .check_credentials(&oauth("ya29.another-token"), &Map::new())
            .await,
        Err(CheckError::Rejected(_))
    ));
}

#[tokio::test]
async fn a_revoked_token_is_rejected_without_repeating_it() {
    let fake = fake_drive().await;
    fake.revoke_token();
    let result = source_for(&fake)
        .check_credentials(&oauth(TOKEN), &Map::new())
        .await;
    match result {
        Err(CheckError::Rejected(m)) => assert!(!m.contains(TOKEN), "{m}"),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn a_check_rate_limited_or_answered_oddly_is_not_a_rejection() {
    let fake = fake_drive().await;
    fake.rate_limit_after("/about", 0, RateLimit::UserRateLimit, Some(7));
    fake.malform_after_with("/about", 0, json!({"kind": "something else"}));
    let source = source_for(&fake);
    assert_eq!(
        source.check_credentials(&oauth(TOKEN), &Map::new()).await,
        Err(CheckError::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        })
    );
    assert!(matches!(
        source.check_credentials(&oauth(TOKEN), &Map::new()).await,
        Err(CheckError::Unavailable(_))
    ));
    let key = json!({"api_key": "k"});
    let direct = AuthenticationRequest::Direct(Credentials::new(key.as_object().unwrap().clone()));
    assert!(matches!(
        source.check_credentials(&direct, &Map::new()).await,
        Err(CheckError::Rejected(_))
    ));
}

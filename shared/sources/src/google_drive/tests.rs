//! The catalog entry, what each kind of refused answer means, and the credential check against
//! a scripted Drive; the helpers both test modules share.

use super::api::{refusal, Refusal, DAILY_LIMIT_WAIT, DEFAULT_RATE_LIMIT_WAIT};
use super::*;
use crate::testing::{header_map as headers, test_now as now, FakeUpstream, Reply, Seen};
use crate::upstream::{http_client, Answer};
use domain::auth::{Credentials, OauthToken};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::json;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

pub(super) const TOKEN: &str = "ya29.test-secret-access-token-never-logged";

pub(super) fn oauth(token: &str) -> AuthenticationRequest {
    AuthenticationRequest::OauthToken(OauthToken {
        access_token: SecretString::from(token.to_owned()),
        refresh_token: Some(SecretString::from("1//refresh-secret".to_owned())),
        expires_at: None,
    })
}

/// A fake that answers the listed (path, reply) pairs in order; a request off the script
/// gets a 418 the stream reports as an unexpected status.
pub(super) async fn scripted(script: Vec<(&'static str, Reply)>) -> FakeUpstream {
    let script = Mutex::new(VecDeque::from(script));
    FakeUpstream::start(move |seen: &Seen| {
        let mut script = script.lock().unwrap();
        match script.pop_front() {
            Some((path, reply)) if seen.path == path => reply,
            _ => Reply::status(418).text("off script"),
        }
    })
    .await
}

pub(super) fn source_for(fake: &FakeUpstream) -> GoogleDriveSource {
    source_at(&fake.base_url)
}

pub(super) fn source_at(base_url: &str) -> GoogleDriveSource {
    GoogleDriveSource::new(http_client().unwrap(), BaseUrl::parse(base_url).unwrap())
}

pub(super) fn ok(body: Value) -> Reply {
    Reply::status(200).json(body)
}

pub(super) fn google_error(code: u16, reason: &str, status: &str) -> Reply {
    Reply::status(code).json(json!({"error": {
        "code": code,
        "message": "an error",
        "errors": [{"domain": "usageLimits", "reason": reason, "message": "an error"}],
        "status": status,
    }}))
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
    let fake = scripted(vec![(
        "/drive/v3/about",
        ok(json!({"user": {"kind": "drive#user", "displayName": "Ada"}})),
    )])
    .await;
    let source = source_for(&fake);
    assert_eq!(
        source.check_credentials(&oauth(TOKEN), &Map::new()).await,
        Ok(())
    );
    let seen = fake.seen();
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
}

#[tokio::test]
async fn a_revoked_token_is_rejected_without_repeating_it() {
    let fake = scripted(vec![(
        "/drive/v3/about",
        google_error(401, "authError", "UNAUTHENTICATED"),
    )])
    .await;
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
    let fake = scripted(vec![
        (
            "/drive/v3/about",
            google_error(403, "userRateLimitExceeded", "PERMISSION_DENIED")
                .header("retry-after", "7"),
        ),
        ("/drive/v3/about", ok(json!({"kind": "something else"}))),
    ])
    .await;
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

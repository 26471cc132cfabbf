//! Well-formed create requests that cannot be served: unknown things, unsupported methods,
//! credentials the upstream refuses. None of them leaves anything behind.

use super::{assert_nothing_stored, assert_nothing_written, create, direct_body, setup, with};
use crate::error::DomainError;
use crate::ports::CheckError;
use serde_json::{json, Value};
use std::time::Duration;

fn portal(authentication: Value) -> Value {
    json!({
        "short_name": "portal",
        "readable_collection_id": "docs",
        "authentication": authentication,
    })
}

#[track_caller]
fn assert_bad_request<T: std::fmt::Debug>(result: Result<T, DomainError>, says: &str) {
    match result {
        Err(DomainError::BadRequest(m)) => assert!(m.contains(says), "{m:?} should say {says:?}"),
        other => panic!("expected a 400 saying {says:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn unknown_source_is_not_found() {
    let (f, org) = setup().await;

    let err = create(
        &f.platform,
        org,
        with(direct_body(), json!({"short_name": "nosuch"})),
    )
    .await
    .expect_err("refused");

    assert!(
        matches!(&err, DomainError::NotFound(m) if m.contains("nosuch")),
        "{err:?}"
    );
    assert_nothing_written(&f);
}

#[tokio::test]
async fn unknown_collection_is_not_found_and_writes_no_secret() {
    let (f, org) = setup().await;
    let body = with(
        direct_body(),
        json!({"readable_collection_id": "elsewhere"}),
    );

    let err = create(&f.platform, org, body).await.expect_err("refused");

    assert!(
        matches!(&err, DomainError::NotFound(m) if m.contains("elsewhere")),
        "{err:?}"
    );
    assert_nothing_written(&f);
}

#[tokio::test]
async fn another_organizations_collection_is_not_found() {
    let (f, _owner) = setup().await;
    let stranger = crate::ids::OrganizationId::new();

    let err = create(&f.platform, stranger, direct_body())
        .await
        .expect_err("refused");

    assert!(matches!(err, DomainError::NotFound(_)), "{err:?}");
    assert_nothing_written(&f);
}

#[tokio::test]
async fn a_method_the_source_does_not_offer_is_a_bad_request() {
    let (f, org) = setup().await;

    let token_on_stub = with(
        direct_body(),
        json!({"authentication": {"access_token": "t"}}),
    );
    assert_bad_request(
        create(&f.platform, org, token_on_stub).await,
        "does not support oauth_token",
    );
    let browser_on_stub = with(direct_body(), json!({"authentication": {}}));
    assert_bad_request(
        create(&f.platform, org, browser_on_stub).await,
        "does not support oauth_browser",
    );
    let direct_on_portal = portal(json!({"credentials": {"api_key": "k"}}));
    assert_bad_request(
        create(&f.platform, org, direct_on_portal).await,
        "does not support direct",
    );
    assert_nothing_written(&f);
}

#[tokio::test]
async fn a_browser_flow_without_an_oauth_app_and_an_unknown_provider_leave_nothing() {
    let (f, org) = setup().await;
    let mut no_authentication = portal(Value::Null);
    no_authentication
        .as_object_mut()
        .unwrap()
        .remove("authentication");

    for body in [
        portal(json!({})),
        portal(Value::Null),
        no_authentication,
        portal(json!({"redirect_uri": "https://app.example.com/back"})),
    ] {
        assert_bad_request(
            create(&f.platform, org, body).await,
            "the platform has no OAuth app for Portal",
        );
    }
    let unknown = create(
        &f.platform,
        org,
        portal(json!({"provider_readable_id": "my-composio"})),
    )
    .await;
    assert!(
        matches!(&unknown, Err(DomainError::NotFound(m)) if m.contains("my-composio")),
        "{unknown:?}"
    );
    assert_nothing_written(&f);
}

#[tokio::test]
async fn sync_immediately_true_on_a_browser_flow_is_a_bad_request() {
    let (f, org) = setup().await;
    let body = with(portal(json!({})), json!({"sync_immediately": true}));

    assert_bad_request(create(&f.platform, org, body).await, "sync_immediately");
    assert_nothing_written(&f);
}

#[tokio::test]
async fn credentials_the_upstream_rejects_are_a_bad_request() {
    let (f, org) = setup().await;
    f.sources
        .answer_checks_with(Err(CheckError::Rejected("401 bad credentials".into())));

    let result = create(&f.platform, org, direct_body()).await;

    assert_bad_request(result, "rejected the credentials: 401 bad credentials");
    assert_eq!(f.sources.check_calls().len(), 1);
    assert_nothing_stored(&f);
}

#[tokio::test]
async fn an_upstream_rate_limit_is_passed_on_with_its_retry_after() {
    let (f, org) = setup().await;
    f.sources.answer_checks_with(Err(CheckError::RateLimited {
        retry_after: Some(Duration::from_secs(30)),
    }));

    let err = create(&f.platform, org, direct_body())
        .await
        .expect_err("refused");

    match err {
        DomainError::UpstreamRateLimited {
            source_name,
            retry_after,
        } => {
            assert_eq!(source_name, "Stub");
            assert_eq!(retry_after, Some(Duration::from_secs(30)));
        }
        other => panic!("expected a 429, got {other:?}"),
    }
    assert_nothing_stored(&f);
}

#[tokio::test]
async fn an_unavailable_upstream_is_an_upstream_failure() {
    let (f, org) = setup().await;
    f.sources
        .answer_checks_with(Err(CheckError::Unavailable("503 from upstream".into())));

    let err = create(&f.platform, org, direct_body())
        .await
        .expect_err("refused");

    assert!(
        matches!(&err, DomainError::UpstreamFailed(m) if m.contains("503 from upstream")),
        "{err:?}"
    );
    assert_nothing_stored(&f);
}

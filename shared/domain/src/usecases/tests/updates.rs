//! PATCH: field changes, re-validation, pause and resume, credential replacement.

use super::{assert_invalid, create, direct_body, setup, with, STUB_KEY};
use crate::connection::ConnectionStatus;
use crate::error::DomainError;
use crate::error_category::ErrorCategory;
use crate::ids::OrganizationId;
use crate::ports::CheckError;
use crate::testing::{now, Fakes};
use crate::usecases::update_connection::{update_connection, UpdateConnectionInput};
use chrono::TimeZone;
use serde_json::{json, Value};

async fn patch(
    f: &Fakes,
    org: OrganizationId,
    id: &str,
    body: Value,
) -> Result<crate::connection::SourceConnection, DomainError> {
    let input: UpdateConnectionInput = serde_json::from_value(body).expect("the update schema");
    update_connection(&f.platform, org, id, input).await
}

async fn connection(f: &Fakes, org: OrganizationId) -> String {
    let body = with(direct_body(), json!({"schedule": {"cron": "0 */2 * * *"}}));
    create(&f.platform, org, body)
        .await
        .unwrap()
        .connection
        .id
        .to_string()
}

#[tokio::test]
async fn fields_change_and_the_rest_stays() {
    let (f, org) = setup().await;
    let id = connection(&f, org).await;
    let before = f.store.connection(id.parse().unwrap()).unwrap();
    let after = patch(
        &f,
        org,
        &id,
        json!({"name": "Renamed source", "description": "new words", "config": {"entity_count": 5}}),
    )
    .await
    .unwrap();
    assert_eq!(after.name, "Renamed source");
    assert_eq!(after.description.as_deref(), Some("new words"));
    assert_eq!(after.config.as_ref().unwrap()["entity_count"], 5);
    assert_eq!(after.schedule, before.schedule, "the schedule is untouched");
    assert_eq!(after.status, before.status);
    assert_eq!(
        f.store.connection(after.id).unwrap(),
        after,
        "stored as answered"
    );
    assert_eq!(
        f.sources.check_calls().len(),
        2,
        "the stored credentials were checked against the new config"
    );
    patch(&f, org, &id, json!({"name": "Renamed again"}))
        .await
        .unwrap();
    assert_eq!(
        f.sources.check_calls().len(),
        2,
        "no check without config or credentials"
    );

    f.sources
        .answer_checks_with(Err(CheckError::Rejected("cannot read that".into())));
    let refused = patch(&f, org, &id, json!({"config": {"entity_count": 9}})).await;
    assert!(
        matches!(refused, Err(DomainError::BadRequest(_))),
        "{refused:?}"
    );
    assert_eq!(
        f.store.connection(after.id).unwrap().config.unwrap()["entity_count"],
        5
    );
}

#[tokio::test]
async fn refused_patches_change_nothing() {
    let (f, org) = setup().await;
    let id = connection(&f, org).await;
    let before = f.store.connection(id.parse().unwrap()).unwrap();
    let cases = [
        (json!({}), "body"),
        (json!({"name": "ab"}), "name"),
        (
            json!({"config": {"entity_count": 5000}}),
            "config.entity_count",
        ),
        (json!({"config": "all"}), "config"),
        (json!({"schedule": {"cron": "61 * * * *"}}), "schedule.cron"),
        // The stub syncs incrementally: every 5 minutes is its floor.
        (
            json!({"schedule": {"cron": "*/4 * * * *"}}),
            "schedule.cron",
        ),
        (json!({"schedule": "hourly"}), "schedule"),
        (json!({"status": "paused"}), "status"),
        (
            json!({"authentication": {"credentials": {"token": "x"}}}),
            "authentication.credentials.api_key",
        ),
        (
            json!({"authentication": {"access_token": "t"}}),
            "authentication",
        ),
        // Secrets Manager holds at most 64 KiB: a credential that could never be stored.
        (
            json!({"authentication": {"credentials": {"api_key": "k".repeat(70_000)}}}),
            "authentication.credentials.api_key",
        ),
    ];
    for (body, field) in cases {
        assert_invalid(patch(&f, org, &id, body).await, field);
    }
    let unknown: Result<UpdateConnectionInput, _> = serde_json::from_value(json!({"colour": 1}));
    assert!(unknown.is_err(), "unknown fields are refused");

    f.sources
        .answer_checks_with(Err(CheckError::Rejected("bad key".into())));
    let rejected = patch(
        &f,
        org,
        &id,
        json!({"name": "New name", "authentication": {"credentials": {"api_key": "wrong"}}}),
    )
    .await;
    assert!(
        matches!(rejected, Err(DomainError::BadRequest(_))),
        "{rejected:?}"
    );
    assert_eq!(f.store.connection(before.id).unwrap(), before);
    assert!(
        f.vault.secrets()[0].value.contains(STUB_KEY),
        "the old key stays"
    );

    let foreign = patch(
        &f,
        OrganizationId::new(),
        &id,
        json!({"name": "Taken over"}),
    )
    .await;
    assert!(matches!(foreign, Err(DomainError::NotFound(_))));
}

#[tokio::test]
async fn a_schedule_too_frequent_for_a_full_sync_source_says_why() {
    let (f, org) = setup().await;
    let body = json!({
        "short_name": "tokens",
        "readable_collection_id": "docs",
        "authentication": {"credentials": {"personal_access_token": "tok"}},
    });
    let id = create(&f.platform, org, body).await.unwrap().connection.id;
    let errors = assert_invalid(
        patch(
            &f,
            org,
            &id.to_string(),
            json!({"schedule": {"cron": "*/30 * * * *"}}),
        )
        .await,
        "schedule.cron",
    );
    assert!(
        errors[0].message.contains("30 minutes apart") && errors[0].message.contains("1 hour"),
        "{errors:?}"
    );
    let hourly = patch(
        &f,
        org,
        &id.to_string(),
        json!({"schedule": {"cron": "0 * * * *"}}),
    )
    .await
    .unwrap();
    assert_eq!(
        hourly.schedule.unwrap().next_run,
        Some(
            chrono::Utc
                .with_ymd_and_hms(2026, 11, 25, 15, 0, 0)
                .unwrap()
        )
    );
    let none = patch(
        &f,
        org,
        &id.to_string(),
        json!({"schedule": {"cron": null}}),
    )
    .await
    .unwrap();
    let schedule = none.schedule.unwrap();
    assert_eq!((schedule.cron, schedule.next_run), (None, None));
}

#[tokio::test]
async fn pausing_takes_the_connection_out_of_the_schedule_and_resuming_plans_from_now() {
    let (f, org) = setup().await;
    let id = connection(&f, org).await;
    let paused = patch(&f, org, &id, json!({"status": "inactive"}))
        .await
        .unwrap();
    assert_eq!(paused.status, ConnectionStatus::Inactive);
    assert_eq!(paused.schedule.as_ref().unwrap().next_run, None);
    assert_eq!(paused.scheduled_run(), None);

    let resumed = patch(&f, org, &id, json!({"status": "active"}))
        .await
        .unwrap();
    assert_eq!(resumed.status, ConnectionStatus::Active);
    let next = resumed.schedule.as_ref().unwrap().next_run.unwrap();
    assert!(next > now(), "planned from now: {next}");
    assert_eq!(resumed.scheduled_run(), Some(next));
}

#[tokio::test]
async fn new_valid_credentials_clear_needs_reauth() {
    let (f, org) = setup().await;
    let id = connection(&f, org).await;
    let cid = id.parse().unwrap();
    f.store.edit_connection(cid, |c| {
        c.status = ConnectionStatus::NeedsReauth;
        c.error_category = Some(ErrorCategory::ApiKeyInvalid);
        c.error_message = Some("Stub: the key was revoked".into());
        c.auth.authenticated = false;
    });
    // Resuming does not paper over rejected credentials.
    let resumed = patch(&f, org, &id, json!({"status": "active"}))
        .await
        .unwrap();
    assert_eq!(resumed.status, ConnectionStatus::NeedsReauth);

    let fixed = patch(
        &f,
        org,
        &id,
        json!({"authentication": {"credentials": {"api_key": "stub-key-new"}}}),
    )
    .await
    .unwrap();
    assert_eq!(fixed.status, ConnectionStatus::Active);
    assert_eq!(
        (fixed.error_category, fixed.error_message.as_deref()),
        (None, None)
    );
    assert!(fixed.auth.authenticated);
    assert!(fixed.scheduled_run().is_some(), "back in the schedule");
    let secret = &f.vault.secrets()[0];
    assert!(secret.value.contains("stub-key-new") && !secret.value.contains(STUB_KEY));
    let checked = f.sources.check_calls();
    assert_eq!(
        checked.len(),
        2,
        "the new credentials were checked upstream"
    );
    let text = serde_json::to_string(&fixed).unwrap();
    assert!(!text.contains("stub-key-new"), "no secret in the answer");
}

/// The new credentials are staged, and count only from the connection's write: a PATCH that
/// fails there leaves the old ones current, for the API and for the next run.
#[tokio::test]
async fn a_patch_whose_connection_write_fails_keeps_the_old_credentials() {
    let (f, org) = setup().await;
    let id = connection(&f, org).await;
    f.store.fail_replace_connection(true);
    let failed = patch(
        &f,
        org,
        &id,
        json!({"name": "Renamed", "authentication": {"credentials": {"api_key": "stub-key-new"}}}),
    )
    .await;
    f.store.fail_replace_connection(false);
    assert!(failed.is_err(), "{failed:?}");
    let secret = &f.vault.secrets()[0];
    assert!(
        secret.value.contains(STUB_KEY) && !secret.value.contains("stub-key-new"),
        "the refused PATCH changed the credentials"
    );
    let stored = f.store.connection(id.parse().unwrap()).unwrap();
    assert_ne!(stored.name, "Renamed");

    // The retry applies both.
    patch(
        &f,
        org,
        &id,
        json!({"name": "Renamed", "authentication": {"credentials": {"api_key": "stub-key-new"}}}),
    )
    .await
    .unwrap();
    assert!(f.vault.secrets()[0].value.contains("stub-key-new"));
}

#[tokio::test]
async fn concurrent_patches_each_keep_their_change() {
    let (f, org) = setup().await;
    let id = connection(&f, org).await;
    let (a, b) = tokio::join!(
        patch(&f, org, &id, json!({"name": "Name from A"})),
        patch(&f, org, &id, json!({"description": "from B"})),
    );
    a.unwrap();
    b.unwrap();
    let stored = f.store.connection(id.parse().unwrap()).unwrap();
    assert_eq!(stored.name, "Name from A");
    assert_eq!(stored.description.as_deref(), Some("from B"));
}

//! Creating a connection: what is answered and what is written.

use super::{create, direct_body, setup, with, STUB_KEY};
use crate::catalog::AuthMethod;
use crate::connection::{ConnectionStatus, EntitySummary, JobDetails};
use crate::job::{JobStatus, SyncMessage, Trigger};
use crate::schedule::ScheduleDetails;
use crate::testing::{now, CheckCall};
use chrono::{Duration, TimeZone, Utc};
use serde_json::{json, Map, Value};

#[tokio::test]
async fn direct_create_answers_the_connection_with_its_defaults() {
    let (f, org) = setup().await;

    let created = create(&f.platform, org, direct_body())
        .await
        .expect("created");

    assert!(!created.replayed);
    let c = created.connection;
    assert_eq!(c.organization_id, org);
    assert_eq!(c.name, "Stub Connection");
    assert_eq!(c.short_name, "stub");
    assert_eq!(c.readable_collection_id, "docs");
    assert_eq!(c.status, ConnectionStatus::Active);
    assert_eq!((c.created_at, c.modified_at), (now(), now()));
    assert_eq!(c.auth.method, AuthMethod::Direct);
    assert!(c.auth.authenticated);
    assert_eq!(c.auth.authenticated_at, Some(now()));
    assert_eq!(c.auth.expires_at, None);
    assert_eq!(c.auth.auth_url, None);
    assert_eq!(c.auth.auth_url_expires, None);
    assert_eq!(c.auth.redirect_url, None);
    assert_eq!(c.auth.provider_readable_id, None);
    assert_eq!(c.description, None);
    assert_eq!(c.config, Some(Map::new()));
    let schedule = c.schedule.clone().expect("a schedule");
    assert_eq!(schedule.cron.as_deref(), Some("7 14 * * *"));
    assert_eq!(
        schedule.next_run,
        Some(Utc.with_ymd_and_hms(2026, 11, 26, 14, 7, 0).unwrap())
    );
    assert!(!schedule.continuous);
    let sync = c.sync.clone().expect("sync details");
    assert_eq!(
        (sync.total_runs, sync.successful_runs, sync.failed_runs),
        (0, 0, 0)
    );
    let last_job = sync.last_job.expect("the first job");
    assert_eq!(last_job.status, JobStatus::Pending);
    assert_eq!(last_job.started_at, None);
    assert_eq!(c.entities, Some(EntitySummary::default()));
    assert_eq!(c.entities.as_ref().unwrap().total_entities, 0);
    assert_eq!(c.sync_id, None);
    assert_eq!(c.error_category, None);
    assert_eq!(c.error_message, None);
    assert_eq!(c.provider_settings_url, None);
    assert_eq!(c.provider_short_name, None);
    assert!(!c.federated_search);

    // What was written: the connection as answered, one pending job, its message, one secret.
    assert_eq!(f.store.connections(), vec![c.clone()]);
    assert_eq!(f.store.connection_count(org, "docs"), Some(1));
    let jobs = f.store.jobs();
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(job.id, last_job.id);
    assert_eq!(JobDetails::from(job), last_job);
    assert_eq!(
        (
            job.status,
            job.trigger,
            job.source_connection_id,
            job.organization_id
        ),
        (JobStatus::Pending, Trigger::Initial, c.id, org)
    );
    assert_eq!(
        f.queue.messages(),
        vec![SyncMessage {
            job_id: job.id,
            connection_id: c.id,
            organization_id: org,
            trigger: Trigger::Initial,
            force_full_sync: false,
            not_before: None,
        }]
    );
    let secrets = f.vault.secrets();
    assert_eq!(secrets.len(), 1);
    assert_eq!(
        (secrets[0].organization_id, secrets[0].connection_id),
        (org, c.id)
    );
    assert!(
        secrets[0].value.contains(STUB_KEY),
        "the secret holds the credential"
    );
    assert_eq!(
        f.sources.check_calls(),
        vec![CheckCall {
            short_name: "stub".into(),
            method: AuthMethod::Direct
        }]
    );
}

#[tokio::test]
async fn the_answer_serializes_to_the_documented_shape() {
    let (f, org) = setup().await;
    let c = create(&f.platform, org, direct_body())
        .await
        .unwrap()
        .connection;

    let wire = serde_json::to_value(&c).unwrap();
    for field in [
        "id",
        "organization_id",
        "name",
        "short_name",
        "readable_collection_id",
        "status",
        "created_at",
        "modified_at",
        "auth",
        "description",
        "config",
        "schedule",
        "sync",
        "sync_id",
        "entities",
        "error_category",
        "error_message",
        "provider_settings_url",
        "provider_short_name",
        "federated_search",
    ] {
        assert!(wire.get(field).is_some(), "missing {field} in {wire}");
    }
    for field in [
        "method",
        "authenticated",
        "authenticated_at",
        "expires_at",
        "auth_url",
        "auth_url_expires",
        "redirect_url",
        "provider_readable_id",
    ] {
        assert!(wire["auth"].get(field).is_some(), "missing auth.{field}");
    }
    for field in [
        "id",
        "status",
        "started_at",
        "completed_at",
        "duration_seconds",
        "entities_inserted",
        "entities_updated",
        "entities_deleted",
        "entities_kept",
        "entities_failed",
        "error",
        "error_category",
    ] {
        assert!(
            wire["sync"]["last_job"].get(field).is_some(),
            "missing sync.last_job.{field}"
        );
    }
    assert_eq!(wire["status"], "active");
    assert_eq!(wire["auth"]["method"], "direct");
    assert_eq!(wire["sync"]["last_job"]["status"], "pending");
    assert_eq!(wire["schedule"]["cron"], "7 14 * * *");
    assert_eq!(wire["schedule"]["next_run"], "2026-11-26T14:07:00Z");
    assert_eq!(wire["created_at"], "2026-11-25T14:07:31Z");
    assert_eq!(
        wire["entities"],
        json!({"total_entities": 0, "by_type": {}})
    );
    assert_eq!(wire["id"], c.id.to_string());
}

#[tokio::test]
async fn the_direct_answer_carries_no_secret() {
    let (f, org) = setup().await;
    let c = create(&f.platform, org, direct_body())
        .await
        .unwrap()
        .connection;

    let wire = serde_json::to_string(&c).unwrap();
    assert!(!wire.contains(STUB_KEY), "the API key leaked into {wire}");
    let stored = serde_json::to_string(&f.store.connections()).unwrap();
    assert!(
        !stored.contains(STUB_KEY),
        "the API key is stored in the state table"
    );
}

#[tokio::test]
async fn explicit_fields_are_kept() {
    let (f, org) = setup().await;
    let body = with(
        direct_body(),
        json!({
            "name": "Quarterly reports",
            "description": "Everything finance shares",
            "config": {"entity_count": 25},
        }),
    );

    let c = create(&f.platform, org, body).await.unwrap().connection;

    assert_eq!(c.name, "Quarterly reports");
    assert_eq!(c.description.as_deref(), Some("Everything finance shares"));
    let config = c.config.expect("config");
    assert_eq!(config.get("entity_count"), Some(&json!(25)));
}

#[tokio::test]
async fn sync_immediately_false_creates_no_job_and_sends_nothing() {
    let (f, org) = setup().await;
    let body = with(direct_body(), json!({"sync_immediately": false}));

    let c = create(&f.platform, org, body).await.unwrap().connection;

    assert_eq!(c.sync.expect("sync details").last_job, None);
    assert!(f.store.jobs().is_empty());
    assert!(f.queue.messages().is_empty());
    assert_eq!(f.store.connections().len(), 1);
    assert_eq!(f.vault.secrets().len(), 1);
}

#[tokio::test]
async fn explicit_sync_immediately_true_is_the_default_behaviour() {
    let (f, org) = setup().await;
    let body = with(direct_body(), json!({"sync_immediately": true}));

    let c = create(&f.platform, org, body).await.unwrap().connection;

    assert!(c.sync.unwrap().last_job.is_some());
    assert_eq!(f.queue.messages().len(), 1);
}

#[tokio::test]
async fn a_null_cron_means_no_schedule() {
    let (f, org) = setup().await;
    let body = with(direct_body(), json!({"schedule": {"cron": null}}));

    let c = create(&f.platform, org, body).await.unwrap().connection;

    assert_eq!(c.schedule, Some(ScheduleDetails::none()));
    let wire = serde_json::to_value(&c).unwrap();
    assert_eq!(wire["schedule"]["cron"], Value::Null);
    assert_eq!(wire["schedule"]["next_run"], Value::Null);
}

#[tokio::test]
async fn a_null_schedule_is_the_daily_default() {
    let (f, org) = setup().await;
    let body = with(direct_body(), json!({"schedule": null}));

    let c = create(&f.platform, org, body).await.unwrap().connection;

    assert_eq!(c.schedule.unwrap().cron.as_deref(), Some("7 14 * * *"));
}

#[tokio::test]
async fn a_custom_cron_gets_its_next_run() {
    let (f, org) = setup().await;
    for (cron, next) in [
        (
            "0 */6 * * *",
            Utc.with_ymd_and_hms(2026, 11, 25, 18, 0, 0).unwrap(),
        ),
        // Wednesday -> the next Monday
        (
            "30 2 * * 1",
            Utc.with_ymd_and_hms(2026, 11, 30, 2, 30, 0).unwrap(),
        ),
    ] {
        let body = with(direct_body(), json!({"schedule": {"cron": cron}}));

        let schedule = create(&f.platform, org, body)
            .await
            .unwrap()
            .connection
            .schedule
            .unwrap();

        assert_eq!(schedule.cron.as_deref(), Some(cron));
        assert_eq!(schedule.next_run, Some(next), "{cron}");
    }
}

#[tokio::test]
async fn oauth_token_create_keeps_the_token_in_the_vault_only() {
    let (f, org) = setup().await;
    let access = "gho_access-7c1e3d";
    let refresh = "ghr_refresh-99b0aa";
    let body = json!({
        "short_name": "tokens",
        "readable_collection_id": "docs",
        "authentication": {"access_token": access, "refresh_token": refresh, "expires_in": 3600},
    });

    let c = create(&f.platform, org, body)
        .await
        .expect("created")
        .connection;

    assert_eq!(c.name, "Tokens Connection");
    assert_eq!(c.status, ConnectionStatus::Active);
    assert_eq!(c.auth.method, AuthMethod::OauthToken);
    assert!(c.auth.authenticated);
    assert_eq!(c.auth.expires_at, Some(now() + Duration::hours(1)));
    assert!(c.federated_search, "taken from the source's catalog entry");
    assert_eq!(
        f.queue.messages().len(),
        1,
        "a token create syncs right away"
    );

    let secrets = f.vault.secrets();
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets[0].connection_id, c.id);
    let document: Value = serde_json::from_str(&secrets[0].value).expect("a JSON document");
    assert_eq!(document["access_token"], access);
    assert_eq!(document["refresh_token"], refresh);

    let wire = serde_json::to_string(&c).unwrap();
    assert!(
        !wire.contains(access),
        "the access token leaked into {wire}"
    );
    assert!(
        !wire.contains(refresh),
        "the refresh token leaked into {wire}"
    );
    assert_eq!(f.sources.check_calls()[0].method, AuthMethod::OauthToken);
}

#[tokio::test]
async fn oauth_token_with_an_absolute_expiry() {
    let (f, org) = setup().await;
    let body = json!({
        "short_name": "tokens",
        "readable_collection_id": "docs",
        "authentication": {"access_token": "tok-1", "expires_at": "2026-12-01T00:00:00Z"},
    });

    let c = create(&f.platform, org, body).await.unwrap().connection;

    assert_eq!(
        c.auth.expires_at,
        Some(Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap())
    );
}

#[tokio::test]
async fn each_create_is_a_new_connection_with_its_own_secret() {
    let (f, org) = setup().await;

    let a = create(&f.platform, org, direct_body())
        .await
        .unwrap()
        .connection;
    let b = create(&f.platform, org, direct_body())
        .await
        .unwrap()
        .connection;

    assert_ne!(a.id, b.id);
    assert_eq!(f.store.connections().len(), 2);
    assert_eq!(f.vault.secrets().len(), 2);
    assert_eq!(f.queue.messages().len(), 2);
    assert_eq!(f.store.connection_count(org, "docs"), Some(2));
}

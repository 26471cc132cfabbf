//! Webhook subscriptions and the message log, per organization.

use super::assert_invalid;
use crate::error::DomainError;
use crate::ids::{MessageId, OrganizationId};
use crate::page::PageRequest;
use crate::testing::{now, platform};
use crate::usecases::webhooks::messages::{get_message, list_messages};
use crate::usecases::webhooks::subscriptions::{
    create_subscription, delete_subscription, get_subscription, list_subscriptions,
    update_subscription,
};
use crate::webhooks::{Health, Message, NewSubscription, SubscriptionChange};
use serde_json::json;

fn new(url: &str, types: &[&str]) -> NewSubscription {
    NewSubscription {
        url: Some(url.to_owned()),
        event_types: Some(types.iter().map(|t| t.to_string()).collect()),
        ..NewSubscription::default()
    }
}

#[tokio::test]
async fn a_subscription_gets_a_generated_secret_shown_only_when_asked_for() {
    let f = platform();
    let org = OrganizationId::new();
    let created = create_subscription(
        &f.platform,
        org,
        new(
            "https://hooks.example.com/in",
            &["sync.completed", "sync.failed"],
        ),
    )
    .await
    .unwrap();
    assert_eq!(created.health_status, Health::Unknown);
    assert_eq!(created.filter_types, ["sync.completed", "sync.failed"]);
    assert!(!created.disabled);

    let id = created.id.to_string();
    let plain = get_subscription(&f.platform, org, &id, false)
        .await
        .unwrap();
    assert_eq!(plain.secret, None);
    let detail = get_subscription(&f.platform, org, &id, true).await.unwrap();
    let secret = detail.secret.unwrap();
    let key = secret.strip_prefix("whsec_").expect("whsec_ prefix");
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(key)
        .unwrap();
    assert!(bytes.len() >= 24, "{} random bytes", bytes.len());

    // The customer's own secret is kept as given.
    // base64 of "secret-key-of-at-least-24-bytes"
    let own = "c2VjcmV0LWtleS1vZi1hdC1sZWFzdC0yNC1ieXRlcw==";
    let mut input = new("https://hooks.example.com/2", &["collection.created"]);
    input.secret = Some(own.into());
    let second = create_subscription(&f.platform, org, input).await.unwrap();
    let detail = get_subscription(&f.platform, org, &second.id.to_string(), true)
        .await
        .unwrap();
    assert_eq!(detail.secret.as_deref(), Some(own));
}

#[tokio::test]
async fn bad_input_names_the_field_and_stores_nothing() {
    let f = platform();
    let org = OrganizationId::new();
    let cases: Vec<(NewSubscription, &str)> = vec![
        (
            new("http://hooks.example.com/in", &["sync.completed"]),
            "url",
        ),
        (new("https://db.internal/hook", &["sync.completed"]), "url"),
        (
            new("https://user:pw@hooks.example.com/", &["sync.completed"]),
            "url",
        ),
        (new("not a url", &["sync.completed"]), "url"),
        (new("https://hooks.example.com/in", &[]), "event_types"),
        (
            new("https://hooks.example.com/in", &["sync.exploded"]),
            "event_types",
        ),
        (
            NewSubscription {
                secret: Some("too-short".into()),
                ..new("https://hooks.example.com/in", &["sync.completed"])
            },
            "secret",
        ),
        (
            NewSubscription {
                secret: Some("not base64, though long enough!".into()),
                ..new("https://hooks.example.com/in", &["sync.completed"])
            },
            "secret",
        ),
        (
            NewSubscription {
                url: None,
                ..new("https://hooks.example.com/in", &["sync.completed"])
            },
            "url",
        ),
    ];
    for (input, field) in cases {
        let e = create_subscription(&f.platform, org, input)
            .await
            .unwrap_err();
        assert_invalid::<()>(Err(e), field);
    }
    assert!(list_subscriptions(&f.platform, org)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(f.webhooks.secrets_count(), 0);
}

#[tokio::test]
async fn names_airweave_offers_are_accepted_even_those_that_never_fire() {
    let f = platform();
    let created = create_subscription(
        &f.platform,
        OrganizationId::new(),
        new(
            "https://hooks.example.com/in",
            &[
                "search.completed",
                "source_connection.needs_reauth",
                "search.completed",
            ],
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        created.filter_types,
        ["search.completed", "source_connection.needs_reauth"]
    );
}

#[tokio::test]
async fn another_organizations_subscription_is_not_found() {
    let f = platform();
    let (org, other) = (OrganizationId::new(), OrganizationId::new());
    let created = create_subscription(
        &f.platform,
        org,
        new("https://a.example.com/", &["sync.failed"]),
    )
    .await
    .unwrap();
    let id = created.id.to_string();
    assert!(matches!(
        get_subscription(&f.platform, other, &id, true).await,
        Err(DomainError::NotFound(_))
    ));
    assert!(matches!(
        update_subscription(
            &f.platform,
            other,
            &id,
            SubscriptionChange {
                disabled: Some(true),
                ..Default::default()
            }
        )
        .await,
        Err(DomainError::NotFound(_))
    ));
    assert!(matches!(
        delete_subscription(&f.platform, other, &id).await,
        Err(DomainError::NotFound(_))
    ));
    assert!(list_subscriptions(&f.platform, other)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(list_subscriptions(&f.platform, org).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_subscription_is_changed_then_deleted_with_its_secret() {
    let f = platform();
    let org = OrganizationId::new();
    let created = create_subscription(
        &f.platform,
        org,
        new("https://a.example.com/", &["sync.failed"]),
    )
    .await
    .unwrap();
    let id = created.id.to_string();

    let changed = update_subscription(
        &f.platform,
        org,
        &id,
        SubscriptionChange {
            url: Some("https://b.example.com/hook".into()),
            event_types: Some(vec!["sync.completed".into()]),
            disabled: Some(true),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(changed.url.as_str(), "https://b.example.com/hook");
    assert_eq!(changed.filter_types, ["sync.completed"]);
    assert!(changed.disabled);

    // recover_since only with re-enabling; a bad URL is refused and nothing changes.
    let e = update_subscription(
        &f.platform,
        org,
        &id,
        SubscriptionChange {
            recover_since: Some(now()),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_invalid::<()>(Err(e), "recover_since");
    let e = update_subscription(
        &f.platform,
        org,
        &id,
        SubscriptionChange {
            url: Some("https://x.internal/".into()),
            disabled: Some(false),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_invalid::<()>(Err(e), "url");
    let still = get_subscription(&f.platform, org, &id, false)
        .await
        .unwrap();
    assert!(still.subscription.disabled);
    assert_eq!(
        still.subscription.url.as_str(),
        "https://b.example.com/hook"
    );

    let deleted = delete_subscription(&f.platform, org, &id).await.unwrap();
    assert_eq!(deleted.id, created.id);
    assert_eq!(f.webhooks.secrets_count(), 0);
    assert!(matches!(
        get_subscription(&f.platform, org, &id, false).await,
        Err(DomainError::NotFound(_))
    ));
}

fn message(org: OrganizationId, event_type: &str) -> Message {
    Message {
        id: MessageId::new(),
        organization_id: org,
        event_type: event_type.into(),
        payload: json!({"event_type": event_type})
            .as_object()
            .cloned()
            .unwrap(),
        timestamp: now(),
    }
}

#[tokio::test]
async fn messages_are_listed_newest_first_by_type_and_only_the_organizations_own() {
    let f = platform();
    let (org, other) = (OrganizationId::new(), OrganizationId::new());
    let first = message(org, "sync.completed");
    let second = message(org, "sync.failed");
    let third = message(org, "sync.completed");
    for m in [&first, &second, &third, &message(other, "sync.completed")] {
        f.webhooks.put_message(m.clone());
    }
    let page = PageRequest::default();
    let all = list_messages(&f.platform, org, &[], &page).await.unwrap();
    let ids: Vec<_> = all.items.iter().map(|m| m.id).collect();
    assert_eq!(ids, [third.id, second.id, first.id]);
    assert_eq!(all.items[0].channels, ["sync.completed"]);

    let completed = list_messages(&f.platform, org, &["sync.completed".into()], &page)
        .await
        .unwrap();
    assert_eq!(completed.items.len(), 2);
    let e = list_messages(&f.platform, org, &["nope".into()], &page)
        .await
        .unwrap_err();
    assert_invalid::<()>(Err(e), "event_types");

    let one = get_message(&f.platform, org, &first.id.to_string(), true)
        .await
        .unwrap();
    assert_eq!(one.delivery_attempts, Some(vec![]));
    assert!(matches!(
        get_message(&f.platform, other, &first.id.to_string(), false).await,
        Err(DomainError::NotFound(_))
    ));
}

/// The event types recorded so far, in order.
fn recorded(f: &crate::testing::Fakes) -> Vec<&'static str> {
    f.store
        .recorded_events()
        .iter()
        .map(|e| e.event_type.as_str())
        .collect()
}

#[tokio::test]
async fn every_change_of_a_subscribed_organization_records_its_event_and_others_record_none() {
    use super::{add_collection, create, direct_body};
    use crate::testing::ScriptedStream;
    use crate::usecases::collections::delete_collection;
    use crate::usecases::delete_connection::delete_connection;
    use crate::usecases::runs::{cancel_job, run_connection};
    use crate::usecases::sync::{run_sync, SyncSettings};

    let f = platform();
    let (subscribed, quiet) = (OrganizationId::new(), OrganizationId::new());
    create_subscription(
        &f.platform,
        subscribed,
        new("https://a.example.com/", &["sync.completed"]),
    )
    .await
    .unwrap();

    for org in [quiet, subscribed] {
        add_collection(&f.platform, org, "docs").await;
        add_collection(&f.platform, org, "spare").await;
        delete_collection(&f.platform, org, "spare").await.unwrap();
        let created = create(&f.platform, org, direct_body()).await.unwrap();
        f.sources.stream(ScriptedStream::default());
        for message in f.queue.drain() {
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
            run_sync(&f.platform, &SyncSettings::default(), &message, deadline)
                .await
                .unwrap();
        }
        let id = created.connection.id.to_string();
        let job = run_connection(&f.platform, org, &id, false).await.unwrap();
        cancel_job(&f.platform, org, &id, &job.id.to_string())
            .await
            .unwrap();
        delete_connection(&f.platform, org, &id).await.unwrap();
    }

    let events = f.store.recorded_events();
    assert!(
        events.iter().all(|e| e.organization_id == subscribed),
        "the organization without subscriptions recorded nothing"
    );
    assert_eq!(
        recorded(&f),
        [
            "collection.created",
            "collection.created",
            "collection.deleted",
            "source_connection.created",
            "sync.pending",
            "sync.running",
            "sync.completed",
            "sync.pending",
            "sync.cancelled",
            "source_connection.deleted",
        ]
    );
    let completed = &events[6].payload;
    assert_eq!(completed["collection_id"], "docs");
    assert_eq!(completed["collection_name"], "Collection docs");
    assert_eq!(completed["source_type"], "stub");
    assert!(completed["entities_inserted"].is_u64() && completed["sync_job_id"].is_string());
    assert_eq!(completed["entities_skipped"], completed["entities_kept"]);
    assert!(completed["timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(completed["organization_id"], json!(subscribed));
}

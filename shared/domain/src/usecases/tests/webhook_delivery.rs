//! Dispatching recorded messages, sending them on the retry schedule, the failing streak, and
//! recovering what failed.

use crate::clock::FixedClock;
use crate::ids::{MessageId, OrganizationId, SubscriptionId};
use crate::testing::{now, platform, Fakes};
use crate::usecases::webhooks::dispatch::{dispatch, sweep_outbox, Dispatched};
use crate::usecases::webhooks::recover::{recover, RecoverRequest};
use crate::usecases::webhooks::send::{send, SenderSettings, Sent};
use crate::usecases::webhooks::subscriptions::{create_subscription, update_subscription};
use crate::webhooks::{
    AttemptStatus, DeliveryTask, Message, NewSubscription, RetrySchedule, SubscriptionChange,
};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

async fn subscribe(f: &Fakes, org: OrganizationId, types: &[&str]) -> SubscriptionId {
    create_subscription(
        &f.platform,
        org,
        NewSubscription {
            url: Some(format!("https://hooks.example.com/{}", types.join("+"))),
            event_types: Some(types.iter().map(|t| t.to_string()).collect()),
            ..NewSubscription::default()
        },
    )
    .await
    .unwrap()
    .id
}

fn message(org: OrganizationId, event_type: &str, at: DateTime<Utc>) -> Message {
    Message {
        id: MessageId::lowest_at(at),
        organization_id: org,
        event_type: event_type.into(),
        payload: json!({"event_type": event_type, "organization_id": org.to_string()})
            .as_object()
            .unwrap()
            .clone(),
        timestamp: at,
    }
}

fn quick() -> SenderSettings {
    SenderSettings {
        schedule: RetrySchedule::parse("0,1,1,1").unwrap(),
        ..SenderSettings::default()
    }
}

fn at(f: &mut Fakes, instant: DateTime<Utc>) {
    f.platform.clock = Arc::new(FixedClock(instant));
}

#[tokio::test]
async fn a_message_is_dispatched_to_each_enabled_subscription_that_wants_it() {
    let f = platform();
    let org = OrganizationId::new();
    let wants = subscribe(&f, org, &["sync.completed"]).await;
    let _other = subscribe(&f, org, &["collection.created"]).await;
    let off = subscribe(&f, org, &["sync.completed", "sync.failed"]).await;
    update_subscription(
        &f.platform,
        org,
        &off.to_string(),
        SubscriptionChange {
            disabled: Some(true),
            ..SubscriptionChange::default()
        },
    )
    .await
    .unwrap();
    let m = message(org, "sync.completed", now());
    f.webhooks.put_message(m.clone());

    let done = dispatch(&f.platform, &m).await.unwrap();
    assert_eq!(
        done,
        Dispatched {
            queued: 1,
            disabled: 1
        }
    );
    let queued = f.deliveries.drain();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].0.subscription_id, wants);
    assert_eq!((queued[0].0.attempt, queued[0].1), (1, Duration::ZERO));
    assert!(f.webhooks.is_dispatched(org, m.id));
    // The disabled subscription's delivery failed at once, so a recovery can send it later.
    let state = f.webhooks_delivery(org, m.id, off).await.unwrap();
    assert_eq!((state.status, state.attempts), (AttemptStatus::Failed, 0));

    // A failed queue leaves the message in the outbox for the sweep.
    let again = message(org, "sync.completed", now() + chrono::Duration::seconds(1));
    f.webhooks.put_message(again.clone());
    f.deliveries.fail_enqueue(true);
    assert!(dispatch(&f.platform, &again).await.is_err());
    assert!(!f.webhooks.is_dispatched(org, again.id));
    f.deliveries.fail_enqueue(false);
    // Too recent for the sweep; a minute later it is dispatched.
    let swept = sweep_outbox(&f.platform, now(), 10).await.unwrap();
    assert!(swept.dispatched.is_empty());
    let later = now() + chrono::Duration::seconds(120);
    let swept = sweep_outbox(&f.platform, later, 10).await.unwrap();
    assert_eq!(swept.dispatched, [again.id]);
    assert_eq!(f.deliveries.drain().len(), 1);
}

impl Fakes {
    async fn webhooks_delivery(
        &self,
        org: OrganizationId,
        message: MessageId,
        sub: SubscriptionId,
    ) -> Option<crate::webhooks::DeliveryState> {
        use crate::ports::WebhookStore;
        self.webhooks.delivery(org, message, sub).await.unwrap()
    }
}

/// Runs the queued tasks as the queue would hand them out, until none is left.
async fn drain_sends(f: &Fakes, settings: &SenderSettings) -> Vec<(Sent, Duration)> {
    let mut outcomes = Vec::new();
    loop {
        let queued = f.deliveries.drain();
        if queued.is_empty() {
            return outcomes;
        }
        for (task, wait) in queued {
            outcomes.push((send(&f.platform, settings, &task).await.unwrap(), wait));
        }
    }
}

#[tokio::test]
async fn failed_attempts_are_retried_on_the_schedule_honouring_retry_after_until_delivered() {
    let f = platform();
    let org = OrganizationId::new();
    let sub = subscribe(&f, org, &["sync.completed"]).await;
    let m = message(org, "sync.completed", now());
    f.webhooks.put_message(m.clone());
    dispatch(&f.platform, &m).await.unwrap();
    f.transport.answer(500, None);
    f.transport.answer(500, None);
    f.transport.answer(429, Some(Duration::from_secs(7)));
    f.transport.answer(200, None);

    let outcomes = drain_sends(&f, &quick()).await;
    let sent: Vec<Sent> = outcomes.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        sent,
        [
            Sent::Retrying { next_attempt: 2 },
            Sent::Retrying { next_attempt: 3 },
            Sent::Retrying { next_attempt: 4 },
            Sent::Delivered
        ]
    );
    // The schedule's 1 s, and the 7 s the 429 asked for.
    let waits: Vec<u64> = outcomes.iter().map(|(_, d)| d.as_secs()).collect();
    assert_eq!(waits, [0, 1, 1, 7]);
    let posted = f.transport.posted();
    assert_eq!(posted.len(), 4);
    assert!(
        posted.iter().all(|p| p.message_id == m.id),
        "one webhook-id"
    );
    let attempts = f.webhooks.attempts();
    let codes: Vec<u16> = attempts.iter().map(|a| a.response_status_code).collect();
    assert_eq!(codes, [500, 500, 429, 200]);
    assert_eq!(
        attempts
            .iter()
            .filter(|a| a.status == AttemptStatus::Success)
            .count(),
        1
    );
    let state = f.webhooks_delivery(org, m.id, sub).await.unwrap();
    assert_eq!((state.status, state.attempts), (AttemptStatus::Success, 4));

    // A repeated task (a queue's second delivery) makes no attempt.
    let repeat = DeliveryTask {
        organization_id: org,
        message_id: m.id,
        subscription_id: sub,
        attempt: 4,
        not_before: None,
    };
    assert_eq!(
        send(&f.platform, &quick(), &repeat).await.unwrap(),
        Sent::Repeated
    );
    assert_eq!(f.transport.posted().len(), 4);
}

#[tokio::test]
async fn a_wait_past_the_queues_longest_delay_is_chained() {
    let f = platform();
    let org = OrganizationId::new();
    let sub = subscribe(&f, org, &["sync.completed"]).await;
    let m = message(org, "sync.completed", now());
    f.webhooks.put_message(m.clone());
    let settings = SenderSettings {
        schedule: RetrySchedule::parse("0,3600").unwrap(),
        ..SenderSettings::default()
    };
    let first = DeliveryTask::first(org, m.id, sub);
    f.transport.answer(503, None);
    send(&f.platform, &settings, &first).await.unwrap();
    let queued = f.deliveries.drain();
    let (second, delay) = &queued[0];
    assert_eq!(*delay, Duration::from_secs(900));
    assert_eq!(
        second.not_before,
        Some(now() + chrono::Duration::seconds(3600))
    );
    // Back after 15 minutes, then after 30: queued again for the rest, nothing sent.
    let mut f = f;
    at(&mut f, now() + chrono::Duration::seconds(900));
    assert_eq!(
        send(&f.platform, &settings, second).await.unwrap(),
        Sent::Waiting
    );
    assert_eq!(f.deliveries.drain()[0].1, Duration::from_secs(900));
    at(&mut f, now() + chrono::Duration::seconds(3000));
    send(&f.platform, &settings, second).await.unwrap();
    assert_eq!(f.deliveries.drain()[0].1, Duration::from_secs(600));
    assert_eq!(f.transport.posted().len(), 1);
    at(&mut f, now() + chrono::Duration::seconds(3600));
    assert_eq!(
        send(&f.platform, &settings, second).await.unwrap(),
        Sent::Delivered
    );
}

#[tokio::test]
async fn a_subscription_failing_for_five_days_is_disabled_and_a_recovery_sends_again() {
    let mut f = platform();
    let org = OrganizationId::new();
    let sub = subscribe(&f, org, &["sync.failed"]).await;
    let settings = SenderSettings {
        schedule: RetrySchedule::parse("0").unwrap(),
        ..SenderSettings::default()
    };
    let task = |m: &Message| DeliveryTask::first(org, m.id, sub);
    // Day 0: the only attempt fails; the streak starts.
    let first = message(org, "sync.failed", now());
    f.webhooks.put_message(first.clone());
    f.transport.answer(500, None);
    assert_eq!(
        send(&f.platform, &settings, &task(&first)).await.unwrap(),
        Sent::Failed
    );
    let s = f.webhooks.subscription(org, sub).unwrap();
    assert_eq!((s.failing_since, s.disabled), (Some(now()), false));

    // Day 5: another failure disables it.
    let day5 = now() + chrono::Duration::days(5);
    at(&mut f, day5);
    let second = message(org, "sync.failed", day5);
    f.webhooks.put_message(second.clone());
    f.transport.answer(0, None);
    send(&f.platform, &settings, &task(&second)).await.unwrap();
    assert!(f.webhooks.subscription(org, sub).unwrap().disabled);
    let last = f.webhooks.attempts().pop().unwrap();
    assert_eq!(last.response.as_deref(), Some("connection refused"));
    assert_eq!(last.response_status_code, 0);

    // Disabled, it receives nothing: the delivery fails without an attempt.
    let third = message(org, "sync.failed", day5 + chrono::Duration::seconds(1));
    f.webhooks.put_message(third.clone());
    assert_eq!(
        send(&f.platform, &settings, &task(&third)).await.unwrap(),
        Sent::Disabled
    );
    assert_eq!(f.transport.posted().len(), 2);

    // Re-enabled with recover_since: what failed since then is sent again, from attempt 1.
    at(&mut f, day5 + chrono::Duration::minutes(1));
    update_subscription(
        &f.platform,
        org,
        &sub.to_string(),
        SubscriptionChange {
            disabled: Some(false),
            recover_since: Some(day5),
            ..SubscriptionChange::default()
        },
    )
    .await
    .unwrap();
    let s = f.webhooks.subscription(org, sub).unwrap();
    assert_eq!((s.disabled, s.failing_since), (false, None));
    let requeued: Vec<MessageId> = f
        .deliveries
        .drain()
        .into_iter()
        .map(|(t, _)| t.message_id)
        .collect();
    assert_eq!(requeued, [second.id, third.id]);
    for id in &requeued {
        let state = f.webhooks_delivery(org, *id, sub).await.unwrap();
        assert_eq!((state.status, state.attempts), (AttemptStatus::Pending, 0));
    }

    // The recover route takes any window; the first message's delivery is sent again too,
    // a succeeded one is not.
    let view = recover(
        &f.platform,
        org,
        &sub.to_string(),
        &RecoverRequest {
            since: now() - chrono::Duration::days(1),
            until: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(view.requeued, 1, "only the first was still failed");
    let e = recover(
        &f.platform,
        org,
        &sub.to_string(),
        &RecoverRequest {
            since: day5,
            until: Some(now()),
        },
    )
    .await
    .unwrap_err();
    super::assert_invalid::<()>(Err(e), "until");
    let e = recover(
        &f.platform,
        OrganizationId::new(),
        &sub.to_string(),
        &RecoverRequest {
            since: now(),
            until: None,
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(e, crate::error::DomainError::NotFound(_)), "{e:?}");
}

#[tokio::test]
async fn a_webhook_secret_left_without_its_subscription_is_swept_after_an_hour() {
    use crate::ports::WebhookSecrets;
    use crate::usecases::scheduler::{tick, TickLimits};
    let mut f = platform();
    let org = OrganizationId::new();
    let kept = subscribe(&f, org, &["sync.failed"]).await;
    // A create that died between its secret and its subscription.
    let orphan = SubscriptionId::new();
    let secret = crate::webhooks::WebhookSecret::from_random([7; 32]);
    f.webhooks
        .create_webhook_secret(org, orphan, &secret)
        .await
        .unwrap();

    // Within the hour a create may still be under way: nothing goes.
    let report = tick(&f.platform, &TickLimits::default(), None).await;
    assert_eq!(report.orphan_secrets, 0);
    assert_eq!(f.webhooks.secrets_count(), 2);

    at(&mut f, now() + chrono::Duration::hours(2));
    let report = tick(&f.platform, &TickLimits::default(), None).await;
    assert_eq!((report.orphan_secrets, report.errors), (1, 0));
    assert!(f
        .webhooks
        .webhook_secret(org, orphan)
        .await
        .unwrap()
        .is_none());
    assert!(f
        .webhooks
        .webhook_secret(org, kept)
        .await
        .unwrap()
        .is_some());
}

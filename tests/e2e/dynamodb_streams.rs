//! The webhooks table's stream read as Lambda's event source mapping reads it, against the
//! emulator: every committed write reaches the handler once, in order, with its new image, a
//! cancelled transaction never does, and a batch item failure hands that record and the ones
//! after it over again.

use crate::helpers::aws::TestWebhooks;
use aws_adapters::bootstrap::{
    ensure_webhooks_table, WEBHOOK_OUTBOX_INDEX, WEBHOOK_SUBSCRIPTION_INDEX,
};
use aws_adapters::StreamPoller;
use aws_lambda_events::event::dynamodb::{Event, EventRecord, StreamViewType};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem};
use std::collections::HashMap;
use std::future::{ready, Ready};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Item = HashMap<String, AttributeValue>;

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_owned())
}

fn n(number: &str) -> AttributeValue {
    AttributeValue::N(number.to_owned())
}

/// An event item with one attribute of every type an event carries.
fn event_item(sk: &str) -> Item {
    HashMap::from([
        ("pk".to_owned(), s("SUB#hooks")),
        ("sk".to_owned(), s(sk)),
        ("kind".to_owned(), s("connection.updated")),
        ("attempt".to_owned(), n("3")),
        ("amount".to_owned(), n("-12.50")),
        ("delivered".to_owned(), AttributeValue::Bool(false)),
        (
            "payload".to_owned(),
            AttributeValue::M(HashMap::from([
                ("id".to_owned(), s("conn-1")),
                ("version".to_owned(), n("7")),
                (
                    "nested".to_owned(),
                    AttributeValue::M(HashMap::from([(
                        "ok".to_owned(),
                        AttributeValue::Bool(true),
                    )])),
                ),
            ])),
        ),
        (
            "targets".to_owned(),
            AttributeValue::L(vec![
                s("https://example.test/hook"),
                n("2"),
                AttributeValue::Bool(true),
                AttributeValue::L(vec![]),
            ]),
        ),
        ("secret_ref".to_owned(), AttributeValue::Null(true)),
    ])
}

/// A short item: just its key and a sequence marker.
fn plain_item(sk: &str) -> Item {
    HashMap::from([("pk".to_owned(), s("SUB#plain")), ("sk".to_owned(), s(sk))])
}

/// The image the stream should carry for a written item, converted by serde_dynamo's own
/// conversion from the DynamoDB SDK's values: not the poller's.
fn image_of(item: &Item) -> serde_dynamo::Item {
    serde_dynamo::Item::from(item.clone())
}

fn sort_key(record: &EventRecord) -> String {
    match record.change.keys.get("sk") {
        Some(serde_dynamo::AttributeValue::S(sk)) => sk.clone(),
        other => panic!("a string sort key in the record's keys, not {other:?}"),
    }
}

fn sequence_number(record: &EventRecord) -> String {
    record
        .change
        .sequence_number
        .clone()
        .expect("a sequence number")
}

/// A handler that records every batch and takes all of it.
fn recording() -> (
    Arc<Mutex<Vec<Event>>>,
    impl FnMut(Event) -> Ready<DynamoDbEventResponse>,
) {
    let batches = Arc::new(Mutex::new(Vec::new()));
    let seen = batches.clone();
    let handler = move |event: Event| {
        seen.lock().unwrap().push(event);
        ready(DynamoDbEventResponse::default())
    };
    (batches, handler)
}

fn failing(sequence_number: &str) -> DynamoDbEventResponse {
    let mut failure = DynamoDbBatchItemFailure::default();
    failure.item_identifier = Some(sequence_number.to_owned());
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures.push(failure);
    response
}

fn records(batches: &Arc<Mutex<Vec<Event>>>) -> Vec<EventRecord> {
    let batches = batches.lock().unwrap();
    batches.iter().flat_map(|b| b.records.clone()).collect()
}

/// Polls until the handler was handed `count` records in all (the emulator answers at once;
/// AWS may take a moment), then once more to show nothing else comes.
async fn poll_for<H>(poller: &mut StreamPoller, handler: &mut H, count: usize)
where
    H: FnMut(Event) -> Ready<DynamoDbEventResponse>,
{
    let mut handed = 0;
    for _ in 0..40 {
        handed += poller.poll_once(&mut *handler).await.expect("a poll");
        if handed >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(handed, count, "records handed over");
    assert_eq!(
        poller.poll_once(&mut *handler).await.expect("a poll"),
        0,
        "nothing more is handed over"
    );
}

#[tokio::test]
async fn the_webhooks_table_is_bootstrapped_idempotently_with_its_stream_and_indexes() {
    let webhooks = TestWebhooks::fresh().await;
    let dynamodb = &webhooks.clients.dynamodb;
    let again = ensure_webhooks_table(dynamodb, &webhooks.table)
        .await
        .expect("the existing table");
    assert_eq!(again, webhooks.stream_arn, "the existing table's stream");

    let table = dynamodb
        .describe_table()
        .table_name(&webhooks.table)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let stream = table.stream_specification().expect("a stream");
    assert!(stream.stream_enabled());
    assert_eq!(
        stream.stream_view_type(),
        Some(&aws_sdk_dynamodb::types::StreamViewType::NewImage)
    );
    let indexes: HashMap<&str, Vec<&str>> = table
        .global_secondary_indexes()
        .iter()
        .map(|index| {
            assert_eq!(
                index.projection().and_then(|p| p.projection_type()),
                Some(&aws_sdk_dynamodb::types::ProjectionType::All)
            );
            let keys = index
                .key_schema()
                .iter()
                .map(|k| k.attribute_name())
                .collect();
            (index.index_name().unwrap(), keys)
        })
        .collect();
    assert_eq!(
        indexes,
        HashMap::from([
            (WEBHOOK_SUBSCRIPTION_INDEX, vec!["sub_pk", "sub_sk"]),
            (WEBHOOK_OUTBOX_INDEX, vec!["outbox_bucket", "outbox_at"]),
        ])
    );
    let ttl = dynamodb
        .describe_time_to_live()
        .table_name(&webhooks.table)
        .send()
        .await
        .unwrap();
    assert_eq!(
        ttl.time_to_live_description().unwrap().attribute_name(),
        Some("expires_at")
    );
}

#[tokio::test]
async fn committed_writes_reach_the_handler_in_order_with_their_new_images() {
    let webhooks = TestWebhooks::fresh().await;
    let mut poller = webhooks.poller();
    let (batches, mut handler) = recording();
    let started = chrono::Utc::now() - chrono::Duration::seconds(60);

    let first = event_item("EVT#1");
    let second = event_item("EVT#2");
    let third = plain_item("EVT#3");
    webhooks.put(first.clone()).await;
    webhooks
        .clients
        .dynamodb
        .transact_write_items()
        .transact_items(webhooks.transact_put(second.clone()))
        .transact_items(webhooks.transact_put(third.clone()))
        .send()
        .await
        .expect("a committed transaction");
    poll_for(&mut poller, &mut handler, 3).await;

    // With the poller's place in the stream taken: a cancelled transaction (its condition
    // check fails) writes nothing to the stream, and what comes after it still arrives.
    let cancelled = webhooks
        .clients
        .dynamodb
        .transact_write_items()
        .transact_items(webhooks.transact_put(plain_item("EVT#never")))
        .transact_items(
            TransactWriteItem::builder()
                .condition_check(
                    ConditionCheck::builder()
                        .table_name(&webhooks.table)
                        .key("pk", s("SUB#hooks"))
                        .key("sk", s("EVT#1"))
                        .condition_expression("attribute_not_exists(pk)")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await;
    let code = cancelled
        .as_ref()
        .err()
        .and_then(|e| e.as_service_error())
        .map(|e| e.is_transaction_canceled_exception());
    assert_eq!(code, Some(true), "{cancelled:?}");
    let fourth = event_item("EVT#4");
    webhooks.put(fourth.clone()).await;
    poll_for(&mut poller, &mut handler, 1).await;

    let records = records(&batches);
    let keys: Vec<String> = records.iter().map(sort_key).collect();
    assert_eq!(keys, ["EVT#1", "EVT#2", "EVT#3", "EVT#4"]);
    for (record, written) in records.iter().zip([&first, &second, &third, &fourth]) {
        assert_eq!(
            record.change.new_image,
            image_of(written),
            "{}",
            sort_key(record)
        );
        assert_eq!(record.event_name, "INSERT");
        assert_eq!(record.event_source.as_deref(), Some("aws:dynamodb"));
        assert_eq!(
            record.event_source_arn.as_deref(),
            Some(webhooks.stream_arn.as_str())
        );
        assert!(!record.event_id.is_empty());
        assert!(!record.aws_region.is_empty());
        assert_eq!(
            record.change.stream_view_type,
            Some(StreamViewType::NewImage)
        );
        assert!(
            record.change.old_image.is_empty(),
            "NEW_IMAGE carries no old image"
        );
        assert_eq!(
            record.change.keys,
            image_of(&HashMap::from([
                ("pk".to_owned(), written["pk"].clone()),
                ("sk".to_owned(), written["sk"].clone()),
            ]))
        );
        assert!(record.change.size_bytes > 0);
        assert!(record.change.approximate_creation_date_time > started);
    }
    let sequence: Vec<u128> = records
        .iter()
        .map(|r| {
            sequence_number(r)
                .parse()
                .expect("a decimal sequence number")
        })
        .collect();
    assert!(
        sequence.windows(2).all(|pair| pair[0] < pair[1]),
        "{sequence:?}"
    );
}

#[tokio::test]
async fn a_failed_record_comes_again_with_the_ones_after_it_and_not_those_before() {
    let webhooks = TestWebhooks::fresh().await;
    let mut poller = webhooks.poller();
    for sk in ["EVT#1", "EVT#2", "EVT#3", "EVT#4", "EVT#5"] {
        webhooks.put(event_item(sk)).await;
    }

    let batches: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let seen = batches.clone();
    let mut handler = move |event: Event| {
        let mut seen = seen.lock().unwrap();
        seen.push(event.records.iter().map(sort_key).collect());
        // The first delivery fails in the middle of the batch; the next one succeeds.
        let response = match seen.len() {
            1 => failing(&sequence_number(&event.records[2])),
            _ => DynamoDbEventResponse::default(),
        };
        ready(response)
    };

    assert_eq!(poller.poll_once(&mut handler).await.unwrap(), 5);
    assert_eq!(poller.poll_once(&mut handler).await.unwrap(), 3);
    assert_eq!(poller.poll_once(&mut handler).await.unwrap(), 0);
    webhooks.put(event_item("EVT#6")).await;
    assert_eq!(poller.poll_once(&mut handler).await.unwrap(), 1);

    let batches = batches.lock().unwrap().clone();
    assert_eq!(
        batches,
        [
            vec!["EVT#1", "EVT#2", "EVT#3", "EVT#4", "EVT#5"],
            vec!["EVT#3", "EVT#4", "EVT#5"],
            vec!["EVT#6"],
        ]
    );
}

#[tokio::test]
async fn a_failure_naming_no_record_of_the_batch_hands_the_whole_batch_over_again() {
    let webhooks = TestWebhooks::fresh().await;
    let mut poller = webhooks.poller();
    for sk in ["EVT#1", "EVT#2"] {
        webhooks.put(plain_item(sk)).await;
    }
    let mut calls = 0;
    let mut handler = move |event: Event| {
        calls += 1;
        let response = match calls {
            1 => failing("not-a-sequence-number"),
            _ => DynamoDbEventResponse::default(),
        };
        assert_eq!(event.records.len(), 2);
        ready(response)
    };
    assert_eq!(poller.poll_once(&mut handler).await.unwrap(), 2);
    assert_eq!(poller.poll_once(&mut handler).await.unwrap(), 2);
    assert_eq!(poller.poll_once(&mut handler).await.unwrap(), 0);
}

#[tokio::test]
async fn run_hands_records_over_as_they_come_until_shut_down() {
    let webhooks = TestWebhooks::fresh().await;
    let (batches, handler) = recording();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(webhooks.poller().run(handler, async {
        let _ = stopped.await;
    }));

    for sk in ["EVT#1", "EVT#2", "EVT#3"] {
        webhooks.put(plain_item(sk)).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while records(&batches).len() < 3 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("the poller stops when told")
        .expect("the poller did not panic");

    let keys: Vec<String> = records(&batches).iter().map(sort_key).collect();
    assert_eq!(keys, ["EVT#1", "EVT#2", "EVT#3"]);
}

//! The emulator itself (`infra/moto_launcher.py`): a transaction backs up only the items it
//! names, and a cancelled one still leaves every one of them as it was.

use crate::helpers::aws::TestAws;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update,
};
use std::collections::HashMap;

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_owned())
}

fn key(sk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_owned(), s("EMU#tx")), ("sk".to_owned(), s(sk))])
}

fn item(sk: &str, v: &str) -> HashMap<String, AttributeValue> {
    let mut item = key(sk);
    item.insert("v".to_owned(), s(v));
    item
}

/// A put over `a`, an update of `b`, a put of a new `c`, a delete of `d`, and, when `fail`, a
/// condition on a missing `e` that cancels it all.
fn transaction(table: &str, fail: bool) -> Vec<TransactWriteItem> {
    let mut items = vec![
        TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(table)
                    .set_item(Some(item("a", "10")))
                    .build()
                    .unwrap(),
            )
            .build(),
        TransactWriteItem::builder()
            .update(
                Update::builder()
                    .table_name(table)
                    .set_key(Some(key("b")))
                    .update_expression("SET v = :v")
                    .expression_attribute_values(":v", s("20"))
                    .build()
                    .unwrap(),
            )
            .build(),
        TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(table)
                    .set_item(Some(item("c", "30")))
                    .build()
                    .unwrap(),
            )
            .build(),
        TransactWriteItem::builder()
            .delete(
                Delete::builder()
                    .table_name(table)
                    .set_key(Some(key("d")))
                    .build()
                    .unwrap(),
            )
            .build(),
    ];
    if fail {
        let check = ConditionCheck::builder()
            .table_name(table)
            .set_key(Some(key("e")))
            .condition_expression("attribute_exists(pk)")
            .build()
            .unwrap();
        items.push(TransactWriteItem::builder().condition_check(check).build());
    }
    items
}

async fn values(aws: &TestAws) -> Vec<(String, String)> {
    let out = aws
        .clients
        .dynamodb
        .query()
        .table_name(&aws.state_table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", s("EMU#tx"))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.items()
        .iter()
        .map(|i| {
            let text = |name: &str| i[name].as_s().unwrap().clone();
            (text("sk"), text("v"))
        })
        .collect()
}

#[tokio::test]
async fn a_cancelled_transaction_leaves_every_item_it_named_as_it_was() {
    let aws = TestAws::fresh().await;
    let dynamodb = &aws.clients.dynamodb;
    for (sk, v) in [("a", "1"), ("b", "2"), ("d", "4")] {
        let put = dynamodb.put_item().table_name(&aws.state_table);
        put.set_item(Some(item(sk, v))).send().await.unwrap();
    }
    let before = values(&aws).await;

    let cancelled = dynamodb
        .transact_write_items()
        .set_transact_items(Some(transaction(&aws.state_table, true)))
        .send()
        .await;
    let canceled = cancelled
        .as_ref()
        .err()
        .and_then(|e| e.as_service_error())
        .is_some_and(|e| e.is_transaction_canceled_exception());
    assert!(canceled, "{cancelled:?}");
    assert_eq!(
        values(&aws).await,
        before,
        "no put, update, insert or delete remains"
    );

    dynamodb
        .transact_write_items()
        .set_transact_items(Some(transaction(&aws.state_table, false)))
        .send()
        .await
        .expect("committed");
    let after: Vec<(String, String)> = [("a", "10"), ("b", "20"), ("c", "30")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(values(&aws).await, after, "all of it applied");
}

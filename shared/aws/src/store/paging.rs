//! Listing one kind of item of a partition, with `skip`, `limit` and an opaque cursor.
//!
//! The cursor is the URL-safe base64 of the last returned item's sort key. A cursor that does
//! not decode to a sort key of the listed kind cannot come from us: it is refused
//! (`InvalidCursor`), and since the partition key is always the caller's, a forged cursor can
//! never reach another organization's items.

use super::{backend, s, DynamoStore, Item};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use domain::page::{Page, PageRequest};
use domain::ports::StoreError;
use std::collections::HashMap;

/// A filter on non-key attributes, applied by DynamoDB after reading.
pub(crate) struct Filter {
    pub expression: String,
    pub names: HashMap<String, String>,
    pub values: HashMap<String, AttributeValue>,
}

/// Most items one Query asks for; DynamoDB also stops at 1 MB.
const QUERY_LIMIT: usize = 1000;

pub(crate) fn encode_cursor(sk: &str) -> String {
    URL_SAFE_NO_PAD.encode(sk)
}

pub(crate) fn decode_cursor(cursor: &str, prefix: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let sk = String::from_utf8(bytes).ok()?;
    (sk.len() > prefix.len() && sk.starts_with(prefix)).then_some(sk)
}

impl DynamoStore {
    /// Items of partition `pk` whose sort key starts with `prefix`, in sort key order.
    pub(crate) async fn list_items(
        &self,
        pk: String,
        prefix: &str,
        filter: Option<Filter>,
        page: &PageRequest,
    ) -> Result<Page<Item>, StoreError> {
        let order = Order::Ascending;
        list_items(&self.client, &self.table, pk, prefix, filter, page, order).await
    }
}

/// The direction of a listing by sort key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    Ascending,
    Descending,
}

/// Items of partition `pk` of `table` whose sort key starts with `prefix` (every item when it is
/// empty), in sort key order. Reads one item past the page to tell whether another follows.
pub(crate) async fn list_items(
    client: &Client,
    table: &str,
    pk: String,
    prefix: &str,
    filter: Option<Filter>,
    page: &PageRequest,
    order: Order,
) -> Result<Page<Item>, StoreError> {
    // No page of these kinds comes near any size bound.
    list_items_within(client, table, pk, prefix, filter, page, order, usize::MAX).await
}

/// Like [`list_items`], but a page also ends before its items' bytes would pass `budget` (it
/// always holds at least one item; the cursor resumes after the last one it holds).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn list_items_within(
    client: &Client,
    table: &str,
    pk: String,
    prefix: &str,
    filter: Option<Filter>,
    page: &PageRequest,
    order: Order,
    budget: usize,
) -> Result<Page<Item>, StoreError> {
    let mut start = match &page.cursor {
        None => None,
        Some(cursor) => match decode_cursor(cursor, prefix) {
            Some(sk) => Some(super::key(pk.clone(), &sk)),
            None => return Err(StoreError::InvalidCursor),
        },
    };

    let mut names = HashMap::new();
    let mut values = HashMap::from([(":pk".to_owned(), s(pk.clone()))]);
    let key_condition = if prefix.is_empty() {
        "pk = :pk"
    } else {
        values.insert(":prefix".to_owned(), s(prefix));
        "pk = :pk AND begins_with(sk, :prefix)"
    };
    let filter_expression = filter.map(|f| {
        names.extend(f.names);
        values.extend(f.values);
        f.expression
    });
    let query = |start: Option<Item>, wanted: usize, keys_only: bool| {
        let mut query = client
            .query()
            .table_name(table)
            .key_condition_expression(key_condition)
            .set_expression_attribute_values(Some(values.clone()))
            .scan_index_forward(order == Order::Ascending)
            .consistent_read(true)
            .set_exclusive_start_key(start);
        if keys_only {
            query = query.projection_expression("pk, sk");
        }
        match &filter_expression {
            // A filter applies after `Limit` counts the items read, so let DynamoDB fill
            // its 1 MB page instead.
            Some(expression) => query
                .filter_expression(expression)
                .set_expression_attribute_names((!names.is_empty()).then(|| names.clone())),
            None => query.limit(wanted.min(QUERY_LIMIT) as i32),
        }
    };

    // The skipped items are read for their keys only: the page starts after the last.
    let mut skipped = 0;
    while skipped < page.skip {
        let out = query(start.take(), page.skip - skipped, true)
            .send()
            .await
            .map_err(backend)?;
        for item in out.items.unwrap_or_default() {
            if skipped == page.skip {
                break;
            }
            skipped += 1;
            start = Some(item);
        }
        if skipped == page.skip {
            break;
        }
        match out.last_evaluated_key {
            Some(last) if !last.is_empty() => start = Some(last),
            // Fewer items than the skip: the page is empty.
            _ => {
                return Ok(Page {
                    items: Vec::new(),
                    next_cursor: None,
                })
            }
        }
    }

    let mut items: Vec<Item> = Vec::new();
    let mut bytes: usize = 0;
    let mut more = false;
    loop {
        let wanted = page.limit + 1 - items.len();
        let out = query(start.take(), wanted, false)
            .send()
            .await
            .map_err(backend)?;
        for item in out.items.unwrap_or_default() {
            let size = item_bytes(&item);
            let fits = items.is_empty() || bytes.saturating_add(size) <= budget;
            if items.len() < page.limit && fits {
                bytes += size;
                items.push(item);
            } else {
                more = true;
                break;
            }
        }
        match out.last_evaluated_key {
            Some(last) if !more && !last.is_empty() => start = Some(last),
            _ => break,
        }
    }

    let next_cursor = if more {
        items
            .last()
            .and_then(|item| item.get("sk"))
            .and_then(|sk| sk.as_s().ok())
            .map(|sk| encode_cursor(sk))
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

/// An item's size as DynamoDB counts it, near enough: its attribute names and values.
pub(crate) fn item_bytes(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_bytes(value))
        .sum()
}

fn value_bytes(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Ss(v) | AttributeValue::Ns(v) => v.iter().map(String::len).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(v) => v.iter().map(value_bytes).sum::<usize>() + 3,
        AttributeValue::M(m) => item_bytes(m) + 3,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_foreign_input() {
        let cursor = encode_cursor("COLL#my-docs");
        assert_eq!(
            decode_cursor(&cursor, "COLL#").as_deref(),
            Some("COLL#my-docs")
        );
        assert!(cursor
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(decode_cursor(&cursor, "CONN#"), None);
        assert_eq!(decode_cursor("not base64!", "COLL#"), None);
        assert_eq!(decode_cursor(&encode_cursor("COLL#"), "COLL#"), None);
        assert_eq!(
            decode_cursor(&URL_SAFE_NO_PAD.encode([0xff, 0xfe]), "COLL#"),
            None
        );
    }
}

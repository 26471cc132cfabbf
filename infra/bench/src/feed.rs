//! The change feed's part of `make bench-sync`: a consumer that follows the feed while the
//! worker syncs and checks its copy against the final table, a full read's throughput, and the
//! write units a changed entity costs with the feed's index and without it.

use aws_adapters::{metering, AwsClients};
use aws_sdk_dynamodb::types::AttributeValue;
use domain::ids::{ConnectionId, OrganizationId};
use domain::page::PageRequest;
use domain::ports::BoxError;
use domain::usecases::changes::{read_changes, ChangesPage, ChangesRequest, FeedStart};
use domain::usecases::Platform;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

/// How often the follower reads.
const POLL: Duration = Duration::from_millis(250);

async fn page(
    platform: &Platform,
    org: OrganizationId,
    connection: ConnectionId,
    cursor: Option<&str>,
) -> Result<ChangesPage, BoxError> {
    let start = match cursor {
        Some(c) => FeedStart::Cursor(domain::feed::FeedCursor::parse(c).map_err(|e| e.message)?),
        None => FeedStart::Beginning,
    };
    let request = ChangesRequest {
        start,
        limit: PageRequest::MAX_LIMIT,
        filter: None,
        entity_type: None,
    };
    Ok(read_changes(platform, org, &connection.to_string(), &request).await?)
}

/// A 64-bit digest of a payload, so the follower's copy of 100,000 entities stays small.
fn digest(value: &Value) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    value.to_string().hash(&mut hasher);
    hasher.finish()
}

/// Follows the feed from the start until `stop` exists, then (after the settle delay) reads to
/// the end and compares its copy, built from the changes alone, with the table.
pub async fn follow(
    platform: &Platform,
    org: OrganizationId,
    connection: ConnectionId,
    stop: &Path,
) -> Result<Value, BoxError> {
    let mut copy: HashMap<String, u64> = HashMap::new();
    let mut seen: HashSet<(String, String, u64)> = HashSet::new();
    let (mut changes, mut duplicates, mut polls, mut during) = (0u64, 0u64, 0u64, 0u64);
    let mut cursor: Option<String> = None;
    let mut stopping = false;
    loop {
        if !stopping && stop.exists() {
            stopping = true;
            during = changes;
            tokio::time::sleep(platform.feed.settle + Duration::from_secs(1)).await;
        }
        loop {
            let read = page(platform, org, connection, cursor.as_deref()).await?;
            polls += 1;
            for change in read.changes {
                let key = format!("{}#{}", change.entity_type, change.entity_id);
                let payload = change.payload.as_ref().map(digest).unwrap_or(0);
                let op = serde_json::to_string(&change.op)?;
                if !seen.insert((key.clone(), op, payload)) {
                    duplicates += 1;
                }
                changes += 1;
                match change.payload {
                    Some(_) => copy.insert(key, payload),
                    None => copy.remove(&key),
                };
            }
            cursor = Some(read.next_cursor);
            if !read.has_more {
                break;
            }
        }
        if stopping {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let table = table(platform, connection).await?;
    let wrong = table
        .iter()
        .filter(|(k, v)| copy.get(*k) != Some(v))
        .count()
        + copy.keys().filter(|k| !table.contains_key(*k)).count();
    Ok(json!({
        "changes": changes,
        "changes_while_syncing": during,
        "duplicates": duplicates,
        "entities": table.len(),
        "wrong": wrong,
        "polls": polls,
    }))
}

/// Every stored entity's payload digest, by key.
async fn table(
    platform: &Platform,
    connection: ConnectionId,
) -> Result<BTreeMap<String, u64>, BoxError> {
    let mut all = BTreeMap::new();
    let mut request = PageRequest {
        limit: PageRequest::MAX_LIMIT,
        ..PageRequest::default()
    };
    loop {
        let page = platform.entities.list(connection, None, &request).await?;
        for e in page.items {
            all.insert(
                format!("{}#{}", e.entity_type, e.entity_id),
                digest(&e.payload),
            );
        }
        match page.next_cursor {
            Some(next) => request.cursor = Some(next),
            None => return Ok(all),
        }
    }
}

/// The whole feed read from the start, as a consumer catching up: changes per second, pages
/// and DynamoDB requests.
pub async fn read_all(
    platform: &Platform,
    org: OrganizationId,
    connection: ConnectionId,
) -> Result<Value, BoxError> {
    let before = metering::snapshot();
    let started = Instant::now();
    let (mut changes, mut pages, mut bytes) = (0usize, 0usize, 0usize);
    let mut cursor: Option<String> = None;
    loop {
        let read = page(platform, org, connection, cursor.as_deref()).await?;
        pages += 1;
        changes += read.changes.len();
        bytes += serde_json::to_vec(&read)?.len();
        cursor = Some(read.next_cursor);
        if !read.has_more {
            break;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(json!({
        "changes": changes,
        "pages": pages,
        "seconds": seconds,
        "rate": changes as f64 / seconds,
        "answer_bytes": bytes,
        "requests": metering::since(&before),
    }))
}

/// DynamoDB's size of an attribute value (strings and binaries by length, numbers about one
/// byte per two digits plus one).
fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.len().div_ceil(2) + 1,
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        _ => 0,
    }
}

fn size(item: &HashMap<String, AttributeValue>, only: Option<&[&str]>) -> usize {
    item.iter()
        .filter(|(name, _)| only.is_none_or(|o| o.contains(&name.as_str())))
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

/// Write units per 1 KB started.
fn units(bytes: usize) -> usize {
    bytes.div_ceil(1024).max(1)
}

/// Write units per changed entity, measured on the connection's stored items: what the item
/// costs alone (no feed: its old attributes only), and with the feed's attributes, index entry
/// (keys, `feed`, `pos`, `bytes`, plus DynamoDB's 100 bytes per entry) and deletion records.
pub async fn write_cost(table_name: &str, connection: ConnectionId) -> Result<Value, BoxError> {
    let clients = AwsClients::from_env().await;
    let out = clients
        .dynamodb
        .query()
        .table_name(table_name)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("CONN#{connection}")))
        .limit(500)
        .send()
        .await?;
    let items = out.items.unwrap_or_default();
    if items.is_empty() {
        return Err("no stored entity to measure".into());
    }
    let feed_only = ["feed", "pos", "added", "bytes"];
    let (mut before, mut after, mut entry) = (0usize, 0usize, 0usize);
    let mut per = BTreeMap::<&str, (usize, usize)>::new();
    for item in &items {
        let whole = size(item, None);
        let old = whole - size(item, Some(&feed_only));
        let index = size(item, Some(&["pk", "sk", "feed", "pos", "bytes"])) + 100;
        let record = size(item, Some(&["pk", "sk", "feed", "pos"])) + 12 + 10;
        before += old;
        after += whole;
        entry += index;
        let (w, i) = (units(whole), units(index));
        for (op, no_feed, feed) in [
            ("inserted", units(old), w + i),
            ("updated", units(old), w + 2 * i),
            ("deleted", units(old), units(record) + i + w + i),
        ] {
            let slot = per.entry(op).or_default();
            slot.0 += no_feed;
            slot.1 += feed;
        }
    }
    let n = items.len() as f64;
    Ok(json!({
        "sampled": items.len(),
        "item_bytes_without_feed": before as f64 / n,
        "item_bytes_with_feed": after as f64 / n,
        "index_entry_bytes": entry as f64 / n,
        "units": per
            .into_iter()
            .map(|(op, (no_feed, feed))| (op, json!([no_feed as f64 / n, feed as f64 / n])))
            .collect::<BTreeMap<_, _>>(),
    }))
}

//! Batch reads and writes that finish: DynamoDB may hand back part of a batch unprocessed
//! (`UnprocessedItems`/`UnprocessedKeys`, under throttling); those are sent again after an
//! exponential backoff with full jitter, a bounded number of times.

use crate::error::adapter;
use crate::store::Item;
use aws_sdk_dynamodb::types::{DeleteRequest, KeysAndAttributes, WriteRequest};
use aws_sdk_dynamodb::Client;
use domain::ports::StoreError;
use std::collections::HashMap;
use std::time::Duration;

/// Most items one BatchWriteItem takes.
pub(crate) const MAX_WRITE_BATCH: usize = 25;
/// Most keys one BatchGetItem takes.
pub(crate) const MAX_READ_BATCH: usize = 100;
/// Rounds of re-sending what came back unprocessed before giving up.
const ATTEMPTS: u32 = 10;
const BASE_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Full jitter: a random wait between zero and the exponential bound of this attempt.
fn backoff(attempt: u32) -> Duration {
    let bound = BASE_BACKOFF
        .saturating_mul(1 << attempt.min(16))
        .min(MAX_BACKOFF);
    let random = uuid::Uuid::new_v4().as_u128() as u64;
    Duration::from_nanos(random % (bound.as_nanos() as u64 + 1))
}

/// Sends at most [`MAX_WRITE_BATCH`] write requests to `table`, until none is left unprocessed.
pub(crate) async fn write_all(
    client: &Client,
    table: &str,
    requests: Vec<WriteRequest>,
) -> Result<(), StoreError> {
    debug_assert!(requests.len() <= MAX_WRITE_BATCH);
    let mut pending = HashMap::from([(table.to_owned(), requests)]);
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(backoff(attempt)).await;
        }
        let out = client
            .batch_write_item()
            .set_request_items(Some(pending))
            .send()
            .await
            .map_err(super::store::backend)?;
        pending = out.unprocessed_items.unwrap_or_default();
        pending.retain(|_, requests| !requests.is_empty());
        if pending.is_empty() {
            return Ok(());
        }
    }
    Err(StoreError::Backend(adapter(
        "DynamoDB kept part of a batch write unprocessed",
    )))
}

/// Deletes these keys of `table`, [`MAX_WRITE_BATCH`] to a request; a missing one is no error.
pub(crate) async fn delete_all(
    client: &Client,
    table: &str,
    keys: &[Item],
) -> Result<(), StoreError> {
    for batch in keys.chunks(MAX_WRITE_BATCH) {
        let requests = batch
            .iter()
            .map(|key| {
                let delete = DeleteRequest::builder()
                    .set_key(Some(key.clone()))
                    .build()
                    .map_err(|e| StoreError::Backend(crate::error::boxed(e)))?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        write_all(client, table, requests).await?;
    }
    Ok(())
}

/// What a batch read asks for of each item.
pub(crate) enum Read<'a> {
    /// These attributes, eventually consistent.
    Attributes {
        projection: &'a str,
        names: &'a HashMap<String, String>,
    },
    /// Whole items, strongly consistent.
    Consistent,
}

/// Reads at most [`MAX_READ_BATCH`] keys of `table`, until none is left unprocessed. Missing
/// keys are simply not in the answer.
pub(crate) async fn read_all(
    client: &Client,
    table: &str,
    keys: Vec<Item>,
    read: Read<'_>,
) -> Result<Vec<Item>, StoreError> {
    debug_assert!(keys.len() <= MAX_READ_BATCH);
    let request = KeysAndAttributes::builder().set_keys(Some(keys));
    let request = match read {
        Read::Attributes { projection, names } => request
            .projection_expression(projection)
            .set_expression_attribute_names(Some(names.clone())),
        Read::Consistent => request.consistent_read(true),
    };
    let request = request
        .build()
        .map_err(|e| StoreError::Backend(crate::error::boxed(e)))?;
    let mut pending = HashMap::from([(table.to_owned(), request)]);
    let mut items = Vec::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(backoff(attempt)).await;
        }
        let out = client
            .batch_get_item()
            .set_request_items(Some(pending))
            .send()
            .await
            .map_err(super::store::backend)?;
        if let Some(mut responses) = out.responses {
            items.extend(responses.remove(table).unwrap_or_default());
        }
        pending = out.unprocessed_keys.unwrap_or_default();
        pending.retain(|_, k| !k.keys().is_empty());
        if pending.is_empty() {
            return Ok(items);
        }
    }
    Err(StoreError::Backend(adapter(
        "DynamoDB kept part of a batch read unprocessed",
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded_and_grows() {
        for attempt in 0..40 {
            assert!(backoff(attempt) <= MAX_BACKOFF);
        }
        assert!(backoff(1) <= BASE_BACKOFF * 2);
    }
}

//! The change feed's read: the `by_position` index in commit order, then the items themselves,
//! read strongly consistent, so that what is answered is what is stored.
//!
//! The index is eventually consistent: an entry may be late (the use case reads only settled
//! positions) or stale (an entity written again since, whose entry has not moved yet). A stale
//! entry is left out when its item's position differs: the entity's newer change comes later in
//! the order. A deletion record is left out when it expired (TTL deletes lazily) or when the
//! entity was written again after it.

use super::{gone_partition, is_deletion_record, partition, text, DynamoEntities, FEED_INDEX};
use super::{ADDED, BYTES, CHANGE_OVERHEAD, EXPIRES_AT, GONE_PREFIX, LIVE_PREFIX, POSITION};
use crate::batch::{read_all, Read, MAX_READ_BATCH};
use crate::store::{backend, key, s, Item};
use domain::entity::EntityKey;
use domain::feed::FeedPosition;
use domain::ids::ConnectionId;
use domain::ports::{FeedChange, FeedEntry, FeedPage, FeedQuery, FeedSide, StoreError};
use std::collections::HashMap;

/// Most index entries one Query asks for.
const INDEX_PAGE: usize = 1000;
/// Most index entries one read examines, however many it leaves out (e.g. under
/// `modified_after`): the answer then says more may follow, and the cursor moves past them.
const MAX_EXAMINED: usize = 20_000;

/// An index entry the read keeps, before its item is read.
struct Candidate {
    position: FeedPosition,
    key: EntityKey,
    gone: bool,
}

/// The candidates in runs whose reads fit one BatchGetItem: a live entry reads one key, a
/// deletion record two (itself and its entity).
fn chunks(candidates: &[Candidate]) -> Vec<&[Candidate]> {
    let mut runs = Vec::new();
    let (mut start, mut keys) = (0, 0);
    for (i, c) in candidates.iter().enumerate() {
        let needs = if c.gone { 2 } else { 1 };
        if keys + needs > MAX_READ_BATCH {
            runs.push(&candidates[start..i]);
            (start, keys) = (i, 0);
        }
        keys += needs;
    }
    if start < candidates.len() {
        runs.push(&candidates[start..]);
    }
    runs
}

fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

impl DynamoEntities {
    pub(super) async fn read_changes(
        &self,
        connection: ConnectionId,
        query: &FeedQuery,
    ) -> Result<FeedPage, StoreError> {
        let (candidates, last, more) = self.candidates(connection, query).await?;
        let mut page = FeedPage {
            entries: Vec::with_capacity(candidates.len()),
            last,
            more,
        };
        for chunk in chunks(&candidates) {
            // A deletion record is read with its entity, which may have come back since (and
            // be in the chunk itself): each key once, as BatchGetItem requires.
            let mut wanted = std::collections::BTreeSet::new();
            for c in chunk {
                wanted.insert((false, c.key.as_str()));
                if c.gone {
                    wanted.insert((true, c.key.as_str()));
                }
            }
            let keys: Vec<Item> = wanted
                .into_iter()
                .map(|(gone, sk)| match gone {
                    true => key(gone_partition(connection), sk),
                    false => key(partition(connection), sk),
                })
                .collect();
            let items = read_all(&self.client, &self.table, keys, Read::Consistent).await?;
            let mut live = HashMap::new();
            let mut gone = HashMap::new();
            for item in items {
                let Some(sk) = text(&item, "sk").map(str::to_owned) else {
                    continue;
                };
                match is_deletion_record(&item) {
                    true => gone.insert(sk, item),
                    false => live.insert(sk, item),
                };
            }
            let position_of =
                |item: &Item| text(item, POSITION).and_then(|p| p.parse::<FeedPosition>().ok());
            for c in chunk {
                let live_item = live.get(c.key.as_str());
                let change = if c.gone {
                    let Some(record) = gone.get(c.key.as_str()) else {
                        continue;
                    };
                    let expired =
                        number(record, EXPIRES_AT).is_some_and(|at| at <= query.now.timestamp());
                    let revived = live_item
                        .and_then(position_of)
                        .is_some_and(|p| p > c.position);
                    if position_of(record) != Some(c.position) || expired || revived {
                        continue;
                    }
                    FeedChange::Gone
                } else {
                    let Some(item) = live_item else {
                        continue;
                    };
                    if position_of(item) != Some(c.position) {
                        continue;
                    }
                    let added = text(item, ADDED)
                        .and_then(|p| p.parse().ok())
                        .unwrap_or(FeedPosition::ORIGIN);
                    FeedChange::Live {
                        record: Self::record(item)?,
                        added,
                    }
                };
                page.entries.push(FeedEntry {
                    position: c.position,
                    key: c.key.clone(),
                    change,
                });
            }
        }
        Ok(page)
    }

    /// The index entries of the page, in order: at most `limit`, within the byte budget (one at
    /// least), with the last position examined and whether more may follow.
    async fn candidates(
        &self,
        connection: ConnectionId,
        query: &FeedQuery,
    ) -> Result<(Vec<Candidate>, Option<FeedPosition>, bool), StoreError> {
        let mut values = HashMap::from([(":feed".to_owned(), s(connection.to_string()))]);
        let mut condition = "feed = :feed".to_owned();
        match (query.after, query.through) {
            (Some(after), Some(through)) => {
                condition.push_str(" AND pos BETWEEN :after AND :through");
                values.insert(":after".to_owned(), s(after.to_string()));
                values.insert(":through".to_owned(), s(through.to_string()));
            }
            (Some(after), None) => {
                condition.push_str(" AND pos > :after");
                values.insert(":after".to_owned(), s(after.to_string()));
            }
            (None, Some(through)) => {
                condition.push_str(" AND pos <= :through");
                values.insert(":through".to_owned(), s(through.to_string()));
            }
            (None, None) => {}
        }
        let mut filters = Vec::new();
        let partition_prefix = match query.side {
            FeedSide::All => None,
            FeedSide::Live => Some(LIVE_PREFIX),
            FeedSide::Gone => Some(GONE_PREFIX),
        };
        if let Some(prefix) = partition_prefix {
            filters.push("begins_with(pk, :side)");
            values.insert(":side".to_owned(), s(prefix));
        }
        if let Some(entity_type) = &query.entity_type {
            filters.push("begins_with(sk, :type)");
            values.insert(":type".to_owned(), s(format!("{entity_type}#")));
        }
        let filter = (!filters.is_empty()).then(|| filters.join(" AND "));

        let mut kept: Vec<Candidate> = Vec::new();
        let mut last = None;
        let mut bytes = 0usize;
        let mut examined = 0usize;
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(FEED_INDEX)
                .key_condition_expression(&condition)
                .set_filter_expression(filter.clone())
                .set_expression_attribute_values(Some(values.clone()))
                .limit(INDEX_PAGE as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(backend)?;
            examined += out.scanned_count.max(0) as usize;
            for entry in out.items.unwrap_or_default() {
                let (Some(position), Some(entity_key)) = (
                    text(&entry, POSITION).and_then(|p| p.parse::<FeedPosition>().ok()),
                    text(&entry, "sk").and_then(EntityKey::parse),
                ) else {
                    continue;
                };
                let lagging = self.index_lag.is_some_and(|lag| {
                    entity_key.fingerprint() % 2 == 0 && position.written_at() > query.now - lag
                });
                if query.after == Some(position) || lagging {
                    continue;
                }
                let gone = is_deletion_record(&entry);
                let size = match gone {
                    true => entity_key.as_str().len() + CHANGE_OVERHEAD,
                    false => number(&entry, BYTES).unwrap_or(0).max(0) as usize,
                };
                let full =
                    kept.len() == query.limit || (!kept.is_empty() && bytes + size > query.budget);
                if full {
                    return Ok((kept, last, true));
                }
                last = Some(position);
                let expired = gone
                    && number(&entry, EXPIRES_AT).is_some_and(|at| at <= query.now.timestamp());
                let early = query
                    .written_after
                    .is_some_and(|after| position.written_at() <= after);
                if !expired && !early {
                    bytes += size;
                    kept.push(Candidate {
                        position,
                        key: entity_key,
                        gone,
                    });
                }
            }
            match out.last_evaluated_key {
                Some(next) if !next.is_empty() => {
                    if examined >= MAX_EXAMINED {
                        // Where the read stopped, even if it kept nothing of this page.
                        if let Some(p) = text(&next, POSITION).and_then(|p| p.parse().ok()) {
                            last = Some(p);
                        }
                        return Ok((kept, last, true));
                    }
                    start = Some(next);
                }
                _ => return Ok((kept, last, false)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidates(gone: &[bool]) -> Vec<Candidate> {
        gone.iter()
            .enumerate()
            .map(|(i, gone)| Candidate {
                position: FeedPosition::ORIGIN,
                key: EntityKey::new("doc", &i.to_string()).unwrap(),
                gone: *gone,
            })
            .collect()
    }

    #[test]
    fn a_batch_read_holds_a_hundred_keys_and_a_deletion_record_takes_two() {
        let live = candidates(&[false; 150]);
        let sizes: Vec<usize> = chunks(&live).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [100, 50]);
        let gone = candidates(&[true; 60]);
        let sizes: Vec<usize> = chunks(&gone).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [50, 10]);
        let mut mixed = vec![false; 99];
        mixed.push(true);
        let sizes: Vec<usize> = chunks(&candidates(&mixed))
            .iter()
            .map(|c| c.len())
            .collect();
        assert_eq!(
            sizes,
            [99, 1],
            "the record and its entity do not fit the first read"
        );
        assert!(chunks(&[]).is_empty());
    }
}

//! What a run changes: each entity it yields is compared with what is stored and counted as
//! inserted, updated or kept; changed ones wait here for a full write batch, and the keys the
//! source reports removed wait for a full delete batch. The decision itself, [`classify`], is a
//! pure function of the stored record and the new content.

use super::seen::SeenKeys;
use super::WRITE_BATCH;
use crate::entity::{Change, ContentHash, Entity, EntityKey, EntityWrite, StoredEntity};
use crate::feed::FeedPosition;
use crate::ids::JobId;
use crate::job::{Counts, TypeTally};
use std::collections::{BTreeMap, HashSet};
use tracing::warn;

/// What a run makes of an entity it yielded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Stored with the same content: counted as kept, never rewritten.
    Keep,
    /// Counted as `change`; written only when `write` (an entity this run already wrote before
    /// it restarted counts as what it was then, and is written again only if it changed since).
    Changed { change: Change, write: bool },
}

/// Decides, from what is stored under an entity's key, how the run counts it and whether it
/// writes it.
pub(crate) fn classify(stored: Option<&StoredEntity>, hash: &ContentHash, job: JobId) -> Verdict {
    match stored {
        None => Verdict::Changed {
            change: Change::Inserted,
            write: true,
        },
        Some(s) if s.written_by == Some(job) => Verdict::Changed {
            change: s.change.unwrap_or(Change::Updated),
            write: s.hash != *hash,
        },
        Some(s) if s.hash == *hash => Verdict::Keep,
        Some(_) => Verdict::Changed {
            change: Change::Updated,
            write: true,
        },
    }
}

/// A changed entity waiting for its batch; it gets its feed position when written.
#[derive(Debug, Clone)]
pub(super) struct PendingWrite {
    key: EntityKey,
    entity: Entity,
    hash: ContentHash,
    change: Change,
    /// Where the stored entity was added; `None` when this write adds it.
    added: Option<FeedPosition>,
}

impl PendingWrite {
    /// The write, made by `job` at `position`.
    pub(super) fn at(self, job: JobId, position: FeedPosition) -> EntityWrite {
        EntityWrite {
            key: self.key,
            entity: self.entity,
            hash: self.hash,
            job,
            change: self.change,
            position,
            added: self.added.unwrap_or(position),
        }
    }
}

/// A run's counts, the keys it has seen, and the writes and removals waiting for a batch.
#[derive(Debug, Default)]
pub(super) struct ChangeSet {
    pub(super) seen: SeenKeys,
    pub(super) counts: Counts,
    pub(super) tallies: BTreeMap<String, TypeTally>,
    /// Changed entities waiting for a full batch.
    writes: Vec<PendingWrite>,
    /// Keys reported removed (and stored) waiting for a full batch of deletes.
    removals: Vec<EntityKey>,
    /// Fingerprints of the keys this invocation deleted because the source reported them
    /// removed: yielded again later, they are written back.
    removed: HashSet<u128>,
}

impl ChangeSet {
    /// Carries on from a checkpoint's seen keys and counts.
    pub(super) fn resumed(
        seen: SeenKeys,
        counts: Counts,
        tallies: BTreeMap<String, TypeTally>,
    ) -> Self {
        Self {
            seen,
            counts,
            tallies,
            ..Self::default()
        }
    }

    /// The entities of a page still to compare, with their keys: those the run has not yielded
    /// before, and those reported removed earlier in this run and yielded again since (the last
    /// word wins, so they are not deleted). An entity without a usable key is counted failed.
    pub(super) fn admit(&mut self, entities: Vec<Entity>) -> Vec<(EntityKey, Entity)> {
        let mut fresh = Vec::with_capacity(entities.len());
        for entity in entities {
            match entity.key() {
                Ok(key) => {
                    let revived = match self.removals.iter().position(|k| *k == key) {
                        Some(i) => {
                            self.removals.swap_remove(i);
                            true
                        }
                        None => self.removed.remove(&key.fingerprint()),
                    };
                    if self.seen.insert(key.fingerprint()) || revived {
                        fresh.push((key, entity));
                    }
                }
                Err(reason) => {
                    self.counts.failed += 1;
                    warn!(entity_type = %entity.entity_type, reason, "entity skipped");
                }
            }
        }
        fresh
    }

    /// Counts an admitted entity against what is stored under its key, and queues its write.
    pub(super) fn record(
        &mut self,
        key: EntityKey,
        entity: Entity,
        stored: Option<&StoredEntity>,
        job: JobId,
    ) {
        let hash = entity.content_hash();
        let verdict = classify(stored, &hash, job);
        let tally = self
            .tallies
            .entry(key.entity_type().to_owned())
            .or_default();
        match verdict {
            Verdict::Keep => {
                self.counts.kept += 1;
                tally.kept += 1;
            }
            Verdict::Changed { change, write } => {
                match change {
                    Change::Inserted => {
                        self.counts.inserted += 1;
                        tally.inserted += 1;
                    }
                    Change::Updated => {
                        self.counts.updated += 1;
                        tally.updated += 1;
                    }
                }
                if write {
                    // An entity stored before the feed recorded additions was added before
                    // any position.
                    let added = stored.map(|s| s.added.unwrap_or(FeedPosition::ORIGIN));
                    self.writes.push(PendingWrite {
                        key,
                        entity,
                        hash,
                        change,
                        added,
                    });
                }
            }
        }
    }

    /// The writes that fill whole batches; the rest keeps waiting.
    pub(super) fn full_write_batches(&mut self) -> Vec<Vec<PendingWrite>> {
        let whole = self.writes.len() - self.writes.len() % WRITE_BATCH;
        let mut full: Vec<PendingWrite> = self.writes.drain(..whole).collect();
        let mut batches = Vec::with_capacity(whole / WRITE_BATCH);
        while !full.is_empty() {
            let rest = full.split_off(WRITE_BATCH);
            batches.push(std::mem::replace(&mut full, rest));
        }
        batches
    }

    /// Every write still waiting.
    pub(super) fn take_writes(&mut self) -> Vec<PendingWrite> {
        std::mem::take(&mut self.writes)
    }

    /// Of the keys a page reports removed, those not already waiting for deletion, once each
    /// and sorted; their waiting writes are dropped (the last word wins).
    pub(super) fn new_removals(&mut self, removed: Vec<EntityKey>) -> Vec<EntityKey> {
        let mut removed: Vec<EntityKey> = removed
            .into_iter()
            .filter(|key| !self.removals.contains(key))
            .collect();
        removed.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        removed.dedup();
        if !removed.is_empty() {
            self.writes.retain(|write| {
                removed
                    .binary_search_by(|k| k.as_str().cmp(write.key.as_str()))
                    .is_err()
            });
        }
        removed
    }

    /// Queues the delete of a stored key the source reported removed.
    pub(super) fn queue_removal(&mut self, key: EntityKey) {
        self.removed.insert(key.fingerprint());
        self.removals.push(key);
    }

    /// Whether the removals waiting fill a batch.
    pub(super) fn removals_full(&self) -> bool {
        self.removals.len() >= WRITE_BATCH
    }

    /// Every removal still waiting.
    pub(super) fn take_removals(&mut self) -> Vec<EntityKey> {
        std::mem::take(&mut self.removals)
    }

    /// Counts a deleted entity.
    pub(super) fn count_deleted(&mut self, key: &EntityKey) {
        self.counts.deleted += 1;
        self.tallies
            .entry(key.entity_type().to_owned())
            .or_default()
            .deleted += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(id: &str, text: &str) -> Entity {
        Entity {
            entity_type: "t".to_owned(),
            entity_id: id.to_owned(),
            title: id.to_owned(),
            updated_at: None,
            payload: serde_json::json!({ "text": text }),
        }
    }

    fn hash(text: &str) -> ContentHash {
        entity("1", text).content_hash()
    }

    fn stored(h: ContentHash, written_by: Option<JobId>, change: Option<Change>) -> StoredEntity {
        StoredEntity {
            hash: h,
            written_by,
            change,
            added: None,
        }
    }

    #[test]
    fn a_new_key_is_inserted_and_written() {
        let verdict = classify(None, &hash("a"), JobId::new());
        assert_eq!(
            verdict,
            Verdict::Changed {
                change: Change::Inserted,
                write: true
            }
        );
    }

    #[test]
    fn the_same_content_is_kept_and_not_written() {
        let earlier = stored(hash("a"), Some(JobId::new()), Some(Change::Inserted));
        assert_eq!(
            classify(Some(&earlier), &hash("a"), JobId::new()),
            Verdict::Keep
        );
        let unknown_writer = stored(hash("a"), None, None);
        assert_eq!(
            classify(Some(&unknown_writer), &hash("a"), JobId::new()),
            Verdict::Keep
        );
    }

    #[test]
    fn other_content_is_an_update() {
        let earlier = stored(hash("a"), Some(JobId::new()), Some(Change::Inserted));
        assert_eq!(
            classify(Some(&earlier), &hash("b"), JobId::new()),
            Verdict::Changed {
                change: Change::Updated,
                write: true
            }
        );
    }

    #[test]
    fn what_this_job_wrote_before_a_restart_counts_as_what_it_was() {
        let job = JobId::new();
        let inserted = stored(hash("a"), Some(job), Some(Change::Inserted));
        assert_eq!(
            classify(Some(&inserted), &hash("a"), job),
            Verdict::Changed {
                change: Change::Inserted,
                write: false
            },
            "replayed unchanged: an insert again, not rewritten"
        );
        assert_eq!(
            classify(Some(&inserted), &hash("b"), job),
            Verdict::Changed {
                change: Change::Inserted,
                write: true
            },
            "changed since this job wrote it: still an insert, written again"
        );
        let unmarked = stored(hash("a"), Some(job), None);
        assert_eq!(
            classify(Some(&unmarked), &hash("a"), job),
            Verdict::Changed {
                change: Change::Updated,
                write: false
            }
        );
    }

    #[test]
    fn a_key_yielded_twice_is_compared_once() {
        let mut changes = ChangeSet::default();
        let fresh = changes.admit(vec![entity("1", "a"), entity("1", "b"), entity("2", "c")]);
        assert_eq!(fresh.len(), 2);
        assert!(changes.admit(vec![entity("2", "c")]).is_empty());
    }

    #[test]
    fn writes_leave_in_whole_batches_and_a_removal_drops_its_waiting_write() {
        let mut changes = ChangeSet::default();
        let job = JobId::new();
        let n = WRITE_BATCH * 2 + 3;
        let entities = (0..n).map(|i| entity(&i.to_string(), "x")).collect();
        for (key, entity) in changes.admit(entities) {
            changes.record(key, entity, None, job);
        }
        assert_eq!(changes.counts.inserted, n as u64);
        let batches = changes.full_write_batches();
        assert_eq!(batches.len(), 2);
        assert!(batches.iter().all(|b| b.len() == WRITE_BATCH));

        let waiting: Vec<EntityKey> = changes
            .writes
            .iter()
            .map(|w| w.key.clone())
            .take(2)
            .collect();
        let removed = changes.new_removals(vec![
            waiting[0].clone(),
            waiting[0].clone(),
            waiting[1].clone(),
        ]);
        assert_eq!(removed.len(), 2, "reported twice, removed once");
        assert_eq!(changes.take_writes().len(), 1);
    }

    #[test]
    fn a_key_removed_then_yielded_again_is_compared_again() {
        let mut changes = ChangeSet::default();
        let key = entity("1", "a").key().unwrap();
        assert_eq!(changes.admit(vec![entity("1", "a")]).len(), 1);
        changes.queue_removal(key.clone());
        assert_eq!(
            changes.admit(vec![entity("1", "a")]).len(),
            1,
            "the last word wins: yielded again after its removal"
        );
        assert!(changes.take_removals().is_empty());
    }
}

//! Delete-by-absence: after a full sync's stream has ended, every stored entity the run did not
//! see is gone from the source and is deleted, a page of stored keys at a time (a keys-only
//! read, no write for what stays), counting how many of each type remain.

use super::run::Run;
use super::{Handled, SyncError, WRITE_BATCH};
use crate::entity::EntityKey;
use std::collections::{BTreeMap, HashSet};

/// How far delete-by-absence has come through the stored keys.
#[derive(Debug, Default)]
pub(super) struct AbsenceSweep {
    /// The last stored key of the pages done; `None` before the first.
    pub(super) after: Option<String>,
    /// Per type, how many stored entities were seen and so stay.
    pub(super) remaining: BTreeMap<String, u64>,
    /// Fingerprints of the keys of the current page already counted as deleted (see
    /// `Checkpoint::counted_deletes`).
    pub(super) counted: HashSet<u128>,
}

impl Run<'_> {
    /// Deletes every stored entity the run did not see. `Some` when the run handed over
    /// part-way.
    ///
    /// The deletes of a page are counted, and checkpointed at the page's start, before they are
    /// made: a run that dies after them resumes at that page, where its deleted keys are gone
    /// and the ones still there are deleted without being counted again.
    pub(super) async fn delete_unseen(&mut self) -> Result<Option<Handled>, SyncError> {
        loop {
            if let Some(handled) = self.between_pages().await? {
                return Ok(Some(handled));
            }
            let page = self
                .platform
                .entities
                .keys(self.connection_id(), self.sweep.after.as_deref())
                .await?;
            let mut kept: BTreeMap<String, u64> = BTreeMap::new();
            let mut unseen: Vec<EntityKey> = Vec::new();
            let mut uncounted = false;
            for key in page.keys {
                let fingerprint = key.fingerprint();
                if self.changes.seen.contains(fingerprint) {
                    *kept.entry(key.entity_type().to_owned()).or_default() += 1;
                    continue;
                }
                if self.sweep.counted.insert(fingerprint) {
                    uncounted = true;
                    self.changes.count_deleted(&key);
                }
                unseen.push(key);
            }
            if uncounted {
                self.save_checkpoint(true).await?;
            }
            for batch in unseen.chunks(WRITE_BATCH) {
                self.platform
                    .entities
                    .delete(self.connection_id(), batch)
                    .await?;
            }
            self.sweep.counted.clear();
            for (entity_type, n) in kept {
                *self.sweep.remaining.entry(entity_type).or_default() += n;
            }
            self.pages += 1;
            match page.next {
                Some(next) => self.sweep.after = Some(next),
                None => break,
            }
        }
        Ok(None)
    }
}

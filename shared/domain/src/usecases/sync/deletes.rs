//! Delete-by-absence: after a full sync's stream has ended, every stored entity the run did not
//! see is gone from the source and is deleted, a page of stored keys at a time (a keys-only
//! read, no write for what stays), counting how many of each type remain.
//!
//! The deletes of a page are counted, and checkpointed at the page's start, before they are
//! made: a run that dies after them resumes at that page, where its deleted keys are gone and
//! the ones still there are deleted without being counted again.

use super::changes::ChangeSet;
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

/// One page of stored keys, sorted.
#[derive(Debug)]
pub(super) struct SortedPage {
    /// The keys the run did not see: to delete.
    pub(super) unseen: Vec<EntityKey>,
    /// Whether some of them were counted as deleted just now: the count is checkpointed
    /// before they are deleted.
    pub(super) newly_counted: bool,
    /// Per type, the keys the run saw: they stay.
    kept: BTreeMap<String, u64>,
}

impl AbsenceSweep {
    /// Sorts a page of stored keys into those the run saw and those it did not, counting each
    /// of the latter as deleted once however often the page is sorted.
    pub(super) fn sort(&mut self, keys: Vec<EntityKey>, changes: &mut ChangeSet) -> SortedPage {
        let mut page = SortedPage {
            unseen: Vec::new(),
            newly_counted: false,
            kept: BTreeMap::new(),
        };
        for key in keys {
            let fingerprint = key.fingerprint();
            if changes.seen.contains(fingerprint) {
                *page.kept.entry(key.entity_type().to_owned()).or_default() += 1;
                continue;
            }
            if self.counted.insert(fingerprint) {
                page.newly_counted = true;
                changes.count_deleted(&key);
            }
            page.unseen.push(key);
        }
        page
    }

    /// Once a page's unseen keys are deleted: its kept ones are counted as remaining and the
    /// sweep moves on to `next`. `false` when that was the last page.
    pub(super) fn page_done(&mut self, page: SortedPage, next: Option<String>) -> bool {
        self.counted.clear();
        for (entity_type, n) in page.kept {
            *self.remaining.entry(entity_type).or_default() += n;
        }
        match next {
            Some(next) => {
                self.after = Some(next);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::Entity;

    fn key(entity_type: &str, id: &str) -> EntityKey {
        EntityKey::new(entity_type, id).unwrap()
    }

    fn seen(changes: &mut ChangeSet, entity_type: &str, id: &str) {
        let entity = Entity {
            entity_type: entity_type.to_owned(),
            entity_id: id.to_owned(),
            title: id.to_owned(),
            updated_at: None,
            payload: serde_json::json!({}),
        };
        assert_eq!(changes.admit(vec![entity]).len(), 1);
    }

    #[test]
    fn unseen_keys_are_deleted_and_counted_once_even_when_a_page_is_sorted_again() {
        let mut changes = ChangeSet::default();
        seen(&mut changes, "a", "1");
        let mut sweep = AbsenceSweep::default();
        let keys = || vec![key("a", "1"), key("a", "2"), key("b", "3")];

        let page = sweep.sort(keys(), &mut changes);
        assert_eq!(page.unseen, vec![key("a", "2"), key("b", "3")]);
        assert!(page.newly_counted);
        assert_eq!(changes.counts.deleted, 2);

        // The run died after counting and resumed at the same page.
        let again = sweep.sort(keys(), &mut changes);
        assert_eq!(again.unseen.len(), 2, "still stored, so deleted again");
        assert!(!again.newly_counted);
        assert_eq!(changes.counts.deleted, 2, "not counted twice");

        assert!(sweep.page_done(again, Some("b#3".into())));
        assert_eq!(sweep.after.as_deref(), Some("b#3"));
        assert_eq!(sweep.remaining.get("a"), Some(&1));
        assert!(sweep.counted.is_empty());
        let last = sweep.sort(vec![key("a", "1")], &mut changes);
        assert!(!sweep.page_done(last, None));
        assert_eq!(sweep.remaining.get("a"), Some(&2));
    }
}

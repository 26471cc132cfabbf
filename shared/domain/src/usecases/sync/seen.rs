//! The keys a run has seen, 16 bytes each (their fingerprints): to count an entity yielded twice
//! once, and, after a full sync, to tell which stored entities the source no longer has. When a
//! run continues in another invocation they are persisted with its checkpoint in chunks that fit
//! a DynamoDB item, appending only what was added since the last checkpoint.

use std::collections::HashSet;

const KEY_BYTES: usize = 16;
/// Keys per stored chunk: 320 KB, inside DynamoDB's 400 KB item limit with room for the key.
pub const SEEN_CHUNK_KEYS: usize = 20_000;
/// The largest chunk [`crate::ports::JobStore::put_seen_chunk`] is given.
pub const SEEN_CHUNK_BYTES: usize = SEEN_CHUNK_KEYS * KEY_BYTES;

#[derive(Debug, Default)]
pub(crate) struct SeenKeys {
    all: HashSet<u128>,
    /// Added since the last persisted chunk, in insertion order.
    unsaved: Vec<u128>,
    /// Chunks persisted so far.
    chunks: u32,
}

impl SeenKeys {
    /// From a checkpoint's chunks; `None` when one is not a whole number of keys.
    pub fn restore(chunks: &[Vec<u8>]) -> Option<Self> {
        let mut all = HashSet::new();
        for chunk in chunks {
            if chunk.len() % KEY_BYTES != 0 {
                return None;
            }
            for key in chunk.chunks_exact(KEY_BYTES) {
                all.insert(u128::from_be_bytes(key.try_into().ok()?));
            }
        }
        Some(Self {
            all,
            unsaved: Vec::new(),
            chunks: u32::try_from(chunks.len()).ok()?,
        })
    }

    /// `false` when the key was already seen in this run.
    pub fn insert(&mut self, fingerprint: u128) -> bool {
        let new = self.all.insert(fingerprint);
        if new {
            self.unsaved.push(fingerprint);
        }
        new
    }

    pub fn contains(&self, fingerprint: u128) -> bool {
        self.all.contains(&fingerprint)
    }

    pub fn chunks(&self) -> u32 {
        self.chunks
    }

    /// The chunks still to persist, each with the index it is stored under.
    pub fn unsaved_chunks(&self) -> Vec<(u32, Vec<u8>)> {
        self.unsaved
            .chunks(SEEN_CHUNK_KEYS)
            .zip(self.chunks..)
            .map(|(keys, index)| (index, keys.iter().flat_map(|k| k.to_be_bytes()).collect()))
            .collect()
    }

    /// After every chunk of [`SeenKeys::unsaved_chunks`] was stored.
    pub fn mark_saved(&mut self) {
        self.chunks += self.unsaved.chunks(SEEN_CHUNK_KEYS).count() as u32;
        self.unsaved.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_refused_and_chunks_round_trip() {
        let mut seen = SeenKeys::default();
        let count = SEEN_CHUNK_KEYS + 5;
        for k in 0..count as u128 {
            assert!(seen.insert(k * 7919));
        }
        assert!(!seen.insert(7919));
        let chunks = seen.unsaved_chunks();
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].0, 0);
        assert_eq!(chunks[0].1.len(), SEEN_CHUNK_BYTES);
        assert_eq!(chunks[1], (1, chunks[1].1.clone()));
        seen.mark_saved();
        assert_eq!(seen.chunks(), 2);
        assert!(seen.unsaved_chunks().is_empty());

        assert!(seen.insert(1));
        assert_eq!(
            seen.unsaved_chunks()[0].0,
            2,
            "appended after the saved ones"
        );

        let bytes: Vec<Vec<u8>> = chunks.into_iter().map(|(_, b)| b).collect();
        let restored = SeenKeys::restore(&bytes).unwrap();
        assert_eq!(restored.chunks(), 2);
        assert!(restored.contains(7919) && restored.contains((count as u128 - 1) * 7919));
        assert!(!restored.contains(1));
        assert!(SeenKeys::restore(&[vec![0; 15]]).is_none());
    }
}

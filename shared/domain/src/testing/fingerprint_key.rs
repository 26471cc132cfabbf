//! The fingerprint key in memory: a fixed key, how often it was asked for, and a switch that
//! makes it unavailable (a missing or unreadable secret).

use super::injected;
use crate::fingerprint::{FingerprintKey, FingerprintKeyError, Fingerprinter};
use async_trait::async_trait;
use secrecy::SecretString;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

pub struct MemoryFingerprintKey {
    key: SecretString,
    reads: AtomicUsize,
    unavailable: AtomicBool,
}

impl Default for MemoryFingerprintKey {
    fn default() -> Self {
        Self::with_key("memory-fingerprint-key-0123456789abcdef")
    }
}

impl MemoryFingerprintKey {
    pub fn with_key(key: &str) -> Self {
        Self {
            key: SecretString::from(key.to_owned()),
            reads: AtomicUsize::new(0),
            unavailable: AtomicBool::new(false),
        }
    }

    /// How many times a use case asked for the key.
    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }

    /// From now on the key cannot be read.
    pub fn make_unavailable(&self) {
        self.unavailable.store(true, Ordering::SeqCst);
    }

    /// The fingerprint a keyed create of `body` stores, for arranging records.
    pub fn fingerprint(&self, body: &serde_json::Value) -> String {
        Fingerprinter::new(&self.key)
            .expect("the fake's key is long enough")
            .fingerprint(body)
    }
}

#[async_trait]
impl FingerprintKey for MemoryFingerprintKey {
    async fn fingerprinter(&self) -> Result<Fingerprinter, FingerprintKeyError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(FingerprintKeyError::Backend(injected("fingerprint key")));
        }
        Fingerprinter::new(&self.key)
    }
}

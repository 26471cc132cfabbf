//! The sync queue: records what was sent, and with which delay.

use super::{injected, lock};
use crate::job::SyncMessage;
use crate::ports::{QueueError, SyncQueue};
use async_trait::async_trait;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The sync queue: records what was sent.
#[derive(Default)]
pub struct MemoryQueue {
    messages: Mutex<Vec<SyncMessage>>,
    delays: Mutex<Vec<Option<Duration>>>,
    fail: AtomicBool,
}

impl MemoryQueue {
    /// Makes every enqueue fail until switched off.
    pub fn fail_enqueue(&self, fail: bool) {
        self.fail.store(fail, Ordering::SeqCst);
    }

    pub fn messages(&self) -> Vec<SyncMessage> {
        lock(&self.messages).clone()
    }

    /// The delay of each message, in the order they were sent.
    pub fn delays(&self) -> Vec<Option<Duration>> {
        lock(&self.delays).clone()
    }

    /// Takes the messages sent so far, as a consumer would.
    pub fn drain(&self) -> Vec<SyncMessage> {
        lock(&self.delays).clear();
        std::mem::take(&mut *lock(&self.messages))
    }
}

#[async_trait]
impl SyncQueue for MemoryQueue {
    async fn enqueue(&self, message: &SyncMessage) -> Result<(), QueueError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(QueueError(injected("enqueue")));
        }
        lock(&self.messages).push(message.clone());
        lock(&self.delays).push(None);
        Ok(())
    }

    async fn enqueue_after(
        &self,
        message: &SyncMessage,
        delay: Duration,
    ) -> Result<(), QueueError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(QueueError(injected("enqueue_after")));
        }
        lock(&self.messages).push(message.clone());
        lock(&self.delays).push(Some(delay));
        Ok(())
    }
}

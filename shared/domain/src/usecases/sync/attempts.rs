//! A run that keeps failing — before its first page (a vault or store failure, an unreadable
//! checkpoint, credentials that cannot be resolved) or later without saving any progress — is
//! tried again a bounded number of times, then its job fails: it is never re-queued forever,
//! and never reaches the dead-letter queue, since each attempt consumes its message and queues
//! the next one itself, with a backoff. The count is kept on the job and starts again whenever
//! the run saves its state (a hand-over or a checkpoint): a long run that makes progress is
//! never failed for a few failures spread over hours.
//!
//! Lasting causes get one retry; transient ones (a throttled or unavailable store or vault)
//! more, further apart. Both bounds stay below the queue's `maxReceiveCount` (5), so that even
//! when the next message cannot be queued and SQS redelivers instead, the job fails before its
//! message is dead-lettered.

use super::SyncError;
use crate::ports::{StoreError, VaultError};
use std::time::Duration;

/// Failed attempts in a row after which a lasting cause fails the job.
pub const LASTING_ATTEMPTS: u32 = 2;
/// Failed attempts in a row after which a transient cause fails the job.
pub const TRANSIENT_ATTEMPTS: u32 = 4;
/// The queue's `maxReceiveCount` (template.yaml and the local bootstrap; an e2e test checks
/// both against it).
pub const QUEUE_MAX_RECEIVE_COUNT: u32 = 5;
const _: () = assert!(LASTING_ATTEMPTS < TRANSIENT_ATTEMPTS);
const _: () = assert!(TRANSIENT_ATTEMPTS < QUEUE_MAX_RECEIVE_COUNT);
/// The wait before the second attempt; it doubles with each further one.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(30);

/// Whether trying again later may help: the stores or the vault were throttled, timed out or
/// failed. Anything else (an unreadable checkpoint, missing or unresolvable credentials)
/// stays as it is until someone acts.
pub fn is_transient(e: &SyncError) -> bool {
    matches!(
        e,
        SyncError::Store(StoreError::Backend(_))
            | SyncError::Vault(VaultError::Backend(_))
            | SyncError::Queue(_)
    )
}

/// What to do after the `attempts`-th failed attempt in a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Try again after this long.
    Retry(Duration),
    /// The job fails.
    Fail,
}

pub fn next(e: &SyncError, attempts: u32) -> Next {
    let limit = if is_transient(e) {
        TRANSIENT_ATTEMPTS
    } else {
        LASTING_ATTEMPTS
    };
    if attempts >= limit {
        return Next::Fail;
    }
    Next::Retry(FIRST_BACKOFF * 2u32.saturating_pow(attempts.saturating_sub(1)))
}

/// The job's error once it failed: what went wrong and what to do, no secret (a `SyncError`
/// names no value).
pub fn failure_message(e: &SyncError, attempts: u32) -> String {
    let advice = if is_transient(e) {
        "the platform's storage kept failing; start a run again later"
    } else {
        match e {
            SyncError::Credentials(_) | SyncError::Vault(_) => {
                "check the connection's credentials (or its auth provider connection), then start a run again"
            }
            SyncError::RunState(_) => "start a new run: it begins afresh",
            _ => "start a run again; if it keeps failing, contact support",
        }
    };
    format!("the run failed {attempts} times in a row ({e}): {advice}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::BoxError;

    fn backend() -> BoxError {
        "throttled".into()
    }

    #[test]
    fn transient_causes_get_more_attempts_further_apart_and_all_stay_below_the_dlq() {
        let transient = SyncError::Store(StoreError::Backend(backend()));
        let lasting = SyncError::RunState("unreadable");
        assert_eq!(next(&transient, 1), Next::Retry(Duration::from_secs(30)));
        assert_eq!(next(&transient, 2), Next::Retry(Duration::from_secs(60)));
        assert_eq!(next(&transient, 3), Next::Retry(Duration::from_secs(120)));
        assert_eq!(next(&transient, 4), Next::Fail);
        assert_eq!(next(&lasting, 1), Next::Retry(Duration::from_secs(30)));
        assert_eq!(next(&lasting, 2), Next::Fail);
    }

    #[test]
    fn the_failure_says_what_to_do() {
        let message = failure_message(
            &SyncError::Credentials("the auth provider connection 'x' was not found".into()),
            2,
        );
        assert!(message.contains("failed 2 times in a row"), "{message}");
        assert!(
            message.contains("check the connection's credentials"),
            "{message}"
        );
    }
}

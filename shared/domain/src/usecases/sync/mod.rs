//! The sync worker's use case (DESIGN section 8): one delivery of a sync message runs, resumes,
//! defers or drops its job.
//!
//! A run claims its job with a lease, pulls the source's pages, compares each entity's content
//! hash with what is stored (one batched read per page, none when the connection had nothing),
//! writes only what changed in full 25-item batches, and after a full sync deletes what the
//! source no longer has. Before the invocation's deadline, or when the source asks to wait, it
//! saves its run state (the source's checkpoint, counts, seen keys) and hands over to a new message; the next delivery
//! resumes exactly there. Entities carry the job that wrote them, so a run that replays pages
//! after a crash counts them as what they were, not as kept.

pub mod attempts;
mod changes;
mod credentials;
mod deletes;
mod run;
mod seen;
pub(crate) mod summary;

pub use credentials::REFRESH_LEASE;
pub use seen::{SEEN_CHUNK_BYTES, SEEN_CHUNK_KEYS};

use super::Platform;
use crate::auth::AuthenticationRequest;
use crate::job::{JobClaim, JobStatus, Lease, SyncMessage};
use crate::ports::{QueueError, StoreError, VaultError, MAX_QUEUE_DELAY};
use crate::usecases::webhooks::outbox::{job_events, JobContext, Outbox};
use credentials::{Credential, Credentials};
use run::Run;
use std::time::Duration;
use tokio::time::Instant;
use tracing::{info, instrument, warn};

/// Items per BatchWriteItem: DynamoDB's maximum, and the only size the worker writes until the
/// last batch of a run (or of an invocation).
pub const WRITE_BATCH: usize = 25;
/// The longest a rate-limited run waits, whatever the upstream asks.
pub const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(24 * 3600);

/// How the worker paces a run.
///
/// The hand-over margin is derived here, once, from the times it must cover
/// ([`SyncSettings::deadline_margin`]): the last page of an invocation starts with at least the
/// margin left, runs for at most its page budget plus one upstream call (a source starts no call
/// once the budget is spent, and a call is cut at the request timeout), and the hand-over
/// follows.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// How long a claim or a progress write holds the job: a crashed run is taken over after.
    pub lease: Duration,
    /// Progress counts are written (and cancellation checked) at most this often.
    pub progress_interval: Duration,
    /// How long one page of a source may take ([`StreamRequest::page_budget`]).
    ///
    /// [`StreamRequest::page_budget`]: crate::stream::StreamRequest::page_budget
    pub page_budget: Duration,
    /// The longest one upstream call of a source may take: the sources' client's whole-request
    /// timeout (`sources::REQUEST_TIMEOUT`; the wiring passes it).
    pub request_timeout: Duration,
    /// What the hand-over itself needs: a token refresh, flushing the waiting writes, storing
    /// the seen-key chunks and the checkpoint, and the continuation message.
    pub hand_over: Duration,
    /// Hand over after this many pages per invocation, whatever the time (tests; 0 = no limit).
    pub max_pages_per_invocation: u32,
}

impl SyncSettings {
    /// A run hands over when the invocation has less than this left: a page, the call it may
    /// have started just before its budget ran out, and the hand-over.
    pub fn deadline_margin(&self) -> Duration {
        self.page_budget + self.request_timeout + self.hand_over
    }

    /// The page budget of a stream opened with `left` of the invocation remaining: the
    /// configured one, or less when the invocation's end leaves less once a call's timeout and
    /// the hand-over are set aside (an invocation that starts short of its margin).
    pub fn page_budget_within(&self, left: Duration) -> Duration {
        self.page_budget
            .min(left.saturating_sub(self.request_timeout + self.hand_over))
    }
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(120),
            progress_interval: Duration::from_secs(3),
            // With the two below, a 45 s hand-over margin.
            page_budget: Duration::from_secs(20),
            // `sources::REQUEST_TIMEOUT`, which the domain cannot name; the worker's wiring sets
            // it from there (and its tests check the two agree).
            request_timeout: Duration::from_secs(15),
            hand_over: Duration::from_secs(10),
            max_pages_per_invocation: 0,
        }
    }
}

/// What became of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// The job ended: completed, failed or cancelled.
    Finished(JobStatus),
    /// Checkpointed before the deadline; a continuation message carries on.
    Continued,
    /// The source asked to wait: checkpointed, and a delayed message carries on.
    Deferred,
    /// Another invocation holds the job: the message should come back later.
    Busy,
    /// Nothing to do: the job had ended, is gone, or was taken over by another run.
    Dropped,
}

impl Handled {
    /// Whether the queue should deliver the message again (Lambda: a batch item failure).
    pub fn retry(self) -> bool {
        matches!(self, Self::Busy)
    }
}

/// A failure of our own infrastructure: the message is retried and the next delivery resumes
/// from the last saved run state. Upstream failures are job outcomes, not this.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("state or entity store failed")]
    Store(#[from] StoreError),
    #[error("credential vault failed")]
    Vault(#[from] VaultError),
    #[error("sync queue failed")]
    Queue(#[from] QueueError),
    #[error("the job's saved run state is unreadable: {0}")]
    RunState(&'static str),
    #[error("the connection's credentials could not be resolved: {0}")]
    Credentials(String),
}

impl From<crate::usecases::secrets::SecretsError> for SyncError {
    fn from(e: crate::usecases::secrets::SecretsError) -> Self {
        match e {
            crate::usecases::secrets::SecretsError::Vault(e) => Self::Vault(e),
            crate::usecases::secrets::SecretsError::Store(e) => Self::Store(e),
        }
    }
}

/// The access token a run would start with, refreshed first when it is near its expiry, as
/// a run does (tests of a run's credentials, against the in-memory fakes and the real stack).
#[doc(hidden)]
pub async fn credentials_for_tests(
    platform: &Platform,
    org: crate::ids::OrganizationId,
    connection: crate::ids::ConnectionId,
    spec: &crate::catalog::SourceSpec,
) -> Option<String> {
    let credentials = Credentials {
        platform,
        org,
        connection,
        spec,
    };
    match credentials.for_run().await.ok()? {
        Credential::Ready {
            auth: AuthenticationRequest::OauthToken(t),
            ..
        } => Some(secrecy::ExposeSecret::expose_secret(&t.access_token).to_owned()),
        _ => None,
    }
}

/// Runs (or resumes, defers, drops) the job of one sync message. `deadline` is when the
/// invocation ends.
#[instrument(skip_all, fields(job_id = %message.job_id, source_connection_id = %message.connection_id))]
pub async fn run_sync(
    platform: &Platform,
    settings: &SyncSettings,
    message: &SyncMessage,
    deadline: Instant,
) -> Result<Handled, SyncError> {
    let now = platform.clock.now();
    if let Some(wait) = message
        .not_before
        .and_then(|at| (at - now).to_std().ok())
        .filter(|wait| !wait.is_zero())
    {
        platform
            .queue
            .enqueue_after(message, wait.min(MAX_QUEUE_DELAY))
            .await?;
        info!(
            wait_seconds = wait.as_secs(),
            "sync job still waiting for the source; message sent on"
        );
        return Ok(Handled::Deferred);
    }

    let lease = Lease {
        holder: uuid::Uuid::new_v4().to_string(),
        until: now + settings.lease,
    };
    // What the job's start reports (only read for an organization with subscriptions).
    let outbox = Outbox::of(platform, message.organization_id).await;
    let connection = match outbox.recording() {
        true => {
            platform
                .store
                .get_connection(message.organization_id, message.connection_id)
                .await?
        }
        false => None,
    };
    let context = match &connection {
        Some(c) => JobContext::of(platform, outbox, c).await,
        None => None,
    };
    let claim = platform
        .store
        .claim_job(
            message.connection_id,
            message.job_id,
            &lease,
            now,
            &job_events(context.as_ref()),
        )
        .await?;
    let (job, saved, claim) = match claim {
        JobClaim::Claimed { job, state, claim } => (*job, state, claim),
        JobClaim::Busy { until } => {
            info!(lease_until = %until, "sync job is being run by another invocation; message kept for later");
            return Ok(Handled::Busy);
        }
        JobClaim::Finished(status) => {
            info!(
                status = ?status,
                "sync job already ended; redelivered message dropped"
            );
            return Ok(Handled::Dropped);
        }
        JobClaim::Missing => {
            warn!("no such sync job (its connection was deleted?); message dropped");
            return Ok(Handled::Dropped);
        }
    };
    if job.organization_id != message.organization_id {
        warn!("the message names another organization than its job; the job's is used");
    }

    let mut run = Run::new(
        platform,
        settings,
        message,
        job,
        claim,
        lease.holder,
        deadline,
    );
    match run.execute(saved).await {
        Err(e) if !matches!(e, SyncError::Store(StoreError::LeaseLost)) => {
            failed_attempt(platform, message, &mut run, e).await
        }
        Err(e) => Err(e),
        ok => ok,
    }
}

/// Lets the next delivery resume at once rather than after the lease runs out.
async fn release(platform: &Platform, message: &SyncMessage, run: &Run<'_>) {
    if let Err(e) = platform
        .store
        .release_job(message.connection_id, message.job_id, &run.holder)
        .await
    {
        warn!(error = %e, "could not release the job after a failure; its lease runs out");
    }
}

/// A failed attempt: counted on its job, then tried again after a backoff (this message is
/// consumed, a delayed one queued) or, past the bound, the job fails.
async fn failed_attempt(
    platform: &Platform,
    message: &SyncMessage,
    run: &mut Run<'_>,
    error: SyncError,
) -> Result<Handled, SyncError> {
    let attempts = match platform
        .store
        .count_failed_attempt(message.connection_id, message.job_id, &run.holder)
        .await
    {
        Ok(attempts) => attempts,
        Err(e) => {
            warn!(error = %e, "could not count the failed attempt; the message is retried");
            release(platform, message, run).await;
            return Err(error);
        }
    };
    match attempts::next(&error, attempts) {
        attempts::Next::Fail => {
            warn!(error = %error, attempts, "the run kept failing; the job fails");
            run.fail(attempts::failure_message(&error, attempts)).await
        }
        attempts::Next::Retry(wait) => {
            warn!(error = %error, attempts, wait_seconds = wait.as_secs(), "the run failed; trying again later");
            release(platform, message, run).await;
            match platform.queue.enqueue_after(message, wait).await {
                Ok(()) => Ok(Handled::Deferred),
                Err(e) => {
                    warn!(error = %e, "could not queue the next attempt; the message is retried");
                    Err(error)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;

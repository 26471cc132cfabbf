//! The sync worker's use case (DESIGN section 8): one delivery of a sync message runs, resumes,
//! defers or drops its job.
//!
//! A run claims its job with a lease, pulls the source's pages, compares each entity's content
//! hash with what is stored (one batched read per page, none when the connection had nothing),
//! writes only what changed in full 25-item batches, and after a full sync deletes what the
//! source no longer has. Before the invocation's deadline, or when the source asks to wait, it
//! checkpoints (cursor, counts, seen keys) and hands over to a new message; the next delivery
//! resumes exactly there. Entities carry the job that wrote them, so a run that replays pages
//! after a crash counts them as what they were, not as kept.

mod credentials;
mod seen;

pub use credentials::REFRESH_LEASE;
pub use seen::{SEEN_CHUNK_BYTES, SEEN_CHUNK_KEYS};

use super::Platform;
use crate::auth::AuthenticationRequest;
use crate::catalog::AuthMethod;
use crate::connection::{
    ConnectionStatus, EntitySummary, EntityTypeStats, ErrorCategory, JobDetails, SourceConnection,
};
use crate::entity::{Change, EntityKey, EntityWrite};
use crate::job::{Checkpoint, Counts, Job, JobClaim, JobStatus, Lease, SyncMessage, TypeTally};
use crate::ports::{
    CursorUpdate, FinishedRun, QueueError, StoreError, VaultError, Versioned, MAX_QUEUE_DELAY,
};
use crate::stream::{EntityPage, StreamError, StreamRequest};
use chrono::{DateTime, Utc};
use credentials::{Credential, Credentials, Unusable};
use seen::SeenKeys;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;
use tokio::time::Instant;
use tracing::{info, instrument, warn};

/// Items per BatchWriteItem: DynamoDB's maximum, and the only size the worker writes until the
/// last batch of a run (or of an invocation).
pub const WRITE_BATCH: usize = 25;
/// The longest a rate-limited run waits, whatever the upstream asks.
pub const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(24 * 3600);
/// Read-modify-write attempts on the connection item before giving up.
const VERSION_ATTEMPTS: usize = 5;

/// How the worker paces a run.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// How long a claim or a progress write holds the job: a crashed run is taken over after.
    pub lease: Duration,
    /// Progress counts are written (and cancellation checked) at most this often.
    pub progress_interval: Duration,
    /// A run hands over when the invocation has less than this left.
    pub deadline_margin: Duration,
    /// Hand over after this many pages per invocation, whatever the time (tests; 0 = no limit).
    pub max_pages_per_invocation: u32,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(120),
            progress_interval: Duration::from_secs(3),
            // One upstream call may take 15 s; the hand-over writes need a few more.
            deadline_margin: Duration::from_secs(45),
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
/// from the last checkpoint. Upstream failures are job outcomes, not this.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("state or entity store failed")]
    Store(#[from] StoreError),
    #[error("credential vault failed")]
    Vault(#[from] VaultError),
    #[error("sync queue failed")]
    Queue(#[from] QueueError),
    #[error("the job's checkpoint is unreadable: {0}")]
    Checkpoint(&'static str),
    #[error("the connection's credentials could not be resolved: {0}")]
    Credentials(String),
}

/// The access token a run would start with, refreshed first when it is near its expiry, as
/// a run does (tests of the credential seam, against the in-memory fakes and the real stack).
#[doc(hidden)]
pub async fn credentials_for_tests(
    platform: &Platform,
    org: crate::ids::OrganizationId,
    connection: crate::ids::ConnectionId,
    spec: &crate::catalog::SourceSpec,
) -> Option<String> {
    let seam = Credentials {
        platform,
        org,
        connection,
        spec,
    };
    match seam.for_run().await.ok()? {
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
    let claim = platform
        .store
        .claim_job(message.connection_id, message.job_id, &lease, now)
        .await?;
    let (job, checkpoint) = match claim {
        JobClaim::Claimed { job, checkpoint } => (*job, checkpoint),
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

    let mut run = Run::new(platform, settings, message, job, lease.holder, deadline);
    let result = run.execute(checkpoint).await;
    if result.is_err() {
        // Let the next delivery resume at once rather than after the lease runs out.
        if let Err(e) = platform
            .store
            .release_job(message.connection_id, message.job_id, &run.holder)
            .await
        {
            warn!(error = %e, "could not release the job after a failure; its lease runs out");
        }
    }
    result
}

/// How a run ends.
pub(crate) enum Outcome {
    Completed,
    Cancelled,
    Failed {
        error: String,
        category: Option<ErrorCategory>,
    },
}

impl Outcome {
    pub(crate) fn status(&self) -> JobStatus {
        match self {
            Self::Completed => JobStatus::Completed,
            Self::Cancelled => JobStatus::Cancelled,
            Self::Failed { .. } => JobStatus::Failed,
        }
    }
}

/// One invocation's share of a run.
struct Run<'a> {
    platform: &'a Platform,
    settings: &'a SyncSettings,
    message: &'a SyncMessage,
    job: Job,
    holder: String,
    deadline: Instant,
    counts: Counts,
    tallies: BTreeMap<String, TypeTally>,
    seen: SeenKeys,
    store_was_empty: bool,
    resume: Option<Value>,
    stream_done: bool,
    /// Past the stream: the position in the stored keys, and the seen ones counted so far.
    deleting_after: Option<String>,
    remaining: BTreeMap<String, u64>,
    /// Changed entities waiting for a full batch.
    pending: Vec<EntityWrite>,
    /// Unseen keys waiting for a full batch of deletes.
    doomed: Vec<EntityKey>,
    /// Past the stream: fingerprints of the keys of the current page of stored keys that are
    /// already counted as deleted (see `Checkpoint::counted_deletes`).
    counted_deletes: HashSet<u128>,
    /// Fingerprints of the keys this invocation deleted because the source reported them
    /// removed: yielded again later, they are written back.
    removed: HashSet<u128>,
    /// Pages (of entities, then of stored keys) handled in this invocation.
    pages: u32,
    last_progress: Instant,
}

impl<'a> Run<'a> {
    fn new(
        platform: &'a Platform,
        settings: &'a SyncSettings,
        message: &'a SyncMessage,
        job: Job,
        holder: String,
        deadline: Instant,
    ) -> Self {
        Self {
            platform,
            settings,
            message,
            counts: Counts::default(),
            job,
            holder,
            deadline,
            tallies: BTreeMap::new(),
            seen: SeenKeys::default(),
            store_was_empty: false,
            resume: None,
            stream_done: false,
            deleting_after: None,
            remaining: BTreeMap::new(),
            pending: Vec::new(),
            doomed: Vec::new(),
            counted_deletes: HashSet::new(),
            removed: HashSet::new(),
            pages: 0,
            last_progress: Instant::now(),
        }
    }

    fn connection_id(&self) -> crate::ids::ConnectionId {
        self.job.source_connection_id
    }

    async fn execute(&mut self, checkpoint: Option<Checkpoint>) -> Result<Handled, SyncError> {
        let org = self.job.organization_id;
        let Some(current) = self
            .platform
            .store
            .get_versioned(org, self.connection_id())
            .await?
        else {
            let error = "the source connection no longer exists".to_owned();
            return self.fail(error).await;
        };
        let connection = current.value.clone();
        let resumed = checkpoint.is_some();
        match checkpoint {
            Some(checkpoint) => self.restore(checkpoint).await?,
            None => {
                self.store_was_empty = !self
                    .platform
                    .entities
                    .has_entities(self.connection_id())
                    .await?
            }
        }
        if self.job.status == JobStatus::Cancelling {
            return self
                .finish(Outcome::Cancelled, CursorUpdate::Keep, None)
                .await;
        }
        info!(
            short_name = %connection.short_name,
            resumed,
            trigger = ?self.job.trigger,
            force_full_sync = self.job.force_full_sync,
            "sync job started"
        );
        self.mark_syncing(current).await?;

        let platform = self.platform;
        let Some(spec) = platform.sources.spec(&connection.short_name) else {
            let error = format!("source '{}' is no longer offered", connection.short_name);
            return self.fail(error).await;
        };
        let spec_name = spec.name;
        let seam = Credentials {
            platform,
            org,
            connection: self.connection_id(),
            spec,
        };
        let (mut auth, mut refreshable) = match seam.for_run().await? {
            Credential::Ready { auth, refreshable } => (auth, refreshable),
            Credential::Unusable(why) => return self.credential_failed(why).await,
        };
        let method = match connection.auth.method {
            AuthMethod::AuthProvider => AuthMethod::AuthProvider,
            _ => auth.method(),
        };
        let since = if self.job.force_full_sync {
            None
        } else {
            self.platform
                .store
                .sync_cursor(self.connection_id())
                .await?
        };
        let open = |auth: AuthenticationRequest, resume: Option<Value>| {
            platform.sources.open_stream(
                &connection.short_name,
                StreamRequest {
                    auth,
                    config: connection.config.clone().unwrap_or_default(),
                    since: since.clone(),
                    resume,
                },
            )
        };
        let mut stream = match open(auth.clone(), self.resume.clone()) {
            Ok(stream) => stream,
            Err(e) => return self.stream_failed(e, spec_name, method).await,
        };

        if !self.stream_done {
            loop {
                if let Some(handled) = self.between_pages().await? {
                    return Ok(handled);
                }
                match stream.next_page().await {
                    Ok(Some(page)) => self.process(page).await?,
                    Ok(None) => break,
                    Err(StreamError::Rejected(m)) if refreshable => {
                        // Once per invocation: refresh, then retry the page from where the
                        // last processed one ended.
                        info!(reason = %m, "the source refused the token; refreshing once");
                        refreshable = false;
                        auth = match seam.after_rejection(&auth).await? {
                            Credential::Ready { auth, .. } => auth,
                            Credential::Unusable(Unusable::Failed { error, category }) => {
                                let error =
                                    format!("{spec_name} rejected the credentials: {m}; {error}");
                                let failed = Unusable::Failed { error, category };
                                return self.credential_failed(failed).await;
                            }
                            Credential::Unusable(wait) => {
                                return self.credential_failed(wait).await
                            }
                        };
                        stream = match open(auth.clone(), self.resume.clone()) {
                            Ok(stream) => stream,
                            Err(e) => return self.stream_failed(e, spec_name, method).await,
                        };
                    }
                    Err(e) => return self.stream_failed(e, spec_name, method).await,
                }
            }
            // Everything written before the stored keys are compared with the seen ones.
            self.flush().await?;
            self.stream_done = true;
        }
        let full = !stream.incremental();
        let remaining = match (full, self.store_was_empty) {
            (false, _) => None,
            // Whatever is stored, this run wrote and saw: nothing to compare, nothing to delete.
            (true, true) => Some(
                self.tallies
                    .iter()
                    .map(|(t, tally)| (t.clone(), tally.inserted + tally.updated))
                    .collect(),
            ),
            (true, false) => match self.delete_unseen().await? {
                Some(handled) => return Ok(handled),
                None => Some(std::mem::take(&mut self.remaining)),
            },
        };
        let cursor = stream.cursor();
        let update = cursor
            .as_ref()
            .map_or(CursorUpdate::Clear, CursorUpdate::Save);
        self.finish(Outcome::Completed, update, remaining.as_ref())
            .await
    }

    async fn restore(&mut self, checkpoint: Checkpoint) -> Result<(), SyncError> {
        let chunks = self
            .platform
            .store
            .seen_chunks(self.connection_id(), self.job.id, checkpoint.seen_chunks)
            .await?;
        if chunks.len() != checkpoint.seen_chunks as usize {
            return Err(SyncError::Checkpoint("a chunk of seen keys is missing"));
        }
        self.seen = SeenKeys::restore(&chunks)
            .ok_or(SyncError::Checkpoint("a chunk of seen keys is malformed"))?;
        self.counts = checkpoint.counts;
        self.tallies = checkpoint.tallies;
        self.store_was_empty = checkpoint.store_was_empty;
        self.resume = checkpoint.resume;
        self.stream_done = checkpoint.stream_done;
        self.deleting_after = checkpoint.deleting_after;
        self.remaining = checkpoint.remaining;
        self.counted_deletes = checkpoint
            .counted_deletes
            .iter()
            .map(|hex| u128::from_str_radix(hex, 16))
            .collect::<Result<_, _>>()
            .map_err(|_| SyncError::Checkpoint("a counted delete is malformed"))?;
        Ok(())
    }

    /// The connection shows `syncing` while its job runs (unless it is paused or awaiting auth).
    /// Written on the condition nothing changed since `current` was read; read again and
    /// retried on a conflict.
    async fn mark_syncing(&self, current: Versioned<SourceConnection>) -> Result<(), SyncError> {
        let job = JobDetails::from(&self.job);
        let store = &self.platform.store;
        let mut current = Some(current);
        for _ in 0..VERSION_ATTEMPTS {
            let Some(read) = current.take() else {
                return Ok(());
            };
            let mut connection = read.value.clone();
            if matches!(
                connection.status,
                ConnectionStatus::Active | ConnectionStatus::Error | ConnectionStatus::Syncing
            ) {
                connection.status = ConnectionStatus::Syncing;
            }
            connection
                .sync
                .get_or_insert_with(Default::default)
                .last_job = Some(job.clone());
            if connection == read.value {
                return Ok(());
            }
            match store.replace_connection(&connection, read.version).await {
                Err(StoreError::VersionConflict) => {
                    current = store
                        .get_versioned(self.job.organization_id, self.connection_id())
                        .await?;
                }
                other => return Ok(other?),
            }
        }
        Err(StoreError::VersionConflict.into())
    }

    /// A run that cannot get usable credentials: it fails, or waits for the token endpoint
    /// or the auth provider.
    async fn credential_failed(&mut self, why: Unusable) -> Result<Handled, SyncError> {
        match why {
            Unusable::Wait(wait) => self.hand_over(Some(wait)).await,
            Unusable::Failed { error, category } => {
                self.finish(
                    Outcome::Failed { error, category },
                    CursorUpdate::Keep,
                    None,
                )
                .await
            }
        }
    }

    /// Before each page: hand over near the deadline, write progress, stop when cancelled.
    async fn between_pages(&mut self) -> Result<Option<Handled>, SyncError> {
        if self.pages > 0 && self.budget_spent() {
            return self.hand_over(None).await.map(Some);
        }
        if self.last_progress.elapsed() >= self.settings.progress_interval {
            self.last_progress = Instant::now();
            let lease = Lease {
                holder: self.holder.clone(),
                until: self.platform.clock.now() + self.settings.lease,
            };
            let status = self
                .platform
                .store
                .record_progress(self.connection_id(), self.job.id, &lease, &self.counts)
                .await;
            match status {
                Ok(JobStatus::Cancelling) => {
                    info!("cancellation requested; stopping between pages");
                    return self
                        .finish(Outcome::Cancelled, CursorUpdate::Keep, None)
                        .await
                        .map(Some);
                }
                Ok(_) => {}
                Err(StoreError::LeaseLost) => {
                    warn!("another run took the job over; this one stops");
                    return Ok(Some(Handled::Dropped));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }

    fn budget_spent(&self) -> bool {
        let max = self.settings.max_pages_per_invocation;
        (max > 0 && self.pages >= max)
            || Instant::now() + self.settings.deadline_margin >= self.deadline
    }

    /// Compares the page with what is stored and queues what changed.
    async fn process(&mut self, page: EntityPage) -> Result<(), SyncError> {
        let mut fresh = Vec::with_capacity(page.entities.len());
        for entity in page.entities {
            match entity.key() {
                Ok(key) => {
                    // Reported removed earlier in this run and yielded again since: the last
                    // word wins, so it is not deleted (and is compared like any other).
                    let revived = match self.doomed.iter().position(|k| *k == key) {
                        Some(i) => {
                            self.doomed.swap_remove(i);
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
        let stored = if self.store_was_empty || fresh.is_empty() {
            Default::default()
        } else {
            let keys: Vec<EntityKey> = fresh.iter().map(|(key, _)| key.clone()).collect();
            self.platform
                .entities
                .stored(self.connection_id(), &keys)
                .await?
        };
        for (key, entity) in fresh {
            let hash = entity.content_hash();
            let (counted, write) = match stored.get(&key) {
                None => (Some(Change::Inserted), true),
                // Written by this run before it restarted: it counts as what it was.
                Some(s) if s.written_by == Some(self.job.id) => {
                    (Some(s.change.unwrap_or(Change::Updated)), s.hash != hash)
                }
                Some(s) if s.hash == hash => (None, false),
                Some(_) => (Some(Change::Updated), true),
            };
            let tally = self
                .tallies
                .entry(key.entity_type().to_owned())
                .or_default();
            match counted {
                None => {
                    self.counts.kept += 1;
                    tally.kept += 1;
                }
                Some(Change::Inserted) => {
                    self.counts.inserted += 1;
                    tally.inserted += 1;
                }
                Some(Change::Updated) => {
                    self.counts.updated += 1;
                    tally.updated += 1;
                }
            }
            if let (true, Some(change)) = (write, counted) {
                self.pending.push(EntityWrite {
                    key,
                    entity,
                    hash,
                    job: self.job.id,
                    change,
                });
            }
        }
        self.remove(page.removed).await?;
        self.resume = Some(page.checkpoint);
        self.pages += 1;
        while self.pending.len() >= WRITE_BATCH {
            let batch: Vec<EntityWrite> = self.pending.drain(..WRITE_BATCH).collect();
            self.platform
                .entities
                .write(self.connection_id(), &batch)
                .await?;
        }
        Ok(())
    }

    /// Queues for deletion what the source reports gone, if it is stored. The last word wins: a
    /// key yielded earlier in this run and reported removed since is deleted (its pending write
    /// dropped); one yielded again after its removal is kept (see `process`).
    async fn remove(&mut self, removed: Vec<EntityKey>) -> Result<(), SyncError> {
        let mut removed: Vec<EntityKey> = removed
            .into_iter()
            .filter(|key| !self.doomed.contains(key))
            .collect();
        // Reported twice in one page: deleted (and counted) once.
        removed.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        removed.dedup();
        if removed.is_empty() {
            return Ok(());
        }
        self.pending.retain(|write| {
            removed
                .binary_search_by(|k| k.as_str().cmp(write.key.as_str()))
                .is_err()
        });
        // Not skipped when the store was empty at the start: this run may have written them.
        let stored = self
            .platform
            .entities
            .stored(self.connection_id(), &removed)
            .await?;
        for key in removed.into_iter().filter(|key| stored.contains_key(key)) {
            self.removed.insert(key.fingerprint());
            self.doomed.push(key);
        }
        if self.doomed.len() >= WRITE_BATCH {
            self.delete_doomed().await?;
        }
        Ok(())
    }

    /// Writes and deletes whatever waits for a full batch.
    async fn flush(&mut self) -> Result<(), SyncError> {
        if !self.pending.is_empty() {
            let batch = std::mem::take(&mut self.pending);
            self.platform
                .entities
                .write(self.connection_id(), &batch)
                .await?;
        }
        self.delete_doomed().await
    }

    async fn delete_doomed(&mut self) -> Result<(), SyncError> {
        if self.doomed.is_empty() {
            return Ok(());
        }
        let keys = std::mem::take(&mut self.doomed);
        self.platform
            .entities
            .delete(self.connection_id(), &keys)
            .await?;
        self.counts.deleted += keys.len() as u64;
        for key in &keys {
            self.tallies
                .entry(key.entity_type().to_owned())
                .or_default()
                .deleted += 1;
        }
        Ok(())
    }

    /// After a full sync: deletes every stored entity the run did not see, counting in
    /// `remaining` how many of each type stay. `Some` when the run handed over part-way.
    ///
    /// The deletes of a page are counted, and checkpointed at the page's start, before they are
    /// made: a run that dies after them resumes at that page, where its deleted keys are gone
    /// and the ones still there are deleted without being counted again.
    async fn delete_unseen(&mut self) -> Result<Option<Handled>, SyncError> {
        loop {
            if let Some(handled) = self.between_pages().await? {
                return Ok(Some(handled));
            }
            let page = self
                .platform
                .entities
                .keys(self.connection_id(), self.deleting_after.as_deref())
                .await?;
            let mut kept: BTreeMap<String, u64> = BTreeMap::new();
            let mut doomed = Vec::new();
            let mut uncounted = false;
            for key in page.keys {
                let fingerprint = key.fingerprint();
                if self.seen.contains(fingerprint) {
                    *kept.entry(key.entity_type().to_owned()).or_default() += 1;
                    continue;
                }
                if self.counted_deletes.insert(fingerprint) {
                    uncounted = true;
                    self.counts.deleted += 1;
                    self.tallies
                        .entry(key.entity_type().to_owned())
                        .or_default()
                        .deleted += 1;
                }
                doomed.push(key);
            }
            if uncounted {
                self.save_checkpoint(true).await?;
            }
            for batch in doomed.chunks(WRITE_BATCH) {
                self.platform
                    .entities
                    .delete(self.connection_id(), batch)
                    .await?;
            }
            self.counted_deletes.clear();
            for (entity_type, n) in kept {
                *self.remaining.entry(entity_type).or_default() += n;
            }
            self.pages += 1;
            match page.next {
                Some(next) => self.deleting_after = Some(next),
                None => break,
            }
        }
        Ok(None)
    }

    /// Where the run stands, for the next invocation to resume from.
    fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            resume: self.resume.clone(),
            stream_done: self.stream_done,
            deleting_after: self.deleting_after.clone(),
            remaining: self.remaining.clone(),
            counts: self.counts,
            tallies: self.tallies.clone(),
            seen_chunks: self.seen.chunks(),
            store_was_empty: self.store_was_empty,
            counted_deletes: self
                .counted_deletes
                .iter()
                .map(|f| format!("{f:032x}"))
                .collect(),
        }
    }

    /// Stores the seen keys not stored yet, then the checkpoint; `keep`: the run goes on (its
    /// lease extended), else it hands the job over.
    async fn save_checkpoint(&mut self, keep: bool) -> Result<(), SyncError> {
        let keep_until = keep.then(|| self.platform.clock.now() + self.settings.lease);
        for (index, chunk) in self.seen.unsaved_chunks() {
            self.platform
                .store
                .put_seen_chunk(self.connection_id(), self.job.id, index, &chunk)
                .await?;
        }
        self.seen.mark_saved();
        self.platform
            .store
            .save_checkpoint(
                self.connection_id(),
                self.job.id,
                &self.holder,
                &self.checkpoint(),
                keep_until,
            )
            .await?;
        Ok(())
    }

    /// Checkpoints and sends a message that carries on, after `wait` when the source asked.
    async fn hand_over(&mut self, wait: Option<Duration>) -> Result<Handled, SyncError> {
        self.flush().await?;
        match self.save_checkpoint(false).await {
            Err(SyncError::Store(StoreError::LeaseLost)) => {
                warn!("another run took the job over before the checkpoint; this one stops");
                return Ok(Handled::Dropped);
            }
            other => other?,
        }
        let mut message = self.message.clone();
        message.not_before = None;
        let queue = &self.platform.queue;
        match wait {
            None => {
                queue.enqueue(&message).await?;
                info!(
                    inserted = self.counts.inserted,
                    updated = self.counts.updated,
                    kept = self.counts.kept,
                    "sync job checkpointed before the deadline; continues in a new invocation"
                );
                Ok(Handled::Continued)
            }
            Some(wait) => {
                // An upstream may ask for anything; a day is the longest a run waits.
                let wait = wait.min(MAX_RATE_LIMIT_WAIT);
                if wait > MAX_QUEUE_DELAY {
                    message.not_before = Some(self.platform.clock.now() + wait);
                }
                queue
                    .enqueue_after(&message, wait.min(MAX_QUEUE_DELAY))
                    .await?;
                info!(
                    wait_seconds = wait.as_secs(),
                    "source rate-limited the sync; job deferred"
                );
                Ok(Handled::Deferred)
            }
        }
    }

    async fn stream_failed(
        &mut self,
        e: StreamError,
        source_name: &str,
        method: AuthMethod,
    ) -> Result<Handled, SyncError> {
        let (error, category) = match e {
            StreamError::RateLimited { wait } => return self.hand_over(Some(wait)).await,
            StreamError::Rejected(m) => (
                format!("{source_name} rejected the credentials: {m}"),
                Some(ErrorCategory::of_rejected(method)),
            ),
            StreamError::Upstream(m) | StreamError::Malformed(m) | StreamError::Unsupported(m) => {
                (format!("{source_name}: {m}"), None)
            }
        };
        self.finish(
            Outcome::Failed { error, category },
            CursorUpdate::Keep,
            None,
        )
        .await
    }

    /// Ends the run as failed, for a reason that is not the credentials'.
    async fn fail(&mut self, error: String) -> Result<Handled, SyncError> {
        let outcome = Outcome::Failed {
            error,
            category: None,
        };
        self.finish(outcome, CursorUpdate::Keep, None).await
    }

    /// Writes the outcome: the job, the connection's status and summaries, and the cursor.
    async fn finish(
        &mut self,
        outcome: Outcome,
        cursor: CursorUpdate<'_>,
        remaining: Option<&BTreeMap<String, u64>>,
    ) -> Result<Handled, SyncError> {
        self.flush().await?;
        let now = self.platform.clock.now();
        let job = &mut self.job;
        job.status = outcome.status();
        job.completed_at = Some(now);
        job.duration_seconds = job
            .started_at
            .map(|started| (now - started).num_milliseconds().max(0) as f64 / 1000.0);
        job.set_counts(&self.counts);
        if let Outcome::Failed { error, category } = &outcome {
            job.error = Some(error.clone());
            job.error_category = *category;
        }
        let store = &self.platform.store;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let current = store
                .get_versioned(self.job.organization_id, self.connection_id())
                .await?;
            let updated = current.map(|c| {
                let after =
                    connection_after(&c.value, &self.job, &outcome, &self.tallies, remaining, now);
                (after, c.version)
            });
            let run = FinishedRun {
                job: &self.job,
                holder: &self.holder,
                connection: updated.as_ref().map(|(c, v)| (c, *v)),
                cursor,
            };
            match store.finish_job(run).await {
                Ok(()) => break,
                Err(StoreError::VersionConflict) if attempt < VERSION_ATTEMPTS => continue,
                Err(StoreError::LeaseLost) => {
                    warn!("another run took the job over before it finished; this one stops");
                    return Ok(Handled::Dropped);
                }
                Err(e) => return Err(e.into()),
            }
        }
        if self.seen.chunks() > 0 {
            if let Err(e) = store
                .delete_seen_chunks(self.connection_id(), self.job.id)
                .await
            {
                warn!(error = %e, "could not delete the job's checkpoint chunks");
            }
        }
        let c = self.counts;
        info!(
            status = ?self.job.status,
            inserted = c.inserted,
            updated = c.updated,
            deleted = c.deleted,
            kept = c.kept,
            failed = c.failed,
            duration_seconds = self.job.duration_seconds,
            error = self.job.error.as_deref(),
            "sync job finished"
        );
        Ok(Handled::Finished(self.job.status))
    }
}

/// The connection once a run has ended: status (unless paused or awaiting auth), the sync
/// summary and the entity summary.
pub(crate) fn connection_after(
    before: &SourceConnection,
    job: &Job,
    outcome: &Outcome,
    tallies: &BTreeMap<String, TypeTally>,
    remaining: Option<&BTreeMap<String, u64>>,
    now: DateTime<Utc>,
) -> SourceConnection {
    let mut c = before.clone();
    let owned_status = matches!(
        c.status,
        ConnectionStatus::Active | ConnectionStatus::Error | ConnectionStatus::Syncing
    );
    if owned_status {
        match outcome {
            Outcome::Completed | Outcome::Cancelled => {
                c.status = ConnectionStatus::Active;
                c.error_category = None;
                c.error_message = None;
            }
            Outcome::Failed {
                error,
                category: Some(category),
            } => {
                c.status = ConnectionStatus::NeedsReauth;
                c.error_category = Some(*category);
                c.error_message = Some(error.clone());
                c.auth.authenticated = false;
            }
            Outcome::Failed {
                error,
                category: None,
            } => {
                c.status = ConnectionStatus::Error;
                c.error_category = None;
                c.error_message = Some(error.clone());
            }
        }
    }
    let sync = c.sync.get_or_insert_with(Default::default);
    sync.total_runs += 1;
    match outcome {
        Outcome::Completed => sync.successful_runs += 1,
        Outcome::Failed { .. } => sync.failed_runs += 1,
        Outcome::Cancelled => {}
    }
    sync.last_job = Some(JobDetails::from(job));
    c.entities = Some(entity_summary(
        c.entities.take().unwrap_or_default(),
        tallies,
        remaining,
        now,
    ));
    c
}

/// After a full sync the counts are what the run found stored; otherwise the earlier counts plus
/// what the run inserted, minus what it deleted. A type's `last_updated` moves when the run
/// changed something of it.
fn entity_summary(
    before: EntitySummary,
    tallies: &BTreeMap<String, TypeTally>,
    remaining: Option<&BTreeMap<String, u64>>,
    now: DateTime<Utc>,
) -> EntitySummary {
    let mut by_type = before.by_type;
    match remaining {
        Some(remaining) => {
            by_type.retain(|t, _| remaining.contains_key(t));
            for (t, count) in remaining {
                by_type
                    .entry(t.clone())
                    .or_insert(EntityTypeStats {
                        count: 0,
                        last_updated: None,
                    })
                    .count = *count;
            }
        }
        None => {
            for (t, tally) in tallies {
                let stats = by_type.entry(t.clone()).or_insert(EntityTypeStats {
                    count: 0,
                    last_updated: None,
                });
                stats.count = (stats.count + tally.inserted).saturating_sub(tally.deleted);
            }
        }
    }
    for (t, stats) in by_type.iter_mut() {
        if tallies.get(t).is_some_and(TypeTally::changed) {
            stats.last_updated = Some(now);
        }
    }
    by_type.retain(|_, stats| stats.count > 0);
    EntitySummary {
        total_entities: by_type.values().map(|s| s.count).sum(),
        by_type,
    }
}

#[cfg(test)]
mod tests;

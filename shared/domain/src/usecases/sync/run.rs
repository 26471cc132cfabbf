//! One invocation's share of a run: the page loop, the checks between pages (deadline,
//! progress, cancellation), the hand-over to the next invocation and the finishing write.

use super::changes::{ChangeSet, PendingWrite};
use super::credentials::{Credential, Credentials, Unusable};
use super::deletes::AbsenceSweep;
use super::seen::SeenKeys;
use super::summary::{end_job, record_ending, retry_on_version_conflict, Ending, Outcome};
use super::{Handled, SyncError, SyncSettings, MAX_RATE_LIMIT_WAIT, WRITE_BATCH};
use crate::auth::AuthenticationRequest;
use crate::catalog::AuthMethod;
use crate::connection::{ConnectionStatus, JobDetails, SourceConnection};
use crate::error_category::ErrorCategory;
use crate::feed::{FeedMark, Positions, Removal};
use crate::ids::ConnectionId;
use crate::job::{Job, JobStatus, Lease, RunState, SyncMessage};
use crate::ports::{CursorUpdate, StoreError, Versioned, MAX_QUEUE_DELAY};
use crate::stream::{EntityPage, StreamError, StreamRequest};
use crate::usecases::Platform;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;
use tracing::{info, warn};

/// One invocation's share of a run.
pub(super) struct Run<'a> {
    platform: &'a Platform,
    settings: &'a SyncSettings,
    message: &'a SyncMessage,
    job: Job,
    pub(super) holder: String,
    deadline: Instant,
    changes: ChangeSet,
    /// The connection had no entity when the run began: nothing to compare against.
    store_was_empty: bool,
    /// The source's checkpoint after the last page processed (where its stream resumes).
    stream_checkpoint: Option<Value>,
    stream_done: bool,
    /// Past the stream: delete-by-absence's progress.
    sweep: AbsenceSweep,
    /// Pages (of entities, then of stored keys) handled in this invocation.
    pages: u32,
    last_progress: Instant,
    /// The feed positions of this invocation's writes.
    positions: Positions,
    /// When the job's newest feed mark may have been recorded: a new one is recorded only
    /// the feed's settle delay after it, so the one before is always settled.
    last_mark_at: chrono::DateTime<chrono::Utc>,
}

impl<'a> Run<'a> {
    pub(super) fn new(
        platform: &'a Platform,
        settings: &'a SyncSettings,
        message: &'a SyncMessage,
        job: Job,
        claim: u16,
        holder: String,
        deadline: Instant,
    ) -> Self {
        Self {
            positions: Positions::new(job.id, claim),
            // An earlier invocation's mark was recorded before this one began.
            last_mark_at: platform.clock.now(),
            platform,
            settings,
            message,
            job,
            holder,
            deadline,
            changes: ChangeSet::default(),
            store_was_empty: false,
            stream_checkpoint: None,
            stream_done: false,
            sweep: AbsenceSweep::default(),
            pages: 0,
            last_progress: Instant::now(),
        }
    }

    fn connection_id(&self) -> ConnectionId {
        self.job.source_connection_id
    }

    pub(super) async fn execute(&mut self, saved: Option<RunState>) -> Result<Handled, SyncError> {
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
        let resumed = saved.is_some();
        match saved {
            Some(saved) => self.restore(saved).await?,
            None => {
                self.store_was_empty = !self
                    .platform
                    .entities
                    .has_entities(self.connection_id())
                    .await?
            }
        }
        // A paused connection runs nothing (its pause stops the job; this covers a pause whose
        // stop was lost).
        if self.job.status == JobStatus::Cancelling
            || connection.status == ConnectionStatus::Inactive
        {
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
        let credentials = Credentials {
            platform,
            org,
            connection: self.connection_id(),
            spec,
        };
        let (mut auth, mut refreshable) = match credentials.for_run().await? {
            Credential::Ready { auth, refreshable } => (auth, refreshable),
            Credential::Unusable(why) => return self.credential_failed(why).await,
        };
        let method = match connection.auth.method {
            AuthMethod::AuthProvider => AuthMethod::AuthProvider,
            _ => auth.method(),
        };
        let cursor = if self.job.force_full_sync {
            None
        } else {
            self.platform
                .store
                .sync_cursor(self.connection_id())
                .await?
        };
        let (settings, deadline) = (self.settings, self.deadline);
        let open = |auth: AuthenticationRequest, checkpoint: Option<Value>| {
            let left = deadline.saturating_duration_since(Instant::now());
            platform.sources.open_stream(
                &connection.short_name,
                StreamRequest {
                    auth,
                    config: connection.config.clone().unwrap_or_default(),
                    cursor: cursor.clone(),
                    checkpoint,
                    page_budget: settings.page_budget_within(left),
                },
            )
        };
        let mut stream = match open(auth.clone(), self.stream_checkpoint.clone()) {
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
                        auth = match credentials.after_rejection(&auth).await? {
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
                        stream = match open(auth.clone(), self.stream_checkpoint.clone()) {
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
                self.changes
                    .tallies
                    .iter()
                    .map(|(t, tally)| (t.clone(), tally.inserted + tally.updated))
                    .collect(),
            ),
            (true, false) => match self.delete_unseen().await? {
                Some(handled) => return Ok(handled),
                None => Some(std::mem::take(&mut self.sweep.remaining)),
            },
        };
        let cursor = stream.cursor();
        let update = cursor
            .as_ref()
            .map_or(CursorUpdate::Clear, CursorUpdate::Save);
        self.finish(Outcome::Completed, update, remaining.as_ref())
            .await
    }

    async fn restore(&mut self, saved: RunState) -> Result<(), SyncError> {
        let chunks = self
            .platform
            .store
            .seen_chunks(self.connection_id(), self.job.id, saved.seen_chunks)
            .await?;
        if chunks.len() != saved.seen_chunks as usize {
            return Err(SyncError::RunState("a chunk of seen keys is missing"));
        }
        let seen = SeenKeys::restore(&chunks)
            .ok_or(SyncError::RunState("a chunk of seen keys is malformed"))?;
        self.changes = ChangeSet::resumed(seen, saved.counts, saved.tallies);
        self.store_was_empty = saved.store_was_empty;
        self.stream_checkpoint = saved.stream_checkpoint;
        self.stream_done = saved.stream_done;
        self.sweep.after = saved.deleting_after;
        self.sweep.remaining = saved.remaining;
        self.sweep.counted = saved
            .counted_deletes
            .iter()
            .map(|hex| u128::from_str_radix(hex, 16))
            .collect::<Result<_, _>>()
            .map_err(|_| SyncError::RunState("a counted delete is malformed"))?;
        Ok(())
    }

    /// The connection shows `syncing` while its job runs (unless it is paused or awaiting auth).
    /// Written on the condition nothing changed since `current` was read; read again and
    /// retried on a conflict.
    async fn mark_syncing(&self, current: Versioned<SourceConnection>) -> Result<(), SyncError> {
        let job = JobDetails::from(&self.job);
        let (platform, org) = (self.platform, self.job.organization_id);
        retry_on_version_conflict(platform, org, self.connection_id(), Some(current), |read| {
            let job = job.clone();
            async move {
                let Some(read) = read else {
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
                    .last_job = Some(job);
                if connection == read.value {
                    return Ok(());
                }
                platform
                    .store
                    .replace_connection(&connection, read.version, &[])
                    .await
            }
        })
        .await?;
        Ok(())
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
            let mark = self.due_mark();
            let status = self
                .platform
                .store
                .record_progress(
                    self.connection_id(),
                    self.job.id,
                    &lease,
                    &self.changes.counts,
                    mark.as_ref(),
                )
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
            || Instant::now() + self.settings.deadline_margin() >= self.deadline
    }

    /// Compares the page with what is stored and queues what changed.
    async fn process(&mut self, page: EntityPage) -> Result<(), SyncError> {
        let fresh = self.changes.admit(page.entities);
        let stored = if self.store_was_empty || fresh.is_empty() {
            Default::default()
        } else {
            let keys: Vec<_> = fresh.iter().map(|(key, _)| key.clone()).collect();
            self.platform
                .entities
                .stored(self.connection_id(), &keys)
                .await?
        };
        for (key, entity) in fresh {
            let before = stored.get(&key);
            self.changes.record(key, entity, before, self.job.id);
        }
        self.remove(page.removed).await?;
        self.stream_checkpoint = Some(page.checkpoint);
        self.pages += 1;
        for batch in self.changes.full_write_batches() {
            self.write(batch).await?;
        }
        Ok(())
    }

    /// Writes changed entities, each at its feed position.
    async fn write(&mut self, batch: Vec<PendingWrite>) -> Result<(), SyncError> {
        let writes: Vec<_> = batch
            .into_iter()
            .map(|w| w.at(self.job.id, self.positions.next(self.platform.clock.now())))
            .collect();
        self.platform
            .entities
            .write(self.connection_id(), &writes)
            .await?;
        Ok(())
    }

    /// Deletes entities the run found gone, leaving their deletion records at their feed positions.
    async fn remove_gone(&mut self, keys: &[crate::entity::EntityKey]) -> Result<(), SyncError> {
        let now = self.platform.clock.now();
        let removals: Vec<Removal> = keys
            .iter()
            .map(|key| Removal {
                key: key.clone(),
                position: self.positions.next(now),
            })
            .collect();
        let expires_at = now + self.platform.feed.deletion_retention;
        self.platform
            .entities
            .remove(self.connection_id(), &removals, expires_at)
            .await?;
        Ok(())
    }

    /// A feed mark of every write so far, when one is due: there was a write since the last,
    /// and the last is the settle delay old. Writes are awaited before a mark is taken.
    fn due_mark(&mut self) -> Option<FeedMark> {
        let through = self.positions.last()?;
        let now = self.platform.clock.now();
        let since = (now - self.last_mark_at).to_std().unwrap_or_default();
        if since < self.platform.feed.settle {
            return None;
        }
        self.last_mark_at = now;
        Some(FeedMark { through, at: now })
    }

    /// Queues for deletion what the source reports gone, if it is stored. The last word wins: a
    /// key yielded earlier in this run and reported removed since is deleted (its waiting write
    /// dropped); one yielded again after its removal is kept (see [`ChangeSet::admit`]).
    async fn remove(&mut self, removed: Vec<crate::entity::EntityKey>) -> Result<(), SyncError> {
        let removed = self.changes.new_removals(removed);
        if removed.is_empty() {
            return Ok(());
        }
        // Not skipped when the store was empty at the start: this run may have written them.
        let stored = self
            .platform
            .entities
            .stored(self.connection_id(), &removed)
            .await?;
        for key in removed.into_iter().filter(|key| stored.contains_key(key)) {
            self.changes.queue_removal(key);
        }
        if self.changes.removals_full() {
            self.delete_removals().await?;
        }
        Ok(())
    }

    /// Writes and deletes whatever waits for a full batch.
    async fn flush(&mut self) -> Result<(), SyncError> {
        let writes = self.changes.take_writes();
        if !writes.is_empty() {
            self.write(writes).await?;
        }
        self.delete_removals().await
    }

    async fn delete_removals(&mut self) -> Result<(), SyncError> {
        let keys = self.changes.take_removals();
        if keys.is_empty() {
            return Ok(());
        }
        self.remove_gone(&keys).await?;
        for key in &keys {
            self.changes.count_deleted(key);
        }
        Ok(())
    }

    /// After a full sync: deletes every stored entity the run did not see (see [`AbsenceSweep`]).
    /// `Some` when the run handed over part-way.
    async fn delete_unseen(&mut self) -> Result<Option<Handled>, SyncError> {
        loop {
            if let Some(handled) = self.between_pages().await? {
                return Ok(Some(handled));
            }
            let stored = self
                .platform
                .entities
                .keys(self.connection_id(), self.sweep.after.as_deref())
                .await?;
            let page = self.sweep.sort(stored.keys, &mut self.changes);
            if page.newly_counted {
                self.save_run_state(true).await?;
            }
            for batch in page.unseen.chunks(WRITE_BATCH) {
                self.remove_gone(batch).await?;
            }
            self.pages += 1;
            if !self.sweep.page_done(page, stored.next) {
                return Ok(None);
            }
        }
    }

    /// Where the run stands, for the next invocation to resume from.
    fn run_state(&self) -> RunState {
        RunState {
            stream_checkpoint: self.stream_checkpoint.clone(),
            stream_done: self.stream_done,
            deleting_after: self.sweep.after.clone(),
            remaining: self.sweep.remaining.clone(),
            counts: self.changes.counts,
            tallies: self.changes.tallies.clone(),
            seen_chunks: self.changes.seen.chunks(),
            store_was_empty: self.store_was_empty,
            counted_deletes: self
                .sweep
                .counted
                .iter()
                .map(|f| format!("{f:032x}"))
                .collect(),
        }
    }

    /// Stores the seen keys not stored yet, then the run state; `keep`: the run goes on (its
    /// lease extended), else it hands the job over.
    async fn save_run_state(&mut self, keep: bool) -> Result<(), SyncError> {
        let keep_until = keep.then(|| self.platform.clock.now() + self.settings.lease);
        for (index, chunk) in self.changes.seen.unsaved_chunks() {
            self.platform
                .store
                .put_seen_chunk(self.connection_id(), self.job.id, index, &chunk)
                .await?;
        }
        self.changes.seen.mark_saved();
        let mark = self.due_mark();
        self.platform
            .store
            .save_run_state(
                self.connection_id(),
                self.job.id,
                &self.holder,
                &self.run_state(),
                keep_until,
                mark.as_ref(),
            )
            .await?;
        Ok(())
    }

    /// Saves the run state and sends a message that carries on, after `wait` when the source asked.
    async fn hand_over(&mut self, wait: Option<Duration>) -> Result<Handled, SyncError> {
        self.flush().await?;
        match self.save_run_state(false).await {
            Err(SyncError::Store(StoreError::LeaseLost)) => {
                warn!(
                    "another run took the job over before the run state was saved; this one stops"
                );
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
                let c = self.changes.counts;
                info!(
                    inserted = c.inserted,
                    updated = c.updated,
                    kept = c.kept,
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
    pub(super) async fn fail(&mut self, error: String) -> Result<Handled, SyncError> {
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
        end_job(&mut self.job, &outcome, now);
        self.job.set_counts(&self.changes.counts);
        let ending = Ending {
            job: &self.job,
            holder: &self.holder,
            outcome: &outcome,
            tallies: &self.changes.tallies,
            remaining,
            cursor,
            now,
        };
        let finished = record_ending(self.platform, ending).await;
        match finished {
            Ok(()) => {}
            Err(StoreError::LeaseLost) => {
                warn!("another run took the job over before it finished; this one stops");
                return Ok(Handled::Dropped);
            }
            Err(e) => return Err(e.into()),
        }
        let store = &self.platform.store;
        if self.changes.seen.chunks() > 0 {
            if let Err(e) = store
                .delete_seen_chunks(self.connection_id(), self.job.id)
                .await
            {
                warn!(error = %e, "could not delete the job's saved seen-key chunks");
            }
        }
        let c = self.changes.counts;
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

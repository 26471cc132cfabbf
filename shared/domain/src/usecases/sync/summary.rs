//! How a run ends: the job's outcome, the connection's status and summaries after it, and the
//! versioned write that records them, read again and retried when the connection moved.

use crate::connection::{
    ConnectionStatus, EntitySummary, EntityTypeStats, JobDetails, SourceConnection,
};
use crate::error_category::ErrorCategory;
use crate::ids::{ConnectionId, OrganizationId};
use crate::job::{Job, JobStatus, TypeTally};
use crate::ports::{CursorUpdate, FinishedRun, StoreError, Versioned};
use crate::usecases::webhooks::outbox::{collection_name, Outbox};
use crate::usecases::Platform;
use crate::webhooks::{Event, EventType};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::future::Future;

/// Read-modify-write attempts on the connection item before giving up.
const VERSION_ATTEMPTS: usize = 5;

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

/// Ends the job as `outcome` says: its status, end time, duration and error.
pub(crate) fn end_job(job: &mut Job, outcome: &Outcome, now: DateTime<Utc>) {
    job.status = outcome.status();
    job.completed_at = Some(now);
    job.duration_seconds = job
        .started_at
        .map(|started| (now - started).num_milliseconds().max(0) as f64 / 1000.0);
    if let Outcome::Failed { error, category } = outcome {
        job.error = Some(error.clone());
        job.error_category = *category;
    }
}

/// What a finished run writes: the job's end, and the connection as the outcome leaves it.
pub(crate) struct Ending<'a> {
    pub job: &'a Job,
    pub holder: &'a str,
    pub outcome: &'a Outcome,
    pub tallies: &'a BTreeMap<String, TypeTally>,
    /// After a full sync, how many entities of each type stay.
    pub remaining: Option<&'a BTreeMap<String, u64>>,
    pub cursor: CursorUpdate<'a>,
    pub now: DateTime<Utc>,
}

/// Writes the job's end and the connection after it in the job's finishing transaction, on the
/// version of the connection it read; read again and retried when the connection moved.
pub(crate) async fn record_ending(
    platform: &Platform,
    ending: Ending<'_>,
) -> Result<(), StoreError> {
    let Ending {
        job,
        holder,
        outcome,
        tallies,
        remaining,
        cursor,
        now,
    } = ending;
    let outbox = Outbox::of(platform, job.organization_id).await;
    retry_on_version_conflict(
        platform,
        job.organization_id,
        job.source_connection_id,
        None,
        |current| {
            let updated = current.map(|c| {
                let after = connection_after(&c.value, job, outcome, tallies, remaining, now);
                let reauth = after.status == ConnectionStatus::NeedsReauth
                    && c.value.status != ConnectionStatus::NeedsReauth;
                (after, c.version, reauth)
            });
            async move {
                // The job's end, and the connection's need of new credentials when this run
                // found it; nothing of a connection deleted meanwhile (its deletion said so).
                let mut events = Vec::new();
                if let Some((after, _, reauth)) = updated.as_ref().filter(|_| outbox.recording()) {
                    let name = collection_name(platform, after).await;
                    events.push(Event::sync(job, after, &name, now));
                    if *reauth {
                        events.push(Event::connection(
                            EventType::ConnectionNeedsReauth,
                            after,
                            now,
                        ));
                    }
                }
                let run = FinishedRun {
                    job,
                    holder,
                    connection: updated.as_ref().map(|(c, v, _)| (c, *v)),
                    cursor,
                    events: &events,
                };
                platform.store.finish_job(run).await
            }
        },
    )
    .await
}

/// Runs `write` on the connection as it now stands (`first`, when the caller has just read it)
/// and, when the write finds the version moved, reads the connection again and retries, at most
/// [`VERSION_ATTEMPTS`] times; then the conflict is the answer. `write` is given `None` when
/// the connection no longer exists.
pub(crate) async fn retry_on_version_conflict<T, F, Fut>(
    platform: &Platform,
    org: OrganizationId,
    id: ConnectionId,
    mut first: Option<Versioned<SourceConnection>>,
    mut write: F,
) -> Result<T, StoreError>
where
    F: FnMut(Option<Versioned<SourceConnection>>) -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    for _ in 0..VERSION_ATTEMPTS {
        let current = match first.take() {
            Some(read) => Some(read),
            None => platform.store.get_versioned(org, id).await?,
        };
        match write(current).await {
            Err(StoreError::VersionConflict) => continue,
            other => return other,
        }
    }
    Err(StoreError::VersionConflict)
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

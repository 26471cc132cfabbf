//! The entity stream: its `Checkpoint` and `Cursor`, and a `next_page` that lists one GraphQL
//! page of the kind the run is at.

use super::api::{classify, read_page};
use super::entities::to_entity;
use super::kinds::Kind;
use super::NAME;
use crate::upstream::{fetch, PAGE_BODY_LIMIT};
use async_trait::async_trait;
use chrono::{DateTime, Duration as TimeDelta, SecondsFormat, Utc};
use domain::entity::EntityKey;
use domain::stream::{EntityPage, EntityStream, StreamError};
use reqwest::header::{HeaderValue, AUTHORIZATION};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Nodes per page: Linear's default, and small enough that an issue page with its labels stays
/// far below the 10,000-point complexity cap of a single query.
pub(super) const PAGE_SIZE: u32 = 50;
/// How far the next run's `updatedAt` filter reaches back before this run's start: an item
/// changed while the run was listing (its page already passed) is caught next time, and a
/// small clock difference between us and Linear loses nothing. Re-listed unchanged items are
/// only counted as kept.
pub(super) const CURSOR_OVERLAP: TimeDelta = TimeDelta::minutes(5);

/// What the last completed run leaves for the next one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Cursor {
    pub updated_after: DateTime<Utc>,
}

/// Where a run is, and what it needs for its final cursor: the checkpoint after each page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Checkpoint {
    /// The kind the next page lists; `None` once the run has listed everything.
    pub next: Option<Kind>,
    /// The page cursor within `next`.
    pub after: Option<String>,
    /// The filter of an incremental run (the last run's cursor); `None` for a full run.
    pub updated_after: Option<DateTime<Utc>>,
    /// When the run began (the first delivery's clock, kept across resumptions).
    pub started_at: DateTime<Utc>,
    /// The newest `updatedAt` seen among the filtered kinds.
    pub newest: Option<DateTime<Utc>>,
}

impl Checkpoint {
    pub fn start(updated_after: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Self {
        Self {
            next: Some(Kind::ORDER[0]),
            after: None,
            updated_after,
            started_at: now,
            newest: None,
        }
    }

    /// The next run's filter: what this run saw as changed reaches up to the newest update
    /// (or its own filter when nothing changed), but never past the run's start, less an
    /// overlap: a change made while the run was listing must not be skipped.
    pub fn cursor(&self) -> Cursor {
        let seen = self.newest.max(self.updated_after);
        let start = self.started_at - CURSOR_OVERLAP;
        Cursor {
            updated_after: seen.map_or(start, |seen| seen.min(start)),
        }
    }
}

pub(super) struct LinearStream {
    pub client: reqwest::Client,
    pub endpoint: String,
    pub authorization: HeaderValue,
    pub progress: Checkpoint,
}

impl LinearStream {
    pub fn variables(&self, kind: Kind) -> Value {
        let mut variables = json!({"first": PAGE_SIZE, "after": self.progress.after});
        if kind.filtered_by_update() {
            let since = self.progress.updated_after;
            // An incremental run asks for archived items too: they are reported removed.
            variables["includeArchived"] = json!(since.is_some());
            if let Some(since) = since {
                variables["filter"] = json!({"updatedAt": {
                    "gt": since.to_rfc3339_opts(SecondsFormat::Millis, true)
                }});
            }
        }
        variables
    }
}

#[async_trait]
impl EntityStream for LinearStream {
    async fn next_page(&mut self) -> Result<Option<EntityPage>, StreamError> {
        let Some(kind) = self.progress.next else {
            return Ok(None);
        };
        let request = self
            .client
            .post(&self.endpoint)
            .header(AUTHORIZATION, self.authorization.clone())
            .json(&json!({"query": kind.query(), "variables": self.variables(kind)}));
        let answer = fetch(NAME, request, PAGE_BODY_LIMIT).await?;
        let body = classify(&answer, Utc::now()).map_err(|refusal| {
            tracing::info!(status = answer.status.as_u16(), kind = kind.field(), outcome = ?refusal, "{NAME} refused a page");
            refusal.into_stream()
        })?;
        let page = read_page(kind, &body, self.progress.after.as_deref())?;

        let incremental = self.progress.updated_after.is_some();
        let (mut entities, mut removed) = (Vec::new(), Vec::new());
        for node in &page.nodes {
            let entity = to_entity(kind, node).map_err(StreamError::Malformed)?;
            if kind.filtered_by_update() {
                self.progress.newest = self.progress.newest.max(entity.updated_at);
            }
            let archived = node.get("archivedAt").is_some_and(|a| !a.is_null());
            if archived {
                // Only an incremental run asks for archived items; a full one drops them by
                // not yielding them.
                if incremental {
                    removed.push(
                        EntityKey::new(&entity.entity_type, &entity.entity_id)
                            .map_err(StreamError::Malformed)?,
                    );
                }
                continue;
            }
            entities.push(entity);
        }
        match page.next {
            Some(cursor) => self.progress.after = Some(cursor),
            None => {
                self.progress.next = kind.next();
                self.progress.after = None;
            }
        }
        Ok(Some(EntityPage {
            entities,
            removed,
            checkpoint: serde_json::to_value(&self.progress).expect("progress serializes"),
        }))
    }

    fn incremental(&self) -> bool {
        self.progress.updated_after.is_some()
    }

    fn cursor(&self) -> Option<Value> {
        if self.progress.next.is_some() {
            return None;
        }
        Some(serde_json::to_value(self.progress.cursor()).expect("a cursor serializes"))
    }
}

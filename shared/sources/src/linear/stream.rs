//! The entity stream: the kinds a run lists and their queries, its `Checkpoint` and
//! `Cursor`, and a `next_page` that lists one GraphQL page.

use super::api::{classify, read_page};
use super::entities::to_entity;
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

/// The kinds of a run, in the order a run lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Kind {
    Teams,
    Users,
    Projects,
    Issues,
    Comments,
}

impl Kind {
    pub const ORDER: [Kind; 5] = [
        Kind::Teams,
        Kind::Users,
        Kind::Projects,
        Kind::Issues,
        Kind::Comments,
    ];

    fn next(self) -> Option<Kind> {
        let at = Self::ORDER.iter().position(|k| *k == self)?;
        Self::ORDER.get(at + 1).copied()
    }

    /// The root field of the kind's query.
    pub fn field(self) -> &'static str {
        match self {
            Kind::Teams => "teams",
            Kind::Users => "users",
            Kind::Projects => "projects",
            Kind::Issues => "issues",
            Kind::Comments => "comments",
        }
    }

    pub fn entity_type(self) -> &'static str {
        match self {
            Kind::Teams => "linear_team",
            Kind::Users => "linear_user",
            Kind::Projects => "linear_project",
            Kind::Issues => "linear_issue",
            Kind::Comments => "linear_comment",
        }
    }

    /// Whether an incremental run asks this kind only for what changed.
    fn filtered_by_update(self) -> bool {
        matches!(self, Kind::Projects | Kind::Issues | Kind::Comments)
    }

    /// Only stable fields are asked for: nothing like `lastSeen`, `sortOrder` or `progress`
    /// that changes without the item changing, so an unchanged item hashes the same every run.
    fn query(self) -> &'static str {
        match self {
            Kind::Teams => {
                "query Teams($first: Int!, $after: String) { \
                 teams(first: $first, after: $after) { \
                 nodes { id key name description private createdAt updatedAt archivedAt } \
                 pageInfo { hasNextPage endCursor } } }"
            }
            Kind::Users => {
                "query Users($first: Int!, $after: String) { \
                 users(first: $first, after: $after) { \
                 nodes { id name displayName email active admin url createdAt updatedAt archivedAt } \
                 pageInfo { hasNextPage endCursor } } }"
            }
            Kind::Projects => {
                "query Projects($first: Int!, $after: String, $filter: ProjectFilter, $includeArchived: Boolean) { \
                 projects(first: $first, after: $after, filter: $filter, includeArchived: $includeArchived) { \
                 nodes { id name description content url status { name type } lead { id name } \
                 startDate targetDate createdAt updatedAt archivedAt completedAt canceledAt \
                 teams { nodes { id key } } } \
                 pageInfo { hasNextPage endCursor } } }"
            }
            Kind::Issues => {
                "query Issues($first: Int!, $after: String, $filter: IssueFilter, $includeArchived: Boolean) { \
                 issues(first: $first, after: $after, filter: $filter, includeArchived: $includeArchived) { \
                 nodes { id identifier title description url priority priorityLabel estimate dueDate \
                 createdAt updatedAt archivedAt completedAt canceledAt \
                 state { id name type } assignee { id name email } creator { id name } \
                 team { id key name } project { id name } labels(first: 50) { nodes { id name } } } \
                 pageInfo { hasNextPage endCursor } } }"
            }
            Kind::Comments => {
                "query Comments($first: Int!, $after: String, $filter: CommentFilter, $includeArchived: Boolean) { \
                 comments(first: $first, after: $after, filter: $filter, includeArchived: $includeArchived) { \
                 nodes { id body url createdAt updatedAt editedAt archivedAt user { id name } \
                 issue { id identifier } } \
                 pageInfo { hasNextPage endCursor } } }"
            }
        }
    }
}

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

//! The entity stream: where a run is (each listing's place, the checkpoint, the cursor), how a
//! `next_page` works through the search, a database's rows and each page's content, and the
//! requests it sends for them.

use super::api::classify_list;
use super::api::ListPage;
use super::entities::{
    block_line, database_entity, descends, id_of, is_notion_id, is_trashed, last_edited,
    malformed_item, page_entity, Content, Kind,
};
use super::{NAME, NOTION_VERSION};
use crate::base_url::BaseUrl;
use crate::budget::PageBudget;
use crate::listing::ListedPage;
use crate::upstream::{fetch, Answer, PAGE_BODY_LIMIT};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::entity::{Entity, EntityKey};
use domain::stream::{EntityPage, EntityStream, StreamError};
use reqwest::header::HeaderValue;
use reqwest::header::AUTHORIZATION;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::time::Duration;

/// The most Notion returns per listing call.
pub(super) const LIST_PAGE_SIZE: u32 = 100;
/// How deep a page's blocks are read: its own children and two levels below them.
pub(super) const MAX_DEPTH: usize = 3;
/// Block-children calls one page's content may take (pagination and nesting together); a page
/// that needs more is stored with what was read and `content_truncated`.
pub(super) const CONTENT_CALLS_PER_ITEM: usize = 8;
/// The calls after which a `next_page` returns what it has (it may go over by one item's
/// content calls): short enough to keep a redone page cheap after a rate limit.
pub(super) const CALLS_PER_PAGE: usize = 24;

/// Where a run is in one listing: the page being worked through and how much of it is done.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Place {
    /// The `start_cursor` that fetches the page being worked through (`None`: the first page).
    pub page: Option<String>,
    /// How many of that page's results are done, and the id of the last of them: a resumed run
    /// fetches the page again and skips past that id; if that id left the page, it hands out the
    /// whole page again (a duplicate is harmless; a skipped item would be deleted as absent).
    pub consumed: usize,
    pub last: Option<String>,
    /// The listing has nothing more.
    pub end: bool,
}

/// A listing's place and, between `next_page` calls of one stream, its page in memory (kept
/// once used up, so that its last item can be put back).
#[derive(Debug, Default)]
pub(super) struct Listing {
    pub place: Place,
    /// The page being handed out, and the `next_cursor` of the page after it.
    held: Option<ListedPage<Option<String>>>,
}

impl Listing {
    pub fn at(place: Place) -> Self {
        Self { place, held: None }
    }

    fn needs_fetch(&self) -> bool {
        !self.place.end && self.held.as_ref().is_none_or(ListedPage::is_used_up)
    }

    /// Holds a fetched page, past what the place says is done.
    pub fn load(&mut self, page: ListPage) {
        let last = self
            .place
            .last
            .as_deref()
            .filter(|_| self.place.consumed > 0);
        let held = ListedPage::new(page.results, page.next_cursor, item_id).resume_after(last);
        self.held = Some(held);
        self.settle();
    }

    /// What [`Listing::untake`] needs to put back the next item.
    fn snapshot(&self) -> Place {
        self.place.clone()
    }

    /// Puts back the item taken after `snapshot`, as if it had not been taken.
    fn untake(&mut self, place: Place) {
        self.place = place;
        if let Some(held) = &mut self.held {
            held.untake();
        }
    }

    pub fn take(&mut self) -> Option<Value> {
        let held = self.held.as_mut()?;
        let item = held.take()?.clone();
        self.place.consumed += 1;
        self.place.last = held.last_key();
        self.settle();
        Some(item)
    }

    /// Once the page in memory is used up, the place moves to the next page (or the end).
    fn settle(&mut self) {
        if let Some(held) = self.held.as_ref().filter(|held| held.is_used_up()) {
            self.place = match held.next() {
                Some(cursor) => Place {
                    page: Some(cursor.clone()),
                    ..Place::default()
                },
                None => Place {
                    end: true,
                    ..Place::default()
                },
            };
        }
    }

    fn finish(&mut self) {
        self.held = None;
        self.place = Place {
            end: true,
            ..Place::default()
        };
    }
}

/// What names a listed item: its id.
fn item_id(item: &Value) -> Option<String> {
    id_of(item).map(str::to_owned)
}

/// The checkpoint: where the search is, the database whose rows a full run is reading, and the
/// newest edit seen (the cursor-to-be).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Checkpoint {
    pub search: Place,
    pub rows: Option<RowsPlace>,
    pub newest: Option<DateTime<Utc>>,
    pub done: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct RowsPlace {
    pub database_id: String,
    pub place: Place,
}

/// What the last completed run leaves for the next one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Cursor {
    pub last_edited_time: DateTime<Utc>,
}

pub(super) struct NotionStream {
    pub client: reqwest::Client,
    pub base_url: BaseUrl,
    pub authorization: HeaderValue,
    /// Set for an incremental run: results edited before this are not read.
    pub since: Option<DateTime<Utc>>,
    pub search: Listing,
    /// A full run's current database and its rows.
    pub rows: Option<(String, Listing)>,
    pub newest: Option<DateTime<Utc>>,
    pub done: bool,
    /// Upstream calls made by the current `next_page`.
    pub calls: usize,
    /// The time a `next_page` may take ([`StreamRequest::page_budget`]).
    ///
    /// [`StreamRequest::page_budget`]: domain::stream::StreamRequest::page_budget
    pub page_budget: Duration,
    /// The current `next_page`'s budget, and whether it has done an item yet (until then it
    /// goes on whatever the time, so every page moves on).
    pub page: PageBudget,
    pub progressed: bool,
}

/// An item's read, or `OutOfTime` when the page's time budget ran out before it was done.
enum Read<T> {
    Done(T),
    OutOfTime,
}

impl NotionStream {
    fn position(&self) -> Checkpoint {
        Checkpoint {
            search: self.search.place.clone(),
            rows: self.rows.as_ref().map(|(id, listing)| RowsPlace {
                database_id: id.clone(),
                place: listing.place.clone(),
            }),
            newest: self.newest,
            done: self.done,
        }
    }

    /// Whether the current `next_page` should start no more calls.
    fn out_of_time(&self) -> bool {
        self.progressed && self.page.spent()
    }

    fn saw(&mut self, item: &Value) {
        if let Some(at) = last_edited(item) {
            self.newest = Some(self.newest.map_or(at, |n| n.max(at)));
        }
    }

    /// `POST /v1/search`: oldest edit first on a full run, so what is edited meanwhile moves to
    /// the end and is read again; newest first on an incremental one, down to its cursor.
    async fn fetch_search(&mut self) -> Result<(), StreamError> {
        let direction = match self.since {
            Some(_) => "descending",
            None => "ascending",
        };
        let mut body = json!({
            "sort": {"direction": direction, "timestamp": "last_edited_time"},
            "page_size": LIST_PAGE_SIZE,
        });
        if let Some(cursor) = &self.search.place.page {
            body["start_cursor"] = json!(cursor);
        }
        let request = self.request(reqwest::Method::POST, "v1/search").json(&body);
        match self.call(request, "the search").await? {
            Some(page) => {
                self.search.load(page);
                Ok(())
            }
            None => Err(StreamError::Upstream(
                "Notion answered the search with HTTP 404".into(),
            )),
        }
    }

    /// `POST /v1/databases/{id}/query`, oldest row first: creation order does not move when
    /// rows are edited, so a resumed run skips into the same order.
    async fn fetch_rows(&mut self) -> Result<(), StreamError> {
        let Some((database_id, listing)) = &self.rows else {
            return Ok(());
        };
        let mut body = json!({
            "sorts": [{"timestamp": "created_time", "direction": "ascending"}],
            "page_size": LIST_PAGE_SIZE,
        });
        if let Some(cursor) = &listing.place.page {
            body["start_cursor"] = json!(cursor);
        }
        let path = format!("v1/databases/{database_id}/query");
        let request = self.request(reqwest::Method::POST, &path).json(&body);
        let page = self.call(request, "the rows of a database").await?;
        match (page, &mut self.rows) {
            (Some(page), Some((_, listing))) => listing.load(page),
            // Deleted or unshared since the search listed it: its rows are gone too.
            (None, _) => self.rows = None,
            (Some(_), None) => {}
        }
        Ok(())
    }

    /// A page's blocks, depth first in document order; `None` when the page is gone (404). A
    /// nested block whose children Notion refuses (400 for a block it cannot serve, 403, 404
    /// when deleted meanwhile) is left out and the content marked truncated: one odd block must
    /// not fail every run.
    async fn content(&mut self, page_id: &str) -> Result<Read<Option<Content>>, StreamError> {
        struct Frame {
            block_id: String,
            depth: usize,
            pending: VecDeque<Value>,
            next_cursor: Option<String>,
            fetched: bool,
        }
        let frame = |block_id: String, depth| Frame {
            block_id,
            depth,
            pending: VecDeque::new(),
            next_cursor: None,
            fetched: false,
        };
        let mut content = Content::default();
        let mut stack = vec![frame(page_id.to_owned(), 0)];
        let mut calls = 0;
        let mut skipped = false;
        while let Some(top) = stack.last_mut() {
            if let Some(block) = top.pending.pop_front() {
                let depth = top.depth;
                if let Some(line) = block_line(&block) {
                    content.push_line(depth, &line);
                }
                let child = id_of(&block).filter(|id| is_notion_id(id));
                if let (true, Some(id)) = (descends(&block) && depth + 1 < MAX_DEPTH, child) {
                    stack.push(frame(id.to_owned(), depth + 1));
                }
                continue;
            }
            if top.fetched && top.next_cursor.is_none() {
                stack.pop();
                continue;
            }
            if calls == CONTENT_CALLS_PER_ITEM || content.truncated {
                content.truncated = true;
                break;
            }
            if self.out_of_time() {
                return Ok(Read::OutOfTime);
            }
            calls += 1;
            let mut path = format!(
                "v1/blocks/{}/children?page_size={LIST_PAGE_SIZE}",
                top.block_id
            );
            if let Some(cursor) = &top.next_cursor {
                path.push_str("&start_cursor=");
                path.push_str(
                    &url::form_urlencoded::byte_serialize(cursor.as_bytes()).collect::<String>(),
                );
            }
            let nested = stack.len() > 1;
            let request = self.request(reqwest::Method::GET, &path);
            let answer = self.call_answer(request).await?;
            let status = answer.status.as_u16();
            if nested && matches!(status, 400 | 403 | 404) {
                tracing::info!(
                    status,
                    "Notion refused a nested block's children; the page is kept without them"
                );
                skipped = true;
                stack.pop();
                continue;
            }
            let answer = self.classify(&answer, "a page's content")?;
            let top = stack.last_mut().expect("the frame being read");
            match answer {
                Some(page) => {
                    top.pending = page.results.into();
                    top.next_cursor = page.next_cursor;
                    top.fetched = true;
                }
                // The page itself vanished (404 on its own blocks, first or later page).
                None => return Ok(Read::Done(None)),
            }
        }
        content.truncated |= skipped;
        Ok(Read::Done(Some(content)))
    }

    /// A page or row with its content; `None` when it vanished before its content was read.
    async fn with_content(
        &mut self,
        item: &Value,
        kind: Kind,
    ) -> Result<Read<Option<Entity>>, StreamError> {
        let id = id_of(item)
            .filter(|id| is_notion_id(id))
            .ok_or_else(|| malformed_item(kind))?;
        Ok(match self.content(id).await? {
            Read::Done(Some(content)) => Read::Done(Some(page_entity(item, kind, content)?)),
            Read::Done(None) => Read::Done(None),
            Read::OutOfTime => Read::OutOfTime,
        })
    }

    /// One search result into the page being built; `OutOfTime` when the page's time ran out
    /// before it was done (the caller puts it back).
    async fn take_search_result(
        &mut self,
        item: &Value,
        page: &mut EntityPage,
    ) -> Result<Read<()>, StreamError> {
        let Some(kind) = Kind::of(item) else {
            return Ok(Read::Done(()));
        };
        let Some(at) = last_edited(item) else {
            return Err(malformed_item(kind));
        };
        if let Some(since) = self.since {
            // Equal times are read again: Notion rounds edit times to the minute.
            if at < since {
                self.search.finish();
                return Ok(Read::Done(()));
            }
        }
        self.saw(item);
        let incremental = self.since.is_some();
        if is_trashed(item) {
            // A full run drops what it does not yield anyway; an incremental one says so.
            if incremental {
                let id = id_of(item).unwrap_or_default();
                if let Ok(key) = EntityKey::new(kind.entity_type(), id) {
                    page.removed.push(key);
                }
            }
            return Ok(Read::Done(()));
        }
        match kind {
            Kind::Database => {
                let entity = database_entity(item)?;
                if !incremental {
                    let id = entity.entity_id.clone();
                    self.rows = Some((id, Listing::default()));
                }
                page.entities.push(entity);
            }
            // A full run reads rows from their database's query.
            Kind::Row if !incremental => {}
            Kind::Page | Kind::Row => match self.with_content(item, kind).await? {
                Read::Done(entity) => page.entities.extend(entity),
                Read::OutOfTime => return Ok(Read::OutOfTime),
            },
        }
        Ok(Read::Done(()))
    }
}

#[async_trait]
impl EntityStream for NotionStream {
    async fn next_page(&mut self) -> Result<Option<EntityPage>, StreamError> {
        if self.done {
            return Ok(None);
        }
        self.calls = 0;
        self.page = PageBudget::start(self.page_budget);
        self.progressed = false;
        let mut page = EntityPage {
            entities: Vec::new(),
            removed: Vec::new(),
            checkpoint: Value::Null,
        };
        while self.calls < CALLS_PER_PAGE && !self.out_of_time() {
            if let Some((_, rows)) = &mut self.rows {
                if rows.needs_fetch() {
                    self.fetch_rows().await?;
                    continue;
                }
                let before = rows.snapshot();
                match rows.take() {
                    Some(row) => {
                        if is_trashed(&row) || Kind::of(&row) != Some(Kind::Row) {
                            continue;
                        }
                        self.saw(&row);
                        match self.with_content(&row, Kind::Row).await? {
                            Read::Done(entity) => page.entities.extend(entity),
                            Read::OutOfTime => {
                                if let Some((_, rows)) = &mut self.rows {
                                    rows.untake(before);
                                }
                                break;
                            }
                        }
                        self.progressed = true;
                    }
                    None => self.rows = None,
                }
                continue;
            }
            if self.search.needs_fetch() {
                self.fetch_search().await?;
                continue;
            }
            let before = self.search.snapshot();
            match self.search.take() {
                Some(item) => match self.take_search_result(&item, &mut page).await? {
                    Read::Done(()) => self.progressed = true,
                    Read::OutOfTime => {
                        self.search.untake(before);
                        break;
                    }
                },
                None => {
                    self.done = true;
                    break;
                }
            }
        }
        if self.done && page.entities.is_empty() && page.removed.is_empty() {
            return Ok(None);
        }
        page.checkpoint = serde_json::to_value(self.position()).expect("a position serializes");
        Ok(Some(page))
    }

    fn incremental(&self) -> bool {
        self.since.is_some()
    }

    fn cursor(&self) -> Option<Value> {
        let newest = match (self.newest, self.since) {
            (Some(a), Some(b)) => a.max(b),
            (a, b) => a.or(b)?,
        };
        Some(json!(Cursor {
            last_edited_time: newest
        }))
    }
}

/// The stream's calls to Notion, each counted toward the page's [`CALLS_PER_PAGE`].
///
/// [`CALLS_PER_PAGE`]: super::stream::CALLS_PER_PAGE
impl NotionStream {
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.base_url.endpoint(path))
            .header(AUTHORIZATION, self.authorization.clone())
            .header("Notion-Version", NOTION_VERSION)
    }

    pub async fn call(
        &mut self,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<Option<ListPage>, StreamError> {
        let answer = self.call_answer(request).await?;
        self.classify(&answer, what)
    }

    pub async fn call_answer(
        &mut self,
        request: reqwest::RequestBuilder,
    ) -> Result<Answer, StreamError> {
        self.calls += 1;
        fetch(NAME, request, PAGE_BODY_LIMIT).await
    }

    pub fn classify(&self, answer: &Answer, what: &str) -> Result<Option<ListPage>, StreamError> {
        let outcome = classify_list(answer, what, Utc::now());
        if let Err(e) = &outcome {
            tracing::info!(status = answer.status.as_u16(), outcome = %e, "Notion answer stops the stream");
        }
        outcome
    }
}

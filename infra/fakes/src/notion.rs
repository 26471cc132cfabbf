//! A fake of Notion's public API (version 2022-06-28) on 127.0.0.1, shaped after the API
//! reference: `GET /v1/users/me`, `POST /v1/search`, `POST /v1/databases/{id}/query` and
//! `GET /v1/blocks/{id}/children`, with Notion's list objects (`results`, `has_more`,
//! `next_cursor`, at most 100 a page), its error objects
//! (`{"object": "error", "status", "code", "message"}`) and its `Retry-After` on 429.
//!
//! The workspace (pages, databases and their rows, each page's blocks) sits behind a lock a test
//! changes between syncs; every change is an edit at the next minute of the fake's clock, as
//! Notion rounds edit times to the minute. Switches make later answers rate-limited, failing,
//! malformed, short or slow, refuse some blocks' children, or revoke the token. Files Notion
//! hosts come with signed URLs that change on every read, as Notion's do, so a source that
//! stores them sees a change where there is none.

use crate::server::{FakeRequest, FakeResponse, FakeServer, Handler};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration as Delay;

mod routes;
mod workspace;

use routes::*;
use workspace::*;

/// The token the fake accepts under `make fakes`.
pub const DEMO_TOKEN: &str = "ntn_fakeDemoIntegrationSecret0000000000000000000";
/// The API version the fake serves; a request without it is refused, as Notion does.
pub const NOTION_VERSION: &str = "2022-06-28";
const MAX_PAGE_SIZE: usize = 100;

/// A block of a page's content, with its nested blocks.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// Notion's block type: `paragraph`, `heading_1`, `bulleted_list_item`, `to_do`, …
    pub kind: &'static str,
    pub text: String,
    pub checked: bool,
    pub children: Vec<Block>,
}

impl Block {
    fn new(kind: &'static str, text: &str) -> Self {
        Self {
            kind,
            text: text.to_owned(),
            checked: false,
            children: Vec::new(),
        }
    }

    pub fn paragraph(text: &str) -> Self {
        Self::new("paragraph", text)
    }

    pub fn heading(text: &str) -> Self {
        Self::new("heading_1", text)
    }

    pub fn bullet(text: &str) -> Self {
        Self::new("bulleted_list_item", text)
    }

    pub fn to_do(text: &str, checked: bool) -> Self {
        Self {
            checked,
            ..Self::new("to_do", text)
        }
    }

    pub fn toggle(text: &str) -> Self {
        Self::new("toggle", text)
    }

    /// A block the API cannot serve (`"type": "unsupported"`); give it children to make its
    /// `has_children` true, as Notion reports it for such a block that holds others.
    pub fn unsupported() -> Self {
        Self::new("unsupported", "")
    }

    /// A page inside the page (or block) whose content this is, with this content: a
    /// `child_page` block there whose id is the page's, and a page of its own, listed by the
    /// search with the page as its parent.
    pub fn child_page(title: &str, content: Vec<Block>) -> Self {
        Self::new("child_page", title).with_children(content)
    }

    pub fn with_children(mut self, children: Vec<Block>) -> Self {
        self.children = children;
        self
    }
}

/// What a later answer does instead of answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Glitch {
    /// 429 `rate_limited` with `Retry-After: <seconds>`.
    RateLimited { retry_after_secs: u64 },
    /// 503 `service_unavailable`.
    Unavailable,
    /// 200 with a body cut short: not JSON.
    Malformed,
    /// The normal answer, but its first result's id is a path (`../../v1/users/me`): what a
    /// tampering proxy could send, never Notion.
    PathAsId,
}

/// Why Notion refuses to list a block's children.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 400 `validation_error`: a block type the API does not serve.
    Unsupported,
    /// 403 `restricted_resource`: content the integration may not read (a synced block whose
    /// original is in a page not shared with it).
    Restricted,
}

/// A request as the fake logs it: what a list call asked for (never a header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    pub method: String,
    pub path: String,
    /// `start_cursor`, from the body or the query string.
    pub start_cursor: Option<String>,
    /// `page_size`, from the body or the query string.
    pub page_size: Option<u64>,
    /// The search's `sort.direction`.
    pub direction: Option<String>,
}

#[derive(Debug, Default)]
struct Switches {
    /// `None` once revoked.
    valid_token: Option<String>,
    /// Requests still answered normally before `glitch`, and the glitch.
    glitch: Option<(usize, Glitch)>,
    /// Answers served: feeds request ids and the signatures of file URLs.
    served: u64,
    /// Blocks (or pages) whose children Notion refuses, and how.
    refused: BTreeMap<String, Refusal>,
    /// Blocks (or pages) whose children are answered this late.
    slow: BTreeMap<String, Delay>,
    /// The most results a list answer holds, whatever `page_size` asks (`None`: as asked).
    at_most: Option<usize>,
    asked: Vec<Asked>,
}

struct State {
    workspace: Mutex<Workspace>,
    switches: Mutex<Switches>,
}

pub struct FakeNotion {
    /// e.g. `http://127.0.0.1:54321`, the value for `SOURCE_NOTION_BASE_URL`.
    pub base_url: String,
    state: Arc<State>,
    server: FakeServer,
}

impl FakeNotion {
    /// An empty workspace on a random port of 127.0.0.1, accepting `valid_token`.
    pub async fn start(valid_token: &str) -> Self {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), valid_token)
            .await
            .expect("bind the fake Notion")
    }

    /// An empty workspace on `addr`.
    pub async fn start_on(addr: SocketAddr, valid_token: &str) -> std::io::Result<Self> {
        let state = Arc::new(State {
            workspace: Mutex::new(Workspace::default()),
            switches: Mutex::new(Switches {
                valid_token: Some(valid_token.to_owned()),
                ..Switches::default()
            }),
        });
        let serving = Arc::clone(&state);
        let handler: Handler = Arc::new(move |request| answer(&serving, request));
        let server = FakeServer::start_on(addr, handler).await?;
        Ok(Self {
            base_url: server.base_url.clone(),
            state,
            server,
        })
    }

    fn workspace(&self) -> std::sync::MutexGuard<'_, Workspace> {
        self.state.workspace.lock().expect("workspace lock")
    }

    fn switches(&self) -> std::sync::MutexGuard<'_, Switches> {
        self.state.switches.lock().expect("switches lock")
    }

    /// A top-level page with this content; answers its id.
    pub fn add_page(&self, title: &str, content: Vec<Block>) -> String {
        let mut workspace = self.workspace();
        let id = workspace.add(Object::Page, title, Parent::Workspace);
        workspace.set_blocks(&id, &content);
        id
    }

    /// A top-level database with a `Name`, `Status`, `Attachments` and `Last edited` column.
    pub fn add_database(&self, title: &str) -> String {
        self.workspace()
            .add(Object::Database, title, Parent::Workspace)
    }

    /// A row of `database` with this content; answers its id.
    pub fn add_row(
        &self,
        database: &str,
        title: &str,
        status: &str,
        content: Vec<Block>,
    ) -> String {
        let mut workspace = self.workspace();
        let id = workspace.add(Object::Page, title, Parent::Database(database.to_owned()));
        let row = workspace.item_mut(&id);
        row.status = Some(status.to_owned());
        row.attachment = Some(format!("{}.pdf", title.to_lowercase().replace(' ', "-")));
        workspace.set_blocks(&id, &content);
        id
    }

    /// Renames a page, row or database: an edit now.
    pub fn rename(&self, id: &str, title: &str) {
        let mut workspace = self.workspace();
        let now = workspace.tick();
        let item = workspace.item_mut(id);
        item.title = title.to_owned();
        item.edited = now;
    }

    /// Replaces a page's content: an edit of the page now.
    pub fn set_content(&self, id: &str, content: Vec<Block>) {
        let mut workspace = self.workspace();
        let now = workspace.tick();
        workspace.item_mut(id).edited = now;
        workspace.set_blocks(id, &content);
    }

    /// Deletes a page, a row or a database (with its rows) for good; a page's child pages go
    /// with its content.
    pub fn remove(&self, id: &str) {
        let mut workspace = self.workspace();
        let gone: Vec<String> = workspace
            .items
            .iter()
            .filter(|i| i.id == id || i.parent == Parent::Database(id.to_owned()))
            .map(|i| i.id.clone())
            .collect();
        workspace.items.retain(|i| !gone.contains(&i.id));
        for id in &gone {
            workspace.drop_blocks(id);
        }
    }

    /// Moves a page, a row or a database to the trash: an edit now. The fake keeps listing it
    /// (search, database query), marked as Notion marks a trashed object: `archived` and
    /// `in_trash` true. [`FakeNotion::remove`] deletes it for good.
    pub fn trash(&self, id: &str) {
        let mut workspace = self.workspace();
        let now = workspace.tick();
        let item = workspace.item_mut(id);
        item.trashed = true;
        item.edited = now;
    }

    /// The `last_edited_time` Notion gives a page, row or database.
    pub fn last_edited(&self, id: &str) -> DateTime<Utc> {
        let mut workspace = self.workspace();
        at_minute(workspace.item_mut(id).edited)
    }

    /// The ids of the blocks right under a page or a block, in order (a child page's block
    /// has the child page's id).
    pub fn block_ids(&self, parent: &str) -> Vec<String> {
        self.workspace()
            .blocks
            .get(parent)
            .map(|blocks| blocks.iter().map(|b| b.id.clone()).collect())
            .unwrap_or_default()
    }

    /// From now on the children of this block (or page) are refused.
    pub fn refuse_children(&self, block: &str, refusal: Refusal) {
        self.switches().refused.insert(block.to_owned(), refusal);
    }

    /// From now on the children of this block (or page) are answered `delay` late.
    pub fn slow_children(&self, block: &str, delay: Delay) {
        self.switches().slow.insert(block.to_owned(), delay);
    }

    /// Every later answer is sent `delay` after its request came in: a slow Notion.
    pub fn answer_after(&self, delay: Delay) {
        self.server.answer_after(delay);
    }

    /// From now on a list answer (search, database query, block children) holds at most `n`
    /// results, whatever `page_size` asked: Notion may answer fewer than asked, and a test
    /// can so page through a few items.
    pub fn list_at_most(&self, n: usize) {
        self.switches().at_most = Some(n.max(1));
    }

    /// What the requests received asked for, in order.
    pub fn asked(&self) -> Vec<Asked> {
        self.switches().asked.clone()
    }

    /// The ids of every page, row and database, in creation order.
    pub fn ids(&self) -> Vec<String> {
        self.workspace()
            .items
            .iter()
            .map(|i| i.id.clone())
            .collect()
    }

    /// From now on the token is refused with 401 `unauthorized`.
    pub fn revoke_token(&self) {
        self.switches().valid_token = None;
    }

    /// After `answered` more normal answers, the next request gets `glitch` (once).
    pub fn glitch_after(&self, answered: usize, glitch: Glitch) {
        self.switches().glitch = Some((answered, glitch));
    }

    /// The next request gets a 429 with `Retry-After: <retry_after_secs>`.
    pub fn rate_limit_next(&self, retry_after_secs: u64) {
        self.glitch_after(0, Glitch::RateLimited { retry_after_secs });
    }

    /// `"POST /v1/search"`-style lines of the requests received, in order.
    pub fn requests(&self) -> Vec<String> {
        self.server.requests()
    }

    /// The demo workspace of `make fakes`: a few pages with nested content, and a database of
    /// projects.
    pub fn load_demo(&self) {
        self.add_page(
            "Welcome to the team",
            vec![
                Block::heading("First week"),
                Block::paragraph("Read the engineering wiki and set up your laptop."),
                Block::to_do("Get access to the staging account", true),
                Block::to_do("Pair with a teammate on a bug", false),
            ],
        );
        self.add_page(
            "Engineering wiki",
            vec![
                Block::heading("Deploying"),
                Block::bullet("Merge to main").with_children(vec![Block::bullet(
                    "CI builds the release",
                )
                .with_children(vec![Block::paragraph(
                    "Artifacts go to the release bucket.",
                )])]),
                Block::bullet("Promote the release from staging"),
            ],
        );
        let projects = self.add_database("Projects");
        self.add_row(
            &projects,
            "Search relaunch",
            "In progress",
            vec![Block::paragraph("Relaunch search with typo tolerance.")],
        );
        self.add_row(
            &projects,
            "Billing export",
            "Done",
            vec![Block::paragraph("Monthly CSV export for finance.")],
        );
        self.add_row(&projects, "Onboarding revamp", "Not started", vec![]);
        self.add_page(
            "Meeting notes 2026-01-12",
            vec![
                Block::paragraph("Attendees: Ann, Bo, Chen"),
                Block::bullet("Ship the search relaunch before February"),
            ],
        );
    }
}

#[cfg(test)]
mod tests;

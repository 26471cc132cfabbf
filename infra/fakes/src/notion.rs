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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Object {
    Page,
    Database,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Parent {
    Workspace,
    Database(String),
    /// A child page's page, or the block it sits in.
    Page(String),
    Block(String),
}

#[derive(Debug, Clone)]
struct Item {
    id: String,
    object: Object,
    title: String,
    parent: Parent,
    /// Minutes on the fake's clock.
    created: i64,
    edited: i64,
    /// A row's `Status`.
    status: Option<String>,
    /// A row's attached file name, served with a signed URL.
    attachment: Option<String>,
    /// Moved to the trash: still listed, with `archived` and `in_trash` true.
    trashed: bool,
}

#[derive(Debug, Clone)]
struct StoredBlock {
    id: String,
    kind: &'static str,
    text: String,
    checked: bool,
    has_children: bool,
}

#[derive(Debug, Default)]
struct Workspace {
    clock: i64,
    next_id: u64,
    /// In creation order.
    items: Vec<Item>,
    /// The blocks under each page or block, by its id.
    blocks: BTreeMap<String, Vec<StoredBlock>>,
}

impl Workspace {
    fn tick(&mut self) -> i64 {
        self.clock += 1;
        self.clock
    }

    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("5e1f0a7c-0000-4000-8000-{:012x}", self.next_id)
    }

    fn item_mut(&mut self, id: &str) -> &mut Item {
        self.items
            .iter_mut()
            .find(|i| i.id == id)
            .unwrap_or_else(|| panic!("the fake Notion has no item {id}"))
    }

    fn add(&mut self, object: Object, title: &str, parent: Parent) -> String {
        let id = self.new_id();
        let now = self.tick();
        self.items.push(Item {
            id: id.clone(),
            object,
            title: title.to_owned(),
            parent,
            created: now,
            edited: now,
            status: None,
            attachment: None,
            trashed: false,
        });
        id
    }

    fn set_blocks(&mut self, parent: &str, blocks: &[Block]) {
        self.drop_blocks(parent);
        let mut stored = Vec::new();
        for block in blocks {
            let id = if block.kind == "child_page" {
                let home = if self.items.iter().any(|i| i.id == parent) {
                    Parent::Page(parent.to_owned())
                } else {
                    Parent::Block(parent.to_owned())
                };
                self.add(Object::Page, &block.text, home)
            } else {
                self.new_id()
            };
            self.set_blocks(&id, &block.children);
            stored.push(StoredBlock {
                id,
                kind: block.kind,
                text: block.text.clone(),
                checked: block.checked,
                has_children: !block.children.is_empty(),
            });
        }
        self.blocks.insert(parent.to_owned(), stored);
    }

    fn drop_blocks(&mut self, parent: &str) {
        for block in self.blocks.remove(parent).unwrap_or_default() {
            if block.kind == "child_page" {
                self.items.retain(|i| i.id != block.id);
            }
            self.drop_blocks(&block.id);
        }
    }
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

// --- answers ---

fn at_minute(m: i64) -> DateTime<Utc> {
    let base: DateTime<Utc> = Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap();
    base + Duration::minutes(m)
}

fn minute(m: i64) -> String {
    at_minute(m).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn request_id(served: u64) -> String {
    format!("9c4e2a10-0000-4000-8000-{served:012x}")
}

fn error(status: u16, code: &str, message: &str, served: u64) -> FakeResponse {
    FakeResponse::json(
        status,
        &json!({
            "object": "error",
            "status": status,
            "code": code,
            "message": message,
            "request_id": request_id(served),
        }),
    )
}

fn rich_text(text: &str) -> Value {
    if text.is_empty() {
        return json!([]);
    }
    json!([{
        "type": "text",
        "text": {"content": text, "link": null},
        "annotations": {"bold": false, "italic": false, "strikethrough": false,
                        "underline": false, "code": false, "color": "default"},
        "plain_text": text,
        "href": null,
    }])
}

fn user(id: &str) -> Value {
    json!({"object": "user", "id": id})
}

const OWNER: &str = "1d2c3b4a-0000-4000-8000-00000000000a";
const BOT: &str = "1d2c3b4a-0000-4000-8000-00000000000b";

fn notion_url(title: &str, id: &str) -> String {
    let slug: String = title
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("https://www.notion.so/{slug}-{}", id.replace('-', ""))
}

fn item_json(item: &Item, served: u64) -> Value {
    let parent = match &item.parent {
        Parent::Workspace => json!({"type": "workspace", "workspace": true}),
        Parent::Database(id) => json!({"type": "database_id", "database_id": id}),
        Parent::Page(id) => json!({"type": "page_id", "page_id": id}),
        Parent::Block(id) => json!({"type": "block_id", "block_id": id}),
    };
    let common = json!({
        "id": item.id,
        "created_time": minute(item.created),
        "last_edited_time": minute(item.edited),
        "created_by": user(OWNER),
        "last_edited_by": user(OWNER),
        "cover": null,
        "icon": null,
        "parent": parent,
        "archived": item.trashed,
        "in_trash": item.trashed,
        "url": notion_url(&item.title, &item.id),
        "public_url": null,
    });
    let mut value = common;
    match (item.object, &item.parent) {
        (Object::Database, _) => {
            value["object"] = json!("database");
            value["title"] = rich_text(&item.title);
            value["description"] = json!([]);
            value["is_inline"] = json!(false);
            value["properties"] = json!({
                "Name": {"id": "title", "name": "Name", "type": "title", "title": {}},
                "Status": {"id": "s%7Cq%3E", "name": "Status", "type": "select", "select": {"options": [
                    {"id": "1", "name": "Not started", "color": "default"},
                    {"id": "2", "name": "In progress", "color": "blue"},
                    {"id": "3", "name": "Done", "color": "green"},
                ]}},
                "Attachments": {"id": "f%3Ab", "name": "Attachments", "type": "files", "files": {}},
                "Last edited": {"id": "l%3De", "name": "Last edited", "type": "last_edited_time",
                                "last_edited_time": {}},
            });
        }
        (Object::Page, Parent::Database(_)) => {
            value["object"] = json!("page");
            let files: Vec<Value> = item
                .attachment
                .iter()
                .map(|name| {
                    // Notion-hosted files: a signed URL that expires an hour after each read.
                    json!({"name": name, "type": "file", "file": {
                        "url": format!(
                            "https://prod-files-secure.s3.us-west-2.amazonaws.com/{}/{name}?X-Amz-Signature={served:016x}",
                            item.id
                        ),
                        "expiry_time": minute(item.edited + 60 + served as i64),
                    }})
                })
                .collect();
            value["properties"] = json!({
                "Name": {"id": "title", "type": "title", "title": rich_text(&item.title)},
                "Status": {"id": "s%7Cq%3E", "type": "select", "select": item.status.as_ref().map(|s| json!({
                    "id": s.len().to_string(), "name": s, "color": "default"}))},
                "Attachments": {"id": "f%3Ab", "type": "files", "files": files},
                "Last edited": {"id": "l%3De", "type": "last_edited_time",
                                "last_edited_time": minute(item.edited)},
            });
        }
        (Object::Page, Parent::Workspace | Parent::Page(_) | Parent::Block(_)) => {
            value["object"] = json!("page");
            value["properties"] = json!({
                "title": {"id": "title", "type": "title", "title": rich_text(&item.title)},
            });
        }
    }
    value
}

fn block_json(block: &StoredBlock, parent_id: &str, is_page: bool, item: &Item) -> Value {
    let parent = if is_page {
        json!({"type": "page_id", "page_id": parent_id})
    } else {
        json!({"type": "block_id", "block_id": parent_id})
    };
    let mut body = match block.kind {
        "child_page" => json!({"title": block.text}),
        "unsupported" => json!({}),
        _ => json!({"rich_text": rich_text(&block.text), "color": "default"}),
    };
    if block.kind == "to_do" {
        body["checked"] = json!(block.checked);
    }
    json!({
        "object": "block",
        "id": block.id,
        "parent": parent,
        "created_time": minute(item.created),
        "last_edited_time": minute(item.edited),
        "created_by": user(OWNER),
        "last_edited_by": user(OWNER),
        "has_children": block.has_children,
        "archived": false,
        "in_trash": false,
        "type": block.kind,
        block.kind: body,
    })
}

/// Notion's list object over `all`, from the item whose id is `start_cursor`.
fn list(
    all: Vec<(String, Value)>,
    start_cursor: Option<&str>,
    page_size: usize,
    kind: &str,
    served: u64,
) -> FakeResponse {
    let start = match start_cursor {
        None => 0,
        Some(cursor) => match all.iter().position(|(id, _)| id == cursor) {
            Some(i) => i,
            None => {
                return error(
                    400,
                    "validation_error",
                    "body failed validation: body.start_cursor should be a valid cursor.",
                    served,
                )
            }
        },
    };
    let end = (start + page_size).min(all.len());
    let next_cursor = all.get(end).map(|(id, _)| id.clone());
    let results: Vec<Value> = all[start..end].iter().map(|(_, v)| v.clone()).collect();
    let mut body = json!({
        "object": "list",
        "results": results,
        "next_cursor": next_cursor,
        "has_more": next_cursor.is_some(),
        "type": kind,
        "request_id": request_id(served),
    });
    body[kind] = json!({});
    FakeResponse::json(200, &body)
}

/// `page_size` as Notion validates it: 1 to 100, 100 when absent.
fn page_size(value: Option<&Value>, served: u64) -> Result<usize, FakeResponse> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(MAX_PAGE_SIZE);
    };
    match value.as_u64() {
        Some(n) if (1..=MAX_PAGE_SIZE as u64).contains(&n) => Ok(n as usize),
        _ => Err(error(
            400,
            "validation_error",
            "body failed validation: body.page_size should be a number between 1 and 100.",
            served,
        )),
    }
}

/// What a request asked for: its cursor and page size (in the body of a `POST`, in the query
/// string of a `GET`) and the search's sort direction.
fn asked(request: &FakeRequest) -> Asked {
    let body = request.json();
    let start_cursor = body["start_cursor"]
        .as_str()
        .or(request.query.get("start_cursor").map(String::as_str))
        .map(str::to_owned);
    let page_size = body["page_size"]
        .as_u64()
        .or_else(|| request.query.get("page_size")?.parse().ok());
    Asked {
        method: request.method.clone(),
        path: request.path.clone(),
        start_cursor,
        page_size,
        direction: body
            .pointer("/sort/direction")
            .and_then(Value::as_str)
            .map(str::to_owned),
    }
}

/// The block whose children a request asks for.
fn children_of(request: &FakeRequest) -> Option<&str> {
    request
        .path
        .strip_prefix("/v1/blocks/")
        .and_then(|p| p.strip_suffix("/children"))
        .filter(|_| request.method == "GET")
}

fn answer(state: &State, request: &FakeRequest) -> FakeResponse {
    let delay = {
        let switches = state.switches.lock().expect("switches lock");
        children_of(request).and_then(|block| switches.slow.get(block).copied())
    };
    let response = answer_now(state, request);
    match delay {
        Some(delay) => response.after(delay),
        None => response,
    }
}

fn answer_now(state: &State, request: &FakeRequest) -> FakeResponse {
    let (served, glitch, valid_token, refused, cap) = {
        let mut switches = state.switches.lock().expect("switches lock");
        switches.served += 1;
        switches.asked.push(asked(request));
        let refused = children_of(request).and_then(|block| switches.refused.get(block).copied());
        let glitch = match switches.glitch {
            Some((0, glitch)) => {
                switches.glitch = None;
                Some(glitch)
            }
            Some((n, glitch)) => {
                switches.glitch = Some((n - 1, glitch));
                None
            }
            None => None,
        };
        let cap = switches.at_most.unwrap_or(MAX_PAGE_SIZE);
        (
            switches.served,
            glitch,
            switches.valid_token.clone(),
            refused,
            cap,
        )
    };
    match glitch {
        Some(Glitch::RateLimited { retry_after_secs }) => {
            return error(
                429,
                "rate_limited",
                "You have been rate limited. Please try again in a few minutes.",
                served,
            )
            .with_header("retry-after", retry_after_secs)
        }
        Some(Glitch::Unavailable) => {
            return error(
                503,
                "service_unavailable",
                "Notion is unavailable. Please try again later.",
                served,
            )
        }
        Some(Glitch::Malformed) => {
            return FakeResponse::text(
                200,
                "application/json; charset=utf-8",
                r#"{"object":"list","results":[{"object":"page","id":"#,
            )
        }
        Some(Glitch::PathAsId) => {
            let mut response = normal_answer(state, request, served, valid_token, refused, cap);
            if let Ok(mut body) = serde_json::from_slice::<Value>(&response.body) {
                if let Some(first) = body.pointer_mut("/results/0/id") {
                    *first = json!("../../v1/users/me");
                }
                response.body = body.to_string().into_bytes();
            }
            return response;
        }
        None => {}
    }
    normal_answer(state, request, served, valid_token, refused, cap)
}

/// The answer Notion gives, glitches aside.
fn normal_answer(
    state: &State,
    request: &FakeRequest,
    served: u64,
    valid_token: Option<String>,
    refused: Option<Refusal>,
    cap: usize,
) -> FakeResponse {
    if request.bearer().is_none() || request.bearer() != valid_token.as_deref() {
        return error(401, "unauthorized", "API token is invalid.", served);
    }
    match request.header("notion-version") {
        Some(NOTION_VERSION) => {}
        Some(other) => {
            let message = format!(
                "Notion-Version header failed validation: Notion-Version header should be a supported version, instead was `{other}`."
            );
            return error(400, "validation_error", &message, served);
        }
        None => {
            return error(
                400,
                "missing_version",
                "Notion-Version header failed validation: Notion-Version header should be defined, instead was `undefined`.",
                served,
            )
        }
    }
    let path = request.path.as_str();
    let route = (request.method.as_str(), path);
    if route == ("GET", "/v1/users/me") {
        return FakeResponse::json(
            200,
            &json!({
                "object": "user",
                "id": BOT,
                "name": "Fake integration",
                "avatar_url": null,
                "type": "bot",
                "bot": {"owner": {"type": "workspace", "workspace": true},
                        "workspace_name": "Fake workspace"},
                "request_id": request_id(served),
            }),
        );
    }
    let workspace = state.workspace.lock().expect("workspace lock");
    if route == ("POST", "/v1/search") {
        return search(&workspace, &request.json(), served, cap);
    }
    if let Some(id) = path
        .strip_prefix("/v1/databases/")
        .and_then(|p| p.strip_suffix("/query"))
    {
        if request.method == "POST" {
            return query(&workspace, id, &request.json(), served, cap);
        }
    }
    if let Some(id) = path
        .strip_prefix("/v1/blocks/")
        .and_then(|p| p.strip_suffix("/children"))
    {
        if request.method == "GET" {
            return match refused {
                Some(Refusal::Unsupported) => error(
                    400,
                    "validation_error",
                    "Block type is not supported via the API.",
                    served,
                ),
                Some(Refusal::Restricted) => error(
                    403,
                    "restricted_resource",
                    "API token does not have access to this resource.",
                    served,
                ),
                None => children(&workspace, id, request, served, cap),
            };
        }
    }
    error(400, "invalid_request_url", "Invalid request URL.", served)
}

fn body_json(body: &Value, served: u64) -> Result<(), FakeResponse> {
    if body.is_null() || body.is_object() {
        Ok(())
    } else {
        Err(error(
            400,
            "invalid_json",
            "Error parsing JSON body.",
            served,
        ))
    }
}

fn search(workspace: &Workspace, body: &Value, served: u64, cap: usize) -> FakeResponse {
    if let Err(e) = body_json(body, served) {
        return e;
    }
    let size = match page_size(body.get("page_size"), served) {
        Ok(size) => size.min(cap),
        Err(e) => return e,
    };
    let query = body["query"].as_str().unwrap_or_default().to_lowercase();
    let object = body.pointer("/filter/value").and_then(Value::as_str);
    let ascending = body.pointer("/sort/direction").and_then(Value::as_str) == Some("ascending");
    let mut items: Vec<&Item> = workspace
        .items
        .iter()
        .filter(|i| i.title.to_lowercase().contains(&query))
        .filter(|i| match object {
            Some("page") => i.object == Object::Page,
            Some("database") => i.object == Object::Database,
            _ => true,
        })
        .collect();
    // Newest edit first (the default here too); creation order breaks ties.
    items.sort_by_key(|i| (std::cmp::Reverse(i.edited), std::cmp::Reverse(i.created)));
    if ascending {
        items.reverse();
    }
    let all = items
        .into_iter()
        .map(|i| (i.id.clone(), item_json(i, served)))
        .collect();
    list(
        all,
        body["start_cursor"].as_str(),
        size,
        "page_or_database",
        served,
    )
}

fn query(workspace: &Workspace, id: &str, body: &Value, served: u64, cap: usize) -> FakeResponse {
    let exists = workspace
        .items
        .iter()
        .any(|i| i.id == id && i.object == Object::Database);
    if !exists {
        let message = format!(
            "Could not find database with ID: {id}. Make sure the relevant pages and databases are shared with your integration."
        );
        return error(404, "object_not_found", &message, served);
    }
    if let Err(e) = body_json(body, served) {
        return e;
    }
    let size = match page_size(body.get("page_size"), served) {
        Ok(size) => size.min(cap),
        Err(e) => return e,
    };
    let parent = Parent::Database(id.to_owned());
    let mut rows: Vec<&Item> = workspace
        .items
        .iter()
        .filter(|i| i.parent == parent)
        .collect();
    // Creation order unless the first sort asks otherwise.
    let sort = body.pointer("/sorts/0");
    let descending = sort.and_then(|s| s["direction"].as_str()) == Some("descending");
    if sort.and_then(|s| s["timestamp"].as_str()) == Some("last_edited_time") {
        rows.sort_by_key(|i| (i.edited, i.created));
    }
    if descending {
        rows.reverse();
    }
    let all = rows
        .into_iter()
        .map(|i| (i.id.clone(), item_json(i, served)))
        .collect();
    list(
        all,
        body["start_cursor"].as_str(),
        size,
        "page_or_database",
        served,
    )
}

fn children(
    workspace: &Workspace,
    id: &str,
    request: &FakeRequest,
    served: u64,
    cap: usize,
) -> FakeResponse {
    let size = match request.query.get("page_size") {
        None => MAX_PAGE_SIZE,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
            _ => {
                return error(
                    400,
                    "validation_error",
                    "query failed validation: page_size should be a number between 1 and 100.",
                    served,
                )
            }
        },
    };
    // The page a block belongs to gives its times.
    let owner = |block_id: &str| -> Option<&Item> {
        let mut current = block_id.to_owned();
        for _ in 0..64 {
            if let Some(item) = workspace.items.iter().find(|i| i.id == current) {
                return Some(item);
            }
            let (parent, _) = workspace
                .blocks
                .iter()
                .find(|(_, blocks)| blocks.iter().any(|b| b.id == current))?;
            current = parent.clone();
        }
        None
    };
    let is_page = workspace
        .items
        .iter()
        .any(|i| i.id == id && i.object == Object::Page);
    // Every page has an entry (maybe empty); a database or an unknown id has none.
    let (Some(item), Some(blocks)) = (owner(id), workspace.blocks.get(id)) else {
        let message = format!(
            "Could not find block with ID: {id}. Make sure the relevant pages and databases are shared with your integration."
        );
        return error(404, "object_not_found", &message, served);
    };
    let all = blocks
        .iter()
        .map(|b| (b.id.clone(), block_json(b, id, is_page, item)))
        .collect();
    list(
        all,
        request.query.get("start_cursor").map(String::as_str),
        size.min(cap),
        "block",
        served,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use hyper::header::{HeaderValue, AUTHORIZATION};
    use hyper::HeaderMap;

    /// Answers a request as the server would, without the network.
    async fn call(
        fake: &FakeNotion,
        method: &str,
        path: &str,
        body: Option<Value>,
        token: &str,
    ) -> (u16, Option<String>, Value) {
        let mut headers = HeaderMap::new();
        let bearer = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
        headers.insert(AUTHORIZATION, bearer);
        headers.insert("notion-version", HeaderValue::from_static(NOTION_VERSION));
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let request = FakeRequest {
            method: method.into(),
            path: path.into(),
            query: url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
            headers,
            body: body.map(|b| b.to_string()).unwrap_or_default().into(),
        };
        let response = answer(&fake.state, &request);
        let retry_after = response
            .headers
            .iter()
            .find(|(name, _)| name == "retry-after")
            .map(|(_, value)| value.clone());
        let json = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        (response.status, retry_after, json)
    }

    const TOKEN: &str = "ntn_unit";

    fn titles(list: &Value) -> Vec<String> {
        list["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let title = r["properties"]["title"]["title"]
                    .get(0)
                    .or_else(|| r["properties"]["Name"]["title"].get(0))
                    .or_else(|| r["title"].get(0));
                title.unwrap()["plain_text"].as_str().unwrap().to_owned()
            })
            .collect()
    }

    #[tokio::test]
    async fn search_pages_newest_first_with_cursors() {
        let fake = FakeNotion::start(TOKEN).await;
        for n in 0..5 {
            fake.add_page(&format!("Page {n}"), vec![]);
        }
        fake.rename(&fake.ids()[0], "Page 0 renamed");
        let body = json!({"page_size": 2, "sort": {"direction": "descending", "timestamp": "last_edited_time"}});
        let (status, _, first) = call(&fake, "POST", "/v1/search", Some(body.clone()), TOKEN).await;
        assert_eq!(status, 200);
        assert_eq!(titles(&first), ["Page 0 renamed", "Page 4"]);
        assert_eq!(first["has_more"], true);
        let mut next = body;
        next["start_cursor"] = first["next_cursor"].clone();
        let (_, _, second) = call(&fake, "POST", "/v1/search", Some(next.clone()), TOKEN).await;
        assert_eq!(titles(&second), ["Page 3", "Page 2"]);
        next["start_cursor"] = second["next_cursor"].clone();
        let (_, _, last) = call(&fake, "POST", "/v1/search", Some(next), TOKEN).await;
        assert_eq!(titles(&last), ["Page 1"]);
        assert_eq!(
            (last["has_more"].clone(), last["next_cursor"].clone()),
            (json!(false), Value::Null)
        );
        let (status, _, bad) = call(
            &fake,
            "POST",
            "/v1/search",
            Some(json!({"page_size": 101})),
            TOKEN,
        )
        .await;
        assert_eq!(
            (status, bad["code"].as_str()),
            (400, Some("validation_error"))
        );
    }

    #[tokio::test]
    async fn rows_and_nested_blocks_are_served_as_notion_does() {
        let fake = FakeNotion::start(TOKEN).await;
        let db = fake.add_database("Projects");
        let row = fake.add_row(
            &db,
            "Launch",
            "Done",
            vec![Block::bullet("Plan").with_children(vec![Block::to_do("Book room", true)])],
        );
        let path = format!("/v1/databases/{db}/query");
        let (status, _, rows) = call(&fake, "POST", &path, Some(json!({})), TOKEN).await;
        assert_eq!(status, 200);
        assert_eq!(rows["results"][0]["id"], row);
        assert_eq!(rows["results"][0]["parent"]["database_id"], db);
        assert_eq!(
            rows["results"][0]["properties"]["Status"]["select"]["name"],
            "Done"
        );
        let (_, _, again) = call(&fake, "POST", &path, Some(json!({})), TOKEN).await;
        let url = |v: &Value| {
            v["results"][0]["properties"]["Attachments"]["files"][0]["file"]["url"].clone()
        };
        assert_ne!(
            url(&rows),
            url(&again),
            "hosted file URLs are signed per read"
        );

        let (_, _, blocks) = call(
            &fake,
            "GET",
            &format!("/v1/blocks/{row}/children"),
            None,
            TOKEN,
        )
        .await;
        let bullet = &blocks["results"][0];
        assert_eq!(
            (bullet["type"].as_str(), bullet["has_children"].as_bool()),
            (Some("bulleted_list_item"), Some(true))
        );
        let path = format!(
            "/v1/blocks/{}/children?page_size=10",
            bullet["id"].as_str().unwrap()
        );
        let (_, _, nested) = call(&fake, "GET", &path, None, TOKEN).await;
        assert_eq!(nested["results"][0]["to_do"]["checked"], true);
        assert_eq!(nested["results"][0]["parent"]["type"], "block_id");

        fake.remove(&db);
        let (status, _, gone) = call(
            &fake,
            "POST",
            &format!("/v1/databases/{db}/query"),
            None,
            TOKEN,
        )
        .await;
        assert_eq!(
            (status, gone["code"].as_str()),
            (404, Some("object_not_found"))
        );
        assert!(fake.ids().is_empty(), "a database goes with its rows");
    }

    #[tokio::test]
    async fn switches_answer_as_notion_does_when_things_go_wrong() {
        let fake = FakeNotion::start(TOKEN).await;
        let (status, _, me) = call(&fake, "GET", "/v1/users/me", None, TOKEN).await;
        assert_eq!((status, me["type"].as_str()), (200, Some("bot")));
        let (status, _, bad) = call(&fake, "GET", "/v1/users/me", None, "ntn_wrong").await;
        assert_eq!((status, bad["code"].as_str()), (401, Some("unauthorized")));

        fake.glitch_after(
            1,
            Glitch::RateLimited {
                retry_after_secs: 1,
            },
        );
        assert_eq!(call(&fake, "POST", "/v1/search", None, TOKEN).await.0, 200);
        let (status, retry_after, limited) = call(&fake, "POST", "/v1/search", None, TOKEN).await;
        assert_eq!((status, retry_after.as_deref()), (429, Some("1")));
        assert_eq!(limited["object"], "error");
        assert_eq!(limited["code"], "rate_limited");
        assert_eq!(
            call(&fake, "POST", "/v1/search", None, TOKEN).await.0,
            200,
            "once"
        );

        fake.glitch_after(0, Glitch::Malformed);
        let (status, _, body) = call(&fake, "POST", "/v1/search", None, TOKEN).await;
        assert_eq!((status, body), (200, Value::Null), "not JSON");
        fake.glitch_after(0, Glitch::Unavailable);
        assert_eq!(call(&fake, "POST", "/v1/search", None, TOKEN).await.0, 503);

        fake.revoke_token();
        let (status, _, revoked) = call(&fake, "POST", "/v1/search", None, TOKEN).await;
        assert_eq!(
            (status, revoked["code"].as_str()),
            (401, Some("unauthorized"))
        );
    }

    #[tokio::test]
    async fn child_pages_trash_refusals_and_short_pages_answer_as_notion_does() {
        let fake = FakeNotion::start(TOKEN).await;
        let parent = fake.add_page(
            "Roadmap",
            vec![
                Block::toggle("Plans").with_children(vec![Block::paragraph("Q1")]),
                Block::child_page("Sub page", vec![Block::paragraph("Inside")]),
                Block::unsupported(),
            ],
        );
        let blocks = fake.block_ids(&parent);
        let sub = blocks[1].clone();
        let (_, _, listed) = call(
            &fake,
            "GET",
            &format!("/v1/blocks/{parent}/children"),
            None,
            TOKEN,
        )
        .await;
        let child = &listed["results"][1];
        assert_eq!(child["id"], sub.as_str());
        assert_eq!(child["child_page"], json!({"title": "Sub page"}));
        assert_eq!(child["has_children"], true);
        assert_eq!(listed["results"][2]["unsupported"], json!({}));
        let (_, _, found) = call(&fake, "POST", "/v1/search", Some(json!({})), TOKEN).await;
        let found_sub = found["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == sub.as_str())
            .unwrap();
        assert_eq!(found_sub["parent"]["page_id"], parent.as_str());

        fake.refuse_children(&blocks[0], Refusal::Unsupported);
        fake.refuse_children(&sub, Refusal::Restricted);
        let children = |id: &str| format!("/v1/blocks/{id}/children");
        let (status, _, refused) = call(&fake, "GET", &children(&blocks[0]), None, TOKEN).await;
        assert_eq!(
            (status, refused["code"].as_str()),
            (400, Some("validation_error"))
        );
        let (status, _, refused) = call(&fake, "GET", &children(&sub), None, TOKEN).await;
        assert_eq!(
            (status, refused["code"].as_str()),
            (403, Some("restricted_resource"))
        );

        let before = fake.last_edited(&parent);
        fake.trash(&parent);
        assert!(fake.last_edited(&parent) > before, "trashing is an edit");
        fake.list_at_most(1);
        let body = json!({"page_size": 100, "sort": {"direction": "descending", "timestamp": "last_edited_time"}});
        let (_, _, newest) = call(&fake, "POST", "/v1/search", Some(body), TOKEN).await;
        assert_eq!(newest["results"].as_array().unwrap().len(), 1);
        assert_eq!(newest["has_more"], true);
        assert_eq!(
            (
                &newest["results"][0]["id"],
                &newest["results"][0]["in_trash"]
            ),
            (&json!(parent), &json!(true))
        );
        let last = fake.asked().pop().unwrap();
        assert_eq!(
            (
                last.path.as_str(),
                last.page_size,
                last.direction.as_deref()
            ),
            ("/v1/search", Some(100), Some("descending"))
        );

        fake.glitch_after(0, Glitch::PathAsId);
        let (status, _, tampered) = call(&fake, "POST", "/v1/search", None, TOKEN).await;
        assert_eq!(status, 200);
        assert_eq!(tampered["results"][0]["id"], "../../v1/users/me");
    }

    #[tokio::test]
    async fn the_demo_workspace_has_pages_a_database_and_rows() {
        let fake = FakeNotion::start(DEMO_TOKEN).await;
        fake.load_demo();
        let (_, _, all) = call(&fake, "POST", "/v1/search", Some(json!({})), DEMO_TOKEN).await;
        let objects: Vec<&str> = all["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["object"].as_str().unwrap())
            .collect();
        assert_eq!(objects.len(), 7);
        assert_eq!(objects.iter().filter(|o| **o == "database").count(), 1);
    }
}

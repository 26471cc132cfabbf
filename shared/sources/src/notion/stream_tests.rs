//! The entity stream against a small scripted Notion: paging, checkpoints and resume, time
//! and call budgets, incremental runs, and what each kind of answer means for the run.

use super::api::ListPage;
use super::entities::id_of;
use super::stream::{Listing, Place, CALLS_PER_PAGE, CONTENT_CALLS_PER_ITEM};
use super::tests::{block, database, direct, id, page, row, time, TOKEN};
use super::*;
use crate::testing::{page_time_limit, SHORT_BUDGET, SLOW_CALL};
use crate::upstream::http_client;
use domain::entity::Entity;
use domain::stream::EntityPage;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

// --- a small Notion: the shared scripted upstream sees paths only, and Notion's list calls
// carry their cursor in the body ---

/// The call (1-based) that answers this status, headers and body instead.
type Glitch = (usize, u16, Vec<(&'static str, String)>, String);

#[derive(Default)]
struct MiniState {
    /// What the search finds; it answers them sorted by `last_edited_time` in the direction
    /// asked (ties in this order).
    search: Vec<Value>,
    /// Blocks whose children answer this status and Notion error code.
    refuse: BTreeMap<String, (u16, &'static str)>,
    /// Calls whose path holds this id answer after this delay.
    slow: Option<(String, Duration)>,
    /// Every call answers after this delay (a slow Notion), on top of `slow`.
    delay: Duration,
    rows: BTreeMap<String, Vec<Value>>,
    blocks: BTreeMap<String, Vec<Value>>,
    /// Results per list call, whatever was asked: small, so few items take many pages.
    page_size: usize,
    glitch: Option<Glitch>,
    calls: Vec<String>,
    sizes_asked: Vec<u64>,
}

struct MiniNotion {
    base_url: String,
    state: Arc<Mutex<MiniState>>,
    task: JoinHandle<()>,
}

impl Drop for MiniNotion {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MiniNotion {
    async fn start(state: MiniState) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(state));
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let state = Arc::clone(&state);
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body.collect().await.unwrap().to_bytes();
                            let (reply, delay) = {
                                let mut state = state.lock().unwrap();
                                let delay = state
                                    .slow
                                    .as_ref()
                                    .filter(|(id, _)| parts.uri.path().contains(id.as_str()))
                                    .map_or(Duration::ZERO, |(_, delay)| *delay)
                                    + state.delay;
                                (answer(&mut state, &parts, &body), delay)
                            };
                            if !delay.is_zero() {
                                tokio::time::sleep(delay).await;
                            }
                            Ok::<_, Infallible>(reply)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            base_url,
            state,
            task,
        }
    }

    fn source(&self) -> NotionSource {
        NotionSource::new(
            http_client().unwrap(),
            BaseUrl::parse(&self.base_url).unwrap(),
        )
    }

    fn calls(&self) -> Vec<String> {
        self.state.lock().unwrap().calls.clone()
    }
}

fn respond(status: u16, headers: &[(&str, String)], body: String) -> Response<Full<Bytes>> {
    let mut response = Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(*name, value);
    }
    response.body(Full::new(Bytes::from(body))).unwrap()
}

fn error(status: u16, code: &str, message: &str) -> Response<Full<Bytes>> {
    let body = json!({"object": "error", "status": status, "code": code, "message": message});
    respond(status, &[], body.to_string())
}

fn answer(
    state: &mut MiniState,
    parts: &hyper::http::request::Parts,
    body: &[u8],
) -> Response<Full<Bytes>> {
    let path = parts.uri.path().to_owned();
    let query: BTreeMap<String, String> =
        url::form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let cursor = body["start_cursor"]
        .as_str()
        .or(query.get("start_cursor").map(String::as_str))
        .map(str::to_owned);
    state.calls.push(format!(
        "{} {path} {}",
        parts.method,
        cursor.as_deref().unwrap_or("-")
    ));
    let size = body["page_size"]
        .as_u64()
        .or_else(|| query.get("page_size")?.parse().ok());
    state.sizes_asked.extend(size);
    if let Some((n, status, headers, body)) = &state.glitch {
        if *n == state.calls.len() {
            return respond(*status, headers, body.clone());
        }
    }
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    if header("authorization") != Some(&format!("Bearer {TOKEN}")) {
        return error(401, "unauthorized", "API token is invalid.");
    }
    if header("notion-version") != Some(NOTION_VERSION) {
        return error(
            400,
            "missing_version",
            "Notion-Version header failed validation",
        );
    }
    let items = if path == "/v1/search" && parts.method == "POST" {
        let mut found = state.search.clone();
        let edited = |v: &Value| {
            v["last_edited_time"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        };
        if body.pointer("/sort/direction").and_then(Value::as_str) == Some("ascending") {
            found.sort_by_key(edited);
        } else {
            found.sort_by_key(|v| std::cmp::Reverse(edited(v)));
        }
        Some(found)
    } else if let Some((status, code)) = path
        .strip_prefix("/v1/blocks/")
        .and_then(|p| p.strip_suffix("/children"))
        .and_then(|block| state.refuse.get(block))
    {
        return error(*status, code, "refused");
    } else if let Some(db) = path
        .strip_prefix("/v1/databases/")
        .and_then(|p| p.strip_suffix("/query"))
    {
        state.rows.get(db).cloned()
    } else if let Some(block) = path
        .strip_prefix("/v1/blocks/")
        .and_then(|p| p.strip_suffix("/children"))
    {
        state.blocks.get(block).cloned()
    } else if path == "/v1/users/me" {
        let user = json!({"object": "user", "id": id(900), "type": "bot", "bot": {}});
        return respond(200, &[], user.to_string());
    } else {
        None
    };
    let Some(items) = items else {
        return error(404, "object_not_found", "Could not find object.");
    };
    let start: usize = cursor
        .and_then(|c| c.strip_prefix('c')?.parse().ok())
        .unwrap_or(0);
    let end = (start + state.page_size.max(1)).min(items.len());
    let has_more = end < items.len();
    let list = json!({
        "object": "list",
        "results": items[start.min(end)..end],
        "has_more": has_more,
        "next_cursor": has_more.then(|| format!("c{end}")),
    });
    respond(200, &[], list.to_string())
}

/// Pages until the stream ends.
async fn drain(stream: &mut Box<dyn EntityStream>) -> Vec<EntityPage> {
    let mut pages = Vec::new();
    while let Some(page) = stream.next_page().await.unwrap() {
        pages.push(page);
        assert!(pages.len() < 100, "the stream never ends");
    }
    pages
}

fn keys(pages: &[EntityPage]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|p| &p.entities)
        .map(|e| format!("{}#{}", e.entity_type, e.entity_id))
        .collect()
}

fn request(since: Option<Value>, resume: Option<Value>) -> StreamRequest {
    StreamRequest {
        auth: direct(TOKEN),
        config: Map::new(),
        cursor: since,
        checkpoint: resume,
        page_budget: crate::testing::PAGE_BUDGET,
    }
}

/// Pages 1-3, database 10 with rows 11-13 (also in the search, as Notion lists them), page
/// 1 with nested content; three results per list call.
fn workspace() -> MiniState {
    let mut state = MiniState {
        page_size: 3,
        search: vec![
            page(1, "Roadmap", 30),
            row(12, 10, "Ship notion", 29),
            database(10, "Projects", 28),
            page(2, "Meeting notes", 27),
            row(11, 10, "Write tests", 26),
            page(3, "Ideas", 25),
            row(13, 10, "Fix bugs", 24),
        ],
        ..MiniState::default()
    };
    state.rows.insert(
        id(10),
        vec![
            row(11, 10, "Write tests", 26),
            row(12, 10, "Ship notion", 29),
            row(13, 10, "Fix bugs", 24),
        ],
    );
    state.blocks.insert(
        id(1),
        vec![
            block(100, "heading_1", "Goals", false),
            block(101, "bulleted_list_item", "Level one", true),
            json!({"object": "block", "id": id(102), "type": "child_page", "has_children": true,
                   "child_page": {"title": "Sub page"}}),
            block(103, "paragraph", "The end", false),
        ],
    );
    state.blocks.insert(
        id(101),
        vec![block(110, "bulleted_list_item", "Level two", true)],
    );
    state
        .blocks
        .insert(id(110), vec![block(120, "paragraph", "Level three", true)]);
    state
        .blocks
        .insert(id(120), vec![block(130, "paragraph", "Level four", false)]);
    state.blocks.insert(
        id(102),
        vec![block(140, "paragraph", "Belongs to the sub page", false)],
    );
    for n in [2, 3, 11, 12, 13] {
        state.blocks.insert(
            id(n),
            vec![block(200 + n, "paragraph", &format!("Body of {n}"), false)],
        );
    }
    state
}

/// The workspace and 40 more pages and rows: several stream pages.
fn bigger_workspace() -> MiniState {
    let mut state = workspace();
    state.page_size = 7;
    for n in 0..20 {
        state.search.push(page(400 + n, &format!("Note {n}"), 20));
        state.blocks.insert(
            id(400 + n),
            vec![block(600 + n, "paragraph", "note", false)],
        );
        let extra = row(500 + n, 10, &format!("Task {n}"), 20);
        state.search.push(extra.clone());
        state.rows.get_mut(&id(10)).unwrap().push(extra);
        state.blocks.insert(
            id(500 + n),
            vec![block(700 + n, "paragraph", "task", false)],
        );
    }
    state
}

// --- the stream ---

#[tokio::test]
async fn a_full_run_reads_the_search_the_rows_and_each_pages_content() {
    let notion = MiniNotion::start(workspace()).await;
    let mut stream = notion.source().open_stream(request(None, None)).unwrap();
    assert!(notion.calls().is_empty(), "opening a stream asks nothing");
    let pages = drain(&mut stream).await;
    let mut all = keys(&pages);
    all.sort();
    let mut expected: Vec<String> = [1, 2, 3]
        .map(|n| format!("notion_page#{}", id(n)))
        .into_iter()
        .chain([11, 12, 13].map(|n| format!("notion_database_row#{}", id(n))))
        .chain([format!("notion_database#{}", id(10))])
        .collect();
    expected.sort();
    assert_eq!(
        all, expected,
        "every item once: rows from their database only"
    );
    assert!(!stream.incremental());
    assert_eq!(
        stream.cursor(),
        Some(json!({"last_edited_time": "2026-03-01T10:30:00Z"}))
    );

    let entities: Vec<&Entity> = pages.iter().flat_map(|p| &p.entities).collect();
    let roadmap = entities.iter().find(|e| e.entity_id == id(1)).unwrap();
    assert_eq!(roadmap.title, "Roadmap");
    assert_eq!(roadmap.updated_at, Some(time(30)));
    assert_eq!(
        roadmap.payload["content"],
        "# Goals\n- Level one\n  - Level two\n    Level three\nSub page\nThe end",
        "three levels deep; a child page's blocks are its own"
    );
    assert_eq!(roadmap.payload["content_truncated"], false);
    let db = entities.iter().find(|e| e.entity_id == id(10)).unwrap();
    assert_eq!(db.title, "Projects");
    assert_eq!(
        db.payload["properties"],
        json!({"Name": "title", "Status": "select"})
    );
    let tests = entities.iter().find(|e| e.entity_id == id(11)).unwrap();
    assert_eq!(tests.payload["content"], "Body of 11");
    assert_eq!(
        tests.payload["properties"],
        json!({"Name": "Write tests", "Status": "Done"})
    );

    let calls = notion.calls();
    assert_eq!(calls.iter().filter(|c| c.contains("/v1/search")).count(), 3);
    assert_eq!(calls.iter().filter(|c| c.contains("/query")).count(), 1);
    assert!(
        calls.iter().all(|c| !c.contains(&id(120))),
        "no fourth level: {calls:?}"
    );
    assert!(
        calls.iter().all(|c| !c.contains(&id(102))),
        "no child page's blocks"
    );
    let sizes = notion.state.lock().unwrap().sizes_asked.clone();
    assert!(sizes.iter().all(|s| *s == 100), "{sizes:?}");
}

#[tokio::test]
async fn each_page_is_a_bounded_number_of_calls() {
    let mut state = MiniState {
        page_size: 100,
        ..MiniState::default()
    };
    for n in 0..60 {
        state
            .search
            .push(page(1000 + n, &format!("Page {n}"), 59 - n));
        state
            .blocks
            .insert(id(1000 + n), vec![block(5000 + n, "paragraph", "x", false)]);
    }
    let notion = MiniNotion::start(state).await;
    let mut stream = notion.source().open_stream(request(None, None)).unwrap();
    let mut before = 0;
    let mut total = 0;
    while let Some(page) = stream.next_page().await.unwrap() {
        let calls = notion.calls().len();
        assert!(
            calls - before <= CALLS_PER_PAGE + CONTENT_CALLS_PER_ITEM,
            "{}",
            calls - before
        );
        before = calls;
        total += page.entities.len();
    }
    assert_eq!(total, 60);
    assert_eq!(
        notion.calls().len(),
        61,
        "one search call and one content call per page"
    );
}

#[tokio::test]
async fn every_checkpoint_resumes_right_after_its_page() {
    let notion = MiniNotion::start(bigger_workspace()).await;
    let source = notion.source();
    let mut stream = source.open_stream(request(None, None)).unwrap();
    let pages = drain(&mut stream).await;
    let all = keys(&pages);
    assert!(pages.len() >= 3, "the workspace takes several pages");
    for (i, page) in pages.iter().enumerate() {
        let resume = Some(page.checkpoint.clone());
        let mut resumed = source.open_stream(request(None, resume)).unwrap();
        let rest = drain(&mut resumed).await;
        let mut seen = keys(&pages[..=i]);
        seen.extend(keys(&rest));
        assert_eq!(seen, all, "resumed after page {i}");
        assert_eq!(resumed.cursor(), stream.cursor());
    }
}

#[tokio::test]
async fn a_resumed_page_skips_past_the_last_item_even_if_items_moved() {
    let mut listing = Listing::at(Place {
        page: Some("c3".into()),
        consumed: 2,
        last: Some(id(5)),
        end: false,
    });
    // An item before the resumed position vanished: the page starts one item later.
    listing.load(ListPage {
        results: vec![page(5, "a", 1), page(6, "b", 1), page(7, "c", 1)],
        next_cursor: None,
    });
    assert_eq!(id_of(&listing.take().unwrap()), Some(id(6).as_str()));
    assert_eq!(id_of(&listing.take().unwrap()), Some(id(7).as_str()));
    assert!(listing.take().is_none() && listing.place.end);
}

#[tokio::test]
async fn a_resumed_page_whose_last_item_left_is_handed_out_again_whole() {
    let mut listing = Listing::at(Place {
        page: Some("c3".into()),
        consumed: 2,
        last: Some(id(5)),
        end: false,
    });
    // The last item handed out left the page: where the rest starts is unknown, so nothing
    // is skipped (by count, page 7 would be, and then deleted as absent).
    listing.load(ListPage {
        results: vec![page(4, "a", 1), page(6, "b", 1), page(7, "c", 1)],
        next_cursor: None,
    });
    let ids: Vec<String> = std::iter::from_fn(|| listing.take())
        .map(|item| id_of(&item).unwrap().to_owned())
        .collect();
    assert_eq!(ids, [id(4), id(6), id(7)]);
}

/// A stream that starts no call once `budget` has passed in a page (after its first item).
fn stream_with_budget(
    notion: &MiniNotion,
    resume: Option<Value>,
    budget: Duration,
) -> Box<dyn EntityStream> {
    let request = StreamRequest {
        page_budget: budget,
        ..request(None, resume)
    };
    notion.source().open_stream(request).unwrap()
}

#[tokio::test]
async fn a_full_run_reads_oldest_first_so_an_item_edited_meanwhile_is_still_read() {
    let mut state = MiniState {
        page_size: 2,
        ..MiniState::default()
    };
    for n in 1..=5 {
        state.search.push(page(n, &format!("Page {n}"), n));
        state
            .blocks
            .insert(id(n), vec![block(100 + n, "paragraph", "x", false)]);
    }
    let notion = MiniNotion::start(state).await;
    // One item a page, so the run spans several search calls.
    let mut stream = stream_with_budget(&notion, None, Duration::ZERO);
    let first = stream.next_page().await.unwrap().unwrap();
    assert_eq!(
        keys(std::slice::from_ref(&first)),
        [format!("notion_page#{}", id(1))]
    );
    // Page 3, not read yet, is edited: newest first, it would move to the part of the
    // search already read, never be yielded, and be deleted as absent.
    notion.state.lock().unwrap().search[2] = page(3, "Page 3 edited", 59);
    let mut pages = vec![first];
    pages.extend(drain(&mut stream).await);
    let mut all = keys(&pages);
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 5, "{all:?}");
    let edited = pages
        .iter()
        .flat_map(|p| &p.entities)
        .find(|e| e.entity_id == id(3))
        .unwrap();
    assert_eq!(edited.title, "Page 3 edited");
    assert_eq!(
        stream.cursor(),
        Some(json!({"last_edited_time": "2026-03-01T10:59:00Z"}))
    );
}

#[tokio::test]
async fn a_page_starts_no_call_once_its_time_budget_is_spent() {
    let notion = MiniNotion::start(bigger_workspace()).await;
    let mut normal = notion.source().open_stream(request(None, None)).unwrap();
    let mut expected = keys(&drain(&mut normal).await);
    expected.sort();
    let normal_calls = notion.calls().len();

    let mut stream = stream_with_budget(&notion, None, Duration::ZERO);
    let pages = drain(&mut stream).await;
    assert!(pages.iter().all(|p| p.entities.len() <= 1));
    let mut all = keys(&pages);
    all.sort();
    assert_eq!(all, expected);
    assert_eq!(
        notion.calls().len(),
        2 * normal_calls,
        "no call is made twice"
    );
    for (i, page) in pages.iter().enumerate() {
        let mut resumed =
            stream_with_budget(&notion, Some(page.checkpoint.clone()), Duration::ZERO);
        let mut seen = keys(&pages[..=i]);
        seen.extend(keys(&drain(&mut resumed).await));
        seen.sort();
        assert_eq!(seen, expected, "resumed after page {i}");
    }
}

#[tokio::test]
async fn a_page_of_a_slow_notion_returns_within_its_budget_and_one_call() {
    let mut state = MiniState {
        page_size: 100,
        delay: SLOW_CALL,
        ..MiniState::default()
    };
    for n in 0..12 {
        state
            .search
            .push(page(1000 + n, &format!("Page {n}"), 59 - n));
        state
            .blocks
            .insert(id(1000 + n), vec![block(5000 + n, "paragraph", "x", false)]);
    }
    let notion = MiniNotion::start(state).await;
    let mut stream = stream_with_budget(&notion, None, SHORT_BUDGET);
    let mut pages = Vec::new();
    loop {
        let began = Instant::now();
        let Some(page) = stream.next_page().await.unwrap() else {
            break;
        };
        let took = began.elapsed();
        assert!(
            took <= page_time_limit(SHORT_BUDGET),
            "page {} took {took:?}",
            pages.len()
        );
        assert!(!page.entities.is_empty(), "every page moves the run on");
        pages.push(page);
    }
    assert_eq!(keys(&pages).len(), 12);
    assert!(pages.len() >= 4, "{} pages", pages.len());
}

#[tokio::test]
async fn an_item_half_read_when_the_budget_runs_out_is_read_again_by_the_next_page() {
    let mut state = MiniState {
        page_size: 100,
        slow: Some((id(301), Duration::from_millis(400))),
        ..MiniState::default()
    };
    state.search = vec![page(1, "Quick", 1), page(2, "Nested", 2)];
    state
        .blocks
        .insert(id(1), vec![block(200, "paragraph", "quick", false)]);
    state.blocks.insert(
        id(2),
        vec![
            block(301, "toggle", "slow", true),
            block(302, "toggle", "after", true),
        ],
    );
    state
        .blocks
        .insert(id(301), vec![block(311, "paragraph", "inside slow", false)]);
    state.blocks.insert(
        id(302),
        vec![block(312, "paragraph", "inside after", false)],
    );
    let notion = MiniNotion::start(state).await;
    let mut stream = stream_with_budget(&notion, None, Duration::from_millis(200));
    let first = stream.next_page().await.unwrap().unwrap();
    assert_eq!(
        keys(std::slice::from_ref(&first)),
        [format!("notion_page#{}", id(1))]
    );
    assert!(
        notion.calls().iter().all(|c| !c.contains(&id(302))),
        "no call after the budget ran out: {:?}",
        notion.calls()
    );
    // The half-read page is whole in the next page, and after the first page's checkpoint.
    let second = stream.next_page().await.unwrap().unwrap();
    assert_eq!(second.entities.len(), 1);
    assert_eq!(
        second.entities[0].payload["content"],
        "slow\n  inside slow\nafter\n  inside after"
    );
    assert!(stream.next_page().await.unwrap().is_none());
    let mut resumed = stream_with_budget(&notion, Some(first.checkpoint), Duration::ZERO);
    assert_eq!(
        keys(&drain(&mut resumed).await),
        [format!("notion_page#{}", id(2))]
    );
}

#[tokio::test]
async fn a_nested_block_notion_refuses_is_left_out_not_fatal() {
    let mut state = workspace();
    // An unsupported block's children: 400 validation_error; another block: 403.
    state.refuse.insert(id(101), (400, "validation_error"));
    state.blocks.insert(
        id(2),
        vec![
            block(202, "paragraph", "Body of 2", false),
            block(250, "toggle", "Private", true),
        ],
    );
    state.refuse.insert(id(250), (403, "restricted_resource"));
    state.blocks.insert(
        id(3),
        vec![
            block(203, "paragraph", "Body of 3", false),
            json!({"object": "block", "id": id(260), "type": "unsupported",
                   "has_children": true, "unsupported": {}}),
        ],
    );
    let notion = MiniNotion::start(state).await;
    let mut stream = notion.source().open_stream(request(None, None)).unwrap();
    let pages = drain(&mut stream).await;
    let entities: Vec<&Entity> = pages.iter().flat_map(|p| &p.entities).collect();
    assert_eq!(entities.len(), 7);
    let find = |n| entities.iter().find(|e| e.entity_id == id(n)).unwrap();
    assert_eq!(
        find(1).payload["content"],
        "# Goals\n- Level one\nSub page\nThe end"
    );
    assert_eq!(find(1).payload["content_truncated"], true);
    assert_eq!(find(2).payload["content"], "Body of 2\nPrivate");
    assert_eq!(find(2).payload["content_truncated"], true);
    assert_eq!(find(3).payload["content"], "Body of 3");
    assert_eq!(find(3).payload["content_truncated"], false);
    assert!(
        notion.calls().iter().all(|c| !c.contains(&id(260))),
        "an unsupported block's children are not asked for"
    );
}

#[tokio::test]
async fn an_incremental_run_reads_only_what_changed_since_the_cursor() {
    let mut state = workspace();
    state.search = vec![
        page(1, "Roadmap", 30),
        {
            let mut gone = page(4, "Old draft", 29);
            gone["in_trash"] = json!(true);
            gone
        },
        row(12, 10, "Ship notion", 28),
        page(2, "Meeting notes", 26),
        page(3, "Ideas", 25),
        database(10, "Projects", 20),
        row(11, 10, "Write tests", 19),
    ];
    let notion = MiniNotion::start(state).await;
    let since = json!({"last_edited_time": "2026-03-01T10:26:00Z"});
    let mut stream = notion
        .source()
        .open_stream(request(Some(since), None))
        .unwrap();
    let pages = drain(&mut stream).await;
    assert!(stream.incremental());
    assert_eq!(
        keys(&pages),
        [
            format!("notion_page#{}", id(1)),
            format!("notion_database_row#{}", id(12)),
            format!("notion_page#{}", id(2)),
        ],
        "newer and equal edits, rows from the search itself"
    );
    let removed: Vec<String> = pages
        .iter()
        .flat_map(|p| &p.removed)
        .map(|k| k.to_string())
        .collect();
    assert_eq!(removed, [format!("notion_page#{}", id(4))]);
    assert_eq!(
        stream.cursor(),
        Some(json!({"last_edited_time": "2026-03-01T10:30:00Z"}))
    );
    let calls = notion.calls();
    assert_eq!(
        calls.iter().filter(|c| c.contains("/v1/search")).count(),
        2,
        "{calls:?}"
    );
    assert!(calls.iter().all(|c| !c.contains("/query")), "{calls:?}");

    // Nothing changed since: the cursor stays.
    let later = json!({"last_edited_time": "2026-03-01T10:45:00Z"});
    let mut quiet = notion
        .source()
        .open_stream(request(Some(later.clone()), None))
        .unwrap();
    assert!(drain(&mut quiet).await.is_empty());
    assert_eq!(quiet.cursor(), Some(later));

    // A cursor from another format means a full run.
    let odd = json!({"page": 3});
    let full = notion
        .source()
        .open_stream(request(Some(odd), None))
        .unwrap();
    assert!(!full.incremental());
}

#[tokio::test]
async fn a_rate_limit_mid_run_defers_and_the_resumed_run_goes_on() {
    let mut state = bigger_workspace();
    state.glitch = Some((
        40,
        429,
        vec![("retry-after", "2".to_owned())],
        json!({"object": "error", "status": 429, "code": "rate_limited",
               "message": "You have been rate limited. Please try again in a few minutes."})
        .to_string(),
    ));
    let notion = MiniNotion::start(state).await;
    let source = notion.source();
    let mut stream = source.open_stream(request(None, None)).unwrap();
    let mut pages = Vec::new();
    let err = loop {
        match stream.next_page().await {
            Ok(Some(page)) => pages.push(page),
            Ok(None) => panic!("the rate limit never came"),
            Err(e) => break e,
        }
    };
    assert_eq!(
        err,
        StreamError::RateLimited {
            wait: Duration::from_secs(2)
        }
    );
    assert!(!pages.is_empty(), "the limit came after a page");
    let resume = pages.last().map(|p| p.checkpoint.clone());
    let mut resumed = source.open_stream(request(None, resume)).unwrap();
    pages.extend(drain(&mut resumed).await);
    let mut all = keys(&pages);
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 47, "{all:?}");
}

#[tokio::test]
async fn a_revoked_token_and_a_malformed_page_stop_the_stream() {
    let mut state = workspace();
    state.glitch = Some((
        1,
        401,
        vec![],
        json!({"object": "error", "status": 401,
        "code": "unauthorized", "message": "API token is invalid."})
        .to_string(),
    ));
    let notion = MiniNotion::start(state).await;
    let mut stream = notion.source().open_stream(request(None, None)).unwrap();
    let err = stream.next_page().await.unwrap_err();
    assert!(matches!(&err, StreamError::Rejected(_)), "{err:?}");
    assert!(!err.to_string().contains(TOKEN));

    let mut state = workspace();
    state.glitch = Some((1, 200, vec![], "<html>Gateway</html>".into()));
    let notion = MiniNotion::start(state).await;
    let mut stream = notion.source().open_stream(request(None, None)).unwrap();
    let err = stream.next_page().await.unwrap_err();
    assert_eq!(
        err,
        StreamError::Malformed("Notion answered HTTP 200 with a body that is not JSON".into())
    );

    let mut state = workspace();
    state.search[0]["id"] = json!("../../v1/users/me");
    let notion = MiniNotion::start(state).await;
    let mut stream = notion.source().open_stream(request(None, None)).unwrap();
    assert!(matches!(
        stream.next_page().await,
        Err(StreamError::Malformed(_))
    ));
    assert!(
        notion.calls().iter().all(|c| !c.contains("users")),
        "an odd id is never a path"
    );
}

#[tokio::test]
async fn a_vanished_page_is_skipped_and_long_content_is_cut() {
    let mut state = workspace();
    state.blocks.remove(&id(2));
    // Page 3 holds more blocks than its content calls can read.
    let many: Vec<Value> = (0..40)
        .map(|n| block(3000 + n, "paragraph", &format!("line {n}"), false))
        .collect();
    state.blocks.insert(id(3), many);
    let notion = MiniNotion::start(state).await;
    let mut stream = notion.source().open_stream(request(None, None)).unwrap();
    let pages = drain(&mut stream).await;
    let entities: Vec<&Entity> = pages.iter().flat_map(|p| &p.entities).collect();
    assert!(
        entities.iter().all(|e| e.entity_id != id(2)),
        "page 2 vanished"
    );
    let ideas = entities.iter().find(|e| e.entity_id == id(3)).unwrap();
    assert_eq!(ideas.payload["content_truncated"], true);
    let lines = ideas.payload["content"].as_str().unwrap().lines().count();
    assert_eq!(
        lines,
        3 * CONTENT_CALLS_PER_ITEM,
        "three blocks a call here"
    );
}

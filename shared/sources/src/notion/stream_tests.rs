//! The entity stream against the fake Notion (the fakes crate's, built from Notion's API
//! reference): paging, checkpoints and resume, time and call budgets, incremental runs, and what
//! each kind of answer means for the run.

use super::api::ListPage;
use super::entities::id_of;
use super::stream::{Listing, Place, CALLS_PER_PAGE, CONTENT_CALLS_PER_ITEM};
use super::tests::{direct, id, page, TOKEN};
use super::*;
use crate::testing::{next_page_within, SHORT_BUDGET, SLOW_CALL};
use crate::upstream::http_client;
use domain::entity::Entity;
use domain::stream::EntityPage;
use fakes::notion::{Block, FakeNotion, Glitch, Refusal};
use serde_json::json;
use std::time::Duration;

// --- the fake Notion and what the tests read from it ---

fn source(fake: &FakeNotion) -> NotionSource {
    NotionSource::new(
        http_client().unwrap(),
        BaseUrl::parse(&fake.base_url).unwrap(),
    )
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

fn key(entity_type: &str, id: &str) -> String {
    format!("{entity_type}#{id}")
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

/// The stream's cursor for a last edit at `at`.
fn cursor_at(at: DateTime<Utc>) -> Value {
    json!({ "last_edited_time": at })
}

/// The newest `last_edited_time` in the fake's workspace.
fn newest(fake: &FakeNotion) -> DateTime<Utc> {
    fake.ids()
        .iter()
        .map(|id| fake.last_edited(id))
        .max()
        .unwrap()
}

/// Requests whose path holds `part`.
fn asked_for(fake: &FakeNotion, part: &str) -> usize {
    fake.requests().iter().filter(|r| r.contains(part)).count()
}

/// The workspace most tests read, oldest edit first: a Projects database with three rows (the
/// search lists rows too, as Notion does), pages Ideas and Meeting notes, and Roadmap, with
/// content four levels deep and a child page; three results a list call, so that a few items
/// take several calls.
struct Workspace {
    fake: FakeNotion,
    projects: String,
    /// Fix bugs, Write tests, Ship notion.
    rows: [String; 3],
    ideas: String,
    notes: String,
    roadmap: String,
    sub_page: String,
}

impl Workspace {
    async fn start() -> Self {
        let fake = FakeNotion::start(TOKEN).await;
        fake.list_at_most(3);
        let body = |text: &str| vec![Block::paragraph(&format!("Body of {text}"))];
        let projects = fake.add_database("Projects");
        let fix = fake.add_row(&projects, "Fix bugs", "Done", body("Fix bugs"));
        let ideas = fake.add_page("Ideas", body("Ideas"));
        let write = fake.add_row(&projects, "Write tests", "Done", body("Write tests"));
        let notes = fake.add_page("Meeting notes", body("Meeting notes"));
        let ship = fake.add_row(&projects, "Ship notion", "Done", body("Ship notion"));
        let roadmap = fake.add_page(
            "Roadmap",
            vec![
                Block::heading("Goals"),
                Block::bullet("Level one").with_children(vec![Block::bullet("Level two")
                    .with_children(vec![Block::paragraph("Level three")
                        .with_children(vec![Block::paragraph("Level four")])])]),
                Block::child_page(
                    "Sub page",
                    vec![Block::paragraph("Belongs to the sub page")],
                ),
                Block::paragraph("The end"),
            ],
        );
        let sub_page = fake.block_ids(&roadmap)[2].clone();
        Self {
            fake,
            projects,
            rows: [fix, write, ship],
            ideas,
            notes,
            roadmap,
            sub_page,
        }
    }

    /// The workspace and 40 more pages and rows, seven results a list call: several stream
    /// pages.
    async fn bigger() -> Self {
        let workspace = Self::start().await;
        let fake = &workspace.fake;
        fake.list_at_most(7);
        for n in 0..20 {
            fake.add_page(&format!("Note {n}"), vec![Block::paragraph("note")]);
            fake.add_row(
                &workspace.projects,
                &format!("Task {n}"),
                "Done",
                vec![Block::paragraph("task")],
            );
        }
        workspace
    }

    fn source(&self) -> NotionSource {
        source(&self.fake)
    }

    /// Every item's key, sorted.
    fn all_keys(&self) -> Vec<String> {
        let mut all: Vec<String> = [&self.ideas, &self.notes, &self.roadmap, &self.sub_page]
            .map(|id| key("notion_page", id))
            .into_iter()
            .chain(self.rows.iter().map(|id| key("notion_database_row", id)))
            .chain([key("notion_database", &self.projects)])
            .collect();
        all.sort();
        all
    }
}

/// A stream that starts no call once `budget` has passed in a page (after its first item).
fn stream_with_budget(
    fake: &FakeNotion,
    resume: Option<Value>,
    budget: Duration,
) -> Box<dyn EntityStream> {
    let request = StreamRequest {
        page_budget: budget,
        ..request(None, resume)
    };
    source(fake).open_stream(request).unwrap()
}

// --- the stream ---

#[tokio::test]
async fn a_full_run_reads_the_search_the_rows_and_each_pages_content() {
    let w = Workspace::start().await;
    let mut stream = w.source().open_stream(request(None, None)).unwrap();
    assert!(
        w.fake.requests().is_empty(),
        "opening a stream asks nothing"
    );
    let pages = drain(&mut stream).await;
    let mut all = keys(&pages);
    all.sort();
    assert_eq!(
        all,
        w.all_keys(),
        "every item once: rows from their database only"
    );
    assert!(!stream.incremental());
    assert_eq!(stream.cursor(), Some(cursor_at(newest(&w.fake))));

    let entities: Vec<&Entity> = pages.iter().flat_map(|p| &p.entities).collect();
    let find = |id: &str| *entities.iter().find(|e| e.entity_id == id).unwrap();
    let roadmap = find(&w.roadmap);
    assert_eq!(roadmap.title, "Roadmap");
    assert_eq!(roadmap.updated_at, Some(w.fake.last_edited(&w.roadmap)));
    assert_eq!(
        roadmap.payload["content"],
        "# Goals\n- Level one\n  - Level two\n    Level three\nSub page\nThe end",
        "three levels deep; a child page's blocks are its own"
    );
    assert_eq!(roadmap.payload["content_truncated"], false);
    let sub_page = find(&w.sub_page);
    assert_eq!(sub_page.payload["content"], "Belongs to the sub page");
    assert_eq!(sub_page.payload["parent"]["id"], w.roadmap.as_str());
    let db = find(&w.projects);
    assert_eq!(db.title, "Projects");
    assert_eq!(
        db.payload["properties"],
        json!({"Name": "title", "Status": "select", "Attachments": "files",
               "Last edited": "last_edited_time"})
    );
    let tests = find(&w.rows[1]);
    assert_eq!(tests.payload["content"], "Body of Write tests");
    assert_eq!(
        tests.payload["properties"],
        json!({"Name": "Write tests", "Status": "Done", "Attachments": ["write-tests.pdf"]})
    );

    let calls = w.fake.requests();
    assert_eq!(asked_for(&w.fake, "/v1/search"), 3, "{calls:?}");
    assert_eq!(asked_for(&w.fake, "/query"), 1, "{calls:?}");
    let level_two = w.fake.block_ids(&w.fake.block_ids(&w.roadmap)[1])[0].clone();
    let level_three = w.fake.block_ids(&level_two)[0].clone();
    assert_eq!(asked_for(&w.fake, &level_two), 1);
    assert_eq!(
        asked_for(&w.fake, &level_three),
        0,
        "no fourth level: {calls:?}"
    );
    assert_eq!(
        asked_for(&w.fake, &w.sub_page),
        1,
        "the child page's blocks are read once, for the child page"
    );
    let lists: Vec<_> = w
        .fake
        .asked()
        .into_iter()
        .filter(|a| a.path != "/v1/users/me")
        .collect();
    assert!(lists.iter().all(|a| a.page_size == Some(100)), "{lists:?}");
}

#[tokio::test]
async fn each_page_is_a_bounded_number_of_calls() {
    let fake = FakeNotion::start(TOKEN).await;
    for n in 0..60 {
        fake.add_page(&format!("Page {n}"), vec![Block::paragraph("x")]);
    }
    let mut stream = source(&fake).open_stream(request(None, None)).unwrap();
    let mut before = 0;
    let mut total = 0;
    while let Some(page) = stream.next_page().await.unwrap() {
        let calls = fake.requests().len();
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
        fake.requests().len(),
        61,
        "one search call and one content call per page"
    );
}

#[tokio::test]
async fn every_checkpoint_resumes_right_after_its_page() {
    let w = Workspace::bigger().await;
    let source = w.source();
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

#[tokio::test]
async fn a_full_run_reads_oldest_first_so_an_item_edited_meanwhile_is_still_read() {
    let fake = FakeNotion::start(TOKEN).await;
    fake.list_at_most(2);
    let ids: Vec<String> = (1..=5)
        .map(|n| fake.add_page(&format!("Page {n}"), vec![Block::paragraph("x")]))
        .collect();
    // One item a page, so the run spans several search calls.
    let mut stream = stream_with_budget(&fake, None, Duration::ZERO);
    let first = stream.next_page().await.unwrap().unwrap();
    assert_eq!(
        keys(std::slice::from_ref(&first)),
        [key("notion_page", &ids[0])]
    );
    // Page 4, not read yet, is edited: newest first, it would move to the part of the search
    // already read, never be yielded, and be deleted as absent.
    fake.rename(&ids[3], "Page 4 edited");
    let mut pages = vec![first];
    pages.extend(drain(&mut stream).await);
    let mut all = keys(&pages);
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 5, "{all:?}");
    let edited = pages
        .iter()
        .flat_map(|p| &p.entities)
        .find(|e| e.entity_id == ids[3])
        .unwrap();
    assert_eq!(edited.title, "Page 4 edited");
    assert_eq!(stream.cursor(), Some(cursor_at(fake.last_edited(&ids[3]))));
    assert!(
        fake.asked()
            .iter()
            .filter(|a| a.path == "/v1/search")
            .all(|a| a.direction.as_deref() == Some("ascending")),
        "a full run asks for the oldest edits first"
    );
}

#[tokio::test]
async fn a_page_starts_no_call_once_its_time_budget_is_spent() {
    let w = Workspace::bigger().await;
    let mut normal = w.source().open_stream(request(None, None)).unwrap();
    let mut expected = keys(&drain(&mut normal).await);
    expected.sort();
    let normal_calls = w.fake.requests().len();

    let mut stream = stream_with_budget(&w.fake, None, Duration::ZERO);
    let pages = drain(&mut stream).await;
    assert!(pages.iter().all(|p| p.entities.len() <= 1));
    let mut all = keys(&pages);
    all.sort();
    assert_eq!(all, expected);
    assert_eq!(
        w.fake.requests().len(),
        2 * normal_calls,
        "no call is made twice"
    );
    for (i, page) in pages.iter().enumerate() {
        let mut resumed =
            stream_with_budget(&w.fake, Some(page.checkpoint.clone()), Duration::ZERO);
        let mut seen = keys(&pages[..=i]);
        seen.extend(keys(&drain(&mut resumed).await));
        seen.sort();
        assert_eq!(seen, expected, "resumed after page {i}");
    }
}

#[tokio::test]
async fn a_page_of_a_slow_notion_returns_within_its_budget_and_one_call() {
    let fake = FakeNotion::start(TOKEN).await;
    for n in 0..12 {
        fake.add_page(&format!("Page {n}"), vec![Block::paragraph("x")]);
    }
    fake.answer_after(SLOW_CALL);
    let mut stream = stream_with_budget(&fake, None, SHORT_BUDGET);
    let mut pages = Vec::new();
    loop {
        let Some(page) = next_page_within(&mut stream, SHORT_BUDGET).await else {
            break;
        };
        assert!(!page.entities.is_empty(), "every page moves the run on");
        pages.push(page);
    }
    assert_eq!(keys(&pages).len(), 12);
    assert!(pages.len() >= 4, "{} pages", pages.len());
}

#[tokio::test]
async fn an_item_half_read_when_the_budget_runs_out_is_read_again_by_the_next_page() {
    let fake = FakeNotion::start(TOKEN).await;
    let quick = fake.add_page("Quick", vec![Block::paragraph("quick")]);
    let nested = fake.add_page(
        "Nested",
        vec![
            Block::toggle("slow").with_children(vec![Block::paragraph("inside slow")]),
            Block::toggle("after").with_children(vec![Block::paragraph("inside after")]),
        ],
    );
    let toggles = fake.block_ids(&nested);
    fake.slow_children(&toggles[0], Duration::from_millis(400));
    let mut stream = stream_with_budget(&fake, None, Duration::from_millis(200));
    let first = stream.next_page().await.unwrap().unwrap();
    assert_eq!(
        keys(std::slice::from_ref(&first)),
        [key("notion_page", &quick)]
    );
    assert_eq!(
        asked_for(&fake, &toggles[0]),
        1,
        "the second page was half read: {:?}",
        fake.requests()
    );
    assert_eq!(
        asked_for(&fake, &toggles[1]),
        0,
        "no call after the budget ran out: {:?}",
        fake.requests()
    );
    // The half-read page is whole in the next page, and after the first page's checkpoint.
    let second = stream.next_page().await.unwrap().unwrap();
    assert_eq!(second.entities.len(), 1);
    assert_eq!(
        second.entities[0].payload["content"],
        "slow\n  inside slow\nafter\n  inside after"
    );
    assert!(stream.next_page().await.unwrap().is_none());
    let mut resumed = stream_with_budget(&fake, Some(first.checkpoint), Duration::ZERO);
    assert_eq!(
        keys(&drain(&mut resumed).await),
        [key("notion_page", &nested)]
    );
}

#[tokio::test]
async fn a_nested_block_notion_refuses_is_left_out_not_fatal() {
    let w = Workspace::start().await;
    let fake = &w.fake;
    // A block type the API does not serve: 400 validation_error; content the integration may
    // not read: 403 restricted_resource.
    let level_one = fake.block_ids(&w.roadmap)[1].clone();
    fake.refuse_children(&level_one, Refusal::Unsupported);
    fake.set_content(
        &w.notes,
        vec![
            Block::paragraph("Body of Meeting notes"),
            Block::toggle("Private").with_children(vec![Block::paragraph("secret")]),
        ],
    );
    fake.refuse_children(&fake.block_ids(&w.notes)[1], Refusal::Restricted);
    fake.set_content(
        &w.ideas,
        vec![
            Block::paragraph("Body of Ideas"),
            Block::unsupported().with_children(vec![Block::paragraph("unreadable")]),
        ],
    );
    let unsupported = fake.block_ids(&w.ideas)[1].clone();
    let mut stream = w.source().open_stream(request(None, None)).unwrap();
    let pages = drain(&mut stream).await;
    let entities: Vec<&Entity> = pages.iter().flat_map(|p| &p.entities).collect();
    assert_eq!(entities.len(), 8);
    let find = |id: &str| *entities.iter().find(|e| e.entity_id == id).unwrap();
    assert_eq!(
        find(&w.roadmap).payload["content"],
        "# Goals\n- Level one\nSub page\nThe end"
    );
    assert_eq!(find(&w.roadmap).payload["content_truncated"], true);
    assert_eq!(
        find(&w.notes).payload["content"],
        "Body of Meeting notes\nPrivate"
    );
    assert_eq!(find(&w.notes).payload["content_truncated"], true);
    assert_eq!(find(&w.ideas).payload["content"], "Body of Ideas");
    assert_eq!(find(&w.ideas).payload["content_truncated"], false);
    assert_eq!(
        asked_for(fake, &unsupported),
        0,
        "an unsupported block's children are not asked for"
    );
}

#[tokio::test]
async fn an_incremental_run_reads_only_what_changed_since_the_cursor() {
    let fake = FakeNotion::start(TOKEN).await;
    fake.list_at_most(3);
    let projects = fake.add_database("Projects");
    fake.add_row(&projects, "Write tests", "Done", vec![]);
    fake.add_page("Ideas", vec![Block::paragraph("Body of Ideas")]);
    let notes = fake.add_page("Meeting notes", vec![Block::paragraph("Body of notes")]);
    let ship = fake.add_row(&projects, "Ship notion", "Done", vec![]);
    let draft = fake.add_page("Old draft", vec![Block::paragraph("draft")]);
    fake.trash(&draft);
    let roadmap = fake.add_page("Roadmap", vec![Block::paragraph("Goals")]);
    let since = cursor_at(fake.last_edited(&notes));
    let mut stream = source(&fake)
        .open_stream(request(Some(since), None))
        .unwrap();
    let pages = drain(&mut stream).await;
    assert!(stream.incremental());
    assert_eq!(
        keys(&pages),
        [
            key("notion_page", &roadmap),
            key("notion_database_row", &ship),
            key("notion_page", &notes),
        ],
        "newer and equal edits, rows from the search itself"
    );
    let removed: Vec<String> = pages
        .iter()
        .flat_map(|p| &p.removed)
        .map(|k| k.to_string())
        .collect();
    assert_eq!(removed, [key("notion_page", &draft)]);
    assert_eq!(stream.cursor(), Some(cursor_at(newest(&fake))));
    let calls = fake.requests();
    assert_eq!(asked_for(&fake, "/v1/search"), 2, "{calls:?}");
    assert_eq!(asked_for(&fake, "/query"), 0, "{calls:?}");
    assert!(
        fake.asked()
            .iter()
            .filter(|a| a.path == "/v1/search")
            .all(|a| a.direction.as_deref() == Some("descending")),
        "an incremental run asks for the newest edits first"
    );

    // Nothing changed since: the cursor stays.
    let later = cursor_at(newest(&fake) + chrono::Duration::minutes(15));
    let mut quiet = source(&fake)
        .open_stream(request(Some(later.clone()), None))
        .unwrap();
    assert!(drain(&mut quiet).await.is_empty());
    assert_eq!(quiet.cursor(), Some(later));

    // A cursor from another format means a full run.
    let odd = json!({"page": 3});
    let full = source(&fake).open_stream(request(Some(odd), None)).unwrap();
    assert!(!full.incremental());
}

#[tokio::test]
async fn a_rate_limit_mid_run_defers_and_the_resumed_run_goes_on() {
    let w = Workspace::bigger().await;
    w.fake.glitch_after(
        39,
        Glitch::RateLimited {
            retry_after_secs: 2,
        },
    );
    let source = w.source();
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
    assert_eq!(all.len(), 48, "{all:?}");
}

#[tokio::test]
async fn a_revoked_token_and_a_malformed_page_stop_the_stream() {
    let w = Workspace::start().await;
    w.fake.revoke_token();
    let mut stream = w.source().open_stream(request(None, None)).unwrap();
    let err = stream.next_page().await.unwrap_err();
    assert!(matches!(&err, StreamError::Rejected(_)), "{err:?}");
    assert!(!err.to_string().contains(TOKEN));

    let w = Workspace::start().await;
    w.fake.glitch_after(0, Glitch::Malformed);
    let mut stream = w.source().open_stream(request(None, None)).unwrap();
    let err = stream.next_page().await.unwrap_err();
    assert_eq!(
        err,
        StreamError::Malformed("Notion answered HTTP 200 with a body that is not JSON".into())
    );

    let w = Workspace::start().await;
    w.fake.glitch_after(0, Glitch::PathAsId);
    let mut stream = w.source().open_stream(request(None, None)).unwrap();
    assert!(matches!(
        stream.next_page().await,
        Err(StreamError::Malformed(_))
    ));
    assert_eq!(asked_for(&w.fake, "users"), 0, "an odd id is never a path");
}

#[tokio::test]
async fn a_vanished_page_is_skipped_and_long_content_is_cut() {
    let fake = FakeNotion::start(TOKEN).await;
    fake.list_at_most(3);
    let first = fake.add_page("First", vec![Block::paragraph("first")]);
    let vanishing = fake.add_page("Vanishing", vec![Block::paragraph("gone soon")]);
    fake.add_page("Third", vec![Block::paragraph("third")]);
    // Holds more blocks than its content calls can read.
    let many = (0..40)
        .map(|n| Block::paragraph(&format!("line {n}")))
        .collect();
    let long = fake.add_page("Long", many);
    // One item a page: the first page lists three items and reads one.
    let mut stream = stream_with_budget(&fake, None, Duration::ZERO);
    let head = stream.next_page().await.unwrap().unwrap();
    assert_eq!(
        keys(std::slice::from_ref(&head)),
        [key("notion_page", &first)]
    );
    // Deleted after the search listed it: its content answers 404.
    fake.remove(&vanishing);
    let pages = drain(&mut stream).await;
    let entities: Vec<&Entity> = pages.iter().flat_map(|p| &p.entities).collect();
    assert_eq!(entities.len(), 2, "the third page and the long one");
    assert!(
        entities.iter().all(|e| e.entity_id != vanishing),
        "the vanished page is skipped"
    );
    assert_eq!(asked_for(&fake, &vanishing), 1, "{:?}", fake.requests());
    let long = entities.iter().find(|e| e.entity_id == long).unwrap();
    assert_eq!(long.payload["content_truncated"], true);
    let lines = long.payload["content"].as_str().unwrap().lines().count();
    assert_eq!(
        lines,
        3 * CONTENT_CALLS_PER_ITEM,
        "three blocks a call here"
    );
}

//! The `notion` source end to end: the API creates a connection whose token the fake Notion
//! checks, the worker syncs pages, databases and rows (with each page's content) from the fake's
//! search, database queries and block children, and the API shows what a user would see.

use crate::helpers::app::TestApp;
use crate::helpers::logs;
use crate::helpers::syncing::{
    self, app_with_source, assert_failed_plainly, assert_reauth_needed, connection, counts, create,
    drain, entities, jobs, run_and_wait,
};
use fakes::notion::{Block, FakeNotion, Glitch};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

const TOKEN: &str = "ntn_e2eValidIntegrationSecret00000000000000000000";

/// A fake Notion with `pages` top-level pages and a `Tasks` database of `rows` rows, each with
/// a little content, and the app pointed at it. Answers the database's id.
async fn notion_with(pages: usize, rows: usize) -> (FakeNotion, TestApp, String) {
    let fake = FakeNotion::start(TOKEN).await;
    for n in 0..pages {
        fake.add_page(
            &format!("Page {n}"),
            vec![
                Block::heading(&format!("About page {n}")),
                Block::bullet("Nested")
                    .with_children(vec![Block::paragraph(&format!("Detail of page {n}"))]),
            ],
        );
    }
    let database = fake.add_database("Tasks");
    for n in 0..rows {
        fake.add_row(
            &database,
            &format!("Task {n}"),
            "In progress",
            vec![Block::to_do(&format!("Step of task {n}"), n % 2 == 0)],
        );
    }
    let app = app_with_source("notion", &fake.base_url).await;
    (fake, app, database)
}

fn body(token: &str) -> Value {
    json!({
        "short_name": "notion",
        "readable_collection_id": "docs",
        "authentication": {"credentials": {"access_token": token}},
    })
}

fn by_type(entities: &[Value]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for e in entities {
        *counts
            .entry(e["type"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    counts
}

fn expected(pages: usize, databases: usize, rows: usize) -> BTreeMap<String, usize> {
    [
        ("notion_database", databases),
        ("notion_database_row", rows),
        ("notion_page", pages),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .map(|(t, n)| (t.to_owned(), n))
    .collect()
}

fn asked(fake: &FakeNotion, what: &str) -> usize {
    fake.requests().iter().filter(|r| r.contains(what)).count()
}

/// Creates the connection (its first job queued) and runs the worker until quiet.
async fn create_and_sync(app: &TestApp) -> (String, Value) {
    syncing::create_and_sync(app, &body(TOKEN)).await
}

fn find<'a>(all: &'a [Value], entity_id: &str) -> &'a Value {
    all.iter()
        .find(|e| e["entity_id"] == entity_id)
        .unwrap_or_else(|| panic!("{entity_id} is stored"))
}

#[tokio::test]
async fn a_sync_over_many_pages_lists_every_item_of_the_workspace() {
    let (fake, app, database) = notion_with(110, 105).await;
    let (id, job) = create_and_sync(&app).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(counts(&job), [216, 0, 0, 0, 0]);

    let all = entities(&app, &id).await;
    assert_eq!(by_type(&all), expected(110, 1, 105));
    assert_eq!(
        asked(&fake, "POST /v1/search"),
        3,
        "216 results in pages of 100"
    );
    assert_eq!(asked(&fake, "/query"), 2, "105 rows in pages of 100");
    assert_eq!(
        asked(&fake, "/children"),
        110 + 105 + 110,
        "each page's blocks and its nested list, once"
    );

    // What a user searches for is there.
    let ids = fake.ids();
    let page = find(&all, &ids[7]);
    assert_eq!(
        (page["type"].as_str(), page["title"].as_str()),
        (Some("notion_page"), Some("Page 7"))
    );
    assert_eq!(
        page["payload"]["content"],
        "# About page 7\n- Nested\n  Detail of page 7"
    );
    assert!(page["payload"]["url"]
        .as_str()
        .unwrap()
        .starts_with("https://www.notion.so/Page-7-"));
    assert!(page["updated_at"].is_string());
    let tasks = find(&all, &database);
    assert_eq!(
        (tasks["type"].as_str(), tasks["title"].as_str()),
        (Some("notion_database"), Some("Tasks"))
    );
    let row = find(&all, &ids[111]);
    assert_eq!(row["type"], "notion_database_row");
    assert_eq!(row["title"], "Task 0");
    assert_eq!(row["payload"]["database_id"], database.as_str());
    assert_eq!(row["payload"]["content"], "[x] Step of task 0");
    assert_eq!(
        row["payload"]["properties"],
        json!({"Name": "Task 0", "Status": "In progress", "Attachments": ["task-0.pdf"]})
    );
    assert!(
        !row.to_string().contains("X-Amz-Signature"),
        "signed file URLs change on every read and are not kept"
    );

    let c = connection(&app, &id).await;
    assert_eq!(c["status"], "active");
    assert_eq!(c["entities"]["total_entities"], 216);

    // Nothing changed: the next run reads from the cursor on and writes nothing.
    let searched = asked(&fake, "POST /v1/search");
    let again = run_and_wait(&app, &id, false).await;
    assert_eq!(again["status"], "completed", "{again}");
    assert_eq!(counts(&again)[..3], [0, 0, 0]);
    assert_eq!(
        asked(&fake, "POST /v1/search"),
        searched + 1,
        "one search page"
    );
    assert_eq!(asked(&fake, "/query"), 2, "no database listed again");
}

#[tokio::test]
async fn a_rate_limited_answer_defers_the_job_and_the_sync_completes() {
    let (fake, app, _) = notion_with(40, 10).await;
    let created = create(&app, &body(TOKEN)).await;
    let id = created["id"].as_str().unwrap().to_owned();
    // The search and 39 block calls pass (more than one page of the stream); the next is
    // limited for a second.
    fake.glitch_after(
        40,
        Glitch::RateLimited {
            retry_after_secs: 1,
        },
    );
    let handled = drain(&app, Duration::from_secs(3)).await;
    assert!(
        handled >= 2,
        "the job went on in a deferred message ({handled})"
    );

    let job = jobs(&app, &id).await.remove(0);
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(counts(&job), [51, 0, 0, 0, 0], "each item once");
    assert_eq!(by_type(&entities(&app, &id).await), expected(40, 1, 10));
    // The newest page was read before the limit; the resumed run did not start over.
    let newest_page = &fake.ids()[39];
    assert_eq!(
        asked(&fake, &format!("/v1/blocks/{newest_page}/children")),
        1
    );
    assert_eq!(
        asked(&fake, "POST /v1/search"),
        2,
        "the interrupted search page, again"
    );
}

#[tokio::test]
async fn a_revoked_token_fails_the_job_and_asks_for_reauthentication() {
    let (fake, app, _) = notion_with(5, 2).await;
    let created = create(&app, &body(TOKEN)).await;
    let id = created["id"].as_str().unwrap().to_owned();
    fake.revoke_token();
    drain(&app, Duration::from_secs(3)).await;

    let job = assert_reauth_needed(&app, &id, "api_key_invalid", &[TOKEN]).await;
    assert!(job["error"].as_str().unwrap().contains("rejected"), "{job}");
}

#[tokio::test]
async fn a_malformed_page_fails_the_job_with_a_clear_error() {
    let (fake, app, _) = notion_with(5, 2).await;
    let created = create(&app, &body(TOKEN)).await;
    let id = created["id"].as_str().unwrap().to_owned();
    // The first search page arrives cut off.
    fake.glitch_after(0, Glitch::Malformed);
    drain(&app, Duration::from_secs(3)).await;

    let job = assert_failed_plainly(&app, &id, TOKEN, &fake.base_url).await;
    assert_eq!(
        job["error"], "Notion: Notion answered HTTP 200 with a body that is not JSON",
        "{job}"
    );
}

#[tokio::test]
async fn an_incremental_resync_writes_only_what_changed() {
    let (fake, app, database) = notion_with(30, 10).await;
    let (id, first) = create_and_sync(&app).await;
    assert_eq!(first["status"], "completed", "{first}");
    let before = entities(&app, &id).await.len();
    let searched = asked(&fake, "POST /v1/search");

    let ids = fake.ids();
    fake.rename(&ids[3], "Page 3, renamed");
    fake.set_content(
        &ids[4],
        vec![Block::paragraph("Rewritten after the first sync")],
    );
    fake.set_content(&ids[32], vec![Block::to_do("Step redone", true)]);
    let added = fake.add_page("A new page", vec![Block::paragraph("Fresh")]);
    fake.add_page("Another new page", vec![]);
    fake.add_row(&database, "A new task", "Not started", vec![]);

    let job = run_and_wait(&app, &id, false).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(counts(&job)[..3], [3, 3, 0], "{job}");
    assert_eq!(asked(&fake, "POST /v1/search"), searched + 1);
    assert_eq!(asked(&fake, "/query"), 1, "rows come from the search");

    let after = entities(&app, &id).await;
    assert_eq!(after.len(), before + 3);
    assert_eq!(by_type(&after), expected(32, 1, 11));
    assert_eq!(find(&after, &ids[3])["title"], "Page 3, renamed");
    assert_eq!(
        find(&after, &ids[4])["payload"]["content"],
        "Rewritten after the first sync"
    );
    assert_eq!(
        find(&after, &ids[32])["payload"]["content"],
        "[x] Step redone"
    );
    assert_eq!(find(&after, &added)["payload"]["content"], "Fresh");
    assert_eq!(find(&after, &ids[5])["title"], "Page 5", "untouched");
}

#[tokio::test]
async fn a_full_sync_after_removals_deletes_exactly_what_vanished() {
    let (fake, app, _) = notion_with(30, 10).await;
    let (id, _) = create_and_sync(&app).await;
    let before = entities(&app, &id).await;
    assert_eq!(before.len(), 41);

    let ids = fake.ids();
    let gone = [ids[0].clone(), ids[17].clone(), ids[35].clone()];
    for item in &gone {
        fake.remove(item);
    }

    let job = run_and_wait(&app, &id, true).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(counts(&job), [0, 0, 3, 38, 0]);
    let after = entities(&app, &id).await;
    assert_eq!(by_type(&after), expected(28, 1, 9));
    let remaining: Vec<&str> = after
        .iter()
        .map(|e| e["entity_id"].as_str().unwrap())
        .collect();
    assert!(gone.iter().all(|g| !remaining.contains(&g.as_str())));
    let kept_before: Vec<&Value> = before
        .iter()
        .filter(|e| !gone.iter().any(|g| e["entity_id"] == g.as_str()))
        .collect();
    assert_eq!(
        kept_before,
        after.iter().collect::<Vec<_>>(),
        "the rest is untouched"
    );
}

#[tokio::test]
async fn a_good_token_creates_and_a_bad_one_is_refused_with_nothing_stored() {
    let (fake, app, _) = notion_with(1, 0).await;
    let response = app.create_connection(&body(TOKEN)).await;
    assert_eq!(response.status(), 201);
    let text = response.text().await.unwrap();
    assert!(!text.contains(TOKEN), "no token in the answer");
    assert_eq!(fake.requests()[0], "GET /v1/users/me");

    let other = app_with_source("notion", &fake.base_url).await;
    let wrong = "ntn_wrongIntegrationSecret111111111111111111111111";
    let response = other.create_connection(&body(wrong)).await;
    assert_eq!(response.status(), 400);
    let problem = response.text().await.unwrap();
    assert!(!problem.contains(wrong), "{problem}");
    assert!(
        other.aws.secret_names_under_prefix().await.is_empty(),
        "no secret"
    );
    assert_eq!(other.aws.connection_items_count().await, 0, "no connection");
    assert!(
        other.aws.receive_messages().await.is_empty(),
        "no job queued"
    );
    assert!(!logs::captured().contains(wrong) && !logs::captured().contains(TOKEN));
}

//! The `linear` source end to end: the API creates a connection whose key the fake Linear
//! checks, the worker syncs it page by page from the fake's GraphQL API, and the API shows what
//! a user would see: entities, job counts, connection status.

use crate::helpers::app::TestApp;
use crate::helpers::logs;
use crate::helpers::syncing::{
    self, app_with_source, assert_failed_plainly, assert_reauth_needed, connection, counts, create,
    drain, entities, jobs, run_and_wait,
};
use fakes::linear::{FakeLinear, Workspace};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

const KEY: &str = "lin_api_e2eValidKey0000000000000000000000000000";

/// A fake Linear with `issues` issues (pages of 50) and the app pointed at it.
async fn linear_with(issues: usize) -> (FakeLinear, TestApp) {
    let fake = FakeLinear::start_with(KEY, Workspace::seeded(issues)).await;
    let app = app_with_source("linear", &fake.base_url).await;
    (fake, app)
}

fn body(key: &str) -> Value {
    json!({
        "short_name": "linear",
        "readable_collection_id": "docs",
        "authentication": {"credentials": {"api_key": key}},
    })
}

/// How many items of each entity type the fake's workspace lists (archived issues and
/// deactivated users hidden).
fn listed(fake: &FakeLinear) -> BTreeMap<&'static str, usize> {
    let w = fake.workspace();
    BTreeMap::from([
        ("linear_comment", w.comments.len()),
        (
            "linear_issue",
            w.issues.iter().filter(|i| i.archived_at.is_none()).count(),
        ),
        ("linear_project", w.projects.len()),
        ("linear_team", w.teams.len()),
        ("linear_user", w.users.iter().filter(|u| u.active).count()),
    ])
}

fn stored(entities: &[Value]) -> BTreeMap<&'static str, usize> {
    let mut by_type = BTreeMap::new();
    for t in [
        "linear_comment",
        "linear_issue",
        "linear_project",
        "linear_team",
        "linear_user",
    ] {
        by_type.insert(t, entities.iter().filter(|e| e["type"] == t).count());
    }
    by_type
}

/// Creates the connection (its first job queued) and runs the worker until quiet.
async fn create_and_sync(app: &TestApp) -> (String, Value) {
    syncing::create_and_sync(app, &body(KEY)).await
}

#[tokio::test]
async fn a_sync_over_many_pages_lists_every_item_of_the_workspace() {
    let (fake, app) = linear_with(120).await;
    let (id, job) = create_and_sync(&app).await;
    assert_eq!(job["status"], "completed", "{job}");
    let expected = listed(&fake);
    let total: usize = expected.values().sum();
    assert_eq!(counts(&job), [total as u64, 0, 0, 0, 0]);

    let all = entities(&app, &id).await;
    assert_eq!(stored(&all), expected);
    let issue_pages: Vec<_> = fake
        .asked()
        .into_iter()
        .filter(|a| a.field == "issues")
        .collect();
    assert_eq!(issue_pages.len(), 3, "120 issues in pages of 50");
    assert!(issue_pages[0].after.is_none() && issue_pages[2].after.is_some());
    assert!(
        fake.asked().iter().all(|a| a.updated_after.is_none()),
        "a first sync is a full one"
    );

    // What a user searches for is there.
    let issue = all
        .iter()
        .find(|e| e["type"] == "linear_issue" && e["payload"]["identifier"] == "ENG-1")
        .expect("ENG-1 is stored");
    assert_eq!(issue["title"], "ENG-1 Fix the login flow (0)");
    assert_eq!(issue["payload"]["state"], "Backlog");
    assert_eq!(issue["payload"]["assignee"]["name"], "Ada Lovelace");
    assert_eq!(issue["payload"]["labels"], json!(["bug", "feature"]));
    assert!(issue["payload"]["url"]
        .as_str()
        .unwrap()
        .starts_with("https://linear.app/acme/issue/ENG-1"));
    assert!(issue.get("sortOrder").is_none() && issue["payload"].get("sortOrder").is_none());
    let comment = all.iter().find(|e| e["type"] == "linear_comment").unwrap();
    assert!(comment["title"]
        .as_str()
        .unwrap()
        .starts_with("Comment by "));

    let c = connection(&app, &id).await;
    assert_eq!(c["status"], "active");
    assert_eq!(c["entities"]["total_entities"], total);

    // Nothing changed: a second run writes nothing and asks only for what changed.
    let again = run_and_wait(&app, &id, false).await;
    assert_eq!(again["status"], "completed");
    assert_eq!(counts(&again)[..3], [0, 0, 0]);
    let second_run = &fake.asked()[fake.asked().len() - 3..];
    assert!(second_run
        .iter()
        .all(|a| a.updated_after.is_some() && a.include_archived));
}

#[tokio::test]
async fn a_rate_limited_page_defers_the_job_and_the_sync_completes() {
    let (fake, app) = linear_with(120).await;
    // Teams, users, projects and the first issues page pass; the second issues page is limited
    // for a second.
    fake.rate_limit_once_after(4, 1);
    let created = create(&app, &body(KEY)).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let handled = drain(&app, Duration::from_secs(3)).await;
    assert!(
        handled >= 2,
        "the job went on in a deferred message ({handled})"
    );

    let job = jobs(&app, &id).await.remove(0);
    assert_eq!(job["status"], "completed", "{job}");
    let expected = listed(&fake);
    let total: usize = expected.values().sum();
    assert_eq!(counts(&job), [total as u64, 0, 0, 0, 0], "each item once");
    assert_eq!(stored(&entities(&app, &id).await), expected);

    let asked: Vec<_> = fake
        .asked()
        .into_iter()
        .filter(|a| a.field == "issues")
        .collect();
    assert_eq!(asked.len(), 4, "the limited page is asked again");
    assert_eq!(
        asked[1], asked[2],
        "the resumed run goes on at the limited page"
    );
    assert!(asked[1].after.is_some());
}

#[tokio::test]
async fn a_revoked_key_fails_the_job_and_asks_for_reauthentication() {
    let (fake, app) = linear_with(10).await;
    let created = create(&app, &body(KEY)).await;
    let id = created["id"].as_str().unwrap().to_owned();
    fake.revoke_key();
    drain(&app, Duration::from_secs(3)).await;

    let job = assert_reauth_needed(&app, &id, "api_key_invalid", &[KEY]).await;
    assert!(job["error"].as_str().unwrap().contains("rejected"), "{job}");
}

#[tokio::test]
async fn a_malformed_page_fails_the_job_with_a_clear_error() {
    let (fake, app) = linear_with(10).await;
    // The projects page arrives cut off.
    fake.malform_once_after(2);
    let created = create(&app, &body(KEY)).await;
    let id = created["id"].as_str().unwrap().to_owned();
    drain(&app, Duration::from_secs(3)).await;

    let job = assert_failed_plainly(&app, &id, KEY, &fake.base_url).await;
    assert_eq!(
        job["error"], "Linear: Linear answered HTTP 200 with a body that is not JSON",
        "{job}"
    );
}

#[tokio::test]
async fn an_incremental_resync_writes_what_changed_and_removes_what_was_archived() {
    let (fake, app) = linear_with(30).await;
    let (id, first) = create_and_sync(&app).await;
    assert_eq!(first["status"], "completed");
    let before = entities(&app, &id).await.len();

    let renamed = {
        let mut w = fake.workspace();
        let renamed = [w.issues[3].id.clone(), w.issues[4].id.clone()];
        for id in &renamed {
            w.edit_issue(id, "Renamed after the first sync");
        }
        let archived = w.issues[5].id.clone();
        w.archive_issue(&archived);
        let added = w.add_issue("DES", "A new design review");
        w.add_issue("ENG", "A new bug");
        w.add_comment(&added, "Looks good to me");
        renamed
    };
    let job = run_and_wait(&app, &id, false).await;
    assert_eq!(job["status"], "completed", "{job}");
    // 2 new issues and a comment inserted, 2 renamed issues updated, the archived one deleted;
    // teams and users are listed whole and kept.
    assert_eq!(counts(&job), [3, 2, 1, 5, 0]);

    let after = entities(&app, &id).await;
    assert_eq!(after.len(), before + 3 - 1);
    assert_eq!(stored(&after), listed(&fake));
    for id in renamed {
        let issue = after
            .iter()
            .find(|e| e["entity_id"] == id.as_str())
            .unwrap();
        assert_eq!(issue["payload"]["title"], "Renamed after the first sync");
    }
    assert!(after
        .iter()
        .any(|e| e["title"] == "DES-16 A new design review"));
}

#[tokio::test]
async fn a_full_sync_after_removals_deletes_exactly_what_vanished() {
    let (fake, app) = linear_with(30).await;
    let (id, _) = create_and_sync(&app).await;
    let before = entities(&app, &id).await;

    // Issue 0 has a comment (every other one does); issue 1 has none.
    let gone = {
        let mut w = fake.workspace();
        let issues = [w.issues[0].id.clone(), w.issues[1].id.clone()];
        let comments: Vec<String> = w
            .comments
            .iter()
            .filter(|c| issues.contains(&c.issue_id))
            .map(|c| c.id.clone())
            .collect();
        for issue in &issues {
            w.delete_issue(issue);
        }
        let deleted_comment = w.comments[0].id.clone();
        w.delete_comment(&deleted_comment);
        let user = w.users[2].id.clone();
        w.deactivate_user(&user);
        let mut gone: Vec<String> = issues.to_vec();
        gone.extend(comments);
        gone.push(deleted_comment);
        gone.push(user);
        gone
    };
    assert_eq!(gone.len(), 5);

    let job = run_and_wait(&app, &id, true).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(counts(&job), [0, 0, 5, (before.len() - 5) as u64, 0]);
    let after = entities(&app, &id).await;
    assert_eq!(stored(&after), listed(&fake));
    let remaining: Vec<&str> = after
        .iter()
        .map(|e| e["entity_id"].as_str().unwrap())
        .collect();
    assert!(gone.iter().all(|id| !remaining.contains(&id.as_str())));
    assert_eq!(after.len(), before.len() - 5);
}

#[tokio::test]
async fn a_good_key_creates_and_a_bad_one_is_refused_with_nothing_stored() {
    let (fake, app) = linear_with(3).await;
    let response = app.create_connection(&body(KEY)).await;
    assert_eq!(response.status(), 201);
    let text = response.text().await.unwrap();
    assert!(!text.contains(KEY), "no key in the answer");

    let other = app_with_source("linear", &fake.base_url).await;
    let wrong = "lin_api_wrongKey1111111111111111111111111111111";
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
    assert!(!logs::captured().contains(wrong) && !logs::captured().contains(KEY));
}

//! The `github` source end to end: the API creates a connection whose token (and access to the
//! repository) the fake GitHub checks, the worker syncs the repository page by page from the
//! fake's REST API, and the API shows what a user would see: entities, job counts, connection
//! status.

use crate::helpers::app::TestApp;
use crate::helpers::logs;
use crate::helpers::syncing::{
    self, app_with_source, assert_failed_plainly, assert_reauth_needed, connection, counts, create,
    drain, entities, jobs, run_and_wait,
};
use fakes::github::{FakeGithub, Fault, Repo, Workspace};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

const TOKEN: &str = "ghp_e2eSourceToken00000000000000000000000";
const REPO: &str = "octo-org/hello-world";
/// Items per list page in the fake (GitHub's is 100): a few dozen items make several pages.
const PAGE: usize = 5;

/// `count` issues and pull requests (every fourth is a pull request), a comment on every
/// third, and five files on `main`, one of them binary.
fn seeded(count: usize) -> Workspace {
    let mut repo = Repo::new(REPO, "main");
    repo.description = Some("A repository to sync".into());
    repo.commit(
        "main",
        "Initial commit",
        &[
            ("README.md", Some(b"# Hello World\n")),
            (
                "src/main.rs",
                Some(b"fn main() {\n    hello::greet();\n}\n"),
            ),
            (
                "src/lib.rs",
                Some(b"pub fn greet() {\n    println!(\"hi\");\n}\n"),
            ),
            ("docs/guide.md", Some(b"# Guide\n")),
            ("assets/logo.png", Some(b"\x89PNG\r\n\x1a\n\0\0")),
        ],
    );
    for i in 0..count {
        let number = if i % 4 == 3 {
            repo.add_pull_request(&format!("Pull request {i}"), "Please review.")
        } else {
            repo.add_issue(&format!("Issue {i}"), &format!("Details of issue {i}."))
        };
        if i % 3 == 0 {
            repo.add_comment(number, &format!("A comment on #{number}"));
        }
    }
    let mut workspace = Workspace {
        max_per_page: PAGE,
        ..Workspace::default()
    };
    workspace.add_repo(repo);
    workspace
}

async fn github_with(count: usize) -> (FakeGithub, TestApp) {
    let fake = FakeGithub::start_with(TOKEN, seeded(count)).await;
    let app = app_with_source("github", &fake.base_url).await;
    (fake, app)
}

fn body(token: &str, repo: &str) -> Value {
    json!({
        "short_name": "github",
        "readable_collection_id": "docs",
        "authentication": {"credentials": {"personal_access_token": token}},
        "config": {"repo_name": repo},
    })
}

const TYPES: [&str; 5] = [
    "github_comment",
    "github_file",
    "github_issue",
    "github_pull_request",
    "github_repository",
];

/// How many items of each entity type the fake's repository has.
fn listed(fake: &FakeGithub) -> BTreeMap<&'static str, usize> {
    let repo = fake.repo(REPO);
    let prs = repo.issues.values().filter(|i| i.pull_request).count();
    BTreeMap::from([
        ("github_comment", repo.comments.len()),
        (
            "github_file",
            repo.head("main").map_or(0, |c| c.files.len()),
        ),
        ("github_issue", repo.issues.len() - prs),
        ("github_pull_request", prs),
        ("github_repository", 1),
    ])
}

fn stored(entities: &[Value]) -> BTreeMap<&'static str, usize> {
    TYPES
        .iter()
        .map(|t| (*t, entities.iter().filter(|e| e["type"] == *t).count()))
        .collect()
}

/// Creates the connection (its first job queued) and runs the worker until quiet.
async fn create_and_sync(app: &TestApp) -> (String, Value) {
    syncing::create_and_sync(app, &body(TOKEN, REPO)).await
}

fn find<'a>(entities: &'a [Value], entity_type: &str, id: &str) -> &'a Value {
    entities
        .iter()
        .find(|e| e["type"] == entity_type && e["entity_id"] == id)
        .unwrap_or_else(|| panic!("no {entity_type} {id}"))
}

fn asked(fake: &FakeGithub, path: &str) -> usize {
    let line = format!("GET /repos/{REPO}{path}");
    fake.paths().iter().filter(|p| **p == line).count()
}

#[tokio::test]
async fn a_sync_over_many_pages_lists_every_item_of_the_repository() {
    let (fake, app) = github_with(14).await;
    let (id, job) = create_and_sync(&app).await;
    assert_eq!(job["status"], "completed", "{job}");
    let expected = listed(&fake);
    let total: usize = expected.values().sum();
    assert_eq!(counts(&job), [total as u64, 0, 0, 0, 0]);
    assert_eq!(
        asked(&fake, "/issues"),
        4,
        "14 issues in pages of {PAGE}, each next one asked since the last update of the page \
         before (which comes again)"
    );
    assert!(
        fake.paths().iter().all(|p| !p.contains("/pulls")),
        "pull requests come from the issues list, once"
    );

    let all = entities(&app, &id).await;
    assert_eq!(stored(&all), expected);
    assert_eq!(expected["github_pull_request"], 3);

    // What a user searches for is there.
    let issue = find(&all, "github_issue", "octo-org/hello-world#1");
    assert_eq!(issue["title"], "Issue 0");
    assert_eq!(issue["payload"]["body"], "Details of issue 0.");
    assert_eq!(issue["payload"]["author"], "octocat");
    assert_eq!(issue["payload"]["state"], "open");
    assert_eq!(
        issue["payload"]["html_url"],
        "https://github.com/octo-org/hello-world/issues/1"
    );
    assert!(issue["payload"].get("reactions").is_none());
    let pr = find(&all, "github_pull_request", "octo-org/hello-world#4");
    assert_eq!(pr["title"], "Pull request 3");
    let comment = find_prefix(&all, "github_comment", "octo-org/hello-world#4/comments/");
    assert_eq!(comment["payload"]["body"], "A comment on #4");
    assert_eq!(comment["payload"]["on_pull_request"], true);
    let readme = find(&all, "github_file", "octo-org/hello-world/README.md");
    assert_eq!(readme["payload"]["content"], "# Hello World\n");
    assert_eq!(
        readme["payload"]["html_url"],
        "https://github.com/octo-org/hello-world/blob/main/README.md"
    );
    let logo = find(&all, "github_file", "octo-org/hello-world/assets/logo.png");
    assert_eq!(logo["payload"]["content_omitted"], "binary");

    let c = connection(&app, &id).await;
    assert_eq!(c["status"], "active");
    assert_eq!(c["entities"]["total_entities"], total);

    // Nothing changed: the next run writes nothing, and asks only for what changed.
    let again = run_and_wait(&app, &id, false).await;
    assert_eq!(again["status"], "completed", "{again}");
    assert_eq!(counts(&again)[..3], [0, 0, 0]);
    assert_eq!(asked(&fake, "/issues"), 5, "one page of what changed");
    assert_eq!(entities(&app, &id).await.len(), total);
}

/// `find` by id prefix, for comments whose ids the fake assigns.
fn find_prefix<'a>(entities: &'a [Value], entity_type: &str, prefix: &str) -> &'a Value {
    entities
        .iter()
        .find(|e| e["type"] == entity_type && e["entity_id"].as_str().unwrap().starts_with(prefix))
        .unwrap_or_else(|| panic!("no {entity_type} {prefix}…"))
}

#[tokio::test]
async fn rate_limited_answers_defer_the_job_and_the_sync_completes() {
    let (fake, app) = github_with(14).await;
    // The second issues page hits the primary limit (reset in a second), and the first file
    // content a secondary limit (retry after a second).
    fake.fail_after("/issues", 1, Fault::PrimaryLimit { reset_in_secs: 1 });
    fake.fail_next(
        "/git/blobs/",
        Fault::SecondaryLimit {
            retry_after_secs: 1,
        },
    );
    let created = create(&app, &body(TOKEN, REPO)).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let handled = drain(&app, Duration::from_secs(3)).await;
    assert!(
        handled >= 3,
        "the job went on in deferred messages ({handled})"
    );

    let job = jobs(&app, &id).await.remove(0);
    assert_eq!(job["status"], "completed", "{job}");
    let expected = listed(&fake);
    let total: usize = expected.values().sum();
    assert_eq!(counts(&job), [total as u64, 0, 0, 0, 0], "each item once");
    assert_eq!(stored(&entities(&app, &id).await), expected);
    assert_eq!(
        asked(&fake, "/issues"),
        5,
        "the limited page is asked again, the first one is not"
    );
}

#[tokio::test]
async fn a_revoked_token_fails_the_job_and_asks_for_reauthentication() {
    let (fake, app) = github_with(3).await;
    let created = create(&app, &body(TOKEN, REPO)).await;
    let id = created["id"].as_str().unwrap().to_owned();
    fake.revoke_token();
    drain(&app, Duration::from_secs(3)).await;

    let job = assert_reauth_needed(&app, &id, "api_key_invalid", &[TOKEN]).await;
    assert_eq!(
        job["error"], "GitHub rejected the credentials: invalid or revoked token",
        "{job}"
    );
}

#[tokio::test]
async fn a_malformed_page_fails_the_job_with_a_clear_error() {
    let (fake, app) = github_with(3).await;
    let created = create(&app, &body(TOKEN, REPO)).await;
    let id = created["id"].as_str().unwrap().to_owned();
    // The issues page arrives cut off.
    fake.fail_next("/issues", Fault::Malformed);
    drain(&app, Duration::from_secs(3)).await;

    let job = assert_failed_plainly(&app, &id, TOKEN, &fake.base_url).await;
    assert_eq!(
        job["error"], "GitHub: GitHub answered HTTP 200 with a body that is not JSON",
        "{job}"
    );
}

#[tokio::test]
async fn an_incremental_resync_writes_what_changed_and_removes_deleted_files() {
    let (fake, app) = github_with(14).await;
    let (id, first) = create_and_sync(&app).await;
    assert_eq!(first["status"], "completed", "{first}");
    let before = entities(&app, &id).await.len();

    let (first_comment, new_comment) = {
        let mut repo = fake.repo(REPO);
        repo.edit_issue(2, |i| i.title = "Issue 1, renamed".into());
        repo.edit_issue(3, |i| i.labels = vec!["bug".into()]);
        repo.close_issue(5);
        let new_issue = repo.add_issue("A new issue", "Found after the first sync.");
        // Commenting moves #7's update time: it is synced again, changed.
        let new_comment = repo.add_comment(7, "A new comment");
        let first_comment = *repo.comments.keys().next().unwrap();
        repo.edit_comment(first_comment, "An edited comment");
        repo.commit(
            "main",
            "Rework the sources",
            &[
                ("README.md", Some(b"# Hello World, again\n")),
                ("docs/new.md", Some(b"# New\n")),
                ("src/lib.rs", None),
            ],
        );
        assert_eq!(new_issue, 15);
        (first_comment, new_comment)
    };
    let job = run_and_wait(&app, &id, false).await;
    assert_eq!(job["status"], "completed", "{job}");
    // Inserted: the new issue, comment and file. Updated: #2, #3, #5, #7, the edited comment
    // and README.md. Deleted: src/lib.rs. Kept: the repository, and the newest issue and
    // comment of the first run, which `since` includes.
    assert_eq!(counts(&job), [3, 6, 1, 3, 0]);
    assert!(
        fake.paths()
            .iter()
            .any(|p| p.starts_with(&format!("GET /repos/{REPO}/compare/"))),
        "the files that changed come from comparing the commits"
    );

    let after = entities(&app, &id).await;
    assert_eq!(after.len(), before + 3 - 1);
    assert_eq!(stored(&after), listed(&fake));
    assert_eq!(
        find(&after, "github_issue", "octo-org/hello-world#2")["title"],
        "Issue 1, renamed"
    );
    assert_eq!(
        find(&after, "github_issue", "octo-org/hello-world#5")["payload"]["state"],
        "closed"
    );
    assert_eq!(
        find(&after, "github_issue", "octo-org/hello-world#15")["title"],
        "A new issue"
    );
    assert_eq!(
        find(
            &after,
            "github_comment",
            &format!("octo-org/hello-world#1/comments/{first_comment}")
        )["payload"]["body"],
        "An edited comment"
    );
    find(
        &after,
        "github_comment",
        &format!("octo-org/hello-world#7/comments/{new_comment}"),
    );
    assert_eq!(
        find(&after, "github_file", "octo-org/hello-world/README.md")["payload"]["content"],
        "# Hello World, again\n"
    );
    find(&after, "github_file", "octo-org/hello-world/docs/new.md");
    assert!(!after
        .iter()
        .any(|e| e["entity_id"] == "octo-org/hello-world/src/lib.rs"));
}

#[tokio::test]
async fn a_full_sync_after_removals_deletes_exactly_what_vanished() {
    let (fake, app) = github_with(14).await;
    let (id, _) = create_and_sync(&app).await;
    let before = entities(&app, &id).await;

    // Issue #4 has a comment, which goes with it; another comment is deleted alone, and a
    // commit removes a file.
    let gone = {
        let mut repo = fake.repo(REPO);
        let with_issue: Vec<u64> = repo
            .comments
            .values()
            .filter(|c| c.issue == 4)
            .map(|c| c.id)
            .collect();
        assert_eq!(with_issue.len(), 1);
        repo.delete_issue(4);
        let alone = *repo.comments.keys().next().unwrap();
        let alone_on = repo.comments[&alone].issue;
        repo.delete_comment(alone);
        repo.commit("main", "Drop the guide", &[("docs/guide.md", None)]);
        vec![
            "octo-org/hello-world#4".to_owned(),
            format!("octo-org/hello-world#4/comments/{}", with_issue[0]),
            format!("octo-org/hello-world#{alone_on}/comments/{alone}"),
            "octo-org/hello-world/docs/guide.md".to_owned(),
        ]
    };

    let job = run_and_wait(&app, &id, true).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(counts(&job), [0, 0, 4, (before.len() - 4) as u64, 0]);
    let after = entities(&app, &id).await;
    assert_eq!(stored(&after), listed(&fake));
    assert_eq!(after.len(), before.len() - 4);
    let remaining: Vec<&str> = after
        .iter()
        .map(|e| e["entity_id"].as_str().unwrap())
        .collect();
    for id in &gone {
        assert!(!remaining.contains(&id.as_str()), "{id} is deleted");
    }
    let kept: Vec<&str> = before
        .iter()
        .map(|e| e["entity_id"].as_str().unwrap())
        .filter(|id| !gone.iter().any(|g| g == id))
        .collect();
    assert_eq!(remaining, kept, "nothing else is touched");
}

#[tokio::test]
async fn credential_checks_create_or_refuse_with_nothing_stored() {
    let (fake, app) = github_with(2).await;
    let response = app.create_connection(&body(TOKEN, REPO)).await;
    assert_eq!(response.status(), 201);
    let text = response.text().await.unwrap();
    assert!(!text.contains(TOKEN), "no token in the answer");
    assert_eq!(
        fake.paths()[..2],
        ["GET /user".to_owned(), format!("GET /repos/{REPO}")]
    );

    for (token, repo, detail) in [
        (
            "ghp_wrongToken111111111111111111111111111",
            REPO,
            "invalid or revoked token",
        ),
        (
            TOKEN,
            "octo-org/secret",
            "token cannot read octo-org/secret",
        ),
    ] {
        let other = app_with_source("github", &fake.base_url).await;
        let response = other.create_connection(&body(token, repo)).await;
        assert_eq!(response.status(), 400, "{repo}");
        let problem = response.text().await.unwrap();
        assert!(problem.contains(detail), "{problem}");
        assert!(
            !problem.contains(TOKEN) && !problem.contains(token),
            "{problem}"
        );
        assert!(
            other.aws.secret_names_under_prefix().await.is_empty(),
            "no secret"
        );
        assert_eq!(other.aws.connection_items_count().await, 0, "no connection");
        assert!(
            other.aws.receive_messages().await.is_empty(),
            "no job queued"
        );
    }
    assert!(!logs::captured().contains(TOKEN));
    assert!(!logs::captured().contains("ghp_wrongToken111111111111111111111111111"));
}

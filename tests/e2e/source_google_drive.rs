//! The `google_drive` source end to end: the API creates a connection whose OAuth access token
//! the fake Drive checks (`about`), the worker lists shared drives and files page by page (with
//! the text of Google Docs and small text files), later runs read the changes API from the
//! saved start token, and the API shows what a user would see.

use crate::helpers::app::{problem, TestApp};
use crate::helpers::logs;
use crate::helpers::syncing::{
    self, app_with_source, assert_failed_plainly, assert_reauth_needed, connection, counts, create,
    drain, entities, jobs, keys, run_and_wait,
};
use fakes::google_drive::{FakeGoogleDrive, RateLimit};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

const TOKEN: &str = "ya29.e2e-googleDriveSecretAccessToken-0451";
const REFRESH: &str = "1//e2e-googleDriveSecretRefreshToken-0451";

/// The fake's files and drives, in pages of 3.
struct Seeded {
    fake: FakeGoogleDrive,
    roadmap: String,
    todo: String,
    logo: String,
    design: String,
    engineering: String,
    /// A doc of someone else's shared drive shared directly with the user, who is not a member.
    theirs: String,
}

/// 2 shared drives and 10 files (a folder, 5 Google Docs, 3 text files, an image; one of the
/// docs in a shared drive the user is not in, shared with them directly): drives in one page,
/// the user corpus in three.
const SEEDED_TOTAL: u64 = 12;

async fn seeded() -> (Seeded, TestApp) {
    let fake = FakeGoogleDrive::start(TOKEN).await;
    let (roadmap, todo, logo, design, engineering, theirs) = {
        let mut w = fake.workspace();
        w.max_page_size = 3;
        w.add_folder("Projects");
        let roadmap = w.add_doc(
            "Roadmap 2026",
            "Roadmap 2026\n\nQ1: launch the connector platform.",
        );
        w.add_doc("Meeting notes", "Weekly sync: Drive connector reviewed.");
        w.add_doc("Budget", "Budget draft for the offsite.");
        let todo = w.add_text_file("todo.txt", "buy milk\nwrite tests\n");
        w.add_text_file("notes.txt", "loose notes");
        let logo = w.add_binary_file("logo.png", "image/png", 48_213);
        let engineering = w.add_drive("Engineering");
        let marketing = w.add_drive("Marketing");
        let design = w.add_doc("Design doc", "Sync design: pages, checkpoints, cursors.");
        w.move_to_drive(&design, &engineering);
        let campaign = w.add_text_file("campaign.txt", "Spring campaign plan");
        w.move_to_drive(&campaign, &marketing);
        let theirs = w.add_doc_shared_from_another_drive("Partner brief", "Shared with Ada.");
        (roadmap, todo, logo, design, engineering, theirs)
    };
    let app = app_with_source("google_drive", &fake.base_url).await;
    let seeded = Seeded {
        fake,
        roadmap,
        todo,
        logo,
        design,
        engineering,
        theirs,
    };
    (seeded, app)
}

fn body(access_token: &str) -> Value {
    json!({
        "short_name": "google_drive",
        "readable_collection_id": "docs",
        "authentication": {
            "access_token": access_token,
            "refresh_token": REFRESH,
            "expires_in": 3600,
        },
    })
}

/// Creates the connection (its first job queued) and runs the worker until quiet.
async fn create_and_sync(app: &TestApp) -> (String, Value) {
    syncing::create_and_sync(app, &body(TOKEN)).await
}

fn file_key(id: &str) -> String {
    format!("google_drive_file#{id}")
}

/// Every file and drive of the fake, as entity keys.
fn fake_keys(fake: &FakeGoogleDrive) -> BTreeSet<String> {
    let w = fake.workspace();
    let files = w.live_file_ids().into_iter().map(|id| file_key(&id));
    let drives = w
        .drive_ids()
        .into_iter()
        .map(|id| format!("google_drive_drive#{id}"));
    files.chain(drives).collect()
}

fn requests_to(fake: &FakeGoogleDrive, path: &str) -> Vec<String> {
    let prefix = format!("GET {path}?");
    fake.requests()
        .into_iter()
        .filter(|r| r.starts_with(&prefix) || *r == format!("GET {path}"))
        .collect()
}

#[tokio::test]
async fn a_sync_over_many_pages_lists_every_file_and_drive() {
    let (w, app) = seeded().await;
    let (id, job) = create_and_sync(&app).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(counts(&job), [SEEDED_TOTAL, 0, 0, 0, 0]);

    let all = entities(&app, &id).await;
    assert_eq!(keys(&all), fake_keys(&w.fake));
    assert_eq!(all.len() as u64, SEEDED_TOTAL);

    // Paged as Drive pages, without the trash: the user's own files (three pages), then each
    // shared drive on its own, never `allDrives` (incomplete for users in many drives).
    let listings = requests_to(&w.fake, "/drive/v3/files");
    assert_eq!(listings.len(), 5, "{listings:?}");
    assert!(listings
        .iter()
        .all(|r| r.contains("q=trashed = false") && !r.contains("corpora=allDrives")));
    assert!(
        listings[..3].iter().all(|r| r.contains("corpora=user")
            && r.contains("includeItemsFromAllDrives=true")
            && r.contains("supportsAllDrives=true")
            && !r.contains("driveId=")),
        "{listings:?}"
    );
    assert!(!listings[0].contains("pageToken") && listings[2].contains("pageToken"));
    assert!(listings[3..].iter().all(|r| r.contains("corpora=drive")
        && r.contains("includeItemsFromAllDrives=true")
        && r.contains("supportsAllDrives=true")));
    assert!(
        listings[3].contains(&format!("driveId={}", w.engineering)),
        "{listings:?}"
    );
    assert_eq!(
        requests_to(&w.fake, "/drive/v3/changes/startPageToken").len(),
        1
    );

    // What a user searches for is there: names, text, owners, links.
    let find = |id: &str| all.iter().find(|e| e["entity_id"] == id).unwrap();
    let roadmap = find(&w.roadmap);
    assert_eq!(roadmap["type"], "google_drive_file");
    assert_eq!(roadmap["title"], "Roadmap 2026");
    assert_eq!(
        roadmap["payload"]["content"],
        "Roadmap 2026\n\nQ1: launch the connector platform."
    );
    assert_eq!(roadmap["payload"]["owners"][0]["email"], "ada@example.com");
    assert!(roadmap["payload"]["web_view_link"]
        .as_str()
        .unwrap()
        .starts_with("https://docs.google.com/document/d/"));
    assert!(roadmap["updated_at"].is_string());
    assert!(roadmap["payload"].get("viewedByMeTime").is_none());
    assert_eq!(
        find(&w.todo)["payload"]["content"],
        "buy milk\nwrite tests\n"
    );
    assert_eq!(find(&w.logo)["payload"]["content"], Value::Null);
    assert_eq!(find(&w.logo)["payload"]["size"], 48_213);
    assert_eq!(
        find(&w.design)["payload"]["drive_id"],
        w.engineering.as_str()
    );
    assert_eq!(find(&w.engineering)["title"], "Engineering");
    assert_eq!(find(&w.theirs)["payload"]["content"], "Shared with Ada.");

    let c = connection(&app, &id).await;
    assert_eq!(c["status"], "active");
    assert_eq!(c["entities"]["total_entities"], SEEDED_TOTAL);
    assert!(!all.iter().any(|e| e.to_string().contains(TOKEN)));

    // Nothing changed: a full run keeps everything, though Drive's volatile fields moved.
    let again = run_and_wait(&app, &id, true).await;
    assert_eq!(counts(&again), [0, 0, 0, SEEDED_TOTAL, 0], "{again}");
}

#[tokio::test]
async fn a_rate_limited_page_defers_the_job_and_the_sync_completes() {
    let (w, app) = seeded().await;
    // The second page of files: 403 userRateLimitExceeded, Retry-After: 1.
    w.fake
        .rate_limit_after("/drive/v3/files", 1, RateLimit::UserRateLimit, Some(1));
    let created = create(&app, &body(TOKEN)).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let handled = drain(&app, Duration::from_secs(3)).await;
    assert!(
        handled >= 2,
        "the job went on in a deferred message ({handled})"
    );

    let job = jobs(&app, &id).await.remove(0);
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(counts(&job), [SEEDED_TOTAL, 0, 0, 0, 0]);
    assert_eq!(keys(&entities(&app, &id).await), fake_keys(&w.fake));
    let listings = requests_to(&w.fake, "/drive/v3/files");
    assert_eq!(listings.len(), 6, "{listings:?}");
    assert_eq!(listings[1], listings[2], "the limited page is asked again");
    assert_eq!(connection(&app, &id).await["status"], "active");
}

#[tokio::test]
async fn a_revoked_token_fails_the_job_and_asks_for_reauthentication() {
    let (w, app) = seeded().await;
    let created = create(&app, &body(TOKEN)).await;
    let id = created["id"].as_str().unwrap().to_owned();
    w.fake.revoke_token();
    drain(&app, Duration::from_secs(3)).await;

    let job = assert_reauth_needed(&app, &id, "oauth_credentials_expired", &[TOKEN, REFRESH]).await;
    assert!(
        job["error"]
            .as_str()
            .unwrap()
            .contains("expired or revoked"),
        "{job}"
    );
}

#[tokio::test]
async fn a_malformed_page_fails_the_job_with_a_clear_error() {
    let (w, app) = seeded().await;
    w.fake.malform_after("/drive/v3/files", 1);
    let (id, _) = create_and_sync(&app).await;
    let job = assert_failed_plainly(&app, &id, TOKEN, &w.fake.base_url).await;
    assert_eq!(
        job["error"],
        "Google Drive: the answer to /drive/v3/files is not JSON (HTTP 200)"
    );
}

#[tokio::test]
async fn an_incremental_sync_reads_the_changes_and_deletes_what_was_removed() {
    let (w, app) = seeded().await;
    let (id, first) = create_and_sync(&app).await;
    assert_eq!(first["status"], "completed", "{first}");

    // A new doc, an edited doc, a trashed text file and a deleted image.
    let added = {
        let mut ws = w.fake.workspace();
        let added = ws.add_doc("Retro", "What went well: the fakes.");
        ws.set_text(&w.roadmap, "Roadmap 2026\n\nQ1: launched.");
        ws.trash(&w.todo);
        ws.delete(&w.logo);
        added
    };
    let job = run_and_wait(&app, &id, false).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(counts(&job), [1, 1, 2, 0, 0], "{job}");
    assert!(
        requests_to(&w.fake, "/drive/v3/changes")
            .iter()
            .all(|r| r.contains("pageToken=")),
        "read from the saved start token"
    );
    assert_eq!(
        requests_to(&w.fake, "/drive/v3/files").len(),
        5,
        "no listing of every file again"
    );

    let all = entities(&app, &id).await;
    assert_eq!(keys(&all), fake_keys(&w.fake));
    let stored = keys(&all);
    assert!(stored.contains(&file_key(&added)));
    assert!(!stored.contains(&file_key(&w.todo)) && !stored.contains(&file_key(&w.logo)));
    let roadmap = all.iter().find(|e| e["entity_id"] == w.roadmap).unwrap();
    assert_eq!(
        roadmap["payload"]["content"],
        "Roadmap 2026\n\nQ1: launched."
    );

    // Nothing changed since: nothing written, and the next run starts where this one ended.
    let quiet = run_and_wait(&app, &id, false).await;
    assert_eq!(counts(&quiet), [0, 0, 0, 0, 0], "{quiet}");
}

#[tokio::test]
async fn a_full_sync_after_removals_deletes_exactly_what_vanished() {
    let (w, app) = seeded().await;
    let (id, first) = create_and_sync(&app).await;
    assert_eq!(first["status"], "completed", "{first}");

    // A trashed file, a deleted one, and a whole shared drive with its design doc.
    {
        let mut ws = w.fake.workspace();
        ws.trash(&w.todo);
        ws.delete(&w.logo);
        ws.remove_drive(&w.engineering);
    }
    let before = keys(&entities(&app, &id).await);
    let job = run_and_wait(&app, &id, true).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(counts(&job), [0, 0, 4, SEEDED_TOTAL - 4, 0], "{job}");
    let after = keys(&entities(&app, &id).await);
    let deleted: BTreeSet<String> = before.difference(&after).cloned().collect();
    let expected: BTreeSet<String> = [
        file_key(&w.todo),
        file_key(&w.logo),
        file_key(&w.design),
        format!("google_drive_drive#{}", w.engineering),
    ]
    .into_iter()
    .collect();
    assert_eq!(deleted, expected);
    assert_eq!(after, fake_keys(&w.fake));
}

#[tokio::test]
async fn a_file_shared_from_a_drive_the_user_is_not_in_stays_across_full_and_incremental_runs() {
    let (w, app) = seeded().await;
    let (id, first) = create_and_sync(&app).await;
    assert_eq!(first["status"], "completed", "{first}");
    assert!(keys(&entities(&app, &id).await).contains(&file_key(&w.theirs)));

    // The changes API reports the edit (it reads all drives): an update, not an insert.
    w.fake
        .workspace()
        .set_text(&w.theirs, "Shared with Ada, edited.");
    let incremental = run_and_wait(&app, &id, false).await;
    assert_eq!(incremental["status"], "completed", "{incremental}");
    assert_eq!(counts(&incremental), [0, 1, 0, 0, 0], "{incremental}");

    // The next full run lists it again: nothing is deleted.
    let full = run_and_wait(&app, &id, true).await;
    assert_eq!(full["status"], "completed", "{full}");
    assert_eq!(counts(&full), [0, 0, 0, SEEDED_TOTAL, 0], "{full}");
    let all = entities(&app, &id).await;
    assert_eq!(keys(&all), fake_keys(&w.fake));
    let theirs = all.iter().find(|e| e["entity_id"] == w.theirs).unwrap();
    assert_eq!(theirs["payload"]["content"], "Shared with Ada, edited.");
}

#[tokio::test]
async fn the_token_is_checked_before_anything_is_stored() {
    let (w, app) = seeded().await;
    let bad = "ya29.revoked-or-typo-token";
    let p = problem(app.create_connection(&body(bad)).await, 400).await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .starts_with("Google Drive rejected the credentials"),
        "{p}"
    );
    assert!(!p.to_string().contains(bad));
    assert!(
        app.aws.secret_names_under_prefix().await.is_empty(),
        "no secret"
    );
    let listed: Vec<Value> = app.get("/source-connections").await.json().await.unwrap();
    assert!(listed.is_empty(), "no connection: {listed:?}");
    assert!(app.aws.receive_messages().await.is_empty(), "no job queued");

    let response = app.create_connection(&body(TOKEN)).await;
    assert_eq!(response.status(), 201);
    let text = response.text().await.unwrap();
    assert!(!text.contains(TOKEN) && !text.contains(REFRESH));
    let c: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(c["short_name"], "google_drive");
    assert_eq!(c["auth"]["method"], "oauth_token");
    assert_eq!(
        requests_to(&w.fake, "/drive/v3/about"),
        ["GET /drive/v3/about?fields=user"; 2],
        "both checks asked Drive"
    );
    assert!(!logs::captured().contains(bad));
}

//! The entity stream against the fake Drive (`fakes::google_drive`): full runs (drives, file
//! pages, content), pages handed out in slices and resumed, failures mid-run, and incremental
//! runs over `changes`.

use super::api::DAILY_LIMIT_WAIT;
use super::entities::{file_entity, text_content, Content, CONTENT_LIMIT, TEXT_FILE_MAX_BYTES};
use super::stream::CONTENT_FETCHES_PER_PAGE;
use super::tests::{fake_drive, oauth, source_for, TOKEN};
use super::*;
use crate::testing::{next_page_within, SHORT_BUDGET, SLOW_CALL};
use domain::entity::EntityKey;
use domain::stream::EntityPage;
use fakes::google_drive::{FakeGoogleDrive, RateLimit};
use serde_json::json;
use std::time::Duration;

fn request(since: Option<Value>, resume: Option<Value>) -> StreamRequest {
    StreamRequest {
        auth: oauth(TOKEN),
        config: Map::new(),
        cursor: since,
        checkpoint: resume,
        page_budget: crate::testing::PAGE_BUDGET,
    }
}

fn open(
    fake: &FakeGoogleDrive,
    since: Option<Value>,
    resume: Option<Value>,
) -> Box<dyn EntityStream> {
    source_for(fake)
        .open_stream(request(since, resume))
        .unwrap()
}

/// A file as Drive lists it, for the tests of what an entity keeps.
fn file(id: &str, mime: &str) -> Value {
    json!({
        "id": id,
        "name": format!("File {id}"),
        "mimeType": mime,
        "modifiedTime": "2026-03-01T10:00:00.000Z",
        "createdTime": "2026-02-01T10:00:00.000Z",
        "owners": [{"displayName": "Ada", "emailAddress": "ada@example.com", "me": true}],
        "webViewLink": format!("https://docs.google.com/d/{id}"),
        "parents": ["root"],
    })
}

/// Where a full run's files start, with start token `5`.
fn at_files() -> Option<Value> {
    Some(json!({"step": {"kind": "files", "page_token": null},
                "next_start": "5", "drives": []}))
}

fn file_key(id: &str) -> String {
    format!("google_drive_file:{id}")
}

fn drive_key(id: &str) -> String {
    format!("google_drive_drive:{id}")
}

fn ids(page: &EntityPage) -> Vec<String> {
    page.entities
        .iter()
        .map(|e| format!("{}:{}", e.entity_type, e.entity_id))
        .collect()
}

async fn page(stream: &mut Box<dyn EntityStream>) -> EntityPage {
    stream.next_page().await.unwrap().expect("a page")
}

/// Every id of the stream's pages until it ends.
async fn rest(stream: &mut Box<dyn EntityStream>) -> Vec<String> {
    let mut all = Vec::new();
    while let Some(page) = stream.next_page().await.unwrap() {
        all.extend(ids(&page));
    }
    all
}

/// `n` Google Docs in My Drive, listed in this order; every one exports some text.
fn add_docs(fake: &FakeGoogleDrive, n: usize) -> Vec<String> {
    let mut w = fake.workspace();
    (0..n)
        .map(|i| w.add_doc(&format!("Doc {i:02}"), "text of a doc"))
        .collect()
}

fn add_image(fake: &FakeGoogleDrive, name: &str) -> String {
    fake.workspace().add_binary_file(name, "image/png", 1_024)
}

// --- full runs: paging, content, cursor ---

#[tokio::test]
async fn a_full_run_lists_drives_then_every_file_page_and_keeps_the_start_token() {
    let fake = fake_drive().await;
    let (folder, image, doc, team, team_file, start) = {
        let mut w = fake.workspace();
        w.max_page_size = 2;
        let folder = w.add_folder("Projects");
        let image = w.add_binary_file("logo.png", "image/png", 48_213);
        let doc = w.add_doc("Quarterly plan", "Quarterly plan\r\nShip it.");
        let team = w.add_drive("Team");
        let team_file = w.add_binary_file("team.png", "image/png", 1_024);
        w.move_to_drive(&team_file, &team);
        (folder, image, doc, team, team_file, w.start_page_token())
    };
    let mut stream = open(&fake, None, None);
    let drives = page(&mut stream).await;
    assert_eq!(ids(&drives), [drive_key(&team)]);
    let first = page(&mut stream).await;
    assert_eq!(ids(&first), [file_key(&folder), file_key(&image)]);
    assert_eq!(first.entities[0].payload["is_folder"], true);
    assert_eq!(first.entities[1].payload["content"], Value::Null);
    let second = page(&mut stream).await;
    assert_eq!(ids(&second), [file_key(&doc)]);
    let entity = &second.entities[0];
    assert_eq!(entity.title, "Quarterly plan");
    // Drive's plain-text export starts with a byte order mark; the content does not keep it.
    assert_eq!(entity.payload["content"], "Quarterly plan\r\nShip it.");
    assert_eq!(entity.payload["owners"][0]["email"], "ada@example.com");
    assert_eq!(
        entity.updated_at,
        Some(fake.workspace().file(&doc).modified)
    );
    assert!(second.removed.is_empty());
    let shared = page(&mut stream).await;
    assert_eq!(ids(&shared), [file_key(&team_file)]);
    assert_eq!(shared.entities[0].payload["drive_id"], team.as_str());
    assert!(stream.next_page().await.unwrap().is_none());
    assert!(!stream.incremental());
    assert_eq!(stream.cursor(), Some(json!({ "start_page_token": start })));
    // The start token, the drives, two pages of the user's own files, one export, the shared
    // drive's files (the e2e test checks the queries).
    assert_eq!(fake.requests().len(), 6, "{:#?}", fake.requests());
}

#[tokio::test]
async fn a_listing_page_is_handed_out_in_slices_and_a_resumed_stream_continues() {
    let fake = fake_drive().await;
    let docs = add_docs(&fake, 12);
    let mut stream = open(&fake, None, at_files());
    let first = page(&mut stream).await;
    assert_eq!(first.entities.len(), CONTENT_FETCHES_PER_PAGE);
    assert_eq!(
        fake.requests().len(),
        1 + CONTENT_FETCHES_PER_PAGE,
        "listed once"
    );
    let checkpoint = first.checkpoint.clone();
    assert_eq!(checkpoint["step"]["last"], docs[9].as_str());

    // A new stream from the checkpoint lists the page again and skips what was handed out.
    let mut resumed = open(&fake, None, Some(checkpoint));
    let rest = page(&mut resumed).await;
    assert_eq!(ids(&rest), [file_key(&docs[10]), file_key(&docs[11])]);
    assert!(resumed.next_page().await.unwrap().is_none());
    assert_eq!(resumed.cursor(), Some(json!({"start_page_token": "5"})));
}

#[tokio::test]
async fn a_resumed_listing_goes_on_after_the_last_file_handed_out_even_if_files_went() {
    let fake = fake_drive().await;
    let docs = add_docs(&fake, 12);
    let mut stream = open(&fake, None, at_files());
    let first = page(&mut stream).await;
    assert_eq!(first.entities.len(), CONTENT_FETCHES_PER_PAGE);
    // A file handed out already leaves the page (trashed): by count, the resumed stream would
    // skip d10, which it never handed out, and the run would delete it as absent.
    fake.workspace().trash(&docs[3]);
    let mut resumed = open(&fake, None, Some(first.checkpoint.clone()));
    assert_eq!(
        rest(&mut resumed).await,
        [file_key(&docs[10]), file_key(&docs[11])]
    );

    // The last file handed out itself left the page (deleted): the whole page comes again.
    fake.workspace().delete(&docs[9]);
    let mut resumed = open(&fake, None, Some(first.checkpoint));
    let again = rest(&mut resumed).await;
    assert_eq!(again.len(), 10, "{again:?}");
    assert!(again.contains(&file_key(&docs[0])));
    assert!(again.contains(&file_key(&docs[10])));
    assert!(again.contains(&file_key(&docs[11])));
}

#[tokio::test]
async fn a_resumed_changes_listing_goes_on_after_the_last_change_handed_out() {
    let fake = fake_drive().await;
    let since = Some(json!({"start_page_token": fake.workspace().start_page_token()}));
    let docs = add_docs(&fake, 12);
    // Changes pages of 12: a file changed again moves to the end of the change log, so a page
    // asked again no longer holds what moved past its end.
    fake.workspace().max_page_size = 12;
    let mut stream = open(&fake, since.clone(), None);
    let first = page(&mut stream).await;
    assert_eq!(first.entities.len(), CONTENT_FETCHES_PER_PAGE);
    assert_eq!(
        first.checkpoint["step"]["last"],
        format!("file:{}", docs[9])
    );
    // A change handed out already leaves its place (d00 is deleted: its removal comes last):
    // by count, the resumed stream would skip d10.
    fake.workspace().delete(&docs[0]);
    let mut resumed = open(&fake, since.clone(), Some(first.checkpoint.clone()));
    assert_eq!(
        rest(&mut resumed).await,
        [file_key(&docs[10]), file_key(&docs[11])]
    );
    let next_start = fake.workspace().start_page_token();
    assert_eq!(
        resumed.cursor(),
        Some(json!({ "start_page_token": next_start }))
    );

    // The last change handed out itself left the page (d09 was edited after a new doc was
    // added: its change is now on the next page): the page comes again.
    let late = {
        let mut w = fake.workspace();
        let late = w.add_doc("Late", "text of a doc");
        w.set_text(&docs[9], "edited");
        late
    };
    let mut resumed = open(&fake, since, Some(first.checkpoint));
    let mut expected: Vec<String> = docs[1..9].iter().map(|d| file_key(d)).collect();
    expected.extend([&docs[10], &docs[11], &late, &docs[9]].map(|d| file_key(d)));
    assert_eq!(rest(&mut resumed).await, expected, "the page again");
}

#[tokio::test]
async fn a_page_starts_no_download_once_its_time_budget_is_spent() {
    let fake = fake_drive().await;
    let docs = add_docs(&fake, 3);
    let spent = StreamRequest {
        page_budget: Duration::ZERO,
        ..request(None, at_files())
    };
    let mut stream = source_for(&fake).open_stream(spent).unwrap();
    let mut pages = Vec::new();
    while let Some(page) = stream.next_page().await.unwrap() {
        pages.push(page);
    }
    // One download per page: the budget is spent after the first.
    let per_page: Vec<Vec<String>> = pages.iter().map(ids).collect();
    let expected: Vec<Vec<String>> = docs.iter().map(|d| vec![file_key(d)]).collect();
    assert_eq!(per_page, expected);
    assert_eq!(pages[0].checkpoint["step"]["last"], docs[0].as_str());
    assert_eq!(fake.requests().len(), 4, "listed once, three downloads");
    // The budget a stream is opened with in production: the worker's.
    assert_eq!(
        domain::usecases::sync::SyncSettings::default().page_budget,
        Duration::from_secs(20)
    );
}

#[tokio::test]
async fn a_page_of_a_slow_drive_returns_within_its_budget_and_one_call() {
    let fake = fake_drive().await;
    add_docs(&fake, 12);
    fake.answer_after(SLOW_CALL);
    let short = StreamRequest {
        page_budget: SHORT_BUDGET,
        ..request(None, at_files())
    };
    let mut stream = source_for(&fake).open_stream(short).unwrap();
    let mut pages = Vec::new();
    loop {
        let Some(page) = next_page_within(&mut stream, SHORT_BUDGET).await else {
            break;
        };
        assert!(!page.entities.is_empty(), "every page moves the run on");
        pages.push(ids(&page));
    }
    let mut all = pages.concat();
    all.dedup();
    assert_eq!(all.len(), 12, "{all:?}");
    assert!(pages.len() >= 4, "{pages:?}");
}

/// A file of mine and a shared drive `Team` holding one file.
fn mine_and_a_team_drive(fake: &FakeGoogleDrive) -> (String, String, String) {
    let mut w = fake.workspace();
    let mine = w.add_binary_file("mine.png", "image/png", 1_024);
    let team = w.add_drive("Team");
    let team_file = w.add_binary_file("team.png", "image/png", 1_024);
    w.move_to_drive(&team_file, &team);
    (mine, team, team_file)
}

#[tokio::test]
async fn a_shared_drive_gone_mid_run_is_skipped_and_the_next_one_listed() {
    let fake = fake_drive().await;
    let gone = fake.workspace().add_drive("Gone");
    let (mine, team, team_file) = mine_and_a_team_drive(&fake);
    let resume = json!({"step": {"kind": "files", "page_token": null},
                        "next_start": "5", "drives": [gone, team]});
    // The first drive of the checkpoint's page is deleted before its files are listed.
    fake.workspace().remove_drive(&gone);
    let mut stream = open(&fake, None, Some(resume));
    let all = rest(&mut stream).await;
    assert_eq!(all, [file_key(&mine), file_key(&team_file)]);
    assert_eq!(stream.cursor(), Some(json!({"start_page_token": "5"})));
    let asked: Vec<Option<String>> = fake
        .queries_of("/drive/v3/files")
        .into_iter()
        .map(|q| q.get("driveId").cloned())
        .collect();
    assert_eq!(asked, [None, Some(gone), Some(team.clone())]);

    // A checkpoint from before drives were listed one by one starts the run over.
    let old = json!({"step": {"kind": "files", "page_token": "p2", "offset": 10},
                     "next_start": "5"});
    let before = fake.requests().len();
    let start = fake.workspace().start_page_token();
    let mut restarted = open(&fake, None, Some(old));
    assert_eq!(
        rest(&mut restarted).await,
        [drive_key(&team), file_key(&mine), file_key(&team_file)]
    );
    assert_eq!(
        restarted.cursor(),
        Some(json!({ "start_page_token": start }))
    );
    assert!(
        fake.requests()[before].starts_with("GET /drive/v3/changes/startPageToken"),
        "{:?}",
        &fake.requests()[before..]
    );
}

#[tokio::test]
async fn an_old_checkpoint_still_listing_drives_starts_over() {
    // Checkpoints of versions that listed every page of drives before any file: without
    // the drives named so far (the `allDrives` version), or with them; resumed, the drives
    // of the pages before would never have their files listed, and the run would delete
    // them.
    let fake = fake_drive().await;
    let (mine, team, team_file) = mine_and_a_team_drive(&fake);
    let start = fake.workspace().start_page_token();
    for old in [
        json!({"step": {"kind": "drives", "page_token": "d2"}, "next_start": "5"}),
        json!({"step": {"kind": "drives", "page_token": "d2"}, "next_start": "5",
               "drives": ["0AA"]}),
    ] {
        let before = fake.requests().len();
        let mut restarted = open(&fake, None, Some(old.clone()));
        assert_eq!(
            rest(&mut restarted).await,
            [drive_key(&team), file_key(&mine), file_key(&team_file)],
            "{old}"
        );
        assert_eq!(
            restarted.cursor(),
            Some(json!({ "start_page_token": start }))
        );
        assert!(
            fake.requests()[before].starts_with("GET /drive/v3/changes/startPageToken"),
            "{old}"
        );
    }
}

#[tokio::test]
async fn the_user_corpus_lists_shared_drive_files_shared_directly_with_the_user() {
    // As Drive answers: a file of someone else's shared drive (the user is not a member,
    // so `drives.list` does not name it) shared directly with the user is in the user
    // corpus only with includeItemsFromAllDrives and supportsAllDrives. `changes` reports
    // it: a full run that did not list it would delete it every time.
    let fake = fake_drive().await;
    let mine = add_image(&fake, "mine.png");
    let theirs = fake
        .workspace()
        .add_doc_shared_from_another_drive("Their plan", "Shared with Ada only.");
    let start = fake.workspace().start_page_token();
    let mut stream = open(&fake, None, None);
    assert_eq!(
        rest(&mut stream).await,
        [file_key(&mine), file_key(&theirs)]
    );
    assert_eq!(stream.cursor(), Some(json!({ "start_page_token": start })));
    let listings = fake.queries_of("/drive/v3/files");
    assert_eq!(listings.len(), 1, "{listings:?}");
    let flag = |name: &str| listings[0].get(name).map(String::as_str);
    assert_eq!(flag("corpora"), Some("user"));
    assert_eq!(flag("includeItemsFromAllDrives"), Some("true"));
    assert_eq!(flag("supportsAllDrives"), Some("true"));
}

#[tokio::test]
async fn thousands_of_shared_drives_keep_the_checkpoint_small_across_resumes() {
    // 5,000 shared drives (about 18k would overflow a 400 KB job item if the checkpoint
    // named them all), listed 40 a page, one file each; the stream is opened again from
    // the checkpoint of every page, as if each page were the last of an invocation.
    const DRIVES: usize = 5_000;
    const PAGE: usize = 40;
    const LIMIT: usize = 100 * 1024;
    let fake = fake_drive().await;
    let (mine, drives, files, start) = {
        let mut w = fake.workspace();
        w.max_page_size = PAGE;
        let mine = w.add_binary_file("mine.png", "image/png", 1_024);
        let drives: Vec<String> = (0..DRIVES)
            .map(|i| w.add_drive(&format!("Team {i}")))
            .collect();
        let files: Vec<String> = drives
            .iter()
            .enumerate()
            .map(|(i, drive)| {
                let file = w.add_binary_file(&format!("team-{i}.png"), "image/png", 1_024);
                w.move_to_drive(&file, drive);
                file
            })
            .collect();
        (mine, drives, files, w.start_page_token())
    };
    assert_eq!(
        fake.workspace().drive_ids(),
        drives,
        "drives.list answers them in this order"
    );
    let source = source_for(&fake);
    let mut resume = None;
    let mut handed = Vec::new();
    let mut largest = 0;
    loop {
        let mut stream = source.open_stream(request(None, resume.take())).unwrap();
        let Some(page) = stream.next_page().await.unwrap() else {
            assert_eq!(stream.cursor(), Some(json!({ "start_page_token": start })));
            break;
        };
        let size = serde_json::to_vec(&page.checkpoint).unwrap().len();
        assert!(size < LIMIT, "a checkpoint of {size} bytes");
        largest = largest.max(size);
        let named = page.checkpoint["drives"].as_array().map_or(0, Vec::len);
        assert!(named <= PAGE, "{named} drives in the checkpoint");
        handed.extend(ids(&page));
        resume = Some(page.checkpoint);
    }
    assert!(
        largest < 4 * 1024,
        "the largest checkpoint has {largest} bytes"
    );

    // Every drive's files listed once, in order: none skipped, none repeated.
    let listed: Vec<String> = fake
        .queries_of("/drive/v3/files")
        .into_iter()
        .filter_map(|q| q.get("driveId").cloned())
        .collect();
    assert_eq!(listed, drives);
    let mut expected = vec![file_key(&mine)];
    expected.extend(drives.iter().map(|id| drive_key(id)));
    expected.extend(files.iter().map(|id| file_key(id)));
    let mut got = handed.clone();
    got.sort();
    expected.sort();
    assert_eq!(got.len(), expected.len(), "nothing handed out twice");
    assert_eq!(got, expected);
    // A page of drives, then their files, then the next page.
    let second_page = handed
        .iter()
        .position(|id| *id == drive_key(&drives[PAGE]))
        .unwrap();
    assert_eq!(handed[second_page - 1], file_key(&files[PAGE - 1]));
}

#[tokio::test]
async fn a_file_the_user_cannot_read_is_synced_without_content_and_quotas_wait() {
    let fake = fake_drive().await;
    let locked = fake.workspace().add_doc("Locked", "not for Ada's eyes");
    fake.refuse_after("/export", 0, 403, "insufficientFilePermissions");
    let mut stream = open(&fake, None, at_files());
    let got = page(&mut stream).await;
    assert_eq!(ids(&got), [file_key(&locked)]);
    assert_eq!(got.entities[0].payload["content"], Value::Null);

    fake.refuse_after("/export", 0, 403, "dailyLimitExceeded");
    let mut stream = open(&fake, None, at_files());
    assert_eq!(
        stream.next_page().await.unwrap_err(),
        StreamError::RateLimited {
            wait: DAILY_LIMIT_WAIT
        }
    );
}

#[tokio::test]
async fn small_text_files_carry_their_text_large_and_unexportable_ones_do_not() {
    let fake = fake_drive().await;
    let big = {
        let mut w = fake.workspace();
        w.add_text_file("small.txt", "hello, world");
        let big = w.add_binary_file("big.txt", "text/plain", TEXT_FILE_MAX_BYTES + 1);
        w.add_doc("Gone", "deleted before its export");
        big
    };
    // The doc is deleted between its listing and its export: Drive answers 404.
    fake.refuse_after("/export", 0, 404, "notFound");
    let mut stream = open(&fake, None, at_files());
    let got = page(&mut stream).await;
    let content: Vec<&Value> = got.entities.iter().map(|e| &e.payload["content"]).collect();
    assert_eq!(
        content,
        [&json!("hello, world"), &Value::Null, &Value::Null]
    );
    assert_eq!(got.entities[0].payload["size"], 12);
    let requests = fake.requests();
    assert!(!requests.iter().any(|r| r.contains(&big)), "{requests:?}");
}

#[test]
fn text_is_cut_on_a_character_boundary() {
    let mut body = "a".repeat(CONTENT_LIMIT - 1).into_bytes();
    body.extend_from_slice("éé".as_bytes());
    let content = text_content(&body);
    assert!(content.truncated);
    assert_eq!(content.text.unwrap().len(), CONTENT_LIMIT - 1);
    let short = text_content("\u{feff}fine".as_bytes());
    assert_eq!(
        (short.text.as_deref(), short.truncated),
        (Some("fine"), false)
    );
}

#[test]
fn volatile_fields_do_not_change_the_hash() {
    let plain = file("f1", "image/png");
    let mut viewed = plain.clone();
    viewed["viewedByMeTime"] = json!("2026-11-25T12:00:00Z");
    viewed["thumbnailLink"] = json!("https://lh3.googleusercontent.com/x=s220");
    viewed["version"] = json!("812");
    let hash = |f: &Value| file_entity(f, Content::NONE).unwrap().content_hash();
    assert_eq!(hash(&plain), hash(&viewed));
    let mut renamed = plain.clone();
    renamed["name"] = json!("Renamed");
    assert_ne!(hash(&plain), hash(&renamed));
}

// --- failures mid-run ---

#[tokio::test]
async fn a_rate_limited_page_waits_and_the_resumed_stream_asks_again() {
    let fake = fake_drive().await;
    let f1 = add_image(&fake, "f1.png");
    let start = fake.workspace().start_page_token();
    fake.rate_limit_after("/files", 0, RateLimit::UserRateLimit, Some(1));
    let mut stream = open(&fake, None, None);
    let drives = page(&mut stream).await;
    assert!(drives.entities.is_empty());
    assert_eq!(
        stream.next_page().await.unwrap_err(),
        StreamError::RateLimited {
            wait: Duration::from_secs(1)
        }
    );
    let mut resumed = open(&fake, None, Some(drives.checkpoint));
    assert_eq!(ids(&page(&mut resumed).await), [file_key(&f1)]);
    assert!(resumed.next_page().await.unwrap().is_none());
    assert_eq!(resumed.cursor(), Some(json!({ "start_page_token": start })));
}

#[tokio::test]
async fn a_revoked_token_mid_run_is_a_rejection() {
    let fake = fake_drive().await;
    fake.revoke_token();
    let mut stream = open(&fake, None, None);
    assert!(matches!(
        stream.next_page().await,
        Err(StreamError::Rejected(m)) if !m.contains(TOKEN)
    ));
}

#[tokio::test]
async fn malformed_pages_fail_clearly() {
    let fake = fake_drive().await;
    add_image(&fake, "f1.png");
    fake.malform_after("/files", 0);
    fake.malform_after_with(
        "/files",
        0,
        json!({"kind": "drive#fileList", "files": {"not": "a list"}}),
    );
    for expected in ["not JSON", "not a page", "incompleteSearch"] {
        if expected == "incompleteSearch" {
            fake.workspace().incomplete_search = true;
        }
        let mut stream = open(&fake, None, at_files());
        let err = stream.next_page().await.unwrap_err();
        assert!(err.to_string().contains(expected), "{err}");
        assert!(!err.to_string().contains(TOKEN));
    }
    let unreadable =
        source_for(&fake).open_stream(request(None, Some(json!({"step": "sideways"}))));
    assert!(matches!(unreadable, Err(StreamError::Malformed(_))));
}

// --- incremental runs ---

#[tokio::test]
async fn an_incremental_run_reads_changes_until_the_new_start_token() {
    let fake = fake_drive().await;
    let (gone, trashed, team, old_team, start) = {
        let mut w = fake.workspace();
        let gone = w.add_binary_file("gone.png", "image/png", 1_024);
        let trashed = w.add_binary_file("t1.png", "image/png", 1_024);
        let team = w.add_drive("Team");
        let old_team = w.add_drive("Old team");
        (gone, trashed, team, old_team, w.start_page_token())
    };
    let f1 = {
        let mut w = fake.workspace();
        // Changes in pages of 3: the file ones, then the drive ones.
        w.max_page_size = 3;
        let f1 = w.add_binary_file("f1.png", "image/png", 1_024);
        w.delete(&gone);
        w.trash(&trashed);
        w.rename_drive(&team, "Renamed team");
        w.remove_drive(&old_team);
        f1
    };
    let mut stream = open(&fake, Some(json!({ "start_page_token": start })), None);
    assert!(stream.incremental());
    let first = page(&mut stream).await;
    assert_eq!(ids(&first), [file_key(&f1)]);
    let removed: Vec<&str> = first.removed.iter().map(EntityKey::as_str).collect();
    assert_eq!(
        removed,
        [
            format!("google_drive_file#{gone}"),
            format!("google_drive_file#{trashed}")
        ]
    );
    let step = &first.checkpoint["step"];
    assert_eq!(
        (&step["kind"], &step["last"]),
        (&json!("changes"), &Value::Null)
    );
    let second = page(&mut stream).await;
    assert_eq!(ids(&second), [drive_key(&team)]);
    assert_eq!(second.entities[0].title, "Renamed team");
    assert_eq!(
        second.removed[0].as_str(),
        format!("google_drive_drive#{old_team}")
    );
    assert!(stream.next_page().await.unwrap().is_none());
    let next_start = fake.workspace().start_page_token();
    assert_eq!(
        stream.cursor(),
        Some(json!({ "start_page_token": next_start }))
    );
    // The checkpoint after the first page names the page the stream asked next.
    let asked: Vec<Option<String>> = fake
        .queries_of("/drive/v3/changes")
        .into_iter()
        .map(|q| q.get("pageToken").cloned())
        .collect();
    assert_eq!(asked.len(), 2);
    assert_eq!(asked[0], Some(start));
    assert_eq!(asked[1].as_deref(), step["page_token"].as_str());
}

#[tokio::test]
async fn changes_that_never_end_with_a_start_token_are_malformed() {
    let fake = fake_drive().await;
    let start = fake.workspace().start_page_token();
    fake.malform_after_with(
        "/changes",
        0,
        json!({"kind": "drive#changeList", "changes": []}),
    );
    let mut stream = open(&fake, Some(json!({ "start_page_token": start })), None);
    assert!(matches!(
        stream.next_page().await,
        Err(StreamError::Malformed(_))
    ));
    // A cursor that is not ours asks for a full run.
    let full = open(&fake, Some(json!({"something": 1})), None);
    assert!(!full.incremental());
}

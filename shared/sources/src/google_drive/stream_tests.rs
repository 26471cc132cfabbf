//! The entity stream against a scripted Drive: full runs (drives, file pages, content), pages
//! handed out in slices and resumed, failures mid-run, and incremental runs over `changes`.

use super::api::DAILY_LIMIT_WAIT;
use super::entities::{
    file_entity, text_content, Content, CONTENT_LIMIT, GOOGLE_DOC, TEXT_FILE_MAX_BYTES,
};
use super::stream::CONTENT_FETCHES_PER_PAGE;
use super::tests::{error_body, google_error, oauth, ok, scripted, source_at, source_for, TOKEN};
use super::*;
use crate::testing::{page_time_limit, FakeUpstream, Reply, Seen, SHORT_BUDGET, SLOW_CALL};
use domain::entity::EntityKey;
use domain::stream::EntityPage;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn request(since: Option<Value>, resume: Option<Value>) -> StreamRequest {
    StreamRequest {
        auth: oauth(TOKEN),
        config: Map::new(),
        cursor: since,
        checkpoint: resume,
        page_budget: crate::testing::PAGE_BUDGET,
    }
}

/// A Drive on 127.0.0.1 whose closure sees each request's path and query parameters
/// ([`FakeUpstream`] tells the path only) and answers a JSON body with HTTP 200.
struct QueryFake {
    base_url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for QueryFake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Query = std::collections::HashMap<String, String>;

async fn query_fake(answer: impl Fn(&str, &Query) -> Value + Send + Sync + 'static) -> QueryFake {
    use http_body_util::Full;
    use hyper::body::{Bytes, Incoming};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let answer = Arc::new(answer);
    let task = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        while let Ok((stream, _)) = listener.accept().await {
            while connections.try_join_next().is_some() {}
            let answer = Arc::clone(&answer);
            connections.spawn(async move {
                let service = hyper::service::service_fn(move |asked: hyper::Request<Incoming>| {
                    let query = asked.uri().query().unwrap_or_default().as_bytes();
                    let query: Query = url::form_urlencoded::parse(query).into_owned().collect();
                    let body = answer(asked.uri().path(), &query).to_string();
                    let response = hyper::Response::new(Full::new(Bytes::from(body)));
                    async move { Ok::<_, std::convert::Infallible>(response) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    QueryFake { base_url, task }
}

fn open(fake: &FakeUpstream, since: Option<Value>, resume: Option<Value>) -> Box<dyn EntityStream> {
    source_for(fake)
        .open_stream(request(since, resume))
        .unwrap()
}

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

fn text_file(id: &str, size: u64) -> Value {
    let mut f = file(id, "text/plain");
    f["size"] = json!(size.to_string());
    f
}

/// Where a full run's files start, with start token `5`.
fn at_files() -> Option<Value> {
    Some(json!({"step": {"kind": "files", "page_token": null},
                "next_start": "5", "drives": []}))
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

// --- full runs: paging, content, cursor ---

#[tokio::test]
async fn a_full_run_lists_drives_then_every_file_page_and_keeps_the_start_token() {
    let fake = scripted(vec![
        (
            "/drive/v3/changes/startPageToken",
            ok(json!({"kind": "drive#startPageToken", "startPageToken": "41"})),
        ),
        (
            "/drive/v3/drives",
            ok(json!({"drives": [
                {"id": "0AD", "name": "Team", "createdTime": "2026-01-01T00:00:00Z"}
            ]})),
        ),
        (
            "/drive/v3/files",
            ok(
                json!({"nextPageToken": "p2", "incompleteSearch": false, "files": [
                    file("f1", "application/vnd.google-apps.folder"),
                    file("f2", "image/png"),
                ]}),
            ),
        ),
        (
            "/drive/v3/files",
            ok(json!({"incompleteSearch": false, "files": [file("doc1", GOOGLE_DOC)]})),
        ),
        (
            "/drive/v3/files/doc1/export",
            Reply::status(200).text("Quarterly plan\r\nShip it."),
        ),
        (
            "/drive/v3/files",
            ok(
                json!({"files": [{"id": "t1", "name": "Team file", "mimeType": "image/png",
                                 "driveId": "0AD"}]}),
            ),
        ),
    ])
    .await;
    let mut stream = open(&fake, None, None);
    let drives = page(&mut stream).await;
    assert_eq!(ids(&drives), ["google_drive_drive:0AD"]);
    let first = page(&mut stream).await;
    assert_eq!(
        ids(&first),
        ["google_drive_file:f1", "google_drive_file:f2"]
    );
    assert_eq!(first.entities[0].payload["is_folder"], true);
    assert_eq!(first.entities[1].payload["content"], Value::Null);
    let second = page(&mut stream).await;
    assert_eq!(ids(&second), ["google_drive_file:doc1"]);
    let doc = &second.entities[0];
    assert_eq!(doc.title, "File doc1");
    assert_eq!(doc.payload["content"], "Quarterly plan\r\nShip it.");
    assert_eq!(doc.payload["owners"][0]["email"], "ada@example.com");
    assert_eq!(
        doc.updated_at.unwrap().to_rfc3339(),
        "2026-03-01T10:00:00+00:00"
    );
    assert!(second.removed.is_empty());
    let team = page(&mut stream).await;
    assert_eq!(ids(&team), ["google_drive_file:t1"]);
    assert_eq!(team.entities[0].payload["drive_id"], "0AD");
    assert!(stream.next_page().await.unwrap().is_none());
    assert!(!stream.incremental());
    assert_eq!(stream.cursor(), Some(json!({"start_page_token": "41"})));
    // The user's own files, then the shared drive's (the e2e test checks the queries).
    assert_eq!(fake.seen().len(), 6);
}

#[tokio::test]
async fn a_listing_page_is_handed_out_in_slices_and_a_resumed_stream_continues() {
    let docs: Vec<Value> = (0..12)
        .map(|i| file(&format!("d{i:02}"), GOOGLE_DOC))
        .collect();
    let listing = ok(json!({ "files": docs }));
    let fake = FakeUpstream::start(move |seen: &Seen| {
        if seen.path == "/drive/v3/files" {
            listing.clone()
        } else if seen.path.ends_with("/export") {
            Reply::status(200).text("text of a doc")
        } else {
            Reply::status(418)
        }
    })
    .await;
    let mut stream = open(&fake, None, at_files());
    let first = page(&mut stream).await;
    assert_eq!(first.entities.len(), CONTENT_FETCHES_PER_PAGE);
    assert_eq!(
        fake.seen().len(),
        1 + CONTENT_FETCHES_PER_PAGE,
        "listed once"
    );
    let checkpoint = first.checkpoint.clone();
    assert_eq!(checkpoint["step"]["last"], "d09");

    // A new stream from the checkpoint lists the page again and skips what was handed out.
    let mut resumed = open(&fake, None, Some(checkpoint));
    let rest = page(&mut resumed).await;
    assert_eq!(
        ids(&rest),
        ["google_drive_file:d10", "google_drive_file:d11"]
    );
    assert!(resumed.next_page().await.unwrap().is_none());
    assert_eq!(resumed.cursor(), Some(json!({"start_page_token": "5"})));
}

/// A fake whose `files` listing (one page) and `changes` listing (one page, then the new
/// start token `99`) a test changes between calls; every doc exports some text.
async fn changing(files: Arc<Mutex<Vec<Value>>>) -> FakeUpstream {
    FakeUpstream::start(move |seen: &Seen| {
        let items = files.lock().unwrap().clone();
        if seen.path == "/drive/v3/files" {
            ok(json!({ "files": items }))
        } else if seen.path == "/drive/v3/changes" {
            let changes: Vec<Value> = items
                .iter()
                .map(|f| json!({"changeType": "file", "fileId": f["id"], "file": f}))
                .collect();
            ok(json!({"newStartPageToken": "99", "changes": changes}))
        } else if seen.path.ends_with("/export") {
            Reply::status(200).text("text of a doc")
        } else {
            Reply::status(418)
        }
    })
    .await
}

fn docs(n: usize) -> Arc<Mutex<Vec<Value>>> {
    let docs = (0..n)
        .map(|i| file(&format!("d{i:02}"), GOOGLE_DOC))
        .collect();
    Arc::new(Mutex::new(docs))
}

fn drop_doc(docs: &Arc<Mutex<Vec<Value>>>, id: &str) {
    docs.lock().unwrap().retain(|f| f["id"] != id);
}

/// Every id of the stream's pages until it ends.
async fn rest(stream: &mut Box<dyn EntityStream>) -> Vec<String> {
    let mut all = Vec::new();
    while let Some(page) = stream.next_page().await.unwrap() {
        all.extend(ids(&page));
    }
    all
}

#[tokio::test]
async fn a_resumed_listing_goes_on_after_the_last_file_handed_out_even_if_files_went() {
    let listed = docs(12);
    let fake = changing(Arc::clone(&listed)).await;
    let mut stream = open(&fake, None, at_files());
    let first = page(&mut stream).await;
    assert_eq!(first.entities.len(), CONTENT_FETCHES_PER_PAGE);
    // A file handed out already leaves the page: by count, the resumed stream would skip
    // d10, which it never handed out, and the run would delete it as absent.
    drop_doc(&listed, "d03");
    let mut resumed = open(&fake, None, Some(first.checkpoint.clone()));
    assert_eq!(
        rest(&mut resumed).await,
        ["google_drive_file:d10", "google_drive_file:d11"]
    );

    // The last file handed out itself left the page: the whole page comes again.
    drop_doc(&listed, "d09");
    let mut resumed = open(&fake, None, Some(first.checkpoint));
    let again = rest(&mut resumed).await;
    assert_eq!(again.len(), 10, "{again:?}");
    assert!(again.contains(&"google_drive_file:d00".to_owned()));
    assert!(again.contains(&"google_drive_file:d10".to_owned()));
    assert!(again.contains(&"google_drive_file:d11".to_owned()));
}

#[tokio::test]
async fn a_resumed_changes_listing_goes_on_after_the_last_change_handed_out() {
    let listed = docs(12);
    let fake = changing(Arc::clone(&listed)).await;
    let since = Some(json!({"start_page_token": "7"}));
    let mut stream = open(&fake, since.clone(), None);
    let first = page(&mut stream).await;
    assert_eq!(first.entities.len(), CONTENT_FETCHES_PER_PAGE);
    assert_eq!(first.checkpoint["step"]["last"], "file:d09");
    drop_doc(&listed, "d00");
    let mut resumed = open(&fake, since.clone(), Some(first.checkpoint.clone()));
    assert_eq!(
        rest(&mut resumed).await,
        ["google_drive_file:d10", "google_drive_file:d11"]
    );
    assert_eq!(resumed.cursor(), Some(json!({"start_page_token": "99"})));
    drop_doc(&listed, "d09");
    let mut resumed = open(&fake, since, Some(first.checkpoint));
    assert_eq!(rest(&mut resumed).await.len(), 10, "the page again");
}

#[tokio::test]
async fn a_page_starts_no_download_once_its_time_budget_is_spent() {
    let fake = changing(docs(3)).await;
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
    assert_eq!(
        per_page,
        [
            ["google_drive_file:d00"],
            ["google_drive_file:d01"],
            ["google_drive_file:d02"]
        ]
    );
    assert_eq!(pages[0].checkpoint["step"]["last"], "d00");
    assert_eq!(fake.seen().len(), 4, "listed once, three downloads");
    // The budget a stream is opened with in production: the worker's.
    assert_eq!(
        domain::usecases::sync::SyncSettings::default().page_budget,
        Duration::from_secs(20)
    );
}

#[tokio::test]
async fn a_page_of_a_slow_drive_returns_within_its_budget_and_one_call() {
    let fake = changing(docs(12)).await;
    fake.answer_after(SLOW_CALL);
    let short = StreamRequest {
        page_budget: SHORT_BUDGET,
        ..request(None, at_files())
    };
    let mut stream = source_for(&fake).open_stream(short).unwrap();
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
        pages.push(ids(&page));
    }
    let mut all = pages.concat();
    all.dedup();
    assert_eq!(all.len(), 12, "{all:?}");
    assert!(pages.len() >= 4, "{pages:?}");
}

#[tokio::test]
async fn a_shared_drive_gone_mid_run_is_skipped_and_the_next_one_listed() {
    let fake = scripted(vec![
        (
            "/drive/v3/files",
            ok(json!({"files": [file("mine", "image/png")]})),
        ),
        (
            "/drive/v3/files",
            google_error(404, "notFound", "NOT_FOUND"),
        ),
        (
            "/drive/v3/files",
            ok(json!({"files": [file("team", "image/png")]})),
        ),
    ])
    .await;
    let resume = json!({"step": {"kind": "files", "page_token": null},
                        "next_start": "5", "drives": ["0AA", "0BB"]});
    let mut stream = open(&fake, None, Some(resume));
    let all = rest(&mut stream).await;
    assert_eq!(all, ["google_drive_file:mine", "google_drive_file:team"]);
    assert_eq!(stream.cursor(), Some(json!({"start_page_token": "5"})));

    // A checkpoint from before drives were listed one by one starts the run over.
    let old = json!({"step": {"kind": "files", "page_token": "p2", "offset": 10},
                     "next_start": "5"});
    let fake = scripted(vec![(
        "/drive/v3/changes/startPageToken",
        google_error(401, "authError", "UNAUTHENTICATED"),
    )])
    .await;
    let mut restarted = open(&fake, None, Some(old));
    assert!(restarted.next_page().await.is_err());
    assert_eq!(fake.seen()[0].path, "/drive/v3/changes/startPageToken");
}

#[tokio::test]
async fn an_old_checkpoint_still_listing_drives_starts_over() {
    // Checkpoints of versions that listed every page of drives before any file: without
    // the drives named so far (the `allDrives` version), or with them; resumed, the drives
    // of the pages before would never have their files listed, and the run would delete
    // them.
    for old in [
        json!({"step": {"kind": "drives", "page_token": "d2"}, "next_start": "5"}),
        json!({"step": {"kind": "drives", "page_token": "d2"}, "next_start": "5",
               "drives": ["0AA"]}),
    ] {
        let fake = scripted(vec![
            (
                "/drive/v3/changes/startPageToken",
                ok(json!({"startPageToken": "6"})),
            ),
            (
                "/drive/v3/drives",
                ok(json!({"drives": [{"id": "0AA", "name": "Team"}]})),
            ),
            (
                "/drive/v3/files",
                ok(json!({"files": [file("mine", "image/png")]})),
            ),
            (
                "/drive/v3/files",
                ok(json!({"files": [file("team", "image/png")]})),
            ),
        ])
        .await;
        let mut restarted = open(&fake, None, Some(old.clone()));
        assert_eq!(
            rest(&mut restarted).await,
            [
                "google_drive_drive:0AA",
                "google_drive_file:mine",
                "google_drive_file:team"
            ],
            "{old}"
        );
        assert_eq!(restarted.cursor(), Some(json!({"start_page_token": "6"})));
        assert_eq!(fake.seen()[0].path, "/drive/v3/changes/startPageToken");
    }
}

#[tokio::test]
async fn the_user_corpus_lists_shared_drive_files_shared_directly_with_the_user() {
    // As Drive answers: a file of someone else's shared drive (the user is not a member,
    // so `drives.list` does not name it) shared directly with the user is in the user
    // corpus only with includeItemsFromAllDrives and supportsAllDrives. `changes` reports
    // it: a full run that did not list it would delete it every time.
    let fake = query_fake(|path, query| {
        let flag = |name: &str| query.get(name).map(String::as_str) == Some("true");
        match path {
            "/drive/v3/changes/startPageToken" => json!({"startPageToken": "5"}),
            "/drive/v3/drives" => json!({"drives": []}),
            "/drive/v3/files" if query.get("corpora").map(String::as_str) == Some("user") => {
                let mut files = vec![file("mine", "image/png")];
                if flag("includeItemsFromAllDrives") && flag("supportsAllDrives") {
                    let mut theirs = file("theirs", "image/png");
                    theirs["driveId"] = json!("0ZZnotAMember");
                    files.push(theirs);
                }
                json!({ "files": files })
            }
            _ => json!({"unexpected": path}),
        }
    })
    .await;
    let mut stream = source_at(&fake.base_url)
        .open_stream(request(None, None))
        .unwrap();
    assert_eq!(
        rest(&mut stream).await,
        ["google_drive_file:mine", "google_drive_file:theirs"]
    );
    assert_eq!(stream.cursor(), Some(json!({"start_page_token": "5"})));
}

#[tokio::test]
async fn thousands_of_shared_drives_keep_the_checkpoint_small_across_resumes() {
    // 5,000 shared drives (about 18k would overflow a 400 KB job item if the checkpoint
    // named them all), listed 40 a page, one file each; the stream is opened again from
    // the checkpoint of every page, as if each page were the last of an invocation.
    const DRIVES: usize = 5_000;
    const PAGE: usize = 40;
    const LIMIT: usize = 100 * 1024;
    let drive_id = |i: usize| format!("0A{i:017}");
    let listed = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = Arc::clone(&listed);
    let fake = query_fake(move |path, query| {
        let q = |name: &str| query.get(name).map(String::as_str);
        match path {
            "/drive/v3/changes/startPageToken" => json!({"startPageToken": "77"}),
            "/drive/v3/drives" => {
                let start: usize = q("pageToken").map_or(0, |t| t.parse().unwrap());
                let asked: usize = q("pageSize").unwrap().parse().unwrap();
                let end = (start + asked.min(PAGE)).min(DRIVES);
                let drives: Vec<Value> = (start..end)
                    .map(|i| json!({"id": drive_id(i), "name": format!("Team {i}")}))
                    .collect();
                let mut body = json!({ "drives": drives });
                if end < DRIVES {
                    body["nextPageToken"] = json!(end.to_string());
                }
                body
            }
            "/drive/v3/files" => match q("driveId") {
                Some(id) => {
                    log.lock().unwrap().push(id.to_owned());
                    let mut f = file(&format!("f{id}"), "image/png");
                    f["driveId"] = json!(id);
                    json!({ "files": [f] })
                }
                None => json!({"files": [file("mine", "image/png")]}),
            },
            _ => json!({"unexpected": path}),
        }
    })
    .await;
    let source = source_at(&fake.base_url);
    let mut resume = None;
    let mut handed = Vec::new();
    let mut largest = 0;
    loop {
        let mut stream = source.open_stream(request(None, resume.take())).unwrap();
        let Some(page) = stream.next_page().await.unwrap() else {
            assert_eq!(stream.cursor(), Some(json!({"start_page_token": "77"})));
            break;
        };
        let size = serde_json::to_vec(&page.checkpoint).unwrap().len();
        assert!(size < LIMIT, "a checkpoint of {size} bytes");
        largest = largest.max(size);
        let drives = page.checkpoint["drives"].as_array().map_or(0, Vec::len);
        assert!(drives <= PAGE, "{drives} drives in the checkpoint");
        handed.extend(ids(&page));
        resume = Some(page.checkpoint);
    }
    assert!(
        largest < 4 * 1024,
        "the largest checkpoint has {largest} bytes"
    );

    // Every drive's files listed once, in order: none skipped, none repeated.
    let every: Vec<String> = (0..DRIVES).map(drive_id).collect();
    assert_eq!(*listed.lock().unwrap(), every);
    let mut expected = vec!["google_drive_file:mine".to_owned()];
    expected.extend(every.iter().map(|id| format!("google_drive_drive:{id}")));
    expected.extend(every.iter().map(|id| format!("google_drive_file:f{id}")));
    let mut got = handed.clone();
    got.sort();
    expected.sort();
    assert_eq!(got.len(), expected.len(), "nothing handed out twice");
    assert_eq!(got, expected);
    // A page of drives, then their files, then the next page.
    let second_page = handed
        .iter()
        .position(|id| *id == format!("google_drive_drive:{}", drive_id(PAGE)))
        .unwrap();
    assert_eq!(
        handed[second_page - 1],
        format!("google_drive_file:f{}", drive_id(PAGE - 1))
    );
}

#[tokio::test]
async fn a_file_the_user_cannot_read_is_synced_without_content_and_quotas_wait() {
    let fake = FakeUpstream::start(|seen: &Seen| match seen.path.as_str() {
        "/drive/v3/files" => ok(json!({"files": [file("locked", GOOGLE_DOC)]})),
        _ => google_error(403, "insufficientFilePermissions", "PERMISSION_DENIED"),
    })
    .await;
    let mut stream = open(&fake, None, at_files());
    let got = page(&mut stream).await;
    assert_eq!(ids(&got), ["google_drive_file:locked"]);
    assert_eq!(got.entities[0].payload["content"], Value::Null);

    let fake = FakeUpstream::start(|seen: &Seen| match seen.path.as_str() {
        "/drive/v3/files" => ok(json!({"files": [file("doc", GOOGLE_DOC)]})),
        _ => google_error(403, "dailyLimitExceeded", "PERMISSION_DENIED"),
    })
    .await;
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
    let fake = FakeUpstream::start(|seen: &Seen| match seen.path.as_str() {
        "/drive/v3/files" => Reply::status(200).json(json!({"files": [
            text_file("small", 12),
            text_file("big", TEXT_FILE_MAX_BYTES + 1),
            file("gone", GOOGLE_DOC),
        ]})),
        "/drive/v3/files/small" => Reply::status(200).text("hello, world"),
        "/drive/v3/files/gone/export" => Reply::status(404).json(error_body(404, "notFound")),
        _ => Reply::status(418),
    })
    .await;
    let mut stream = open(&fake, None, at_files());
    let got = page(&mut stream).await;
    let content: Vec<&Value> = got.entities.iter().map(|e| &e.payload["content"]).collect();
    assert_eq!(
        content,
        [&json!("hello, world"), &Value::Null, &Value::Null]
    );
    assert_eq!(got.entities[0].payload["size"], 12);
    let paths: Vec<String> = fake.seen().iter().map(|s| s.path.clone()).collect();
    assert!(
        !paths.contains(&"/drive/v3/files/big".to_owned()),
        "{paths:?}"
    );
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
    let fake = scripted(vec![
        (
            "/drive/v3/changes/startPageToken",
            ok(json!({"startPageToken": "9"})),
        ),
        ("/drive/v3/drives", ok(json!({"drives": []}))),
        (
            "/drive/v3/files",
            google_error(403, "userRateLimitExceeded", "PERMISSION_DENIED")
                .header("retry-after", "1"),
        ),
        (
            "/drive/v3/files",
            ok(json!({"files": [file("f1", "image/png")]})),
        ),
    ])
    .await;
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
    assert_eq!(ids(&page(&mut resumed).await), ["google_drive_file:f1"]);
    assert!(resumed.next_page().await.unwrap().is_none());
    assert_eq!(resumed.cursor(), Some(json!({"start_page_token": "9"})));
}

#[tokio::test]
async fn a_revoked_token_mid_run_is_a_rejection() {
    let fake = scripted(vec![(
        "/drive/v3/changes/startPageToken",
        google_error(401, "authError", "UNAUTHENTICATED"),
    )])
    .await;
    let mut stream = open(&fake, None, None);
    assert!(matches!(
        stream.next_page().await,
        Err(StreamError::Rejected(m)) if !m.contains(TOKEN)
    ));
}

#[tokio::test]
async fn malformed_pages_fail_clearly() {
    let fake = scripted(vec![
        (
            "/drive/v3/files",
            Reply::status(200).text("<html>oops</html>"),
        ),
        ("/drive/v3/files", ok(json!({"files": {"not": "a list"}}))),
        (
            "/drive/v3/files",
            ok(json!({"files": [], "incompleteSearch": true})),
        ),
    ])
    .await;
    for expected in ["not JSON", "not a page", "incompleteSearch"] {
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
    let mut trashed = file("t1", "image/png");
    trashed["trashed"] = json!(true);
    let fake = scripted(vec![
        (
            "/drive/v3/changes",
            ok(
                json!({"kind": "drive#changeList", "nextPageToken": "8", "changes": [
                    {"changeType": "file", "fileId": "f1", "removed": false,
                     "file": file("f1", "image/png")},
                    {"changeType": "file", "fileId": "gone", "removed": true},
                    {"changeType": "file", "fileId": "t1", "removed": false, "file": trashed},
                ]}),
            ),
        ),
        (
            "/drive/v3/changes",
            ok(
                json!({"kind": "drive#changeList", "newStartPageToken": "12", "changes": [
                    {"changeType": "drive", "driveId": "0AD", "removed": false,
                     "drive": {"id": "0AD", "name": "Renamed team"}},
                    {"changeType": "drive", "driveId": "0XX", "removed": true},
                ]}),
            ),
        ),
    ])
    .await;
    let mut stream = open(&fake, Some(json!({"start_page_token": "7"})), None);
    assert!(stream.incremental());
    let first = page(&mut stream).await;
    assert_eq!(ids(&first), ["google_drive_file:f1"]);
    let removed: Vec<&str> = first.removed.iter().map(EntityKey::as_str).collect();
    assert_eq!(removed, ["google_drive_file#gone", "google_drive_file#t1"]);
    assert_eq!(
        first.checkpoint["step"],
        json!({"kind": "changes", "page_token": "8", "last": null})
    );
    let second = page(&mut stream).await;
    assert_eq!(ids(&second), ["google_drive_drive:0AD"]);
    assert_eq!(second.entities[0].title, "Renamed team");
    assert_eq!(second.removed[0].as_str(), "google_drive_drive#0XX");
    assert!(stream.next_page().await.unwrap().is_none());
    assert_eq!(stream.cursor(), Some(json!({"start_page_token": "12"})));
}

#[tokio::test]
async fn changes_that_never_end_with_a_start_token_are_malformed() {
    let fake = scripted(vec![("/drive/v3/changes", ok(json!({"changes": []})))]).await;
    let mut stream = open(&fake, Some(json!({"start_page_token": "7"})), None);
    assert!(matches!(
        stream.next_page().await,
        Err(StreamError::Malformed(_))
    ));
    // A cursor that is not ours asks for a full run.
    let full = open(&fake, Some(json!({"something": 1})), None);
    assert!(!full.incremental());
}

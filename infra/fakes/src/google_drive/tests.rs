//! Unit tests of the fake Google Drive: its paging, error answers and switches.

use super::*;

const TOKEN: &str = "ya29.unit-test-token";

async fn get(fake: &FakeGoogleDrive, path_and_query: &str, token: &str) -> (u16, Value) {
    let response = http_get(&format!("{}{path_and_query}", fake.base_url), token).await;
    let status = response.0;
    (
        status,
        serde_json::from_str(&response.1).unwrap_or(Value::Null),
    )
}

/// A bare HTTP/1.1 GET on a blocking socket: the fakes crate has no HTTP client, and the
/// fake's bodies have a length (no chunking to undo).
async fn http_get(url: &str, token: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap().to_owned();
    let token = token.to_owned();
    tokio::task::spawn_blocking(move || {
        let (host, path) = rest.split_at(rest.find('/').unwrap());
        let mut stream = std::net::TcpStream::connect(host).unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
             Connection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let status = text[9..12].parse().unwrap();
        let body = text.split_once("\r\n\r\n").unwrap().1.to_owned();
        (status, body)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn files_page_through_every_live_file_and_trashed_ones_leave_the_listing() {
    let fake = FakeGoogleDrive::start(TOKEN).await;
    fake.set_workspace(Workspace::demo());
    fake.workspace().max_page_size = 2;
    let trashed = fake.workspace().add_text_file("old.txt", "old");
    fake.workspace().trash(&trashed);
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let (status, body) = get(
            &fake,
            &format!(
                "/drive/v3/files?q=trashed%20%3D%20false&corpora=allDrives&includeItemsFromAllDrives=true&supportsAllDrives=true{token}"
            ),
            TOKEN,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        for f in body["files"].as_array().unwrap() {
            seen.push(f["id"].as_str().unwrap().to_owned());
        }
        match body["nextPageToken"].as_str() {
            Some(next) => token = format!("&pageToken={next}"),
            None => break,
        }
    }
    assert_eq!(seen, fake.workspace().live_file_ids());
    assert!(!seen.contains(&trashed));
    assert_eq!(pages, 3, "6 live files in pages of 2");
    let (status, _) = get(&fake, "/drive/v3/files?pageToken=bogus", TOKEN).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn the_user_corpus_and_each_shared_drive_are_listed_apart() {
    let fake = FakeGoogleDrive::start(TOKEN).await;
    fake.set_workspace(Workspace::demo());
    let drive = fake.workspace().drive_ids()[0].clone();
    let names = |body: &Value| -> Vec<String> {
        body["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, mine) = get(&fake, "/drive/v3/files?corpora=user", TOKEN).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(names(&mine).len(), 5);
    assert!(!names(&mine).contains(&"Design doc".to_owned()));
    let listing = format!(
        "/drive/v3/files?corpora=drive&driveId={drive}&includeItemsFromAllDrives=true&supportsAllDrives=true"
    );
    let (status, shared) = get(&fake, &listing, TOKEN).await;
    assert_eq!(status, 200, "{shared}");
    assert_eq!(names(&shared), ["Design doc"]);
    let (status, _) = get(
        &fake,
        "/drive/v3/files?corpora=drive&includeItemsFromAllDrives=true&supportsAllDrives=true",
        TOKEN,
    )
    .await;
    assert_eq!(status, 400, "corpora=drive needs a driveId");
    let (status, _) = get(&fake, "/drive/v3/files?corpora=drive&driveId=nope&includeItemsFromAllDrives=true&supportsAllDrives=true", TOKEN).await;
    assert_eq!(status, 404);
    let (status, _) = get(
        &fake,
        &format!("/drive/v3/files?corpora=user&driveId={drive}"),
        TOKEN,
    )
    .await;
    assert_eq!(status, 400, "a driveId only with corpora=drive");
}

#[tokio::test]
async fn a_shared_drive_file_shared_with_the_user_is_in_the_user_corpus_with_all_drives() {
    let fake = FakeGoogleDrive::start(TOKEN).await;
    fake.set_workspace(Workspace::demo());
    let theirs = fake
        .workspace()
        .add_doc_shared_from_another_drive("Their plan", "Shared with Ada only.");
    let drive = fake.workspace().file(&theirs).drive_id.clone().unwrap();
    assert!(
        !fake.workspace().drive_ids().contains(&drive),
        "not a member"
    );
    let ids = |body: &Value| -> Vec<String> {
        body["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, plain) = get(&fake, "/drive/v3/files?corpora=user", TOKEN).await;
    assert_eq!(status, 200, "{plain}");
    assert_eq!(ids(&plain).len(), 5);
    assert!(!ids(&plain).contains(&theirs));
    let (status, all) = get(
        &fake,
        "/drive/v3/files?corpora=user&includeItemsFromAllDrives=true&supportsAllDrives=true",
        TOKEN,
    )
    .await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(ids(&all).len(), 6);
    assert!(ids(&all).contains(&theirs));
    let listed = all["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == theirs.as_str())
        .unwrap();
    assert_eq!(listed["driveId"], drive.as_str());
    // Its drive is not listed, nor can its files be listed as a drive's.
    let (_, drives) = get(&fake, "/drive/v3/drives", TOKEN).await;
    assert_eq!(drives["drives"].as_array().unwrap().len(), 1);
    let listing = format!(
        "/drive/v3/files?corpora=drive&driveId={drive}&includeItemsFromAllDrives=true&supportsAllDrives=true"
    );
    assert_eq!(get(&fake, &listing, TOKEN).await.0, 404);
    // Changes report it like any file.
    let (_, changes) = get(
        &fake,
        "/drive/v3/changes?pageToken=1000&includeItemsFromAllDrives=true",
        TOKEN,
    )
    .await;
    assert!(changes["changes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["fileId"] == theirs.as_str()));
}

#[tokio::test]
async fn changes_report_the_latest_change_per_item_and_end_with_a_new_start_token() {
    let fake = FakeGoogleDrive::start(TOKEN).await;
    let doc = fake.workspace().add_doc("Plan", "v1");
    let (_, start) = get(&fake, "/drive/v3/changes/startPageToken", TOKEN).await;
    let start = start["startPageToken"].as_str().unwrap().to_owned();
    let added = {
        let mut w = fake.workspace();
        w.set_text(&doc, "v2");
        w.set_text(&doc, "v3");
        let added = w.add_text_file("new.txt", "hi");
        w.delete(&added);
        added
    };
    let (status, body) = get(
        &fake,
        &format!("/drive/v3/changes?pageToken={start}&includeItemsFromAllDrives=true"),
        TOKEN,
    )
    .await;
    assert_eq!(status, 200);
    let changes = body["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2, "{body}");
    assert_eq!(changes[0]["fileId"], doc.as_str());
    assert_eq!(changes[0]["file"]["version"], "3");
    assert_eq!(changes[1]["fileId"], added.as_str());
    assert_eq!(changes[1]["removed"], true);
    let next = body["newStartPageToken"].as_str().unwrap();
    let (_, empty) = get(&fake, &format!("/drive/v3/changes?pageToken={next}"), TOKEN).await;
    assert_eq!(empty["changes"], json!([]));
    assert_eq!(empty["newStartPageToken"], next);
}

#[tokio::test]
async fn content_exports_and_switches_answer_as_drive_does() {
    let fake = FakeGoogleDrive::start(TOKEN).await;
    let doc = fake.workspace().add_doc("Plan", "the plan");
    let (status, _) = get(&fake, &format!("/drive/v3/files/{doc}?alt=media"), TOKEN).await;
    assert_eq!(status, 403, "a Google Doc is exported, not downloaded");
    let (status, body) = get(
        &fake,
        &format!("/drive/v3/files/{doc}/export?mimeType=text/plain"),
        TOKEN,
    )
    .await;
    assert_eq!((status, body), (200, Value::Null), "plain text, not JSON");

    let (status, body) = get(&fake, "/drive/v3/about?fields=user", "wrong").await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");

    fake.rate_limit_after("/files", 1, RateLimit::UserRateLimit, Some(1));
    assert_eq!(get(&fake, "/drive/v3/files", TOKEN).await.0, 200);
    let (status, body) = get(&fake, "/drive/v3/files", TOKEN).await;
    assert_eq!(status, 403);
    assert_eq!(
        body["error"]["errors"][0]["reason"],
        "userRateLimitExceeded"
    );
    assert_eq!(get(&fake, "/drive/v3/files", TOKEN).await.0, 200, "once");

    fake.malform_after("/changes", 0);
    let (status, body) = get(&fake, "/drive/v3/changes?pageToken=1000", TOKEN).await;
    assert_eq!((status, body), (200, Value::Null));

    fake.revoke_token();
    assert_eq!(get(&fake, "/drive/v3/about", TOKEN).await.0, 401);
    assert!(fake.requests().iter().all(|line| !line.contains(TOKEN)));
}

#[tokio::test]
async fn refusals_odd_bodies_incomplete_searches_and_slow_answers_come_when_asked() {
    let fake = FakeGoogleDrive::start(TOKEN).await;
    let doc = fake.workspace().add_doc("Plan", "the plan");
    let start = fake.workspace().start_page_token();
    fake.workspace().add_doc("Later", "after the token");
    assert_ne!(fake.workspace().start_page_token(), start);

    let export = format!("/drive/v3/files/{doc}/export?mimeType=text/plain");
    fake.refuse_after("/export", 1, 403, "insufficientFilePermissions");
    assert_eq!(get(&fake, &export, TOKEN).await.0, 200);
    let (status, body) = get(&fake, &export, TOKEN).await;
    assert_eq!(status, 403);
    assert_eq!(
        body["error"]["errors"][0]["reason"],
        "insufficientFilePermissions"
    );
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
    assert_eq!(get(&fake, &export, TOKEN).await.0, 200, "once");

    fake.malform_after_with("/files", 0, json!({"files": {"not": "a list"}}));
    let (status, body) = get(&fake, "/drive/v3/files", TOKEN).await;
    assert_eq!((status, body), (200, json!({"files": {"not": "a list"}})));
    let (_, body) = get(&fake, "/drive/v3/files", TOKEN).await;
    assert_eq!(body["incompleteSearch"], false, "complete by default");
    fake.workspace().incomplete_search = true;
    let (_, body) = get(&fake, "/drive/v3/files", TOKEN).await;
    assert_eq!(body["incompleteSearch"], true);

    let changes = format!("/drive/v3/changes?pageToken={start}&pageSize=1");
    get(&fake, &changes, TOKEN).await;
    let asked = fake.queries_of("/drive/v3/changes");
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0]["pageToken"], start);
    assert_eq!(asked[0]["pageSize"], "1");

    fake.answer_after(std::time::Duration::from_millis(100));
    let began = std::time::Instant::now();
    get(&fake, "/drive/v3/about", TOKEN).await;
    assert!(began.elapsed() >= std::time::Duration::from_millis(100));
}

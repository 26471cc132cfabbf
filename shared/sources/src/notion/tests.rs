//! The catalog entry, the credential check, what an answer means, and payloads; the Notion
//! JSON the tests build, shared with [`super::stream_tests`].

use super::api::{classify_list, DEFAULT_RATE_LIMIT_WAIT};
use super::entities::{block_line, is_notion_id, page_entity, Content, Kind};
use super::*;
use crate::testing::{direct_credential, header_map, oauth};
use crate::upstream::{http_client, Answer};
use domain::catalog::validate_fields;
use fakes::notion::FakeNotion;
use serde_json::json;
use std::time::Duration;

pub(super) const TOKEN: &str = "ntn_test0secret0integration0token";

pub(super) fn direct(token: &str) -> AuthenticationRequest {
    direct_credential("access_token", token)
}

// --- Notion's JSON as the unit tests build it ---

pub(super) fn id(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

/// Minute `m` of the test day, as Notion writes times.
pub(super) fn at(minute: u32) -> String {
    format!("2026-03-01T10:{minute:02}:00.000Z")
}

pub(super) fn text(t: &str) -> Value {
    json!([{"type": "text", "text": {"content": t, "link": null}, "plain_text": t, "href": null}])
}

pub(super) fn page(n: u32, title: &str, minute: u32) -> Value {
    json!({
        "object": "page", "id": id(n),
        "created_time": at(0), "last_edited_time": at(minute),
        "created_by": {"object": "user", "id": id(900)},
        "last_edited_by": {"object": "user", "id": id(901)},
        "parent": {"type": "workspace", "workspace": true},
        "archived": false, "in_trash": false,
        "properties": {"title": {"id": "title", "type": "title", "title": text(title)}},
        "url": format!("https://www.notion.so/{}", id(n).replace('-', "")),
    })
}

pub(super) fn row(n: u32, db: u32, title: &str, minute: u32) -> Value {
    let mut row = page(n, "", minute);
    row["parent"] = json!({"type": "database_id", "database_id": id(db)});
    row["properties"] = json!({
        "Name": {"id": "title", "type": "title", "title": text(title)},
        "Status": {"id": "s", "type": "select", "select": {"id": "o1", "name": "Done", "color": "green"}},
        "Edited": {"id": "e", "type": "last_edited_time", "last_edited_time": at(minute)},
    });
    row
}

pub(super) fn block(n: u32, kind: &str, t: &str, has_children: bool) -> Value {
    json!({
        "object": "block", "id": id(n), "type": kind, "has_children": has_children,
        "created_time": at(0), "last_edited_time": at(0), "archived": false,
        kind: {"rich_text": text(t), "color": "default"},
    })
}

// --- the catalog entry ---

#[test]
fn the_catalog_entry_reads_as_documented() {
    let spec = spec();
    assert_eq!((spec.short_name, spec.name), ("notion", "Notion"));
    assert_eq!(
        spec.auth_methods,
        [
            AuthMethod::Direct,
            AuthMethod::OauthToken,
            AuthMethod::OauthBrowser,
            AuthMethod::OauthByoc,
            AuthMethod::AuthProvider
        ]
    );
    let field = &spec.auth_fields[0];
    assert_eq!(spec.auth_fields.len(), 1);
    assert!(field.name == "access_token" && field.required && field.is_secret);
    assert_eq!(
        spec.entity_types,
        ["notion_page", "notion_database", "notion_database_row"]
    );
    assert!(spec.supports_incremental && !spec.federated_search);
    let oauth = spec.oauth.unwrap();
    assert_eq!(
        oauth.authorize_url,
        "https://api.notion.com/v1/oauth/authorize"
    );
    assert_eq!(oauth.token_url, "https://api.notion.com/v1/oauth/token");
    assert!(oauth.scopes.is_empty() && !oauth.pkce);
    assert_eq!(oauth.client_auth, ClientAuth::Basic);
    assert_eq!(oauth.access_token_pointer, "/access_token");
    assert_eq!(oauth.refresh_token_pointer, Some("/refresh_token"));
    let creds = json!({"access_token": "ntn_x"});
    assert!(validate_fields(&spec.auth_fields, creds.as_object().unwrap(), "a").is_empty());
    assert_eq!(
        validate_fields(&spec.auth_fields, &Map::new(), "credentials")[0].field,
        "credentials.access_token"
    );
}

// --- the credential check ---

fn source_for(fake: &FakeNotion) -> NotionSource {
    NotionSource::new(
        http_client().unwrap(),
        BaseUrl::parse(&fake.base_url).unwrap(),
    )
}

#[tokio::test]
async fn a_check_asks_users_me_with_the_token_and_the_pinned_version() {
    // The fake refuses a request without `Bearer <its token>` (401) or without the
    // `Notion-Version` it serves (400), as Notion does.
    assert_eq!(NOTION_VERSION, fakes::notion::NOTION_VERSION);
    let fake = FakeNotion::start(TOKEN).await;
    let source = source_for(&fake);
    for auth in [direct(TOKEN), oauth(TOKEN)] {
        assert_eq!(source.check_credentials(&auth, &Map::new()).await, Ok(()));
    }
    assert_eq!(fake.requests(), ["GET /v1/users/me", "GET /v1/users/me"]);
    let wrong = source
        .check_credentials(&direct("ntn_another0token"), &Map::new())
        .await;
    assert!(matches!(wrong, Err(CheckError::Rejected(_))), "{wrong:?}");
}

#[tokio::test]
async fn a_refused_token_is_rejected_without_repeating_it() {
    let fake = FakeNotion::start(TOKEN).await;
    fake.revoke_token();
    let source = source_for(&fake);
    let err = source
        .check_credentials(&direct(TOKEN), &Map::new())
        .await
        .unwrap_err();
    assert!(matches!(&err, CheckError::Rejected(_)), "{err:?}");
    assert!(!err.to_string().contains(TOKEN), "{err}");
    let other = AuthenticationRequest::OauthBrowser;
    assert!(matches!(
        source.check_credentials(&other, &Map::new()).await,
        Err(CheckError::Rejected(_))
    ));
    assert_eq!(
        fake.requests().len(),
        1,
        "an unsupported method asks nothing"
    );
}

#[test]
fn check_answers_are_classified() {
    let now = Utc::now();
    let none = HeaderMap::new();
    let body = |code: &str| {
        json!({"object": "error", "code": code})
            .to_string()
            .into_bytes()
    };
    let check = |status: u16, headers: &HeaderMap, body: &[u8]| {
        classify_check(StatusCode::from_u16(status).unwrap(), headers, body, now)
    };
    assert_eq!(check(200, &none, br#"{"object":"user","id":"x"}"#), Ok(()));
    assert!(matches!(
        check(200, &none, b"<html>"),
        Err(CheckError::Unavailable(_))
    ));
    assert!(matches!(
        check(401, &none, &body("unauthorized")),
        Err(CheckError::Rejected(_))
    ));
    let quoting = json!({"object": "error", "status": 401, "code": "unauthorized",
        "message": format!("API token {TOKEN} is invalid.")});
    let refused = check(401, &none, quoting.to_string().as_bytes()).unwrap_err();
    assert!(!refused.to_string().contains(TOKEN), "{refused}");
    assert!(matches!(
        check(403, &none, &body("restricted_resource")),
        Err(CheckError::Rejected(_))
    ));
    assert_eq!(
        check(
            429,
            &header_map(&[("retry-after", "3")]),
            &body("rate_limited")
        ),
        Err(CheckError::RateLimited {
            retry_after: Some(Duration::from_secs(3))
        })
    );
    assert_eq!(
        check(429, &none, &body("rate_limited")),
        Err(CheckError::RateLimited {
            retry_after: Some(DEFAULT_RATE_LIMIT_WAIT)
        })
    );
    assert_eq!(
        check(503, &none, &body("service_unavailable")),
        Err(CheckError::Unavailable(
            "Notion is unavailable (HTTP 503 service_unavailable)".into()
        ))
    );
    assert!(matches!(
        check(400, &none, &body("missing_version")),
        Err(CheckError::Unavailable(_))
    ));
}

// --- stream answers ---

fn reply(status: u16, headers: &[(&'static str, &str)], body: &str) -> Answer {
    Answer {
        status: StatusCode::from_u16(status).unwrap(),
        headers: header_map(headers),
        body: body.as_bytes().to_vec(),
    }
}

#[test]
fn list_answers_are_classified() {
    let now = Utc::now();
    let list = |a: Answer| classify_list(&a, "the search", now);
    let page = list(reply(
        200,
        &[],
        r#"{"object":"list","results":[{"id":"a"}],"has_more":true,"next_cursor":"n1"}"#,
    ))
    .unwrap()
    .unwrap();
    assert_eq!(
        (page.results.len(), page.next_cursor.as_deref()),
        (1, Some("n1"))
    );
    let last = list(reply(
        200,
        &[],
        r#"{"object":"list","results":[],"has_more":false,"next_cursor":null}"#,
    ))
    .unwrap()
    .unwrap();
    assert_eq!(last.next_cursor, None);
    assert!(list(reply(
        404,
        &[],
        r#"{"object":"error","status":404,"code":"object_not_found"}"#
    ))
    .unwrap()
    .is_none());

    let error = |status, headers: &[(&'static str, &str)], code: &str| {
        let body = json!({"object": "error", "status": status, "code": code,
            "message": format!("details naming {TOKEN}")});
        list(reply(status, headers, &body.to_string())).unwrap_err()
    };
    assert!(matches!(
        error(401, &[], "unauthorized"),
        StreamError::Rejected(_)
    ));
    assert!(matches!(
        error(403, &[], "restricted_resource"),
        StreamError::Rejected(_)
    ));
    assert_eq!(
        error(429, &[("retry-after", "7")], "rate_limited"),
        StreamError::RateLimited {
            wait: Duration::from_secs(7)
        }
    );
    assert_eq!(
        error(429, &[], "rate_limited"),
        StreamError::RateLimited {
            wait: DEFAULT_RATE_LIMIT_WAIT
        }
    );
    assert_eq!(
        error(502, &[], "bad_gateway"),
        StreamError::Upstream("Notion is unavailable (HTTP 502 bad_gateway)".into())
    );
    let refused = error(400, &[], "validation_error");
    assert_eq!(
        refused,
        StreamError::Upstream("Notion refused the search (HTTP 400 validation_error)".into())
    );
    assert!(!refused.to_string().contains(TOKEN));

    for bad in [
        "<html>oops</html>",
        r#"{"object":"page"}"#,
        r#"{"object":"list","results":{},"has_more":false}"#,
        r#"{"object":"list","results":[],"has_more":true,"next_cursor":null}"#,
        r#"{"object":"list","results":[]}"#,
    ] {
        assert!(
            matches!(list(reply(200, &[], bad)), Err(StreamError::Malformed(_))),
            "{bad}"
        );
    }
}

// --- payloads ---

#[test]
fn blocks_become_lines_of_text() {
    let line = |v: Value| block_line(&v);
    assert_eq!(
        line(block(1, "heading_2", "Plan", false)).as_deref(),
        Some("## Plan")
    );
    assert_eq!(line(block(1, "paragraph", "", false)), None);
    let mut todo = block(1, "to_do", "Call Ann", false);
    todo["to_do"]["checked"] = json!(true);
    assert_eq!(line(todo).as_deref(), Some("[x] Call Ann"));
    let row = json!({"type": "table_row", "table_row": {"cells": [text("a"), text("b")]}});
    assert_eq!(line(row).as_deref(), Some("a | b"));
    let hosted = json!({"type": "image", "image": {"type": "file", "caption": text("Diagram"),
        "file": {"url": "https://files.example/x.png?X-Amz-Signature=1", "expiry_time": at(1)}}});
    assert_eq!(line(hosted).as_deref(), Some("Diagram"));
    assert_eq!(line(json!({"type": "divider", "divider": {}})), None);
}

#[test]
fn properties_keep_what_users_search_for_and_drop_what_changes_on_every_read() {
    let props = |url: &str| {
        json!({
            "Name": {"type": "title", "title": text("Launch")},
            "Tags": {"type": "multi_select", "multi_select": [{"name": "a"}, {"name": "b"}]},
            "Due": {"type": "date", "date": {"start": "2026-04-01", "end": null}},
            "Owner": {"type": "people", "people": [{"object": "user", "id": "u1", "name": "Ann"}]},
            "Points": {"type": "number", "number": 3},
            "Empty": {"type": "select", "select": null},
            "Edited": {"type": "last_edited_time", "last_edited_time": at(3)},
            "Files": {"type": "files", "files": [{"name": "spec.pdf", "type": "file",
                "file": {"url": url, "expiry_time": at(9)}}]},
            "Id": {"type": "unique_id", "unique_id": {"prefix": "TASK", "number": 7}},
            // Computed at read time: `now()` differs on every read.
            "Age": {"type": "formula", "formula": {"type": "date", "date": {"start": url}}},
            "Total": {"type": "rollup", "rollup": {"type": "number", "number": url.len()}},
        })
    };
    let mut item = row(5, 10, "", 3);
    item["properties"] = props("https://files.example/spec.pdf?X-Amz-Signature=one");
    let first = page_entity(&item, Kind::Row, Content::default()).unwrap();
    assert_eq!(first.title, "Launch");
    assert_eq!(
        first.payload["properties"],
        json!({"Name": "Launch", "Tags": ["a", "b"], "Due": {"start": "2026-04-01", "end": null},
               "Owner": ["Ann"], "Points": 3, "Files": ["spec.pdf"], "Id": "TASK-7"})
    );
    assert_eq!(first.payload["database_id"], id(10));
    item["properties"] = props("https://files.example/spec.pdf?X-Amz-Signature=two!");
    let second = page_entity(&item, Kind::Row, Content::default()).unwrap();
    assert_eq!(
        first.content_hash(),
        second.content_hash(),
        "a re-signed file URL or a recomputed formula or rollup is no change"
    );
}

#[test]
fn ids_that_are_not_notion_ids_are_refused() {
    assert!(is_notion_id(&id(7)));
    assert!(is_notion_id("59833787cf944fdf8782e53db20768a5"));
    for bad in [
        "",
        "abc",
        "../x",
        "59833787-2cf9-4fdf-8782-e53db20768a5/../x",
        &format!("{}0", id(7)),
    ] {
        assert!(!is_notion_id(bad), "{bad}");
    }
}

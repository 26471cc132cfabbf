//! The catalog entry and authorization, what an answer means, pages and entities, the cursor,
//! runs against the fake Linear (the fakes crate's, built from Linear's API reference), and the
//! credential check.

use super::api::{
    classify, read_page, until, Refusal, DEFAULT_RATE_LIMIT_WAIT, MIN_RATE_LIMIT_WAIT, REJECTED,
};
use super::entities::to_entity;
use super::stream::{CURSOR_OVERLAP, PAGE_SIZE};
use super::*;
use crate::testing::{
    closed_port_url, direct_credential, header_map as headers, oauth, test_now as now,
};
use crate::upstream::{http_client, Answer};
use chrono::DateTime;
use domain::entity::{Entity, EntityKey};
use fakes::linear::{FakeLinear, Workspace};
use reqwest::StatusCode;
use std::time::Duration;

const KEY: &str = "lin_api_unitTest0secret0never0shown";

fn api_key(key: &str) -> AuthenticationRequest {
    direct_credential("api_key", key)
}

fn answer(status: u16, pairs: &[(&'static str, &str)], body: &str) -> Answer {
    Answer {
        status: StatusCode::from_u16(status).unwrap(),
        headers: headers(pairs),
        body: body.as_bytes().to_vec(),
    }
}

fn graphql_error(code: &str) -> String {
    json!({"errors": [{"message": "refused", "extensions": {"code": code}}]}).to_string()
}

fn ms_from_now(ms: i64) -> String {
    (now().timestamp_millis() + ms).to_string()
}

// --- the catalog entry ---

#[test]
fn the_catalog_entry_reads_as_documented() {
    let spec = spec();
    assert_eq!(
        (spec.short_name, spec.name, spec.class_name),
        ("linear", "Linear", "LinearSource")
    );
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
    assert!(field.name == "api_key" && field.required && field.is_secret);
    assert!(spec.config_fields.iter().all(|f| !f.required));
    assert_eq!(
        spec.entity_types,
        [
            "linear_team",
            "linear_user",
            "linear_project",
            "linear_issue",
            "linear_comment"
        ]
    );
    assert!(spec.supports_incremental && !spec.federated_search);
    let oauth = spec.oauth.unwrap();
    assert_eq!(oauth.authorize_url, "https://linear.app/oauth/authorize");
    assert_eq!(oauth.token_url, "https://api.linear.app/oauth/token");
    assert_eq!((oauth.scopes, oauth.scope_separator), (vec!["read"], ","));
    assert!(oauth.pkce && oauth.client_auth == ClientAuth::RequestBody);
    assert_eq!(oauth.access_token_pointer, "/access_token");
    assert_eq!(oauth.refresh_token_pointer, Some("/refresh_token"));
}

#[test]
fn api_keys_go_as_they_are_and_oauth_tokens_as_bearer_tokens() {
    let key = authorization(&api_key(&format!(" {KEY} "))).unwrap();
    assert_eq!(key.to_str().unwrap(), KEY);
    assert!(key.is_sensitive());
    let token = authorization(&oauth("lin_oauth_abc")).unwrap();
    assert_eq!(token.to_str().unwrap(), "Bearer lin_oauth_abc");
    assert!(authorization(&AuthenticationRequest::OauthBrowser).is_err());
    let broken = authorization(&api_key("line\nbreak-secret")).unwrap_err();
    assert!(!broken.contains("break-secret"), "{broken}");
}

// --- what an answer means ---

#[test]
fn data_is_data_even_beside_a_partial_error() {
    let ok = answer(200, &[], r#"{"data": {"viewer": {"id": "u1"}}}"#);
    assert!(classify(&ok, now()).is_ok());
    let partial = json!({"data": {"issues": {"nodes": []}}, "errors": [{"message": "x", "extensions": {"code": "INTERNAL_ERROR"}}]});
    assert!(classify(&answer(200, &[], &partial.to_string()), now()).is_ok());
}

#[test]
fn ratelimited_errors_wait_for_the_spent_budget() {
    // Linear answers a rate limit with HTTP 400 and resets in epoch milliseconds.
    let requests_spent = answer(
        400,
        &[
            ("x-ratelimit-requests-remaining", "0"),
            ("x-ratelimit-requests-reset", &ms_from_now(30_500)),
            ("x-ratelimit-complexity-remaining", "9000"),
            ("x-ratelimit-complexity-reset", &ms_from_now(3_600_000)),
        ],
        &graphql_error("RATELIMITED"),
    );
    assert_eq!(
        classify(&requests_spent, now()),
        Err(Refusal::RateLimited(Duration::from_secs(31)))
    );
    let complexity_spent = answer(
        400,
        &[
            ("x-ratelimit-requests-remaining", "100"),
            ("x-ratelimit-requests-reset", &ms_from_now(3_600_000)),
            ("x-ratelimit-complexity-remaining", "0"),
            ("x-ratelimit-complexity-reset", &ms_from_now(12_000)),
        ],
        &graphql_error("RATELIMITED"),
    );
    assert_eq!(
        classify(&complexity_spent, now()),
        Err(Refusal::RateLimited(Duration::from_secs(12)))
    );
    let retry_after = answer(429, &[("retry-after", "7")], "Too Many Requests");
    assert_eq!(
        classify(&retry_after, now()),
        Err(Refusal::RateLimited(Duration::from_secs(7)))
    );
    let older_shape = json!({"errors": [{"message": "Rate limit exceeded", "extensions": {"type": "ratelimited"}}]});
    assert_eq!(
        classify(&answer(400, &[], &older_shape.to_string()), now()),
        Err(Refusal::RateLimited(DEFAULT_RATE_LIMIT_WAIT))
    );
    let already_due = answer(
        400,
        &[
            ("x-ratelimit-requests-remaining", "0"),
            ("x-ratelimit-requests-reset", &ms_from_now(-5_000)),
        ],
        &graphql_error("RATELIMITED"),
    );
    assert_eq!(
        classify(&already_due, now()),
        Err(Refusal::RateLimited(MIN_RATE_LIMIT_WAIT))
    );
}

#[test]
fn resets_read_as_milliseconds_or_seconds() {
    let in_ms = now().timestamp_millis() + 2_001;
    assert_eq!(until(in_ms, now()), Duration::from_secs(3));
    assert_eq!(
        until(now().timestamp() + 90, now()),
        Duration::from_secs(90)
    );
    assert_eq!(until(0, now()), Duration::ZERO);
}

#[test]
fn authentication_errors_reject_the_credentials() {
    let rejected = Err(Refusal::Rejected(REJECTED.into()));
    assert_eq!(
        classify(
            &answer(400, &[], &graphql_error("AUTHENTICATION_ERROR")),
            now()
        ),
        rejected
    );
    let older_shape = json!({"errors": [{"message": "Authentication required, not authenticated", "extensions": {"type": "authentication error"}}]});
    assert_eq!(
        classify(&answer(400, &[], &older_shape.to_string()), now()),
        rejected
    );
    assert_eq!(classify(&answer(401, &[], "Unauthorized"), now()), rejected);
    assert!(matches!(
        classify(&answer(400, &[], &graphql_error("FORBIDDEN")), now()),
        Err(Refusal::Rejected(_))
    ));
}

#[test]
fn forbidden_rejects_only_an_answer_without_data() {
    let forbidden = Err(Refusal::Rejected(
        "the key or token may not read this Linear workspace".into(),
    ));
    let refused = |data: Value| {
        json!({"data": data, "errors": [{"message": "Forbidden: secret project", "extensions": {"code": "FORBIDDEN"}}]})
            .to_string()
    };
    // Nothing arrived: the key may not read what was asked.
    for (status, body) in [
        (200, refused(Value::Null)),
        (200, refused(json!({"issues": null}))),
        (400, graphql_error("FORBIDDEN")),
        (403, "Forbidden".to_owned()),
        (403, refused(Value::Null)),
    ] {
        assert_eq!(
            classify(&answer(status, &[], &body), now()),
            forbidden,
            "{status} {body}"
        );
    }

    // One nested field was refused: the page is kept, the connection is not sent to
    // re-authenticate.
    let page = json!({"issues": {"nodes": [{"id": "i1", "project": null}], "pageInfo": {"hasNextPage": false}}});
    // Linear sends most GraphQL errors with HTTP 400, this one too.
    for status in [200, 400, 403] {
        let partial = refused(page.clone());
        let kept = classify(&answer(status, &[], &partial), now()).unwrap();
        assert_eq!(kept["data"], page, "{status}");
    }
    let viewer = refused(json!({"viewer": {"id": "u1", "organization": null}}));
    assert!(classify(&answer(200, &[], &viewer), now()).is_ok());
    assert!(classify(&answer(400, &[], &viewer), now()).is_ok());

    // Data beside another error (not FORBIDDEN) on a 400 is still a failed query.
    let invalid = json!({"data": page, "errors": [{"message": "x", "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}]});
    assert!(matches!(
        classify(&answer(400, &[], &invalid.to_string()), now()),
        Err(Refusal::Unavailable(m)) if m.contains("HTTP 400 without data")
    ));
}

#[test]
fn authentication_errors_reject_even_beside_data() {
    let rejected = Err(Refusal::Rejected(REJECTED.into()));
    let page = json!({"issues": {"nodes": [], "pageInfo": {"hasNextPage": false}}});
    let with_data = json!({"data": page, "errors": [{"message": "x", "extensions": {"code": "AUTHENTICATION_ERROR"}}]});
    assert_eq!(
        classify(&answer(200, &[], &with_data.to_string()), now()),
        rejected
    );
    let unauthorized = json!({"data": page});
    assert_eq!(
        classify(&answer(401, &[], &unauthorized.to_string()), now()),
        rejected
    );
}

#[test]
fn failures_and_garbage_are_not_data() {
    assert_eq!(
        classify(&answer(503, &[], "<html>down</html>"), now()),
        Err(Refusal::Unavailable(
            "Linear is unavailable (HTTP 503)".into()
        ))
    );
    assert_eq!(
        classify(
            &answer(200, &[], r#"{"data": {"issues": {"nodes": ["#),
            now()
        ),
        Err(Refusal::Malformed(
            "Linear answered HTTP 200 with a body that is not JSON".into()
        ))
    );
    let invalid = classify(
        &answer(400, &[], &graphql_error("GRAPHQL_VALIDATION_FAILED")),
        now(),
    );
    assert_eq!(
        invalid,
        Err(Refusal::Unavailable(
            "Linear answered HTTP 400 without data (GRAPHQL_VALIDATION_FAILED)".into()
        ))
    );
    assert!(matches!(
        classify(&answer(200, &[], r#"{"data": null}"#), now()),
        Err(Refusal::Unavailable(_))
    ));
}

// --- pages and entities ---

fn connection(field: &str, nodes: Value, next: Option<&str>) -> Value {
    json!({"data": {field: {
        "nodes": nodes,
        "pageInfo": {"hasNextPage": next.is_some(), "endCursor": next},
    }}})
}

#[test]
fn a_page_needs_its_nodes_and_a_cursor_that_advances() {
    let page = read_page(
        Kind::Issues,
        &connection("issues", json!([{"id": "a"}]), Some("c2")),
        Some("c1"),
    )
    .unwrap();
    assert_eq!((page.nodes.len(), page.next.as_deref()), (1, Some("c2")));
    let last = read_page(Kind::Teams, &connection("teams", json!([]), None), None).unwrap();
    assert_eq!(last.next, None);

    let stuck = read_page(
        Kind::Issues,
        &connection("issues", json!([]), Some("c1")),
        Some("c1"),
    );
    assert!(matches!(stuck, Err(StreamError::Malformed(m)) if m.contains("did not advance")));
    let no_cursor = json!({"data": {"issues": {"nodes": [], "pageInfo": {"hasNextPage": true}}}});
    assert!(read_page(Kind::Issues, &no_cursor, None).is_err());
    let wrong_field = connection("teams", json!([]), None);
    assert!(matches!(
        read_page(Kind::Issues, &wrong_field, None),
        Err(StreamError::Malformed(m)) if m == "Linear's issues page is missing"
    ));
    let not_a_list = json!({"data": {"issues": {"nodes": {}, "pageInfo": {"hasNextPage": false}}}});
    assert!(read_page(Kind::Issues, &not_a_list, None).is_err());
}

fn issue(id: &str, updated_at: &str, labels: &[&str]) -> Value {
    json!({
        "id": id, "identifier": "ENG-7", "title": "Login fails on Safari",
        "description": "Steps: open the page", "url": "https://linear.app/acme/issue/ENG-7",
        "priority": 2, "priorityLabel": "High", "estimate": 3, "dueDate": null,
        "createdAt": "2026-10-01T09:00:00.000Z", "updatedAt": updated_at,
        "archivedAt": null, "completedAt": null, "canceledAt": null,
        "state": {"id": "s1", "name": "In Checkpoint", "type": "started"},
        "assignee": {"id": "u1", "name": "Ada Lovelace", "email": "ada@example.com"},
        "creator": {"id": "u2", "name": "Grace Hopper"},
        "team": {"id": "t1", "key": "ENG", "name": "Engineering"},
        "project": null,
        "labels": {"nodes": labels.iter().map(|l| json!({"id": format!("l-{l}"), "name": l})).collect::<Vec<_>>()},
    })
}

#[test]
fn an_issue_keeps_what_a_user_searches_for() {
    let entity = to_entity(
        Kind::Issues,
        &issue("i-1", "2026-10-02T10:00:00.000Z", &["bug", "ui"]),
    )
    .unwrap();
    assert_eq!(
        (entity.entity_type.as_str(), entity.entity_id.as_str()),
        ("linear_issue", "i-1")
    );
    assert_eq!(entity.title, "ENG-7 Login fails on Safari");
    assert_eq!(
        entity.updated_at,
        Some("2026-10-02T10:00:00Z".parse().unwrap())
    );
    let p = &entity.payload;
    assert_eq!(p["state"], "In Checkpoint");
    assert_eq!(p["assignee"]["name"], "Ada Lovelace");
    assert_eq!(p["team"]["key"], "ENG");
    assert_eq!(p["labels"], json!(["bug", "ui"]));
    assert_eq!(p["description"], "Steps: open the page");
    assert_eq!(p["url"], "https://linear.app/acme/issue/ENG-7");

    // Label order is not the item's content: the hash ignores it.
    let reordered = to_entity(
        Kind::Issues,
        &issue("i-1", "2026-10-02T10:00:00.000Z", &["ui", "bug"]),
    )
    .unwrap();
    assert_eq!(entity.content_hash(), reordered.content_hash());
    let edited = to_entity(
        Kind::Issues,
        &issue("i-1", "2026-10-03T10:00:00.000Z", &["bug", "ui"]),
    )
    .unwrap();
    assert_ne!(entity.content_hash(), edited.content_hash());

    assert!(to_entity(Kind::Issues, &json!({"updatedAt": "2026-10-02T10:00:00Z"})).is_err());
    assert!(to_entity(Kind::Issues, &json!({"id": "x", "updatedAt": "yesterday"})).is_err());
}

#[test]
fn comments_are_titled_by_author_and_issue() {
    let comment = json!({
        "id": "c-1", "body": "Reproduced on 17.2", "url": "https://linear.app/acme/issue/ENG-7#comment-c1",
        "createdAt": "2026-10-02T10:00:00.000Z", "updatedAt": "2026-10-02T10:00:00.000Z",
        "editedAt": null, "archivedAt": null,
        "user": {"id": "u1", "name": "Ada Lovelace"},
        "issue": {"id": "i-1", "identifier": "ENG-7", "title": "Login fails on Safari"},
    });
    let entity = to_entity(Kind::Comments, &comment).unwrap();
    assert_eq!(entity.title, "Comment by Ada Lovelace on ENG-7");
    assert_eq!(entity.payload["body"], "Reproduced on 17.2");
    assert_eq!(entity.payload["issue"]["identifier"], "ENG-7");
}

// --- the cursor ---

fn at_time(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

#[test]
fn the_cursor_is_the_newest_update_but_never_past_the_start_less_the_overlap() {
    let start = at_time("2026-11-25T12:00:00Z");
    let mut full = Checkpoint::start(None, start);
    full.next = None;
    assert_eq!(
        full.cursor().updated_after,
        start - CURSOR_OVERLAP,
        "nothing seen"
    );
    full.newest = Some(at_time("2026-11-20T08:00:00Z"));
    assert_eq!(full.cursor().updated_after, at_time("2026-11-20T08:00:00Z"));
    full.newest = Some(at_time("2026-11-25T11:59:00Z"));
    assert_eq!(full.cursor().updated_after, start - CURSOR_OVERLAP);

    let mut quiet = Checkpoint::start(Some(at_time("2026-11-24T00:00:00Z")), start);
    quiet.next = None;
    assert_eq!(
        quiet.cursor().updated_after,
        at_time("2026-11-24T00:00:00Z"),
        "nothing changed: the same filter next time"
    );
}

fn stream(progress: Checkpoint) -> LinearStream {
    LinearStream {
        client: http_client().unwrap(),
        endpoint: "http://127.0.0.1:9/graphql".into(),
        authorization: HeaderValue::from_static("k"),
        progress,
    }
}

#[test]
fn only_an_incremental_run_filters_by_update_and_asks_for_archived_items() {
    let since = at_time("2026-11-24T00:00:00Z");
    let mut incremental = stream(Checkpoint::start(Some(since), now()));
    incremental.progress.after = Some("cursor-9".into());
    let issues = incremental.variables(Kind::Issues);
    assert_eq!(
        issues,
        json!({
            "first": PAGE_SIZE, "after": "cursor-9", "includeArchived": true,
            "filter": {"updatedAt": {"gt": "2026-11-24T00:00:00.000Z"}},
        })
    );
    assert_eq!(
        incremental.variables(Kind::Teams),
        json!({"first": PAGE_SIZE, "after": "cursor-9"})
    );
    let full = stream(Checkpoint::start(None, now()));
    assert_eq!(
        full.variables(Kind::Comments),
        json!({"first": PAGE_SIZE, "after": null, "includeArchived": false})
    );
}

// --- runs against the fake Linear ---

fn source_at(base_url: &str) -> LinearSource {
    LinearSource::new(http_client().unwrap(), BaseUrl::parse(base_url).unwrap())
}

fn source_for(fake: &FakeLinear) -> LinearSource {
    source_at(&fake.base_url)
}

fn request(since: Option<Value>, resume: Option<Value>) -> StreamRequest {
    StreamRequest {
        auth: api_key(KEY),
        config: Map::new(),
        cursor: since,
        checkpoint: resume,
        page_budget: crate::testing::PAGE_BUDGET,
    }
}

/// Two teams, three users, two projects, 60 issues (two pages of 50) and 30 comments, every
/// timestamp fixed in the past.
async fn seeded() -> FakeLinear {
    FakeLinear::start_with(KEY, Workspace::seeded(60)).await
}

async fn drain(
    stream: &mut Box<dyn EntityStream>,
) -> (Vec<Entity>, Vec<EntityKey>, Vec<Value>, Option<StreamError>) {
    let (mut entities, mut removed, mut checkpoints) = (Vec::new(), Vec::new(), Vec::new());
    loop {
        match stream.next_page().await {
            Ok(Some(page)) => {
                entities.extend(page.entities);
                removed.extend(page.removed);
                checkpoints.push(page.checkpoint);
            }
            Ok(None) => return (entities, removed, checkpoints, None),
            Err(e) => return (entities, removed, checkpoints, Some(e)),
        }
    }
}

fn ids(entities: &[Entity]) -> Vec<&str> {
    entities.iter().map(|e| e.entity_id.as_str()).collect()
}

/// The entity types in the order they came, each with how many in a row.
fn runs_of_types(entities: &[Entity]) -> Vec<(&str, usize)> {
    let mut runs: Vec<(&str, usize)> = Vec::new();
    for entity in entities {
        match runs.last_mut() {
            Some((kind, n)) if *kind == entity.entity_type => *n += 1,
            _ => runs.push((&entity.entity_type, 1)),
        }
    }
    runs
}

/// The fields the fake was asked for, in order.
fn fields(fake: &FakeLinear) -> Vec<String> {
    fake.asked().into_iter().map(|a| a.field).collect()
}

/// The newest `updatedAt` among the projects, issues and comments of the fake's workspace.
fn newest_filtered_update(fake: &FakeLinear) -> DateTime<Utc> {
    let w = fake.workspace();
    let projects = w.projects.iter().map(|p| p.updated_at);
    let issues = w.issues.iter().map(|i| i.updated_at);
    let comments = w.comments.iter().map(|c| c.updated_at);
    projects.chain(issues).chain(comments).max().unwrap()
}

#[tokio::test]
async fn a_run_walks_every_kind_page_by_page_and_ends_with_a_cursor() {
    let fake = seeded().await;
    // A user edited after everything else: teams and users are listed whole and do not move
    // the cursor.
    fake.workspace().users[0].updated_at = at_time("2026-11-01T00:00:00Z");
    let mut stream = source_for(&fake).open_stream(request(None, None)).unwrap();
    assert!(fake.requests().is_empty(), "opening does no I/O");
    assert!(!stream.incremental());
    let (entities, removed, checkpoints, error) = drain(&mut stream).await;
    assert_eq!(error, None);
    assert!(removed.is_empty());
    assert_eq!(
        runs_of_types(&entities),
        [
            ("linear_team", 2),
            ("linear_user", 3),
            ("linear_project", 2),
            ("linear_issue", 60),
            ("linear_comment", 30)
        ]
    );
    assert_eq!(checkpoints.len(), 6, "one page per GraphQL page");

    // The fake refuses a personal key sent as a bearer token: the run went with the raw key.
    assert!(fake.requests().iter().all(|r| r == "POST /graphql"));
    assert_eq!(
        fields(&fake),
        ["teams", "users", "projects", "issues", "issues", "comments"]
    );
    let asked = fake.asked();
    assert!(
        asked[4].after.is_some(),
        "the second issues page follows the first"
    );
    assert!(asked
        .iter()
        .all(|a| a.updated_after.is_none() && !a.include_archived));

    // The newest update among projects, issues and comments, not the teams' or users'.
    assert_eq!(
        stream.cursor(),
        Some(json!({"updated_after": newest_filtered_update(&fake)}))
    );
}

#[tokio::test]
async fn a_resumed_run_continues_after_its_checkpoint() {
    let fake = seeded().await;
    let source = source_for(&fake);
    let mut first = source.open_stream(request(None, None)).unwrap();
    let (all, _, checkpoints, _) = drain(&mut first).await;
    // After the first issues page: the issues' next page, then the comments.
    let after_first_issue_page = checkpoints[3].clone();
    assert_eq!(after_first_issue_page["next"], "issues");
    let page_cursor = fake.asked()[4].after.clone().unwrap();
    assert_eq!(after_first_issue_page["after"], page_cursor.as_str());

    let asked_before = fake.asked().len();
    let mut resumed = source
        .open_stream(request(None, Some(after_first_issue_page)))
        .unwrap();
    let (entities, _, _, error) = drain(&mut resumed).await;
    assert_eq!(error, None);
    // Teams, users, projects and the first 50 issues came before the checkpoint.
    assert_eq!(ids(&entities), ids(&all[2 + 3 + 2 + 50..]));
    let asked: Vec<_> = fake.asked().split_off(asked_before);
    assert_eq!(
        asked
            .iter()
            .map(|a| (a.field.as_str(), a.after.as_deref()))
            .collect::<Vec<_>>(),
        [("issues", Some(page_cursor.as_str())), ("comments", None)]
    );
    // What the pages before the checkpoint saw still counts for the cursor.
    assert_eq!(resumed.cursor(), first.cursor());

    let unreadable = source.open_stream(request(None, Some(json!("page 3"))));
    assert!(matches!(unreadable, Err(StreamError::Malformed(_))));
}

#[tokio::test]
async fn an_incremental_run_reports_archived_items_removed() {
    let fake = FakeLinear::start_with(KEY, Workspace::seeded(4)).await;
    let source = source_for(&fake);
    let mut full = source.open_stream(request(None, None)).unwrap();
    drain(&mut full).await;
    let since = full.cursor().unwrap();
    let (edited, archived) = {
        let mut w = fake.workspace();
        let (edited, archived) = (w.issues[0].id.clone(), w.issues[1].id.clone());
        w.edit_issue(&edited, "Login fails on Safari");
        w.archive_issue(&archived);
        (edited, archived)
    };

    let asked_before = fake.asked().len();
    let mut stream = source
        .open_stream(request(Some(since.clone()), None))
        .unwrap();
    assert!(stream.incremental());
    let (entities, removed, _, error) = drain(&mut stream).await;
    assert_eq!(error, None);
    assert!(ids(&entities).contains(&edited.as_str()));
    assert!(!ids(&entities).contains(&archived.as_str()));
    assert_eq!(
        removed,
        [EntityKey::new("linear_issue", &archived).unwrap()]
    );
    let asked = fake.asked().split_off(asked_before);
    let since: DateTime<Utc> = serde_json::from_value(since["updated_after"].clone()).unwrap();
    let filter = since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    for a in &asked {
        let filtered = ["projects", "issues", "comments"].contains(&a.field.as_str());
        assert_eq!(
            (a.updated_after.as_deref(), a.include_archived),
            if filtered {
                (Some(filter.as_str()), true)
            } else {
                (None, false)
            },
            "{a:?}"
        );
    }

    // A full run drops an archived item by not yielding it; nothing is "removed".
    let mut full = source
        .open_stream(request(Some(json!("from an older version")), None))
        .unwrap();
    assert!(!full.incremental(), "an unreadable cursor means a full run");
    let (entities, removed, _, _) = drain(&mut full).await;
    assert!(removed.is_empty() && !ids(&entities).contains(&archived.as_str()));
    assert!(ids(&entities).contains(&edited.as_str()));
}

#[tokio::test]
async fn refusals_end_the_stream_as_the_worker_expects() {
    let fake = seeded().await;
    let mut stream = source_for(&fake).open_stream(request(None, None)).unwrap();
    let teams = stream.next_page().await.unwrap().unwrap();
    assert_eq!(teams.entities.len(), 2);
    fake.revoke_key();
    let (entities, _, _, error) = drain(&mut stream).await;
    assert!(entities.is_empty());
    let Some(StreamError::Rejected(message)) = error else {
        panic!("rejected, got {error:?}");
    };
    assert!(!message.contains(KEY));
    assert_eq!(stream.cursor(), None, "no cursor before the end");

    let fake = seeded().await;
    fake.rate_limit_once_after(2, 1);
    let mut stream = source_for(&fake).open_stream(request(None, None)).unwrap();
    let (_, _, checkpoints, error) = drain(&mut stream).await;
    assert_eq!(checkpoints.len(), 2);
    assert_eq!(
        error,
        Some(StreamError::RateLimited {
            wait: Duration::from_secs(1)
        })
    );

    let fake = seeded().await;
    fake.malform_once_after(0);
    let mut stream = source_for(&fake).open_stream(request(None, None)).unwrap();
    let (_, _, _, error) = drain(&mut stream).await;
    assert_eq!(
        error,
        Some(StreamError::Malformed(
            "Linear answered HTTP 200 with a body that is not JSON".into()
        ))
    );

    let unreachable = source_at(&closed_port_url().await);
    let mut stream = unreachable.open_stream(request(None, None)).unwrap();
    assert!(matches!(
        stream.next_page().await,
        Err(StreamError::Upstream(m)) if m == "could not connect to Linear"
    ));
}

// --- the credential check ---

#[tokio::test]
async fn the_viewer_query_checks_the_credentials() {
    // The fake takes a personal key only as the raw `Authorization` value, and an OAuth token
    // only as a bearer token, as Linear does.
    let fake = FakeLinear::start(KEY).await;
    fake.accept_oauth_token("lin_oauth_token");
    let source = source_for(&fake);
    let check = |auth: AuthenticationRequest| {
        let source = source.clone();
        async move { source.check_credentials(&auth, &Map::new()).await }
    };
    assert_eq!(check(api_key(KEY)).await, Ok(()));
    assert_eq!(fake.requests(), ["POST /graphql"]);
    assert_eq!(check(oauth("lin_oauth_token")).await, Ok(()));
    assert!(fake.asked().is_empty(), "a check lists nothing");

    fake.rate_limit_viewer_once(20);
    assert_eq!(
        check(api_key(KEY)).await,
        Err(CheckError::RateLimited {
            retry_after: Some(Duration::from_secs(20))
        })
    );

    fake.revoke_key();
    assert_eq!(
        check(api_key(KEY)).await,
        Err(CheckError::Rejected(REJECTED.into()))
    );

    // A workspace without a member: Linear's answer names no viewer.
    let empty = FakeLinear::start_with(KEY, Workspace::default()).await;
    let outcome = source_for(&empty)
        .check_credentials(&api_key(KEY), &Map::new())
        .await;
    assert!(
        matches!(outcome, Err(CheckError::Unavailable(_))),
        "{outcome:?}"
    );

    let unreachable = source_at(&closed_port_url().await);
    assert_eq!(
        unreachable
            .check_credentials(&api_key(KEY), &Map::new())
            .await,
        Err(CheckError::Unavailable(
            "could not connect to Linear".into()
        ))
    );
}

//! Unit tests of the fake Notion: its paging, error answers and switches.

use super::*;

use hyper::header::{HeaderValue, AUTHORIZATION};
use hyper::HeaderMap;

/// Answers a request as the server would, without the network.
async fn call(
    fake: &FakeNotion,
    method: &str,
    path: &str,
    body: Option<Value>,
    token: &str,
) -> (u16, Option<String>, Value) {
    let mut headers = HeaderMap::new();
    let bearer = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    headers.insert(AUTHORIZATION, bearer);
    headers.insert("notion-version", HeaderValue::from_static(NOTION_VERSION));
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let request = FakeRequest {
        method: method.into(),
        path: path.into(),
        query: url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect(),
        headers,
        body: body.map(|b| b.to_string()).unwrap_or_default().into(),
    };
    let response = answer(&fake.state, &request);
    let retry_after = response
        .headers
        .iter()
        .find(|(name, _)| name == "retry-after")
        .map(|(_, value)| value.clone());
    let json = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    (response.status, retry_after, json)
}

const TOKEN: &str = "ntn_unit";

fn titles(list: &Value) -> Vec<String> {
    list["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let title = r["properties"]["title"]["title"]
                .get(0)
                .or_else(|| r["properties"]["Name"]["title"].get(0))
                .or_else(|| r["title"].get(0));
            title.unwrap()["plain_text"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[tokio::test]
async fn search_pages_newest_first_with_cursors() {
    let fake = FakeNotion::start(TOKEN).await;
    for n in 0..5 {
        fake.add_page(&format!("Page {n}"), vec![]);
    }
    fake.rename(&fake.ids()[0], "Page 0 renamed");
    let body = json!({"page_size": 2, "sort": {"direction": "descending", "timestamp": "last_edited_time"}});
    let (status, _, first) = call(&fake, "POST", "/v1/search", Some(body.clone()), TOKEN).await;
    assert_eq!(status, 200);
    assert_eq!(titles(&first), ["Page 0 renamed", "Page 4"]);
    assert_eq!(first["has_more"], true);
    let mut next = body;
    next["start_cursor"] = first["next_cursor"].clone();
    let (_, _, second) = call(&fake, "POST", "/v1/search", Some(next.clone()), TOKEN).await;
    assert_eq!(titles(&second), ["Page 3", "Page 2"]);
    next["start_cursor"] = second["next_cursor"].clone();
    let (_, _, last) = call(&fake, "POST", "/v1/search", Some(next), TOKEN).await;
    assert_eq!(titles(&last), ["Page 1"]);
    assert_eq!(
        (last["has_more"].clone(), last["next_cursor"].clone()),
        (json!(false), Value::Null)
    );
    let (status, _, bad) = call(
        &fake,
        "POST",
        "/v1/search",
        Some(json!({"page_size": 101})),
        TOKEN,
    )
    .await;
    assert_eq!(
        (status, bad["code"].as_str()),
        (400, Some("validation_error"))
    );
}

#[tokio::test]
async fn rows_and_nested_blocks_are_served_as_notion_does() {
    let fake = FakeNotion::start(TOKEN).await;
    let db = fake.add_database("Projects");
    let row = fake.add_row(
        &db,
        "Launch",
        "Done",
        vec![Block::bullet("Plan").with_children(vec![Block::to_do("Book room", true)])],
    );
    let path = format!("/v1/databases/{db}/query");
    let (status, _, rows) = call(&fake, "POST", &path, Some(json!({})), TOKEN).await;
    assert_eq!(status, 200);
    assert_eq!(rows["results"][0]["id"], row);
    assert_eq!(rows["results"][0]["parent"]["database_id"], db);
    assert_eq!(
        rows["results"][0]["properties"]["Status"]["select"]["name"],
        "Done"
    );
    let (_, _, again) = call(&fake, "POST", &path, Some(json!({})), TOKEN).await;
    let url =
        |v: &Value| v["results"][0]["properties"]["Attachments"]["files"][0]["file"]["url"].clone();
    assert_ne!(
        url(&rows),
        url(&again),
        "hosted file URLs are signed per read"
    );

    let (_, _, blocks) = call(
        &fake,
        "GET",
        &format!("/v1/blocks/{row}/children"),
        None,
        TOKEN,
    )
    .await;
    let bullet = &blocks["results"][0];
    assert_eq!(
        (bullet["type"].as_str(), bullet["has_children"].as_bool()),
        (Some("bulleted_list_item"), Some(true))
    );
    let path = format!(
        "/v1/blocks/{}/children?page_size=10",
        bullet["id"].as_str().unwrap()
    );
    let (_, _, nested) = call(&fake, "GET", &path, None, TOKEN).await;
    assert_eq!(nested["results"][0]["to_do"]["checked"], true);
    assert_eq!(nested["results"][0]["parent"]["type"], "block_id");

    fake.remove(&db);
    let (status, _, gone) = call(
        &fake,
        "POST",
        &format!("/v1/databases/{db}/query"),
        None,
        TOKEN,
    )
    .await;
    assert_eq!(
        (status, gone["code"].as_str()),
        (404, Some("object_not_found"))
    );
    assert!(fake.ids().is_empty(), "a database goes with its rows");
}

#[tokio::test]
async fn switches_answer_as_notion_does_when_things_go_wrong() {
    let fake = FakeNotion::start(TOKEN).await;
    let (status, _, me) = call(&fake, "GET", "/v1/users/me", None, TOKEN).await;
    assert_eq!((status, me["type"].as_str()), (200, Some("bot")));
    let (status, _, bad) = call(&fake, "GET", "/v1/users/me", None, "ntn_wrong").await;
    assert_eq!((status, bad["code"].as_str()), (401, Some("unauthorized")));

    fake.glitch_after(
        1,
        Glitch::RateLimited {
            retry_after_secs: 1,
        },
    );
    assert_eq!(call(&fake, "POST", "/v1/search", None, TOKEN).await.0, 200);
    let (status, retry_after, limited) = call(&fake, "POST", "/v1/search", None, TOKEN).await;
    assert_eq!((status, retry_after.as_deref()), (429, Some("1")));
    assert_eq!(limited["object"], "error");
    assert_eq!(limited["code"], "rate_limited");
    assert_eq!(
        call(&fake, "POST", "/v1/search", None, TOKEN).await.0,
        200,
        "once"
    );

    fake.glitch_after(0, Glitch::Malformed);
    let (status, _, body) = call(&fake, "POST", "/v1/search", None, TOKEN).await;
    assert_eq!((status, body), (200, Value::Null), "not JSON");
    fake.glitch_after(0, Glitch::Unavailable);
    assert_eq!(call(&fake, "POST", "/v1/search", None, TOKEN).await.0, 503);

    fake.revoke_token();
    let (status, _, revoked) = call(&fake, "POST", "/v1/search", None, TOKEN).await;
    assert_eq!(
        (status, revoked["code"].as_str()),
        (401, Some("unauthorized"))
    );
}

#[tokio::test]
async fn child_pages_trash_refusals_and_short_pages_answer_as_notion_does() {
    let fake = FakeNotion::start(TOKEN).await;
    let parent = fake.add_page(
        "Roadmap",
        vec![
            Block::toggle("Plans").with_children(vec![Block::paragraph("Q1")]),
            Block::child_page("Sub page", vec![Block::paragraph("Inside")]),
            Block::unsupported(),
        ],
    );
    let blocks = fake.block_ids(&parent);
    let sub = blocks[1].clone();
    let (_, _, listed) = call(
        &fake,
        "GET",
        &format!("/v1/blocks/{parent}/children"),
        None,
        TOKEN,
    )
    .await;
    let child = &listed["results"][1];
    assert_eq!(child["id"], sub.as_str());
    assert_eq!(child["child_page"], json!({"title": "Sub page"}));
    assert_eq!(child["has_children"], true);
    assert_eq!(listed["results"][2]["unsupported"], json!({}));
    let (_, _, found) = call(&fake, "POST", "/v1/search", Some(json!({})), TOKEN).await;
    let found_sub = found["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == sub.as_str())
        .unwrap();
    assert_eq!(found_sub["parent"]["page_id"], parent.as_str());

    fake.refuse_children(&blocks[0], Refusal::Unsupported);
    fake.refuse_children(&sub, Refusal::Restricted);
    let children = |id: &str| format!("/v1/blocks/{id}/children");
    let (status, _, refused) = call(&fake, "GET", &children(&blocks[0]), None, TOKEN).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (400, Some("validation_error"))
    );
    let (status, _, refused) = call(&fake, "GET", &children(&sub), None, TOKEN).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("restricted_resource"))
    );

    let before = fake.last_edited(&parent);
    fake.trash(&parent);
    assert!(fake.last_edited(&parent) > before, "trashing is an edit");
    fake.list_at_most(1);
    let body = json!({"page_size": 100, "sort": {"direction": "descending", "timestamp": "last_edited_time"}});
    let (_, _, newest) = call(&fake, "POST", "/v1/search", Some(body), TOKEN).await;
    assert_eq!(newest["results"].as_array().unwrap().len(), 1);
    assert_eq!(newest["has_more"], true);
    assert_eq!(
        (
            &newest["results"][0]["id"],
            &newest["results"][0]["in_trash"]
        ),
        (&json!(parent), &json!(true))
    );
    let last = fake.asked().pop().unwrap();
    assert_eq!(
        (
            last.path.as_str(),
            last.page_size,
            last.direction.as_deref()
        ),
        ("/v1/search", Some(100), Some("descending"))
    );

    fake.glitch_after(0, Glitch::PathAsId);
    let (status, _, tampered) = call(&fake, "POST", "/v1/search", None, TOKEN).await;
    assert_eq!(status, 200);
    assert_eq!(tampered["results"][0]["id"], "../../v1/users/me");
}

#[tokio::test]
async fn the_demo_workspace_has_pages_a_database_and_rows() {
    let fake = FakeNotion::start(DEMO_TOKEN).await;
    fake.load_demo();
    let (_, _, all) = call(&fake, "POST", "/v1/search", Some(json!({})), DEMO_TOKEN).await;
    let objects: Vec<&str> = all["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["object"].as_str().unwrap())
        .collect();
    assert_eq!(objects.len(), 7);
    assert_eq!(objects.iter().filter(|o| **o == "database").count(), 1);
}

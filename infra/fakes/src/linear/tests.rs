//! Unit tests of the fake Linear: its paging, error answers and switches.

use super::*;

const KEY: &str = "lin_api_fakeTestKey";

async fn post(fake: &FakeLinear, authorization: &str, body: Value) -> (u16, Value) {
    let response = raw_http::post(&fake.base_url, authorization, &body).await;
    (
        response.0,
        serde_json::from_str(&response.1).unwrap_or(Value::Null),
    )
}

fn query(field: &str) -> String {
    format!("query Q($first: Int, $after: String) {{ {field}(first: $first, after: $after) {{ nodes {{ id }} pageInfo {{ hasNextPage endCursor }} }} }}")
}

#[tokio::test]
async fn pages_follow_their_cursors_until_the_last() {
    let fake = FakeLinear::start_with(KEY, Workspace::seeded(7)).await;
    let mut after = Value::Null;
    let mut ids = Vec::new();
    loop {
        let (status, body) = post(
            &fake,
            KEY,
            json!({"query": query("issues"), "variables": {"first": 3, "after": after}}),
        )
        .await;
        assert_eq!(status, 200);
        let page = &body["data"]["issues"];
        ids.extend(
            page["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["id"].clone()),
        );
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(ids.len(), 7);
    assert_eq!(fake.asked().len(), 3);
}

#[tokio::test]
async fn archived_items_show_only_when_asked_and_filters_see_edits() {
    let fake = FakeLinear::start_with(KEY, Workspace::seeded(4)).await;
    let (archived, edited) = {
        let mut w = fake.workspace();
        let archived = w.issues[0].id.clone();
        let edited = w.issues[1].id.clone();
        w.archive_issue(&archived);
        w.edit_issue(&edited, "Renamed");
        (archived, edited)
    };
    let ask = |variables: Value| json!({"query": query("issues"), "variables": variables});
    let (_, all) = post(&fake, KEY, ask(json!({}))).await;
    assert_eq!(all["data"]["issues"]["nodes"].as_array().unwrap().len(), 3);
    let since = ts(Utc::now() - Duration::minutes(1));
    let (_, changed) = post(
        &fake,
        KEY,
        ask(json!({"includeArchived": true, "filter": {"updatedAt": {"gt": since}}})),
    )
    .await;
    let ids: Vec<&str> = changed["data"]["issues"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [archived.as_str(), edited.as_str()]);
}

#[tokio::test]
async fn keys_are_raw_and_switches_fire_once() {
    let fake = FakeLinear::start(KEY).await;
    let viewer = json!({"query": "query { viewer { id name } }"});
    assert_eq!(post(&fake, KEY, viewer.clone()).await.0, 200);
    let (status, body) = post(&fake, &format!("Bearer {KEY}"), viewer.clone()).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "AUTHENTICATION_ERROR"
    );

    fake.rate_limit_once_after(1, 1);
    let teams = json!({"query": query("teams")});
    assert_eq!(post(&fake, KEY, teams.clone()).await.0, 200);
    let (status, body) = post(&fake, KEY, teams.clone()).await;
    assert_eq!(
        (status, &body["errors"][0]["extensions"]["code"]),
        (400, &json!("RATELIMITED"))
    );
    assert_eq!(post(&fake, KEY, teams.clone()).await.0, 200);

    fake.malform_once_after(0);
    let (status, body) = post(&fake, KEY, teams.clone()).await;
    assert_eq!((status, body), (200, Value::Null), "not JSON");

    fake.revoke_key();
    assert_eq!(post(&fake, KEY, teams).await.0, 400);
}

#[tokio::test]
async fn checks_can_be_rate_limited_once_and_oauth_tokens_go_as_bearer_tokens() {
    let fake = FakeLinear::start(KEY).await;
    fake.rate_limit_viewer_once(20);
    let viewer = json!({"query": "query { viewer { id } }"});
    let (status, body) = post(&fake, KEY, viewer.clone()).await;
    assert_eq!(
        (status, &body["errors"][0]["extensions"]["code"]),
        (400, &json!("RATELIMITED"))
    );
    assert_eq!(post(&fake, KEY, viewer.clone()).await.0, 200, "once");
    fake.accept_oauth_token("lin_oauth_fakeToken");
    let bearer = post(&fake, "Bearer lin_oauth_fakeToken", viewer.clone()).await;
    assert_eq!(bearer.0, 200, "an OAuth token as a bearer token");
    let raw = post(&fake, "lin_oauth_fakeToken", viewer).await;
    assert_eq!(raw.0, 400, "an OAuth token is no key");
    assert!(fake.asked().is_empty(), "checks are not list queries");
    assert_eq!(fake.requests().len(), 4);
}

/// A minimal HTTP/1.1 client: the fakes crate has no HTTP client dependency.
mod raw_http {
    use serde_json::Value;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    pub async fn post(base_url: &str, authorization: &str, body: &Value) -> (u16, String) {
        let host = base_url.trim_start_matches("http://").to_owned();
        let authorization = authorization.to_owned();
        let body = body.to_string();
        tokio::task::spawn_blocking(move || {
            let mut stream = TcpStream::connect(&host).unwrap();
            let request = format!(
                "POST /graphql HTTP/1.1\r\nHost: {host}\r\nAuthorization: {authorization}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(request.as_bytes()).unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).unwrap();
            let status = response[9..12].parse().unwrap();
            let (_, body) = response.split_once("\r\n\r\n").unwrap();
            (status, body.to_owned())
        })
        .await
        .unwrap()
    }
}

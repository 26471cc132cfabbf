//! The fake Slack against its own API: paging, rate limits, revoked tokens and the knobs tests use.

use super::*;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, AUTHORIZATION};
use hyper::HeaderMap;

const TOKEN: &str = "xoxb-test-token";

fn state() -> State {
    State::empty(TOKEN)
}

fn call(
    state: &mut State,
    method: &str,
    query: &[(&str, &str)],
    token: Option<&str>,
) -> (u16, Value) {
    let mut headers = HeaderMap::new();
    if let Some(t) = token {
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
        );
    }
    let request = FakeRequest {
        method: "GET".into(),
        path: format!("/{method}"),
        query: query
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
        headers,
        body: Bytes::new(),
    };
    let response = answer(state, &request);
    let body = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    (response.status, body)
}

fn get(state: &mut State, method: &str, query: &[(&str, &str)]) -> Value {
    let (status, body) = call(state, method, query, Some(TOKEN));
    assert_eq!(status, 200);
    body
}

#[test]
fn tokens_are_checked_as_slack_does() {
    let mut s = state();
    assert_eq!(
        call(&mut s, "auth.test", &[], None).1["error"],
        "not_authed"
    );
    assert_eq!(
        call(&mut s, "auth.test", &[], Some("xoxb-other")).1["error"],
        "invalid_auth"
    );
    let me = get(&mut s, "auth.test", &[]);
    assert_eq!(
        (me["ok"].clone(), me["url"].clone()),
        (json!(true), json!(TEAM_URL))
    );
    s.revoked = true;
    assert_eq!(
        call(&mut s, "users.list", &[], Some(TOKEN)).1,
        json!({"ok": false, "error": "token_revoked"})
    );
    assert!(s
        .calls
        .iter()
        .all(|c| !c.params.values().any(|v| v.contains(TOKEN))));
}

#[tokio::test]
async fn lists_page_by_cursor_until_the_cursor_is_empty() {
    let fake = FakeSlack::start(TOKEN).await;
    for i in 0..5 {
        fake.add_user(&format!("U{i}"), &format!("user{i}"), &format!("User {i}"));
    }
    fake.set_page_size(2);
    let mut s = fake.state();
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = get(
            &mut s,
            "users.list",
            &[("limit", "200"), ("cursor", &cursor)],
        );
        seen.extend(
            page["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["id"].clone()),
        );
        cursor = page["response_metadata"]["next_cursor"]
            .as_str()
            .unwrap()
            .to_owned();
        if cursor.is_empty() {
            break;
        }
    }
    assert_eq!(seen, ["U0", "U1", "U2", "U3", "U4"]);
    assert_eq!(
        get(&mut s, "users.list", &[("cursor", "bm9wZQ==")])["error"],
        "invalid_cursor"
    );
}

#[tokio::test]
async fn history_is_newest_first_within_the_window_and_threads_repeat_their_parent() {
    let fake = FakeSlack::start(TOKEN).await;
    fake.add_channel("C1", "general", false, true);
    fake.add_channel("C2", "random", false, false);
    fake.add_channel("G3", "secret", true, true);
    let first = fake.post("C1", "U1", "first");
    let second = fake.post("C1", "U1", "second");
    let reply = fake.reply("C1", &first, "U2", "a reply");
    fake.edit("C1", &second, "second, fixed");
    let mut s = fake.state();

    let listed = get(&mut s, "conversations.list", &[]);
    assert_eq!(
        listed["channels"].as_array().unwrap().len(),
        2,
        "public only by default"
    );
    let listed = get(
        &mut s,
        "conversations.list",
        &[("types", "public_channel,private_channel")],
    );
    assert_eq!(listed["channels"].as_array().unwrap().len(), 3);

    let page = get(&mut s, "conversations.history", &[("channel", "C1")]);
    let texts: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["second, fixed", "first"]);
    assert!(page["messages"][0]["edited"].is_object());
    assert_eq!(page["messages"][1]["reply_count"], 1);
    let newer = get(
        &mut s,
        "conversations.history",
        &[("channel", "C1"), ("oldest", &first)],
    );
    assert_eq!(newer["messages"].as_array().unwrap().len(), 1);

    let thread = get(
        &mut s,
        "conversations.replies",
        &[("channel", "C1"), ("ts", &first)],
    );
    let ts: Vec<&str> = thread["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["ts"].as_str().unwrap())
        .collect();
    assert_eq!(ts, [first.as_str(), reply.as_str()]);
    assert_eq!(thread["messages"][1]["thread_ts"], json!(first));

    assert_eq!(
        get(&mut s, "conversations.history", &[("channel", "C2")])["error"],
        "not_in_channel"
    );
    assert_eq!(
        get(&mut s, "conversations.history", &[("channel", "C9")])["error"],
        "channel_not_found"
    );
    assert_eq!(
        get(
            &mut s,
            "conversations.replies",
            &[("channel", "C1"), ("ts", "1.000100")]
        )["error"],
        "thread_not_found"
    );
}

#[tokio::test]
async fn switches_answer_once_then_the_fake_answers_normally() {
    let fake = FakeSlack::start(TOKEN).await;
    fake.add_channel("C1", "general", false, true);
    fake.rate_limit_next("conversations.history", 1);
    fake.malform_next("conversations.history");
    let mut s = fake.state();
    let history = |s: &mut State| {
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {TOKEN}")).unwrap(),
        );
        answer(
            s,
            &FakeRequest {
                method: "GET".into(),
                path: "/conversations.history".into(),
                query: [("channel".to_owned(), "C1".to_owned())].into(),
                headers,
                body: Bytes::new(),
            },
        )
    };
    let limited = history(&mut s);
    assert_eq!(limited.status, 429);
    assert!(limited
        .headers
        .contains(&("retry-after".into(), "1".into())));
    let cut = history(&mut s);
    assert_eq!(cut.status, 200);
    assert!(serde_json::from_slice::<Value>(&cut.body).is_err());
    let fine = history(&mut s);
    assert_eq!(
        serde_json::from_slice::<Value>(&fine.body).unwrap()["ok"],
        true
    );
    drop(s);

    // A limit after two calls answered normally.
    fake.rate_limit_after("conversations.history", 2, 5);
    let mut s = fake.state();
    let statuses: Vec<u16> = (0..4).map(|_| history(&mut s).status).collect();
    assert_eq!(statuses, [200, 200, 429, 200]);
}

#[tokio::test]
async fn edits_and_deletes_reach_replies_too() {
    let fake = FakeSlack::start(TOKEN).await;
    fake.add_channel("C1", "general", false, true);
    let parent = fake.post("C1", "U1", "parent");
    let reply = fake.reply("C1", &parent, "U2", "reply");
    fake.edit("C1", &reply, "reply, fixed");
    {
        let s = fake.state();
        let r = &s.channels[0].messages[0].replies[0];
        assert_eq!(
            (r.text.as_str(), r.edited_ts.is_some()),
            ("reply, fixed", true)
        );
    }
    fake.delete("C1", &reply);
    assert!(fake.state().channels[0].messages[0].replies.is_empty());
    fake.delete("C1", &parent);
    assert!(fake.state().channels[0].messages.is_empty());
}

#[tokio::test]
async fn user_tokens_big_workspaces_membership_titles_and_odd_bodies_answer_as_asked() {
    let fake = FakeSlack::start(TOKEN).await;
    let ids: Vec<String> = (0..3).map(|i| format!("C{i}")).collect();
    let stamps = fake.add_channels_with_a_message(&ids, false, "U1", "hello");
    assert!(
        ts_number(&stamps[0]) < ts_number(&stamps[2]),
        "later is newer"
    );
    fake.add_channel("G9", "secret", true, false);
    fake.add_user("U1", "alice", "Alice Liddell");
    fake.set_title("U1", "Engineer");
    fake.malform_next_with("users.list", json!({"users": []}));
    let mut s = fake.state();

    let history =
        |s: &mut State, channel: &str| get(s, "conversations.history", &[("channel", channel)]);
    assert_eq!(history(&mut s, "C1")["error"], "not_in_channel");
    assert!(get(&mut s, "auth.test", &[])["bot_id"].is_string());
    drop(s);
    fake.answer_as_user_token();
    let mut s = fake.state();
    assert!(get(&mut s, "auth.test", &[]).get("bot_id").is_none());
    let read = history(&mut s, "C1");
    assert_eq!(read["messages"][0]["ts"], json!(stamps[1]));
    assert_eq!(
        history(&mut s, "G9")["error"],
        "not_in_channel",
        "a private channel still needs membership"
    );
    drop(s);
    fake.set_member("G9", true);
    fake.remove_channel("C0");
    let mut s = fake.state();
    assert_eq!(history(&mut s, "G9")["ok"], true);
    assert_eq!(history(&mut s, "C2")["messages"][0]["ts"], json!(stamps[2]));
    assert_eq!(history(&mut s, "C0")["error"], "channel_not_found");

    assert_eq!(
        get(&mut s, "users.list", &[]),
        json!({"ok": true, "users": []}),
        "the body asked for, once"
    );
    let users = get(&mut s, "users.list", &[]);
    assert_eq!(users["members"][0]["profile"]["title"], "Engineer");
    let last = s.calls.last().unwrap().clone();
    assert_eq!((last.http_method.as_str(), last.bearer), ("GET", true));
}

#[tokio::test]
async fn the_demo_workspace_has_people_channels_a_thread_and_an_edit() {
    let fake = FakeSlack::start(DEMO_TOKEN).await;
    fake.seed_demo_workspace();
    assert!(fake.base_url.starts_with("http://127.0.0.1:"));
    let s = fake.state();
    assert_eq!(s.users.len(), 4);
    assert_eq!(s.channels.len(), 3);
    assert_eq!(s.channels[0].messages[0].replies.len(), 2);
    assert!(s.channels[0].messages[1].edited_ts.is_some());
}

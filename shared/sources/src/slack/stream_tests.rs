//! The entity stream: the call each step makes, checkpoints and the cursor in a workspace of
//! 20,000 channels, and runs against a scripted Slack (paging, resume, failures, incremental).

use super::api::Call;
use super::stream::{
    entry_bytes, trim_latest, Step, CURSOR_BYTES, CURSOR_CHANNELS, CURSOR_TRIM_PERCENT, PAGE_LIMIT,
};
use super::tests::{msg, ok, scripted, slack_error, source_for, token, workspace, TOKEN};
use super::*;
use crate::testing::Reply;
use crate::upstream::http_client;
use domain::entity::Entity;
use domain::stream::EntityPage;
use serde_json::json;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

const EVERY_ID: [&str; 11] = [
    "U1",
    "U2",
    "U3",
    "C1",
    "C2",
    "G3",
    "C1:1700000300.000100",
    "C1:1700000200.000100",
    "C1:1700000250.000100",
    "C1:1700000260.000100",
    "C1:1700000100.000100",
];

fn request(since: Option<Value>, resume: Option<Value>) -> StreamRequest {
    StreamRequest {
        auth: token(TOKEN),
        config: Map::new(),
        cursor: since,
        checkpoint: resume,
        page_budget: crate::testing::PAGE_BUDGET,
    }
}

/// Pages until the end or the first error.
async fn pages(stream: &mut dyn EntityStream) -> (Vec<EntityPage>, Option<StreamError>) {
    let mut pages = Vec::new();
    loop {
        match stream.next_page().await {
            Ok(Some(page)) => pages.push(page),
            Ok(None) => return (pages, None),
            Err(e) => return (pages, Some(e)),
        }
    }
}

fn ids(pages: &[EntityPage]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|p| p.entities.iter().map(|e| e.entity_id.clone()))
        .collect()
}

fn every_id() -> Vec<String> {
    EVERY_ID.iter().map(|s| (*s).to_owned()).collect()
}

// --- the calls ---

fn stream_at(position: Checkpoint, since: Option<Cursor>, lookback_days: i64) -> SlackStream {
    SlackStream {
        client: http_client().unwrap(),
        base_url: BaseUrl::parse("https://slack.com/api").unwrap(),
        authorization: HeaderValue::from_static("Bearer x"),
        since,
        lookback_days,
        position,
    }
}

fn params(call: &Call) -> Vec<(&str, &str)> {
    call.params.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn each_step_asks_its_method_with_limit_cursor_and_window() {
    let mut position = Checkpoint::start();
    position.step = Step::Users {
        cursor: Some("dXNlcjpVMg==".into()),
    };
    let call = stream_at(position.clone(), None, 7).call().unwrap();
    assert_eq!(call.method, "users.list");
    assert_eq!(
        params(&call),
        [("limit", "200"), ("cursor", "dXNlcjpVMg==")]
    );

    position.step = Step::Channels { cursor: None };
    let call = stream_at(position.clone(), None, 7).call().unwrap();
    assert_eq!(call.method, "conversations.list");
    assert_eq!(
        params(&call),
        [
            ("types", "public_channel,private_channel"),
            ("exclude_archived", "false"),
            ("limit", "200")
        ]
    );

    position.channels = VecDeque::from(["C1".to_owned(), "C2".to_owned()]);
    position.step = Step::History { cursor: None };
    let since = Cursor {
        channels: BTreeMap::from([("C1".to_owned(), "1700000300.000100".to_owned())]),
    };
    let call = stream_at(position.clone(), Some(since.clone()), 0)
        .call()
        .unwrap();
    assert_eq!(call.method, "conversations.history");
    assert_eq!(
        params(&call),
        [
            ("channel", "C1"),
            ("oldest", "1700000300.000100"),
            ("limit", "200")
        ]
    );
    // A week of lookback re-reads recent threads for new replies and edits.
    let call = stream_at(position.clone(), Some(since.clone()), 7)
        .call()
        .unwrap();
    assert_eq!(params(&call)[1], ("oldest", "1699395500.000000"));
    // A full run, or a channel the last run did not read, reads the whole history.
    let call = stream_at(position.clone(), None, 7).call().unwrap();
    assert_eq!(params(&call), [("channel", "C1"), ("limit", "200")]);

    position.threads = VecDeque::from(["1700000200.000100".to_owned()]);
    position.step = Step::Replies {
        cursor: Some("bmV4dA==".into()),
    };
    let call = stream_at(position.clone(), Some(since), 7).call().unwrap();
    assert_eq!(call.method, "conversations.replies");
    assert_eq!(
        params(&call),
        [
            ("channel", "C1"),
            ("ts", "1700000200.000100"),
            ("limit", "200"),
            ("cursor", "bmV4dA==")
        ]
    );
    position.step = Step::Done;
    assert_eq!(stream_at(position, None, 7).call(), None);
}

// --- a workspace of any size ---

/// A run through a workspace of `count` channels a user token reads (listed 200 a page),
/// each with one message, channel `i`'s at second `i`: every answer is built here, no
/// network. The stream is rebuilt from its checkpoint every `resume_every` calls.
struct BigRun {
    /// The channels whose history was asked, in order, and whether with `oldest`.
    read: Vec<(String, bool)>,
    /// The largest checkpoint, serialized.
    largest_checkpoint: usize,
    cursor: Cursor,
}

fn big_run(ids: &[String], since: Option<Cursor>, resume_every: usize) -> BigRun {
    let index: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let ts = |i: usize| format!("{}.000100", 1_700_000_000 + i);
    let mut read = Vec::new();
    let mut answer = |call: &Call| -> Value {
        let param = |name: &str| {
            call.params
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        };
        match call.method {
            "auth.test" => {
                json!({"ok": true, "url": "https://big.slack.com/", "user_id": "U1"})
            }
            "users.list" => json!({"ok": true, "members": []}),
            "conversations.list" => {
                let start: usize = param("cursor").map_or(0, |c| c.parse().unwrap());
                let end = (start + PAGE_LIMIT as usize).min(ids.len());
                let channels: Vec<Value> = ids[start..end]
                    .iter()
                    .map(|id| json!({"id": id, "name": id.to_lowercase(), "is_member": false}))
                    .collect();
                let next = if end < ids.len() {
                    end.to_string()
                } else {
                    String::new()
                };
                json!({"ok": true, "channels": channels, "response_metadata": {"next_cursor": next}})
            }
            "conversations.history" => {
                let channel = param("channel").unwrap();
                read.push((channel.clone(), param("oldest").is_some()));
                let i = index[channel.as_str()];
                json!({"ok": true, "messages": [msg(&ts(i), "hello")], "has_more": false})
            }
            other => panic!("unexpected {other}"),
        }
    };
    let mut stream = stream_at(Checkpoint::start(), since.clone(), 7);
    let mut largest_checkpoint = 0;
    let mut calls = 0;
    let long_ids = ids[0].len() > 20;
    while let Some(call) = stream.call() {
        let body = answer(&call);
        stream.advance(&call, Ok(body)).unwrap();
        calls += 1;
        let position = &stream.position;
        let entries = position.latest.len();
        assert!(entries <= CURSOR_CHANNELS);
        assert!(position.channels.len() <= PAGE_LIMIT as usize);
        // Serializing every checkpoint would take minutes: the largest are measured (the
        // cursor so far at a bound, the call before it is trimmed), and every resumed one.
        let near_a_bound = entries == CURSOR_CHANNELS
            || long_ids && {
                let bytes: usize = position
                    .latest
                    .iter()
                    .map(|(id, ts)| entry_bytes(id, ts))
                    .sum();
                assert!(bytes <= CURSOR_BYTES);
                bytes + entry_bytes(&ids[0], &ts(0)) > CURSOR_BYTES
            };
        if near_a_bound || calls % resume_every == 0 {
            let checkpoint = serde_json::to_vec(position).unwrap();
            largest_checkpoint = largest_checkpoint.max(checkpoint.len());
            if calls % resume_every == 0 {
                // A new invocation: nothing but the checkpoint carries over.
                stream = SlackStream {
                    client: stream.client.clone(),
                    base_url: stream.base_url.clone(),
                    authorization: stream.authorization.clone(),
                    since: since.clone(),
                    lookback_days: 7,
                    position: serde_json::from_slice(&checkpoint).unwrap(),
                };
            }
        }
    }
    let cursor = serde_json::from_value(stream.cursor().unwrap()).unwrap();
    BigRun {
        read,
        largest_checkpoint,
        cursor,
    }
}

/// The ids of the `kept` most recent of `ids` (the last ones: channel `i` spoke at `i`).
fn most_recent(ids: &[String], kept: usize) -> Vec<String> {
    let mut recent = ids[ids.len() - kept..].to_vec();
    recent.sort();
    recent
}

#[test]
fn checkpoints_and_the_cursor_stay_small_in_a_workspace_of_20000_channels() {
    const LIMIT: usize = 200 * 1024;
    let ids: Vec<String> = (0..20_000).map(|i| format!("C{i:010}")).collect();
    let full = big_run(&ids, None, 211);
    let in_order: Vec<String> = full.read.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(
        in_order, ids,
        "every channel read once, in order, across resumes"
    );
    assert!(
        full.largest_checkpoint < LIMIT,
        "checkpoint of {} bytes",
        full.largest_checkpoint
    );
    let cursor = serde_json::to_vec(&full.cursor).unwrap();
    assert!(cursor.len() < LIMIT, "cursor of {} bytes", cursor.len());
    let kept = full.cursor.channels.len();
    assert!(
        (CURSOR_CHANNELS * CURSOR_TRIM_PERCENT / 100..=CURSOR_CHANNELS).contains(&kept),
        "{kept} channels in the cursor"
    );
    assert_eq!(
        full.cursor.channels.keys().cloned().collect::<Vec<_>>(),
        most_recent(&ids, kept),
        "the channels with the most recent activity are kept"
    );
}

#[test]
fn the_next_run_reads_in_full_only_the_channels_the_cursor_dropped() {
    let ids: Vec<String> = (0..6_000).map(|i| format!("C{i:010}")).collect();
    let first = big_run(&ids, None, 97);
    let in_cursor: Vec<String> = first.cursor.channels.keys().cloned().collect();
    assert!(in_cursor.len() < ids.len());

    // The remembered channels are asked from their newest message on, the others in
    // full; none is skipped or read twice across resumes.
    let next = big_run(&ids, Some(first.cursor.clone()), 89);
    let in_order: Vec<String> = next.read.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(in_order, ids);
    let windowed: Vec<String> = next
        .read
        .iter()
        .filter(|(_, oldest)| *oldest)
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(windowed, in_cursor);
    assert!(next.largest_checkpoint < 200 * 1024);
    assert_eq!(next.cursor, first.cursor, "nothing new: the same cursor");
}

#[test]
fn long_channel_ids_are_bounded_by_bytes_too() {
    let ids: Vec<String> = (0..4_000).map(|i| format!("C{i:063}")).collect();
    let run = big_run(&ids, None, 53);
    assert_eq!(run.read.len(), ids.len());
    let cursor = serde_json::to_vec(&run.cursor).unwrap();
    assert!(
        cursor.len() <= CURSOR_BYTES,
        "cursor of {} bytes",
        cursor.len()
    );
    assert!(run.largest_checkpoint < 200 * 1024);
    let kept = run.cursor.channels.len();
    assert!(kept < CURSOR_CHANNELS / 2, "{kept} channels");
    assert_eq!(
        run.cursor.channels.keys().cloned().collect::<Vec<_>>(),
        most_recent(&ids, kept)
    );
}

#[test]
fn trimming_spares_the_channel_being_read() {
    let mut latest: BTreeMap<String, String> = (0..=CURSOR_CHANNELS)
        .map(|i| (format!("C{i:06}"), format!("{}.000100", 1_700_000_000 + i)))
        .collect();
    trim_latest(&mut latest, Some("C000000"));
    assert_eq!(latest.len(), CURSOR_CHANNELS * CURSOR_TRIM_PERCENT / 100);
    assert!(latest.contains_key("C000000"), "spared though the oldest");
    assert!(!latest.contains_key("C000001"));
    assert!(latest.contains_key(&format!("C{CURSOR_CHANNELS:06}")));
    let before = latest.clone();
    trim_latest(&mut latest, None);
    assert_eq!(latest, before, "within bounds: nothing dropped");
}

// --- streams on the wire ---

#[tokio::test]
async fn a_full_run_pages_through_users_channels_history_and_threads() {
    let fake = scripted(workspace).await;
    let source = source_for(&fake);
    let mut stream = source.open_stream(request(None, None)).unwrap();
    assert!(fake.seen().is_empty(), "opening does no I/O");

    let (pages, error) = pages(stream.as_mut()).await;
    assert_eq!(error, None);
    assert_eq!(ids(&pages), every_id());
    let per_page: Vec<usize> = pages.iter().map(|p| p.entities.len()).collect();
    // One call per page; the last call (the channel the bot left) ends the stream.
    assert_eq!(per_page, [2, 1, 3, 2, 2, 1]);
    assert!(!stream.incremental());
    assert_eq!(
        stream.cursor(),
        Some(json!({"channels": {"C1": "1700000300.000100"}})),
        "the newest top-level message; the private channel the bot left is not in it"
    );

    let seen = fake.seen();
    let methods: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(
        methods,
        [
            "/auth.test",
            "/users.list",
            "/users.list",
            "/conversations.list",
            "/conversations.history",
            "/conversations.replies",
            "/conversations.history",
            "/conversations.history",
        ],
        "no history of the channel the bot is not in"
    );
    let bearer = format!("Bearer {TOKEN}");
    assert!(seen
        .iter()
        .all(|s| s.method == "GET" && s.header("authorization") == Some(bearer.as_str())));

    let all: Vec<&Entity> = pages.iter().flat_map(|p| &p.entities).collect();
    let reply = all
        .iter()
        .find(|e| e.entity_id == "C1:1700000250.000100")
        .unwrap();
    assert_eq!(reply.payload["thread_ts"], "1700000200.000100");
    assert_eq!(reply.payload["user"], "U2");
    let edited = all
        .iter()
        .find(|e| e.entity_id == "C1:1700000300.000100")
        .unwrap();
    assert_eq!(edited.payload["edited"], true);
    assert_eq!(
        edited.payload["url"],
        "https://acme.slack.com/archives/C1/p1700000300000100"
    );
    let alice = all.iter().find(|e| e.entity_id == "U1").unwrap();
    assert_eq!(alice.title, "Alice Liddell");
    assert_eq!(alice.payload["title"], "Engineer");
    let general = all.iter().find(|e| e.entity_id == "C1").unwrap();
    assert_eq!(general.title, "#general");
    assert_eq!(general.payload["topic"], "Company news");
    assert_eq!(general.payload["url"], "https://acme.slack.com/archives/C1");
}

#[tokio::test]
async fn a_resumed_stream_goes_on_after_the_checkpoint() {
    let fake = scripted(workspace).await;
    let source = source_for(&fake);
    let mut first = source.open_stream(request(None, None)).unwrap();
    let mut before = Vec::new();
    for _ in 0..4 {
        before.push(first.next_page().await.unwrap().unwrap());
    }
    let checkpoint = before.last().unwrap().checkpoint.clone();
    drop(first);

    // A new invocation: the fake answers the calls after the fourth page's.
    let mut resumed = source.open_stream(request(None, Some(checkpoint))).unwrap();
    let (after, error) = pages(resumed.as_mut()).await;
    assert_eq!(error, None);
    let mut all = ids(&before);
    all.extend(ids(&after));
    assert_eq!(all, every_id(), "nothing skipped, nothing repeated");
    assert_eq!(
        resumed.cursor(),
        Some(json!({"channels": {"C1": "1700000300.000100"}})),
        "the cursor carries over the checkpoint"
    );
    assert_eq!(fake.seen().len(), 8, "no call repeated");

    let garbage = source.open_stream(request(None, Some(json!({"read": "nowhere"}))));
    assert!(matches!(garbage, Err(StreamError::Malformed(_))));
}

#[tokio::test]
async fn a_rate_limited_call_is_retried_by_the_resumed_stream() {
    let fake = scripted(|method, n| match (method, n) {
        ("conversations.history", 0) => Reply::status(429)
            .header("retry-after", "1")
            .json(json!({"ok": false, "error": "ratelimited"})),
        ("conversations.history", n) => workspace(method, n - 1),
        _ => workspace(method, n),
    })
    .await;
    let source = source_for(&fake);
    let mut stream = source.open_stream(request(None, None)).unwrap();
    let (before, error) = pages(stream.as_mut()).await;
    assert_eq!(
        error,
        Some(StreamError::RateLimited {
            wait: Duration::from_secs(1)
        })
    );
    let checkpoint = before.last().unwrap().checkpoint.clone();
    let mut resumed = source.open_stream(request(None, Some(checkpoint))).unwrap();
    let (after, error) = pages(resumed.as_mut()).await;
    assert_eq!(error, None);
    let mut all = ids(&before);
    all.extend(ids(&after));
    assert_eq!(all, every_id());
}

#[tokio::test]
async fn a_revoked_token_stops_the_run_as_rejected() {
    let fake = scripted(|method, n| match method {
        "users.list" if n == 1 => slack_error("token_revoked"),
        _ => workspace(method, n),
    })
    .await;
    let mut stream = source_for(&fake).open_stream(request(None, None)).unwrap();
    let (pages, error) = pages(stream.as_mut()).await;
    assert_eq!(pages.len(), 1);
    assert_eq!(
        error,
        Some(StreamError::Rejected(
            "users.list answered token_revoked".into()
        ))
    );
}

#[tokio::test]
async fn a_malformed_page_fails_without_quoting_it() {
    let fake = scripted(|method, n| match method {
        "conversations.history" => Reply::status(200)
            .header("content-type", "application/json")
            .text(&format!(r#"{{"ok": true, "messages": [{{"text": "{TOKEN}"#)),
        _ => workspace(method, n),
    })
    .await;
    let mut stream = source_for(&fake).open_stream(request(None, None)).unwrap();
    let (_, error) = pages(stream.as_mut()).await;
    let Some(StreamError::Malformed(m)) = error else {
        panic!("malformed, got {error:?}");
    };
    assert_eq!(m, "the answer to conversations.history is not JSON");

    let fake = scripted(|method, n| match method {
        "users.list" => ok(json!({"ok": true, "users": []})),
        _ => workspace(method, n),
    })
    .await;
    let mut stream = source_for(&fake).open_stream(request(None, None)).unwrap();
    assert_eq!(
        pages(stream.as_mut()).await.1,
        Some(StreamError::Malformed(
            "the answer to users.list has no members list".into()
        ))
    );
}

#[tokio::test]
async fn an_incremental_run_moves_the_cursor_only_where_there_is_news() {
    // The last run saw C1 up to ...300 and G3 up to ...050; this run finds one new message
    // in C1 (history is newest first) and nothing in G3.
    let fake = scripted(|method, n| match (method, n) {
        ("conversations.history", 0) => ok(json!({
            "ok": true,
            "messages": [msg("1700000900.000100", "news"), msg("1700000300.000100", "third")],
            "has_more": false
        })),
        ("conversations.history", 1) => ok(json!({"ok": true, "messages": [], "has_more": false})),
        _ => workspace(method, n),
    })
    .await;
    let since = json!({"channels": {"C1": "1700000300.000100", "G3": "1700000050.000100", "C9": "1600000000.000100"}});
    let mut stream = source_for(&fake)
        .open_stream(request(Some(since), None))
        .unwrap();
    let (pages, error) = pages(stream.as_mut()).await;
    assert_eq!(error, None);
    assert!(stream.incremental());
    assert!(ids(&pages).contains(&"C1:1700000900.000100".to_owned()));
    assert_eq!(
        stream.cursor(),
        Some(json!({"channels": {"C1": "1700000900.000100", "G3": "1700000050.000100"}})),
        "a channel no longer listed leaves the cursor"
    );

    // A cursor of another shape runs a full sync.
    let stream = source_for(&fake)
        .open_stream(request(Some(json!("v0")), None))
        .unwrap();
    assert!(!stream.incremental());
}

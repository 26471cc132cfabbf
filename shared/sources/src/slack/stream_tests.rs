//! The entity stream: the call each step makes, checkpoints and the cursor in a workspace of
//! 20,000 channels, and runs against the fake Slack (`fakes::slack`: paging, resume, failures,
//! incremental).

use super::api::Call;
use super::stream::{
    entry_bytes, trim_latest, Step, CURSOR_BYTES, CURSOR_CHANNELS, CURSOR_TRIM_PERCENT, PAGE_LIMIT,
};
use super::tests::{source_for, token, workspace, Workspace, TOKEN};
use super::*;
use crate::upstream::http_client;
use domain::entity::Entity;
use domain::stream::EntityPage;
use fakes::slack::{FakeSlack, TEAM_URL};
use serde_json::json;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

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

/// Every id of the small workspace, in the order a run yields them: the users, the first page
/// of channels, #general's messages (newest first, a thread's replies after its parent), then
/// the second page of channels.
fn every_id(w: &Workspace) -> Vec<String> {
    let message = |ts: &String| format!("C1:{ts}");
    let mut all: Vec<String> = ["U1", "U2", "U3", "C1", "C2"].map(String::from).into();
    all.extend([&w.third, &w.thread, &w.replies[0], &w.replies[1], &w.first].map(message));
    all.push("G3".into());
    all
}

// --- the calls ---

fn stream_at(
    base_url: &str,
    position: Checkpoint,
    since: Option<Cursor>,
    lookback_days: i64,
) -> SlackStream {
    SlackStream {
        client: http_client().unwrap(),
        base_url: BaseUrl::parse(base_url).unwrap(),
        authorization: HeaderValue::from_str(&format!("Bearer {TOKEN}")).unwrap(),
        since,
        lookback_days,
        position,
    }
}

fn params(call: &Call) -> Vec<(&str, &str)> {
    call.params.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Where the streams of the tests that make no call would send them.
const SLACK: &str = "https://slack.com/api";

#[test]
fn each_step_asks_its_method_with_limit_cursor_and_window() {
    let mut position = Checkpoint::start();
    position.step = Step::Users {
        cursor: Some("dXNlcjpVMg==".into()),
    };
    let call = stream_at(SLACK, position.clone(), None, 7).call().unwrap();
    assert_eq!(call.method, "users.list");
    assert_eq!(
        params(&call),
        [("limit", "200"), ("cursor", "dXNlcjpVMg==")]
    );

    position.step = Step::Channels { cursor: None };
    let call = stream_at(SLACK, position.clone(), None, 7).call().unwrap();
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
    let call = stream_at(SLACK, position.clone(), Some(since.clone()), 0)
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
    let call = stream_at(SLACK, position.clone(), Some(since.clone()), 7)
        .call()
        .unwrap();
    assert_eq!(params(&call)[1], ("oldest", "1699395500.000000"));
    // A full run, or a channel the last run did not read, reads the whole history.
    let call = stream_at(SLACK, position.clone(), None, 7).call().unwrap();
    assert_eq!(params(&call), [("channel", "C1"), ("limit", "200")]);

    position.threads = VecDeque::from(["1700000200.000100".to_owned()]);
    position.step = Step::Replies {
        cursor: Some("bmV4dA==".into()),
    };
    let call = stream_at(SLACK, position.clone(), Some(since), 7)
        .call()
        .unwrap();
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
    assert_eq!(stream_at(SLACK, position, None, 7).call(), None);
}

// --- a workspace of any size ---

/// A workspace of `ids.len()` public channels in the fake, which the token reads as a user
/// token (without being a member), each with one message: the later a channel, the newer its
/// message.
struct Big {
    fake: FakeSlack,
    ids: Vec<String>,
    /// The ts of each channel's message.
    stamps: Vec<String>,
}

async fn big_workspace(ids: Vec<String>) -> Big {
    let fake = FakeSlack::start(TOKEN).await;
    fake.answer_as_user_token();
    let stamps = fake.add_channels_with_a_message(&ids, false, "U1", "hello");
    Big { fake, ids, stamps }
}

/// A run through a big workspace (listed 200 a page), one call at a time against the fake.
/// The stream is rebuilt from its checkpoint every `resume_every` calls.
struct BigRun {
    /// The channels whose history was asked, in order, and whether with `oldest`.
    read: Vec<(String, bool)>,
    /// The largest checkpoint, serialized.
    largest_checkpoint: usize,
    cursor: Cursor,
}

async fn big_run(big: &Big, since: Option<Cursor>, resume_every: usize) -> BigRun {
    let asked_before = big.fake.calls_of("conversations.history").len();
    let mut stream = stream_at(&big.fake.base_url, Checkpoint::start(), since.clone(), 7);
    let mut largest_checkpoint = 0;
    let mut calls = 0;
    let long_ids = big.ids[0].len() > 20;
    let one_entry = entry_bytes(&big.ids[0], &big.stamps[0]);
    while let Some(call) = stream.call() {
        let answer = stream.send(&call).await;
        stream.advance(&call, answer).unwrap();
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
                bytes + one_entry > CURSOR_BYTES
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
    let read = big.fake.calls_of("conversations.history")[asked_before..]
        .iter()
        .map(|params| (params["channel"].clone(), params.contains_key("oldest")))
        .collect();
    BigRun {
        read,
        largest_checkpoint,
        cursor,
    }
}

/// The ids of the `kept` most recent of `ids` (the last ones: the later a channel, the newer
/// its message).
fn most_recent(ids: &[String], kept: usize) -> Vec<String> {
    let mut recent = ids[ids.len() - kept..].to_vec();
    recent.sort();
    recent
}

#[tokio::test]
async fn checkpoints_and_the_cursor_stay_small_in_a_workspace_of_20000_channels() {
    const LIMIT: usize = 200 * 1024;
    let big = big_workspace((0..20_000).map(|i| format!("C{i:010}")).collect()).await;
    let full = big_run(&big, None, 211).await;
    let in_order: Vec<String> = full.read.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(
        in_order, big.ids,
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
        most_recent(&big.ids, kept),
        "the channels with the most recent activity are kept"
    );
}

#[tokio::test]
async fn the_next_run_reads_in_full_only_the_channels_the_cursor_dropped() {
    let big = big_workspace((0..6_000).map(|i| format!("C{i:010}")).collect()).await;
    let first = big_run(&big, None, 97).await;
    let in_cursor: Vec<String> = first.cursor.channels.keys().cloned().collect();
    assert!(in_cursor.len() < big.ids.len());

    // The remembered channels are asked from their newest message on, the others in
    // full; none is skipped or read twice across resumes.
    let next = big_run(&big, Some(first.cursor.clone()), 89).await;
    let in_order: Vec<String> = next.read.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(in_order, big.ids);
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

#[tokio::test]
async fn long_channel_ids_are_bounded_by_bytes_too() {
    let big = big_workspace((0..4_000).map(|i| format!("C{i:063}")).collect()).await;
    let run = big_run(&big, None, 53).await;
    assert_eq!(run.read.len(), big.ids.len());
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
        most_recent(&big.ids, kept)
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
    let w = workspace().await;
    // A message in the private channel, which the bot is removed from between the list and
    // its history.
    w.fake.post("G3", "U1", "a secret");
    let source = source_for(&w.fake);
    let mut stream = source.open_stream(request(None, None)).unwrap();
    assert!(w.fake.calls().is_empty(), "opening does no I/O");

    let mut pages = Vec::new();
    while let Some(page) = stream.next_page().await.unwrap() {
        if page.entities.iter().any(|e| e.entity_id == "G3") {
            w.fake.set_member("G3", false);
        }
        pages.push(page);
    }
    assert_eq!(ids(&pages), every_id(&w));
    let per_page: Vec<usize> = pages.iter().map(|p| p.entities.len()).collect();
    // One call per page, two items a page; the last call (the channel the bot left) ends the
    // stream.
    assert_eq!(per_page, [2, 1, 2, 2, 2, 1, 1]);
    assert!(!stream.incremental());
    assert_eq!(
        stream.cursor(),
        Some(json!({"channels": {"C1": w.third}})),
        "the newest top-level message; the private channel the bot left is not in it"
    );

    let calls = w.fake.calls();
    let methods: Vec<String> = calls
        .iter()
        .map(|c| {
            let channel = c.params.get("channel").cloned().unwrap_or_default();
            format!("{} {channel}", c.method).trim_end().to_owned()
        })
        .collect();
    assert_eq!(
        methods,
        [
            "auth.test",
            "users.list",
            "users.list",
            "conversations.list",
            "conversations.history C1",
            "conversations.replies C1",
            "conversations.history C1",
            "conversations.list",
            "conversations.history G3",
        ],
        "no history of the channel the bot is not in"
    );
    assert!(calls.iter().all(|c| c.http_method == "GET" && c.bearer));

    let all: Vec<&Entity> = pages.iter().flat_map(|p| &p.entities).collect();
    let find = |id: String| *all.iter().find(|e| e.entity_id == id).unwrap();
    let reply = find(format!("C1:{}", w.replies[0]));
    assert_eq!(reply.payload["thread_ts"], w.thread.as_str());
    assert_eq!(reply.payload["user"], "U2");
    let edited = find(format!("C1:{}", w.third));
    assert_eq!(edited.payload["edited"], true);
    assert_eq!(edited.payload["text"], "third, fixed");
    assert_eq!(
        edited.payload["url"],
        format!("{TEAM_URL}archives/C1/p{}", w.third.replace('.', ""))
    );
    let alice = find("U1".into());
    assert_eq!(alice.title, "Alice Liddell");
    assert_eq!(alice.payload["title"], "Engineer");
    let general = find("C1".into());
    assert_eq!(general.title, "#general");
    assert_eq!(general.payload["topic"], "Company news");
    assert_eq!(general.payload["url"], format!("{TEAM_URL}archives/C1"));
}

#[tokio::test]
async fn a_resumed_stream_goes_on_after_the_checkpoint() {
    let w = workspace().await;
    let source = source_for(&w.fake);
    let mut first = source.open_stream(request(None, None)).unwrap();
    let mut before = Vec::new();
    for _ in 0..4 {
        before.push(first.next_page().await.unwrap().unwrap());
    }
    let checkpoint = before.last().unwrap().checkpoint.clone();
    drop(first);

    // A new invocation: it makes the calls after the fourth page's.
    let mut resumed = source.open_stream(request(None, Some(checkpoint))).unwrap();
    let (after, error) = pages(resumed.as_mut()).await;
    assert_eq!(error, None);
    let mut all = ids(&before);
    all.extend(ids(&after));
    assert_eq!(all, every_id(&w), "nothing skipped, nothing repeated");
    assert_eq!(
        resumed.cursor(),
        Some(json!({"channels": {"C1": w.third}})),
        "the cursor carries over the checkpoint"
    );
    assert_eq!(w.fake.calls().len(), 9, "no call repeated");

    let garbage = source.open_stream(request(None, Some(json!({"read": "nowhere"}))));
    assert!(matches!(garbage, Err(StreamError::Malformed(_))));
}

#[tokio::test]
async fn a_rate_limited_call_is_retried_by_the_resumed_stream() {
    let w = workspace().await;
    w.fake.rate_limit_next("conversations.history", 1);
    let source = source_for(&w.fake);
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
    assert_eq!(all, every_id(&w));
}

#[tokio::test]
async fn a_revoked_token_stops_the_run_as_rejected() {
    let w = workspace().await;
    let mut stream = source_for(&w.fake)
        .open_stream(request(None, None))
        .unwrap();
    let first = stream.next_page().await.unwrap();
    assert!(first.is_some());
    // The user revokes the app between two pages of users.
    w.fake.revoke_token();
    let (pages, error) = pages(stream.as_mut()).await;
    assert!(pages.is_empty());
    assert_eq!(
        error,
        Some(StreamError::Rejected(
            "users.list answered token_revoked".into()
        ))
    );
}

#[tokio::test]
async fn a_malformed_page_fails_without_quoting_it() {
    let w = workspace().await;
    w.fake.malform_next("conversations.history");
    let mut stream = source_for(&w.fake)
        .open_stream(request(None, None))
        .unwrap();
    let (_, error) = pages(stream.as_mut()).await;
    let Some(StreamError::Malformed(m)) = error else {
        panic!("malformed, got {error:?}");
    };
    assert_eq!(m, "the answer to conversations.history is not JSON");

    let w = workspace().await;
    w.fake
        .malform_next_with("users.list", json!({"users": [{"id": TOKEN}]}));
    let mut stream = source_for(&w.fake)
        .open_stream(request(None, None))
        .unwrap();
    assert_eq!(
        pages(stream.as_mut()).await.1,
        Some(StreamError::Malformed(
            "the answer to users.list has no members list".into()
        ))
    );
}

#[tokio::test]
async fn an_incremental_run_moves_the_cursor_only_where_there_is_news() {
    // The last run saw #general up to its third message and #secret up to an old one; since,
    // one new message came in #general and nothing in #secret.
    let w = workspace().await;
    let news = w.fake.post("C1", "U2", "news");
    let since =
        json!({"channels": {"C1": w.third, "G3": "1700000050.000100", "C9": "1600000000.000100"}});
    let mut stream = source_for(&w.fake)
        .open_stream(request(Some(since), None))
        .unwrap();
    let (pages, error) = pages(stream.as_mut()).await;
    assert_eq!(error, None);
    assert!(stream.incremental());
    assert!(ids(&pages).contains(&format!("C1:{news}")));
    assert_eq!(
        stream.cursor(),
        Some(json!({"channels": {"C1": news, "G3": "1700000050.000100"}})),
        "a channel no longer listed leaves the cursor"
    );
    let asked: Vec<Option<String>> = w
        .fake
        .calls_of("conversations.history")
        .into_iter()
        .map(|params| params.get("oldest").cloned())
        .collect();
    assert!(asked.iter().all(Option::is_some), "{asked:?}");

    // A cursor of another shape runs a full sync.
    let stream = source_for(&w.fake)
        .open_stream(request(Some(json!("v0")), None))
        .unwrap();
    assert!(!stream.incremental());
}

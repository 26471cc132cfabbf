//! The `slack` source end to end: the API creates a connection whose bot token the fake Slack
//! checks (`auth.test`), the worker syncs users, channels, messages and thread replies page by
//! page from the fake's Web API, and the API shows what a user would see.

use crate::helpers::app::{problem, TestApp};
use crate::helpers::syncing::{
    self, app_with_source, assert_failed_plainly, assert_reauth_needed, connection, counts, create,
    drain, entities, jobs, keys, run_and_wait,
};
use fakes::slack::FakeSlack;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

const TOKEN: &str = "xoxb-e2e-0000000000-slackSecretToken0451";

/// The fake's workspace, in pages of 2: three people, a channel the bot reads with five messages
/// (the first with a three-reply thread), a private one with two, and one the bot is not in.
struct Seeded {
    fake: FakeSlack,
    /// The thread's parent in #general, and one of its replies.
    thread: String,
    reply: String,
    /// The newest message of #general.
    newest: String,
}

async fn seeded() -> (Seeded, TestApp) {
    let fake = FakeSlack::start(TOKEN).await;
    fake.set_page_size(2);
    fake.add_user("U1", "alice", "Alice Liddell");
    fake.add_user("U2", "bob", "Bob Builder");
    fake.add_user("U3", "carol", "Carol Danvers");
    fake.add_channel("C1", "general", false, true);
    fake.add_channel("C2", "random", false, false);
    fake.add_channel("G3", "leads", true, true);
    let thread = fake.post("C1", "U1", "The launch moves to Thursday");
    let mut reply = String::new();
    for (i, user) in ["U2", "U3", "U2"].into_iter().enumerate() {
        let ts = fake.reply("C1", &thread, user, &format!("Reply {i} about the launch"));
        if i == 1 {
            reply = ts;
        }
    }
    let mut newest = String::new();
    for i in 2..=5 {
        newest = fake.post("C1", "U2", &format!("General message {i}"));
    }
    fake.post("C2", "U3", "Anyone seen my umbrella?");
    fake.post("G3", "U1", "Hiring plan draft");
    fake.post("G3", "U1", "Budget review on Monday");
    let app = app_with_source("slack", &fake.base_url).await;
    (
        Seeded {
            fake,
            thread,
            reply,
            newest,
        },
        app,
    )
}

/// 3 users, 3 channels, 5 + 3 messages in #general, 2 in #leads; nothing of #random's history.
const SEEDED_TOTAL: u64 = 16;

fn body(token: &str) -> Value {
    json!({
        "short_name": "slack",
        "readable_collection_id": "docs",
        "authentication": {"access_token": token},
    })
}

/// Creates the connection (its first job queued) and runs the worker until quiet.
async fn create_and_sync(app: &TestApp) -> (String, Value) {
    syncing::create_and_sync(app, &body(TOKEN)).await
}

fn message_key(channel: &str, ts: &str) -> String {
    format!("slack_message#{channel}:{ts}")
}

#[tokio::test]
async fn a_sync_over_many_pages_lists_every_item_of_the_workspace() {
    let (w, app) = seeded().await;
    let (id, job) = create_and_sync(&app).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(counts(&job), [SEEDED_TOTAL, 0, 0, 0, 0]);

    let all = entities(&app, &id).await;
    let stored = keys(&all);
    assert_eq!(stored.len() as u64, SEEDED_TOTAL);
    for expected in [
        "slack_user#U1",
        "slack_user#U3",
        "slack_channel#C1",
        "slack_channel#C2",
        "slack_channel#G3",
    ] {
        assert!(stored.contains(expected), "{expected} in {stored:?}");
    }
    assert!(stored.contains(&message_key("C1", &w.reply)));
    assert!(
        !stored.iter().any(|k| k.starts_with("slack_message#C2:")),
        "no history of a channel the bot is not in"
    );

    // Paged as Slack pages: history of #general in three pages of two, the thread in two.
    let general: Vec<_> = w
        .fake
        .calls_of("conversations.history")
        .into_iter()
        .filter(|p| p.get("channel").map(String::as_str) == Some("C1"))
        .collect();
    assert_eq!(general.len(), 3, "{general:?}");
    assert!(!general[0].contains_key("cursor") && general[2].contains_key("cursor"));
    assert!(
        general.iter().all(|p| !p.contains_key("oldest")),
        "a first sync reads everything"
    );
    assert_eq!(w.fake.calls_of("conversations.replies").len(), 2);
    assert_eq!(w.fake.calls_of("users.list").len(), 2);

    // What a user searches for is there.
    let reply = all
        .iter()
        .find(|e| e["entity_id"] == format!("C1:{}", w.reply))
        .unwrap();
    assert_eq!(reply["type"], "slack_message");
    assert_eq!(reply["title"], "Reply 1 about the launch");
    assert_eq!(reply["payload"]["user"], "U3");
    assert_eq!(reply["payload"]["channel"], "C1");
    assert_eq!(reply["payload"]["thread_ts"], w.thread.as_str());
    assert_eq!(reply["payload"]["edited"], false);
    let link = reply["payload"]["url"].as_str().unwrap();
    assert!(
        link.starts_with("https://fake-workspace.slack.com/archives/C1/p")
            && link.ends_with(&format!("?thread_ts={}&cid=C1", w.thread)),
        "{link}"
    );
    let general = all.iter().find(|e| e["entity_id"] == "C1").unwrap();
    assert_eq!(general["title"], "#general");
    assert!(general["payload"].get("num_members").is_none());
    let alice = all.iter().find(|e| e["entity_id"] == "U1").unwrap();
    assert_eq!(alice["title"], "Alice Liddell");

    let c = connection(&app, &id).await;
    assert_eq!(c["status"], "active");
    assert_eq!(c["entities"]["total_entities"], SEEDED_TOTAL);
    assert!(!all.iter().any(|e| e.to_string().contains(TOKEN)));
}

#[tokio::test]
async fn a_rate_limited_page_defers_the_job_and_the_sync_completes() {
    let (w, app) = seeded().await;
    w.fake.rate_limit_next("conversations.history", 1);
    let created = create(&app, &body(TOKEN)).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let handled = drain(&app, Duration::from_secs(3)).await;
    assert!(
        handled >= 2,
        "the job went on in a deferred message ({handled})"
    );

    let job = jobs(&app, &id).await.remove(0);
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(counts(&job), [SEEDED_TOTAL, 0, 0, 0, 0]);
    assert_eq!(entities(&app, &id).await.len() as u64, SEEDED_TOTAL);
    let history = w.fake.calls_of("conversations.history");
    assert_eq!(history[0], history[1], "the limited page is asked again");
    assert_eq!(connection(&app, &id).await["status"], "active");
}

#[tokio::test]
async fn a_sync_resumed_between_pages_of_channels_reads_each_channel_once() {
    let (w, app) = seeded().await;
    // Each page of channels is read before the next is listed; the second page (#leads) is
    // rate-limited, after #general was read.
    w.fake.rate_limit_after("conversations.list", 1, 1);
    let created = create(&app, &body(TOKEN)).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let handled = drain(&app, Duration::from_secs(3)).await;
    assert!(
        handled >= 2,
        "the job went on in a deferred message ({handled})"
    );

    let job = jobs(&app, &id).await.remove(0);
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(counts(&job), [SEEDED_TOTAL, 0, 0, 0, 0]);
    assert_eq!(entities(&app, &id).await.len() as u64, SEEDED_TOTAL);
    let calls: Vec<String> = w
        .fake
        .calls()
        .into_iter()
        .filter(|c| c.method.starts_with("conversations."))
        .map(|c| {
            let channel = c.params.get("channel").cloned().unwrap_or_default();
            format!("{} {channel}", c.method).trim_end().to_owned()
        })
        .collect();
    assert_eq!(
        calls,
        [
            "conversations.list",
            "conversations.history C1",
            "conversations.history C1",
            "conversations.history C1",
            "conversations.replies C1",
            "conversations.replies C1",
            "conversations.list",
            "conversations.list",
            "conversations.history G3",
        ],
        "the limited page asked again, no channel read twice"
    );
    let lists = w.fake.calls_of("conversations.list");
    assert_eq!(lists[1], lists[2]);
    assert!(lists[1].contains_key("cursor"));
}

#[tokio::test]
async fn a_revoked_token_fails_the_job_and_asks_for_reauthentication() {
    let (w, app) = seeded().await;
    let created = create(&app, &body(TOKEN)).await;
    let id = created["id"].as_str().unwrap().to_owned();
    w.fake.revoke_token();
    drain(&app, Duration::from_secs(3)).await;

    let job = assert_reauth_needed(&app, &id, "oauth_credentials_expired", &[TOKEN]).await;
    assert!(
        job["error"].as_str().unwrap().contains("token_revoked"),
        "{job}"
    );
}

#[tokio::test]
async fn a_malformed_page_fails_the_job_with_a_clear_error() {
    let (w, app) = seeded().await;
    w.fake.malform_next("conversations.history");
    let (id, _) = create_and_sync(&app).await;
    let job = assert_failed_plainly(&app, &id, TOKEN, &w.fake.base_url).await;
    assert_eq!(
        job["error"],
        "Slack: the answer to conversations.history is not JSON"
    );
}

#[tokio::test]
async fn an_incremental_sync_counts_new_replies_and_edits() {
    let (w, app) = seeded().await;
    let (id, first) = create_and_sync(&app).await;
    assert_eq!(first["status"], "completed", "{first}");

    // Two new messages, a new reply in the old thread, an edit: 3 inserted, 1 updated.
    w.fake.post("C1", "U1", "Launch checklist is ready");
    w.fake.post("G3", "U2", "Offer accepted");
    let reply = w.fake.reply("C1", &w.thread, "U1", "Thursday it is");
    w.fake.edit("C1", &w.newest, "General message 5, edited");
    let job = run_and_wait(&app, &id, false).await;
    assert_eq!(job["status"], "completed", "{job}");
    let [inserted, updated, deleted, _, failed] = counts(&job);
    assert_eq!([inserted, updated, deleted, failed], [3, 1, 0, 0], "{job}");

    // Each channel's history was asked from where the last run stopped (minus the lookback).
    let incremental: Vec<_> = w
        .fake
        .calls_of("conversations.history")
        .into_iter()
        .skip(4)
        .collect();
    assert!(
        !incremental.is_empty() && incremental.iter().all(|p| p.contains_key("oldest")),
        "{incremental:?}"
    );

    let all = entities(&app, &id).await;
    assert_eq!(all.len() as u64, SEEDED_TOTAL + 3);
    let edited = all
        .iter()
        .find(|e| e["entity_id"] == format!("C1:{}", w.newest))
        .unwrap();
    assert_eq!(edited["payload"]["text"], "General message 5, edited");
    assert_eq!(edited["payload"]["edited"], true);
    assert!(keys(&all).contains(&message_key("C1", &reply)));

    // Nothing changed since: nothing written.
    let quiet = run_and_wait(&app, &id, false).await;
    assert_eq!(counts(&quiet)[..3], [0, 0, 0], "{quiet}");
}

#[tokio::test]
async fn a_full_sync_after_removals_deletes_exactly_what_vanished() {
    let (w, app) = seeded().await;
    let (id, first) = create_and_sync(&app).await;
    assert_eq!(first["status"], "completed", "{first}");

    // A reply, a message, a whole channel (with its 2 messages) and a person go away.
    w.fake.delete("C1", &w.reply);
    w.fake.delete("C1", &w.newest);
    w.fake.remove_channel("G3");
    w.fake.remove_user("U3");
    let gone = [
        message_key("C1", &w.reply),
        message_key("C1", &w.newest),
        "slack_channel#G3".to_owned(),
        "slack_user#U3".to_owned(),
    ];
    let before = keys(&entities(&app, &id).await);

    let job = run_and_wait(&app, &id, true).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(counts(&job)[..3], [0, 0, 6], "{job}");
    let after = keys(&entities(&app, &id).await);
    let deleted: BTreeSet<String> = before.difference(&after).cloned().collect();
    assert_eq!(deleted.len(), 6);
    for key in &gone {
        assert!(deleted.contains(key), "{key} deleted: {deleted:?}");
    }
    assert_eq!(
        deleted
            .iter()
            .filter(|k| k.starts_with("slack_message#G3:"))
            .count(),
        2
    );
    assert!(
        w.fake
            .calls_of("conversations.history")
            .iter()
            .rev()
            .take(3)
            .all(|p| !p.contains_key("oldest")),
        "a forced full sync reads whole histories"
    );
}

#[tokio::test]
async fn the_token_is_checked_before_anything_is_stored() {
    let (w, app) = seeded().await;
    let p = problem(
        app.create_connection(&body("xoxb-revoked-or-typo-token"))
            .await,
        400,
    )
    .await;
    assert!(
        p["detail"].as_str().unwrap().contains("invalid_auth"),
        "{p}"
    );
    assert!(!p.to_string().contains("xoxb-revoked-or-typo-token"));
    assert!(
        app.aws.secret_names_under_prefix().await.is_empty(),
        "no secret"
    );
    let listed: Vec<Value> = app.get("/source-connections").await.json().await.unwrap();
    assert!(listed.is_empty(), "no connection: {listed:?}");
    assert!(app.aws.receive_messages().await.is_empty(), "no job queued");

    let response = app.create_connection(&body(TOKEN)).await;
    assert_eq!(response.status(), 201);
    let text = response.text().await.unwrap();
    assert!(!text.contains(TOKEN));
    let c: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(c["short_name"], "slack");
    assert_eq!(
        w.fake
            .calls()
            .iter()
            .filter(|c| c.method == "auth.test")
            .count(),
        2,
        "both checks asked Slack"
    );
}

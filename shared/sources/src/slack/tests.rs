//! The catalog entry, what each Web API answer means, the entities, and the credential check
//! against the fake Slack (`fakes::slack`); the helpers both test modules share (a small
//! workspace in the fake).

use super::api::{classify, DEFAULT_RATE_LIMIT_WAIT};
use super::entities::{channel_entity, message_entity, user_entity, Ts};
use super::*;
use crate::testing::{header_map as headers, test_now as now};
use crate::upstream::http_client;
use chrono::TimeZone;
use domain::auth::{Credentials, OauthToken};
use domain::catalog::validate_fields;
use fakes::slack::FakeSlack;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::json;
use std::time::Duration;

pub(super) const TOKEN: &str = "xoxb-test0secret0value0never0logged";

pub(super) fn token(value: &str) -> AuthenticationRequest {
    AuthenticationRequest::OauthToken(OauthToken {
        access_token: SecretString::from(value.to_owned()),
        refresh_token: None,
        expires_at: None,
    })
}

/// The fake Slack (`fakes::slack`) accepting [`TOKEN`] as a bot token, holding a small
/// workspace paged two items a page: users alice (with a title), a bot and carol; #general
/// (with a topic), #random (the bot is not in it) and the private #secret (empty); in #general
/// a first message, a thread with two replies, and a third message, edited.
pub(super) struct Workspace {
    pub fake: FakeSlack,
    pub first: String,
    pub thread: String,
    pub replies: [String; 2],
    pub third: String,
}

pub(super) async fn workspace() -> Workspace {
    let fake = FakeSlack::start(TOKEN).await;
    fake.set_page_size(2);
    fake.add_user("U1", "alice", "Alice Liddell");
    fake.set_title("U1", "Engineer");
    fake.add_user("U2", "deploybot", "Deploy Bot");
    fake.add_user("U3", "carol", "Carol Danvers");
    fake.add_channel("C1", "general", false, true);
    fake.set_topic("C1", "Company news");
    fake.add_channel("C2", "random", false, false);
    fake.add_channel("G3", "secret", true, true);
    let first = fake.post("C1", "U1", "first");
    let thread = fake.post("C1", "U1", "a thread");
    let replies = [
        fake.reply("C1", &thread, "U2", "reply one"),
        fake.reply("C1", &thread, "U3", "reply two"),
    ];
    let third = fake.post("C1", "U1", "third");
    fake.edit("C1", &third, "third, fixed");
    Workspace {
        fake,
        first,
        thread,
        replies,
        third,
    }
}

pub(super) fn source_for(fake: &FakeSlack) -> SlackSource {
    source_at(&fake.base_url)
}

fn source_at(base_url: &str) -> SlackSource {
    SlackSource::new(http_client().unwrap(), BaseUrl::parse(base_url).unwrap())
}

// --- the catalog entry ---

#[test]
fn the_catalog_entry_reads_as_documented() {
    let spec = spec();
    assert_eq!((spec.short_name, spec.name), ("slack", "Slack"));
    assert_eq!(
        spec.auth_methods,
        [
            AuthMethod::OauthToken,
            AuthMethod::OauthBrowser,
            AuthMethod::OauthByoc,
            AuthMethod::AuthProvider
        ]
    );
    assert!(spec.auth_fields.is_empty());
    assert_eq!(
        spec.entity_types,
        ["slack_channel", "slack_message", "slack_user"]
    );
    assert!(spec.supports_incremental && !spec.federated_search);
    let oauth = spec.oauth.unwrap();
    assert_eq!(oauth.authorize_url, "https://slack.com/oauth/v2/authorize");
    assert_eq!(oauth.token_url, "https://slack.com/api/oauth.v2.access");
    assert_eq!(
        oauth.scopes,
        [
            "channels:history",
            "channels:read",
            "groups:history",
            "groups:read",
            "users:read"
        ]
    );
    assert_eq!(oauth.user_scopes, ["search:read"]);
    assert_eq!(oauth.scope_separator, ",");
    assert!(!oauth.pkce);
    assert_eq!(oauth.client_auth, ClientAuth::RequestBody);
    assert_eq!(oauth.access_token_pointer, "/access_token");
    assert_eq!(oauth.oauth_type(), "access_only");
}

#[test]
fn the_lookback_is_bounded() {
    let errors = |v: Value| {
        validate_fields(&spec().config_fields, v.as_object().unwrap(), "config")
            .into_iter()
            .map(|e| e.field)
            .collect::<Vec<_>>()
    };
    assert!(errors(json!({})).is_empty());
    assert!(errors(json!({"thread_lookback_days": 0})).is_empty());
    assert_eq!(
        errors(json!({"thread_lookback_days": 366})),
        ["config.thread_lookback_days"]
    );
}

// --- classifying answers ---

fn classify_reply(
    status: u16,
    pairs: &[(&'static str, &str)],
    body: &str,
) -> Result<Value, StreamError> {
    classify(
        "conversations.history",
        StatusCode::from_u16(status).unwrap(),
        &headers(pairs),
        body.as_bytes(),
        now(),
    )
    .map_err(StreamError::from)
}

#[test]
fn token_errors_are_rejections_whatever_the_method() {
    for code in [
        "invalid_auth",
        "token_revoked",
        "account_inactive",
        "not_authed",
    ] {
        let body = json!({"ok": false, "error": code}).to_string();
        assert_eq!(
            classify_reply(200, &[], &body),
            Err(StreamError::Rejected(format!(
                "conversations.history answered {code}"
            ))),
            "{code}"
        );
    }
}

#[test]
fn a_429_waits_for_retry_after() {
    let body = r#"{"ok": false, "error": "ratelimited"}"#;
    assert_eq!(
        classify_reply(429, &[("retry-after", "7")], body),
        Err(StreamError::RateLimited {
            wait: Duration::from_secs(7)
        })
    );
    assert_eq!(
        classify_reply(429, &[], ""),
        Err(StreamError::RateLimited {
            wait: DEFAULT_RATE_LIMIT_WAIT
        })
    );
    // Some gateways answer 200 with the code: still a wait, not a failure.
    assert_eq!(
        classify_reply(200, &[("retry-after", "3")], body),
        Err(StreamError::RateLimited {
            wait: Duration::from_secs(3)
        })
    );
}

#[test]
fn other_errors_fail_with_their_code_and_nothing_else_of_the_body() {
    assert_eq!(
        classify_reply(
            200,
            &[],
            r#"{"ok": false, "error": "missing_scope", "needed": "groups:history", "provided": "channels:history"}"#
        ),
        Err(StreamError::Upstream(
            "conversations.history failed with error missing_scope (needed: groups:history)".into()
        ))
    );
    assert_eq!(
        classify_reply(200, &[], r#"{"ok": false, "error": "invalid_cursor"}"#),
        Err(StreamError::Upstream(
            "conversations.history failed with error invalid_cursor".into()
        ))
    );
    let odd = format!(r#"{{"ok": false, "error": "Bearer {TOKEN} is odd"}}"#);
    let Err(StreamError::Upstream(m)) = classify_reply(200, &[], &odd) else {
        panic!("an upstream failure");
    };
    assert!(m.ends_with("unknown_error") && !m.contains(TOKEN), "{m}");
}

#[test]
fn outages_and_foreign_bodies_are_told_apart() {
    assert_eq!(
        classify_reply(503, &[], "<html>down</html>"),
        Err(StreamError::Upstream(
            "Slack is unavailable (HTTP 503 on conversations.history)".into()
        ))
    );
    assert_eq!(
        classify_reply(200, &[], r#"{"ok": true, "messages": ["#),
        Err(StreamError::Malformed(
            "the answer to conversations.history is not JSON".into()
        ))
    );
    assert!(matches!(
        classify_reply(200, &[], r#"{"messages": []}"#),
        Err(StreamError::Malformed(_))
    ));
    assert!(matches!(
        classify_reply(404, &[], "Not Found"),
        Err(StreamError::Upstream(m)) if m.contains("HTTP 404")
    ));
    assert_eq!(
        classify_reply(200, &[], r#"{"ok": true, "messages": []}"#),
        Ok(json!({"ok": true, "messages": []}))
    );
}

// --- entities ---

#[test]
fn timestamps_parse_and_link() {
    let ts = Ts::parse("1700000200.000100").unwrap();
    assert_eq!(ts.link_id(), "p1700000200000100");
    assert_eq!(ts.minus_days(0), "1700000200.000100");
    assert_eq!(ts.minus_days(1), "1699913800.000000");
    assert!(Ts::parse("1700000200.5").unwrap() > Ts::parse("1700000200.000400").unwrap());
    for bad in ["", "abc", "1.2.3", "17000.1234567", "-1.0", "1700000200."] {
        assert_eq!(Ts::parse(bad), None, "{bad}");
    }
}

#[test]
fn a_message_keeps_what_a_reader_searches_for() {
    let message = json!({
        "type": "message", "user": "U2", "text": "reply one\nmore", "ts": "1700000250.000100",
        "thread_ts": "1700000200.000100", "edited": {"user": "U2", "ts": "1700000500.000000"}
    });
    let entity = message_entity("C1", &message, Some("https://acme.slack.com/")).unwrap();
    assert_eq!(entity.entity_type, "slack_message");
    assert_eq!(entity.entity_id, "C1:1700000250.000100");
    assert_eq!(entity.title, "reply one");
    assert_eq!(
        entity.updated_at,
        Utc.timestamp_opt(1_700_000_500, 0).single()
    );
    assert_eq!(
        entity.payload,
        json!({
            "text": "reply one\nmore", "user": "U2", "channel": "C1", "ts": "1700000250.000100",
            "thread_ts": "1700000200.000100", "subtype": null, "edited": true,
            "url": "https://acme.slack.com/archives/C1/p1700000250000100?thread_ts=1700000200.000100&cid=C1"
        })
    );
    assert!(message_entity("C1", &json!({"text": "no ts"}), None).is_err());
}

#[test]
fn volatile_fields_do_not_change_the_hash() {
    let hash = |m: Value| message_entity("C1", &m, None).unwrap().content_hash();
    let parent = json!({"type": "message", "user": "U1", "text": "a thread", "ts": "1700000200.000100",
                        "thread_ts": "1700000200.000100", "reply_count": 2});
    let mut busier = parent.clone();
    busier["reply_count"] = json!(5);
    busier["latest_reply"] = json!("1700000900.000100");
    busier["reactions"] = json!([{"name": "tada", "count": 3}]);
    assert_eq!(hash(parent.clone()), hash(busier));
    let mut edited = parent.clone();
    edited["text"] = json!("a better thread");
    assert_ne!(hash(parent), hash(edited));

    let channel = json!({"id": "C1", "name": "general", "num_members": 40, "topic": {"value": "news", "last_set": 1}});
    let mut grown = channel.clone();
    grown["num_members"] = json!(41);
    grown["topic"]["last_set"] = json!(2);
    let channel_hash = |c: Value| channel_entity(&c, None).unwrap().content_hash();
    assert_eq!(channel_hash(channel), channel_hash(grown));

    let user =
        json!({"id": "U1", "name": "alice", "profile": {"status_text": "lunch"}, "updated": 1});
    let mut back = user.clone();
    back["profile"]["status_text"] = json!("");
    back["updated"] = json!(2);
    let user_hash = |u: Value| user_entity(&u, None).unwrap().content_hash();
    assert_eq!(user_hash(user), user_hash(back));
}

// --- the credential check ---

#[tokio::test]
async fn the_check_is_auth_test_with_the_token_as_a_bearer() {
    let fake = FakeSlack::start(TOKEN).await;
    let source = source_for(&fake);
    assert_eq!(
        source.check_credentials(&token(TOKEN), &Map::new()).await,
        Ok(())
    );
    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].method, "auth.test");
    assert!(calls[0].bearer, "the token as Authorization: Bearer");
    assert!(calls[0].params.is_empty(), "{:?}", calls[0].params);
}

#[tokio::test]
async fn the_check_tells_a_bad_token_from_a_busy_or_broken_slack() {
    let check = |fake: &FakeSlack| {
        let source = source_for(fake);
        async move { source.check_credentials(&token(TOKEN), &Map::new()).await }
    };
    let elsewhere = FakeSlack::start("xoxb-a-token-of-another-workspace").await;
    assert_eq!(
        check(&elsewhere).await,
        Err(CheckError::Rejected(
            "auth.test answered invalid_auth".into()
        ))
    );
    let fake = FakeSlack::start(TOKEN).await;
    fake.rate_limit_next("auth.test", 12);
    assert_eq!(
        check(&fake).await,
        Err(CheckError::RateLimited {
            retry_after: Some(Duration::from_secs(12))
        })
    );
    // A gateway in front of Slack that answers a plain-text 502: a generic HTTP edge, not
    // an answer of Slack's Web API.
    let gateway = fakes::FakeServer::start(std::sync::Arc::new(|_: &fakes::FakeRequest| {
        fakes::FakeResponse::text(502, "text/plain", "Bad Gateway")
    }))
    .await;
    assert!(matches!(
        source_at(&gateway.base_url)
            .check_credentials(&token(TOKEN), &Map::new())
            .await,
        Err(CheckError::Unavailable(m)) if !m.contains(TOKEN)
    ));

    let key = json!({"api_key": TOKEN});
    let direct = AuthenticationRequest::Direct(Credentials::new(key.as_object().unwrap().clone()));
    let fake = FakeSlack::start(TOKEN).await;
    let Err(CheckError::Rejected(m)) = source_for(&fake)
        .check_credentials(&direct, &Map::new())
        .await
    else {
        panic!("rejected");
    };
    assert!(m.contains("oauth_token") && !m.contains(TOKEN), "{m}");
    assert!(fake.calls().is_empty());
}

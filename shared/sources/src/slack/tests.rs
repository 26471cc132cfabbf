//! The catalog entry, what each Web API answer means, the entities, and the credential check
//! against a scripted Slack; the helpers both test modules share (a scripted small workspace).

use super::api::{classify, DEFAULT_RATE_LIMIT_WAIT};
use super::entities::{channel_entity, message_entity, user_entity, Ts};
use super::*;
use crate::testing::{header_map as headers, test_now as now, FakeUpstream, Reply, Seen};
use crate::upstream::http_client;
use chrono::TimeZone;
use domain::auth::{Credentials, OauthToken};
use domain::catalog::validate_fields;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(super) const TOKEN: &str = "xoxb-test0secret0value0never0logged";

pub(super) fn token(value: &str) -> AuthenticationRequest {
    AuthenticationRequest::OauthToken(OauthToken {
        access_token: SecretString::from(value.to_owned()),
        refresh_token: None,
        expires_at: None,
    })
}

pub(super) fn ok(body: Value) -> Reply {
    Reply::status(200).json(body)
}

pub(super) fn slack_error(code: &str) -> Reply {
    ok(json!({"ok": false, "error": code}))
}

/// A fake that answers the `n`-th call (from 0) of each method with `script(method, n)`.
pub(super) async fn scripted(
    script: impl Fn(&str, usize) -> Reply + Send + Sync + 'static,
) -> FakeUpstream {
    let calls: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    FakeUpstream::start(move |seen: &Seen| {
        let method = seen.path.trim_start_matches('/').to_owned();
        let n = {
            let mut calls = calls.lock().unwrap();
            let count = calls.entry(method.clone()).or_insert(0);
            *count += 1;
            *count - 1
        };
        script(&method, n)
    })
    .await
}

pub(super) fn msg(ts: &str, text: &str) -> Value {
    json!({"type": "message", "user": "U1", "text": text, "ts": ts})
}

/// A small workspace as Slack pages it: users in two pages, three channels (one the bot is
/// not in), a channel history in two pages with a thread, and a private channel the bot was
/// removed from between the list and its history.
pub(super) fn workspace(method: &str, n: usize) -> Reply {
    match (method, n) {
        ("auth.test", _) => ok(json!({
            "ok": true, "url": "https://acme.slack.com/", "team": "Acme", "user": "syncbot",
            "team_id": "T1", "user_id": "U9", "bot_id": "B1"
        })),
        ("users.list", 0) => ok(json!({
            "ok": true,
            "members": [
                {"id": "U1", "name": "alice", "real_name": "Alice Liddell",
                 "profile": {"title": "Engineer", "status_text": "lunch", "image_72": "https://a/1.png"},
                 "tz": "Europe/Berlin", "updated": 1700000000},
                {"id": "U2", "name": "deploybot", "is_bot": true, "profile": {}},
            ],
            "response_metadata": {"next_cursor": "dXNlcjpVMg=="}
        })),
        ("users.list", 1) => ok(json!({
            "ok": true,
            "members": [{"id": "U3", "name": "carol", "deleted": true, "profile": {"display_name": "caz"}}],
            "response_metadata": {"next_cursor": ""}
        })),
        ("conversations.list", 0) => ok(json!({
            "ok": true,
            "channels": [
                {"id": "C1", "name": "general", "is_member": true, "num_members": 40,
                 "topic": {"value": "Company news", "last_set": 1}, "created": 1690000000},
                {"id": "C2", "name": "random", "is_member": false},
                {"id": "G3", "name": "secret", "is_private": true, "is_member": true},
            ],
            "response_metadata": {"next_cursor": ""}
        })),
        ("conversations.history", 0) => ok(json!({
            "ok": true,
            "messages": [
                {"type": "message", "user": "U1", "text": "third, fixed", "ts": "1700000300.000100",
                 "edited": {"user": "U1", "ts": "1700000400.000000"}},
                {"type": "message", "user": "U1", "text": "a thread", "ts": "1700000200.000100",
                 "thread_ts": "1700000200.000100", "reply_count": 2, "latest_reply": "1700000260.000100"},
            ],
            "has_more": true,
            "response_metadata": {"next_cursor": "bmV4dF90czox"}
        })),
        ("conversations.replies", 0) => ok(json!({
            "ok": true,
            "messages": [
                {"type": "message", "user": "U1", "text": "a thread", "ts": "1700000200.000100",
                 "thread_ts": "1700000200.000100", "reply_count": 2},
                {"type": "message", "user": "U2", "text": "reply one", "ts": "1700000250.000100",
                 "thread_ts": "1700000200.000100", "parent_user_id": "U1"},
                {"type": "message", "user": "U3", "text": "reply two", "ts": "1700000260.000100",
                 "thread_ts": "1700000200.000100", "parent_user_id": "U1"},
            ],
            "has_more": false
        })),
        ("conversations.history", 1) => ok(json!({
            "ok": true, "messages": [msg("1700000100.000100", "first")], "has_more": false
        })),
        ("conversations.history", 2) => slack_error("not_in_channel"),
        _ => slack_error("unknown_method"),
    }
}

pub(super) fn source_for(fake: &FakeUpstream) -> SlackSource {
    SlackSource::new(
        http_client().unwrap(),
        BaseUrl::parse(&fake.base_url).unwrap(),
    )
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
    let fake = scripted(workspace).await;
    let source = source_for(&fake);
    assert_eq!(
        source.check_credentials(&token(TOKEN), &Map::new()).await,
        Ok(())
    );
    let seen = fake.seen();
    assert_eq!(seen[0].path, "/auth.test");
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(seen[0].header("authorization"), Some(bearer.as_str()));
}

#[tokio::test]
async fn the_check_tells_a_bad_token_from_a_busy_or_broken_slack() {
    let check = |reply: Reply| async move {
        let fake = scripted(move |_, _| reply.clone()).await;
        source_for(&fake)
            .check_credentials(&token(TOKEN), &Map::new())
            .await
    };
    assert_eq!(
        check(slack_error("invalid_auth")).await,
        Err(CheckError::Rejected(
            "auth.test answered invalid_auth".into()
        ))
    );
    assert_eq!(
        check(Reply::status(429).header("retry-after", "12")).await,
        Err(CheckError::RateLimited {
            retry_after: Some(Duration::from_secs(12))
        })
    );
    assert!(matches!(
        check(Reply::status(502).text("Bad Gateway")).await,
        Err(CheckError::Unavailable(m)) if !m.contains(TOKEN)
    ));

    let key = json!({"api_key": TOKEN});
    let direct = AuthenticationRequest::Direct(Credentials::new(key.as_object().unwrap().clone()));
    let fake = scripted(workspace).await;
    let Err(CheckError::Rejected(m)) = source_for(&fake)
        .check_credentials(&direct, &Map::new())
        .await
    else {
        panic!("rejected");
    };
    assert!(m.contains("oauth_token") && !m.contains(TOKEN), "{m}");
    assert!(fake.seen().is_empty());
}

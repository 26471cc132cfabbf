//! Bad input at the edges: bodies that are not JSON, not UTF-8, nested past any reason, too
//! large for us or for API Gateway, sent with the wrong content type, or carrying control
//! characters, and oversized headers. Each gets a 4xx problem+json, nothing is stored, and the
//! API keeps serving.

use crate::helpers::app::{stub_body, TestApp};
use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Value};

struct Case {
    name: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
}

fn case(name: &'static str, content_type: Option<&'static str>, body: impl Into<Vec<u8>>) -> Case {
    Case {
        name,
        content_type,
        body: body.into(),
        headers: Vec::new(),
    }
}

fn cases() -> Vec<Case> {
    let valid = stub_body("docs", "k-edge-valid").to_string();
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let mut nested = json!({"leaf": true});
    for _ in 0..200 {
        nested = json!({ "n": nested });
    }
    let mut deep_config = stub_body("docs", "k-edge-deep");
    deep_config["config"] = nested;
    let mut control = stub_body("docs", "k-edge-control");
    control["name"] = json!("bad\u{0}name\u{7}\u{1b}[31m");
    let mut unknown = stub_body("docs", "k-edge-unknown");
    unknown["credentials_inline"] = json!("?");
    let mut invalid_utf8 = valid.clone().into_bytes();
    invalid_utf8.splice(10..10, [0xff, 0xfe, 0xc3]);
    let padded = |size: usize| {
        let mut body = stub_body("docs", "k-edge-big");
        body["name"] = json!("x".repeat(size));
        body.to_string()
    };
    let json = Some("application/json");
    vec![
        case("malformed JSON", json, "{\"short_name\": \"stub\","),
        case("an empty body", json, ""),
        case("a JSON array", json, "[1, 2, 3]"),
        case("a JSON string", json, "\"stub\""),
        case("invalid UTF-8", json, invalid_utf8),
        case(
            "a raw control character in a string",
            json,
            valid.replace("stub", "st\u{1}ub"),
        ),
        case("control characters in the name", json, control.to_string()),
        case("an unknown field", json, unknown.to_string()),
        case("arrays nested 100,000 deep", json, deep),
        case("a config nested 200 deep", json, deep_config.to_string()),
        case("text/plain", Some("text/plain"), valid.clone()),
        case(
            "form-encoded",
            Some("application/x-www-form-urlencoded"),
            "short_name=stub",
        ),
        case("XML", Some("application/xml"), "<connection/>"),
        case("over our 256 KiB limit", json, padded(300 * 1024)),
        case(
            "over API Gateway's 10 MB cap",
            json,
            padded(11 * 1024 * 1024),
        ),
        Case {
            headers: vec![("idempotency-key", "k".repeat(8 * 1024))],
            ..case("an 8 KiB Idempotency-Key", json, valid.clone())
        },
        Case {
            headers: vec![("x-api-key", "sc_".to_owned() + &"a".repeat(8 * 1024))],
            ..case("an 8 KiB API key", json, valid.clone())
        },
    ]
}

#[tokio::test]
async fn bad_input_gets_a_problem_changes_nothing_and_the_api_keeps_serving() {
    let app = TestApp::spawn().await;
    app.create_collection("docs").await;
    let before = app.aws.scan_keys().await;
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for case in cases() {
        for path in ["/source-connections", "/collections"] {
            let mut request = http
                .post(format!("{}{path}", app.base_url))
                .body(case.body.clone());
            if !case.headers.iter().any(|(name, _)| *name == "x-api-key") {
                request = request.header("x-api-key", &app.api_key);
            }
            if let Some(content_type) = case.content_type {
                request = request.header(CONTENT_TYPE, content_type);
            }
            for (name, value) in &case.headers {
                request = request.header(*name, value);
            }
            let response = request.send().await.expect("the gateway answers");
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let what = format!("{} to POST {path}", case.name);
            assert!((400..500).contains(&status), "{what}: {status} {body}");
            assert_eq!(content_type, "application/problem+json", "{what}: {body}");
            assert_eq!(body["status"], status, "{what}: {body}");
            assert!(
                body["detail"].is_string() || body["title"].is_string(),
                "{what}"
            );
            statuses.push(status);
        }
    }
    assert_eq!(
        app.aws.scan_keys().await,
        before,
        "bad input stored something"
    );
    assert!(app.aws.secret_names_under_prefix().await.is_empty());

    // Still serving: a good create right after.
    let created = app
        .create_connection(&stub_body("docs", "k-edge-after"))
        .await;
    assert_eq!(created.status(), 201);
    statuses.sort_unstable();
    statuses.dedup();
    crate::helpers::figures(&format!(
        "edges: {} bad requests answered 4xx problem+json ({statuses:?}), nothing stored",
        cases().len() * 2
    ));
}

use crate::endpoint::{Endpoint, Reply};
use crate::logs::captured;
use crate::receiver::verifies;
use delivery::{
    secret_key, sign, AttemptResult, DeliveryRequest, TargetPolicy, Transport, RESPONSE_LIMIT,
};
use std::time::{Duration, Instant};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const MESSAGE_ID: &str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W";
const TIMESTAMP: i64 = 1_674_087_231;
const PAYLOAD: &str = r#"{"type":"sync.completed","data":{"token":"payload-canary"}}"#;

const LOCAL: TargetPolicy = TargetPolicy {
    allow_private: true,
};
const STRICT: TargetPolicy = TargetPolicy {
    allow_private: false,
};

fn transport(policy: TargetPolicy, timeout: Duration) -> Transport {
    captured();
    Transport::new(policy, timeout).unwrap()
}

async fn post(transport: &Transport, url: &str) -> AttemptResult {
    let key = secret_key(SECRET).unwrap();
    let request = DeliveryRequest {
        url,
        message_id: MESSAGE_ID,
        timestamp: TIMESTAMP,
        body: PAYLOAD.as_bytes(),
        key: &key,
    };
    transport.post(&request).await
}

/// Lets a connection the transport may have opened reach the endpoint's accept loop.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}

#[tokio::test]
async fn a_2xx_is_delivered_with_both_header_sets_and_a_signature_that_verifies() {
    let endpoint = Endpoint::start(Reply::status(204)).await;
    let result = post(
        &transport(LOCAL, Duration::from_secs(5)),
        &endpoint.url("/hooks"),
    )
    .await;

    assert_eq!(
        result,
        AttemptResult {
            status_code: Some(204),
            response: String::new(),
            delivered: true,
            retry_after: None,
            error: None,
        }
    );
    let requests = endpoint.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/hooks");
    assert_eq!(request.body, PAYLOAD.as_bytes());
    assert_eq!(request.header("content-type"), "application/json");
    assert!(request
        .header("user-agent")
        .starts_with("connectors-webhooks/"));
    for prefix in ["webhook", "svix"] {
        let id = request.header(&format!("{prefix}-id"));
        let timestamp = request.header(&format!("{prefix}-timestamp"));
        let signature = request.header(&format!("{prefix}-signature"));
        assert_eq!(id, MESSAGE_ID);
        assert_eq!(timestamp, TIMESTAMP.to_string());
        assert!(verifies(SECRET, id, timestamp, &request.body, signature));
        assert_eq!(
            signature,
            sign(
                &secret_key(SECRET).unwrap(),
                MESSAGE_ID,
                TIMESTAMP,
                PAYLOAD.as_bytes()
            )
        );
    }
}

#[tokio::test]
async fn a_500_is_not_delivered_and_only_the_first_kilobyte_of_its_body_is_read() {
    // 100 KB announced, 4 KiB at once, the rest trickling for about ten seconds.
    let endpoint = Endpoint::start(Reply::Trickle {
        total: 100 * 1024,
        first: 4096,
    })
    .await;
    let started = Instant::now();
    let result = post(
        &transport(LOCAL, Duration::from_secs(30)),
        &endpoint.url("/"),
    )
    .await;

    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(result.status_code, Some(500));
    assert!(!result.delivered);
    assert_eq!(result.error, None);
    assert_eq!(result.response, "x".repeat(RESPONSE_LIMIT));
    assert!(!endpoint.trickle_finished());
}

#[tokio::test]
async fn a_redirect_is_a_failed_attempt_and_is_not_followed() {
    let elsewhere = Endpoint::start(Reply::status(200)).await;
    let endpoint =
        Endpoint::start(Reply::status(302).with_header("location", elsewhere.url("/stolen"))).await;
    let result = post(
        &transport(LOCAL, Duration::from_secs(5)),
        &endpoint.url("/"),
    )
    .await;
    settle().await;

    assert_eq!(result.status_code, Some(302));
    assert!(!result.delivered);
    assert_eq!(endpoint.requests().len(), 1);
    assert_eq!(elsewhere.connections(), 0);
}

#[tokio::test]
async fn a_429_gives_the_wait_its_retry_after_asks_for() {
    let endpoint = Endpoint::start(
        Reply::status(429)
            .with_header("retry-after", "1")
            .with_body("slow down"),
    )
    .await;
    let result = post(
        &transport(LOCAL, Duration::from_secs(5)),
        &endpoint.url("/"),
    )
    .await;

    assert_eq!(result.status_code, Some(429));
    assert!(!result.delivered);
    assert_eq!(result.retry_after, Some(Duration::from_secs(1)));
    assert_eq!(result.response, "slow down");
}

#[tokio::test]
async fn a_retry_after_on_a_2xx_is_ignored() {
    let endpoint = Endpoint::start(Reply::status(200).with_header("retry-after", "60")).await;
    let result = post(
        &transport(LOCAL, Duration::from_secs(5)),
        &endpoint.url("/"),
    )
    .await;
    assert!(result.delivered);
    assert_eq!(result.retry_after, None);
}

#[tokio::test]
async fn an_endpoint_that_never_answers_times_out() {
    let endpoint = Endpoint::start(Reply::Silence).await;
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let result = post(&transport(LOCAL, timeout), &endpoint.url("/")).await;
    let elapsed = started.elapsed();

    assert!(elapsed >= timeout, "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert_eq!(result.status_code, None);
    assert!(!result.delivered);
    assert_eq!(result.error.as_deref(), Some("timed out after 300ms"));
    assert_eq!(endpoint.requests().len(), 1);
}

#[tokio::test]
async fn a_closed_port_is_a_connection_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/");
    let result = post(&transport(LOCAL, Duration::from_secs(5)), &url).await;

    assert_eq!(result.status_code, None);
    assert!(!result.delivered);
    assert_eq!(result.error.as_deref(), Some("connection refused"));
}

#[tokio::test]
async fn a_loopback_target_is_refused_without_connecting() {
    let endpoint = Endpoint::start(Reply::status(200)).await;
    let strict = transport(STRICT, Duration::from_secs(5));
    let port = endpoint.port();
    for (url, error) in [
        (
            format!("https://127.0.0.1:{port}/"),
            "url resolves to a non-public address (127.0.0.1)",
        ),
        (endpoint.url("/"), "url must use https"),
        (
            format!("https://user:pass@127.0.0.1:{port}/"),
            "url must not contain credentials",
        ),
    ] {
        let result = post(&strict, &url).await;
        assert_eq!(
            result,
            AttemptResult {
                status_code: None,
                response: String::new(),
                delivered: false,
                retry_after: None,
                error: Some(error.to_owned()),
            }
        );
    }
    let result = post(&strict, &format!("https://localhost:{port}/")).await;
    assert!(result
        .error
        .unwrap()
        .starts_with("url resolves to a non-public address"));
    settle().await;
    assert_eq!(endpoint.connections(), 0);
}

#[tokio::test]
async fn nothing_logged_carries_the_key_the_signature_or_the_payload() {
    let endpoint = Endpoint::start(Reply::status(500).with_body("nope")).await;
    let result = post(
        &transport(LOCAL, Duration::from_secs(5)),
        &endpoint.url("/?token=t0p"),
    )
    .await;
    assert_eq!(result.status_code, Some(500));
    let refused = post(
        &transport(STRICT, Duration::from_secs(5)),
        "https://10.0.0.1/",
    )
    .await;
    assert!(refused.error.is_some());

    // Every test's deliveries are in the log, all with the same secret and payload.
    let text = captured().text();
    assert!(text.contains("webhook attempt"), "{text}");
    let signature = endpoint.requests()[0]
        .header("webhook-signature")
        .to_owned();
    let signature_base64 = signature.trim_start_matches("v1,");
    for secret in [
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        signature_base64,
        "payload-canary",
        "t0p",
    ] {
        assert!(!text.contains(secret), "logged {secret}: {text}");
    }
}

#[tokio::test]
async fn a_host_name_is_reached_through_the_addresses_it_was_checked_at() {
    // The transport's own resolver refuses every lookup, so this only connects if the name
    // was pinned to the addresses the target check resolved.
    let endpoint = Endpoint::start(Reply::status(200)).await;
    let url = format!("http://localhost:{}/", endpoint.port());
    let result = post(&transport(LOCAL, Duration::from_secs(5)), &url).await;
    assert!(result.delivered, "{result:?}");
    assert_eq!(endpoint.requests().len(), 1);
}

#[tokio::test]
async fn a_tls_failure_is_named_as_one() {
    let endpoint = Endpoint::start(Reply::Plaintext).await;
    let url = format!("https://127.0.0.1:{}/", endpoint.port());
    let result = post(&transport(LOCAL, Duration::from_secs(5)), &url).await;

    assert_eq!(result.status_code, None);
    assert!(!result.delivered);
    let error = result.error.unwrap();
    assert!(error.starts_with("TLS error: "), "{error}");
}

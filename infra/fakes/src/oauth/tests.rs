//! Unit tests of the fake OAuth provider: its token exchange, PKCE check and client authentication.

use super::*;
use std::collections::BTreeMap;

const ID: &str = "client-1";
const SECRET: &str = "s3cret:with&odd=chars";
const REDIRECT: &str = "https://api.example/oauth/callback";
// RFC 7636 appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn state(config: FakeOAuthConfig) -> Mutex<State> {
    Mutex::new(State::new(config))
}

fn mint(state: &Mutex<State>, challenge: Option<&str>) -> String {
    let code = random_value("code");
    state.lock().unwrap().codes.insert(
        code.clone(),
        Code {
            client_id: ID.to_owned(),
            redirect_uri: REDIRECT.to_owned(),
            challenge: challenge.map(str::to_owned),
            scope: "read".to_owned(),
            expires_at: Instant::now() + CODE_LIFETIME,
            used: false,
            issued: Vec::new(),
        },
    );
    code
}

fn post(
    state: &Mutex<State>,
    fields: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (u16, Value) {
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let mut headers = hyper::HeaderMap::new();
    if let Some((id, secret)) = basic {
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let value = format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
        );
        headers.insert("authorization", value.parse().unwrap());
    }
    let request = FakeRequest {
        method: "POST".into(),
        path: "/token".into(),
        query: BTreeMap::new(),
        headers,
        body: body.into(),
    };
    let answer = handle(state, &request);
    (
        answer.status,
        serde_json::from_slice(&answer.body).unwrap_or(Value::Null),
    )
}

fn exchange(
    state: &Mutex<State>,
    code: &str,
    redirect: &str,
    verifier: Option<&str>,
) -> (u16, Value) {
    let mut fields = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect),
        ("client_id", ID),
        ("client_secret", SECRET),
    ];
    if let Some(v) = verifier {
        fields.push(("code_verifier", v));
    }
    post(state, &fields, None)
}

fn body_auth() -> Mutex<State> {
    state(FakeOAuthConfig::new(ID, SECRET, FakeClientAuth::Body))
}

#[test]
fn sha256_matches_the_standard_vectors() {
    let hex = |b: [u8; 32]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert_eq!(
        hex(sha256(b"")),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        hex(sha256(b"abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    // Two blocks: the padding spills into a second one.
    assert_eq!(
        hex(sha256(
            b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
        )),
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
    );
    assert_eq!(
        URL_SAFE_NO_PAD.encode(sha256(VERIFIER.as_bytes())),
        CHALLENGE
    );
}

#[test]
fn a_code_with_its_verifier_gives_tokens_once() {
    let s = body_auth();
    let code = mint(&s, Some(CHALLENGE));
    let (status, body) = exchange(&s, &code, REDIRECT, Some(VERIFIER));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let access = body["access_token"].as_str().unwrap().to_owned();
    assert!(live(&s.lock().unwrap(), &access).is_some());

    let (status, body) = exchange(&s, &code, REDIRECT, Some(VERIFIER));
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert!(
        live(&s.lock().unwrap(), &access).is_none(),
        "a replayed code revokes its tokens"
    );
    assert_eq!(s.lock().unwrap().counters.token_calls, 2);
    assert_eq!(s.lock().unwrap().counters.code_exchanges, 1);
}

#[test]
fn a_wrong_verifier_or_redirect_uri_is_invalid_grant() {
    let s = body_auth();
    let code = mint(&s, Some(CHALLENGE));
    let (status, body) = exchange(
        &s,
        &code,
        REDIRECT,
        Some("not-the-verifier-at-all-but-long-enough-xx"),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let code = mint(&s, Some(CHALLENGE));
    let (status, body) = exchange(&s, &code, REDIRECT, None);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let code = mint(&s, Some(CHALLENGE));
    let (status, body) = exchange(
        &s,
        &code,
        "https://api.example/oauth/callback/",
        Some(VERIFIER),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, body) = exchange(&s, "never-minted", REDIRECT, None);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[test]
fn an_expired_code_is_invalid_grant() {
    let s = body_auth();
    let code = mint(&s, None);
    s.lock().unwrap().codes.get_mut(&code).unwrap().expires_at = Instant::now();
    let (status, body) = exchange(&s, &code, REDIRECT, None);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[test]
fn the_client_must_authenticate_the_configured_way() {
    let s = state(FakeOAuthConfig::new(ID, SECRET, FakeClientAuth::Basic));
    let code = mint(&s, None);
    let (status, body) = exchange(&s, &code, REDIRECT, None);
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let fields = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    let (status, body) = post(&s, &fields, Some((ID, "wrong")));
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let (status, body) = post(&s, &fields, Some((ID, SECRET)));
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_refresh_rotates_the_refresh_token() {
    let s = body_auth();
    let code = mint(&s, None);
    let (_, body) = exchange(&s, &code, REDIRECT, None);
    let first = body["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |token: &str| {
        post(
            &s,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", token),
                ("client_id", ID),
                ("client_secret", SECRET),
            ],
            None,
        )
    };
    let (status, body) = refresh(&first);
    assert_eq!(status, 200, "{body}");
    let second = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    assert!(body["access_token"].is_string() && body["expires_in"] == 3600);
    let (status, body) = refresh(&first);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(refresh(&second).0, 200);
    assert_eq!(s.lock().unwrap().counters.refreshes, 2);
}

#[test]
fn slack_answers_failures_as_200_ok_false() {
    let mut config = FakeOAuthConfig::new(ID, SECRET, FakeClientAuth::Body);
    config.dialect = Dialect::Slack;
    let s = state(config);
    let (status, body) = exchange(&s, "never-minted", REDIRECT, None);
    assert_eq!(
        (status, &body),
        (200, &json!({"ok": false, "error": "invalid_code"}))
    );
    let code = mint(&s, None);
    let (status, body) = exchange(&s, &code, REDIRECT, None);
    assert_eq!(status, 200);
    assert_eq!(body["ok"], true);
    assert!(body["authed_user"]["access_token"].is_string());
    assert!(body["access_token"].is_string());
}

#[tokio::test]
async fn switches_and_userinfo_work_over_http() {
    let fake = FakeOAuthProvider::start(ID, SECRET, FakeClientAuth::Body).await;
    let code = fake.mint_code(ID, REDIRECT, None, "read");
    let (_, body) = exchange(&fake.state, &code, REDIRECT, None);
    let access = body["access_token"].as_str().unwrap().to_owned();
    let userinfo = |token: &str| {
        handle(
            &fake.state,
            &FakeRequest {
                method: "GET".into(),
                path: "/userinfo".into(),
                query: BTreeMap::new(),
                headers: {
                    let mut h = hyper::HeaderMap::new();
                    h.insert("authorization", format!("Bearer {token}").parse().unwrap());
                    h
                },
                body: Default::default(),
            },
        )
        .status
    };
    assert_eq!(userinfo(&access), 200);
    assert_eq!(userinfo("nope"), 401);
    fake.fail_next_rate_limited(5);
    let (status, _) = exchange(&fake.state, "x", REDIRECT, None);
    assert_eq!(status, 429);
    fake.revoke_all();
    assert_eq!(userinfo(&access), 401);
    assert_eq!(fake.token_calls(), 2);
}

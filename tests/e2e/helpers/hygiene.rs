//! Secret hygiene, for every test of the binary: each secret a test hands the platform (API
//! keys, the credentials in a create or update body, auth provider keys, tokens the fakes
//! accept or issue) is registered here, and every response body, response header, request URL
//! and captured log line is scanned for all of them. A hit fails the test that sees it.

use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// Shorter values are not treated as secrets (they would match ordinary words).
const MIN_LEN: usize = 8;

static SECRETS: OnceLock<Mutex<BTreeSet<String>>> = OnceLock::new();
static HITS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
static SCANNED: AtomicUsize = AtomicUsize::new(0);

fn secrets() -> &'static Mutex<BTreeSet<String>> {
    SECRETS.get_or_init(Mutex::default)
}

fn hits() -> &'static Mutex<Vec<String>> {
    HITS.get_or_init(Mutex::default)
}

/// Fields whose values are secrets wherever they appear in a request body.
const SECRET_FIELDS: [&str; 9] = [
    "api_key",
    "access_token",
    "refresh_token",
    "client_secret",
    "token",
    "password",
    "personal_access_token",
    "secret",
    "bot_token",
];

pub fn register(secret: &str) {
    if secret.len() >= MIN_LEN {
        secrets()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(secret.to_owned());
    }
}

/// Registers every secret field of a request body, at any depth.
pub fn register_body(body: &Value) {
    match body {
        Value::Object(map) => {
            for (key, value) in map {
                match value {
                    Value::String(s) if SECRET_FIELDS.contains(&key.as_str()) => register(s),
                    other => register_body(other),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(register_body),
        _ => {}
    }
}

/// The registered secrets that occur in `text`.
fn found_in(text: &str) -> Vec<String> {
    SCANNED.fetch_add(1, Ordering::Relaxed);
    let secrets = secrets().lock().unwrap_or_else(|p| p.into_inner());
    secrets
        .iter()
        .filter(|s| text.contains(s.as_str()))
        .cloned()
        .collect()
}

/// Scans `text` (`what` says where it came from) and records every hit.
pub fn scan(what: &str, text: &str) {
    for secret in found_in(text) {
        let shown = &secret[..4];
        hits()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(format!("{what} holds the secret {shown}…: {text}"));
    }
}

/// Panics with every hit recorded so far (by any test: a log line is not always written by
/// the test that caused it).
pub fn assert_clean() {
    let hits = hits().lock().unwrap_or_else(|p| p.into_inner());
    assert!(hits.is_empty(), "secrets leaked:\n{}", hits.join("\n"));
}

/// Secrets registered and texts scanned so far.
pub fn figures() -> (usize, usize) {
    let registered = secrets().lock().unwrap_or_else(|p| p.into_inner()).len();
    (registered, SCANNED.load(Ordering::Relaxed))
}

//! What an attempt keeps of an endpoint's answer: the start of its body, as text, and how long
//! it asks us to wait before the next attempt.

use chrono::{DateTime, NaiveDateTime, Utc};
use std::time::Duration;

/// The most of an answer's body an attempt keeps, in bytes of UTF-8 (DESIGN: "first 1 KB").
pub const RESPONSE_LIMIT: usize = 1024;

/// The longest `Retry-After` taken at its word (a day); a longer one is cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// How many bytes of a body are read to keep [`RESPONSE_LIMIT`]: three more, so that a
/// character that starts inside the limit is read whole.
pub(crate) const READ_LIMIT: usize = RESPONSE_LIMIT + 3;

/// Reads the body chunk by chunk into `into` until it holds [`READ_LIMIT`] bytes or the body
/// ends, so a huge answer costs one chunk, not its size. On an error `into` keeps what arrived.
pub(crate) async fn read_start(
    response: &mut reqwest::Response,
    into: &mut Vec<u8>,
) -> Result<(), reqwest::Error> {
    while into.len() < READ_LIMIT {
        let Some(chunk) = response.chunk().await? else {
            break;
        };
        let room = READ_LIMIT - into.len();
        into.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    Ok(())
}

/// The start of a body as text: invalid UTF-8 replaced by U+FFFD, then cut to at most
/// [`RESPONSE_LIMIT`] bytes on a character boundary.
pub(crate) fn response_text(body: &[u8]) -> String {
    let mut text = String::from_utf8_lossy(&body[..body.len().min(READ_LIMIT)]).into_owned();
    if text.len() > RESPONSE_LIMIT {
        let mut end = RESPONSE_LIMIT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// The wait a `Retry-After` value asks for (RFC 9110 section 10.2.3): delta-seconds or an
/// HTTP-date in any of its three forms, a date in the past meaning now, at most
/// [`MAX_RETRY_AFTER`]. `None` when the value is neither.
pub(crate) fn retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()) {
        // All digits: too many of them for a u64 is still "longer than we wait".
        let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER));
    }
    let at = http_date(value)?;
    let seconds = at.signed_duration_since(now).num_seconds().max(0);
    let seconds = u64::try_from(seconds).unwrap_or(0);
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

/// An HTTP-date: the IMF-fixdate senders use, or the obsolete RFC 850 and asctime forms a
/// recipient must still accept (RFC 9110 section 5.6.7).
fn http_date(value: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc2822(value) {
        return Some(at.with_timezone(&Utc));
    }
    const OBSOLETE: [&str; 2] = [
        "%A, %d-%b-%y %H:%M:%S GMT", // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
        "%a %b %e %H:%M:%S %Y",      // asctime: Sun Nov  6 08:49:37 1994
    ];
    OBSOLETE.iter().find_map(|format| {
        NaiveDateTime::parse_from_str(value, format)
            .ok()
            .map(|at| at.and_utc())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("1994-11-06T08:49:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn delta_seconds_are_read_and_capped() {
        let cases = [
            ("1", Some(Duration::from_secs(1))),
            (" 120 ", Some(Duration::from_secs(120))),
            ("0", Some(Duration::ZERO)),
            ("86401", Some(MAX_RETRY_AFTER)),
            ("99999999999999999999999", Some(MAX_RETRY_AFTER)),
            ("-5", None),
            ("1.5", None),
            ("soon", None),
            ("", None),
        ];
        for (value, expected) in cases {
            assert_eq!(retry_after(value, now()), expected, "{value:?}");
        }
    }

    #[test]
    fn http_dates_in_all_three_forms_are_read() {
        let in_37_seconds = Some(Duration::from_secs(37));
        for value in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(retry_after(value, now()), in_37_seconds, "{value}");
        }
    }

    #[test]
    fn a_date_in_the_past_means_now_and_a_far_one_is_capped() {
        assert_eq!(
            retry_after("Sat, 05 Nov 1994 08:49:37 GMT", now()),
            Some(Duration::ZERO)
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 2044 08:49:37 GMT", now()),
            Some(MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn short_text_is_kept_whole() {
        assert_eq!(response_text(b"{\"ok\":true}"), "{\"ok\":true}");
        assert_eq!(response_text(b""), "");
    }

    #[test]
    fn long_text_is_cut_to_the_limit() {
        let body = vec![b'a'; 5000];
        assert_eq!(response_text(&body), "a".repeat(RESPONSE_LIMIT));
    }

    #[test]
    fn the_cut_never_splits_a_character() {
        // 1023 ASCII bytes, then a 4-byte character that straddles the limit.
        let mut body = vec![b'a'; RESPONSE_LIMIT - 1];
        body.extend_from_slice("😀 and more".as_bytes());
        let text = response_text(&body);
        assert_eq!(text, "a".repeat(RESPONSE_LIMIT - 1));
        // Two-byte characters from the start: 512 of them fill the limit exactly.
        let body = "é".repeat(2000);
        assert_eq!(response_text(body.as_bytes()), "é".repeat(512));
    }

    #[test]
    fn invalid_utf8_is_replaced_and_still_within_the_limit() {
        let mut body = vec![0xff; 2000];
        body.extend_from_slice(b"tail");
        let text = response_text(&body);
        assert!(text.len() <= RESPONSE_LIMIT);
        assert!(text.chars().all(|c| c == char::REPLACEMENT_CHARACTER));
        assert_eq!(response_text(b"ok\xffok"), "ok\u{fffd}ok");
    }
}

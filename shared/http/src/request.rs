//! Reading requests at the edge: the JSON body into a typed input (unknown fields rejected,
//! the failing field named), query parameters, headers.

use crate::problem::Problem;
use domain::FieldError;
use lambda_http::{Body, Request};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;

/// Bodies larger than this are refused before parsing.
pub const MAX_BODY: usize = 256 * 1024;

pub fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    }
}

/// The body as JSON, then as `T`. Returns both, since idempotency fingerprints the JSON.
pub fn json_body<T: DeserializeOwned>(
    req: &Request,
    request_id: &str,
) -> Result<(Value, T), Problem> {
    if let Some(media) = req.headers().get(http::header::CONTENT_TYPE) {
        let media = media.to_str().unwrap_or_default();
        let essence = media.split(';').next().unwrap_or_default().trim();
        let json = essence.eq_ignore_ascii_case("application/json")
            || essence.to_ascii_lowercase().ends_with("+json");
        if !json {
            return Err(Problem::new(
                http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the body must be JSON (Content-Type: application/json)",
                request_id,
            ));
        }
    }
    let bytes = body_bytes(req);
    if bytes.len() > MAX_BODY {
        return Err(Problem::new(
            http::StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body exceeds {MAX_BODY} bytes"),
            request_id,
        ));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::invalid(
            vec![FieldError::new("body", "a JSON object is required")],
            request_id,
        ));
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        Problem::invalid(
            vec![FieldError::new("body", format!("is not valid JSON ({e})"))],
            request_id,
        )
    })?;
    if !value.is_object() {
        return Err(Problem::invalid(
            vec![FieldError::new("body", "must be a JSON object")],
            request_id,
        ));
    }
    let typed = serde_path_to_error::deserialize(&value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let (field, message) = match inner.strip_prefix("unknown field `") {
            // The path already ends with the unknown field's name.
            Some(rest) => {
                let name = rest.split('`').next().unwrap_or_default();
                let field = if path == "." { name.to_owned() } else { path };
                (field, "unknown field".to_owned())
            }
            None => (if path == "." { "body".to_owned() } else { path }, inner),
        };
        Problem::invalid(vec![FieldError::new(field, message)], request_id)
    })?;
    Ok((value, typed))
}

/// Query parameters, last value wins, percent-decoded.
pub fn query(req: &Request) -> HashMap<String, String> {
    req.uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

/// Every value of a repeated query parameter (`?a=1&a=2`), in order, percent-decoded.
pub fn query_values(req: &Request, name: &str) -> Vec<String> {
    req.uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
                .collect()
        })
        .unwrap_or_default()
}

pub fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

//! JSON success responses.

use http::{header, StatusCode};
use lambda_http::{Body, Response};
use serde::Serialize;

pub fn json<T: Serialize>(status: StatusCode, value: &T, request_id: &str) -> Response<Body> {
    let body = serde_json::to_string(value).expect("response types always serialize");
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-request-id", request_id)
        .body(Body::Text(body))
        .expect("valid response")
}

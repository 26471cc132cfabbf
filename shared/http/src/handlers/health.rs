use crate::response::json;
use http::StatusCode;
use lambda_http::{Body, Response};

/// Liveness: answers without touching AWS, so it costs nothing and never fails on a dependency.
#[utoipa::path(get, path = "/health", tag = "meta", security(),
    responses((status = 200, description = "Alive", body = Object, example = json!({"status": "ok"}))))]
pub fn get(request_id: &str) -> Response<Body> {
    json(
        StatusCode::OK,
        &serde_json::json!({"status": "ok"}),
        request_id,
    )
}

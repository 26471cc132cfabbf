//! `GET /oauth/callback` (the oauth-callback function; no API key: the state is the
//! credential) and `POST /source-connections/{id}/reinitiate-oauth`.
//!
//! The callback answers a 303 to the connection's `redirect_url` once the state is valid, with
//! `status=success|error`; without a redirect_url, or with an invalid state, a small
//! self-contained page. Never a token, a code or the state in what it answers or logs.

use super::HandlerResult;
use crate::app::App;
use crate::problem::Problem;
use crate::request::query;
use crate::response::json;
use domain::connection::SourceConnection;
use domain::ids::OrganizationId;
use domain::usecases::oauth_flow::{
    complete_oauth, reinitiate_oauth, CallbackInput, CallbackOutcome,
};
use http::{header as h, StatusCode};
use lambda_http::{Body, Request, Response};

#[utoipa::path(get, path = "/oauth/callback", tag = "oauth",
    params(
        ("state" = String, Query, description = "The state of the authorize URL"),
        ("code" = Option<String>, Query, description = "The provider's authorization code"),
        ("error" = Option<String>, Query, description = "The provider's error (e.g. `access_denied`)"),
    ),
    security(),
    responses(
        (status = 303, description = "Back to the connection's redirect_url with `status=success&source_connection_id=<id>`, or `status=error&error=<code>&source_connection_id=<id>`"),
        (status = 200, description = "Authorized; no redirect_url was given (an HTML page)", content_type = "text/html"),
        (status = 400, description = "Unknown, used or expired state, or a failed authorization without a redirect_url (an HTML page)", content_type = "text/html"),
    ))]
pub async fn callback(app: &App, req: &Request, request_id: &str) -> Response<Body> {
    let params = query(req);
    let input = CallbackInput {
        state: params.get("state").cloned(),
        code: params.get("code").cloned(),
        error: params.get("error").cloned(),
    };
    match complete_oauth(&app.platform, input).await {
        Ok(CallbackOutcome::InvalidState) => page(
            StatusCode::BAD_REQUEST,
            "This authorization link is not valid",
            "It is unknown, was already used, or has expired. Start the connection again from the application.",
            request_id,
        ),
        Ok(CallbackOutcome::Authorized {
            connection_id,
            redirect_url,
        }) => match redirect_url {
            Some(url) => redirect(
                &url,
                &[
                    ("status", "success"),
                    ("source_connection_id", &connection_id.to_string()),
                ],
                request_id,
            ),
            None => page(
                StatusCode::OK,
                "Connected",
                "The source is connected and its first sync has started. You can close this window.",
                request_id,
            ),
        },
        Ok(CallbackOutcome::Failed {
            connection_id,
            redirect_url,
            error,
            message,
        }) => match redirect_url {
            Some(url) => redirect(
                &url,
                &[
                    ("status", "error"),
                    ("error", &error),
                    ("source_connection_id", &connection_id.to_string()),
                ],
                request_id,
            ),
            None => page(
                StatusCode::BAD_REQUEST,
                "The connection was not authorized",
                &message,
                request_id,
            ),
        },
        Err(e) => {
            tracing::error!(error = %e, "the OAuth callback could not read its state");
            page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The platform could not finish the authorization. Try again in a moment.",
                request_id,
            )
        }
    }
}

/// Headers every callback answer carries: nothing cached, no referrer to the next page.
fn guarded(status: StatusCode, request_id: &str) -> http::response::Builder {
    Response::builder()
        .status(status)
        .header(h::CACHE_CONTROL, "no-store")
        .header(h::REFERRER_POLICY, "no-referrer")
        .header("x-content-type-options", "nosniff")
        .header("x-request-id", request_id)
}

fn redirect(url: &str, params: &[(&str, &str)], request_id: &str) -> Response<Body> {
    let Ok(mut target) = url::Url::parse(url) else {
        return page(
            StatusCode::BAD_REQUEST,
            "The connection was not authorized",
            "The redirect URL is not valid.",
            request_id,
        );
    };
    target.query_pairs_mut().extend_pairs(params);
    guarded(StatusCode::SEE_OTHER, request_id)
        .header(h::LOCATION, target.as_str())
        .body(Body::Empty)
        .expect("valid response")
}

fn page(status: StatusCode, title: &str, message: &str, request_id: &str) -> Response<Body> {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"></head>\
         <body style=\"font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem\">\
         <h1 style=\"font-size:1.4rem\">{title}</h1><p>{message}</p></body></html>",
        title = escape(title),
        message = escape(message),
    );
    guarded(status, request_id)
        .header(h::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'",
        )
        .body(Body::Text(html))
        .expect("valid response")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[utoipa::path(post, path = "/source-connections/{id}/reinitiate-oauth", tag = "source-connections",
    params(("id" = String, Path, description = "The connection id")),
    responses(
        (status = 200, description = "The connection with a fresh `auth.auth_url` (10 minutes); the previous link stops working", body = SourceConnection),
        (status = 400, description = "Not a browser OAuth connection, or authorized and healthy", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown connection", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The connection kept changing; retry", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn reinitiate(
    app: &App,
    org: OrganizationId,
    id: &str,
    request_id: &str,
) -> HandlerResult {
    let connection: SourceConnection = reinitiate_oauth(&app.platform, org, id)
        .await
        .map_err(|e| Problem::from_domain(e, request_id))?;
    Ok(json(StatusCode::OK, &connection, request_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_what_they_show() {
        assert_eq!(
            escape("<b>\"x\" & y</b>"),
            "&lt;b&gt;&quot;x&quot; &amp; y&lt;/b&gt;"
        );
    }

    #[test]
    fn redirects_keep_the_callers_query_and_add_the_outcome() {
        let r = redirect(
            "https://app.example.com/done?tab=2",
            &[("status", "success"), ("source_connection_id", "c-1")],
            "req",
        );
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            r.headers()[h::LOCATION],
            "https://app.example.com/done?tab=2&status=success&source_connection_id=c-1"
        );
        assert_eq!(r.headers()[h::CACHE_CONTROL], "no-store");
        assert_eq!(r.headers()[h::REFERRER_POLICY], "no-referrer");
    }
}

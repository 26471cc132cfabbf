//! Answering a request: credentials, switches and faults, routing, errors and rate limits.

use super::api::Api;
use super::{Fault, Mode, Received, Shared, Workspace, DOCS, HOURLY_LIMIT, RATE_LIMIT_DOCS};
use crate::server::{FakeRequest, FakeResponse};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

pub(super) fn answer(shared: &Shared, request: &FakeRequest) -> FakeResponse {
    let count = shared.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let remaining = HOURLY_LIMIT.saturating_sub(count);
    shared
        .received
        .lock()
        .expect("received lock")
        .push(Received::of(request));
    match *shared.mode.lock().expect("mode lock") {
        Mode::Normal => {}
        Mode::TooManyRequests { retry_after_secs } => {
            return secondary_limit(retry_after_secs);
        }
        Mode::PrimaryLimitExhausted { reset_in_secs } => return primary_limit(reset_in_secs),
        Mode::Unavailable => {
            return FakeResponse::text(503, "text/plain", "Service Unavailable");
        }
    }
    let prefix = shared.prefix.lock().expect("prefix lock").clone();
    let fault = take_fault(shared, &request.path);
    if let Some(fault) = fault.filter(|f| *f != Fault::LinkOffHost) {
        return faulty(shared, request, &prefix, fault, remaining);
    }
    let token_ok = !*shared.revoked.lock().expect("revoked lock")
        && is_valid(request, &shared.valid_token.lock().expect("token lock"));
    if !token_ok {
        return with_rate_limit(error(401, "Bad credentials", DOCS), remaining, 3600);
    }
    // The path below the API root; `None` outside it.
    let below_root = request
        .path
        .strip_prefix(prefix.as_str())
        .filter(|rest| rest.starts_with('/'));
    let mut response = match below_root {
        Some(path) if request.method == "GET" => {
            let workspace = shared.workspace.lock().expect("workspace lock");
            route(&workspace, request, path, &prefix)
        }
        _ => error(404, "Not Found", DOCS),
    };
    if fault == Some(Fault::LinkOffHost) {
        let root = root_of(request, "");
        for (name, value) in &mut response.headers {
            if name.eq_ignore_ascii_case("link") {
                *value = value.replace(&root, "https://elsewhere.example");
            }
        }
    }
    with_rate_limit(response, remaining, 3600)
}

/// `http://127.0.0.1:port` and the API's prefix, from the request's `Host` (as GitHub's links
/// use its own host).
pub(super) fn root_of(request: &FakeRequest, prefix: &str) -> String {
    let host = request.header("host").unwrap_or("127.0.0.1");
    format!("http://{host}{prefix}")
}

/// The answer of an armed fault, in place of the request's own.
fn faulty(
    shared: &Shared,
    request: &FakeRequest,
    prefix: &str,
    fault: Fault,
    remaining: usize,
) -> FakeResponse {
    match fault {
        Fault::SecondaryLimit { retry_after_secs } => secondary_limit(Some(retry_after_secs)),
        Fault::PrimaryLimit { reset_in_secs } => primary_limit(reset_in_secs),
        Fault::Malformed => with_rate_limit(
            FakeResponse::text(
                200,
                "application/json; charset=utf-8",
                "[{\"id\": 1, \"title\": \"cut off",
            ),
            remaining,
            3600,
        ),
        Fault::BadGateway => FakeResponse::text(
            502,
            "text/html",
            "<html><body>502 Bad Gateway</body></html>",
        ),
        Fault::ServerError => with_rate_limit(error(500, "Server Error", DOCS), remaining, 3600),
        Fault::SecondaryLimitForbidden { retry_after_secs } => {
            let mut response = error(
                403,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you \
                 try again.",
                RATE_LIMIT_DOCS,
            );
            if let Some(seconds) = retry_after_secs {
                response = response.with_header("retry-after", seconds);
            }
            with_rate_limit(response, remaining, 3600)
        }
        Fault::PrimaryLimitTooManyRequests { reset_in_secs } => {
            let response = error(
                429,
                "API rate limit exceeded for user ID 583231.",
                RATE_LIMIT_DOCS,
            );
            with_rate_limit(response, 0, reset_in_secs)
        }
        Fault::SamlEnforced => with_rate_limit(
            error(
                403,
                "Resource protected by organization SAML enforcement. You must grant your \
                 Personal Access token access to this organization.",
                "https://docs.github.com/articles/authenticating-to-a-github-organization-with-saml-single-sign-on/",
            ),
            remaining,
            3600,
        ),
        Fault::NotAccessible => with_rate_limit(
            error(
                403,
                "Resource not accessible by personal access token",
                "https://docs.github.com/rest/repos/repos#get-a-repository",
            ),
            remaining,
            3600,
        ),
        Fault::WrongShape => {
            with_rate_limit(json_response(200, &json!({"message": "OK"})), remaining, 3600)
        }
        Fault::MovedPermanently => {
            let path = request.path.strip_prefix(prefix).unwrap_or(&request.path);
            let moved = path.strip_prefix("/repos/").and_then(|rest| {
                let mut parts = rest.splitn(3, '/');
                let full_name = format!("{}/{}", parts.next()?, parts.next()?);
                let rest = parts.next().map_or(String::new(), |r| format!("/{r}"));
                let workspace = shared.workspace.lock().expect("workspace lock");
                let id = workspace.repos.get(&full_name)?.id;
                Some(format!("/repositories/{id}{rest}"))
            });
            let location = format!(
                "{}{}",
                root_of(request, prefix),
                moved.as_deref().unwrap_or(path)
            );
            let body = json!({
                "message": "Moved Permanently",
                "url": location,
                "documentation_url": DOCS,
            });
            with_rate_limit(
                json_response(301, &body).with_header("location", &location),
                remaining,
                3600,
            )
        }
        Fault::LinkOffHost => unreachable!("answered with the normal answer"),
    }
}

fn take_fault(shared: &Shared, path: &str) -> Option<Fault> {
    let mut faults = shared.faults.lock().expect("faults lock");
    let index = faults.iter().position(|armed| {
        let suffix = armed.path_suffix.as_str();
        path.ends_with(suffix) || (suffix.ends_with('/') && path.contains(suffix))
    })?;
    let armed = &mut faults[index];
    if armed.skip > 0 {
        armed.skip -= 1;
        return None;
    }
    faults.remove(index).map(|armed| armed.fault)
}

fn secondary_limit(retry_after_secs: Option<u64>) -> FakeResponse {
    let mut response = error(
        429,
        "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
        RATE_LIMIT_DOCS,
    );
    if let Some(seconds) = retry_after_secs {
        response = response.with_header("retry-after", seconds);
    }
    with_rate_limit(response, HOURLY_LIMIT - 1, 3600)
}

fn primary_limit(reset_in_secs: u64) -> FakeResponse {
    let response = error(
        403,
        "API rate limit exceeded for user ID 583231.",
        RATE_LIMIT_DOCS,
    );
    with_rate_limit(response, 0, reset_in_secs)
}

/// `Authorization: Bearer <token>` or the older `token <token>`, the scheme in any case.
fn is_valid(request: &FakeRequest, valid_token: &str) -> bool {
    match request
        .header("authorization")
        .and_then(|v| v.split_once(' '))
    {
        Some((scheme, token)) => {
            (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
                && token.trim() == valid_token
        }
        None => false,
    }
}

/// Answers `path`, the request's path below the API root (`prefix`).
fn route(workspace: &Workspace, request: &FakeRequest, path: &str, prefix: &str) -> FakeResponse {
    if path == "/user" {
        return json_response(200, &user()).with_header("x-oauth-scopes", "repo, read:user");
    }
    // `/repos/{owner}/{name}/...`, or `/repositories/{id}/...` as GitHub's links name it.
    let (repo, sub) = if let Some(rest) = path.strip_prefix("/repos/") {
        let mut segments = rest.splitn(3, '/');
        let (Some(owner), Some(name)) = (segments.next(), segments.next()) else {
            return error(404, "Not Found", DOCS);
        };
        (
            workspace.repos.get(&format!("{owner}/{name}")),
            segments.next(),
        )
    } else if let Some(rest) = path.strip_prefix("/repositories/") {
        let mut segments = rest.splitn(2, '/');
        let id = segments.next().and_then(|id| id.parse::<u64>().ok());
        (
            workspace.repos.values().find(|r| Some(r.id) == id),
            segments.next(),
        )
    } else {
        return error(404, "Not Found", DOCS);
    };
    // A repository the token cannot see is a 404, exactly like one that does not exist.
    let Some(repo) = repo else {
        return error(
            404,
            "Not Found",
            "https://docs.github.com/rest/repos/repos#get-a-repository",
        );
    };
    let link_path = if workspace.link_by_repository_id {
        match sub {
            Some(sub) if !sub.is_empty() => format!("/repositories/{}/{sub}", repo.id),
            _ => format!("/repositories/{}", repo.id),
        }
    } else {
        path.to_owned()
    };
    let api = Api::new(request, repo, prefix, link_path);
    match sub {
        None | Some("") => json_response(200, &api.repository()),
        Some("issues" | "issues/comments") if !repo.has_issues => error(
            410,
            "Issues are disabled for this repo",
            "https://docs.github.com/rest/issues/issues#list-repository-issues",
        ),
        Some("issues") => api.page(request, workspace, api.issues(request)),
        Some("issues/comments") => api.page(request, workspace, api.comments(request)),
        Some(sub) => {
            if let Some(branch) = sub.strip_prefix("branches/") {
                // The name's parts come percent-encoded, its `/` as they are.
                match percent_decode(branch) {
                    Some(branch) => api.branch(&branch),
                    None => error(404, "Branch not found", DOCS),
                }
            } else if let Some(sha) = sub.strip_prefix("git/trees/") {
                api.tree(sha, request.query.contains_key("recursive"))
            } else if let Some(sha) = sub.strip_prefix("git/blobs/") {
                api.blob(sha)
            } else if let Some(basehead) = sub.strip_prefix("compare/") {
                api.compare(basehead)
            } else {
                error(404, "Not Found", DOCS)
            }
        }
    }
}

pub(super) fn account(login: &str, id: u64, kind: &str) -> Value {
    json!({
        "login": login,
        "id": id,
        "node_id": format!("MDQ6VXNlcj{id}"),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"),
        "url": format!("https://api.github.com/users/{login}"),
        "html_url": format!("https://github.com/{login}"),
        "type": kind,
        "site_admin": false,
    })
}

/// The authenticated user, as `GET /user` describes it for a token with the `user` scope.
fn user() -> Value {
    json!({
        "login": "octo-tester",
        "id": 583231,
        "node_id": "MDQ6VXNlcjU4MzIzMQ==",
        "avatar_url": "https://avatars.githubusercontent.com/u/583231?v=4",
        "gravatar_id": "",
        "url": "https://api.github.com/users/octo-tester",
        "html_url": "https://github.com/octo-tester",
        "repos_url": "https://api.github.com/users/octo-tester/repos",
        "type": "User",
        "user_view_type": "private",
        "site_admin": false,
        "name": "Octo Tester",
        "company": "@octo-org",
        "blog": "",
        "location": "Berlin",
        "email": null,
        "hireable": null,
        "bio": null,
        "twitter_username": null,
        "public_repos": 8,
        "public_gists": 1,
        "followers": 20,
        "following": 0,
        "created_at": "2011-01-25T18:44:36Z",
        "updated_at": "2026-10-02T09:12:40Z",
        "private_gists": 0,
        "total_private_repos": 3,
        "owned_private_repos": 2,
        "disk_usage": 10240,
        "collaborators": 0,
        "two_factor_authentication": true,
        "plan": {"name": "free", "space": 976562499, "collaborators": 0, "private_repos": 10000}
    })
}

/// `%XX` escapes decoded (nothing else: `+` is a plus in a path); `None` when not UTF-8 or an
/// escape is cut.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// GitHub's timestamps: UTC, whole seconds, `Z`.
pub(super) fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub(super) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// GitHub's JSON error body: `message`, `documentation_url` and the status as a string.
pub(super) fn error(status: u16, message: &str, documentation_url: &str) -> FakeResponse {
    json_response(
        status,
        &json!({
            "message": message,
            "documentation_url": documentation_url,
            "status": status.to_string(),
        }),
    )
}

pub(super) fn json_response(status: u16, body: &Value) -> FakeResponse {
    FakeResponse::json(status, body)
        .with_header("x-github-api-version-selected", "2022-11-28")
        .with_header("x-github-media-type", "github.v3; format=json")
}

/// The primary rate limit headers every REST answer carries.
fn with_rate_limit(response: FakeResponse, remaining: usize, reset_in_secs: u64) -> FakeResponse {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    response
        .with_header("x-ratelimit-limit", HOURLY_LIMIT)
        .with_header("x-ratelimit-remaining", remaining)
        .with_header("x-ratelimit-used", HOURLY_LIMIT - remaining)
        .with_header("x-ratelimit-reset", now + reset_in_secs)
        .with_header("x-ratelimit-resource", "core")
}

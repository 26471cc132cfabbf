//! GitHub's JSON as entities. A payload keeps what a user searches for (titles, bodies, authors,
//! URLs, timestamps, state, labels) and drops what moves without the item changing (counters,
//! reactions, API URLs, node ids), so an unchanged item hashes the same on every run.

use chrono::{DateTime, Utc};
use domain::entity::Entity;
use serde_json::{json, Value};

pub(super) const REPOSITORY: &str = "github_repository";
pub(super) const ISSUE: &str = "github_issue";
pub(super) const PULL_REQUEST: &str = "github_pull_request";
pub(super) const COMMENT: &str = "github_comment";
pub(super) const FILE: &str = "github_file";

fn text(v: &Value, key: &str) -> Value {
    v.get(key)
        .and_then(Value::as_str)
        .map_or(Value::Null, |s| json!(s))
}

fn login(v: &Value, key: &str) -> Value {
    v.get(key)
        .and_then(|u| u.get("login"))
        .and_then(Value::as_str)
        .map_or(Value::Null, |s| json!(s))
}

pub(super) fn timestamp(v: &Value, key: &str) -> Option<DateTime<Utc>> {
    let s = v.get(key)?.as_str()?;
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `GET /repos/{owner}/{repo}`; `None` when it is not a repository.
pub(super) fn repository(v: &Value) -> Option<Entity> {
    let full_name = v.get("full_name")?.as_str()?;
    let topics: Vec<&str> = v
        .get("topics")
        .and_then(Value::as_array)
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    Some(Entity {
        entity_type: REPOSITORY.into(),
        entity_id: full_name.to_owned(),
        title: full_name.to_owned(),
        // GitHub moves a repository's `updated_at` and `pushed_at` for stars and pushes: not
        // changes of what this entity holds.
        updated_at: None,
        payload: json!({
            "full_name": full_name,
            "name": text(v, "name"),
            "owner": login(v, "owner"),
            "description": text(v, "description"),
            "html_url": text(v, "html_url"),
            "homepage": text(v, "homepage"),
            "default_branch": text(v, "default_branch"),
            "private": v.get("private").and_then(Value::as_bool),
            "visibility": text(v, "visibility"),
            "fork": v.get("fork").and_then(Value::as_bool),
            "archived": v.get("archived").and_then(Value::as_bool),
            "language": text(v, "language"),
            "topics": topics,
            "license": v.get("license").map_or(Value::Null, |l| text(l, "spdx_id")),
            "created_at": text(v, "created_at"),
        }),
    })
}

/// An item of `GET /repos/{owner}/{repo}/issues`: an issue, or a pull request when it has a
/// `pull_request` key (the list holds both, numbered together). `None` when it is neither.
pub(super) fn issue_or_pull_request(repo: &str, v: &Value) -> Option<Entity> {
    let number = v.get("number")?.as_u64()?;
    let title = v.get("title")?.as_str()?;
    let pull_request = v.get("pull_request").filter(|p| p.is_object());
    let labels: Vec<&str> = v
        .get("labels")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(|label| label.get("name").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let assignees: Vec<&str> = v
        .get("assignees")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|u| u.get("login").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let mut payload = json!({
        "repository": repo,
        "number": number,
        "title": title,
        "body": text(v, "body"),
        "state": text(v, "state"),
        "state_reason": text(v, "state_reason"),
        "author": login(v, "user"),
        "labels": labels,
        "assignees": assignees,
        "milestone": v.get("milestone").map_or(Value::Null, |m| text(m, "title")),
        "locked": v.get("locked").and_then(Value::as_bool),
        "html_url": text(v, "html_url"),
        "created_at": text(v, "created_at"),
        "updated_at": text(v, "updated_at"),
        "closed_at": text(v, "closed_at"),
    });
    let entity_type = match pull_request {
        Some(pr) => {
            payload["draft"] = v.get("draft").cloned().unwrap_or(Value::Null);
            payload["merged_at"] = text(pr, "merged_at");
            PULL_REQUEST
        }
        None => ISSUE,
    };
    Some(Entity {
        entity_type: entity_type.into(),
        entity_id: format!("{repo}#{number}"),
        title: title.to_owned(),
        updated_at: timestamp(v, "updated_at"),
        payload,
    })
}

/// An item of `GET /repos/{owner}/{repo}/issues/comments` (issue and pull request
/// conversations alike). `None` when it is not a comment.
pub(super) fn comment(repo: &str, v: &Value) -> Option<Entity> {
    let id = v.get("id")?.as_u64()?;
    // The comment names its issue only through `issue_url`, which ends in the number.
    let number: u64 = v
        .get("issue_url")?
        .as_str()?
        .rsplit('/')
        .next()?
        .parse()
        .ok()?;
    let html_url = text(v, "html_url");
    let on_pull_request = html_url.as_str().is_some_and(|u| u.contains("/pull/"));
    let author = login(v, "user");
    let title = match author.as_str() {
        Some(author) => format!("Comment by {author} on #{number}"),
        None => format!("Comment on #{number}"),
    };
    Some(Entity {
        entity_type: COMMENT.into(),
        entity_id: format!("{repo}#{number}/comments/{id}"),
        title,
        updated_at: timestamp(v, "updated_at"),
        payload: json!({
            "repository": repo,
            "issue_number": number,
            "on_pull_request": on_pull_request,
            "author": author,
            "body": text(v, "body"),
            "html_url": html_url,
            "created_at": text(v, "created_at"),
            "updated_at": text(v, "updated_at"),
        }),
    })
}

/// Why a file's content is not in its entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Omitted {
    Binary,
    TooLarge,
}

/// A file of the branch, with its text when it has one worth keeping.
pub(super) struct FileFacts<'a> {
    pub repo: &'a str,
    pub branch: &'a str,
    pub html_root: Option<&'a str>,
    pub path: &'a str,
    pub sha: &'a str,
    pub size: Option<u64>,
    pub content: Result<String, Omitted>,
}

pub(super) fn file(f: FileFacts<'_>) -> Entity {
    let name = f.path.rsplit('/').next().unwrap_or(f.path);
    let extension = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .filter(|e| !e.is_empty());
    let html_url = f
        .html_root
        .map(|root| format!("{root}/blob/{}/{}", f.branch, f.path));
    let (content, omitted) = match f.content {
        Ok(text) => (Some(text), None),
        Err(Omitted::Binary) => (None, Some("binary")),
        Err(Omitted::TooLarge) => (None, Some("too_large")),
    };
    Entity {
        entity_type: FILE.into(),
        entity_id: format!("{}/{}", f.repo, f.path),
        title: f.path.to_owned(),
        updated_at: None,
        payload: json!({
            "repository": f.repo,
            "branch": f.branch,
            "path": f.path,
            "name": name,
            "extension": extension,
            "sha": f.sha,
            "size": f.size,
            "html_url": html_url,
            "content": content,
            "content_omitted": omitted,
        }),
    }
}

//! The answers about one repository: issues, comments, branches, trees, blobs, comparisons.

use super::routes::{account, error, json_response, parse_time, root_of, time};
use super::workspace::{directories, tree_sha};
use super::{blob_sha, Comment, Commit, Issue, Repo, Workspace, DEFAULT_PER_PAGE, DOCS};
use crate::server::{FakeRequest, FakeResponse};
use base64::Engine;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Answers about one repository, with URLs rooted where the request was sent.
pub(super) struct Api<'a> {
    repo: &'a Repo,
    /// `http://127.0.0.1:port` and the API's prefix, from the request's `Host` (as GitHub's
    /// links use its own host).
    root: String,
    /// The path below `root` the page links name.
    link_path: String,
    html: String,
}

impl<'a> Api<'a> {
    pub(super) fn new(
        request: &FakeRequest,
        repo: &'a Repo,
        prefix: &str,
        link_path: String,
    ) -> Self {
        Self {
            repo,
            root: root_of(request, prefix),
            link_path,
            html: format!("https://github.com/{}", repo.full_name),
        }
    }

    fn api(&self, rest: &str) -> String {
        format!("{}/repos/{}{rest}", self.root, self.repo.full_name)
    }

    fn owner(&self) -> Value {
        account(self.repo.owner(), 9_919, "Organization")
    }

    pub(super) fn repository(&self) -> Value {
        let r = self.repo;
        let name = r.full_name.split_once('/').map_or("", |(_, n)| n);
        json!({
            "id": r.id,
            "node_id": format!("R_kgDO{}", r.id),
            "name": name,
            "full_name": r.full_name,
            "private": r.private,
            "owner": self.owner(),
            "html_url": self.html,
            "description": r.description,
            "fork": false,
            "url": self.api(""),
            "issues_url": self.api("/issues{/number}"),
            "git_url": format!("git://github.com/{}.git", r.full_name),
            "clone_url": format!("{}.git", self.html),
            "homepage": null,
            "size": r.commits.len() * 12,
            "stargazers_count": 80,
            "watchers_count": 80,
            "language": "Rust",
            "has_issues": r.has_issues,
            "forks_count": 9,
            "archived": false,
            "disabled": false,
            "open_issues_count": r.issues.values().filter(|i| !i.closed).count(),
            "license": {"key": "mit", "name": "MIT License", "spdx_id": "MIT"},
            "topics": ["demo", "octocat"],
            "visibility": if r.private { "private" } else { "public" },
            "forks": 9,
            "open_issues": r.issues.values().filter(|i| !i.closed).count(),
            "watchers": 80,
            "default_branch": r.default_branch,
            "permissions": {"admin": false, "maintain": false, "push": false, "triage": false, "pull": true},
            "created_at": time(r.created_at),
            "updated_at": time(r.updated_at()),
            "pushed_at": time(r.clock),
            "subscribers_count": 42,
            "network_count": 9,
        })
    }

    /// `state` (`open` default, `closed`, `all`), `since`, `sort` (`created` default,
    /// `updated`, `comments`) and `direction` (`desc` default).
    pub(super) fn issues(&self, request: &FakeRequest) -> Vec<Value> {
        let q = &request.query;
        let state = q.get("state").map_or("open", String::as_str);
        let since = q.get("since").and_then(|s| parse_time(s));
        let mut issues: Vec<&Issue> = self
            .repo
            .issues
            .values()
            .filter(|i| match state {
                "all" => true,
                "closed" => i.closed,
                _ => !i.closed,
            })
            .filter(|i| since.is_none_or(|s| i.updated_at >= s))
            .collect();
        let by_updated = q.get("sort").is_some_and(|s| s == "updated");
        issues.sort_by_key(|i| {
            if by_updated {
                (i.updated_at, i.number)
            } else {
                (i.created_at, i.number)
            }
        });
        if q.get("direction").is_none_or(|d| d != "asc") {
            issues.reverse();
        }
        issues.into_iter().map(|i| self.issue(i)).collect()
    }

    fn issue(&self, i: &Issue) -> Value {
        let comments = self
            .repo
            .comments
            .values()
            .filter(|c| c.issue == i.number)
            .count();
        let mut issue = json!({
            "url": self.api(&format!("/issues/{}", i.number)),
            "repository_url": self.api(""),
            "comments_url": self.api(&format!("/issues/{}/comments", i.number)),
            "html_url": format!("{}/{}/{}", self.html, if i.pull_request { "pull" } else { "issues" }, i.number),
            "id": i.id,
            "node_id": format!("I_kwDO{}", i.id),
            "number": i.number,
            "title": i.title,
            "user": account(&i.author, 583_231, "User"),
            "labels": i.labels.iter().enumerate().map(|(n, name)| json!({
                "id": 208_045_946 + n as u64,
                "name": name,
                "color": "f29513",
                "default": false,
                "description": null,
            })).collect::<Vec<_>>(),
            "state": if i.closed { "closed" } else { "open" },
            "locked": false,
            "assignee": null,
            "assignees": [],
            "milestone": null,
            "comments": comments,
            "created_at": time(i.created_at),
            "updated_at": time(i.updated_at),
            "closed_at": i.closed_at.map(time),
            "author_association": "MEMBER",
            "active_lock_reason": null,
            "body": i.body,
            "closed_by": null,
            "reactions": {"url": self.api(&format!("/issues/{}/reactions", i.number)), "total_count": 0, "+1": 0, "-1": 0},
            "timeline_url": self.api(&format!("/issues/{}/timeline", i.number)),
            "state_reason": i.closed.then_some("completed"),
        });
        if i.pull_request {
            issue["draft"] = json!(false);
            issue["pull_request"] = json!({
                "url": self.api(&format!("/pulls/{}", i.number)),
                "html_url": format!("{}/pull/{}", self.html, i.number),
                "diff_url": format!("{}/pull/{}.diff", self.html, i.number),
                "patch_url": format!("{}/pull/{}.patch", self.html, i.number),
                "merged_at": i.closed_at.map(time),
            });
        }
        issue
    }

    /// `since`, `sort` (`created` default, `updated`) and `direction` (`asc` default here).
    pub(super) fn comments(&self, request: &FakeRequest) -> Vec<Value> {
        let q = &request.query;
        let since = q.get("since").and_then(|s| parse_time(s));
        let mut comments: Vec<&Comment> = self
            .repo
            .comments
            .values()
            .filter(|c| since.is_none_or(|s| c.updated_at >= s))
            .collect();
        let by_updated = q.get("sort").is_some_and(|s| s == "updated");
        comments.sort_by_key(|c| {
            if by_updated {
                (c.updated_at, c.id)
            } else {
                (c.created_at, c.id)
            }
        });
        if q.get("direction").is_some_and(|d| d == "desc") {
            comments.reverse();
        }
        comments
            .into_iter()
            .map(|c| {
                let kind = match self.repo.issues.get(&c.issue) {
                    Some(i) if i.pull_request => "pull",
                    _ => "issues",
                };
                json!({
                    "url": self.api(&format!("/issues/comments/{}", c.id)),
                    "html_url": format!("{}/{kind}/{}#issuecomment-{}", self.html, c.issue, c.id),
                    "issue_url": self.api(&format!("/issues/{}", c.issue)),
                    "id": c.id,
                    "node_id": format!("IC_kwDO{}", c.id),
                    "user": account(&c.author, 108_110, "User"),
                    "created_at": time(c.created_at),
                    "updated_at": time(c.updated_at),
                    "author_association": "CONTRIBUTOR",
                    "body": c.body,
                    "reactions": {"total_count": 0, "+1": 0, "-1": 0},
                })
            })
            .collect()
    }

    /// One page of a list, with GitHub's `Link` header. `page` counts from 1, `per_page` is
    /// capped at the workspace's maximum.
    pub(super) fn page(
        &self,
        request: &FakeRequest,
        workspace: &Workspace,
        items: Vec<Value>,
    ) -> FakeResponse {
        let q = &request.query;
        let per_page = q
            .get("per_page")
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(DEFAULT_PER_PAGE)
            .clamp(1, workspace.max_per_page.max(1));
        let page = q
            .get("page")
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        let last = items.len().div_ceil(per_page).max(1);
        let body: Vec<Value> = items
            .into_iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .collect();
        let mut response = json_response(200, &Value::Array(body));
        let link_to = |n: usize| {
            let mut query = q.clone();
            query.insert("page".into(), n.to_string());
            query.insert("per_page".into(), per_page.to_string());
            let encoded: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(query.iter())
                .finish();
            format!("{}{}?{encoded}", self.root, self.link_path)
        };
        let mut links = Vec::new();
        if page > 1 {
            links.push(format!("<{}>; rel=\"prev\"", link_to(page - 1)));
        }
        if page < last {
            links.push(format!("<{}>; rel=\"next\"", link_to(page + 1)));
            links.push(format!("<{}>; rel=\"last\"", link_to(last)));
        }
        if page > 1 {
            links.push(format!("<{}>; rel=\"first\"", link_to(1)));
        }
        if !links.is_empty() {
            response = response.with_header("link", links.join(", "));
        }
        response
    }

    fn commit_json(&self, c: &Commit) -> Value {
        json!({
            "sha": c.sha,
            "node_id": format!("C_kwDO{}", &c.sha[..12]),
            "commit": {
                "author": {"name": "Monalisa Octocat", "email": "mona@github.com", "date": time(c.at)},
                "committer": {"name": "Monalisa Octocat", "email": "mona@github.com", "date": time(c.at)},
                "message": c.message,
                "tree": {"sha": tree_sha(&c.files), "url": self.api(&format!("/git/trees/{}", tree_sha(&c.files)))},
                "url": self.api(&format!("/git/commits/{}", c.sha)),
                "comment_count": 0,
            },
            "url": self.api(&format!("/commits/{}", c.sha)),
            "html_url": format!("{}/commit/{}", self.html, c.sha),
            "parents": c.parent.iter().map(|p| json!({"sha": p, "url": self.api(&format!("/commits/{p}"))})).collect::<Vec<_>>(),
        })
    }

    pub(super) fn branch(&self, name: &str) -> FakeResponse {
        match self.repo.head(name) {
            Some(head) => json_response(
                200,
                &json!({
                    "name": name,
                    "commit": self.commit_json(head),
                    "_links": {"self": self.api(&format!("/branches/{name}")), "html": format!("{}/tree/{name}", self.html)},
                    "protected": false,
                    "protection_url": self.api(&format!("/branches/{name}/protection")),
                }),
            ),
            None => error(
                404,
                "Branch not found",
                "https://docs.github.com/rest/branches/branches#get-a-branch",
            ),
        }
    }

    /// A tree by its sha or by a commit's (GitHub takes both); recursive lists every
    /// directory and file below, directories included.
    pub(super) fn tree(&self, sha: &str, recursive: bool) -> FakeResponse {
        if self.repo.commits.is_empty() {
            return error(409, "Git Repository is empty.", DOCS);
        }
        let Some(commit) = self.repo.commits.get(sha).or_else(|| {
            self.repo
                .commits
                .values()
                .find(|c| tree_sha(&c.files) == sha)
        }) else {
            return error(
                404,
                "Not Found",
                "https://docs.github.com/rest/git/trees#get-a-tree",
            );
        };
        let mut entries: Vec<(String, Value)> = Vec::new();
        for dir in directories(&commit.files) {
            if recursive || !dir.contains('/') {
                let below: BTreeMap<String, Vec<u8>> = commit
                    .files
                    .iter()
                    .filter(|(p, _)| p.starts_with(&format!("{dir}/")))
                    .map(|(p, c)| (p.clone(), c.clone()))
                    .collect();
                let sha = tree_sha(&below);
                entries.push((
                    dir.clone(),
                    json!({"path": dir, "mode": "040000", "type": "tree", "sha": sha, "url": self.api(&format!("/git/trees/{sha}"))}),
                ));
            }
        }
        for (path, content) in &commit.files {
            if recursive || !path.contains('/') {
                let sha = blob_sha(content);
                entries.push((
                    path.clone(),
                    json!({"path": path, "mode": "100644", "type": "blob", "sha": sha, "size": content.len(), "url": self.api(&format!("/git/blobs/{sha}"))}),
                ));
            }
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let tree = tree_sha(&commit.files);
        json_response(
            200,
            &json!({
                "sha": tree,
                "url": self.api(&format!("/git/trees/{tree}")),
                "tree": entries.into_iter().map(|(_, e)| e).collect::<Vec<_>>(),
                "truncated": false,
            }),
        )
    }

    pub(super) fn blob(&self, sha: &str) -> FakeResponse {
        let found = self
            .repo
            .commits
            .values()
            .flat_map(|c| c.files.values())
            .find(|content| blob_sha(content) == sha);
        let Some(content) = found else {
            return error(
                404,
                "Not Found",
                "https://docs.github.com/rest/git/blobs#get-a-blob",
            );
        };
        // GitHub wraps the base64 at 60 characters, as git's own encoder does.
        let encoded = base64::engine::general_purpose::STANDARD.encode(content);
        let wrapped: Vec<&str> = encoded
            .as_bytes()
            .chunks(60)
            .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
            .collect();
        json_response(
            200,
            &json!({
                "sha": sha,
                "node_id": format!("B_kwDO{}", &sha[..12]),
                "size": content.len(),
                "url": self.api(&format!("/git/blobs/{sha}")),
                "content": format!("{}\n", wrapped.join("\n")),
                "encoding": "base64",
            }),
        )
    }

    /// `base...head`: the commits of head not in base and the files that differ, with the
    /// status GitHub gives (`ahead`, `behind`, `identical`, `diverged`).
    pub(super) fn compare(&self, basehead: &str) -> FakeResponse {
        let Some((base, head)) = basehead.split_once("...") else {
            return error(404, "Not Found", DOCS);
        };
        let (Some(base), Some(head)) = (self.repo.resolve(base), self.repo.resolve(head)) else {
            return error(
                404,
                "Not Found",
                "https://docs.github.com/rest/commits/commits#compare-two-commits",
            );
        };
        let status = if base.sha == head.sha {
            "identical"
        } else if self.repo.is_ancestor(&base.sha, &head.sha) {
            "ahead"
        } else if self.repo.is_ancestor(&head.sha, &base.sha) {
            "behind"
        } else {
            "diverged"
        };
        let mut commits = Vec::new();
        let mut at = Some(head);
        while let Some(c) = at.filter(|c| c.sha != base.sha) {
            commits.push(self.commit_json(c));
            at = c.parent.as_ref().and_then(|p| self.repo.commits.get(p));
        }
        commits.reverse();
        let added: Vec<&String> = head
            .files
            .keys()
            .filter(|p| !base.files.contains_key(*p))
            .collect();
        let removed: Vec<&String> = base
            .files
            .keys()
            .filter(|p| !head.files.contains_key(*p))
            .collect();
        let mut renamed_from: BTreeMap<&String, &String> = BTreeMap::new();
        for new in &added {
            let sha = blob_sha(&head.files[*new]);
            if let Some(old) = removed.iter().find(|old| {
                blob_sha(&base.files[**old]) == sha && !renamed_from.values().any(|o| o == *old)
            }) {
                renamed_from.insert(new, old);
            }
        }
        let mut files = Vec::new();
        let file = |path: &str, status: &str, content: Option<&Vec<u8>>| {
            let sha = content.map(|c| blob_sha(c));
            json!({
                "sha": sha,
                "filename": path,
                "status": status,
                "additions": content.map_or(0, |c| c.iter().filter(|b| **b == b'\n').count()),
                "deletions": 0,
                "changes": 1,
                "blob_url": format!("{}/blob/{}/{path}", self.html, head.sha),
                "raw_url": format!("{}/raw/{}/{path}", self.html, head.sha),
                "contents_url": self.api(&format!("/contents/{path}?ref={}", head.sha)),
            })
        };
        for (path, content) in &head.files {
            if let Some(old) = renamed_from.get(path) {
                let mut renamed = file(path, "renamed", Some(content));
                renamed["previous_filename"] = json!(old);
                files.push(renamed);
            } else if !base.files.contains_key(path) {
                files.push(file(path, "added", Some(content)));
            } else if base.files[path] != *content {
                files.push(file(path, "modified", Some(content)));
            }
        }
        for path in removed {
            if !renamed_from.values().any(|o| *o == path) {
                let mut gone = file(path, "removed", None);
                gone["sha"] = json!(blob_sha(&base.files[path]));
                files.push(gone);
            }
        }
        json_response(
            200,
            &json!({
                "url": self.api(&format!("/compare/{basehead}")),
                "html_url": format!("{}/compare/{basehead}", self.html),
                "base_commit": self.commit_json(base),
                "merge_base_commit": self.commit_json(base),
                "status": status,
                "ahead_by": commits.len(),
                "behind_by": 0,
                "total_commits": commits.len(),
                "commits": commits,
                "files": files,
            }),
        )
    }
}

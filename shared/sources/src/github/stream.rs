//! GitHub's entity stream for one repository, in phases: the repository itself, its issues and
//! pull requests (one list: `/issues` answers both, so each is counted once), the issue and pull
//! request comments, then the files of the branch.
//!
//! Incremental after a completed run: issues and comments updated since the newest `updated_at`
//! the last run saw, and the files that changed since the last run's commit (removed ones are
//! reported through [`EntityPage::removed`]).
//!
//! Lists are sorted by last update, newest first: an item updated while the run pages through a
//! list moves to its first page, which shifts the rest one place later, so at worst an item is
//! yielded twice (the worker counts it once), never skipped; the moved item itself is newer than
//! the cursor and comes with the next run.

use super::api::{success, Api, SOURCE_NAME};
use super::entities::{self, FileFacts};
use super::files::{self, FileItem, TreeFile};
use crate::upstream::Answer;
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use domain::entity::{Entity, EntityKey};
use domain::stream::{EntityPage, EntityStream, StreamError};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Items per list page: GitHub's largest `per_page`.
pub(super) const PER_PAGE: u32 = 100;
/// Files per page of the files phase: each with content is one blob request.
pub(super) const FILES_PER_PAGE: usize = 20;
/// A files page stops fetching contents after this long, so a slow GitHub cannot stretch a page
/// past the worker's deadline margin (which allows for about one slow call per page).
pub(super) const FILES_PAGE_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);

/// Where a run is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Phase {
    #[default]
    Repository,
    Issues,
    Comments,
    Files,
    Done,
}

/// The checkpoint after a page: the phase, the next page of its list, and the run's
/// bookkeeping (what the final cursor needs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Checkpoint {
    pub phase: Phase,
    /// The next page of the current list, as GitHub's `Link` gave it; `None` starts the list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// The branch whose files the run yields (the configured one, or the default branch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// `https://github.com/owner/repo`, for the files' links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html_url: Option<String>,
    /// The newest `updated_at` seen of issues and pull requests, and of comments (at least the
    /// cursor's, so a run that saw nothing new keeps it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issues_seen: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comments_seen: Option<DateTime<Utc>>,
    /// The branch's head commit and its tree, fixed when the files phase starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<String>,
    /// Steps of the files listing already yielded.
    #[serde(default)]
    pub files_done: usize,
}

/// What a completed run leaves for the next one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Cursor {
    pub repo: String,
    #[serde(default)]
    pub issues_since: Option<DateTime<Utc>>,
    #[serde(default)]
    pub comments_since: Option<DateTime<Utc>>,
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default)]
    pub commit: Option<String>,
}

pub(super) struct GitHubStream {
    api: Api,
    /// `owner/repo`.
    repo: String,
    configured_branch: Option<String>,
    since: Option<Cursor>,
    at: Checkpoint,
    /// The files phase's steps, listed again after a resume (the same commits give the same
    /// list). Paths and shas only: contents are fetched a page at a time.
    files: Option<Vec<FileItem>>,
}

impl GitHubStream {
    pub fn new(
        api: Api,
        repo: String,
        configured_branch: Option<String>,
        since: Option<Cursor>,
        resume: Option<Checkpoint>,
    ) -> Self {
        let at = resume.unwrap_or_else(|| Checkpoint {
            issues_seen: since.as_ref().and_then(|c| c.issues_since),
            comments_seen: since.as_ref().and_then(|c| c.comments_since),
            ..Checkpoint::default()
        });
        Self {
            api,
            repo,
            configured_branch,
            since,
            at,
            files: None,
        }
    }

    fn page(&self, entities: Vec<Entity>, removed: Vec<EntityKey>) -> EntityPage {
        EntityPage {
            entities,
            removed,
            checkpoint: serde_json::to_value(&self.at).expect("a checkpoint serializes"),
        }
    }

    fn repo_path(&self, rest: &str) -> String {
        self.api.endpoint(&format!("repos/{}{rest}", self.repo))
    }

    async fn repository(&mut self) -> Result<EntityPage, StreamError> {
        let answer = self.api.get(&self.repo_path("")).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Err(StreamError::Rejected(format!(
                "token cannot read {}",
                self.repo
            )));
        }
        success(&answer, &self.repo)?;
        let body = answer.json(SOURCE_NAME)?;
        let entity = entities::repository(&body).ok_or_else(|| {
            StreamError::Malformed("GitHub answered something other than a repository".into())
        })?;
        let default_branch = body.get("default_branch").and_then(Value::as_str);
        self.at.branch = self
            .configured_branch
            .clone()
            .or_else(|| default_branch.map(str::to_owned));
        self.at.html_url = body
            .get("html_url")
            .and_then(Value::as_str)
            .map(str::to_owned);
        self.at.phase = Phase::Issues;
        self.at.next = None;
        Ok(self.page(vec![entity], Vec::new()))
    }

    /// The first page of a list sorted by last update, newest first, since `since` if given.
    fn first_page(&self, path: &str, state_all: bool, since: Option<DateTime<Utc>>) -> String {
        let mut url = format!(
            "{}?{}sort=updated&direction=desc&per_page={PER_PAGE}",
            self.repo_path(path),
            if state_all { "state=all&" } else { "" }
        );
        if let Some(since) = since {
            url.push_str("&since=");
            url.push_str(&since.to_rfc3339_opts(SecondsFormat::Secs, true));
        }
        url
    }

    /// One page of a list; answers its items and moves `next` on.
    async fn list_page(&mut self, first: String, what: &str) -> Result<Vec<Value>, StreamError> {
        let url = self.at.next.take().unwrap_or(first);
        let answer = self.api.get(&url).await?;
        success(&answer, &format!("the {what} of {}", self.repo))?;
        let items = match answer.json(SOURCE_NAME)? {
            Value::Array(items) => items,
            _ => {
                return Err(StreamError::Malformed(format!(
                    "GitHub answered a page of {what} that is not a list"
                )))
            }
        };
        self.at.next = self.api.next_link(&answer.headers)?;
        Ok(items)
    }

    async fn issues(&mut self) -> Result<EntityPage, StreamError> {
        let since = self.since.as_ref().and_then(|c| c.issues_since);
        let first = self.first_page("/issues", true, since);
        let items = self.list_page(first, "issues").await?;
        let mut page = Vec::with_capacity(items.len());
        for item in &items {
            let entity = entities::issue_or_pull_request(&self.repo, item).ok_or_else(|| {
                StreamError::Malformed("GitHub answered an issue without a number or title".into())
            })?;
            self.at.issues_seen = newest(self.at.issues_seen, entity.updated_at);
            page.push(entity);
        }
        if self.at.next.is_none() {
            self.at.phase = Phase::Comments;
        }
        Ok(self.page(page, Vec::new()))
    }

    async fn comments(&mut self) -> Result<EntityPage, StreamError> {
        let since = self.since.as_ref().and_then(|c| c.comments_since);
        let first = self.first_page("/issues/comments", false, since);
        let items = self.list_page(first, "comments").await?;
        let mut page = Vec::with_capacity(items.len());
        for item in &items {
            let entity = entities::comment(&self.repo, item).ok_or_else(|| {
                StreamError::Malformed("GitHub answered a comment without an id or issue".into())
            })?;
            self.at.comments_seen = newest(self.at.comments_seen, entity.updated_at);
            page.push(entity);
        }
        if self.at.next.is_none() {
            self.at.phase = Phase::Files;
        }
        Ok(self.page(page, Vec::new()))
    }

    /// The next files of the listing (built first if needed); `None` once all were yielded.
    async fn files(&mut self) -> Result<Option<EntityPage>, StreamError> {
        let started = std::time::Instant::now();
        if self.files.is_none() {
            self.files = Some(self.list_files().await?);
        }
        let listing = self.files.as_deref().unwrap_or_default();
        let start = self.at.files_done.min(listing.len());
        if start == listing.len() {
            self.at.phase = Phase::Done;
            return Ok(None);
        }
        let batch: Vec<FileItem> = listing[start..]
            .iter()
            .take(FILES_PER_PAGE)
            .cloned()
            .collect();
        let (mut entities, mut removed, mut done) = (Vec::new(), Vec::new(), 0);
        for item in &batch {
            if done > 0 && started.elapsed() >= FILES_PAGE_BUDGET {
                break;
            }
            done += 1;
            match item {
                FileItem::Removed(path) => {
                    // A path too long for a key was never stored: nothing to remove.
                    if let Ok(key) =
                        EntityKey::new(entities::FILE, &format!("{}/{path}", self.repo))
                    {
                        removed.push(key);
                    }
                }
                FileItem::Present(file) => entities.push(self.file(file).await?),
            }
        }
        self.at.files_done = start + done;
        if self.at.files_done >= listing.len() {
            self.at.phase = Phase::Done;
        }
        Ok(Some(self.page(entities, removed)))
    }

    async fn file(&self, file: &TreeFile) -> Result<Entity, StreamError> {
        let content = match files::not_fetched(file) {
            Some(omitted) => Err(omitted),
            None => {
                let url = self.repo_path(&format!("/git/blobs/{}", file.sha));
                let answer = self.api.get(&url).await?;
                success(&answer, &format!("a file of {}", self.repo))?;
                files::blob_text(&answer.json(SOURCE_NAME)?).ok_or_else(|| {
                    StreamError::Malformed("GitHub answered a blob without its content".into())
                })?
            }
        };
        Ok(entities::file(FileFacts {
            repo: &self.repo,
            branch: self.at.branch.as_deref().unwrap_or_default(),
            html_root: self.at.html_url.as_deref(),
            path: &file.path,
            sha: &file.sha,
            size: file.size,
            content,
        }))
    }

    /// This run's steps of the files phase: every file of the branch, or (incremental, after a
    /// run that saw a commit) what changed since that commit.
    async fn list_files(&mut self) -> Result<Vec<FileItem>, StreamError> {
        let Some(branch) = self.at.branch.clone() else {
            return Ok(Vec::new());
        };
        if self.at.commit.is_none() && !self.head(&branch).await? {
            return Ok(Vec::new());
        }
        let (Some(commit), Some(tree)) = (self.at.commit.clone(), self.at.tree.clone()) else {
            return Ok(Vec::new());
        };
        let old = self.since.as_ref().and_then(|c| c.commit.clone());
        if old.as_deref() == Some(commit.as_str()) {
            return Ok(Vec::new());
        }
        let changes = match &old {
            Some(old) => self.changes(old, &commit).await?,
            None => None,
        };
        let new_files = match self.tree(&tree).await? {
            Some(files) => files,
            None => return Ok(Vec::new()),
        };
        let changes = match (changes, old) {
            (Some(changes), _) => Some(changes),
            // The comparison could not tell: diff the old commit's tree with the new one.
            (None, Some(old)) => self
                .tree(&old)
                .await?
                .map(|old_files| files::diff(&old_files, &new_files)),
            (None, None) => None,
        };
        Ok(files::items(new_files, changes))
    }

    /// Fixes the branch's head commit and tree for this run; `false` when the branch has no
    /// commit (an empty repository).
    async fn head(&mut self, branch: &str) -> Result<bool, StreamError> {
        let url = self.repo_path(&format!("/branches/{branch}"));
        let answer = self.api.get(&url).await?;
        if answer.status == StatusCode::NOT_FOUND {
            // The default branch of an empty repository does not exist yet; a configured one
            // that is missing is the user's to fix.
            return match &self.configured_branch {
                Some(b) => Err(StreamError::Upstream(format!(
                    "the branch '{b}' does not exist in {}",
                    self.repo
                ))),
                None => Ok(false),
            };
        }
        success(&answer, &format!("the branch of {}", self.repo))?;
        let body = answer.json(SOURCE_NAME)?;
        let commit = body.pointer("/commit/sha").and_then(Value::as_str);
        let tree = body
            .pointer("/commit/commit/tree/sha")
            .and_then(Value::as_str);
        let (Some(commit), Some(tree)) = (commit, tree) else {
            return Err(StreamError::Malformed(
                "GitHub answered a branch without its commit".into(),
            ));
        };
        self.at.commit = Some(commit.to_owned());
        self.at.tree = Some(tree.to_owned());
        Ok(true)
    }

    /// `compare/{old}...{new}`; `None` when it cannot tell every change (see [`files::compared`])
    /// or the old commit is gone (a force-push, then garbage collection).
    async fn changes(&self, old: &str, new: &str) -> Result<Option<files::Changes>, StreamError> {
        let url = self.repo_path(&format!("/compare/{old}...{new}"));
        let answer = self.api.get(&url).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        success(&answer, &format!("the commits of {}", self.repo))?;
        files::compared(&answer.json(SOURCE_NAME)?).map_err(|()| {
            StreamError::Malformed("GitHub answered a comparison without its files".into())
        })
    }

    /// The files of a tree (or of a commit's tree); `None` when it does not exist (the old
    /// commit of a force-push) or the repository is empty.
    async fn tree(&self, sha: &str) -> Result<Option<Vec<TreeFile>>, StreamError> {
        let url = self.repo_path(&format!("/git/trees/{sha}?recursive=1"));
        let answer: Answer = self.api.get(&url).await?;
        if matches!(answer.status, StatusCode::NOT_FOUND | StatusCode::CONFLICT) {
            return Ok(None);
        }
        success(&answer, &format!("the files of {}", self.repo))?;
        let (files, truncated) =
            files::tree_files(&answer.json(SOURCE_NAME)?).ok_or_else(|| {
                StreamError::Malformed("GitHub answered a tree that is not a file listing".into())
            })?;
        if truncated {
            // GitHub lists at most 100,000 entries (7 MB) per tree: the rest is not synced.
            tracing::warn!(
                listed = files.len(),
                "GitHub cut the repository's file listing; files past it are not synced"
            );
        }
        Ok(Some(files))
    }
}

fn newest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    a.max(b)
}

#[async_trait]
impl EntityStream for GitHubStream {
    async fn next_page(&mut self) -> Result<Option<EntityPage>, StreamError> {
        let page = match self.at.phase {
            Phase::Repository => self.repository().await?,
            Phase::Issues => self.issues().await?,
            Phase::Comments => self.comments().await?,
            Phase::Files => return self.files().await,
            Phase::Done => return Ok(None),
        };
        Ok(Some(page))
    }

    fn incremental(&self) -> bool {
        self.since.is_some()
    }

    fn cursor(&self) -> Option<Value> {
        let cursor = Cursor {
            repo: self.repo.clone(),
            issues_since: self.at.issues_seen,
            comments_since: self.at.comments_seen,
            branch: self.at.branch.clone(),
            commit: self.at.commit.clone(),
        };
        Some(serde_json::to_value(cursor).expect("a cursor serializes"))
    }
}

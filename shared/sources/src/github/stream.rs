//! GitHub's entity stream for one repository, in phases: the repository itself, its issues and
//! pull requests (one list: `/issues` answers both, so each is counted once), the issue and pull
//! request comments, then the files of the branch.
//!
//! Incremental after a completed run: issues and comments updated since the newest `updated_at`
//! the last run saw, and the files that changed since the last run's commit (removed ones are
//! reported through [`EntityPage::removed`]; when that commit is gone and nothing can tell them,
//! the run leaves no cursor, so the next one is a full sync).
//!
//! Lists are sorted by last update, oldest first, and each next request asks again with
//! `since=` the newest `updated_at` of the page before (not the next page number): an item
//! deleted or transferred meanwhile cannot shift an unread item onto a page already read, and an
//! item updated while the run pages through the list moves to its end, where this run still sees
//! it. `since` includes its own second, so the items at a page boundary come again (the worker
//! counts them once). Only when a whole page shares the `since` it was asked with (more than a
//! page of items updated in one second) does the run follow the page's `Link` instead, so it
//! always advances.

use super::api::{success, Api, SOURCE_NAME};
use super::entities::{self, FileFacts};
use super::files::{self, FileItem, TreeFile};
use crate::budget::PageBudget;
use crate::upstream::Answer;
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use domain::entity::{Entity, EntityKey};
use domain::stream::{EntityPage, EntityStream, StreamError};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// Items per list page: GitHub's largest `per_page`.
pub(super) const PER_PAGE: u32 = 100;
/// Files per page of the files phase: each with content is one blob request.
pub(super) const FILES_PER_PAGE: usize = 20;

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

/// How the files phase finds what to yield, decided once per run (after the branch's head is
/// fixed) so a resume lists the same steps again without deciding anew.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum FilesVia {
    /// Every file of the tree: a full run, or no commit in the cursor.
    All,
    /// The head is the cursor's commit: nothing to yield.
    Unchanged,
    /// `compare/{old}...{new}` tells every change.
    Compare,
    /// The comparison cannot tell (force-push, a cut list): the old tree against the new one.
    Diff,
}

/// The checkpoint after a page: the phase, where its list goes on, and the run's bookkeeping
/// (what the final cursor needs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Checkpoint {
    pub phase: Phase,
    /// The `since` the next request of the current list asks with: the newest `updated_at` of
    /// the page before. `None` starts the list (from the cursor's time, if any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_since: Option<DateTime<Utc>>,
    /// The `Link` `next` page to ask instead, when a whole page was updated at `list_since`
    /// (asking with the same `since` again would answer the same page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_link: Option<String>,
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
    /// How the files phase lists its steps, once decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_via: Option<FilesVia>,
    /// Steps of the files listing already yielded.
    #[serde(default)]
    pub files_done: usize,
    /// This incremental run could not tell which files were removed: it leaves no cursor, so
    /// the next run is a full one and deletes them by absence.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub full_sync_next: bool,
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
    /// The time a page may take ([`StreamRequest::page_budget`]): a files page stops fetching
    /// contents once it has passed, so a slow GitHub cannot stretch a page past the worker's
    /// hand-over margin.
    ///
    /// [`StreamRequest::page_budget`]: domain::stream::StreamRequest::page_budget
    page_budget: Duration,
}

impl GitHubStream {
    pub fn new(
        api: Api,
        repo: String,
        configured_branch: Option<String>,
        since: Option<Cursor>,
        resume: Option<Checkpoint>,
        page_budget: Duration,
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
            page_budget,
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
        self.end_list();
        Ok(self.page(vec![entity], Vec::new()))
    }

    /// A list sorted by last update, oldest first, since `since` if given.
    fn list_url(&self, path: &str, state_all: bool, since: Option<DateTime<Utc>>) -> String {
        let mut url = format!(
            "{}?{}sort=updated&direction=asc&per_page={PER_PAGE}",
            self.repo_path(path),
            if state_all { "state=all&" } else { "" }
        );
        if let Some(since) = since {
            url.push_str("&since=");
            url.push_str(&since.to_rfc3339_opts(SecondsFormat::Secs, true));
        }
        url
    }

    /// The next page of the current list: asked with the checkpoint's `since` (at first the
    /// cursor's, `from`), or its `Link` when the page before made no progress by time.
    async fn list_page(
        &mut self,
        path: &str,
        state_all: bool,
        from: Option<DateTime<Utc>>,
        what: &str,
    ) -> Result<ListPage, StreamError> {
        let since = self.at.list_since.or(from);
        let url = match self.at.list_link.take() {
            Some(link) => link,
            None => self.list_url(path, state_all, since),
        };
        let answer = self.api.get(&url).await?;
        if answer.status == StatusCode::GONE {
            // "Issues are disabled for this repo" (for `/issues` and its comments alike): there
            // is nothing to list, which is no failure.
            tracing::info!(what, "GitHub has the repository's issues disabled");
            return Ok(ListPage {
                items: Vec::new(),
                since,
                next: None,
            });
        }
        success(&answer, &format!("the {what} of {}", self.repo))?;
        let items = match answer.json(SOURCE_NAME)? {
            Value::Array(items) => items,
            _ => {
                return Err(StreamError::Malformed(format!(
                    "GitHub answered a page of {what} that is not a list"
                )))
            }
        };
        let next = self.api.next_link(&answer.headers)?;
        Ok(ListPage { items, since, next })
    }

    /// Moves the current list on after a page whose newest `updated_at` is `newest`; `false`
    /// once the list has ended.
    fn advance(&mut self, page: ListPage, newest: Option<DateTime<Utc>>) -> bool {
        let Some(link) = page.next else {
            self.end_list();
            return false;
        };
        match newest {
            // GitHub's `since` includes its own second: the items updated then come again.
            Some(newest) if page.since.is_none_or(|since| newest > since) => {
                self.at.list_since = Some(newest);
                self.at.list_link = None;
            }
            // The whole page was updated at `since` (more than a page of items share that
            // second): the same request would answer the same page, so take the next one by
            // number, still at that `since`.
            _ => {
                self.at.list_since = page.since;
                self.at.list_link = Some(link);
            }
        }
        true
    }

    fn end_list(&mut self) {
        self.at.list_since = None;
        self.at.list_link = None;
    }

    async fn issues(&mut self) -> Result<EntityPage, StreamError> {
        let from = self.since.as_ref().and_then(|c| c.issues_since);
        let list = self.list_page("/issues", true, from, "issues").await?;
        let mut page = Vec::with_capacity(list.items.len());
        let mut newest = None;
        for item in &list.items {
            let entity = entities::issue_or_pull_request(&self.repo, item).ok_or_else(|| {
                StreamError::Malformed("GitHub answered an issue without a number or title".into())
            })?;
            newest = newest.max(entity.updated_at);
            page.push(entity);
        }
        self.at.issues_seen = self.at.issues_seen.max(newest);
        if !self.advance(list, newest) {
            self.at.phase = Phase::Comments;
        }
        Ok(self.page(page, Vec::new()))
    }

    async fn comments(&mut self) -> Result<EntityPage, StreamError> {
        let from = self.since.as_ref().and_then(|c| c.comments_since);
        let list = self
            .list_page("/issues/comments", false, from, "comments")
            .await?;
        let mut page = Vec::with_capacity(list.items.len());
        let mut newest = None;
        for item in &list.items {
            let entity = entities::comment(&self.repo, item).ok_or_else(|| {
                StreamError::Malformed("GitHub answered a comment without an id or issue".into())
            })?;
            newest = newest.max(entity.updated_at);
            page.push(entity);
        }
        self.at.comments_seen = self.at.comments_seen.max(newest);
        if !self.advance(list, newest) {
            self.at.phase = Phase::Files;
        }
        Ok(self.page(page, Vec::new()))
    }

    /// The next page of the files phase; `None` once all were yielded. Each call does one of:
    /// fix the branch's head (one request), decide how to list (at most one comparison), list
    /// the steps (at most two requests, again after every resume), or fetch contents within
    /// the page budget. The first three answer a page without entities, so no page runs
    /// several slow requests and then fetches contents on top.
    async fn files(&mut self) -> Result<Option<EntityPage>, StreamError> {
        let page = PageBudget::start(self.page_budget);
        let Some(branch) = self.at.branch.clone() else {
            self.at.phase = Phase::Done;
            return Ok(None);
        };
        if self.at.commit.is_none() {
            if !self.head(&branch).await? {
                self.at.phase = Phase::Done;
                return Ok(None);
            }
            return Ok(Some(self.page(Vec::new(), Vec::new())));
        }
        let Some(via) = self.at.files_via else {
            self.at.files_via = Some(self.files_via().await?);
            return Ok(Some(self.page(Vec::new(), Vec::new())));
        };
        let Some(listing) = self.files.as_deref() else {
            let listing = self.list_files(via).await?;
            self.files = Some(listing);
            return Ok(Some(self.page(Vec::new(), Vec::new())));
        };
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
            // Before every content but the first (every page moves the run on): a page starts
            // no request past its budget.
            if done > 0 && page.spent() {
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

    /// How this run lists its files: every file, or what changed since the cursor's commit.
    async fn files_via(&self) -> Result<FilesVia, StreamError> {
        let old = self.since.as_ref().and_then(|c| c.commit.as_deref());
        Ok(match old {
            None => FilesVia::All,
            Some(old) if Some(old) == self.at.commit.as_deref() => FilesVia::Unchanged,
            Some(old) => match self
                .changes(old, self.at.commit.as_deref().unwrap_or_default())
                .await?
            {
                Some(_) => FilesVia::Compare,
                None => FilesVia::Diff,
            },
        })
    }

    /// This run's steps of the files phase: every file of the branch, or (incremental, after a
    /// run that saw a commit) what changed since that commit. The same commits give the same
    /// steps, so a resume lists them again.
    async fn list_files(&mut self, via: FilesVia) -> Result<Vec<FileItem>, StreamError> {
        let (Some(commit), Some(tree)) = (self.at.commit.clone(), self.at.tree.clone()) else {
            return Ok(Vec::new());
        };
        let old = self.since.as_ref().and_then(|c| c.commit.clone());
        let (via, old) = match (via, old) {
            (FilesVia::Unchanged, _) => return Ok(Vec::new()),
            (FilesVia::Compare | FilesVia::Diff, Some(old)) => (via, old),
            _ => (FilesVia::All, String::new()),
        };
        let changes = match via {
            FilesVia::Compare => self.changes(&old, &commit).await?,
            _ => None,
        };
        let Some(new_files) = self.tree(&tree).await? else {
            return Ok(Vec::new());
        };
        if via == FilesVia::All {
            return Ok(files::items(new_files, None));
        }
        let changes = match changes {
            Some(changes) => changes,
            // The comparison could not tell: diff the old commit's tree with the new one.
            None => match self.tree(&old).await? {
                Some(old_files) => files::diff(&old_files, &new_files),
                None => {
                    // The old commit is gone (a force-push, then garbage collection): nothing
                    // tells which files were removed, and the stored ones are not known here.
                    // This run yields every file of the new tree; failing it instead would
                    // fail every run until someone asks for a full sync. So it leaves no cursor
                    // (see `cursor`): the next run is a full one, and deletes by absence what
                    // this one could not report removed. Deleted files stay at most until then.
                    tracing::warn!(
                        repo = %self.repo,
                        "the last synced commit of the branch is gone from GitHub: removed \
                         files cannot be told, so the next sync is a full one"
                    );
                    self.at.full_sync_next = true;
                    return Ok(files::items(new_files, None));
                }
            },
        };
        Ok(files::items(new_files, Some(changes)))
    }

    /// Fixes the branch's head commit and tree for this run; `false` when the branch has no
    /// commit (an empty repository).
    async fn head(&mut self, branch: &str) -> Result<bool, StreamError> {
        let url = self.repo_path(&format!("/branches/{}", branch_path(branch)));
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

/// A page of a list, the `since` it was asked with, and its `Link` `next` page.
struct ListPage {
    items: Vec<Value>,
    since: Option<DateTime<Utc>>,
    next: Option<String>,
}

/// A branch name as the path of `/branches/{branch}`: each `/`-separated part percent-encoded
/// (`#`, `%`, `?` and the like would otherwise end or change the path), the `/` kept, as
/// GitHub takes branch names with slashes there.
pub(super) fn branch_path(branch: &str) -> String {
    let mut url = url::Url::parse("http://branch/").expect("a constant URL");
    url.path_segments_mut()
        .expect("an http URL has a path")
        .clear()
        .extend(branch.split('/'));
    url.path().trim_start_matches('/').to_owned()
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
        if self.at.full_sync_next {
            // No cursor: the next run is a full one (see `list_files`).
            return None;
        }
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

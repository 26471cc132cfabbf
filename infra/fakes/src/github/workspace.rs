//! The workspace the fake serves: repositories, issues, comments, git history and their shas.

use super::{DEMO_REPO, MAX_PER_PAGE};
use chrono::{DateTime, Duration, TimeZone, Utc};
use std::collections::{BTreeMap, BTreeSet};

/// The repositories the fake serves.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The largest `per_page` honoured (GitHub's is 100); tests lower it to get many pages.
    pub max_per_page: usize,
    /// Page links name the repository by id (`/repositories/{id}/issues?...`), as github.com's
    /// do; `false` (the default) links below the path asked.
    pub link_by_repository_id: bool,
    pub repos: BTreeMap<String, Repo>,
}

impl Default for Workspace {
    fn default() -> Self {
        Self {
            max_per_page: MAX_PER_PAGE,
            link_by_repository_id: false,
            repos: BTreeMap::new(),
        }
    }
}

impl Workspace {
    /// `octo-org/hello-world` with a few issues, a pull request, comments and files.
    pub fn demo() -> Self {
        let mut repo = Repo::new(DEMO_REPO, "main");
        repo.description = Some("My first repository on GitHub!".into());
        repo.commit(
            "main",
            "Initial commit",
            &[
                ("README.md", Some(b"# Hello World\n\nA demo repository.\n")),
                (
                    "src/main.rs",
                    Some(b"fn main() {\n    println!(\"Hello, world!\");\n}\n"),
                ),
                ("docs/guide.md", Some(b"# Guide\n\nRun `cargo run`.\n")),
                ("assets/logo.png", Some(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")),
            ],
        );
        let bug = repo.add_issue("Found a bug", "The greeting is missing a comma.");
        repo.add_comment(bug, "I can reproduce this on main.");
        let feature = repo.add_issue("Add a --name flag", "Greet someone other than the world.");
        let fix = repo.add_pull_request("Fix the greeting", "Closes #1.");
        repo.add_comment(fix, "Looks good to me.");
        repo.close_issue(feature);
        let mut workspace = Self::default();
        workspace.add_repo(repo);
        workspace
    }

    pub fn add_repo(&mut self, repo: Repo) {
        self.repos.insert(repo.full_name.clone(), repo);
    }
}

/// One repository: its metadata, issues and pull requests, comments, and git history.
#[derive(Debug, Clone)]
pub struct Repo {
    pub full_name: String,
    pub id: u64,
    pub description: Option<String>,
    pub private: bool,
    pub default_branch: String,
    pub created_at: DateTime<Utc>,
    /// Branch name to head commit sha.
    pub branches: BTreeMap<String, String>,
    pub commits: BTreeMap<String, Commit>,
    /// By number; pull requests share the numbering, as on GitHub.
    pub issues: BTreeMap<u64, Issue>,
    /// By id.
    pub comments: BTreeMap<u64, Comment>,
    /// `false` turns the repository's issues off: its issue lists answer 410, as on GitHub.
    pub has_issues: bool,
    /// Advances a minute at every change, so each change has a later `updated_at`.
    pub(super) clock: DateTime<Utc>,
    next_id: u64,
}

#[derive(Debug, Clone)]
pub struct Commit {
    pub sha: String,
    pub parent: Option<String>,
    pub message: String,
    pub at: DateTime<Utc>,
    /// Path to content.
    pub files: BTreeMap<String, Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct Issue {
    pub number: u64,
    pub id: u64,
    pub title: String,
    pub body: Option<String>,
    pub author: String,
    pub labels: Vec<String>,
    pub pull_request: bool,
    pub closed: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct Comment {
    pub id: u64,
    pub issue: u64,
    pub body: String,
    pub author: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Repo {
    /// A repository with no commit yet (GitHub's "empty repository").
    pub fn new(full_name: &str, default_branch: &str) -> Self {
        let seed = digest(full_name.as_bytes()) % 1_000_000;
        let created_at = Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0).unwrap();
        Self {
            full_name: full_name.to_owned(),
            id: 100_000_000 + seed,
            description: None,
            private: false,
            default_branch: default_branch.to_owned(),
            created_at,
            branches: BTreeMap::new(),
            commits: BTreeMap::new(),
            issues: BTreeMap::new(),
            comments: BTreeMap::new(),
            has_issues: true,
            clock: created_at,
            next_id: 1_000_000 + seed * 1000,
        }
    }

    fn tick(&mut self) -> DateTime<Utc> {
        self.clock += Duration::minutes(1);
        self.clock
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn open(&mut self, title: &str, body: &str, pull_request: bool) -> u64 {
        let number = self.issues.keys().next_back().map_or(1, |n| n + 1);
        let at = self.tick();
        let id = self.id();
        self.issues.insert(
            number,
            Issue {
                number,
                id,
                title: title.to_owned(),
                body: (!body.is_empty()).then(|| body.to_owned()),
                author: "octocat".into(),
                labels: Vec::new(),
                pull_request,
                closed: false,
                created_at: at,
                updated_at: at,
                closed_at: None,
            },
        );
        number
    }

    /// Opens an issue; answers its number.
    pub fn add_issue(&mut self, title: &str, body: &str) -> u64 {
        self.open(title, body, false)
    }

    /// Opens a pull request; answers its number.
    pub fn add_pull_request(&mut self, title: &str, body: &str) -> u64 {
        self.open(title, body, true)
    }

    /// Changes an issue or pull request, which moves its `updated_at`.
    pub fn edit_issue(&mut self, number: u64, change: impl FnOnce(&mut Issue)) {
        let at = self.tick();
        let issue = self.issues.get_mut(&number).expect("no such issue");
        change(issue);
        issue.updated_at = at;
    }

    pub fn close_issue(&mut self, number: u64) {
        let at = self.tick();
        self.edit_issue(number, |issue| {
            issue.closed = true;
            issue.closed_at = Some(at);
        });
    }

    /// Deletes an issue and its comments (what an admin can do on GitHub).
    pub fn delete_issue(&mut self, number: u64) {
        self.issues.remove(&number);
        self.comments.retain(|_, c| c.issue != number);
    }

    /// Comments on an issue or pull request; answers the comment's id. Like GitHub, this moves
    /// the issue's `updated_at` too.
    pub fn add_comment(&mut self, issue: u64, body: &str) -> u64 {
        let at = self.tick();
        let id = self.id();
        self.comments.insert(
            id,
            Comment {
                id,
                issue,
                body: body.to_owned(),
                author: "hubot".into(),
                created_at: at,
                updated_at: at,
            },
        );
        self.issues
            .get_mut(&issue)
            .expect("no such issue")
            .updated_at = at;
        id
    }

    pub fn edit_comment(&mut self, id: u64, body: &str) {
        let at = self.tick();
        let comment = self.comments.get_mut(&id).expect("no such comment");
        comment.body = body.to_owned();
        comment.updated_at = at;
    }

    pub fn delete_comment(&mut self, id: u64) {
        self.comments.remove(&id);
    }

    /// Commits on top of `branch` (creating it from nothing when new): each change writes a
    /// file (`Some(content)`) or removes it (`None`). Answers the new commit's sha.
    pub fn commit(
        &mut self,
        branch: &str,
        message: &str,
        changes: &[(&str, Option<&[u8]>)],
    ) -> String {
        let parent = self.branches.get(branch).cloned();
        let mut files = parent
            .as_ref()
            .map(|sha| self.commits[sha].files.clone())
            .unwrap_or_default();
        for (path, content) in changes {
            match content {
                Some(content) => {
                    files.insert((*path).to_owned(), content.to_vec());
                }
                None => {
                    files.remove(*path);
                }
            }
        }
        let at = self.tick();
        let sha = sha_of(&[
            parent.as_deref().unwrap_or("").as_bytes(),
            message.as_bytes(),
            tree_sha(&files).as_bytes(),
            at.to_rfc3339().as_bytes(),
        ]);
        self.commits.insert(
            sha.clone(),
            Commit {
                sha: sha.clone(),
                parent,
                message: message.to_owned(),
                at,
                files,
            },
        );
        self.branches.insert(branch.to_owned(), sha.clone());
        sha
    }

    /// Rewrites `branch` as a force-push does: a new commit on top of the head's parent (or a
    /// new root commit), `changes` applied to the parent's files, takes the head's place. The
    /// old head still answers by its sha until [`Repo::garbage_collect`]. Answers the new sha.
    pub fn force_push(
        &mut self,
        branch: &str,
        message: &str,
        changes: &[(&str, Option<&[u8]>)],
    ) -> String {
        match self.head(branch).and_then(|c| c.parent.clone()) {
            Some(parent) => {
                self.branches.insert(branch.to_owned(), parent);
            }
            None => {
                self.branches.remove(branch);
            }
        }
        self.commit(branch, message, changes)
    }

    /// Drops the commits no branch reaches (what GitHub does, some time after a force-push):
    /// their shas, trees and comparisons answer 404 from then on.
    pub fn garbage_collect(&mut self) {
        let mut reachable = BTreeSet::new();
        for head in self.branches.values() {
            let mut at = Some(head.clone());
            while let Some(sha) = at {
                at = self.commits.get(&sha).and_then(|c| c.parent.clone());
                reachable.insert(sha);
            }
        }
        self.commits.retain(|sha, _| reachable.contains(sha));
    }

    /// The head commit of a branch.
    pub fn head(&self, branch: &str) -> Option<&Commit> {
        self.commits.get(self.branches.get(branch)?)
    }

    pub(super) fn owner(&self) -> &str {
        self.full_name.split_once('/').map_or("", |(o, _)| o)
    }

    pub(super) fn updated_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    /// A commit by sha, or the head of a branch by name.
    pub(super) fn resolve(&self, reference: &str) -> Option<&Commit> {
        self.commits.get(reference).or_else(|| self.head(reference))
    }

    pub(super) fn is_ancestor<'a>(&'a self, ancestor: &str, mut of: &'a str) -> bool {
        loop {
            if of == ancestor {
                return true;
            }
            match self.commits.get(of).and_then(|c| c.parent.as_deref()) {
                Some(parent) => of = parent,
                None => return false,
            }
        }
    }
}

// --- shas: deterministic 40-hex ids, the same content giving the same id (as in git) ---

fn digest(bytes: &[u8]) -> u64 {
    // FNV-1a: enough to tell contents apart in a fake.
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn sha_of(parts: &[&[u8]]) -> String {
    let mut joined = Vec::new();
    for part in parts {
        joined.extend_from_slice(part);
        joined.push(0);
    }
    let a = digest(&joined);
    let b = digest(&[joined.as_slice(), b"b"].concat());
    let c = digest(&[joined.as_slice(), b"c"].concat());
    format!("{a:016x}{b:016x}{:08x}", c >> 32)
}

/// The sha the fake gives a file's content (its blob), as the tree and blob answers name it.
pub fn blob_sha(content: &[u8]) -> String {
    sha_of(&[b"blob", content])
}

impl Commit {
    /// The sha of the commit's tree, as the branch and tree answers name it.
    pub fn tree_sha(&self) -> String {
        tree_sha(&self.files)
    }
}

pub(super) fn tree_sha(files: &BTreeMap<String, Vec<u8>>) -> String {
    let mut listing = Vec::new();
    for (path, content) in files {
        listing.extend_from_slice(path.as_bytes());
        listing.extend_from_slice(blob_sha(content).as_bytes());
    }
    sha_of(&[b"tree", &listing])
}

/// Every directory of a tree, e.g. `src` and `src/bin` for `src/bin/x.rs`.
pub(super) fn directories(files: &BTreeMap<String, Vec<u8>>) -> BTreeSet<String> {
    let mut dirs = BTreeSet::new();
    for path in files.keys() {
        let mut at = path.as_str();
        while let Some((dir, _)) = at.rsplit_once('/') {
            dirs.insert(dir.to_owned());
            at = dir;
        }
    }
    dirs
}

//! The entity stream against the fake GitHub of the fakes crate (the one the end-to-end tests
//! use): paging, checkpoints and resume, the cursor and incremental runs, and what each kind of
//! answer means for the run.

use super::api::next_link;
use super::files::{compared, decode_base64, diff, not_fetched, Changes, TreeFile};
use super::*;
use crate::testing::{header_map, next_page_within, SHORT_BUDGET, SLOW_CALL};
use crate::upstream::http_client;
use domain::auth::Credentials;
use domain::entity::{Entity, EntityKey};
use domain::stream::EntityPage;
use fakes::github::{blob_sha, Comment, FakeGithub, Fault, Received, Repo, Workspace};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

const PAT: &str = "ghp_streamSecret0never0in0messages";
const REPO: &str = "octo/hello";
const ISSUES: &str = "/repos/octo/hello/issues";
const COMMENTS: &str = "/repos/octo/hello/issues/comments";

// --- the repository the fake GitHub serves ---

/// The files of `main`'s first commit: text, a known binary extension, a nested file (so the
/// tree lists a directory too), binary content.
const FILES: &[(&str, &[u8])] = &[
    ("README.md", b"# Hello\n"),
    ("logo.png", b"\x89PNG"),
    ("src/main.rs", b"fn main() {}\n"),
    ("data.bin", b"\x00\x01\x02"),
];

/// The issues of [`world`], numbered from 1: whether each is a pull request, and when it was
/// last updated (#n on March n).
const ITEMS: &[(bool, &str)] = &[
    (true, "2026-03-01T00:00:00Z"),
    (false, "2026-03-02T00:00:00Z"),
    (false, "2026-03-03T00:00:00Z"),
    (true, "2026-03-04T00:00:00Z"),
    (false, "2026-03-05T00:00:00Z"),
];

fn at(time: &str) -> DateTime<Utc> {
    time.parse().unwrap()
}

/// `octo/hello` (id 7): one item of `items` a number (`Issue {n}`, labelled `bug`), `files` on
/// `main` when there are any (none: an empty repository).
fn repo_with(items: &[(bool, &str)], files: &[(&str, &[u8])]) -> Repo {
    let mut repo = Repo::new(REPO, "main");
    repo.id = 7;
    repo.description = Some("Hello".into());
    if !files.is_empty() {
        let changes: Vec<(&str, Option<&[u8]>)> =
            files.iter().map(|(path, c)| (*path, Some(*c))).collect();
        repo.commit("main", "Initial commit", &changes);
    }
    for (pull_request, updated) in items {
        let title = format!("Issue {}", repo.issues.len() + 1);
        let number = if *pull_request {
            repo.add_pull_request(&title, "text")
        } else {
            repo.add_issue(&title, "text")
        };
        let issue = repo.issues.get_mut(&number).unwrap();
        issue.labels = vec!["bug".into()];
        issue.updated_at = at(updated);
    }
    repo
}

/// A comment `id` on issue `issue`, last updated at `updated`.
fn comment(repo: &mut Repo, id: u64, issue: u64, updated: &str) {
    let comment = Comment {
        id,
        issue,
        body: format!("comment {id}"),
        author: "hubot".into(),
        created_at: at("2026-01-01T00:00:00Z"),
        updated_at: at(updated),
    };
    repo.comments.insert(id, comment);
}

/// Two items a page, and links that name the repository by id, as github.com's do.
fn workspace_of(repo: Repo) -> Workspace {
    let mut workspace = Workspace {
        max_per_page: 2,
        link_by_repository_id: true,
        ..Workspace::default()
    };
    workspace.add_repo(repo);
    workspace
}

/// [`ITEMS`], comments 901 on #5 (March 6) and 902 on #4 (March 5, noon), and `files`.
fn world_with(files: &[(&str, &[u8])]) -> Workspace {
    let mut repo = repo_with(ITEMS, files);
    comment(&mut repo, 901, 5, "2026-03-06T00:00:00Z");
    comment(&mut repo, 902, 4, "2026-03-05T12:00:00Z");
    workspace_of(repo)
}

fn world() -> Workspace {
    world_with(FILES)
}

async fn start(world: Workspace) -> FakeGithub {
    FakeGithub::start_with(PAT, world).await
}

fn source(github: &FakeGithub) -> GitHubSource {
    GitHubSource::new(
        http_client().unwrap(),
        BaseUrl::parse(&github.base_url).unwrap(),
    )
}

/// `main`'s head: its commit and tree.
fn head(github: &FakeGithub) -> (String, String) {
    let repo = github.repo(REPO);
    let head = repo.head("main").unwrap();
    (head.sha.clone(), head.tree_sha())
}

/// The requests the fake received for `path`, in order.
fn asked(github: &FakeGithub, path: &str) -> Vec<Received> {
    github
        .received()
        .into_iter()
        .filter(|r| r.path == path)
        .collect()
}

fn query(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn request(config: Value, since: Option<Value>, resume: Option<Value>) -> StreamRequest {
    let fields = json!({ "personal_access_token": PAT });
    StreamRequest {
        auth: AuthenticationRequest::Direct(Credentials::new(fields.as_object().unwrap().clone())),
        config: config.as_object().unwrap().clone(),
        cursor: since,
        checkpoint: resume,
        page_budget: crate::testing::PAGE_BUDGET,
    }
}

fn config() -> Value {
    json!({"repo_name": REPO})
}

struct Run {
    pages: Vec<EntityPage>,
    error: Option<StreamError>,
    stream: Box<dyn EntityStream>,
}

impl Run {
    fn entities(&self) -> Vec<&Entity> {
        self.pages.iter().flat_map(|p| &p.entities).collect()
    }

    /// The ids yielded of a type, each once (as the worker counts them), in the order first
    /// yielded.
    fn ids(&self, entity_type: &str) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for e in self.entities() {
            if e.entity_type == entity_type && !ids.contains(&e.entity_id) {
                ids.push(e.entity_id.clone());
            }
        }
        ids
    }

    fn removed(&self) -> Vec<String> {
        self.pages
            .iter()
            .flat_map(|p| &p.removed)
            .map(|k| k.to_string())
            .collect()
    }

    fn file(&self, path: &str) -> &Entity {
        let id = format!("{REPO}/{path}");
        self.entities()
            .into_iter()
            .find(|e| e.entity_type == "github_file" && e.entity_id == id)
            .unwrap_or_else(|| panic!("no file {path}"))
    }
}

async fn drain(github: &FakeGithub, request: StreamRequest) -> Run {
    let stream = source(github).open_stream(request).unwrap();
    finish(Run {
        pages: Vec::new(),
        error: None,
        stream,
    })
    .await
}

// --- a full run ---

#[tokio::test]
async fn a_full_run_yields_the_repository_issues_pull_requests_comments_and_files() {
    let github = start(world()).await;
    let run = drain(&github, request(config(), None, None)).await;
    assert_eq!(run.error, None);
    assert!(!run.stream.incremental());

    assert_eq!(run.ids("github_repository"), [REPO]);
    assert_eq!(
        run.ids("github_issue"),
        ["octo/hello#2", "octo/hello#3", "octo/hello#5"],
        "oldest update first"
    );
    assert_eq!(
        run.ids("github_pull_request"),
        ["octo/hello#1", "octo/hello#4"]
    );
    assert_eq!(
        run.ids("github_comment"),
        ["octo/hello#4/comments/902", "octo/hello#5/comments/901"]
    );
    assert_eq!(
        run.ids("github_file"),
        [
            "octo/hello/README.md",
            "octo/hello/data.bin",
            "octo/hello/logo.png",
            "octo/hello/src/main.rs"
        ],
        "blobs only, by path; directories are not files"
    );
    // Pull requests come from the issues list only: never a second list to dedupe.
    assert!(github.paths().iter().all(|u| !u.contains("/pulls")));

    let readme = run.file("README.md");
    assert_eq!(readme.payload["content"], "# Hello\n");
    assert_eq!(
        readme.payload["html_url"],
        "https://github.com/octo/hello/blob/main/README.md"
    );
    assert_eq!(run.file("data.bin").payload["content_omitted"], "binary");
    assert_eq!(run.file("logo.png").payload["content"], Value::Null);
    // A known binary extension is not even fetched.
    let logo = format!("/git/blobs/{}", blob_sha(b"\x89PNG"));
    assert!(!github.paths().iter().any(|u| u.ends_with(&logo)));
}

#[tokio::test]
async fn payloads_keep_what_users_search_and_drop_what_moves() {
    let github = start(world()).await;
    let run = drain(&github, request(config(), None, None)).await;
    let entities = run.entities();
    let issue = entities
        .iter()
        .find(|e| e.entity_id == "octo/hello#5")
        .unwrap();
    assert_eq!(issue.title, "Issue 5");
    assert_eq!(issue.payload["author"], "octocat");
    assert_eq!(issue.payload["labels"], json!(["bug"]));
    assert_eq!(issue.payload["state"], "open");
    assert!(issue.payload.get("reactions").is_none() && issue.payload.get("node_id").is_none());
    assert_eq!(
        issue.updated_at.unwrap().to_rfc3339(),
        "2026-03-05T00:00:00+00:00"
    );
    let pr = entities
        .iter()
        .find(|e| e.entity_id == "octo/hello#4")
        .unwrap();
    assert_eq!(pr.payload["draft"], false);
    let repo = entities
        .iter()
        .find(|e| e.entity_type == "github_repository")
        .unwrap();
    assert!(repo.payload.get("stargazers_count").is_none());
    assert_eq!(repo.payload["default_branch"], "main");

    // The same upstream state hashes the same on the next run.
    let again = drain(&github, request(config(), None, None)).await;
    let hashes =
        |run: &Run| -> Vec<_> { run.entities().iter().map(|e| e.content_hash()).collect() };
    assert_eq!(hashes(&run), hashes(&again));
}

// --- paging, checkpoints and resume ---

#[tokio::test]
async fn lists_go_on_since_the_last_update_seen_and_a_resumed_run_continues_after_its_checkpoint() {
    let github = start(world()).await;
    let run = drain(&github, request(config(), None, None)).await;
    assert_eq!(run.error, None);
    let issue_requests: Vec<Received> = github
        .received()
        .into_iter()
        .filter(|r| r.path.contains("issues") && !r.path.contains("comments"))
        .collect();
    assert_eq!(issue_requests.len(), 4, "{issue_requests:?}");
    assert_eq!(
        issue_requests[0].query,
        query(&[
            ("state", "all"),
            ("sort", "updated"),
            ("direction", "asc"),
            ("per_page", "100")
        ]),
        "no since"
    );
    // Each next request asks since the newest update of the page before, never by number.
    for (request, since) in issue_requests[1..].iter().zip(["02", "03", "04"]) {
        assert_eq!(request.path, ISSUES, "{issue_requests:?}");
        assert_eq!(request.param("direction"), Some("asc"));
        assert_eq!(
            request.param("since"),
            Some(format!("2026-03-{since}T00:00:00Z").as_str())
        );
        assert_eq!(request.param("page"), None, "{issue_requests:?}");
    }

    // After the first issues page: where the list goes on, and the newest update so far.
    let checkpoint = run.pages[1].checkpoint.clone();
    assert_eq!(checkpoint["phase"], "issues");
    assert_eq!(checkpoint["list_since"], "2026-03-02T00:00:00Z");
    assert_eq!(checkpoint.get("list_link"), None);
    assert_eq!(checkpoint["issues_seen"], "2026-03-02T00:00:00Z");

    let before = github.received().len();
    let resumed = drain(&github, request(config(), None, Some(checkpoint))).await;
    assert_eq!(resumed.error, None);
    let all: Vec<&Entity> = run.entities();
    let rest: Vec<&Entity> = resumed.entities();
    assert_eq!(rest, all[3..], "everything after the first issues page");
    assert_eq!(
        github.received()[before].param("since"),
        Some("2026-03-02T00:00:00Z")
    );
    assert_eq!(resumed.stream.cursor(), run.stream.cursor());
}

/// The stream of a run opened with `since`, after its repository page and first issues page.
async fn after_first_issues_page(github: &FakeGithub, since: Option<Value>) -> Run {
    let mut stream = source(github)
        .open_stream(request(config(), since, None))
        .unwrap();
    let mut pages = Vec::new();
    for _ in 0..2 {
        pages.push(stream.next_page().await.unwrap().unwrap());
    }
    Run {
        pages,
        error: None,
        stream,
    }
}

/// Pulls the rest of a run's pages.
async fn finish(mut run: Run) -> Run {
    for _ in 0..100 {
        match run.stream.next_page().await {
            Ok(Some(page)) => run.pages.push(page),
            Ok(None) => return run,
            Err(e) => {
                run.error = Some(e);
                return run;
            }
        }
    }
    panic!("the stream does not end");
}

/// The issue numbers (issues and pull requests) a run yielded, each once, sorted.
fn numbers(run: &Run) -> Vec<u64> {
    let mut numbers: Vec<u64> = run
        .entities()
        .into_iter()
        .filter_map(|e| e.entity_id.strip_prefix("octo/hello#"))
        .filter_map(|n| n.parse().ok())
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    numbers
}

#[tokio::test]
async fn an_item_deleted_from_a_page_already_read_makes_no_later_item_skipped() {
    let github = start(world()).await;
    let run = after_first_issues_page(&github, None).await;
    let read = numbers(&run);
    assert_eq!(read.len(), 2);
    // An item of the page read is deleted (or transferred) while the run is between pages:
    // every later item moves one place earlier.
    github.repo(REPO).delete_issue(read[0]);
    let run = finish(run).await;
    assert_eq!(run.error, None);
    assert_eq!(numbers(&run), [1, 2, 3, 4, 5], "nothing skipped");
}

#[tokio::test]
async fn an_item_updated_mid_run_on_a_page_not_read_yet_is_still_yielded() {
    for since in [
        None,
        Some(json!({"repo": REPO, "issues_since": "2026-03-01T00:00:00Z"})),
    ] {
        let github = start(world()).await;
        let run = after_first_issues_page(&github, since.clone()).await;
        let read = numbers(&run);
        // The unread item updated longest ago: on the last page whichever way the list runs.
        let edited = {
            let mut repo = github.repo(REPO);
            let number = repo
                .issues
                .values()
                .filter(|i| !read.contains(&i.number))
                .min_by_key(|i| i.updated_at)
                .unwrap()
                .number;
            let item = repo.issues.get_mut(&number).unwrap();
            item.updated_at = at("2026-03-09T00:00:00Z");
            item.title = "edited".into();
            number
        };
        let run = finish(run).await;
        assert_eq!(run.error, None);
        assert_eq!(numbers(&run), [1, 2, 3, 4, 5], "since {since:?}");
        let last = run
            .entities()
            .into_iter()
            .rfind(|e| e.entity_id == format!("octo/hello#{edited}"))
            .unwrap();
        assert_eq!(last.title, "edited");
        assert_eq!(
            run.stream.cursor().unwrap()["issues_since"],
            "2026-03-09T00:00:00Z"
        );
    }
}

#[tokio::test]
async fn a_whole_page_updated_in_one_second_is_passed_by_its_link() {
    let at = "2026-03-02T00:00:00Z";
    let items = [
        (false, "2026-03-01T00:00:00Z"),
        (false, at),
        (false, at),
        (false, at),
        (false, at),
        (false, at),
        (false, "2026-03-03T00:00:00Z"),
        (false, "2026-03-04T00:00:00Z"),
    ];
    let github = start(workspace_of(repo_with(&items, FILES))).await;
    let run = drain(&github, request(config(), None, None)).await;
    assert_eq!(run.error, None);
    assert_eq!(
        run.ids("github_issue"),
        (1..=8)
            .map(|n| format!("octo/hello#{n}"))
            .collect::<Vec<_>>()
    );
    // Asked since the shared second, the page is all of that second: the run takes the next
    // page by its link, at the same `since`, and goes on by time after it.
    let with_link: Vec<&Value> = run
        .pages
        .iter()
        .map(|p| &p.checkpoint)
        .filter(|c| c.get("list_link").is_some())
        .collect();
    assert!(!with_link.is_empty());
    for checkpoint in with_link {
        assert_eq!(checkpoint["list_since"], at);
        assert!(checkpoint["list_link"]
            .as_str()
            .unwrap()
            .contains("/repositories/7/issues?"));
    }
    assert!(asked(&github, "/repositories/7/issues")
        .iter()
        .any(|r| r.param("since") == Some(at) && r.param("page") == Some("3")));
    assert!(asked(&github, ISSUES).iter().any(|r| r.query
        == query(&[
            ("state", "all"),
            ("sort", "updated"),
            ("direction", "asc"),
            ("per_page", "100"),
            ("since", "2026-03-03T00:00:00Z")
        ])));
    assert_eq!(
        run.stream.cursor().unwrap()["issues_since"],
        "2026-03-04T00:00:00Z"
    );
}

#[tokio::test]
async fn disabled_issues_are_an_empty_list() {
    // GitHub answers both lists (issues and their comments) 410 when issues are turned off.
    let mut w = world();
    w.repos.get_mut(REPO).unwrap().has_issues = false;
    let github = start(w).await;
    let run = drain(&github, request(config(), None, None)).await;
    assert_eq!(run.error, None);
    assert!(run.ids("github_issue").is_empty() && run.ids("github_pull_request").is_empty());
    assert!(run.ids("github_comment").is_empty());
    assert_eq!(run.ids("github_file").len(), 4, "the run goes on");
    // Each list was asked once, and its 410 ended it.
    assert_eq!(asked(&github, ISSUES).len(), 1);
    assert_eq!(asked(&github, COMMENTS).len(), 1);
}

#[tokio::test]
async fn a_resume_inside_the_files_lists_them_again_and_skips_what_was_yielded() {
    let many: Vec<(String, Vec<u8>)> = (0..45)
        .map(|i| (format!("f{i:02}.txt"), format!("file {i}").into_bytes()))
        .collect();
    let files: Vec<(&str, &[u8])> = many
        .iter()
        .map(|(path, content)| (path.as_str(), content.as_slice()))
        .collect();
    let github = start(world_with(&files)).await;
    let (commit, tree) = head(&github);
    let run = drain(&github, request(config(), None, None)).await;
    let file_pages: Vec<&EntityPage> = run
        .pages
        .iter()
        .filter(|p| p.entities.iter().any(|e| e.entity_type == "github_file"))
        .collect();
    assert_eq!(
        file_pages
            .iter()
            .map(|p| p.entities.len())
            .collect::<Vec<_>>(),
        [20, 20, 5]
    );
    let checkpoint = file_pages[0].checkpoint.clone();
    assert_eq!(
        (
            checkpoint["phase"].clone(),
            checkpoint["files_done"].clone()
        ),
        (json!("files"), json!(20))
    );
    assert_eq!(
        (checkpoint["commit"].clone(), checkpoint["tree"].clone()),
        (json!(commit), json!(tree))
    );

    // The branch moved meanwhile: the resumed run keeps to the commit it started with.
    github
        .repo(REPO)
        .commit("main", "Another file", &[("g.txt", Some(b"g"))]);
    assert_ne!(head(&github).0, commit);
    let resumed = drain(&github, request(config(), None, Some(checkpoint))).await;
    assert_eq!(resumed.error, None);
    let ids: Vec<String> = resumed.ids("github_file");
    assert_eq!(ids.len(), 25);
    assert_eq!(ids[0], "octo/hello/f20.txt");
    assert_eq!(
        resumed.stream.cursor().unwrap()["commit"],
        commit.as_str(),
        "the next run starts from what this one synced"
    );
}

#[tokio::test]
async fn the_files_are_listed_on_pages_of_their_own_before_any_content() {
    let github = start(world()).await;
    let (commit, tree) = head(&github);
    let mut stream = source(&github)
        .open_stream(request(config(), None, None))
        .unwrap();
    let blobs = |github: &FakeGithub| {
        github
            .paths()
            .iter()
            .filter(|u| u.contains("/git/blobs/"))
            .count()
    };
    // (entities, checkpoint, blobs asked so far) of each page of the files phase.
    let mut steps = Vec::new();
    let mut in_files = false;
    while let Some(page) = stream.next_page().await.unwrap() {
        let now_in_files = page.checkpoint["phase"] == "files";
        if in_files {
            steps.push((page.entities.len(), page.checkpoint, blobs(&github)));
        }
        in_files = now_in_files || in_files;
    }
    // The head, then how to list, then the listing: each its own page, with no content.
    let (entities, head, asked) = &steps[0];
    assert_eq!((*entities, *asked), (0, 0));
    assert_eq!(
        (&head["commit"], &head["tree"]),
        (&json!(commit), &json!(tree))
    );
    assert_eq!(head.get("files_via"), None);
    let (entities, via, asked) = &steps[1];
    assert_eq!(
        (*entities, *asked, &via["files_via"]),
        (0, 0, &json!("all"))
    );
    let (entities, listed, asked) = &steps[2];
    assert_eq!(
        (*entities, *asked, &listed["files_done"]),
        (0, 0, &json!(0))
    );
    let (entities, _, asked) = &steps[3];
    assert_eq!(
        (*entities, *asked),
        (4, 2),
        "contents come on the next page"
    );

    // A resume lists again from the fixed commit, on a page of its own.
    let before = github.received().len();
    let mut resumed = source(&github)
        .open_stream(request(config(), None, Some(listed.clone())))
        .unwrap();
    let page = resumed.next_page().await.unwrap().unwrap();
    assert!(page.entities.is_empty());
    let asked: Vec<(String, BTreeMap<String, String>)> = github.received()[before..]
        .iter()
        .map(|r| (r.path.clone(), r.query.clone()))
        .collect();
    assert_eq!(
        asked,
        [(
            format!("/repos/{REPO}/git/trees/{tree}"),
            query(&[("recursive", "1")])
        )]
    );
    let page = resumed.next_page().await.unwrap().unwrap();
    assert_eq!(page.entities.len(), 4);
}

#[tokio::test]
async fn a_files_page_of_a_slow_github_returns_within_its_budget_and_one_call() {
    let notes: Vec<(String, Vec<u8>)> = (0..24)
        .map(|i| {
            (
                format!("notes/{i:02}.md"),
                format!("# Note {i}\n").into_bytes(),
            )
        })
        .collect();
    let files: Vec<(&str, &[u8])> = notes
        .iter()
        .map(|(path, content)| (path.as_str(), content.as_slice()))
        .collect();
    let github = start(world_with(&files)).await;
    github.answer_after(SLOW_CALL);
    let short = StreamRequest {
        page_budget: SHORT_BUDGET,
        ..request(config(), None, None)
    };
    let mut stream = source(&github).open_stream(short).unwrap();
    let (mut yielded, mut content_pages) = (Vec::new(), 0);
    loop {
        let Some(page) = next_page_within(&mut stream, SHORT_BUDGET).await else {
            break;
        };
        let files: Vec<String> = page
            .entities
            .iter()
            .filter(|e| e.entity_type == "github_file")
            .map(|e| e.entity_id.clone())
            .collect();
        // From the first page of contents on, every page moves the run on.
        if content_pages > 0 || !files.is_empty() {
            assert!(!files.is_empty(), "a files page without a file");
            content_pages += 1;
        }
        yielded.extend(files);
    }
    assert_eq!(yielded.len(), 24);
    assert!(content_pages >= 4, "{content_pages} pages of contents");
}

#[tokio::test]
async fn a_force_push_whose_old_commit_is_gone_makes_the_next_run_a_full_one() {
    let github = start(world()).await;
    let first = drain(&github, request(config(), None, None)).await;
    let cursor = first.stream.cursor().unwrap();
    {
        let mut repo = github.repo(REPO);
        repo.force_push(
            "main",
            "Rewrite history",
            &[("other.txt", Some(b"rewritten\n"))],
        );
        // GitHub drops the commit no branch reaches any more.
        repo.garbage_collect();
    }
    let run = drain(&github, request(config(), Some(cursor), None)).await;
    assert_eq!(run.error, None);
    assert!(run.stream.incremental());
    assert_eq!(run.ids("github_file"), ["octo/hello/other.txt"]);
    // Which files went cannot be told: no cursor, so the next run is a full one and deletes
    // them by absence.
    assert!(run.removed().is_empty());
    assert_eq!(run.stream.cursor(), None);
    let last = run.pages.last().unwrap();
    assert_eq!(
        last.checkpoint["full_sync_next"], true,
        "kept across a resume"
    );
}

#[tokio::test]
async fn branch_names_are_percent_encoded_in_the_path() {
    let github = start(world()).await;
    let config = json!({"repo_name": REPO, "branch": "feat/x#1%y"});
    let run = drain(&github, request(config.clone(), None, None)).await;
    assert!(matches!(run.error, Some(StreamError::Upstream(_))));
    assert!(
        github
            .paths()
            .contains(&format!("GET /repos/{REPO}/branches/feat/x%231%25y")),
        "{:?}",
        github.paths()
    );
    // Once the branch exists, GitHub finds it by that path.
    github
        .repo(REPO)
        .commit("feat/x#1%y", "Start", &[("a.txt", Some(b"a\n"))]);
    let run = drain(&github, request(config, None, None)).await;
    assert_eq!(run.error, None);
    assert_eq!(run.ids("github_file"), ["octo/hello/a.txt"]);
    assert_eq!(stream::branch_path("main"), "main");
    assert_eq!(stream::branch_path("a/b c?d"), "a/b%20c%3Fd");
}

#[tokio::test]
async fn an_unreadable_checkpoint_is_malformed() {
    let github = start(world()).await;
    let result =
        source(&github).open_stream(request(config(), None, Some(json!({"phase": "nowhere"}))));
    assert!(matches!(result, Err(StreamError::Malformed(_))));
}

// --- incremental runs ---

#[tokio::test]
async fn the_cursor_makes_the_next_run_ask_only_for_what_changed() {
    let github = start(world()).await;
    let (first_commit, _) = head(&github);
    let first = drain(&github, request(config(), None, None)).await;
    let cursor = first.stream.cursor().unwrap();
    assert_eq!(
        cursor,
        json!({
            "repo": REPO,
            "issues_since": "2026-03-05T00:00:00Z",
            "comments_since": "2026-03-06T00:00:00Z",
            "branch": "main",
            "commit": first_commit,
        })
    );

    // Upstream: #2 edited, a comment edited, and a commit that edits, adds, renames and
    // removes files.
    let second_commit = {
        let mut repo = github.repo(REPO);
        repo.issues.get_mut(&2).unwrap().updated_at = at("2026-03-07T00:00:00Z");
        repo.comments.get_mut(&902).unwrap().updated_at = at("2026-03-08T00:00:00Z");
        repo.commit(
            "main",
            "Edit, add, rename and remove",
            &[
                ("README.md", Some(b"# Hello again\n")),
                ("src/main.rs", None),
                ("src/lib.rs", Some(b"fn main() {}\n")),
                ("NEW.md", Some(b"new\n")),
                ("data.bin", None),
            ],
        )
    };
    let before = github.received().len();
    let second = drain(&github, request(config(), Some(cursor), None)).await;
    assert_eq!(second.error, None);
    assert!(second.stream.incremental());
    let asked = &github.received()[before..];
    assert!(
        asked
            .iter()
            .any(|r| r.path == ISSUES && r.param("since") == Some("2026-03-05T00:00:00Z")),
        "{asked:?}"
    );
    assert!(asked
        .iter()
        .any(|r| r.path == COMMENTS && r.param("since") == Some("2026-03-06T00:00:00Z")));
    let compare = format!("/repos/{REPO}/compare/{first_commit}...{second_commit}");
    assert!(asked.iter().any(|r| r.path == compare));

    // `since` includes its second: the newest items of the last run come again.
    assert_eq!(second.ids("github_issue"), ["octo/hello#5", "octo/hello#2"]);
    assert_eq!(
        second.ids("github_comment"),
        ["octo/hello#5/comments/901", "octo/hello#4/comments/902"]
    );
    assert_eq!(
        second.ids("github_file"),
        [
            "octo/hello/NEW.md",
            "octo/hello/README.md",
            "octo/hello/src/lib.rs"
        ]
    );
    assert_eq!(
        second.removed(),
        [
            "github_file#octo/hello/data.bin",
            "github_file#octo/hello/src/main.rs"
        ]
    );
    let cursor = second.stream.cursor().unwrap();
    assert_eq!(cursor["issues_since"], "2026-03-07T00:00:00Z");
    assert_eq!(cursor["commit"], second_commit.as_str());

    // Nothing changed since: no issue, no comment, no file, the cursor kept.
    github.repo(REPO).comments.clear();
    let third = drain(&github, request(config(), Some(cursor.clone()), None)).await;
    assert_eq!(third.ids("github_file"), Vec::<String>::new());
    assert!(third.removed().is_empty());
    assert_eq!(third.stream.cursor().unwrap(), cursor);
}

#[tokio::test]
async fn a_force_push_is_diffed_tree_against_tree() {
    let github = start(world()).await;
    let (old, _) = head(&github);
    let first = drain(&github, request(config(), None, None)).await;
    let cursor = first.stream.cursor().unwrap();
    let new = github.repo(REPO).force_push(
        "main",
        "Rewrite history",
        &[
            ("README.md", Some(b"# Hello\n")),
            ("other.txt", Some(b"rewritten history\n")),
        ],
    );
    let run = drain(&github, request(config(), Some(cursor), None)).await;
    assert_eq!(run.error, None);
    // GitHub compares a force-push against the merge base: `diverged`, which tells nothing of
    // the files the old head had; the old tree is still there to diff with.
    assert!(github
        .paths()
        .contains(&format!("GET /repos/{REPO}/compare/{old}...{new}")));
    assert_eq!(run.ids("github_file"), ["octo/hello/other.txt"]);
    assert_eq!(
        run.removed(),
        [
            "github_file#octo/hello/data.bin",
            "github_file#octo/hello/logo.png",
            "github_file#octo/hello/src/main.rs"
        ]
    );
}

#[tokio::test]
async fn a_cursor_of_another_repository_is_ignored() {
    let github = start(world()).await;
    let cursor =
        json!({"repo": "octo/other", "issues_since": "2026-03-05T00:00:00Z", "commit": "c0"});
    let run = drain(&github, request(config(), Some(cursor), None)).await;
    assert!(!run.stream.incremental());
    assert_eq!(run.ids("github_issue").len(), 3);
}

// --- answers ---

/// A run's error, which names neither the token nor where GitHub is.
fn plain(error: StreamError) -> StreamError {
    assert!(!error.to_string().contains(PAT), "{error}");
    assert!(!error.to_string().contains("127.0.0.1"), "{error}");
    error
}

/// The error of a full run whose request to a path ending in `path_suffix` (after `skip` such
/// requests answered normally) gets `fault`.
async fn first_error(path_suffix: &str, skip: usize, fault: Fault) -> StreamError {
    let github = start(world()).await;
    github.fail_after(path_suffix, skip, fault);
    let run = drain(&github, request(config(), None, None)).await;
    plain(run.error.expect("the run fails"))
}

#[tokio::test]
async fn rate_limits_ask_the_worker_to_wait() {
    // On the second page of issues.
    let primary = Fault::PrimaryLimit { reset_in_secs: 120 };
    let StreamError::RateLimited { wait } = first_error("/issues", 1, primary).await else {
        panic!("a spent primary limit is a rate limit");
    };
    assert!((118..=120).contains(&wait.as_secs()), "{wait:?}");

    let secondary = Fault::SecondaryLimit {
        retry_after_secs: 7,
    };
    assert_eq!(
        first_error("/issues/comments", 0, secondary).await,
        StreamError::RateLimited {
            wait: Duration::from_secs(7)
        }
    );
    let secondary_403 = Fault::SecondaryLimitForbidden {
        retry_after_secs: None,
    };
    assert_eq!(
        first_error("/git/blobs/", 0, secondary_403).await,
        StreamError::RateLimited {
            wait: Duration::from_secs(60)
        }
    );
}

#[tokio::test]
async fn a_revoked_or_forbidden_token_is_rejected() {
    // Revoked while the run is between pages.
    let github = start(world()).await;
    let mut stream = source(&github)
        .open_stream(request(config(), None, None))
        .unwrap();
    assert!(
        stream.next_page().await.unwrap().is_some(),
        "the repository"
    );
    github.revoke_token();
    let error = stream
        .next_page()
        .await
        .expect_err("the issues are refused");
    assert_eq!(plain(error), StreamError::Rejected(REJECTED.into()));

    assert!(matches!(
        first_error("/branches/", 0, Fault::SamlEnforced).await,
        StreamError::Rejected(_)
    ));
    // The repository is gone or out of the token's reach.
    let mut w = world();
    w.repos.remove(REPO);
    let github = start(w).await;
    let run = drain(&github, request(config(), None, None)).await;
    assert_eq!(
        run.error,
        Some(StreamError::Rejected("token cannot read octo/hello".into()))
    );

    // A token the vault holds but that can no longer be sent.
    let bad = json!({"personal_access_token": "two\nlines"});
    let req = StreamRequest {
        auth: AuthenticationRequest::Direct(Credentials::new(bad.as_object().unwrap().clone())),
        ..request(config(), None, None)
    };
    assert!(matches!(
        source(&github).open_stream(req).err(),
        Some(StreamError::Rejected(_))
    ));
}

#[tokio::test]
async fn failures_and_odd_answers_end_the_run_with_a_clear_message() {
    // The second page of issues, cut off.
    assert_eq!(
        first_error("/issues", 1, Fault::Malformed).await,
        StreamError::Malformed("GitHub answered HTTP 200 with a body that is not JSON".into())
    );
    assert_eq!(
        first_error("/issues/comments", 0, Fault::WrongShape).await,
        StreamError::Malformed("GitHub answered a page of comments that is not a list".into())
    );
    assert_eq!(
        first_error("/git/trees/", 0, Fault::BadGateway).await,
        StreamError::Upstream("GitHub is unavailable (HTTP 502)".into())
    );
    // A next page on another host: the token is never sent there.
    assert_eq!(
        first_error("/issues", 0, Fault::LinkOffHost).await,
        StreamError::Malformed("GitHub pointed to a next page outside its API".into())
    );
    let StreamError::Upstream(moved) =
        first_error("/branches/main", 0, Fault::MovedPermanently).await
    else {
        panic!("a redirect is the upstream's to explain");
    };
    assert!(moved.contains("(HTTP 301)"), "{moved}");
}

#[tokio::test]
async fn a_configured_branch_that_does_not_exist_fails_the_run() {
    let github = start(world()).await;
    let run = drain(
        &github,
        request(json!({"repo_name": REPO, "branch": "nope"}), None, None),
    )
    .await;
    assert_eq!(
        run.error,
        Some(StreamError::Upstream(
            "the branch 'nope' does not exist in octo/hello".into()
        ))
    );
}

#[tokio::test]
async fn an_empty_repository_has_no_files() {
    // No commit yet: the default branch does not exist.
    let github = start(world_with(&[])).await;
    let run = drain(&github, request(config(), None, None)).await;
    assert_eq!(run.error, None);
    assert!(run.ids("github_file").is_empty());
    assert_eq!(run.stream.cursor().unwrap()["commit"], Value::Null);
}

// --- the pieces, without a server ---

#[test]
fn link_headers_name_the_next_page() {
    let h = header_map(&[(
        "link",
        "<https://api.github.com/repositories/1/issues?page=2>; rel=\"next\", \
         <https://api.github.com/repositories/1/issues?page=5>; rel=\"last\"",
    )]);
    assert_eq!(
        next_link(&h).as_deref(),
        Some("https://api.github.com/repositories/1/issues?page=2")
    );
    let last_page = header_map(&[(
        "link",
        "<https://api.github.com/x?page=1>; rel=\"first\", <https://api.github.com/x?page=4>; rel=\"prev\"",
    )]);
    assert_eq!(next_link(&last_page), None);
    let unquoted = header_map(&[("link", "<https://api.github.com/x?page=3>;rel=next")]);
    assert_eq!(
        next_link(&unquoted).as_deref(),
        Some("https://api.github.com/x?page=3")
    );
    assert_eq!(next_link(&header_map(&[])), None);
    assert_eq!(next_link(&header_map(&[("link", "garbage")])), None);
}

#[test]
fn base64_is_decoded_across_line_breaks() {
    assert_eq!(decode_base64("SGVs\nbG8=\n").unwrap(), b"Hello");
    assert_eq!(decode_base64("").unwrap(), b"");
    assert_eq!(decode_base64("YQ==").unwrap(), b"a");
    assert_eq!(decode_base64("YWI=").unwrap(), b"ab");
    for (encoded, bytes) in [
        ("eA==", &b"x"[..]),
        ("eHk=", b"xy"),
        ("eHl6", b"xyz"),
        ("AP8QIGJpbmFyeQ==", b"\x00\xff\x10 binary"),
    ] {
        assert_eq!(decode_base64(encoded).unwrap(), bytes);
    }
    // As GitHub sends a blob: a line break every 60 characters, and one at the end.
    let wrapped = "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFh\nYWFhYWEK\n";
    assert_eq!(
        decode_base64(wrapped).unwrap(),
        [&[b'a'; 50][..], b"\n"].concat()
    );
    assert_eq!(decode_base64("YQ=="), decode_base64("Y\nQ\n=\n="));
    assert!(decode_base64("YQ").is_none());
    assert!(decode_base64("Y===").is_none());
    assert!(decode_base64("YQ==YQ==").is_none());
    assert!(decode_base64("*Q==").is_none());
}

#[test]
fn large_and_binary_files_are_not_fetched() {
    let file = |path: &str, size: u64| TreeFile {
        path: path.into(),
        sha: "s".into(),
        size: Some(size),
    };
    assert_eq!(not_fetched(&file("src/lib.rs", 100)), None);
    assert_eq!(not_fetched(&file("Makefile", 100)), None);
    assert_eq!(
        not_fetched(&file("src/lib.rs", 256 * 1024 + 1)),
        Some(entities::Omitted::TooLarge)
    );
    assert_eq!(
        not_fetched(&file("img/Logo.PNG", 10)),
        Some(entities::Omitted::Binary)
    );
}

#[test]
fn comparisons_tell_changes_only_when_complete() {
    let files = json!([
        {"filename": "a", "status": "added"},
        {"filename": "b", "status": "modified"},
        {"filename": "c", "status": "removed"},
        {"filename": "d2", "status": "renamed", "previous_filename": "d1"},
        {"filename": "e", "status": "unchanged"},
    ]);
    let changes = compared(&json!({"status": "ahead", "files": files}))
        .unwrap()
        .unwrap();
    assert_eq!(
        changes,
        Changes {
            changed: ["a", "b", "d2"].map(String::from).into(),
            removed: ["c", "d1"].map(String::from).into(),
        }
    );
    assert_eq!(
        compared(&json!({"status": "diverged", "files": []})),
        Ok(None)
    );
    assert_eq!(
        compared(&json!({"status": "behind", "files": []})),
        Ok(None)
    );
    let many: Vec<Value> = (0..300)
        .map(|i| json!({"filename": format!("f{i}"), "status": "added"}))
        .collect();
    assert_eq!(
        compared(&json!({"status": "ahead", "files": many})),
        Ok(None),
        "GitHub cuts the list at 300 files"
    );
    assert_eq!(compared(&json!({"message": "hi"})), Err(()));

    let f = |path: &str, sha: &str| TreeFile {
        path: path.into(),
        sha: sha.into(),
        size: None,
    };
    assert_eq!(
        diff(
            &[f("a", "1"), f("b", "2")],
            &[f("a", "1"), f("b", "3"), f("c", "4")]
        ),
        Changes {
            changed: ["b", "c"].map(String::from).into(),
            removed: Default::default(),
        }
    );
    assert_eq!(diff(&[f("a", "1")], &[]).removed.len(), 1);
}

#[test]
fn removed_keys_are_the_files_keys() {
    let key = EntityKey::new(entities::FILE, "octo/hello/src/main.rs").unwrap();
    assert_eq!(key.as_str(), "github_file#octo/hello/src/main.rs");
}

#[test]
fn the_catalog_entry_lists_the_stream_entity_types() {
    let spec = spec();
    assert!(spec.supports_incremental);
    assert_eq!(
        spec.entity_types,
        [
            "github_repository",
            "github_issue",
            "github_pull_request",
            "github_comment",
            "github_file"
        ]
    );
}

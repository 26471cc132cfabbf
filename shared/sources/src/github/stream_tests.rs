//! The entity stream against a scripted GitHub: paging, checkpoints and resume, the cursor and
//! incremental runs, and what each kind of answer means for the run.

use super::api::next_link;
use super::files::{compared, decode_base64, diff, not_fetched, Changes, TreeFile};
use super::*;
use crate::testing::{header_map, page_time_limit, SHORT_BUDGET, SLOW_CALL};
use crate::upstream::http_client;
use domain::auth::Credentials;
use domain::entity::{Entity, EntityKey};
use domain::stream::EntityPage;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const PAT: &str = "ghp_streamSecret0never0in0messages";
const REPO: &str = "octo/hello";

// --- a scripted GitHub that sees whole URLs (path and query) ---

#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

fn ok(body: Value) -> Answer {
    Answer {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string(),
    }
}

fn status(status: u16, body: Value) -> Answer {
    Answer { status, ..ok(body) }
}

impl Answer {
    fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// What the scripted repository holds; tests change it between runs.
#[derive(Debug, Clone)]
struct World {
    /// Issues and pull requests, comments, as GitHub gives them; listed as GitHub does (see
    /// [`list`]), `page_size` at most per page.
    issues: Vec<Value>,
    comments: Vec<Value>,
    page_size: usize,
    /// The branch head: (commit, tree).
    head: (String, String),
    /// Tree sha (or commit sha) to (path, blob sha, content).
    trees: BTreeMap<String, Vec<(String, String, Vec<u8>)>>,
    /// `old...new` to a comparison answer.
    compares: BTreeMap<String, Answer>,
    /// Answers a request whose path and query contain the key instead, once.
    faults: Vec<(String, Answer)>,
    /// Every answer is sent this long after its request (a slow GitHub).
    delay: Duration,
}

struct Github {
    base_url: String,
    world: Arc<Mutex<World>>,
    seen: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Drop for Github {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Github {
    async fn start(world: World) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let world = Arc::new(Mutex::new(world));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (w, s, root) = (Arc::clone(&world), Arc::clone(&seen), base_url.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (w, s, root) = (Arc::clone(&w), Arc::clone(&s), root.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let url = request
                            .uri()
                            .path_and_query()
                            .map(|p| p.to_string())
                            .unwrap_or_default();
                        let bearer = request
                            .headers()
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned);
                        s.lock().unwrap().push(url.clone());
                        let mut world = w.lock().unwrap();
                        let delay = world.delay;
                        let answer = if bearer.as_deref() == Some(&format!("Bearer {PAT}")) {
                            route(&mut world, &root, &url)
                        } else {
                            status(401, json!({"message": "Bad credentials"}))
                        };
                        drop(world);
                        async move {
                            tokio::time::sleep(delay).await;
                            Ok::<_, Infallible>(respond(answer))
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            base_url,
            world,
            seen,
            task,
        }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    fn change(&self, f: impl FnOnce(&mut World)) {
        f(&mut self.world.lock().unwrap());
    }

    fn source(&self) -> GitHubSource {
        GitHubSource::new(
            http_client().unwrap(),
            BaseUrl::parse(&self.base_url).unwrap(),
        )
    }
}

fn respond(answer: Answer) -> Response<Full<Bytes>> {
    let mut response = Response::builder().status(answer.status);
    for (name, value) in answer.headers {
        response = response.header(name, value);
    }
    response.body(Full::new(Bytes::from(answer.body))).unwrap()
}

fn route(world: &mut World, root: &str, url: &str) -> Answer {
    if let Some(i) = world.faults.iter().position(|(key, _)| url.contains(key)) {
        return world.faults.remove(i).1;
    }
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let repo = format!("/repos/{REPO}");
    let Some(rest) = path.strip_prefix(&repo) else {
        // GitHub's links page through `/repositories/{id}/...`.
        return match path {
            "/repositories/7/issues" => list(world, root, path, query, &world.issues),
            "/repositories/7/issues/comments" => list(world, root, path, query, &world.comments),
            _ => status(404, json!({"message": "Not Found"})),
        };
    };
    match rest {
        "" => ok(json!({
            "id": 7, "full_name": REPO, "name": "hello", "owner": {"login": "octo"},
            "description": "Hello", "html_url": "https://github.com/octo/hello",
            "default_branch": "main", "private": false, "stargazers_count": 3,
            "pushed_at": "2026-11-01T00:00:00Z", "topics": ["demo"],
        })),
        "/issues" => list(world, root, "/repositories/7/issues", query, &world.issues),
        "/issues/comments" => list(
            world,
            root,
            "/repositories/7/issues/comments",
            query,
            &world.comments,
        ),
        "/branches/main" => ok(json!({
            "name": "main",
            "commit": {"sha": world.head.0, "commit": {"tree": {"sha": world.head.1}}},
        })),
        _ => {
            if let Some(sha) = rest.strip_prefix("/git/trees/") {
                return match world.trees.get(sha) {
                    Some(files) => ok(json!({
                        "sha": sha,
                        "truncated": false,
                        "tree": files.iter().map(|(path, sha, content)| json!({
                            "path": path, "mode": "100644", "type": "blob", "sha": sha,
                            "size": content.len(),
                        })).chain([json!({"path": "src", "mode": "040000", "type": "tree", "sha": "d1"})])
                        .collect::<Vec<_>>(),
                    })),
                    None => status(404, json!({"message": "Not Found"})),
                };
            }
            if let Some(sha) = rest.strip_prefix("/git/blobs/") {
                let content = world
                    .trees
                    .values()
                    .flatten()
                    .find(|(_, s, _)| s == sha)
                    .map(|(_, _, c)| c.clone());
                return match content {
                    Some(c) => ok(json!({"sha": sha, "size": c.len(), "encoding": "base64",
                        "content": encode(&c)})),
                    None => status(404, json!({"message": "Not Found"})),
                };
            }
            if let Some(basehead) = rest.strip_prefix("/compare/") {
                return world
                    .compares
                    .get(basehead)
                    .cloned()
                    .unwrap_or_else(|| status(404, json!({"message": "Not Found"})));
            }
            status(404, json!({"message": "Not Found"}))
        }
    }
}

fn updated(item: &Value) -> DateTime<Utc> {
    item["updated_at"].as_str().unwrap().parse().unwrap()
}

/// A list as GitHub answers it: `since` keeps the items updated at or after it, `sort=updated`
/// orders by update (`direction`, `desc` by default), pages of `per_page` (at most the world's
/// `page_size`) numbered by `page`, and a `Link` to the next and last pages below `link_path`.
fn list(world: &World, root: &str, link_path: &str, query: &str, items: &[Value]) -> Answer {
    let params: BTreeMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let since: Option<DateTime<Utc>> = params.get("since").map(|s| s.parse().unwrap());
    let mut items: Vec<Value> = items
        .iter()
        .filter(|i| since.is_none_or(|s| updated(i) >= s))
        .cloned()
        .collect();
    assert_eq!(params.get("sort").map(String::as_str), Some("updated"));
    let id = |i: &Value| i.get("number").or(i.get("id")).and_then(Value::as_u64);
    items.sort_by_key(|i| (updated(i), id(i)));
    if params.get("direction").map(String::as_str) != Some("asc") {
        items.reverse();
    }
    let per_page = params
        .get("per_page")
        .map_or(30, |n| n.parse().unwrap())
        .min(world.page_size);
    let page: usize = params.get("page").map_or(1, |n| n.parse().unwrap());
    let last = items.len().div_ceil(per_page).max(1);
    let body: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let mut answer = ok(Value::Array(body));
    if page < last {
        let link_to = |n: usize| {
            let mut params = params.clone();
            params.insert("page".into(), n.to_string());
            params.insert("per_page".into(), per_page.to_string());
            let query: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params.iter())
                .finish();
            format!("{root}{link_path}?{query}")
        };
        answer = answer.header(
            "link",
            format!(
                "<{}>; rel=\"next\", <{}>; rel=\"last\"",
                link_to(page + 1),
                link_to(last)
            ),
        );
    }
    answer
}

/// Base64 with GitHub's line breaks, for the scripted blobs.
fn encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
        if out.len() % 61 == 60 {
            out.push('\n');
        }
    }
    out
}

fn issue(number: u64, updated: &str) -> Value {
    json!({
        "number": number, "title": format!("Issue {number}"), "body": "text",
        "state": "open", "user": {"login": "octocat"}, "labels": [{"name": "bug"}],
        "html_url": format!("https://github.com/octo/hello/issues/{number}"),
        "created_at": "2026-01-01T00:00:00Z", "updated_at": updated,
        "reactions": {"total_count": 5}, "node_id": "I_x",
    })
}

fn pull_request(number: u64, updated: &str) -> Value {
    let mut pr = issue(number, updated);
    pr["pull_request"] = json!({"url": "…", "merged_at": null});
    pr["draft"] = json!(false);
    pr
}

fn comment(id: u64, issue: u64, updated: &str) -> Value {
    json!({
        "id": id, "body": format!("comment {id}"), "user": {"login": "hubot"},
        "issue_url": format!("https://api.github.com/repos/octo/hello/issues/{issue}"),
        "html_url": format!("https://github.com/octo/hello/issues/{issue}#issuecomment-{id}"),
        "created_at": "2026-01-01T00:00:00Z", "updated_at": updated,
    })
}

fn world() -> World {
    let files = vec![
        (
            "README.md".to_owned(),
            "b1".to_owned(),
            b"# Hello\n".to_vec(),
        ),
        ("logo.png".to_owned(), "b2".to_owned(), b"\x89PNG".to_vec()),
        (
            "src/main.rs".to_owned(),
            "b3".to_owned(),
            b"fn main() {}\n".to_vec(),
        ),
        (
            "data.bin".to_owned(),
            "b4".to_owned(),
            b"\x00\x01\x02".to_vec(),
        ),
    ];
    World {
        issues: vec![
            issue(5, "2026-03-05T00:00:00Z"),
            pull_request(4, "2026-03-04T00:00:00Z"),
            issue(3, "2026-03-03T00:00:00Z"),
            issue(2, "2026-03-02T00:00:00Z"),
            pull_request(1, "2026-03-01T00:00:00Z"),
        ],
        comments: vec![
            comment(901, 5, "2026-03-06T00:00:00Z"),
            comment(902, 4, "2026-03-05T12:00:00Z"),
        ],
        page_size: 2,
        head: ("c1".into(), "t1".into()),
        trees: BTreeMap::from([("t1".to_owned(), files.clone()), ("c1".to_owned(), files)]),
        compares: BTreeMap::new(),
        faults: Vec::new(),
        delay: Duration::ZERO,
    }
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

async fn drain(github: &Github, request: StreamRequest) -> Run {
    let mut stream = github.source().open_stream(request).unwrap();
    let mut pages = Vec::new();
    loop {
        match stream.next_page().await {
            Ok(Some(page)) => pages.push(page),
            Ok(None) => {
                return Run {
                    pages,
                    error: None,
                    stream,
                }
            }
            Err(e) => {
                return Run {
                    pages,
                    error: Some(e),
                    stream,
                }
            }
        }
    }
}

// --- a full run ---

#[tokio::test]
async fn a_full_run_yields_the_repository_issues_pull_requests_comments_and_files() {
    let github = Github::start(world()).await;
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
    assert!(github.seen().iter().all(|u| !u.contains("/pulls")));

    let readme = run.file("README.md");
    assert_eq!(readme.payload["content"], "# Hello\n");
    assert_eq!(
        readme.payload["html_url"],
        "https://github.com/octo/hello/blob/main/README.md"
    );
    assert_eq!(run.file("data.bin").payload["content_omitted"], "binary");
    assert_eq!(run.file("logo.png").payload["content"], Value::Null);
    // A known binary extension is not even fetched.
    assert!(!github.seen().iter().any(|u| u.ends_with("/git/blobs/b2")));
}

#[tokio::test]
async fn payloads_keep_what_users_search_and_drop_what_moves() {
    let github = Github::start(world()).await;
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
    let github = Github::start(world()).await;
    let run = drain(&github, request(config(), None, None)).await;
    assert_eq!(run.error, None);
    let issue_requests: Vec<String> = github
        .seen()
        .into_iter()
        .filter(|u| u.contains("issues") && !u.contains("comments"))
        .collect();
    assert_eq!(issue_requests.len(), 4, "{issue_requests:?}");
    assert!(
        issue_requests[0].contains("state=all")
            && issue_requests[0].contains("sort=updated&direction=asc")
            && issue_requests[0].contains("per_page=100")
            && !issue_requests[0].contains("since="),
        "{issue_requests:?}"
    );
    // Each next request asks since the newest update of the page before, never by number.
    for (request, since) in issue_requests[1..].iter().zip(["02", "03", "04"]) {
        assert!(
            request.starts_with(&format!("/repos/{REPO}/issues?"))
                && request.contains("direction=asc")
                && request.ends_with(&format!("&since=2026-03-{since}T00:00:00Z"))
                && !request.contains("&page="),
            "{issue_requests:?}"
        );
    }

    // After the first issues page: where the list goes on, and the newest update so far.
    let checkpoint = run.pages[1].checkpoint.clone();
    assert_eq!(checkpoint["phase"], "issues");
    assert_eq!(checkpoint["list_since"], "2026-03-02T00:00:00Z");
    assert_eq!(checkpoint.get("list_link"), None);
    assert_eq!(checkpoint["issues_seen"], "2026-03-02T00:00:00Z");

    let before = github.seen().len();
    let resumed = drain(&github, request(config(), None, Some(checkpoint))).await;
    assert_eq!(resumed.error, None);
    let all: Vec<&Entity> = run.entities();
    let rest: Vec<&Entity> = resumed.entities();
    assert_eq!(rest, all[3..], "everything after the first issues page");
    assert!(github.seen()[before].ends_with("since=2026-03-02T00:00:00Z"));
    assert_eq!(resumed.stream.cursor(), run.stream.cursor());
}

/// The stream of a run opened with `since`, after its repository page and first issues page.
async fn after_first_issues_page(github: &Github, since: Option<Value>) -> Run {
    let mut stream = github
        .source()
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
    let github = Github::start(world()).await;
    let run = after_first_issues_page(&github, None).await;
    let read = numbers(&run);
    assert_eq!(read.len(), 2);
    // An item of the page read is deleted (or transferred) while the run is between pages:
    // every later item moves one place earlier.
    github.change(|w| w.issues.retain(|i| i["number"] != read[0]));
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
        let github = Github::start(world()).await;
        let run = after_first_issues_page(&github, since.clone()).await;
        let read = numbers(&run);
        // The unread item updated longest ago: on the last page whichever way the list runs.
        let mut edited = 0;
        github.change(|w| {
            let item = w
                .issues
                .iter_mut()
                .filter(|i| !read.contains(&i["number"].as_u64().unwrap()))
                .min_by_key(|i| updated(i))
                .unwrap();
            edited = item["number"].as_u64().unwrap();
            item["updated_at"] = json!("2026-03-09T00:00:00Z");
            item["title"] = json!("edited");
        });
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
    let mut w = world();
    let at = "2026-03-02T00:00:00Z";
    w.issues = vec![
        issue(1, "2026-03-01T00:00:00Z"),
        issue(2, at),
        issue(3, at),
        issue(4, at),
        issue(5, at),
        issue(6, at),
        issue(7, "2026-03-03T00:00:00Z"),
        issue(8, "2026-03-04T00:00:00Z"),
    ];
    let github = Github::start(w).await;
    let run = finish(Run {
        pages: Vec::new(),
        error: None,
        stream: github
            .source()
            .open_stream(request(config(), None, None))
            .unwrap(),
    })
    .await;
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
    let asked = github.seen();
    assert!(asked.iter().any(|u| u.contains("/repositories/7/issues?")
        && u.contains("since=2026-03-02T00%3A00%3A00Z")
        && u.contains("page=3")));
    assert!(asked.iter().any(|u| u.ends_with(
        "/issues?state=all&sort=updated&direction=asc&per_page=100&since=2026-03-03T00:00:00Z"
    )));
    assert_eq!(
        run.stream.cursor().unwrap()["issues_since"],
        "2026-03-04T00:00:00Z"
    );
}

#[tokio::test]
async fn disabled_issues_are_an_empty_list() {
    let mut w = world();
    let gone = || status(410, json!({"message": "Issues are disabled for this repo"}));
    w.faults.push(("/issues?".into(), gone()));
    let github = Github::start(w).await;
    let run = drain(&github, request(config(), None, None)).await;
    assert_eq!(run.error, None);
    assert!(run.ids("github_issue").is_empty() && run.ids("github_pull_request").is_empty());
    assert_eq!(run.ids("github_comment").len(), 2, "the run goes on");
    assert_eq!(run.ids("github_file").len(), 4);

    let mut w = world();
    w.faults.push(("/issues/comments?".into(), gone()));
    let github = Github::start(w).await;
    let run = drain(&github, request(config(), None, None)).await;
    assert_eq!(run.error, None);
    assert!(run.ids("github_comment").is_empty());
    assert_eq!(run.ids("github_issue").len(), 3);
}

#[tokio::test]
async fn a_resume_inside_the_files_lists_them_again_and_skips_what_was_yielded() {
    let mut w = world();
    let many: Vec<(String, String, Vec<u8>)> = (0..45)
        .map(|i| {
            (
                format!("f{i:02}.txt"),
                format!("s{i}"),
                format!("file {i}").into_bytes(),
            )
        })
        .collect();
    w.trees.insert("t1".into(), many);
    let github = Github::start(w).await;
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
        (json!("c1"), json!("t1"))
    );

    // The branch moved meanwhile: the resumed run keeps to the commit it started with.
    github.change(|w| w.head = ("c2".into(), "t2".into()));
    let resumed = drain(&github, request(config(), None, Some(checkpoint))).await;
    assert_eq!(resumed.error, None);
    let ids: Vec<String> = resumed.ids("github_file");
    assert_eq!(ids.len(), 25);
    assert_eq!(ids[0], "octo/hello/f20.txt");
    assert_eq!(
        resumed.stream.cursor().unwrap()["commit"],
        "c1",
        "the next run starts from what this one synced"
    );
}

#[tokio::test]
async fn the_files_are_listed_on_pages_of_their_own_before_any_content() {
    let github = Github::start(world()).await;
    let mut stream = github
        .source()
        .open_stream(request(config(), None, None))
        .unwrap();
    let blobs = |github: &Github| {
        github
            .seen()
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
        (&json!("c1"), &json!("t1"))
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
    let before = github.seen().len();
    let mut resumed = github
        .source()
        .open_stream(request(config(), None, Some(listed.clone())))
        .unwrap();
    let page = resumed.next_page().await.unwrap().unwrap();
    assert!(page.entities.is_empty());
    let asked = github.seen()[before..].to_vec();
    assert_eq!(asked, [format!("/repos/{REPO}/git/trees/t1?recursive=1")]);
    let page = resumed.next_page().await.unwrap().unwrap();
    assert_eq!(page.entities.len(), 4);
}

#[tokio::test]
async fn a_files_page_of_a_slow_github_returns_within_its_budget_and_one_call() {
    let mut world = world();
    let files: Vec<_> = (0..24)
        .map(|i| {
            let content = format!("# Note {i}\n").into_bytes();
            (format!("notes/{i:02}.md"), format!("n{i:02}"), content)
        })
        .collect();
    world.trees = BTreeMap::from([("t1".to_owned(), files.clone()), ("c1".to_owned(), files)]);
    world.delay = SLOW_CALL;
    let github = Github::start(world).await;
    let short = StreamRequest {
        page_budget: SHORT_BUDGET,
        ..request(config(), None, None)
    };
    let mut stream = github.source().open_stream(short).unwrap();
    let (mut yielded, mut content_pages) = (Vec::new(), 0);
    loop {
        let began = Instant::now();
        let Some(page) = stream.next_page().await.unwrap() else {
            break;
        };
        let took = began.elapsed();
        assert!(
            took <= page_time_limit(SHORT_BUDGET),
            "a page of phase {} took {took:?}",
            page.checkpoint["phase"]
        );
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
    let github = Github::start(world()).await;
    let first = drain(&github, request(config(), None, None)).await;
    let cursor = first.stream.cursor().unwrap();
    github.change(|w| {
        w.head = ("c9".into(), "t9".into());
        w.trees.remove("c1");
        w.trees.insert(
            "t9".into(),
            vec![("other.txt".into(), "b9".into(), b"rewritten\n".to_vec())],
        );
    });
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
    let github = Github::start(world()).await;
    let config = json!({"repo_name": REPO, "branch": "feat/x#1%y"});
    let run = drain(&github, request(config, None, None)).await;
    assert!(matches!(run.error, Some(StreamError::Upstream(_))));
    assert!(
        github
            .seen()
            .contains(&format!("/repos/{REPO}/branches/feat/x%231%25y")),
        "{:?}",
        github.seen()
    );
    assert_eq!(stream::branch_path("main"), "main");
    assert_eq!(stream::branch_path("a/b c?d"), "a/b%20c%3Fd");
}

#[tokio::test]
async fn an_unreadable_checkpoint_is_malformed() {
    let github = Github::start(world()).await;
    let result =
        github
            .source()
            .open_stream(request(config(), None, Some(json!({"phase": "nowhere"}))));
    assert!(matches!(result, Err(StreamError::Malformed(_))));
}

// --- incremental runs ---

#[tokio::test]
async fn the_cursor_makes_the_next_run_ask_only_for_what_changed() {
    let github = Github::start(world()).await;
    let first = drain(&github, request(config(), None, None)).await;
    let cursor = first.stream.cursor().unwrap();
    assert_eq!(
        cursor,
        json!({
            "repo": REPO,
            "issues_since": "2026-03-05T00:00:00Z",
            "comments_since": "2026-03-06T00:00:00Z",
            "branch": "main",
            "commit": "c1",
        })
    );

    // Upstream: #2 edited, a comment edited, and a commit that edits, adds, renames and
    // removes files.
    github.change(|w| {
        w.issues[3] = issue(2, "2026-03-07T00:00:00Z");
        w.comments[1] = comment(902, 4, "2026-03-08T00:00:00Z");
        w.head = ("c2".into(), "t2".into());
        w.trees.insert(
            "t2".into(),
            vec![
                ("README.md".into(), "b1x".into(), b"# Hello again\n".to_vec()),
                ("logo.png".into(), "b2".into(), b"\x89PNG".to_vec()),
                ("src/lib.rs".into(), "b3".into(), b"fn main() {}\n".to_vec()),
                ("NEW.md".into(), "b5".into(), b"new\n".to_vec()),
            ],
        );
        w.compares.insert(
            "c1...c2".into(),
            ok(json!({"status": "ahead", "files": [
                {"filename": "NEW.md", "status": "added", "sha": "b5"},
                {"filename": "README.md", "status": "modified", "sha": "b1x"},
                {"filename": "src/lib.rs", "status": "renamed", "previous_filename": "src/main.rs", "sha": "b3"},
                {"filename": "data.bin", "status": "removed", "sha": "b4"},
            ]})),
        );
    });
    let before = github.seen().len();
    let second = drain(&github, request(config(), Some(cursor), None)).await;
    assert_eq!(second.error, None);
    assert!(second.stream.incremental());
    let asked = &github.seen()[before..];
    assert!(
        asked
            .iter()
            .any(|u| u.contains("/issues?") && u.contains("since=2026-03-05T00:00:00Z")),
        "{asked:?}"
    );
    assert!(asked
        .iter()
        .any(|u| u.contains("/issues/comments?") && u.contains("since=2026-03-06T00:00:00Z")));
    assert!(asked.iter().any(|u| u.ends_with("/compare/c1...c2")));

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
    assert_eq!(cursor["commit"], "c2");

    // Nothing changed since: no issue, no comment, no file, the cursor kept.
    github.change(|w| w.comments = Vec::new());
    let third = drain(&github, request(config(), Some(cursor.clone()), None)).await;
    assert_eq!(third.ids("github_file"), Vec::<String>::new());
    assert!(third.removed().is_empty());
    assert_eq!(third.stream.cursor().unwrap(), cursor);
}

#[tokio::test]
async fn a_force_push_is_diffed_tree_against_tree() {
    let github = Github::start(world()).await;
    let first = drain(&github, request(config(), None, None)).await;
    let cursor = first.stream.cursor().unwrap();
    github.change(|w| {
        w.head = ("c9".into(), "t9".into());
        w.trees.insert(
            "t9".into(),
            vec![
                ("README.md".into(), "b1".into(), b"# Hello\n".to_vec()),
                (
                    "other.txt".into(),
                    "b9".into(),
                    b"rewritten history\n".to_vec(),
                ),
            ],
        );
        w.compares.insert(
            "c1...c9".into(),
            ok(json!({"status": "diverged", "files": [
                {"filename": "other.txt", "status": "added", "sha": "b9"}
            ]})),
        );
    });
    let run = drain(&github, request(config(), Some(cursor), None)).await;
    assert_eq!(run.error, None);
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
    let github = Github::start(world()).await;
    let cursor =
        json!({"repo": "octo/other", "issues_since": "2026-03-05T00:00:00Z", "commit": "c0"});
    let run = drain(&github, request(config(), Some(cursor), None)).await;
    assert!(!run.stream.incremental());
    assert_eq!(run.ids("github_issue").len(), 3);
}

// --- answers ---

async fn first_error(fault_on: &str, answer: Answer) -> StreamError {
    let mut w = world();
    w.faults.push((fault_on.into(), answer));
    let github = Github::start(w).await;
    let run = drain(&github, request(config(), None, None)).await;
    let error = run.error.expect("the run fails");
    assert!(!error.to_string().contains(PAT), "{error}");
    assert!(!error.to_string().contains("127.0.0.1"), "{error}");
    error
}

fn epoch_in(seconds: i64) -> String {
    (Utc::now().timestamp() + seconds).to_string()
}

#[tokio::test]
async fn rate_limits_ask_the_worker_to_wait() {
    let primary = status(
        403,
        json!({"message": "API rate limit exceeded for user ID 1."}),
    )
    .header("x-ratelimit-remaining", "0")
    .header("x-ratelimit-reset", epoch_in(120));
    let StreamError::RateLimited { wait } =
        first_error("since=2026-03-02T00:00:00Z", primary).await
    else {
        panic!("a spent primary limit is a rate limit");
    };
    assert!((118..=120).contains(&wait.as_secs()), "{wait:?}");

    let secondary = status(
        429,
        json!({"message": "You have exceeded a secondary rate limit."}),
    )
    .header("retry-after", "7");
    assert_eq!(
        first_error("/issues/comments", secondary).await,
        StreamError::RateLimited {
            wait: Duration::from_secs(7)
        }
    );
    let secondary_403 = status(
        403,
        json!({"message": "You have exceeded a secondary rate limit."}),
    );
    assert_eq!(
        first_error("/git/blobs/", secondary_403).await,
        StreamError::RateLimited {
            wait: Duration::from_secs(60)
        }
    );
}

#[tokio::test]
async fn a_revoked_or_forbidden_token_is_rejected() {
    assert_eq!(
        first_error(
            "/issues",
            status(401, json!({"message": "Bad credentials"}))
        )
        .await,
        StreamError::Rejected(REJECTED.into())
    );
    let saml = status(
        403,
        json!({"message": "Resource protected by organization SAML enforcement."}),
    )
    .header("x-ratelimit-remaining", "4000");
    assert!(matches!(
        first_error("/branches/", saml).await,
        StreamError::Rejected(_)
    ));
    // The repository is gone or out of the token's reach.
    let mut w = world();
    w.faults.push((
        format!("/repos/{REPO}"),
        status(404, json!({"message": "Not Found"})),
    ));
    let github = Github::start(w).await;
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
        github.source().open_stream(req).err(),
        Some(StreamError::Rejected(_))
    ));
}

#[tokio::test]
async fn failures_and_odd_answers_end_the_run_with_a_clear_message() {
    let not_json = Answer {
        status: 200,
        headers: vec![],
        body: "[{\"number\": 1, \"title\": \"cut".into(),
    };
    assert_eq!(
        first_error("since=2026-03-02T00:00:00Z", not_json).await,
        StreamError::Malformed("GitHub answered HTTP 200 with a body that is not JSON".into())
    );
    assert_eq!(
        first_error("/issues/comments", ok(json!({"message": "hi"}))).await,
        StreamError::Malformed("GitHub answered a page of comments that is not a list".into())
    );
    assert_eq!(
        first_error(
            "/git/trees/",
            status(502, json!({"message": "Server Error"}))
        )
        .await,
        StreamError::Upstream("GitHub is unavailable (HTTP 502)".into())
    );
    let outside = ok(json!([issue(9, "2026-03-09T00:00:00Z")]))
        .header("link", "<https://evil.example/steal?page=2>; rel=\"next\"");
    assert!(matches!(
        first_error("/issues?", outside).await,
        StreamError::Malformed(_)
    ));
    assert!(matches!(
        first_error(
            "/repos/octo/hello/branches/main",
            status(301, json!({"message": "Moved Permanently"}))
                .header("location", "/repositories/7/branches/main")
        )
        .await,
        StreamError::Upstream(_)
    ));
}

#[tokio::test]
async fn a_configured_branch_that_does_not_exist_fails_the_run() {
    let github = Github::start(world()).await;
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
    let mut w = world();
    w.faults.push((
        "/branches/main".into(),
        status(404, json!({"message": "Branch not found"})),
    ));
    let github = Github::start(w).await;
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
    for bytes in [&b"x"[..], b"xy", b"xyz", b"\x00\xff\x10 binary"] {
        assert_eq!(decode_base64(&encode(bytes)).unwrap(), bytes);
    }
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

use super::routes::time;
use super::*;
use crate::server::FakeResponse;
use base64::Engine;
use hyper::HeaderMap;
use serde_json::{json, Value};

const TOKEN: &str = "ghp_fakeTestToken";

fn shared(workspace: Workspace) -> Shared {
    Shared {
        valid_token: Mutex::new(TOKEN.into()),
        revoked: Mutex::new(false),
        mode: Mutex::new(Mode::Normal),
        faults: Mutex::new(VecDeque::new()),
        requests: AtomicUsize::new(0),
        received: Mutex::new(Vec::new()),
        prefix: Mutex::new(String::new()),
        workspace: Arc::new(Mutex::new(workspace)),
    }
}

/// `GET path?query` with the valid token, answered in-process.
fn get(shared: &Shared, path_and_query: &str) -> FakeResponse {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let mut headers = HeaderMap::new();
    headers.insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    headers.insert("host", "127.0.0.1:4701".parse().unwrap());
    let request = FakeRequest {
        method: "GET".into(),
        path: path.into(),
        query: url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect(),
        headers,
        body: Default::default(),
    };
    answer(shared, &request)
}

fn body(response: &FakeResponse) -> Value {
    serde_json::from_slice(&response.body).expect("JSON")
}

fn header<'a>(response: &'a FakeResponse, name: &str) -> Option<&'a str> {
    response
        .headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn titles(response: &FakeResponse) -> Vec<String> {
    body(response)
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn issues_page_with_a_link_header_like_github() {
    let mut workspace = Workspace::demo();
    workspace.max_per_page = 2;
    let repo = workspace.repos.get_mut(DEMO_REPO).unwrap();
    repo.add_issue("Fourth", "");
    let fake = shared(workspace);

    let first = get(
        &fake,
        "/repos/octo-org/hello-world/issues?state=all&per_page=100&sort=updated&direction=asc",
    );
    assert_eq!(first.status, 200);
    // Sorted by last update: commenting on #1 and #3 and closing #2 moved them.
    assert_eq!(titles(&first), ["Found a bug", "Fix the greeting"]);
    let link = header(&first, "link").unwrap();
    assert!(
        link.starts_with("<http://127.0.0.1:4701/repos/octo-org/hello-world/issues?"),
        "{link}"
    );
    assert!(
        link.contains("page=2") && link.contains("rel=\"next\""),
        "{link}"
    );
    assert!(link.contains("rel=\"last\""), "{link}");

    let second = get(
        &fake,
        "/repos/octo-org/hello-world/issues?state=all&per_page=2&page=2&sort=updated&direction=asc",
    );
    assert_eq!(titles(&second), ["Add a --name flag", "Fourth"]);
    let link = header(&second, "link").unwrap();
    assert!(!link.contains("rel=\"next\""), "the last page: {link}");
    assert!(link.contains("rel=\"prev\""), "{link}");

    let pr = &body(&first)[1];
    assert!(pr["pull_request"]["url"].is_string(), "{pr}");
    assert!(header(&second, "x-ratelimit-remaining").is_some());
}

#[test]
fn lists_default_to_open_issues_and_filter_by_since() {
    let fake = shared(Workspace::demo());
    let open = get(&fake, "/repos/octo-org/hello-world/issues");
    assert_eq!(titles(&open), ["Fix the greeting", "Found a bug"]);

    let edited_at = {
        let mut ws = fake.workspace.lock().unwrap();
        let repo = ws.repos.get_mut(DEMO_REPO).unwrap();
        repo.edit_issue(1, |i| i.title = "Found a bug (confirmed)".into());
        repo.issues[&1].updated_at
    };
    let since = get(
        &fake,
        &format!(
            "/repos/octo-org/hello-world/issues?state=all&since={}",
            time(edited_at)
        ),
    );
    assert_eq!(titles(&since), ["Found a bug (confirmed)"]);

    let comments = body(&get(
        &fake,
        "/repos/octo-org/hello-world/issues/comments?sort=updated&direction=asc",
    ));
    assert_eq!(comments.as_array().unwrap().len(), 2);
    assert!(comments[0]["issue_url"]
        .as_str()
        .unwrap()
        .ends_with("/issues/1"));
}

#[test]
fn trees_blobs_and_comparisons_follow_the_commits() {
    let fake = shared(Workspace::demo());
    let branch = body(&get(&fake, "/repos/octo-org/hello-world/branches/main"));
    let first = branch["commit"]["sha"].as_str().unwrap().to_owned();
    let tree_sha = branch["commit"]["commit"]["tree"]["sha"].as_str().unwrap();

    let tree = body(&get(
        &fake,
        &format!("/repos/octo-org/hello-world/git/trees/{tree_sha}?recursive=1"),
    ));
    let paths: Vec<&str> = tree["tree"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "blob")
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "README.md",
            "assets/logo.png",
            "docs/guide.md",
            "src/main.rs"
        ]
    );
    let readme = &tree["tree"][0];
    let blob = body(&get(
        &fake,
        &format!(
            "/repos/octo-org/hello-world/git/blobs/{}",
            readme["sha"].as_str().unwrap()
        ),
    ));
    let content: String = blob["content"].as_str().unwrap().split('\n').collect();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(content)
        .unwrap();
    assert!(decoded.starts_with(b"# Hello World"));

    let second = {
        let mut ws = fake.workspace.lock().unwrap();
        ws.repos.get_mut(DEMO_REPO).unwrap().commit(
            "main",
            "Rework the docs",
            &[
                ("docs/guide.md", None),
                ("docs/manual.md", Some(b"# Guide\n\nRun `cargo run`.\n")),
                ("README.md", Some(b"# Hello\n")),
                ("NEW.txt", Some(b"new")),
                ("src/main.rs", None),
            ],
        )
    };
    let compare = body(&get(
        &fake,
        &format!("/repos/octo-org/hello-world/compare/{first}...{second}"),
    ));
    assert_eq!(compare["status"], "ahead");
    assert_eq!(compare["total_commits"], 1);
    let files: Vec<(String, String)> = compare["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["filename"].as_str().unwrap().to_owned(),
                f["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        files,
        [
            ("NEW.txt".into(), "added".into()),
            ("README.md".into(), "modified".into()),
            ("docs/manual.md".into(), "renamed".into()),
            ("src/main.rs".into(), "removed".into()),
        ]
    );
    assert_eq!(compare["files"][2]["previous_filename"], "docs/guide.md");
    let back = body(&get(
        &fake,
        &format!("/repos/octo-org/hello-world/compare/{second}...{first}"),
    ));
    assert_eq!(back["status"], "behind");
}

#[test]
fn unknown_repositories_and_branches_are_github_404s() {
    let fake = shared(Workspace::demo());
    let missing = get(&fake, "/repos/octo-org/secret");
    assert_eq!(missing.status, 404);
    assert_eq!(body(&missing)["message"], "Not Found");
    let branch = get(&fake, "/repos/octo-org/hello-world/branches/nope");
    assert_eq!(
        (branch.status, body(&branch)["message"].clone()),
        (404, json!("Branch not found"))
    );
    fake.workspace
        .lock()
        .unwrap()
        .add_repo(Repo::new("octo-org/empty", "main"));
    let empty = get(&fake, "/repos/octo-org/empty/git/trees/main?recursive=1");
    assert_eq!(empty.status, 409);
}

#[test]
fn switches_answer_once_or_until_reset() {
    let fake = shared(Workspace::demo());
    fake.faults.lock().unwrap().push_back(Armed {
        path_suffix: "/issues".into(),
        skip: 1,
        fault: Fault::SecondaryLimit {
            retry_after_secs: 1,
        },
    });
    let issues = "/repos/octo-org/hello-world/issues";
    assert_eq!(get(&fake, "/repos/octo-org/hello-world").status, 200);
    assert_eq!(get(&fake, issues).status, 200, "skipped once");
    let limited = get(&fake, issues);
    assert_eq!(limited.status, 429);
    assert_eq!(header(&limited, "retry-after"), Some("1"));
    assert_eq!(get(&fake, issues).status, 200, "only once");

    fake.faults.lock().unwrap().push_back(Armed {
        path_suffix: "/issues".into(),
        skip: 0,
        fault: Fault::Malformed,
    });
    let malformed = get(&fake, issues);
    assert_eq!(malformed.status, 200);
    assert!(serde_json::from_slice::<Value>(&malformed.body).is_err());

    *fake.revoked.lock().unwrap() = true;
    let revoked = get(&fake, "/user");
    assert_eq!(revoked.status, 401);
    assert_eq!(body(&revoked)["message"], "Bad credentials");

    *fake.mode.lock().unwrap() = Mode::PrimaryLimitExhausted { reset_in_secs: 60 };
    let spent = get(&fake, "/user");
    assert_eq!(spent.status, 403);
    assert_eq!(header(&spent, "x-ratelimit-remaining"), Some("0"));
}

#[tokio::test]
async fn it_serves_on_a_port_and_logs_paths_only() {
    let fake = FakeGithub::start(TOKEN).await;
    assert!(fake.base_url.starts_with("http://127.0.0.1:"));
    fake.repo(DEMO_REPO).add_issue("From a test", "");
    assert_eq!(fake.repo(DEMO_REPO).issues.len(), 4);
    fake.fail_next("/issues", Fault::Malformed);
    assert_eq!(fake.requests(), 0);
    assert!(fake.paths().is_empty());
}

#[test]
fn a_fault_on_a_folder_matches_the_paths_below_it() {
    let fake = shared(Workspace::demo());
    fake.faults.lock().unwrap().push_back(Armed {
        path_suffix: "/git/blobs/".into(),
        skip: 0,
        fault: Fault::BadGateway,
    });
    assert_eq!(get(&fake, "/repos/octo-org/hello-world/issues").status, 200);
    assert_eq!(
        get(&fake, "/repos/octo-org/hello-world/git/blobs/abc").status,
        502
    );
}

#[test]
fn lists_sort_oldest_first_since_a_time_and_keep_both_in_their_links() {
    let mut repo = Repo::new("octo/asc", "main");
    for n in 1..=5 {
        repo.add_issue(&format!("Issue {n}"), "");
    }
    let first_comment = repo.add_comment(1, "on #1");
    repo.add_comment(2, "on #2");
    repo.edit_issue(2, |i| i.title = "Issue 2, edited".into());
    let since = time(repo.issues[&3].updated_at);
    let mut workspace = Workspace {
        max_per_page: 2,
        ..Workspace::default()
    };
    workspace.add_repo(repo);
    let fake = shared(workspace);

    // At or after `since`, oldest update first: the edited #2 (and #1, commented) move to the end.
    let page = get(
        &fake,
        &format!("/repos/octo/asc/issues?state=all&sort=updated&direction=asc&per_page=100&since={since}"),
    );
    assert_eq!(titles(&page), ["Issue 3", "Issue 4"]);
    let link = header(&page, "link").unwrap();
    let next = link
        .split(',')
        .find(|l| l.contains("rel=\"next\""))
        .unwrap();
    assert!(
        next.contains("direction=asc") && next.contains("page=2"),
        "{link}"
    );
    assert!(
        next.contains(&format!("since={}", since.replace(':', "%3A"))),
        "{link}"
    );
    let rest = get(
        &fake,
        &format!("/repos/octo/asc/issues?state=all&sort=updated&direction=asc&per_page=2&page=2&since={since}"),
    );
    assert_eq!(titles(&rest), ["Issue 5", "Issue 1"]);
    let last = get(
        &fake,
        &format!("/repos/octo/asc/issues?state=all&sort=updated&direction=asc&per_page=2&page=3&since={since}"),
    );
    assert_eq!(titles(&last), ["Issue 2, edited"]);
    assert!(header(&last, "link").is_some_and(|l| !l.contains("rel=\"next\"")));

    // An item updated exactly at `since` is included.
    let at_first = {
        let ws = fake.workspace.lock().unwrap();
        time(ws.repos["octo/asc"].comments[&first_comment].updated_at)
    };
    let comments = body(&get(
        &fake,
        &format!("/repos/octo/asc/issues/comments?sort=updated&direction=asc&since={at_first}"),
    ));
    let bodies: Vec<&str> = comments
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["on #1", "on #2"]);
}

#[test]
fn disabled_issues_answer_410_and_branch_names_are_percent_decoded() {
    let mut repo = Repo::new("octo/off", "main");
    repo.add_issue("Hidden", "");
    repo.has_issues = false;
    repo.commit("feat/x#1%y", "Start", &[("a.txt", Some(b"a"))]);
    let mut workspace = Workspace::default();
    workspace.add_repo(repo);
    let fake = shared(workspace);
    for path in ["/repos/octo/off/issues", "/repos/octo/off/issues/comments"] {
        let gone = get(&fake, path);
        assert_eq!(gone.status, 410);
        assert_eq!(body(&gone)["message"], "Issues are disabled for this repo");
    }
    assert_eq!(
        body(&get(&fake, "/repos/octo/off"))["has_issues"],
        json!(false)
    );
    let branch = get(&fake, "/repos/octo/off/branches/feat/x%231%25y");
    assert_eq!(branch.status, 200);
    assert_eq!(body(&branch)["name"], "feat/x#1%y");
    assert_eq!(get(&fake, "/repos/octo/off/branches/feat/x%2").status, 404);
}

#[test]
fn the_request_log_keeps_queries_and_headers_but_no_credential() {
    let fake = shared(Workspace::demo());
    get(
        &fake,
        "/repos/octo-org/hello-world/issues?state=all&since=2025-03-01T09%3A00%3A00Z&access_token=ghp_x",
    );
    let received = fake.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("GET", "/repos/octo-org/hello-world/issues")
    );
    assert_eq!(request.param("since"), Some("2025-03-01T09:00:00Z"));
    assert_eq!(request.param("state"), Some("all"));
    assert_eq!(request.param("access_token"), None, "a credential");
    assert_eq!(request.header("Host"), Some("127.0.0.1:4701"));
    assert_eq!(request.header("authorization"), None);
    assert_eq!(request.auth_scheme.as_deref(), Some("Bearer"));
    assert!(!format!("{received:?}").contains(TOKEN));
}

#[test]
fn links_can_name_the_repository_by_id_and_those_paths_answer() {
    let mut workspace = Workspace::demo();
    workspace.max_per_page = 2;
    workspace.link_by_repository_id = true;
    let id = workspace.repos[DEMO_REPO].id;
    let fake = shared(workspace);

    let first = get(
        &fake,
        "/repos/octo-org/hello-world/issues?state=all&sort=updated&direction=asc",
    );
    let link = header(&first, "link").unwrap();
    let next = link
        .split(',')
        .find(|l| l.contains("rel=\"next\""))
        .unwrap()
        .trim();
    let prefix = format!("<http://127.0.0.1:4701/repositories/{id}/issues?");
    assert!(next.starts_with(&prefix), "{link}");
    let url = next.trim_start_matches('<').split('>').next().unwrap();
    let second = get(&fake, url.trim_start_matches("http://127.0.0.1:4701"));
    assert_eq!(second.status, 200);
    assert_eq!(titles(&second), ["Add a --name flag"]);

    let repository = get(&fake, &format!("/repositories/{id}"));
    assert_eq!(body(&repository)["full_name"], DEMO_REPO);
    assert_eq!(get(&fake, "/repositories/1/issues").status, 404);
    // The default links below the path asked.
    let plain = shared(Workspace {
        max_per_page: 2,
        ..Workspace::demo()
    });
    let link = header(
        &get(&plain, "/repos/octo-org/hello-world/issues?state=all"),
        "link",
    )
    .unwrap()
    .to_owned();
    assert!(link.starts_with("<http://127.0.0.1:4701/repos/octo-org/hello-world/issues?"));
}

#[test]
fn an_api_prefix_roots_every_path_and_link() {
    let fake = shared(Workspace {
        max_per_page: 2,
        ..Workspace::demo()
    });
    *fake.prefix.lock().unwrap() = "/api/v3".into();
    assert_eq!(get(&fake, "/user").status, 404);
    assert_eq!(get(&fake, "/api/v3x/user").status, 404);
    assert_eq!(body(&get(&fake, "/api/v3/user"))["login"], "octo-tester");
    let page = get(&fake, "/api/v3/repos/octo-org/hello-world/issues?state=all");
    assert_eq!(page.status, 200);
    let link = header(&page, "link").unwrap();
    assert!(
        link.starts_with("<http://127.0.0.1:4701/api/v3/repos/octo-org/hello-world/issues?"),
        "{link}"
    );
    let repository = body(&get(&fake, "/api/v3/repos/octo-org/hello-world"));
    assert!(repository["url"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:4701/api/v3/repos/"));
}

/// The answer to `path_and_query` with `fault` armed for its path.
fn faulted(fault: Fault, path_and_query: &str) -> FakeResponse {
    let mut workspace = Workspace::demo();
    workspace.max_per_page = 2;
    let fake = shared(workspace);
    let path = path_and_query.split('?').next().unwrap();
    fake.faults.lock().unwrap().push_back(Armed {
        path_suffix: path.into(),
        skip: 0,
        fault,
    });
    let response = get(&fake, path_and_query);
    assert!(fake.faults.lock().unwrap().is_empty(), "answered once");
    response
}

#[test]
fn the_faults_answer_as_github_does() {
    let repo = "/repos/octo-org/hello-world";
    let server = faulted(Fault::ServerError, "/user");
    assert_eq!(
        (server.status, body(&server)["message"].clone()),
        (500, json!("Server Error"))
    );

    let secondary = faulted(
        Fault::SecondaryLimitForbidden {
            retry_after_secs: Some(42),
        },
        "/user",
    );
    assert_eq!(secondary.status, 403);
    assert_eq!(header(&secondary, "retry-after"), Some("42"));
    assert!(body(&secondary)["message"]
        .as_str()
        .unwrap()
        .contains("secondary rate limit"));
    let without = faulted(
        Fault::SecondaryLimitForbidden {
            retry_after_secs: None,
        },
        "/user",
    );
    assert_eq!(header(&without, "retry-after"), None);
    assert_ne!(header(&without, "x-ratelimit-remaining"), Some("0"));

    let primary = faulted(
        Fault::PrimaryLimitTooManyRequests { reset_in_secs: 300 },
        "/user",
    );
    assert_eq!(primary.status, 429);
    assert_eq!(header(&primary, "x-ratelimit-remaining"), Some("0"));

    for fault in [Fault::SamlEnforced, Fault::NotAccessible] {
        let forbidden = faulted(fault, repo);
        assert_eq!(forbidden.status, 403, "{fault:?}");
        assert_ne!(header(&forbidden, "x-ratelimit-remaining"), Some("0"));
        assert!(!body(&forbidden)["message"]
            .as_str()
            .unwrap()
            .contains("rate limit"));
    }

    let odd = faulted(Fault::WrongShape, &format!("{repo}/issues"));
    assert_eq!(odd.status, 200);
    assert!(body(&odd).is_object() && body(&odd).get("login").is_none());

    let off_host = faulted(Fault::LinkOffHost, &format!("{repo}/issues?state=all"));
    assert_eq!(off_host.status, 200);
    assert_eq!(titles(&off_host).len(), 2, "the normal page");
    let link = header(&off_host, "link").unwrap();
    assert!(
        link.starts_with("<https://elsewhere.example/repos/octo-org/hello-world/issues?"),
        "{link}"
    );

    let moved = faulted(Fault::MovedPermanently, &format!("{repo}/branches/main"));
    let id = Workspace::demo().repos[DEMO_REPO].id;
    assert_eq!(moved.status, 301);
    assert_eq!(
        header(&moved, "location").unwrap(),
        format!("http://127.0.0.1:4701/repositories/{id}/branches/main")
    );
    let user = faulted(Fault::MovedPermanently, "/user");
    assert_eq!(
        header(&user, "location"),
        Some("http://127.0.0.1:4701/user")
    );
}

#[test]
fn a_force_push_rewrites_the_branch_and_a_collection_drops_the_old_head() {
    let fake = shared(Workspace::demo());
    let (old, old_tree) = {
        let ws = fake.workspace.lock().unwrap();
        let head = ws.repos[DEMO_REPO].head("main").unwrap();
        (head.sha.clone(), head.tree_sha())
    };
    let new = fake
        .workspace
        .lock()
        .unwrap()
        .repos
        .get_mut(DEMO_REPO)
        .unwrap()
        .force_push("main", "Rewritten", &[("other.txt", Some(b"other"))]);
    let branch = body(&get(&fake, "/repos/octo-org/hello-world/branches/main"));
    assert_eq!(branch["commit"]["sha"], new.as_str());
    let tree = body(&get(
        &fake,
        &format!("/repos/octo-org/hello-world/git/trees/{new}?recursive=1"),
    ));
    assert_eq!(tree["tree"].as_array().unwrap().len(), 1, "{tree}");
    assert_eq!(tree["tree"][0]["sha"], blob_sha(b"other").as_str());
    let compare = body(&get(
        &fake,
        &format!("/repos/octo-org/hello-world/compare/{old}...{new}"),
    ));
    assert_eq!(compare["status"], "diverged");
    let trees = |sha: &str| {
        get(
            &fake,
            &format!("/repos/octo-org/hello-world/git/trees/{sha}?recursive=1"),
        )
        .status
    };
    assert_eq!((trees(&old), trees(&old_tree)), (200, 200));

    fake.workspace
        .lock()
        .unwrap()
        .repos
        .get_mut(DEMO_REPO)
        .unwrap()
        .garbage_collect();
    assert_eq!((trees(&old), trees(&old_tree)), (404, 404));
    assert_eq!(trees(&new), 200);
    let gone = get(
        &fake,
        &format!("/repos/octo-org/hello-world/compare/{old}...{new}"),
    );
    assert_eq!(gone.status, 404);
}

/// `GET path` on the fake's port with `token`: the status and how long the answer took.
async fn raw_get(fake: &FakeGithub, path: &str, token: &str) -> (u16, std::time::Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = fake.base_url.trim_start_matches("http://");
    let began = std::time::Instant::now();
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         User-Agent: fakes-test\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    (status, began.elapsed())
}

#[tokio::test]
async fn a_new_token_replaces_the_old_one_and_answers_can_come_late() {
    let fake = FakeGithub::start(TOKEN).await;
    assert_eq!(raw_get(&fake, "/user", TOKEN).await.0, 200);
    fake.set_valid_token("ghp_newToken");
    assert_eq!(raw_get(&fake, "/user", TOKEN).await.0, 401);
    assert_eq!(raw_get(&fake, "/user", "ghp_newToken").await.0, 200);

    fake.answer_after(std::time::Duration::from_millis(150));
    let (status, took) = raw_get(&fake, "/user", "ghp_newToken").await;
    assert_eq!(status, 200);
    assert!(took >= std::time::Duration::from_millis(150), "{took:?}");

    let received = fake.received();
    assert_eq!(received.len(), 4);
    assert_eq!(received[0].header("user-agent"), Some("fakes-test"));
    assert!(
        received
            .iter()
            .all(|r| r.auth_scheme.as_deref() == Some("Bearer")
                && r.header("authorization").is_none())
    );
}

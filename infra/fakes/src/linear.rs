//! A fake of Linear's GraphQL API on 127.0.0.1, shaped after the public reference
//! (linear.app/developers): one endpoint, `POST /graphql`; personal API keys sent as the raw
//! `Authorization` value (a bearer token is an OAuth token); Relay pagination with `first`
//! (default 50, at most 250), `after` and `pageInfo { hasNextPage endCursor }`; archived items
//! hidden unless `includeArchived: true`; `filter: { updatedAt: { gt } }`; rate-limit headers
//! (`X-RateLimit-Requests-*`, resets in UTC epoch milliseconds) on every answer; and Linear's
//! error bodies, HTTP 400 with `errors[].extensions.code` `AUTHENTICATION_ERROR` or
//! `RATELIMITED`.
//!
//! It reads just enough of a query to answer it: the root field (`viewer`, `teams`, `users`,
//! `projects`, `issues`, `comments`) and the variables. Nodes carry every field the fake knows,
//! whatever the selection asked for. It remembers what it was asked (root field and variables),
//! never a header, so a test can assert on it without the fake holding a secret.

use crate::server::{FakeRequest, FakeResponse, FakeServer};
use base64::Engine;
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Map, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// The API key the fake accepts under `make fakes`.
pub const DEMO_KEY: &str = "lin_api_fakeDemoKey000000000000000000000000000";
const ORG: &str = "acme";
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 250;
const HOURLY_REQUESTS: u64 = 5000;

pub struct Team {
    pub id: String,
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    pub private: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub archived_at: Option<DateTime<Utc>>,
}

pub struct User {
    pub id: String,
    pub name: String,
    pub display_name: String,
    pub email: String,
    pub active: bool,
    pub admin: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub struct Project {
    pub id: String,
    pub name: String,
    pub description: String,
    pub content: Option<String>,
    /// The project status's name and type (`planned`, `started`, `completed` …).
    pub status: (String, String),
    pub lead_id: Option<String>,
    pub team_ids: Vec<String>,
    pub target_date: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub archived_at: Option<DateTime<Utc>>,
}

pub struct Issue {
    pub id: String,
    pub team_id: String,
    /// The number in the identifier (`ENG-12`).
    pub number: u32,
    pub title: String,
    pub description: Option<String>,
    /// 0 (none) to 4 (low), as Linear numbers priorities.
    pub priority: u8,
    /// The workflow state's name and type (`backlog`, `unstarted`, `started`, `completed` …).
    pub state: (String, String),
    pub assignee_id: Option<String>,
    pub creator_id: String,
    pub project_id: Option<String>,
    pub labels: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub archived_at: Option<DateTime<Utc>>,
}

pub struct Comment {
    pub id: String,
    pub issue_id: String,
    pub user_id: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
    pub archived_at: Option<DateTime<Utc>>,
}

/// The fake's workspace; tests change it between syncs. Edits stamp `updatedAt` with the real
/// clock, as Linear does, so an incremental sync sees them.
#[derive(Default)]
pub struct Workspace {
    pub teams: Vec<Team>,
    pub users: Vec<User>,
    pub projects: Vec<Project>,
    pub issues: Vec<Issue>,
    pub comments: Vec<Comment>,
    /// Numbers the ids of added items.
    serial: u32,
}

/// A UUID-shaped id, as Linear's: the kind in the first group, a counter in the last.
fn uuid(kind: u32, n: u32) -> String {
    format!("{kind:08x}-0000-4000-8000-{n:012x}")
}

/// A fixed instant of the seeded data, `days` after the workspace was founded.
fn founded(days: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 9, 1, 9, 0, 0).unwrap() + Duration::days(days)
}

const STATES: [(&str, &str); 4] = [
    ("Backlog", "backlog"),
    ("Todo", "unstarted"),
    ("In Progress", "started"),
    ("Done", "completed"),
];
const PRIORITY_LABELS: [&str; 5] = ["No priority", "Urgent", "High", "Medium", "Low"];
const LABELS: [&str; 4] = ["bug", "feature", "ui", "performance"];
const WORDS: [&str; 12] = [
    "login",
    "export",
    "search",
    "billing",
    "sync",
    "onboarding",
    "settings",
    "invoice",
    "webhook",
    "avatar",
    "filter",
    "report",
];

impl Workspace {
    /// Two teams, three users, two projects, `issues` issues spread over both teams, and a
    /// comment on every other issue; every timestamp fixed in the past.
    pub fn seeded(issues: usize) -> Self {
        let mut w = Workspace::default();
        for (i, (key, name)) in [("ENG", "Engineering"), ("DES", "Design")]
            .into_iter()
            .enumerate()
        {
            w.teams.push(Team {
                id: uuid(1, i as u32 + 1),
                key: key.into(),
                name: name.into(),
                description: Some(format!("The {name} team")),
                private: false,
                created_at: founded(0),
                updated_at: founded(1),
                archived_at: None,
            });
        }
        for (i, (name, display)) in [
            ("Ada Lovelace", "ada"),
            ("Grace Hopper", "grace"),
            ("Alan Turing", "alan"),
        ]
        .into_iter()
        .enumerate()
        {
            w.users.push(User {
                id: uuid(2, i as u32 + 1),
                name: name.into(),
                display_name: display.into(),
                email: format!("{display}@acme.example"),
                active: true,
                admin: i == 0,
                created_at: founded(0),
                updated_at: founded(2),
            });
        }
        for (i, name) in ["Q4 Launch", "Mobile App"].into_iter().enumerate() {
            w.projects.push(Project {
                id: uuid(3, i as u32 + 1),
                name: name.into(),
                description: format!("Everything for the {name}"),
                content: Some(format!("# {name}\n\nGoals, milestones and owners.")),
                status: ("In Progress".into(), "started".into()),
                lead_id: Some(w.users[i].id.clone()),
                team_ids: vec![w.teams[i].id.clone()],
                target_date: Some("2026-12-15".into()),
                created_at: founded(3),
                updated_at: founded(4 + i as i64),
                archived_at: None,
            });
        }
        for n in 0..issues {
            let team = n % 2;
            let word = WORDS[n % WORDS.len()];
            let id = uuid(4, n as u32 + 1);
            w.issues.push(Issue {
                id: id.clone(),
                team_id: w.teams[team].id.clone(),
                number: (n / 2) as u32 + 1,
                title: format!("Fix the {word} flow ({n})"),
                description: Some(format!(
                    "The {word} flow breaks for some users; see the attached logs."
                )),
                priority: (n % 5) as u8,
                state: (STATES[n % 4].0.into(), STATES[n % 4].1.into()),
                assignee_id: (n % 3 != 2).then(|| w.users[n % 3].id.clone()),
                creator_id: w.users[(n + 1) % 3].id.clone(),
                project_id: (n % 4 == 0).then(|| w.projects[team].id.clone()),
                labels: vec![LABELS[n % 4].into(), LABELS[(n + 1) % 4].into()],
                created_at: founded(10) + Duration::minutes(n as i64),
                updated_at: founded(20) + Duration::minutes(n as i64),
                archived_at: None,
            });
            if n % 2 == 0 {
                w.comments.push(Comment {
                    id: uuid(5, n as u32 + 1),
                    issue_id: id,
                    user_id: w.users[(n + 2) % 3].id.clone(),
                    body: format!("I can reproduce the {word} problem."),
                    created_at: founded(21) + Duration::minutes(n as i64),
                    updated_at: founded(21) + Duration::minutes(n as i64),
                    edited_at: None,
                    archived_at: None,
                });
            }
        }
        w.serial = 10_000;
        w
    }

    /// What `make fakes` serves: a small, readable workspace.
    pub fn demo() -> Self {
        Self::seeded(12)
    }

    fn next_serial(&mut self) -> u32 {
        self.serial += 1;
        self.serial
    }

    fn team_id(&self, key: &str) -> String {
        self.teams
            .iter()
            .find(|t| t.key == key)
            .unwrap_or_else(|| panic!("no team {key} in the fake workspace"))
            .id
            .clone()
    }

    fn issue_mut(&mut self, id: &str) -> &mut Issue {
        self.issues
            .iter_mut()
            .find(|i| i.id == id)
            .unwrap_or_else(|| panic!("no issue {id} in the fake workspace"))
    }

    /// A new issue in the team with this key; answers its id.
    pub fn add_issue(&mut self, team_key: &str, title: &str) -> String {
        let team_id = self.team_id(team_key);
        let number = self
            .issues
            .iter()
            .filter(|i| i.team_id == team_id)
            .map(|i| i.number)
            .max()
            .unwrap_or(0)
            + 1;
        let id = uuid(4, self.next_serial());
        let now = Utc::now();
        self.issues.push(Issue {
            id: id.clone(),
            team_id,
            number,
            title: title.into(),
            description: None,
            priority: 0,
            state: ("Todo".into(), "unstarted".into()),
            assignee_id: None,
            creator_id: self.users[0].id.clone(),
            project_id: None,
            labels: Vec::new(),
            created_at: now,
            updated_at: now,
            archived_at: None,
        });
        id
    }

    /// Renames an issue.
    pub fn edit_issue(&mut self, id: &str, title: &str) {
        let issue = self.issue_mut(id);
        issue.title = title.into();
        issue.updated_at = Utc::now();
    }

    /// Archives an issue (Linear's "delete" moves it to the trash, which archives it too):
    /// hidden from lists unless `includeArchived`, its `updatedAt` moved.
    pub fn archive_issue(&mut self, id: &str) {
        let now = Utc::now();
        let issue = self.issue_mut(id);
        issue.archived_at = Some(now);
        issue.updated_at = now;
    }

    /// Removes an issue and its comments for good (emptied from the trash): no list shows it
    /// again, archived or not.
    pub fn delete_issue(&mut self, id: &str) {
        self.issues.retain(|i| i.id != id);
        self.comments.retain(|c| c.issue_id != id);
    }

    /// A new comment by the first user; answers its id.
    pub fn add_comment(&mut self, issue_id: &str, body: &str) -> String {
        let id = uuid(5, self.next_serial());
        let now = Utc::now();
        self.comments.push(Comment {
            id: id.clone(),
            issue_id: issue_id.into(),
            user_id: self.users[0].id.clone(),
            body: body.into(),
            created_at: now,
            updated_at: now,
            edited_at: None,
            archived_at: None,
        });
        id
    }

    /// Deletes a comment: Linear deletes comments outright, so only a full sync can notice.
    pub fn delete_comment(&mut self, id: &str) {
        self.comments.retain(|c| c.id != id);
    }

    /// Deactivates a user, as removing a member does in Linear: hidden from `users` (unless
    /// `includeDisabled`), still named where they created or commented.
    pub fn deactivate_user(&mut self, id: &str) {
        let user = self
            .users
            .iter_mut()
            .find(|u| u.id == id)
            .unwrap_or_else(|| panic!("no user {id} in the fake workspace"));
        user.active = false;
        user.updated_at = Utc::now();
    }

    fn team(&self, id: &str) -> Option<&Team> {
        self.teams.iter().find(|t| t.id == id)
    }

    fn user(&self, id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    fn identifier(&self, issue: &Issue) -> String {
        let key = self.team(&issue.team_id).map_or("?", |t| t.key.as_str());
        format!("{key}-{}", issue.number)
    }

    fn issue_url(&self, issue: &Issue) -> String {
        let slug: String = issue
            .title
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        format!(
            "https://linear.app/{ORG}/issue/{}/{}",
            self.identifier(issue),
            slug.trim_matches('-')
        )
    }

    fn user_json(&self, id: Option<&str>) -> Value {
        match id.and_then(|id| self.user(id)) {
            Some(u) => json!({"id": u.id, "name": u.name, "email": u.email}),
            None => Value::Null,
        }
    }

    /// Every item of a root field as Linear renders it, with what pagination and filters need.
    fn rows(&self, field: &str) -> Option<Vec<Row>> {
        let rows = match field {
            "teams" => self
                .teams
                .iter()
                .map(|t| Row {
                    created_at: t.created_at,
                    updated_at: t.updated_at,
                    archived: t.archived_at.is_some(),
                    disabled: false,
                    id: t.id.clone(),
                    node: json!({
                        "id": t.id, "key": t.key, "name": t.name, "description": t.description,
                        "private": t.private, "createdAt": ts(t.created_at),
                        "updatedAt": ts(t.updated_at), "archivedAt": t.archived_at.map(ts),
                    }),
                })
                .collect(),
            "users" => self
                .users
                .iter()
                .map(|u| Row {
                    created_at: u.created_at,
                    updated_at: u.updated_at,
                    archived: false,
                    disabled: !u.active,
                    id: u.id.clone(),
                    node: json!({
                        "id": u.id, "name": u.name, "displayName": u.display_name,
                        "email": u.email, "active": u.active, "admin": u.admin,
                        "url": format!("https://linear.app/{ORG}/profiles/{}", u.display_name),
                        "createdAt": ts(u.created_at), "updatedAt": ts(u.updated_at),
                        "archivedAt": null,
                        // Volatile: changes on every visit, without the user changing.
                        "lastSeen": ts(Utc::now()),
                    }),
                })
                .collect(),
            "projects" => self
                .projects
                .iter()
                .map(|p| Row {
                    created_at: p.created_at,
                    updated_at: p.updated_at,
                    archived: p.archived_at.is_some(),
                    disabled: false,
                    id: p.id.clone(),
                    node: json!({
                        "id": p.id, "name": p.name, "description": p.description,
                        "content": p.content,
                        "url": format!("https://linear.app/{ORG}/project/{}", p.id),
                        "status": {"name": p.status.0, "type": p.status.1},
                        "lead": self.user_json(p.lead_id.as_deref()),
                        "startDate": null, "targetDate": p.target_date,
                        "createdAt": ts(p.created_at), "updatedAt": ts(p.updated_at),
                        "archivedAt": p.archived_at.map(ts),
                        "completedAt": null, "canceledAt": null,
                        "teams": {"nodes": p.team_ids.iter().filter_map(|id| self.team(id)).map(|t| json!({"id": t.id, "key": t.key})).collect::<Vec<_>>()},
                    }),
                })
                .collect(),
            "issues" => self
                .issues
                .iter()
                .map(|i| {
                    let team = self.team(&i.team_id);
                    let project = i
                        .project_id
                        .as_deref()
                        .and_then(|id| self.projects.iter().find(|p| p.id == id));
                    Row {
                        created_at: i.created_at,
                        updated_at: i.updated_at,
                        archived: i.archived_at.is_some(),
                        disabled: false,
                        id: i.id.clone(),
                        node: json!({
                            "id": i.id, "identifier": self.identifier(i), "number": i.number,
                            "title": i.title, "description": i.description,
                            "url": self.issue_url(i), "priority": i.priority,
                            "priorityLabel": PRIORITY_LABELS[usize::from(i.priority.min(4))],
                            "estimate": null, "dueDate": null,
                            "createdAt": ts(i.created_at), "updatedAt": ts(i.updated_at),
                            "archivedAt": i.archived_at.map(ts),
                            "completedAt": (i.state.1 == "completed").then(|| ts(i.updated_at)),
                            "canceledAt": null,
                            "state": {"id": format!("state-{}", i.state.1), "name": i.state.0, "type": i.state.1},
                            "assignee": self.user_json(i.assignee_id.as_deref()),
                            "creator": self.user_json(Some(&i.creator_id)),
                            "team": team.map(|t| json!({"id": t.id, "key": t.key, "name": t.name})),
                            "project": project.map(|p| json!({"id": p.id, "name": p.name})),
                            "labels": {"nodes": i.labels.iter().map(|l| json!({"id": format!("label-{l}"), "name": l})).collect::<Vec<_>>()},
                            // Volatile: moves whenever the board is reordered.
                            "sortOrder": -(i64::from(i.number)) as f64 * 1.5,
                        }),
                    }
                })
                .collect(),
            "comments" => self
                .comments
                .iter()
                .map(|c| {
                    let issue = self.issues.iter().find(|i| i.id == c.issue_id);
                    Row {
                        created_at: c.created_at,
                        updated_at: c.updated_at,
                        archived: c.archived_at.is_some(),
                        disabled: false,
                        id: c.id.clone(),
                        node: json!({
                            "id": c.id, "body": c.body,
                            "url": issue.map(|i| format!("https://linear.app/{ORG}/issue/{}#comment-{}", self.identifier(i), &c.id[c.id.len() - 8..])),
                            "createdAt": ts(c.created_at), "updatedAt": ts(c.updated_at),
                            "editedAt": c.edited_at.map(ts), "archivedAt": c.archived_at.map(ts),
                            "user": self.user(&c.user_id).map(|u| json!({"id": u.id, "name": u.name})),
                            "issue": issue.map(|i| json!({"id": i.id, "identifier": self.identifier(i), "title": i.title})),
                        }),
                    }
                })
                .collect(),
            _ => return None,
        };
        Some(rows)
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One item of a list, ready to filter, order and page.
struct Row {
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    archived: bool,
    /// A deactivated user: listed only with `includeDisabled: true`.
    disabled: bool,
    id: String,
    node: Value,
}

impl Row {
    /// Lists are ordered by `createdAt` (Linear's default), ties by id.
    fn position(&self) -> (i64, String) {
        (self.created_at.timestamp_millis(), self.id.clone())
    }
}

/// An opaque cursor naming a position in the order, so a page still follows the one before
/// after the item it ended on was removed.
fn encode_cursor(row: &Row) -> String {
    let (ms, id) = row.position();
    base64::engine::general_purpose::STANDARD.encode(format!("{ms}:{id}"))
}

fn decode_cursor(cursor: &str) -> Option<(i64, String)> {
    let text = base64::engine::general_purpose::STANDARD
        .decode(cursor)
        .ok()?;
    let (ms, id) = std::str::from_utf8(&text).ok()?.split_once(':')?;
    Some((ms.parse().ok()?, id.to_owned()))
}

/// What a test makes the next answers be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trouble {
    /// HTTP 400 `RATELIMITED`, the requests budget spent for this many seconds.
    RateLimited { wait_secs: u64 },
    /// HTTP 200 with a body cut off mid-JSON, as a broken proxy leaves it.
    Malformed,
}

/// A query as the fake was asked it: the root field and the variables that steer a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    pub field: String,
    pub after: Option<String>,
    /// `filter.updatedAt.gt`, when given.
    pub updated_after: Option<String>,
    pub include_archived: bool,
}

struct State {
    /// `None` once the key was revoked: every request is then unauthenticated.
    valid_key: Mutex<Option<String>>,
    /// OAuth access tokens accepted besides the key, each only as `Bearer <token>`.
    oauth_tokens: Mutex<Vec<String>>,
    workspace: Arc<Mutex<Workspace>>,
    /// A trouble due after this many more list answers.
    trouble: Mutex<Option<(usize, Trouble)>>,
    /// The next `viewer` query is rate-limited for this many seconds.
    viewer_limited: Mutex<Option<u64>>,
    asked: Mutex<Vec<Asked>>,
    requests: Mutex<u64>,
}

pub struct FakeLinear {
    /// e.g. `http://127.0.0.1:54321`: the value for `SOURCE_LINEAR_BASE_URL`.
    pub base_url: String,
    state: Arc<State>,
    server: FakeServer,
}

impl FakeLinear {
    /// Serves the demo workspace on a random port of 127.0.0.1 until dropped.
    pub async fn start(valid_key: &str) -> Self {
        Self::start_with(valid_key, Workspace::demo()).await
    }

    /// Serves `workspace` on a random port of 127.0.0.1 until dropped.
    pub async fn start_with(valid_key: &str, workspace: Workspace) -> Self {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        Self::start_on(addr, valid_key, workspace)
            .await
            .expect("bind the fake Linear on 127.0.0.1")
    }

    /// Serves `workspace` on `addr` (`make fakes` uses a fixed port).
    pub async fn start_on(
        addr: SocketAddr,
        valid_key: &str,
        workspace: Workspace,
    ) -> std::io::Result<Self> {
        let state = Arc::new(State {
            valid_key: Mutex::new(Some(valid_key.to_owned())),
            oauth_tokens: Mutex::new(Vec::new()),
            workspace: Arc::new(Mutex::new(workspace)),
            trouble: Mutex::new(None),
            viewer_limited: Mutex::new(None),
            asked: Mutex::new(Vec::new()),
            requests: Mutex::new(0),
        });
        let handler_state = Arc::clone(&state);
        let server = FakeServer::start_on(
            addr,
            Arc::new(move |r: &FakeRequest| answer(&handler_state, r)),
        )
        .await?;
        Ok(Self {
            base_url: server.base_url.clone(),
            state,
            server,
        })
    }

    /// The workspace, to change between syncs (the fake answers from it as it is then).
    pub fn workspace(&self) -> MutexGuard<'_, Workspace> {
        self.state.workspace.lock().expect("workspace lock")
    }

    /// The shared workspace itself, for a test that keeps it beyond the fake.
    pub fn shared_workspace(&self) -> Arc<Mutex<Workspace>> {
        Arc::clone(&self.state.workspace)
    }

    /// After `answered` more list answers, one `RATELIMITED` answer with the requests budget
    /// spent for `wait_secs`; then the fake answers normally again.
    pub fn rate_limit_once_after(&self, answered: usize, wait_secs: u64) {
        *self.state.trouble.lock().expect("trouble lock") =
            Some((answered, Trouble::RateLimited { wait_secs }));
    }

    /// After `answered` more list answers, one answer whose body is cut off mid-JSON.
    pub fn malform_once_after(&self, answered: usize) {
        *self.state.trouble.lock().expect("trouble lock") = Some((answered, Trouble::Malformed));
    }

    /// Accepts this OAuth access token too, as Linear does: only as `Bearer <token>` (until the
    /// key is revoked, which makes every request unauthenticated).
    pub fn accept_oauth_token(&self, token: &str) {
        self.state
            .oauth_tokens
            .lock()
            .expect("tokens lock")
            .push(token.to_owned());
    }

    /// The next `viewer` query (the credential check) answers `RATELIMITED`, the requests
    /// budget spent for `wait_secs`; list answers are not counted for it, nor it for them.
    pub fn rate_limit_viewer_once(&self, wait_secs: u64) {
        *self.state.viewer_limited.lock().expect("viewer lock") = Some(wait_secs);
    }

    /// `"POST /graphql"`-style lines of every request received, `viewer` checks included.
    pub fn requests(&self) -> Vec<String> {
        self.server.requests()
    }

    /// Revokes the key: every request from now on is unauthenticated.
    pub fn revoke_key(&self) {
        *self.state.valid_key.lock().expect("key lock") = None;
    }

    /// The list queries received, in order (the `viewer` checks are left out).
    pub fn asked(&self) -> Vec<Asked> {
        self.state.asked.lock().expect("asked lock").clone()
    }
}

fn answer(state: &State, request: &FakeRequest) -> FakeResponse {
    let count = {
        let mut requests = state.requests.lock().expect("requests lock");
        *requests += 1;
        *requests
    };
    let remaining = HOURLY_REQUESTS.saturating_sub(count);
    let reset_ms = Utc::now().timestamp_millis() + 3_600_000;
    let respond = |response: FakeResponse| with_rate_limit(response, remaining, reset_ms);

    if request.method != "POST" || request.path != "/graphql" {
        return respond(FakeResponse::text(404, "text/plain", "Cannot GET"));
    }
    if !authenticated(state, request) {
        return respond(error(
            400,
            "Authentication required, not authenticated",
            "AUTHENTICATION_ERROR",
            "authentication error",
            "You need to authenticate to access this operation.",
        ));
    }
    let body = request.json();
    let Some(field) = body
        .get("query")
        .and_then(Value::as_str)
        .and_then(root_field)
    else {
        return respond(error(
            400,
            "Syntax Error: Unexpected <EOF>.",
            "GRAPHQL_PARSE_FAILED",
            "graphql error",
            "The query could not be parsed.",
        ));
    };
    let variables = body
        .get("variables")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if field == "viewer" {
        if let Some(wait_secs) = state.viewer_limited.lock().expect("viewer lock").take() {
            return rate_limited(wait_secs);
        }
        let workspace = state.workspace.lock().expect("workspace lock");
        let viewer = workspace
            .users
            .first()
            .map(|u| json!({"id": u.id, "name": u.name, "email": u.email}));
        return respond(FakeResponse::json(
            200,
            &json!({"data": {"viewer": viewer}}),
        ));
    }

    state.asked.lock().expect("asked lock").push(Asked {
        field: field.clone(),
        after: variables
            .get("after")
            .and_then(Value::as_str)
            .map(str::to_owned),
        updated_after: variables
            .get("filter")
            .and_then(|f| f.pointer("/updatedAt/gt"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        include_archived: variables
            .get("includeArchived")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    });
    if let Some(trouble) = due_trouble(state) {
        return match trouble {
            Trouble::RateLimited { wait_secs } => rate_limited(wait_secs),
            Trouble::Malformed => respond(FakeResponse::text(
                200,
                "application/json; charset=utf-8",
                format!(r#"{{"data":{{"{field}":{{"nodes":[{{"id":"#),
            )),
        };
    }
    let workspace = state.workspace.lock().expect("workspace lock");
    match list(&workspace, &field, &variables) {
        Ok(data) => respond(FakeResponse::json(200, &json!({"data": {field: data}}))),
        Err(message) => respond(error(
            400,
            &message,
            "INVALID_INPUT",
            "invalid input",
            &message,
        )),
    }
}

/// `RATELIMITED`, the requests budget spent until `wait_secs` from now.
fn rate_limited(wait_secs: u64) -> FakeResponse {
    let reset = Utc::now().timestamp_millis() + (wait_secs * 1000) as i64;
    with_rate_limit(
        error(
            400,
            "Rate limit exceeded",
            "RATELIMITED",
            "ratelimited",
            "You have exceeded the API rate limit, please try again later.",
        ),
        0,
        reset,
    )
}

/// A personal API key is the whole `Authorization` value; `Bearer <token>` is how OAuth
/// tokens go, and Linear refuses a personal key sent that way.
fn authenticated(state: &State, request: &FakeRequest) -> bool {
    let Some(valid) = state.valid_key.lock().expect("key lock").clone() else {
        return false;
    };
    let oauth = state.oauth_tokens.lock().expect("tokens lock");
    if request
        .bearer()
        .is_some_and(|token| oauth.iter().any(|t| t == token))
    {
        return true;
    }
    let Some(sent) = request.header("authorization").map(str::trim) else {
        return false;
    };
    if sent == valid {
        return true;
    }
    match request.bearer() {
        Some(token) => token == valid && !valid.starts_with("lin_api_"),
        None => false,
    }
}

/// Counts a list answer against the armed trouble; answers it when it is due (once).
fn due_trouble(state: &State) -> Option<Trouble> {
    let mut armed = state.trouble.lock().expect("trouble lock");
    match armed.as_mut() {
        Some((0, trouble)) => {
            let trouble = *trouble;
            *armed = None;
            Some(trouble)
        }
        Some((left, _)) => {
            *left -= 1;
            None
        }
        None => None,
    }
}

/// The first field of the operation's selection set: `query Issues($first: Int!) { issues(`
/// answers `issues`.
fn root_field(query: &str) -> Option<String> {
    let (_, selection) = query.split_once('{')?;
    let name: String = selection
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// One page of a list, as a Relay connection.
fn list(
    workspace: &Workspace,
    field: &str,
    variables: &Map<String, Value>,
) -> Result<Value, String> {
    let Some(mut rows) = workspace.rows(field) else {
        return Err(format!("Cannot query field \"{field}\" on type \"Query\"."));
    };
    let first = match variables.get("first") {
        None | Some(Value::Null) => DEFAULT_PAGE,
        Some(n) => match n.as_u64() {
            Some(n @ 1..=250) => n as usize,
            _ => return Err(format!("first must be between 1 and {MAX_PAGE}")),
        },
    };
    let include_archived = variables
        .get("includeArchived")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let updated_after = match variables
        .get("filter")
        .and_then(|f| f.pointer("/updatedAt/gt"))
    {
        None | Some(Value::Null) => None,
        Some(gt) => Some(
            gt.as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc))
                .ok_or("filter.updatedAt.gt must be a DateTime")?,
        ),
    };
    let after = match variables.get("after") {
        None | Some(Value::Null) => None,
        Some(cursor) => Some(
            cursor
                .as_str()
                .and_then(decode_cursor)
                .ok_or("after is not a valid cursor")?,
        ),
    };
    let include_disabled = variables
        .get("includeDisabled")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    rows.retain(|r| (include_archived || !r.archived) && (include_disabled || !r.disabled));
    if let Some(since) = updated_after {
        rows.retain(|r| r.updated_at > since);
    }
    rows.sort_by_key(Row::position);
    if let Some(after) = after {
        rows.retain(|r| r.position() > after);
    }
    let has_next = rows.len() > first;
    rows.truncate(first);
    let end_cursor = rows.last().map(encode_cursor);
    let start_cursor = rows.first().map(encode_cursor);
    Ok(json!({
        "nodes": rows.into_iter().map(|r| r.node).collect::<Vec<_>>(),
        "pageInfo": {
            "hasNextPage": has_next,
            "hasPreviousPage": after_given(variables),
            "startCursor": start_cursor,
            "endCursor": end_cursor,
        },
    }))
}

fn after_given(variables: &Map<String, Value>) -> bool {
    variables.get("after").is_some_and(|a| !a.is_null())
}

/// Linear's error body: `errors[]` with `extensions` (`code`, `type`, `statusCode`,
/// `userError`, `userPresentableMessage`) and no `data`.
fn error(status: u16, message: &str, code: &str, kind: &str, user_message: &str) -> FakeResponse {
    let status_code = match code {
        "AUTHENTICATION_ERROR" => 401,
        "RATELIMITED" => 429,
        _ => status,
    };
    FakeResponse::json(
        status,
        &json!({"errors": [{
            "message": message,
            "extensions": {
                "code": code,
                "type": kind,
                "statusCode": status_code,
                "userError": true,
                "userPresentableMessage": user_message,
            },
        }]}),
    )
}

/// The requests budget headers every answer carries (resets in UTC epoch milliseconds).
fn with_rate_limit(response: FakeResponse, remaining: u64, reset_ms: i64) -> FakeResponse {
    response
        .with_header("x-ratelimit-requests-limit", HOURLY_REQUESTS)
        .with_header("x-ratelimit-requests-remaining", remaining)
        .with_header("x-ratelimit-requests-reset", reset_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "lin_api_fakeTestKey";

    async fn post(fake: &FakeLinear, authorization: &str, body: Value) -> (u16, Value) {
        let response = raw_http::post(&fake.base_url, authorization, &body).await;
        (
            response.0,
            serde_json::from_str(&response.1).unwrap_or(Value::Null),
        )
    }

    fn query(field: &str) -> String {
        format!("query Q($first: Int, $after: String) {{ {field}(first: $first, after: $after) {{ nodes {{ id }} pageInfo {{ hasNextPage endCursor }} }} }}")
    }

    #[tokio::test]
    async fn pages_follow_their_cursors_until_the_last() {
        let fake = FakeLinear::start_with(KEY, Workspace::seeded(7)).await;
        let mut after = Value::Null;
        let mut ids = Vec::new();
        loop {
            let (status, body) = post(
                &fake,
                KEY,
                json!({"query": query("issues"), "variables": {"first": 3, "after": after}}),
            )
            .await;
            assert_eq!(status, 200);
            let page = &body["data"]["issues"];
            ids.extend(
                page["nodes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n["id"].clone()),
            );
            if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
                break;
            }
            after = page["pageInfo"]["endCursor"].clone();
        }
        assert_eq!(ids.len(), 7);
        assert_eq!(fake.asked().len(), 3);
    }

    #[tokio::test]
    async fn archived_items_show_only_when_asked_and_filters_see_edits() {
        let fake = FakeLinear::start_with(KEY, Workspace::seeded(4)).await;
        let (archived, edited) = {
            let mut w = fake.workspace();
            let archived = w.issues[0].id.clone();
            let edited = w.issues[1].id.clone();
            w.archive_issue(&archived);
            w.edit_issue(&edited, "Renamed");
            (archived, edited)
        };
        let ask = |variables: Value| json!({"query": query("issues"), "variables": variables});
        let (_, all) = post(&fake, KEY, ask(json!({}))).await;
        assert_eq!(all["data"]["issues"]["nodes"].as_array().unwrap().len(), 3);
        let since = ts(Utc::now() - Duration::minutes(1));
        let (_, changed) = post(
            &fake,
            KEY,
            ask(json!({"includeArchived": true, "filter": {"updatedAt": {"gt": since}}})),
        )
        .await;
        let ids: Vec<&str> = changed["data"]["issues"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [archived.as_str(), edited.as_str()]);
    }

    #[tokio::test]
    async fn keys_are_raw_and_switches_fire_once() {
        let fake = FakeLinear::start(KEY).await;
        let viewer = json!({"query": "query { viewer { id name } }"});
        assert_eq!(post(&fake, KEY, viewer.clone()).await.0, 200);
        let (status, body) = post(&fake, &format!("Bearer {KEY}"), viewer.clone()).await;
        assert_eq!(status, 400);
        assert_eq!(
            body["errors"][0]["extensions"]["code"],
            "AUTHENTICATION_ERROR"
        );

        fake.rate_limit_once_after(1, 1);
        let teams = json!({"query": query("teams")});
        assert_eq!(post(&fake, KEY, teams.clone()).await.0, 200);
        let (status, body) = post(&fake, KEY, teams.clone()).await;
        assert_eq!(
            (status, &body["errors"][0]["extensions"]["code"]),
            (400, &json!("RATELIMITED"))
        );
        assert_eq!(post(&fake, KEY, teams.clone()).await.0, 200);

        fake.malform_once_after(0);
        let (status, body) = post(&fake, KEY, teams.clone()).await;
        assert_eq!((status, body), (200, Value::Null), "not JSON");

        fake.revoke_key();
        assert_eq!(post(&fake, KEY, teams).await.0, 400);
    }

    #[tokio::test]
    async fn checks_can_be_rate_limited_once_and_oauth_tokens_go_as_bearer_tokens() {
        let fake = FakeLinear::start(KEY).await;
        fake.rate_limit_viewer_once(20);
        let viewer = json!({"query": "query { viewer { id } }"});
        let (status, body) = post(&fake, KEY, viewer.clone()).await;
        assert_eq!(
            (status, &body["errors"][0]["extensions"]["code"]),
            (400, &json!("RATELIMITED"))
        );
        assert_eq!(post(&fake, KEY, viewer.clone()).await.0, 200, "once");
        fake.accept_oauth_token("lin_oauth_fakeToken");
        let bearer = post(&fake, "Bearer lin_oauth_fakeToken", viewer.clone()).await;
        assert_eq!(bearer.0, 200, "an OAuth token as a bearer token");
        let raw = post(&fake, "lin_oauth_fakeToken", viewer).await;
        assert_eq!(raw.0, 400, "an OAuth token is no key");
        assert!(fake.asked().is_empty(), "checks are not list queries");
        assert_eq!(fake.requests().len(), 4);
    }

    /// A minimal HTTP/1.1 client: the fakes crate has no HTTP client dependency.
    mod raw_http {
        use serde_json::Value;
        use std::io::{Read, Write};
        use std::net::TcpStream;

        pub async fn post(base_url: &str, authorization: &str, body: &Value) -> (u16, String) {
            let host = base_url.trim_start_matches("http://").to_owned();
            let authorization = authorization.to_owned();
            let body = body.to_string();
            tokio::task::spawn_blocking(move || {
                let mut stream = TcpStream::connect(&host).unwrap();
                let request = format!(
                    "POST /graphql HTTP/1.1\r\nHost: {host}\r\nAuthorization: {authorization}\r\n\
                     Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                stream.write_all(request.as_bytes()).unwrap();
                let mut response = String::new();
                stream.read_to_string(&mut response).unwrap();
                let status = response[9..12].parse().unwrap();
                let (_, body) = response.split_once("\r\n\r\n").unwrap();
                (status, body.to_owned())
            })
            .await
            .unwrap()
        }
    }
}

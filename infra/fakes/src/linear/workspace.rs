//! The data model of the fake Linear workspace: teams, users, projects, issues, comments.

use super::*;

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
    pub(super) serial: u32,
}

/// A UUID-shaped id, as Linear's: the kind in the first group, a counter in the last.
pub(super) fn uuid(kind: u32, n: u32) -> String {
    format!("{kind:08x}-0000-4000-8000-{n:012x}")
}

/// A fixed instant of the seeded data, `days` after the workspace was founded.
pub(super) fn founded(days: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 9, 1, 9, 0, 0).unwrap() + Duration::days(days)
}

pub(super) const STATES: [(&str, &str); 4] = [
    ("Backlog", "backlog"),
    ("Todo", "unstarted"),
    ("In Progress", "started"),
    ("Done", "completed"),
];
pub(super) const PRIORITY_LABELS: [&str; 5] = ["No priority", "Urgent", "High", "Medium", "Low"];
pub(super) const LABELS: [&str; 4] = ["bug", "feature", "ui", "performance"];
pub(super) const WORDS: [&str; 12] = [
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

    pub(super) fn next_serial(&mut self) -> u32 {
        self.serial += 1;
        self.serial
    }

    pub(super) fn team_id(&self, key: &str) -> String {
        self.teams
            .iter()
            .find(|t| t.key == key)
            .unwrap_or_else(|| panic!("no team {key} in the fake workspace"))
            .id
            .clone()
    }

    pub(super) fn issue_mut(&mut self, id: &str) -> &mut Issue {
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

    pub(super) fn team(&self, id: &str) -> Option<&Team> {
        self.teams.iter().find(|t| t.id == id)
    }

    pub(super) fn user(&self, id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    pub(super) fn identifier(&self, issue: &Issue) -> String {
        let key = self.team(&issue.team_id).map_or("?", |t| t.key.as_str());
        format!("{key}-{}", issue.number)
    }

    pub(super) fn issue_url(&self, issue: &Issue) -> String {
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

    pub(super) fn user_json(&self, id: Option<&str>) -> Value {
        match id.and_then(|id| self.user(id)) {
            Some(u) => json!({"id": u.id, "name": u.name, "email": u.email}),
            None => Value::Null,
        }
    }

    /// Every item of a root field as Linear renders it, with what pagination and filters need.
    pub(super) fn rows(&self, field: &str) -> Option<Vec<Row>> {
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

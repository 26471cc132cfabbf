//! The control port of `make fakes`: `POST /<source>/change` edits one item of a fake's demo
//! workspace and adds one, `POST /<source>/revoke` revokes its token, so a demo on `make dev`
//! can watch a re-sync pick a change up and a revoked token end in `needs_reauth`.

use crate::{FakeRequest, FakeResponse};
use serde_json::json;
use std::sync::Arc;

/// What the control port can do to one fake: change its workspace (one edit, one new item) and
/// revoke its token. Each answers what it did.
pub struct Control {
    change: Box<dyn Fn() -> String + Send + Sync>,
    revoke: Box<dyn Fn() + Send + Sync>,
}

pub fn control_handler(controls: Vec<(&'static str, Control)>) -> crate::Handler {
    Arc::new(move |request: &FakeRequest| {
        let mut parts = request.path.trim_matches('/').splitn(2, '/');
        let (source, action) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let Some((_, control)) = controls.iter().find(|(name, _)| *name == source) else {
            let sources: Vec<&str> = controls.iter().map(|(name, _)| *name).collect();
            return FakeResponse::json(
                404,
                &json!({"usage": "POST /<source>/change | /<source>/revoke", "sources": sources}),
            );
        };
        match (request.method.as_str(), action) {
            ("POST", "change") => FakeResponse::json(200, &json!({"changed": (control.change)()})),
            ("POST", "revoke") => {
                (control.revoke)();
                FakeResponse::json(200, &json!({"revoked": source}))
            }
            _ => FakeResponse::json(
                404,
                &json!({"usage": "POST /<source>/change | /<source>/revoke"}),
            ),
        }
    })
}

pub fn github_control(github: &Arc<crate::github::FakeGithub>) -> Control {
    let (changed, revoked) = (Arc::clone(github), Arc::clone(github));
    Control {
        change: Box::new(move || {
            let mut repo = changed.repo(crate::github::DEMO_REPO);
            let number = repo.add_issue("Filed from the control port", "A new issue.");
            repo.edit_issue(1, |issue| issue.title = format!("{} (edited)", issue.title));
            format!("added issue #{number}, edited issue #1")
        }),
        revoke: Box::new(move || revoked.revoke_token()),
    }
}

pub fn linear_control(linear: &Arc<crate::linear::FakeLinear>) -> Control {
    let (changed, revoked) = (Arc::clone(linear), Arc::clone(linear));
    Control {
        change: Box::new(move || {
            let mut workspace = changed.workspace();
            let added = workspace.add_issue("ENG", "Filed from the control port");
            let first = workspace.issues[0].id.clone();
            let title = format!("{} (edited)", workspace.issues[0].title);
            workspace.edit_issue(&first, &title);
            format!("added issue {added}, edited issue {first}")
        }),
        revoke: Box::new(move || revoked.revoke_key()),
    }
}

pub fn slack_control(slack: &Arc<crate::slack::FakeSlack>) -> Control {
    let (changed, revoked) = (Arc::clone(slack), Arc::clone(slack));
    Control {
        change: Box::new(move || {
            let ts = changed.post("C0GENERAL", "U0ALICE", "Posted from the control port");
            changed.edit("C0GENERAL", &ts, "Posted from the control port (edited)");
            let reply = changed.reply("C0GENERAL", &ts, "U0BOB", "A reply to it");
            format!("posted {ts} in C0GENERAL and replied {reply}")
        }),
        revoke: Box::new(move || revoked.revoke_token()),
    }
}

pub fn notion_control(notion: &Arc<crate::notion::FakeNotion>) -> Control {
    let (changed, revoked) = (Arc::clone(notion), Arc::clone(notion));
    Control {
        change: Box::new(move || {
            let id = changed.add_page(
                "Written from the control port",
                vec![crate::notion::Block::paragraph("A new page.")],
            );
            format!("added page {id}")
        }),
        revoke: Box::new(move || revoked.revoke_token()),
    }
}

pub fn google_drive_control(drive: &Arc<crate::google_drive::FakeGoogleDrive>) -> Control {
    let (changed, revoked) = (Arc::clone(drive), Arc::clone(drive));
    Control {
        change: Box::new(move || {
            let id = changed
                .workspace()
                .add_doc("Written from the control port", "A new document.");
            format!("added document {id}")
        }),
        revoke: Box::new(move || revoked.revoke_token()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::HeaderMap;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn post(path: &str) -> FakeRequest {
        FakeRequest {
            method: "POST".into(),
            path: path.into(),
            query: Default::default(),
            headers: HeaderMap::new(),
            body: Default::default(),
        }
    }

    /// The status of `GET /user` with the demo token, over a plain HTTP/1.1 exchange.
    async fn user_status(base_url: &str) -> u16 {
        let host = base_url.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
        let request = format!(
            "GET /user HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            crate::github::DEMO_TOKEN
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer[9..12].parse().unwrap()
    }

    #[tokio::test]
    async fn change_edits_the_demo_workspace_and_revoke_refuses_the_token() {
        let github = Arc::new(
            crate::github::FakeGithub::start_with(
                crate::github::DEMO_TOKEN,
                crate::github::Workspace::demo(),
            )
            .await,
        );
        let handler = control_handler(vec![("github", github_control(&github))]);
        let issues = |g: &crate::github::FakeGithub| g.repo(crate::github::DEMO_REPO).issues.len();
        let before = issues(&github);
        assert_eq!(handler(&post("/github/change")).status, 200);
        assert_eq!(issues(&github), before + 1);
        assert!(github.repo(crate::github::DEMO_REPO).issues[&1]
            .title
            .ends_with("(edited)"));

        assert_eq!(user_status(&github.base_url).await, 200);
        assert_eq!(handler(&post("/github/revoke")).status, 200);
        assert_eq!(user_status(&github.base_url).await, 401);

        assert_eq!(handler(&post("/jira/change")).status, 404);
        assert_eq!(handler(&post("/github/explode")).status, 404);
    }
}

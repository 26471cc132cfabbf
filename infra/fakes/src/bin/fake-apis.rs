//! `make fakes`: every provider fake on a fixed port of 127.0.0.1, with a demo workspace, until
//! interrupted. Prints the `SOURCE_<NAME>_BASE_URL` values to start `make dev` with, and the
//! tokens the fakes accept. A control port (4700) changes the workspaces and revokes tokens, so a
//! demo can watch a re-sync pick a change up and a revoked token end in `needs_reauth`:
//! `curl -X POST 127.0.0.1:4700/<source>/change` or `.../<source>/revoke`.

use fakes::control::{
    control_handler, github_control, google_drive_control, linear_control, notion_control,
    slack_control, Control,
};
use fakes::FakeServer;
use std::net::SocketAddr;
use std::sync::Arc;

/// The control port.
const CONTROL_PORT: u16 = 4700;

/// The fixed local port of each fake.
pub const PORTS: [(&str, u16); 5] = [
    ("github", 4701),
    ("linear", 4702),
    ("slack", 4703),
    ("notion", 4704),
    ("google_drive", 4705),
];

fn addr(name: &str) -> SocketAddr {
    let port = PORTS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(0, |(_, p)| *p);
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[tokio::main]
async fn main() {
    let mut running: Vec<Box<dyn std::any::Any>> = Vec::new();
    let mut controls: Vec<(&'static str, Control)> = Vec::new();
    // Each source's fake: started on its port, its variable and token printed.
    let github = fakes::github::FakeGithub::start_on(
        addr("github"),
        fakes::github::DEMO_TOKEN,
        fakes::github::Workspace::demo(),
    )
    .await
    .expect("bind the fake GitHub on its port");
    println!("SOURCE_GITHUB_BASE_URL={}", github.base_url);
    println!(
        "  github token: {} (repo_name: {})",
        fakes::github::DEMO_TOKEN,
        fakes::github::DEMO_REPO
    );
    let github = Arc::new(github);
    controls.push(("github", github_control(&github)));
    running.push(Box::new(github));
    let linear = fakes::linear::FakeLinear::start_on(
        addr("linear"),
        fakes::linear::DEMO_KEY,
        fakes::linear::Workspace::demo(),
    )
    .await
    .expect("bind the fake Linear on its port");
    println!("SOURCE_LINEAR_BASE_URL={}", linear.base_url);
    println!("  linear api key: {}", fakes::linear::DEMO_KEY);
    let linear = Arc::new(linear);
    controls.push(("linear", linear_control(&linear)));
    running.push(Box::new(linear));
    let notion = fakes::notion::FakeNotion::start_on(addr("notion"), fakes::notion::DEMO_TOKEN)
        .await
        .expect("bind the fake Notion on its port");
    notion.load_demo();
    println!("SOURCE_NOTION_BASE_URL={}", notion.base_url);
    println!("  notion token: {}", fakes::notion::DEMO_TOKEN);
    let notion = Arc::new(notion);
    controls.push(("notion", notion_control(&notion)));
    running.push(Box::new(notion));
    let slack = fakes::slack::FakeSlack::start_on(addr("slack"), fakes::slack::DEMO_TOKEN)
        .await
        .expect("bind the fake Slack on its port");
    slack.seed_demo_workspace();
    println!("SOURCE_SLACK_BASE_URL={}", slack.base_url);
    println!("  slack token: {}", fakes::slack::DEMO_TOKEN);
    let slack = Arc::new(slack);
    controls.push(("slack", slack_control(&slack)));
    running.push(Box::new(slack));
    let google_drive = fakes::google_drive::FakeGoogleDrive::start_on(
        addr("google_drive"),
        fakes::google_drive::DEMO_TOKEN,
    )
    .await
    .expect("bind the fake Google Drive on its port");
    google_drive.set_workspace(fakes::google_drive::Workspace::demo());
    println!("SOURCE_GOOGLE_DRIVE_BASE_URL={}", google_drive.base_url);
    println!(
        "  google_drive access token: {}",
        fakes::google_drive::DEMO_TOKEN
    );
    let google_drive = Arc::new(google_drive);
    controls.push(("google_drive", google_drive_control(&google_drive)));
    running.push(Box::new(google_drive));
    let control = FakeServer::start_on(
        SocketAddr::from(([127, 0, 0, 1], CONTROL_PORT)),
        control_handler(controls),
    )
    .await
    .expect("bind the control port");
    println!(
        "control: curl -X POST {}/<source>/change (edit one item, add one) or .../<source>/revoke",
        control.base_url
    );
    running.push(Box::new(control));
    println!("fakes running; Ctrl-C stops them");
    let _ = tokio::signal::ctrl_c().await;
    drop(running);
}

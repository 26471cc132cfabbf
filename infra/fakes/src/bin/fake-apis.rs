//! `make fakes`: every provider fake on a fixed port of 127.0.0.1, with a demo workspace, until
//! interrupted: the sources' APIs, GitHub's OAuth endpoints, Composio and Pipedream. Prints the
//! variables to start `make dev` with (and writes them to `.dev/fakes.env`), and the tokens the
//! fakes accept. A control port (4700) changes the workspaces and revokes tokens, so a
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
pub const PORTS: [(&str, u16); 8] = [
    ("github", 4701),
    ("linear", 4702),
    ("slack", 4703),
    ("notion", 4704),
    ("google_drive", 4705),
    ("oauth", 4706),
    ("composio", 4707),
    ("pipedream", 4708),
];

/// The platform's OAuth app at the fake OAuth provider, and a customer's (BYOC) app.
const OAUTH_CLIENT: (&str, &str) = ("fake-github-app", "fake-github-app-secret");
const BYOC_CLIENT: (&str, &str) = ("customer-github-app", "customer-github-app-secret");

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
    // What `make dev` needs to reach the fakes: printed, and written to `.dev/fakes.env`.
    let mut env: Vec<(&str, String)> = Vec::new();
    // Each source's fake: started on its port, its variable and token printed.
    let github = fakes::github::FakeGithub::start_on(
        addr("github"),
        fakes::github::DEMO_TOKEN,
        fakes::github::Workspace::demo(),
    )
    .await
    .expect("bind the fake GitHub on its port");
    env.push(("SOURCE_GITHUB_BASE_URL", github.base_url.clone()));
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
    env.push(("SOURCE_LINEAR_BASE_URL", linear.base_url.clone()));
    println!("  linear api key: {}", fakes::linear::DEMO_KEY);
    let linear = Arc::new(linear);
    controls.push(("linear", linear_control(&linear)));
    running.push(Box::new(linear));
    let notion = fakes::notion::FakeNotion::start_on(addr("notion"), fakes::notion::DEMO_TOKEN)
        .await
        .expect("bind the fake Notion on its port");
    notion.load_demo();
    env.push(("SOURCE_NOTION_BASE_URL", notion.base_url.clone()));
    println!("  notion token: {}", fakes::notion::DEMO_TOKEN);
    let notion = Arc::new(notion);
    controls.push(("notion", notion_control(&notion)));
    running.push(Box::new(notion));
    let slack = fakes::slack::FakeSlack::start_on(addr("slack"), fakes::slack::DEMO_TOKEN)
        .await
        .expect("bind the fake Slack on its port");
    slack.seed_demo_workspace();
    env.push(("SOURCE_SLACK_BASE_URL", slack.base_url.clone()));
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
    env.push((
        "SOURCE_GOOGLE_DRIVE_BASE_URL",
        google_drive.base_url.clone(),
    ));
    println!(
        "  google_drive access token: {}",
        fakes::google_drive::DEMO_TOKEN
    );
    let google_drive = Arc::new(google_drive);
    controls.push(("google_drive", google_drive_control(&google_drive)));
    running.push(Box::new(google_drive));
    // GitHub's OAuth endpoints: consent is automatic, and the tokens it issues are the fake
    // GitHub's, so a browser flow ends in a connection that syncs.
    let mut config = fakes::oauth::FakeOAuthConfig::new(
        OAUTH_CLIENT.0,
        OAUTH_CLIENT.1,
        fakes::oauth::FakeClientAuth::Body,
    );
    config.issued_access_token = Some(fakes::github::DEMO_TOKEN.to_owned());
    let oauth = fakes::oauth::FakeOAuthProvider::start_with_on(addr("oauth"), config)
        .await
        .expect("bind the fake OAuth provider on its port");
    oauth.register_client(BYOC_CLIENT.0, BYOC_CLIENT.1);
    let oauth_env = [
        ("SOURCE_GITHUB_AUTHORIZE_URL", oauth.authorize_url()),
        ("SOURCE_GITHUB_TOKEN_URL", oauth.token_url()),
        ("OAUTH_GITHUB_CLIENT_ID", OAUTH_CLIENT.0.to_owned()),
        ("OAUTH_GITHUB_CLIENT_SECRET", OAUTH_CLIENT.1.to_owned()),
    ];
    env.extend(oauth_env);
    println!(
        "  github BYOC app: client_id {} client_secret {}",
        BYOC_CLIENT.0, BYOC_CLIENT.1
    );
    running.push(Box::new(oauth));
    // The auth providers, each with one account holding the fake GitHub's token.
    let composio =
        fakes::composio::FakeComposio::start_on(addr("composio"), fakes::composio::DEMO_API_KEY)
            .await
            .expect("bind the fake Composio on its port");
    composio.add_account(fakes::composio::ComposioAccount::oauth(
        "ca_demo_github",
        "github",
        fakes::github::DEMO_TOKEN,
    ));
    env.push(("AUTH_PROVIDER_COMPOSIO_BASE_URL", composio.base_url.clone()));
    println!(
        "  composio api_key: {} (account ca_demo_github)",
        fakes::composio::DEMO_API_KEY
    );
    running.push(Box::new(composio));
    let pipedream = fakes::pipedream::FakePipedream::start_on(
        addr("pipedream"),
        fakes::pipedream::DEMO_CLIENT_ID,
        fakes::pipedream::DEMO_CLIENT_SECRET,
        fakes::pipedream::DEMO_PROJECT_ID,
    )
    .await
    .expect("bind the fake Pipedream on its port");
    pipedream.add_account(fakes::pipedream::PipedreamAccount::oauth(
        "apn_demo_github",
        "github",
        "demo-user",
        fakes::github::DEMO_TOKEN,
    ));
    env.push((
        "AUTH_PROVIDER_PIPEDREAM_BASE_URL",
        pipedream.base_url.clone(),
    ));
    println!(
        "  pipedream client_id: {} client_secret: {} project_id: {} (account apn_demo_github)",
        fakes::pipedream::DEMO_CLIENT_ID,
        fakes::pipedream::DEMO_CLIENT_SECRET,
        fakes::pipedream::DEMO_PROJECT_ID
    );
    running.push(Box::new(pipedream));
    let lines: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    print!("{lines}");
    let dev_dir = std::env::var("DEV_DIR").unwrap_or_else(|_| ".dev".into());
    let file = std::path::Path::new(&dev_dir).join("fakes.env");
    match std::fs::create_dir_all(&dev_dir).and_then(|()| std::fs::write(&file, &lines)) {
        Ok(()) => println!(
            "written to {}: set -a; . {}; set +a; make dev",
            file.display(),
            file.display()
        ),
        Err(e) => eprintln!("could not write {}: {e}", file.display()),
    }
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

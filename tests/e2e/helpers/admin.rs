//! The operator's CLI (`infra/admin`) run as an operator runs it, against a test's own tables.

use super::aws::TestAws;
use super::runtime::binary;
use std::io::Write;
use std::process::{Command, Stdio};

/// How a run of `admin` ended. No `Debug`: its output may hold a new API key.
pub struct AdminRun {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `admin ARGS` with `stdin` on its standard input, pointed at the emulator and `aws`'s
/// tables and secret prefix.
pub async fn admin(aws: &TestAws, args: &[&str], stdin: Option<&str>) -> AdminRun {
    let binary = binary("admin");
    let inherited = [
        "PATH",
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_EC2_METADATA_DISABLED",
    ]
    .into_iter()
    .filter_map(|name| Some((name.to_owned(), std::env::var(name).ok()?)));
    let env: Vec<(String, String)> = inherited
        .chain([
            ("STATE_TABLE".to_owned(), aws.state_table.clone()),
            ("ENTITIES_TABLE".to_owned(), aws.entities_table.clone()),
            ("WEBHOOKS_TABLE".to_owned(), aws.webhooks_table.clone()),
            ("SECRETS_PREFIX".to_owned(), aws.secrets_prefix.clone()),
        ])
        .collect();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let stdin = stdin.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(binary)
            .env_clear()
            .envs(env)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the admin binary starts");
        let mut input = child.stdin.take().expect("its standard input");
        if let Some(text) = stdin {
            writeln!(input, "{text}").expect("write its standard input");
        }
        drop(input);
        let output = child.wait_with_output().expect("the admin binary runs");
        AdminRun {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    })
    .await
    .expect("the admin run")
}

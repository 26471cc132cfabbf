//! A function's binary run as Lambda runs it: a local Lambda Runtime API
//! (`/2018-06-01/runtime/...`) hands the process one event and records what it answers.

use fakes::{FakeRequest, FakeResponse, FakeServer};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const REQUEST_ID: &str = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";

/// What the function posted back.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Response(serde_json::Value),
    Error(String),
}

#[derive(Default)]
struct State {
    event: Option<String>,
    outcome: Option<Outcome>,
    /// The function's process, and its peak RSS read while it waited for its answer to be
    /// taken (afterwards it asks for the next event, is refused, and exits).
    pid: Option<u32>,
    peak_rss_kib: Option<u64>,
}

/// A function's binary: from `LAMBDA_BINARY_DIR` when set (`make bench-memory` points it at
/// the binaries infra/lambda-build.sh built as they are deployed), else the workspace's debug
/// binaries beside this test's own.
pub fn binary(name: &str) -> PathBuf {
    let dir = match std::env::var_os("LAMBDA_BINARY_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let exe = std::env::current_exe().expect("the test binary's path");
            exe.parent()
                .and_then(|deps| deps.parent())
                .expect("target/debug")
                .to_path_buf()
        }
    };
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: `make test` builds the function binaries first (cargo build --bins -p {name})",
        path.display()
    );
    path
}

/// What the function answered, and its peak resident memory (VmHWM) once it had answered.
#[derive(Debug)]
pub struct Invocation {
    pub outcome: Outcome,
    pub peak_rss_kib: u64,
}

/// Runs `binary` with `env` until it answers `event` (JSON text) through the Runtime API.
/// Panics when it exits or stays silent instead.
pub async fn invoke(binary: PathBuf, env: &[(String, String)], event: &str) -> Invocation {
    invoke_writing_to(binary, env, event, Stdio::null).await
}

/// As [`invoke`], and everything the process wrote (its logs, standard output and error).
pub async fn invoke_logged(
    binary: PathBuf,
    env: &[(String, String)],
    event: &str,
) -> (Invocation, String) {
    let path = std::env::temp_dir().join(format!("e2e-output-{}.log", uuid::Uuid::new_v4()));
    let file = std::fs::File::create(&path).expect("a file for the binary's output");
    let output = move || Stdio::from(file.try_clone().expect("the output file"));
    let invocation = invoke_writing_to(binary, env, event, output).await;
    let written =
        String::from_utf8_lossy(&std::fs::read(&path).expect("the binary's output")).into_owned();
    let _ = std::fs::remove_file(&path);
    (invocation, written)
}

async fn invoke_writing_to(
    binary: PathBuf,
    env: &[(String, String)],
    event: &str,
    output: impl Fn() -> Stdio,
) -> Invocation {
    let state = Arc::new(Mutex::new(State {
        event: Some(event.to_owned()),
        ..State::default()
    }));
    let handler_state = Arc::clone(&state);
    let server = FakeServer::start(Arc::new(move |request: &FakeRequest| {
        runtime_api(&handler_state, request)
    }))
    .await;
    let mut child = spawn(&binary, env, &server.base_url, output(), output());
    state.lock().unwrap().pid = Some(child.id());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answered = {
            let state = state.lock().unwrap();
            state.outcome.clone().zip(state.peak_rss_kib)
        };
        if let Some((outcome, peak_rss_kib)) = answered {
            let _ = child.kill();
            let _ = child.wait();
            return Invocation {
                outcome,
                peak_rss_kib,
            };
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{} exited ({status}) without answering", binary.display());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{} did not answer within 30 s", binary.display());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The process's peak resident set since exec (VmHWM in /proc/PID/status), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

/// Starts `binary` with `env` and no Runtime API behind it; answers its exit status and what it
/// wrote to standard error (for start-up failures).
pub fn start_up_failure(binary: PathBuf, env: &[(String, String)]) -> (bool, String) {
    let child = spawn(
        &binary,
        env,
        "http://127.0.0.1:9",
        Stdio::null(),
        Stdio::piped(),
    );
    let output = child.wait_with_output().expect("the binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn spawn(
    binary: &PathBuf,
    env: &[(String, String)],
    runtime: &str,
    stdout: Stdio,
    stderr: Stdio,
) -> Child {
    let runtime = runtime.trim_start_matches("http://");
    Command::new(binary)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", runtime)
        .env("AWS_LAMBDA_FUNCTION_NAME", "e2e")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/e2e")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "e2e")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("the function binary starts")
}

fn runtime_api(state: &Mutex<State>, request: &FakeRequest) -> FakeResponse {
    let mut state = state.lock().unwrap();
    let path = request.path.as_str();
    if request.method == "GET" && path == "/2018-06-01/runtime/invocation/next" {
        let Some(event) = state.event.take() else {
            // One event per process; the test stops it once it has answered.
            return FakeResponse::text(500, "text/plain", "no more events");
        };
        let deadline = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis()
            + 60_000;
        return FakeResponse::text(200, "application/json", event)
            .with_header("lambda-runtime-aws-request-id", REQUEST_ID)
            .with_header("lambda-runtime-deadline-ms", deadline)
            .with_header(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:e2e",
            )
            .with_header(
                "lambda-runtime-trace-id",
                "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1",
            );
    }
    if request.method == "POST" {
        state.peak_rss_kib = state.pid.map(peak_rss_kib);
    }
    let response = format!("/2018-06-01/runtime/invocation/{REQUEST_ID}/response");
    let error = format!("/2018-06-01/runtime/invocation/{REQUEST_ID}/error");
    if request.method == "POST" && path == response {
        state.outcome = Some(Outcome::Response(request.json()));
    } else if request.method == "POST" && (path == error || path.ends_with("/init/error")) {
        state.outcome = Some(Outcome::Error(
            String::from_utf8_lossy(&request.body).into_owned(),
        ));
    } else {
        return FakeResponse::text(404, "text/plain", "not a Runtime API path");
    }
    FakeResponse::text(202, "application/json", "{\"status\":\"OK\"}")
}

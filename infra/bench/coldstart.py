"""Cold-start benchmark: how long each function takes from exec to its first request for work.

Every binary is started against a fake Lambda Runtime API on 127.0.0.1 (the interface the real
service gives a provided.al2023 function); the time from spawning the process to its first
`GET /2018-06-01/runtime/invocation/next` is its init. The functions get the configuration a
deployed one gets (no AWS call happens during init; SSL_CERT_FILE names the one CA bundle, as
on Lambda's image), and are compared with a hello-world
`lambda_runtime` binary built the same way in the same run, alternating, several rounds.

Usage: python3 infra/bench/coldstart.py BIN_DIR [ROUNDS], BIN_DIR holding the binaries under
their names (`make bench-coldstart` passes the one infra/lambda-build.sh prints: the deployed
build for this machine's architecture).
Prints a table (median init per binary, ratio to the baseline, binary size) and writes it into
its section of BENCHMARKS.md. `record` below, which does that, is shared with sync.py.
"""

import datetime
import http.server
import json
import os
import queue
import statistics
import subprocess
import sys
import threading
import time

BASELINE = "hello-lambda"
FUNCTIONS = ["create-connection", "api", "oauth-callback", "sync-worker", "scheduler", "webhook-sender"]
# DESIGN section 11: a function's init may take at most this many times the baseline's.
TARGET_RATIO = 1.3
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCHMARKS = os.path.join(ROOT, "BENCHMARKS.md")
# What the fake Runtime API tells a function about its invocation (sync.py: the worker's).
FUNCTION_ARN = "arn:aws:lambda:us-east-1:000000000000:function:bench"
DEADLINE_MS = 600_000
HEADER = """# Benchmarks

Results of the `make bench-*` targets. Each benchmark owns one section below and replaces it
whenever it runs; the figures are from the machine and commit named in that section.
"""


class RuntimeApi(http.server.ThreadingHTTPServer):
    """The Lambda Runtime API for one process (also used by sync.py and panic.py): `events`
    ((request id, payload) pairs) are handed out on /next in order; the process's answers arrive
    on `answers` as (request id, "response" or "error", body, time). `polled` is set, and
    `polled_at` taken, when the process first asks for work: its init is over."""

    daemon_threads = True

    def __init__(self, function_arn=FUNCTION_ARN, deadline_ms=DEADLINE_MS):
        super().__init__(("127.0.0.1", 0), Handler)
        self.function_arn, self.deadline_ms = function_arn, deadline_ms
        self.events, self.answers = queue.Queue(), queue.Queue()
        self.handed = {}  # request id -> when its event was handed over
        self.polled = threading.Event()
        self.polled_at = 0.0
        self.closing = threading.Event()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def close(self):
        """Ends the long polls still waiting, stops serving and closes the socket."""
        if not self.closing.is_set():
            self.closing.set()
            self.shutdown()
            self.server_close()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if not self.path.endswith("/runtime/invocation/next"):
            return self.reply(404, b"{}")
        if not self.server.polled.is_set():
            self.server.polled_at = time.perf_counter()
            self.server.polled.set()
        while True:  # the long poll: no answer until there is an event
            try:
                request_id, payload = self.server.events.get(timeout=0.2)
                break
            except queue.Empty:
                if self.server.closing.is_set():
                    return
        self.server.handed[request_id] = time.perf_counter()
        self.reply(200, json.dumps(payload).encode(), {
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + self.server.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": self.server.function_arn,
        })

    def do_POST(self):
        body, parts = self.read_body(), self.path.split("/")
        if "invocation" in parts and parts[-1] in ("response", "error"):
            self.server.answers.put((parts[-2], parts[-1], body, time.perf_counter()))
        elif self.path.endswith("/init/error"):
            self.server.answers.put((None, "init error", body, time.perf_counter()))
        self.reply(202, b'{"status": "OK"}')

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b""
        while size := int(self.rfile.readline().split(b";")[0], 16):
            body += self.rfile.read(size + 2)[:size]  # each chunk ends with CRLF
        self.rfile.readline()
        return body

    def reply(self, status, body, headers=None):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def log_message(self, *args):
        pass


def environment(port):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_EC2_METADATA_DISABLED": "true",
        "STATE_TABLE": "state",
        "ENTITIES_TABLE": "entities",
        "WEBHOOKS_TABLE": "webhooks",
        "SYNC_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/sync",
        "WEBHOOK_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/webhooks",
        "SECRETS_PREFIX": "connectors",
        "RUST_LOG": "warn",
    }
    env.update(ca_bundle())
    return env


def ca_bundle():
    """SSL_CERT_FILE naming the one CA bundle, as on Lambda's image (also used by sync.py)."""
    # The SDK's TLS set-up loads the system's CA certificates at start-up. Lambda's AL2023 image
    # keeps one bundle in its certificate directory; a Debian machine keeps ~300 files there,
    # which alone triple the init. Naming the bundle models Lambda's layout.
    for bundle in ("/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/certs/ca-certificates.crt"):
        if os.path.exists(bundle):
            return {"SSL_CERT_FILE": bundle}
    return {}


def init_seconds(binary):
    server = RuntimeApi()
    try:
        started = time.perf_counter()
        process = subprocess.Popen(
            [binary],
            env=environment(server.server_address[1]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if not server.polled.wait(timeout=10):
            process.kill()
            raise SystemExit(f"{binary} never asked for work: {process.stderr.read()[:500]!r}")
        elapsed = server.polled_at - started
        process.kill()
        process.wait()
        return elapsed
    finally:
        # The process is stopped once it has asked; no event is ever handed out.
        server.close()


def markdown_table(header, rows):
    """Lines of a markdown table, columns padded to their widest cell."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    def numeric(i):  # most cells a number: right-aligned
        filled = [r[i] for r in cells[1:] if r[i]]
        return sum(c[:1].isdigit() for c in filled) * 2 > len(filled)

    numeric = [numeric(i) for i in range(len(header))]

    def line(row):
        padded = (c.rjust(w) if n else c.ljust(w) for c, w, n in zip(row, widths, numeric))
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * (w - 1) + (":" if n else "-") for w, n in zip(widths, numeric)]
    return [line(cells[0]), line(rule)] + [line(row) for row in cells[1:]]


def machine():
    """`uname -srm`, CPU model, CPUs usable, RAM."""
    u = os.uname()
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for entry in f:
            if entry.startswith("model name"):
                cpu = " ".join(entry.split(":", 1)[1].split())
                break
    with open("/proc/meminfo") as f:
        kib = next(int(e.split()[1]) for e in f if e.startswith("MemTotal:"))
    cpus = len(os.sched_getaffinity(0))
    return f"{u.sysname} {u.release} {u.machine}, {cpu}, {cpus} CPUs, {kib / 2**20:.1f} GiB RAM"


def commit():
    """The short HEAD commit, "-dirty" when the tree has changes (untracked files included)."""
    git = ["git", "-C", ROOT]

    def run(*args):
        return subprocess.run(git + list(args), capture_output=True, text=True).stdout.strip()

    head = run("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("-dirty" if run("status", "--porcelain") else "")


def build_of(directory, names):
    """How the binaries `names` in `directory` were built: the note infra/lambda-build.sh leaves
    beside each, or, for one it did not build, a plain release build."""
    notes = []
    for name in names:
        try:
            with open(os.path.join(directory, f".{name}.build")) as f:
                note = f.read().strip()
        except FileNotFoundError:
            note = "`cargo build --release` (without cargo-lambda's flags: not the deployed build)"
        if note not in notes:
            notes.append(note)
    return "; ".join(notes)


def record(section, command, table, notes, build=None):
    """Replaces the section `## {section}` of BENCHMARKS.md (created with HEADER if missing) with
    the date, machine, commit, command, the build measured when given (`build_of`), `table`
    (lines) and `notes` (lines); the other sections are kept."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = [
        f"## {section}",
        "",
        f"- Date: {now}",
        f"- Machine: {machine()}",
        f"- Commit: {commit()}",
        f"- Command: `{command}`",
        *([f"- Build: {build}"] if build else []),
        "",
        *table,
        "",
        *notes,
        "",
    ]
    try:
        with open(BENCHMARKS) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        lines = HEADER.splitlines() + [""]
    heading = f"## {section}"
    if heading in lines:
        start = lines.index(heading)
        following = (i for i in range(start + 1, len(lines)) if lines[i].startswith("## "))
        end = next(following, len(lines))
        lines[start:end] = body
    else:
        lines += ([""] if lines and lines[-1] else []) + body
    while lines and not lines[-1]:
        lines.pop()
    with open(BENCHMARKS, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"recorded in {BENCHMARKS} ({heading})")


def main():
    binaries = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 60
    names = [BASELINE] + FUNCTIONS
    samples = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:
            samples[name].append(init_seconds(os.path.join(binaries, name)))
    base = statistics.median(samples[BASELINE])
    rows = []
    for name in names:
        median = statistics.median(samples[name])
        ratio = median / base
        verdict = "" if name == BASELINE else (" PASS" if ratio <= TARGET_RATIO else " FAIL")
        size = os.path.getsize(os.path.join(binaries, name))
        rows.append([name, f"{median * 1000:.2f}", f"{ratio:.2f}x{verdict}", f"{size / 1e6:.2f}"])
    header = ["binary", "init ms (median)", f"vs baseline (target <= {TARGET_RATIO}x)", "binary MB"]
    table = markdown_table(header, rows)
    notes = [
        "Init = exec to the first `GET /runtime/invocation/next` against a fake Runtime API on",
        f"127.0.0.1; median of {rounds} rounds alternating with {BASELINE}, a hello-world",
        "`lambda_runtime` binary from the same build. Functions get a deployed function's",
        "environment (SSL_CERT_FILE naming one CA bundle, as on Lambda's image); no AWS call.",
    ]
    print("\n".join(table))
    record("Cold start (make bench-coldstart)", "make bench-coldstart", table, notes,
           build_of(binaries, names))


if __name__ == "__main__":
    main()

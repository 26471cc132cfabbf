"""Cold-start benchmark: how long each function takes from exec to its first request for work.

Every binary is started against a fake Lambda Runtime API on 127.0.0.1 (the interface the real
service gives a provided.al2023 function); the time from spawning the process to its first
`GET /2018-06-01/runtime/invocation/next` is its init. The functions get the configuration a
deployed one gets (no AWS call happens during init; SSL_CERT_FILE names the one CA bundle, as
on Lambda's image), and are compared with a hello-world
`lambda_runtime` binary built the same way in the same run, alternating, several rounds.

Usage: python3 infra/bench/coldstart.py RELEASE_DIR [ROUNDS]
Prints one line per binary and the ratios to the baseline.
"""

import http.server
import os
import statistics
import subprocess
import sys
import threading
import time

BASELINE = "hello-lambda"
FUNCTIONS = ["create-connection", "api"]


class RuntimeApi(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.asked = threading.Event()
        self.asked_at = 0.0


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.endswith("/runtime/invocation/next") and not self.server.asked.is_set():
            self.server.asked_at = time.perf_counter()
            self.server.asked.set()
        # The process is stopped once it has asked; no event is ever handed out.
        time.sleep(5)

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
        "SYNC_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/sync",
        "SECRETS_PREFIX": "connectors",
        "RUST_LOG": "warn",
    }
    # The SDK's TLS set-up loads the system's CA certificates at start-up. Lambda's AL2023 image
    # keeps one bundle in its certificate directory; a Debian machine keeps ~300 files there,
    # which alone triple the init. Naming the bundle models Lambda's layout.
    for bundle in ("/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/certs/ca-certificates.crt"):
        if os.path.exists(bundle):
            env["SSL_CERT_FILE"] = bundle
            break
    return env


def init_seconds(binary):
    server = RuntimeApi()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        started = time.perf_counter()
        process = subprocess.Popen(
            [binary],
            env=environment(server.server_address[1]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if not server.asked.wait(timeout=10):
            process.kill()
            raise SystemExit(f"{binary} never asked for work: {process.stderr.read()[:500]!r}")
        elapsed = server.asked_at - started
        process.kill()
        process.wait()
        return elapsed
    finally:
        server.shutdown()
        server.server_close()


def main():
    release = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    names = [BASELINE] + FUNCTIONS
    samples = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:
            samples[name].append(init_seconds(os.path.join(release, name)))
    base = statistics.median(samples[BASELINE])
    print(f"cold start (exec -> first /next), median of {rounds} rounds")
    for name in names:
        median = statistics.median(samples[name])
        size = os.path.getsize(os.path.join(release, name))
        print(
            f"  {name:18} {median * 1000:7.2f} ms   {median / base:5.2f}x baseline"
            f"   binary {size / 1e6:5.2f} MB"
        )


if __name__ == "__main__":
    main()

"""The panic check of `make package`: in a binary built as the functions are deployed, a handler
panic becomes the invocation's error answer, and the same process serves the next event.

`panic-probe` (infra/panic-probe) is the smallest `lambda_runtime` function whose handler panics
on `{"panic": true}`; infra/lambda-build.sh builds it as `make package` builds the functions
(cargo-lambda, the workspace's release profile), for this machine's architecture. This script
starts it against the benchmarks' fake Runtime API (coldstart.RuntimeApi), hands it a panicking
event and then a normal one, and checks that the first is answered on
`/runtime/invocation/{id}/error` and the second on `/runtime/invocation/{id}/response`, by the
same process. Built with `panic = "abort"` (cargo-lambda's default when the manifest leaves it
unset) the process dies of SIGABRT with the first event unanswered, and the check fails.

Usage: python3 infra/bench/panic_check.py BIN_DIR (the directory infra/lambda-build.sh prints)
"""

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import time
import uuid

from coldstart import RuntimeApi, build_of

PROBE = "panic-probe"
ANSWER_TIMEOUT_SECONDS = 10


class Failed(Exception):
    pass


def how_it_ended(returncode):
    if returncode < 0:
        return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with status {returncode}"


def invoke(api, process, payload):
    """Hands `payload` over; returns ("response" or "error", body) once the process answered."""
    request_id = str(uuid.uuid4())
    api.events.put((request_id, payload))
    give_up = time.monotonic() + ANSWER_TIMEOUT_SECONDS
    while time.monotonic() < give_up:
        try:
            answered_id, kind, body, _ = api.answers.get(timeout=0.1)
        except queue.Empty:
            if process.poll() is not None:
                raise Failed(f"the process {how_it_ended(process.returncode)} with "
                             f"{json.dumps(payload)} unanswered")
            continue
        if answered_id != request_id:
            raise Failed(f"answered {kind} for {answered_id}, not for {request_id}")
        return kind, body.decode(errors="replace")
    raise Failed(f"no answer to {json.dumps(payload)} within {ANSWER_TIMEOUT_SECONDS} s")


def check(api, process):
    if not api.polled.wait(timeout=ANSWER_TIMEOUT_SECONDS):
        raise Failed("the process never asked for work")
    kind, body = invoke(api, process, {"panic": True})
    if kind != "error" or "Lambda panicked" not in body:
        raise Failed(f'{{"panic": true}} was answered on /{kind}, not as a panic on /error: {body}')
    print(f'panic check: {{"panic": true}} -> /runtime/invocation/<id>/error {body}')
    normal = {"panic": False, "after": "a panic"}
    kind, body = invoke(api, process, normal)
    if kind != "response" or json.loads(body) != normal:
        raise Failed(f"the event after the panic was answered on /{kind}: {body}")
    if process.poll() is not None:
        raise Failed(f"the process {how_it_ended(process.returncode)} after answering")
    print(f"panic check: {json.dumps(normal)} -> /runtime/invocation/<id>/response {body}, "
          f"from the same process (pid {process.pid})")


def main():
    directory = sys.argv[1]
    print(f"panic check: {PROBE}, built by {build_of(directory, [PROBE])}")
    api = RuntimeApi(function_arn=f"arn:aws:lambda:us-east-1:000000000000:function:{PROBE}",
                     deadline_ms=ANSWER_TIMEOUT_SECONDS * 1000)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": PROBE,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_REGION": "us-east-1",
    }
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen([os.path.join(directory, PROBE)], env=env,
                                   stdout=output, stderr=subprocess.STDOUT)
        try:
            check(api, process)
        except Failed as failure:
            process.kill()
            process.wait()
            output.seek(0)
            tail = output.read().decode(errors="replace")[-2000:]
            raise SystemExit(f"panic check: FAIL: {failure}\n{PROBE}'s output:\n{tail}")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            api.close()
    print("panic check: PASS (a handler panic is an error answer; the process lives on)")


if __name__ == "__main__":
    main()

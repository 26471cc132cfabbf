"""Soak benchmark: the dev stack under a bounded mixed load with AWS faults injected.

The dev gateway (every route, the worker polling the queue, the scheduler ticking every 5 s)
runs on 127.0.0.1 against the emulator, on tables, queue and secret prefix of its own, with
FAULT_RATE of the platform's AWS requests failed at random (throttled, a 500 after it was
applied, a timeout after it was applied, a failed condition). Several organizations, each with
its own key (admin CLI), get a mix of creates, reads, lists, runs, patches and deletes from
CONCURRENCY client threads for DURATION seconds. Clients do what the API tells them: a create
that answered 5xx is sent again with its Idempotency-Key.

Then the load stops, the faults stop with it, and the stack settles (up to SETTLE seconds: lost
messages and runs whose lease ran out are re-sent by the sweep after 5 minutes), and the
invariants are checked through the API and Secrets
Manager: no job left active, no connection without its secret, every completed connection
with exactly its source's entities and none twice. Secrets whose create failed ambiguously are
left to the hourly orphan sweep; they are counted, not failed.

Usage (make bench-soak): python infra/bench/soak.py DEBUG_DIR
Environment: SOAK_SECONDS (180), SOAK_CONCURRENCY (8), SOAK_ORGS (4), SOAK_FAULT_RATE (0.01),
SOAK_SETTLE_SECONDS (900). Writes its table into BENCHMARKS.md.
"""

import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

import boto3

from coldstart import markdown_table, record

SECONDS = int(os.environ.get("SOAK_SECONDS", "180"))
CONCURRENCY = int(os.environ.get("SOAK_CONCURRENCY", "8"))
ORGS = int(os.environ.get("SOAK_ORGS", "4"))
FAULT_RATE = float(os.environ.get("SOAK_FAULT_RATE", "0.01"))
SETTLE = int(os.environ.get("SOAK_SETTLE_SECONDS", "900"))
ENTITIES = 25


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    def __init__(self, debug_dir):
        suffix = uuid.uuid4().hex[:10]
        self.port = free_port()
        self.prefix = f"soak-{suffix}"
        self.env = dict(
            os.environ,
            PORT=str(self.port),
            STATE_TABLE=f"soak-state-{suffix}",
            ENTITIES_TABLE=f"soak-entities-{suffix}",
            WEBHOOKS_TABLE=f"soak-webhooks-{suffix}",
            SYNC_QUEUE_NAME=f"soak-sync-{suffix}",
            SECRETS_PREFIX=self.prefix,
            SCHEDULER_TICK_SECONDS="5",
            DEV_DIR=os.path.join(".dev", f"soak-{suffix}"),
            FAULT_RATE=str(FAULT_RATE),
            # Faults during the load only: the settling afterwards shows what they left.
            FAULT_SECONDS=str(SECONDS + 30),
            RUST_LOG="warn",
        )
        self.debug_dir = debug_dir
        self.log = open(os.path.join(".dev", f"soak-{suffix}.log"), "w")
        self.gateway = subprocess.Popen(
            [os.path.join(debug_dir, "dev-gateway")], env=self.env, stdout=self.log,
            stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}"
        for _ in range(300):
            try:
                urllib.request.urlopen(self.base + "/health", timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("the dev gateway did not come up; see " + self.log.name)

    def admin(self, *args):
        out = subprocess.run([os.path.join(self.debug_dir, "admin"), *args], env=self.env,
                             check=True, capture_output=True, text=True)
        return out.stdout.strip().splitlines()[-1]

    def stop(self):
        self.gateway.terminate()
        self.gateway.wait(timeout=10)
        self.log.close()


def call(base, key, method, path, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("x-api-key", key)
    if data is not None:
        request.add_header("content-type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    elapsed = time.perf_counter() - started
    try:
        answer = json.loads(text) if text else None
    except ValueError:
        answer = None
    return status, answer, elapsed


class Load:
    def __init__(self, stack, tenants):
        self.stack, self.tenants = stack, tenants
        self.lock = threading.Lock()
        self.samples = {}  # op -> [(status, seconds)]
        self.retried_creates = 0

    def note(self, op, status, elapsed):
        with self.lock:
            self.samples.setdefault(op, []).append((status, elapsed))

    def client(self, seed, until):
        rng = random.Random(seed)
        while time.time() < until:
            key, ids = rng.choice(self.tenants)
            op = rng.choices(["create", "get", "list", "run", "patch", "delete", "entities"],
                             weights=[3, 6, 3, 2, 2, 1, 2])[0]
            base = self.stack.base
            if op == "create" or not ids:
                body = {"name": f"soak {rng.randrange(10**6)}", "short_name": "stub",
                        "readable_collection_id": "soak",
                        "authentication": {"credentials": {"api_key": f"sk-soak-{uuid.uuid4().hex}"}},
                        "config": {"entity_count": ENTITIES, "seed": rng.randrange(100)}}
                idem = {"idempotency-key": uuid.uuid4().hex}
                for attempt in range(5):
                    status, answer, elapsed = call(base, key, "POST", "/source-connections", body, idem)
                    self.note("create", status, elapsed)
                    if status < 500 and status != 409:
                        break
                    with self.lock:
                        self.retried_creates += 1
                    time.sleep(0.2 * (attempt + 1))
                if status == 201:
                    with self.lock:
                        ids.append(answer["id"])
                continue
            with self.lock:
                cid = rng.choice(ids) if ids else None
            if cid is None:
                continue
            path = f"/source-connections/{cid}"
            if op == "get":
                status, _, elapsed = call(base, key, "GET", path)
            elif op == "list":
                status, _, elapsed = call(base, key, "GET", "/source-connections")
            elif op == "entities":
                status, _, elapsed = call(base, key, "GET", path + "/entities?limit=100")
            elif op == "run":
                status, _, elapsed = call(base, key, "POST", path + "/run", {})
            elif op == "patch":
                status, _, elapsed = call(base, key, "PATCH", path,
                                          {"description": f"soaked {rng.randrange(10**6)}"})
            else:
                status, _, elapsed = call(base, key, "DELETE", path)
                if status in (200, 404):
                    with self.lock:
                        if cid in ids:
                            ids.remove(cid)
            self.note(op, status, elapsed)


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def read(base, key, path):
    """A GET answered 200, sent again after a 5xx (the faults are still injected)."""
    for _ in range(20):
        status, answer, _ = call(base, key, "GET", path)
        if status == 200:
            return answer
        if status < 500:
            raise SystemExit(f"GET {path}: {status} {answer}")
        time.sleep(0.2)
    raise SystemExit(f"GET {path} kept failing")


def check(stack, tenants, secrets):
    """Answers (violations, still active jobs, orphan secrets awaiting the sweep)."""
    violations, active, live = [], [], set()
    for key, _ in tenants:
        listed = read(stack.base, key, "/source-connections?limit=1000")
        for c in listed:
            live.add(c["id"])
            jobs = read(stack.base, key, f"/source-connections/{c['id']}/jobs")
            active += [f"{c['id']} job {j['id']} {j['status']} since {j.get('started_at') or 'queued'}"
                       for j in jobs if j["status"] in ("pending", "running", "cancelling")]
            last = jobs[0] if jobs else None
            if last and last["status"] == "completed" and c["status"] == "active":
                ents = read(stack.base, key,
                            f"/source-connections/{c['id']}/entities?limit=1000")
                keys = [(e["type"], e["entity_id"]) for e in ents]
                if len(keys) != len(set(keys)):
                    violations.append(f"{c['id']}: an entity listed twice")
                if len(set(keys)) != ENTITIES:
                    violations.append(f"{c['id']}: {len(set(keys))} entities, not {ENTITIES}")
    owners = {name.rsplit("/", 1)[-1] for name in secrets}
    for cid in live - owners:
        violations.append(f"{cid}: no secret")
    return violations, active, len(owners - live)


def secret_names(prefix):
    client = boto3.client("secretsmanager")
    names, token = [], None
    while True:
        args = {"Filters": [{"Key": "name", "Values": [f"{prefix}/connections/"]}], "MaxResults": 100}
        if token:
            args["NextToken"] = token
        page = client.list_secrets(**args)
        names += [s["Name"] for s in page["SecretList"]]
        token = page.get("NextToken")
        if not token:
            return names


def main():
    stack = Stack(sys.argv[1])
    try:
        tenants = []
        for n in range(ORGS):
            org = stack.admin("create-org", f"Soak {n}", "http://localhost")
            key = stack.admin("create-api-key", org)
            status, answer, _ = call(stack.base, key, "POST", "/collections",
                                     {"name": "Soak", "readable_id": "soak"})
            assert status == 201, answer
            tenants.append((key, []))
        load = Load(stack, tenants)
        until = time.time() + SECONDS
        threads = [threading.Thread(target=load.client, args=(seed, until))
                   for seed in range(CONCURRENCY)]
        started = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.time() - started

        settled_in = None
        deadline = time.time() + SETTLE
        while True:
            violations, active, orphans = check(stack, tenants, secret_names(stack.prefix))
            if not active or time.time() > deadline:
                break
            time.sleep(10)
        settled_in = time.time() - (started + wall)
        violations += [f"still active {SETTLE} s after the load: {a}" for a in active]
    finally:
        stack.stop()

    rows, everything = [], []
    for op in ["create", "get", "list", "entities", "run", "patch", "delete"]:
        samples = load.samples.get(op, [])
        if not samples:
            continue
        times = [s for _, s in samples]
        everything += samples
        rows.append([op, str(len(samples)), str(sum(st >= 500 for st, _ in samples)),
                     f"{statistics.median(times) * 1000:.1f}", f"{percentile(times, 99) * 1000:.1f}"])
    times = [s for _, s in everything]
    served = len(everything)
    errors = sum(st >= 500 for st, _ in everything)
    rows.append(["all", str(served), str(errors), f"{statistics.median(times) * 1000:.1f}",
                 f"{percentile(times, 99) * 1000:.1f}"])
    table = markdown_table(["operation", "requests", "5xx", "p50 ms", "p99 ms"], rows)
    live = sum(len(ids) for _, ids in tenants)
    summary = [
        f"- Load: {CONCURRENCY} clients, {ORGS} organizations, {SECONDS} s "
        f"({served / wall:.0f} requests/s), {FAULT_RATE:.1%} of the platform's AWS requests failed",
        f"- 5xx: {errors} of {served} ({errors / served:.2%}); creates sent again after a 5xx "
        f"or 409: {load.retried_creates}",
        f"- Settled {settled_in:.0f} s after the load: {live} connections left, "
        f"{orphans} orphan secret(s) from ambiguous failures awaiting the hourly sweep",
        f"- Invariant violations: {len(violations)}",
    ]
    print("\n".join(table + [""] + summary + violations))
    record(
        "Soak (make bench-soak)",
        "make bench-soak",
        table + [""] + summary,
        [
            "The dev gateway (debug build: every route, the worker and the scheduler in one",
            "process) on loopback against the emulator; latencies include the emulator's own",
            "(one Python process, DynamoDB serialised). A 5xx is the truthful answer to an",
            "injected fault the request could not get past; the invariants are checked after",
            "the load: no job left active, every connection with its secret, every completed",
            f"connection with exactly its {ENTITIES} entities, none twice.",
        ],
    )
    if violations:
        sys.exit("invariant violations:\n" + "\n".join(violations))


if __name__ == "__main__":
    main()

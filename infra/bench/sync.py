"""Sync benchmark: the sync-worker binary syncing one stub connection of 100,000 entities.

The `sync-worker` built as it is deployed (infra/lambda-build.sh, for this machine's
architecture) runs as its own process, as on Lambda: a fake Runtime API on 127.0.0.1
(coldstart.RuntimeApi) hands it the SQS events this script relays from the sync queue on the
emulator (one message per invocation, as BatchSize 1; the deadline 600 s ahead, the function's
timeout), and deletes every message the worker did not list as a batch item failure (Lambda's
SQS integration). `sync-fixture` (bench crate, built the same way) creates the tables, queue,
organization and stub connection, queues the jobs and reads them back. Each scenario gets a
fresh worker, so its peak RSS (VmHWM, read just before it is stopped) is its own. Its time runs
from the first event handed over to the answer of the invocation that ended the job; the
worker's JSON log gives its AWS requests by operation and the entity items written.

Scenarios, on one connection: 1 first sync; 2 unchanged re-sync; 3 re-sync with config revision
1 (10% changed); 4 forced full sync after entity_count is lowered by 1,000.

The change feed, on a connection of its own with FEED_ENTITIES (20,000, fewer when ENTITIES is)
in fresh tables: `sync-fixture feed-follow` polls its feed (through the API's use case) from
before its first sync through a revision (10% changed) and a full sync with a tenth fewer, then
compares the copy it built from the changes alone with the table (every change once: none seen
twice, none missing); then `feed-read` reads the whole feed from the start (changes per second,
requests), and `write-cost` measures the write units a changed entity costs with the feed's
index and without (from the stored items' sizes). Its own tables, because moto's Query reads the
whole table for every page: a consumer polling the 100,000-entity table would measure moto. The ceiling is
`sync-fixture ceiling`: the same items written one 25-item BatchWriteItem after another, the
emulator's raw write rate. Ceiling and first sync run 3 times, alternating, each first sync on a
fresh connection, and their medians are compared; scenarios 2-4 run once, on the last one.

Usage: python infra/bench/sync.py BIN_DIR [ENTITIES], BIN_DIR holding sync-worker and
sync-fixture. Run it with `make bench-sync`, which builds them, starts the emulator and exports
its AWS settings (boto3 comes from the emulator's venv). Prints a table and writes it into the
Sync section of BENCHMARKS.md.
"""

import json
import math
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, deque

import boto3

from coldstart import RuntimeApi, build_of, ca_bundle, markdown_table, record

REPETITIONS = 3
FEED_ENTITIES = 20_000
DEADLINE_MS = 600_000  # the worker function's Timeout in template.yaml
SCENARIO_TIMEOUT_SECONDS = 3600
FUNCTION_ARN = "arn:aws:lambda:us-east-1:000000000000:function:sync-worker"
QUEUE_ARN = "arn:aws:sqs:us-east-1:000000000000:q"
# Targets. BatchWriteItem requests may exceed their minimum by WRITE_SLACK: the last, partial
# batch of a page and the job's own state-table writes. The minimum is ceil(written / 25) plus,
# for deletions, twice ceil(deleted / 25): their deletion records (for the change feed), then
# the deletes.
WRITE_SLACK = 10
RSS_LIMIT_MIB = 64
CEILING_RATIO = 0.7
# What a deployed worker gets besides the stack's configuration; nothing else is inherited.
PASSED_ENV = ["PATH", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID",
              "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED"]
LAMBDA_ENV = {"AWS_LAMBDA_FUNCTION_NAME": "sync-worker", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
              "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "LOG_FORMAT": "json"}
# Log lines that close the handling of one message (their aws_requests are summed).
PER_MESSAGE = ("sync message handled", "sync message failed", "not a sync message")


class Worker:
    """One sync-worker process behind its own Runtime API; its JSON log is read as it comes.
    It is reaped only with os.wait4, never through Popen, so its rusage (CPU time) is kept."""

    def __init__(self, release, app_env):
        self.api = RuntimeApi(function_arn=FUNCTION_ARN, deadline_ms=DEADLINE_MS)
        env = {name: os.environ[name] for name in PASSED_ENV if name in os.environ}
        env.update(LAMBDA_ENV, **ca_bundle(), **app_env)
        env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{self.api.server_address[1]}"
        self.process = subprocess.Popen([os.path.join(release, "sync-worker")], env=env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.rusage, self.tail, self.requests = None, deque(maxlen=30), Counter()
        self.messages, self.finished, self.logged = 0, None, threading.Condition()
        self.reader = threading.Thread(target=self.read_log, daemon=True)
        self.reader.start()
        if not self.api.polled.wait(timeout=30):
            self.fail("never asked for work")

    def read_log(self):
        for line in self.process.stdout:
            self.tail.append(line.rstrip())
            try:
                entry = json.loads(line)
                message = entry.get("message", "")
            except (ValueError, AttributeError):
                continue
            with self.logged:
                if message.startswith(PER_MESSAGE):
                    self.requests.update(json.loads(entry.get("aws_requests") or "{}"))
                    self.messages += 1
                elif message == "sync job finished":
                    self.finished = entry
                self.logged.notify_all()

    def invoke(self, record):
        """Hands `record` over as one SQS event; returns (answer, handed at, answered at) once
        the message's last log line has been read."""
        request_id = str(uuid.uuid4())
        self.api.events.put((request_id, {"Records": [record]}))
        while True:
            try:
                answered_id, kind, body, answered = self.api.answers.get(timeout=1)
                break
            except queue.Empty:
                if self.exited():
                    self.fail("exited during an invocation")
        if kind != "response" or answered_id != request_id:
            self.fail(f"answered {kind} for {answered_id}: {body[:1000]!r}")
        with self.logged:
            self.logged.wait_for(lambda: self.messages >= len(self.api.handed), timeout=10)
        return json.loads(body), self.api.handed[request_id], answered

    def exited(self):
        if self.rusage is None:
            pid, status, rusage = os.wait4(self.process.pid, os.WNOHANG)
            if pid:
                self.rusage, self.process.returncode = rusage, os.waitstatus_to_exitcode(status)
        return self.rusage is not None

    def peak_rss_mib(self):
        """VmHWM, the peak RSS since exec. Not wait4's ru_maxrss: Linux carries the forking
        parent's RSS over exec into it, so it would report this script's size (~50 MiB)."""
        try:
            with open(f"/proc/{self.process.pid}/status") as f:
                return next(int(e.split()[1]) for e in f if e.startswith("VmHWM:")) / 1024
        except (OSError, StopIteration):  # gone already
            return math.nan

    def stop(self):
        """SIGTERM, SIGKILL after 5 s; returns the process's rusage."""
        if not self.exited():
            os.kill(self.process.pid, signal.SIGTERM)  # not Popen.send_signal: it would reap
            give_up = time.monotonic() + 5
            while not self.exited():
                if time.monotonic() > give_up:
                    os.kill(self.process.pid, signal.SIGKILL)
                    _, _, self.rusage = os.wait4(self.process.pid, 0)
                    break
                time.sleep(0.02)
        if not self.api.closing.is_set():
            self.api.close()
            self.reader.join(timeout=5)
        return self.rusage

    def fail(self, why):
        self.stop()
        raise SystemExit("sync-worker " + why + "; its last output:\n" + "\n".join(self.tail))


def sqs_record(message):
    return {"messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"], "attributes": {}, "messageAttributes": {},
            "md5OfBody": message.get("MD5OfBody", ""), "eventSource": "aws:sqs",
            "eventSourceARN": QUEUE_ARN, "awsRegion": "us-east-1"}


class Bench:
    def __init__(self, release, entities):
        self.release, self.entities = release, entities
        self.sqs, self.dynamodb = boto3.client("sqs"), boto3.client("dynamodb")

    def fixture(self, *args, env=None):
        done = subprocess.run([os.path.join(self.release, "sync-fixture"), *args],
                              env=dict(os.environ, **(env or {})), capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"sync-fixture {' '.join(args)} failed: {done.stderr[-2000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def follower(self, connection, stop_file):
        """`feed-follow` on `connection`, running until `stop_file` exists."""
        args = [os.path.join(self.release, "sync-fixture"), "feed-follow",
                "--org", connection["org"], "--connection", connection["connection"],
                "--stop-file", stop_file]
        return subprocess.Popen(args, env=dict(os.environ, **connection["env"]),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def tables(self):
        pages = self.dynamodb.get_paginator("list_tables").paginate()
        return {name for page in pages for name in page["TableNames"]}

    def ceiling(self):
        before = self.tables()
        result = self.fixture("ceiling", "--entity-count", str(self.entities))
        for table in self.tables() - before:  # this run's bench-ceiling-<uuid>: no longer needed
            if table.startswith("bench-ceiling-"):
                self.dynamodb.delete_table(TableName=table)
        return dict(result, rate=result["items"] / result["seconds"])

    def drop(self, connection):
        self.dynamodb.delete_table(TableName=connection["env"]["STATE_TABLE"])
        self.dynamodb.delete_table(TableName=connection["env"]["ENTITIES_TABLE"])
        self.sqs.delete_queue(QueueUrl=connection["env"]["SYNC_QUEUE_URL"])

    def scenario(self, connection, *job_args, count_deleted=False):
        """One job on `connection` (what `setup` printed), run to its end by a fresh worker."""
        env, url = connection["env"], connection["env"]["SYNC_QUEUE_URL"]
        ids = ["--org", connection["org"], "--connection", connection["connection"]]
        worker = Worker(self.release, env)
        invocations = redelivered = 0
        started = answered = None
        try:
            job = self.fixture("job", *ids, *job_args, env=env)["job"]
            give_up = time.monotonic() + SCENARIO_TIMEOUT_SECONDS
            while worker.finished is None:
                if time.monotonic() > give_up or worker.exited():
                    worker.fail("did not finish the job")
                got = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1,
                                               WaitTimeSeconds=2, VisibilityTimeout=900)
                for message in got.get("Messages", []):
                    answer, handed, answered = worker.invoke(sqs_record(message))
                    invocations += 1
                    started = handed if started is None else started
                    failures = {f["itemIdentifier"] for f in answer.get("batchItemFailures") or []}
                    if message["MessageId"] in failures:  # delivered again 5 s from now
                        redelivered += 1
                        self.sqs.change_message_visibility(
                            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"],
                            VisibilityTimeout=5)
                    else:
                        self.sqs.delete_message(QueueUrl=url,
                                                ReceiptHandle=message["ReceiptHandle"])
        finally:
            rss = worker.peak_rss_mib()
            usage = worker.stop()
        status = self.fixture("job-status", *ids, "--job", job, env=env)
        if status["status"] != "completed":
            raise SystemExit(f"job {job} ended {status['status']}: {json.dumps(status)}")
        counts = {k: status[f"entities_{k}"]
                  for k in ("inserted", "updated", "kept", "deleted", "failed")}
        processed = counts["inserted"] + counts["updated"] + counts["kept"]
        processed += counts["deleted"] if count_deleted else 0
        requests = dict(worker.requests)
        written = requests.pop("entities.items_written", 0)
        dynamodb = {k.split(".", 1)[1]: n for k, n in requests.items() if k.startswith("DynamoDB_")}
        other = {k: n for k, n in requests.items() if not k.startswith("DynamoDB_")}
        seconds = answered - started
        return dict(counts, seconds=seconds, rate=processed / seconds, written=written,
                    rss=rss, cpu=usage.ru_utime + usage.ru_stime,
                    dynamodb=dynamodb, other=other, invocations=f"{invocations} ({redelivered})",
                    changed=counts["inserted"] + counts["updated"] + counts["deleted"])


def median_run(runs):
    return sorted(runs, key=lambda r: r["seconds"])[(len(runs) - 1) // 2]


def write_minimum(run):
    return (math.ceil((run["inserted"] + run["updated"]) / 25)
            + 2 * math.ceil(run["deleted"] / 25))


def writes_minimal(run):
    return run["dynamodb"].get("BatchWriteItem", 0) <= write_minimum(run) + WRITE_SLACK


def seconds(runs):
    return ", ".join(f"{r['seconds']:.1f}" for r in runs)


def verdict(ok):
    return "PASS" if ok else "FAIL"


def report(ceilings, firsts, scenarios):
    """The figures table and the targets table, as lines."""
    ceiling, runs = median_run(ceilings), list(scenarios.values())
    rows = [["seconds", f"{ceiling['seconds']:.2f}"] + [f"{r['seconds']:.2f}" for r in runs],
            ["entities/s", f"{ceiling['rate']:,.0f}"] + [f"{r['rate']:,.0f}" for r in runs],
            ["x ceiling", "1.00"] + [f"{r['rate'] / ceiling['rate']:.2f}" for r in runs]]
    for key in ("inserted", "updated", "kept", "deleted", "failed"):
        rows.append([key, ""] + [f"{r[key]:,}" for r in runs])
    rows.append(["invocations (redelivered)", ""] + [r["invocations"] for r in runs])
    for op in sorted({op for r in runs for op in r["dynamodb"]}):
        mine = f"{ceiling['requests']:,}" if op == "BatchWriteItem" else ""
        rows.append([f"DynamoDB {op}", mine] + [f"{r['dynamodb'].get(op, 0):,}" for r in runs])
    rows.append(["BatchWriteItem minimum (deletes count twice)", ""]
                + [f"{write_minimum(r):,}" for r in runs])
    rows.append(["other AWS requests", ""]
                + [", ".join(f"{k} {v}" for k, v in sorted(r["other"].items())) for r in runs])
    rows.append(["entity items written", f"{ceiling['items']:,}"]
                + [f"{r['written']:,}" for r in runs])
    rows.append(["peak RSS MiB", ""] + [f"{r['rss']:.1f}" for r in runs])
    rows.append(["worker CPU seconds", ""] + [f"{r['cpu']:.2f}" for r in runs])

    first, unchanged, changed = runs[0], runs[1], runs[2]
    per_1000 = changed["dynamodb"].get("BatchWriteItem", 0) * 1000 / max(changed["changed"], 1)
    peak = max(r["rss"] for r in firsts + runs[1:])
    ratio = first["rate"] / ceiling["rate"]
    targets = [
        ["unchanged re-sync writes 0 entity items", f"{unchanged['written']:,}",
         verdict(unchanged["written"] == 0)],
        [f"BatchWriteItem <= minimum + {WRITE_SLACK}, scenarios 1-4",
         " / ".join(f"{r['dynamodb'].get('BatchWriteItem', 0):,}" for r in runs),
         verdict(all(writes_minimal(r) for r in runs))],
        ["BatchWriteItem per 1,000 changed, scenario 3 (target 40)", f"{per_1000:.1f}",
         verdict(writes_minimal(changed))],
        [f"peak RSS < {RSS_LIMIT_MIB} MiB, every worker process", f"{peak:.1f} MiB",
         verdict(peak < RSS_LIMIT_MIB)],
        [f"first sync >= {CEILING_RATIO} x ceiling, medians", f"{ratio:.2f}",
         verdict(ratio >= CEILING_RATIO)],
    ]
    return (markdown_table(["", "ceiling (median)"] + list(scenarios), rows) + [""]
            + markdown_table(["target", "measured", "result"], targets))


def feed_report(follow, read, cost):
    """The change feed's figures and targets, as lines."""
    dynamodb = {k.split(".", 1)[1]: v for k, v in read["requests"].items()
                if k.startswith("DynamoDB_")}
    rows = [
        ["changes the follower read (while syncing)",
         f"{follow['changes']:,} ({follow['changes_while_syncing']:,})"],
        ["follower reads", f"{follow['polls']:,}"],
        ["full read from the start: changes", f"{read['changes']:,}"],
        ["full read: changes/s", f"{read['rate']:,.0f}"],
        ["full read: pages (answer MB)", f"{read['pages']} ({read['answer_bytes'] / 1e6:.1f})"],
    ] + [[f"full read: DynamoDB {op}", f"{n:,}"] for op, n in sorted(dynamodb.items())]
    rows += [
        ["stored item bytes without / with the feed's attributes",
         f"{cost['item_bytes_without_feed']:.0f} / {cost['item_bytes_with_feed']:.0f}"],
        ["index entry bytes (with DynamoDB's 100)", f"{cost['index_entry_bytes']:.0f}"],
    ] + [[f"write units per {op} entity, without / with the feed", f"{a:.2f} / {b:.2f}"]
         for op, (a, b) in cost["units"].items()]
    targets = [
        ["the follower saw no change twice", f"{follow['duplicates']:,}",
         verdict(follow["duplicates"] == 0)],
        ["the follower's copy equals the table", f"{follow['wrong']:,} wrong of "
         f"{follow['entities']:,}", verdict(follow["wrong"] == 0)],
    ]
    return (markdown_table(["change feed", "measured"], rows) + [""]
            + markdown_table(["target", "measured", "result"], targets))


def feed(bench, n):
    """The change feed's run: a follower through three syncs of a fresh `n`-entity
    connection, then a full read and the write cost."""
    stop_file = os.path.join(tempfile.mkdtemp(prefix="feed-follow-"), "stop")
    connection, follower = bench.fixture("setup", "--entity-count", str(n)), None
    try:
        follower = bench.follower(connection, stop_file)
        for args in [[], ["--config", '{"revision": 1}'],
                     ["--config", json.dumps({"entity_count": n - n // 10}), "--force-full"]]:
            bench.scenario(connection, *args, count_deleted=True)
        open(stop_file, "w").close()
        out, err = follower.communicate(timeout=SCENARIO_TIMEOUT_SECONDS)
        if follower.returncode != 0:
            raise SystemExit(f"feed-follow failed: {err[-2000:]}")
        follow, follower = json.loads(out.strip().splitlines()[-1]), None
        ids = ["--org", connection["org"], "--connection", connection["connection"]]
        read = bench.fixture("feed-read", *ids, env=connection["env"])
        cost = bench.fixture("write-cost", "--connection", connection["connection"],
                             env=connection["env"])
        print(f"feed: followed {follow['changes']:,} changes, read {read['changes']:,} at "
              f"{read['rate']:,.0f}/s", flush=True)
        return follow, read, cost
    finally:
        if follower:
            follower.kill()
        bench.drop(connection)


def main():
    release = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    if "AWS_ENDPOINT_URL" not in os.environ:
        raise SystemExit("AWS_ENDPOINT_URL is not set: run `make bench-sync`")
    bench = Bench(release, n)
    ceilings, firsts, connection = [], [], None
    try:
        for i in range(1, REPETITIONS + 1):
            ceilings.append(bench.ceiling())
            print(f"ceiling {i}: {ceilings[-1]['seconds']:.1f} s", flush=True)
            if connection:
                bench.drop(connection)
            connection = bench.fixture("setup", "--entity-count", str(n))
            firsts.append(bench.scenario(connection))
            print(f"first sync {i}: {firsts[-1]['seconds']:.1f} s", flush=True)
        scenarios = {f"1 first sync (median of {REPETITIONS})": median_run(firsts)}
        for name, args in [
            ("2 unchanged", []),
            ("3 revision 1 (10% changed)", ["--config", '{"revision": 1}']),
            ("4 full, 1,000 fewer", ["--config", json.dumps({"entity_count": n - 1000}),
                                     "--force-full"]),
        ]:
            scenarios[name] = bench.scenario(connection, *args, count_deleted=name[0] == "4")
            print(f"{name}: {scenarios[name]['seconds']:.1f} s", flush=True)
    finally:
        if connection:
            bench.drop(connection)
    follow, read, cost = feed(bench, min(n, FEED_ENTITIES))

    table = report(ceilings, firsts, scenarios) + [""] + feed_report(follow, read, cost)
    notes = [
        f"{n:,} stub entities. A fresh sync-worker process per scenario, fed SQS messages through"
        " a fake Runtime API; time = first event handed over to the answer that ended the job.",
        "entities/s = (inserted + updated + kept) / s, scenario 4 also counting deleted; ceiling"
        " = `sync-fixture ceiling`, the same items in sequential 25-item BatchWriteItems.",
        f"Ceiling and first sync ran {REPETITIONS} times alternating (ceiling s: "
        f"{seconds(ceilings)}; first sync s: {seconds(firsts)}), each first sync on a fresh"
        " connection; columns show the median run. Scenarios 2-4 ran once, on the last one.",
        "Peak RSS = the worker's VmHWM just before SIGTERM (wait4's ru_maxrss would include this"
        " driver's own ~50 MiB, which Linux carries over fork and exec into the child's peak).",
        f"Change feed: a connection of {min(n, FEED_ENTITIES):,} entities in fresh tables; the"
        " follower polled every 250 ms (settle delay 5 s) through its first sync, a revision"
        " (10% changed) and a full sync with a tenth fewer; 'full read' is one consumer reading"
        " the whole feed from the start afterwards, 1,000 changes a page. moto's Query reads the"
        " whole table for each page, so changes/s measures moto; the requests per page are ours."
        " Write units are DynamoDB's (1 per KB started, items and index entries), from the sizes"
        " of up to 500 stored items; the emulator charges none.",
    ]
    print("\n".join(table))
    command = "make bench-sync" if n == 100_000 else f"BENCH_ENTITIES={n} make bench-sync"
    record("Sync (make bench-sync)", command, table, notes,
           build_of(release, ["sync-worker", "sync-fixture"]))


if __name__ == "__main__":
    main()

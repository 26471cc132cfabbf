"""The scheduler at scale: records what `scale-bench` measured (its one JSON line on stdin) in
BENCHMARKS.md. `make bench-scale` runs the benchmark against the emulator and pipes it here.

Usage: scale-bench [CONNECTIONS] [ORGANIZATIONS] | python3 infra/bench/scale.py
"""

import json
import sys

from coldstart import record


def main():
    lines = [line for line in sys.stdin.read().splitlines() if line.startswith("{")]
    if not lines:
        sys.exit("scale-bench printed no result")
    r = json.loads(lines[-1])
    n = r["connections"]
    table = [
        "| measure | one tick | two ticks at once |",
        "| --- | ---: | ---: |",
    ]
    runs = {run["ticks"]: run for run in r["runs"]}
    one, two = runs[1], runs[2]

    def row(name, f):
        table.append(f"| {name} | {f(one)} | {f(two)} |")

    row("connections due in the same minute", lambda _: f"{n:,}")
    row("jobs created (exactly one per connection)", lambda x: f"{x['jobs']:,}")
    row("runs queued", lambda x: f"{x['queued_runs']:,}")
    row("still due afterwards", lambda x: f"{x['still_due']:,}")
    row("AWS requests per claim (target <= 1.2)", lambda x: f"{x['requests_per_claim']:.3f}")
    row("TransactWriteItems per claim",
        lambda x: f"{x['minute']['requests'].get('TransactWriteItems', 0) / max(x['minute']['fired'], 1):.3f}")
    row("GetItem per claim (a claim reads nothing first)",
        lambda x: f"{x['minute']['requests'].get('GetItem', 0) / max(x['minute']['fired'], 1):.3f}")
    row("SendMessageBatch per claim",
        lambda x: f"{x['minute']['requests'].get('SendMessageBatch', 0) / max(x['minute']['fired'], 1):.3f}")
    row("Query per claim (due pages, sweeps, webhook presence)",
        lambda x: f"{x['minute']['requests'].get('Query', 0) / max(x['minute']['fired'], 1):.3f}")
    row("claims that lost to the other tick", lambda x: f"{x['minute']['claimed_elsewhere']:,}")
    row("shards handed off and taken on", lambda x: f"{x['minute']['shards']}")
    row("claims per second on the emulator", lambda x: f"{x['claims_per_second']:.0f}")
    row("seconds from the tick to the last claim (emulator)", lambda x: f"{x['minute']['seconds']:.1f}")
    row("within the minute on the emulator", lambda x: "yes" if x["minute"]["seconds"] <= 60 else "no")
    row("one due-schedules Query on the emulator, median", lambda x: f"{x['query_ms']:.0f} ms")
    ops = lambda x: ", ".join(f"{op} {c}" for op, c in sorted(x["minute"]["requests"].items()))
    limits = r["limits"]
    notes = [
        f"{n:,} stub connections on `0 * * * *` in {r['organizations']} organizations, all due at",
        "the same top of the hour, on a fresh stack each: the minute's tick (release build,",
        f"in-process, {limits['parallel_buckets']} buckets at once, {limits['parallel_claims']} claims in flight per bucket, pages of",
        f"{limits['schedule_page']}) hands the buckets it has not begun after {limits['hand_off_after_s']} s to the scheduler's SQS queue in",
        f"shards, which {r['pollers']} invocations take on as Lambda's event source mapping would. Requests",
        "are the platform's own (the queue's receives and deletes are the trigger's).",
        f"One tick's requests: {ops(one)}.",
        f"Two ticks' requests: {ops(two)}.",
        "",
        "Where the emulator's time goes: it serves one DynamoDB request at a time, and each Query",
        "reads and sorts the whole table (here three items per connection: the connection, its",
        "job, its active-job slot), so a minute of claims costs the tick's ~200 queries times the",
        "median above plus one transaction per claim in series. On DynamoDB the transactions of a",
        "bucket's page run 8 at a time per bucket and 4 buckets at a time per invocation (~32 in",
        "flight at ~15 ms: ~2,000 claims a second per invocation), and the hand-off spreads the",
        "rest of the minute over up to SchedulerMaxShards invocations.",
    ]
    record("Scheduler at scale (make bench-scale)", "make bench-scale", table, notes)


if __name__ == "__main__":
    main()

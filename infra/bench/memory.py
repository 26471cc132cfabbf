"""Peak memory benchmark: each function's peak resident set on each of its sample events.

`make bench-memory` runs the e2e test that drives every file in events/ through its binary (a
local Lambda Runtime API, the emulator behind it) against the binaries infra/lambda-build.sh
built (the deployed build, for this machine's architecture), with
BENCH_MEMORY_REPORT naming a file; the test writes one JSON line per event with the binary's
VmHWM once it had answered. This script turns those lines into a table per binary (its
heaviest event) and records it in BENCHMARKS.md.

Usage: python3 infra/bench/memory.py REPORT_FILE BIN_DIR (the binaries the test ran)
"""

import json
import sys

from coldstart import FUNCTIONS, build_of, markdown_table, record

# Every function is deployed with this memory setting (template.yaml, MemorySize).
LIMIT_MIB = 128


def main():
    with open(sys.argv[1]) as f:
        runs = [json.loads(line) for line in f if line.strip()]
    rows, failed = [], False
    for function in FUNCTIONS:
        mine = [r for r in runs if r["binary"] == function]
        if not mine:
            sys.exit(f"no sample event drove {function}")
        heaviest = max(mine, key=lambda r: r["peak_rss_kib"])
        peak = heaviest["peak_rss_kib"] / 1024
        ok = peak <= LIMIT_MIB
        failed |= not ok
        rows.append([
            function,
            str(len(mine)),
            heaviest["event"],
            f"{peak:.1f}",
            f"{peak / LIMIT_MIB:.0%} {'PASS' if ok else 'FAIL'}",
        ])
    table = markdown_table(
        ["binary", "events", "heaviest event", "peak RSS MiB", f"of {LIMIT_MIB} MiB"], rows)
    print("\n".join(table))
    record(
        "Peak memory (make bench-memory)",
        "make bench-memory",
        table,
        [
            "Peak RSS = the process's VmHWM right after it answered the event,",
            "each event in a fresh process (a cold start), against the emulator with the e2e",
            "test's stack behind it. The worker's sample event is a two-message batch; its",
            "heaviest real workload, a first sync of 100,000 entities, is in the sync worker",
            "section (`make bench-sync`, peak RSS per worker process).",
        ],
        build_of(sys.argv[2], FUNCTIONS),
    )
    if failed:
        sys.exit(f"a function exceeds {LIMIT_MIB} MiB")


if __name__ == "__main__":
    main()

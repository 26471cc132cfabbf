"""The whole fault matrix: every AWS request of every operation failed once with every kind of
fault (throttled, a 500 after it was applied, a timeout after it was applied, its condition
failed). `make test` runs the same matrix with one kind per request, kinds in turn; `make
bench-faults` runs the e2e fault matrix test with FAULT_MATRIX=full and BENCH_FAULTS_REPORT
naming a file, where the test writes its table; this script records that table in
BENCHMARKS.md.

Usage: python3 infra/bench/faults.py REPORT_FILE
"""

import sys

from coldstart import record


def main():
    with open(sys.argv[1]) as f:
        lines = f.read().splitlines()
    table = [line for line in lines if line.startswith("|")]
    if not table:
        sys.exit("the fault matrix wrote no table")
    record(
        "Fault matrix (make bench-faults)",
        "make bench-faults",
        table,
        [
            "Every request of each operation failed once with every kind of fault that applies",
            "to it, through the real adapters against the emulator; then retries, redelivery,",
            "the sweeps, and the invariants (no orphan secret, no connection without its secret,",
            "no job left active, no entity lost or duplicated, the change feed showing what the",
            "listing shows, the fault-free end state with the feed's live and deleted keys).",
            "`make test` runs one kind per request, the kinds in turn.",
        ],
    )


if __name__ == "__main__":
    main()

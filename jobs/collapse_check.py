"""Check a candidate dataset against a reference (eight calibrated dimensions plus memorization).

    python jobs/collapse_check.py CANDIDATE --reference REF [--target COL] [--order COL] [--out DIR]
    ray job submit --working-dir . -- python jobs/collapse_check.py synthetic.parquet --reference real.parquet

Prints the JSON report, writes collapse_report.json and collapse_report.html into --out; exits
1 with --fail-on-collapse when collapse is found, 11-15 when the check could not run (by category).
"""

import sys

from dmas.cli import main

if __name__ == "__main__":
    sys.exit(main(["collapse-check", *sys.argv[1:]]))

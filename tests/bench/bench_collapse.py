"""Benchmark: the collapse check's speed and its detection figures, measured in one run.

    flock /tmp/dmas-cpu.lock .venv/bin/python tests/bench/bench_collapse.py timing [--rows 20000]
    flock /tmp/dmas-cpu.lock .venv/bin/python tests/bench/bench_collapse.py detection [--seeds 20] [--clean 100]
    flock /tmp/dmas-cpu.lock .venv/bin/python tests/bench/bench_collapse.py big [--rows 1000000]

`timing`: one check of a planted candidate against its reference (the planted table: 11 columns, all
eight dimensions plus memorization, Parquet files) with no null cache (cold: calibration included)
and again with the nulls cached (warm); seconds of each step. The baseline in the same run is one
plain read of both files (pyarrow), the floor any check pays.
`detection`: at the goal severity of each planted ladder, the share of seeds whose report attributes
the corruption to the right dimension and column, and the share of clean resamples flagged (the
false-positive rate), all against one reference and one null cache.
`big`: the timing case at 1,000,000 rows with the planted table widened to 20 columns.
Each prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def _widened(frame, columns: int):
    """The planted table with extra columns (noisy copies of its numerics) until it has `columns`."""
    rng = np.random.default_rng(7)
    numeric = ["x1", "x2", "x3", "amount", "bimodal", "wait"]
    for k in range(columns - len(frame.columns)):
        base = numeric[k % len(numeric)]
        frame[f"extra_{k:02d}"] = frame[base].to_numpy() + rng.normal(0, frame[base].std() * 0.5, len(frame))
    return frame


def timing(rows: int, columns: int | None) -> dict:
    from dmas.quality import planted
    from dmas.quality.collapse import collapse_report
    from dmas.quality.config import CollapseCheckConfig
    from dmas.quality.report import JSON_NAME

    folder = Path(tempfile.mkdtemp(prefix="dmas-bench-collapse-"))
    reference = planted.reference_table(rows, 0)
    candidate = planted.variance_shrink(reference, 0.9, 1)
    if columns:
        reference, candidate = _widened(reference, columns), _widened(candidate, columns)
    reference.to_parquet(folder / "reference.parquet", index=False)
    candidate.to_parquet(folder / "candidate.parquet", index=False)
    started = time.perf_counter()
    for name in ("reference", "candidate"):
        pq.read_table(folder / f"{name}.parquet")
    read_s = time.perf_counter() - started
    config = CollapseCheckConfig(cache_dir=str(folder / "nulls"))
    runs = {}
    for run in ("cold", "warm"):
        started = time.perf_counter()
        outcome = collapse_report(str(folder / "candidate.parquet"), str(folder / "reference.parquet"),
                                  target="target", order="t", config=config, out_dir=folder / run)
        runs[run] = {"seconds": round(time.perf_counter() - started, 2), "steps": outcome.timings,
                     "collapse_detected": outcome.report["collapse_detected"], "flags": len(outcome.report["flags"])}
    same = (folder / "cold" / JSON_NAME).read_bytes() == (folder / "warm" / JSON_NAME).read_bytes()
    return {"bench": "collapse_timing", "rows": rows, "columns": len(reference.columns),
            "plain_read_s": round(read_s, 3),
            **runs, "ratio_cold_to_read": round(runs["cold"]["seconds"] / read_s, 1),
            "identical_report_bytes": same, "goal_s": 15.0 if rows <= 20_000 else None}


def detection(rows: int, seeds: int, clean: int) -> dict:
    import pyarrow as pa

    from dmas.quality.check import run_check
    from dmas.quality.columns import encode_pair
    from dmas.quality.config import CollapseCheckConfig
    from dmas.quality.planted import LADDERS, attributed, reference_table

    reference = reference_table(rows, 0)
    config = CollapseCheckConfig(cache_dir=tempfile.mkdtemp(prefix="dmas-bench-nulls-"))

    def report(candidate) -> dict:
        pair = encode_pair(pa.Table.from_pandas(reference, preserve_index=False),
                           pa.Table.from_pandas(candidate, preserve_index=False), target="target", order="t")
        return run_check(pair.reference, pair.candidate, config).report()

    found = {}
    for name, ladder in LADDERS.items():
        if ladder.goal is None:
            continue
        reports = [report(ladder.corrupt(reference, ladder.goal, 1000 + seed)) for seed in range(seeds)]
        verdict = "drift_detected" if ladder.finding == "drift" else "collapse_detected"
        found[name] = {"severity": ladder.goal, "detected": sum(r[verdict] for r in reports) / seeds,
                       "attributed": sum(attributed(r, ladder) for r in reports) / seeds,
                       "also_collapse": sum(r["collapse_detected"] for r in reports) / seeds}
    flagged = [report(reference_table(rows, 5000 + seed)) for seed in range(clean)]
    false_collapse = sum(r["collapse_detected"] for r in flagged) / clean
    false_drift = sum(r["drift_detected"] for r in flagged) / clean
    culprits = sorted({(f["dimension"], f["evidence"]["statistic"]) for r in flagged for f in r["flags"]})
    return {"bench": "collapse_detection", "rows": rows, "seeds": seeds, "ladders": found,
            "clean": {"resamples": clean, "collapse_rate": false_collapse, "drift_rate": false_drift,
                      "flagged_by": [list(c) for c in culprits]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("timing", "detection", "big"))
    parser.add_argument("--rows", type=int)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--clean", type=int, default=100)
    args = parser.parse_args()
    if args.mode == "timing":
        result = timing(args.rows or 20_000, None)
    elif args.mode == "big":
        result = timing(args.rows or 1_000_000, 20)
    else:
        result = detection(args.rows or 20_000, args.seeds, args.clean)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

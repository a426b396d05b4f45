r"""Benchmark: the collapse check's speed and its detection figures, measured in one run.

    flock /tmp/dmas-cpu.lock .venv/bin/python tests/bench/bench_collapse.py timing [--rows 20000]
    flock /tmp/dmas-cpu.lock .venv/bin/python tests/bench/bench_collapse.py detection [--seeds 20] [--clean 100]
    flock /tmp/dmas-cpu.lock .venv/bin/python tests/bench/bench_collapse.py big [--rows 1000000]
    flock /tmp/dmas-cpu.lock /tmp/sdm-env/bin/python tests/bench/bench_collapse.py sdmetrics [--rows 100000] \
        [--collapse variance_shrink]

`timing`: one check of a planted candidate against its reference (the planted table: 11 columns, all
eight dimensions plus memorization, Parquet files) with no null cache (cold: calibration included)
and again with the nulls cached (warm); seconds of each step. The baseline in the same run is one
plain read of both files (pyarrow), the floor any check pays.
`detection`: at the goal severity of each planted ladder, the share of seeds whose report attributes
the corruption to the right dimension and column, and the share of clean resamples flagged (the
false-positive rate), all against one reference and one null cache.
`big`: the timing case at 1,000,000 rows with the planted table widened to 20 columns.
`sdmetrics`: the check against SDMetrics' QualityReport (column shapes and column pair trends) on
the same files in the same run: the planted table (10 columns and the time column `t`) as reference,
and two candidates drawn with one seed: a clean resample and that resample with one planted collapse
(a ladder of `planted.LADDERS` at its goal severity). For each, seconds of dmas' check on the CLI's
path (`collapse_report`, default settings) cold (empty null cache) and warm, and of SDMetrics
(reading both files with pandas, then `generate`), the ratio SDMetrics / dmas (above 1: dmas is
faster), and what each found: dmas' verdicts and flags, SDMetrics' scores and its lowest columns
and pairs. Both libraries run once on a small table first, so imports are in neither timing.
SDMetrics 0.32 scores each column's shape (KS or TV complement) and only the column pairs whose real
|correlation| is above 0.5 or association above 0.3 (`pairs_scored`), on at most 50,000 rows a pair;
it writes nothing, while dmas' time includes writing its JSON and HTML reports (`write_reports_s`).
SDMetrics is not a dependency of dmas; it runs from a throwaway environment that sees dmas' own
(from the repository root):

    "$(.venv/bin/python -c 'import sys; print(sys.base_prefix)')/bin/python3" -m venv /tmp/sdm-env && \
      printf "import site; site.addsitedir('%s')\n" "$PWD/.venv/lib/python3.11/site-packages" \
        > /tmp/sdm-env/lib/python3.11/site-packages/dmas.pth && \
      /tmp/sdm-env/bin/pip install --no-deps sdmetrics==0.32.0 copulas==0.14.1 plotly==7.1.0

(`--no-deps`: SDMetrics pins pandas<3 and would bring a second pandas; it runs on dmas' pandas 3, so
both libraries are timed on the same pandas, numpy and scikit-learn, and .venv is left as it was.)
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


SDMETRICS_RECIPE = "see the `sdmetrics` mode in this file's docstring for the one-line environment recipe"


def _sdmetrics_metadata(frame) -> dict:
    """SDMetrics' metadata for a table, from its dtypes: what a user writes by hand for these columns."""
    import pandas as pd

    def sdtype(column) -> str:
        if pd.api.types.is_bool_dtype(column):
            return "boolean"
        return "numerical" if pd.api.types.is_numeric_dtype(column) else "categorical"

    return {"columns": {name: {"sdtype": sdtype(frame[name])} for name in frame.columns}}


def _sdmetrics_run(quality_report, reference_path: Path, candidate_path: Path) -> dict:
    """SDMetrics' QualityReport as a user runs it on two files: read both with pandas, generate."""
    import pandas as pd

    started = time.perf_counter()
    real, synthetic = pd.read_parquet(reference_path), pd.read_parquet(candidate_path)
    read_s = time.perf_counter() - started
    report = quality_report()
    report.generate(real, synthetic, _sdmetrics_metadata(real), verbose=False)
    seconds = time.perf_counter() - started
    properties = dict(zip(report.get_properties()["Property"], report.get_properties()["Score"]))
    shapes = report.get_details("Column Shapes").sort_values(["Score", "Column"])
    every_pair = report.get_details("Column Pair Trends")
    pairs = every_pair.dropna(subset=["Score"]).sort_values(["Score", "Column 1"])
    return {"seconds": round(seconds, 2), "read_s": round(read_s, 3), "generate_s": round(seconds - read_s, 2),
            "overall_score": round(float(report.get_score()), 4),
            "column_shapes": round(float(properties["Column Shapes"]), 4),
            "column_pair_trends": round(float(properties["Column Pair Trends"]), 4),
            "pairs_scored": f"{len(pairs)} of {len(every_pair)}",
            "lowest_shapes": {row.Column: round(float(row.Score), 4) for row in shapes.head(3).itertuples()},
            "lowest_pairs": {f"{first}~{second}": round(float(score), 4) for first, second, score
                             in pairs[["Column 1", "Column 2", "Score"]].head(3).itertuples(index=False)}}


def _dmas_run(candidate_path: Path, reference_path: Path, cache: Path, out: Path) -> dict:
    """dmas' check as the CLI runs it (`collapse_report`, default settings), with the nulls in `cache`."""
    from dmas.quality.collapse import collapse_report
    from dmas.quality.config import CollapseCheckConfig

    started = time.perf_counter()
    outcome = collapse_report(str(candidate_path), str(reference_path), target="target", order="t",
                              config=CollapseCheckConfig(cache_dir=str(cache)), out_dir=out)
    seconds = time.perf_counter() - started
    steps = {**outcome.timings, "write_reports_s": round(seconds - outcome.timings["load_s"]
                                                         - outcome.timings["total_s"], 3)}  # JSON + HTML
    return {"seconds": round(seconds, 2), "steps": steps, "report": outcome.report}


def _dmas_found(report: dict, ladder) -> dict:
    """dmas' verdicts, its eight dimensions' scores and its flags (dimension, columns, statistic), and
    whether a flag attributes the planted `ladder` (if any) to the right dimension and column."""
    from dmas.quality.planted import attributed

    flags = sorted({f"{flag['dimension']}:{','.join(flag['columns'])}:{flag['evidence']['statistic']}"
                    for flag in report["flags"]})
    found = {"collapse_detected": report["collapse_detected"], "drift_detected": report["drift_detected"],
             "overall_score": report["overall_score"], "dimensions_computed": len(report["dimensions"]),
             "scores": {d["name"]: d["score"] for d in report["dimensions"]},
             "memorization_score": report["memorization"]["score"], "flags": flags}
    if ladder is not None:
        found["attributed"] = attributed(report, ladder)
    return found


def sdmetrics_comparison(rows: int, collapse: str) -> dict:
    try:
        from sdmetrics.reports.single_table import QualityReport
    except ImportError:
        sys.exit(f"bench_collapse sdmetrics: sdmetrics is not importable by {sys.executable}; it is not a dmas "
                 f"dependency and runs from a throwaway environment: {SDMETRICS_RECIPE}")
    import warnings

    from dmas.quality import planted
    from dmas.quality.config import CollapseCheckConfig

    warnings.filterwarnings("ignore", category=FutureWarning, module="sdmetrics")  # single_table is deprecated
    ladder = planted.LADDERS[collapse]
    if ladder.goal is None:
        sys.exit(f"bench_collapse sdmetrics: --collapse {collapse} has no goal severity; choose one of "
                 f"{sorted(name for name, known in planted.LADDERS.items() if known.goal is not None)}")
    folder = Path(tempfile.mkdtemp(prefix="dmas-bench-sdmetrics-"))

    def write(name: str, frame) -> Path:
        path = folder / f"{name}.parquet"
        frame.to_parquet(path, index=False)
        return path

    small = planted.reference_table(2_000, 0)
    warm_up = (write("warm_up_reference", small), write("warm_up_candidate", planted.reference_table(2_000, 1)))
    _dmas_run(warm_up[1], warm_up[0], folder / "warm_up_nulls", folder / "warm_up")
    _sdmetrics_run(QualityReport, *warm_up)

    reference = planted.reference_table(rows, 0)
    reference_path = write("reference", reference)
    candidates = {"clean": write("clean", planted.reference_table(rows, 1)),
                  "collapsed": write("collapsed", ladder.corrupt(reference, ladder.goal, 1))}
    results = {}
    for name, path in candidates.items():
        cache = folder / f"nulls_{name}"  # empty for each candidate: both cold runs calibrate
        cold = _dmas_run(path, reference_path, cache, folder / name / "cold")
        warm = _dmas_run(path, reference_path, cache, folder / name / "warm")
        sdm = _sdmetrics_run(QualityReport, reference_path, path)
        results[name] = {
            "dmas_cold_s": cold["seconds"], "dmas_warm_s": warm["seconds"], "sdmetrics_s": sdm["seconds"],
            "ratio_sdmetrics_to_dmas_cold": round(sdm["seconds"] / cold["seconds"], 2),
            "ratio_sdmetrics_to_dmas_warm": round(sdm["seconds"] / warm["seconds"], 2),
            "dmas_cold_steps": cold["steps"], "dmas_warm_steps": warm["steps"],
            "identical_report": cold["report"] == warm["report"],
            "dmas": _dmas_found(cold["report"], ladder if name == "collapsed" else None),
            "sdmetrics": sdm}
    computed_all = all(r["dmas"]["dimensions_computed"] == 8 for r in results.values())
    return {"bench": "collapse_vs_sdmetrics", "rows": rows, "columns": len(reference.columns),
            "collapse": {"ladder": collapse, "severity": ladder.goal},
            "sdmetrics_version": _version("sdmetrics"), "max_rows": CollapseCheckConfig().max_rows, **results,
            "goal": "faster than SDMetrics while computing all eight dimensions",
            "goal_met_cold": computed_all and all(r["ratio_sdmetrics_to_dmas_cold"] > 1 for r in results.values()),
            "goal_met_warm": computed_all and all(r["ratio_sdmetrics_to_dmas_warm"] > 1 for r in results.values())}


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("timing", "detection", "big", "sdmetrics"))
    parser.add_argument("--rows", type=int)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--clean", type=int, default=100)
    parser.add_argument("--collapse", default="variance_shrink", help="sdmetrics: the planted ladder of the "
                        "collapsed candidate, at its goal severity")
    args = parser.parse_args()
    if args.mode == "timing":
        result = timing(args.rows or 20_000, None)
    elif args.mode == "big":
        result = timing(args.rows or 1_000_000, 20)
    elif args.mode == "sdmetrics":
        result = sdmetrics_comparison(args.rows or 100_000, args.collapse)
    else:
        result = detection(args.rows or 20_000, args.seeds, args.clean)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

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
`big` (benchmark c): 1,000,000 rows of `planted.wide_table` (20 value columns of every kind, plus `t`
and `target`) and a candidate of it with x1's variance at 0.9, as Parquet files in a temporary folder
(removed after). Each step runs in a fresh process: one plain read of both files
(`pyarrow.parquet.read_table`, the floor), then `collapse_report` (the CLI's function) cold and warm;
for each, seconds and peak RSS (getrusage; per step of the check from /proc samples every 50 ms), and
the peak of the summed RSS of the process and every process it started (the null draws' loky workers;
shared library pages count once per process, so an upper bound) and of their summed PSS (a shared page
divided among the processes that map it: what the tree holds), what the workers still hold when the
check returns, the ratios to the read, and which dimensions read every row and which a seeded sample
(and its size).
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
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def timing(rows: int) -> dict:
    from dmas.quality import planted
    from dmas.quality.collapse import collapse_report
    from dmas.quality.config import CollapseCheckConfig
    from dmas.quality.report import JSON_NAME

    folder = Path(tempfile.mkdtemp(prefix="dmas-bench-collapse-"))
    reference = planted.reference_table(rows, 0)
    candidate = planted.variance_shrink(reference, 0.9, 1)
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


BIG_CANDIDATE_SEED = 1


def big(rows: int, profile: Path | None) -> dict:
    """Benchmark (c): the check at `rows` x 20 value columns against one plain read of both files, each
    step in a fresh process (so its peak RSS is its own), the files in a temporary folder removed after."""
    import shutil
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from dmas.quality import planted
    from dmas.quality.config import CollapseCheckConfig
    from dmas.quality.report import JSON_NAME

    folder = Path(tempfile.mkdtemp(prefix="dmas-bench-collapse-big-"))
    try:
        started = time.perf_counter()
        reference = planted.wide_table(rows, 0)
        candidate = planted.variance_shrink(reference, 0.9, BIG_CANDIDATE_SEED,
                                            candidate=planted.wide_table(rows, BIG_CANDIDATE_SEED))
        paths = {"reference": folder / "reference.parquet", "candidate": folder / "candidate.parquet"}
        reference.to_parquet(paths["reference"], index=False)
        candidate.to_parquet(paths["candidate"], index=False)
        value_columns = [name for name in reference.columns if name not in ("t", "target")]
        del reference, candidate
        generate_s = time.perf_counter() - started
        spawn = get_context("spawn")

        def fresh(function, *args):  # one new interpreter per step: peak RSS and imports are that step's alone
            with ProcessPoolExecutor(1, mp_context=spawn) as pool:
                return pool.submit(function, *args).result()

        read = fresh(_big_read, [str(paths["reference"]), str(paths["candidate"])])
        runs = {run: fresh(_big_check, str(paths["candidate"]), str(paths["reference"]), str(folder / "nulls"),
                           str(folder / run), str(profile) if profile and run == "cold" else None)
                for run in ("cold", "warm")}
        same = (folder / "cold" / JSON_NAME).read_bytes() == (folder / "warm" / JSON_NAME).read_bytes()
        file_mib = {name: round(path.stat().st_size / 2**20, 1) for name, path in paths.items()}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    kinds = runs["cold"].pop("kinds")
    frame_mib = 2 * rows * sum(8 if kind in ("numeric", "datetime") else 4 for kind in kinds.values()) / 2**20
    max_rows = CollapseCheckConfig().max_rows
    return {"bench": "collapse_big", "rows": rows, "columns": len(kinds), "value_columns": len(value_columns),
            "kinds": {kind: sum(k == kind for k in kinds.values()) for kind in sorted(set(kinds.values()))},
            "generate_s": round(generate_s, 1), "file_mib": file_mib, "plain_read": read, **runs,
            "ratio_cold_to_read": round(runs["cold"]["seconds"] / read["seconds"], 1),
            "ratio_warm_to_read": round(runs["warm"]["seconds"] / read["seconds"], 1),
            "quality_frames_mib": round(frame_mib, 1),
            "ratio_peak_rss_cold_to_read": round(runs["cold"]["peak_rss_mib"] / read["peak_rss_mib"], 2),
            "ratio_peak_rss_with_workers_cold_to_read":
                round(runs["cold"]["peak_rss_with_workers_mib"] / read["peak_rss_mib"], 2),
            "ratio_peak_pss_with_workers_cold_to_read":
                round(runs["cold"]["peak_pss_with_workers_mib"] / read["peak_rss_mib"], 2),
            "identical_report_bytes": same, "max_rows": max_rows, "rows_used": _rows_used(rows, max_rows),
            "profiled": profile is not None}


def _rows_used(rows: int, max_rows: int) -> dict:
    """Which dimensions read every row and which a seeded sample, and how many rows that sample has."""
    from dmas.quality import generalization, memorization, probe

    every = f"all {rows} rows per side (null draws: 30 at the candidate's {rows} rows)"
    fitted = min(probe.PROBE_ROWS, max_rows)
    return {"distribution_fidelity": every, "correlation_preservation": every, "entropy_stability": every,
            "spectral_coherence": every, "statistical_consistency": every,
            "gradient_health": f"sample: {fitted} training rows per side, {probe.HOLDOUT_ROWS} held-out reference rows",
            "loss_landscape": f"sample: {fitted} training rows per side, {probe.HOLDOUT_ROWS} held-out reference rows",
            "generalization_gap": f"sample: {min(generalization.ROWS, max_rows)} rows per side",
            "memorization": f"exact copies: all rows; near copies: sample of {memorization.QUERY_ROWS} queries per "
                            f"side against {memorization.BASE_ROWS} reference rows; precision/recall/coverage: "
                            f"{memorization.PRC_ROWS} rows per set"}


def _rss_mib(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _pss_mib(pid: int | str = "self") -> float:
    """Proportional set size: resident pages, each shared page divided among the processes mapping it."""
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _tree_rss_mib() -> tuple[float, float]:
    """(RSS, PSS) of this process plus every process descended from it (the null draws' loky workers), from
    /proc: the RSS sum counts a shared page (libraries, the memory-mapped reference) once per process that
    maps it, an upper bound; the PSS sum counts it once in all, the memory the tree holds."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # exited while scanned
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])  # after "(comm)": state, ppid
            children.setdefault(parent, []).append(int(entry.name))
    total, shared, pending = _rss_mib(), _pss_mib(), list(children.get(os.getpid(), []))
    while pending:
        pid = pending.pop()
        try:
            rss, pss = _rss_mib(pid), _pss_mib(pid)
        except OSError:
            continue
        total, shared = total + rss, shared + pss
        pending.extend(children.get(pid, []))
    return total, shared


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


class _RssTrace:
    """Resident memory sampled every 50 ms while the `with` block runs, to find each step's peak: this
    process's, and with its descendants' (the null draws' worker processes) added."""

    def __enter__(self) -> _RssTrace:
        import threading

        self.samples, self._done, self.started = [], threading.Event(), time.perf_counter()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._done.wait(0.05):
            self.samples.append((time.perf_counter() - self.started, _rss_mib(), *_tree_rss_mib()))

    def __exit__(self, *exc_info) -> None:
        self._done.set()
        self._thread.join()

    def peak(self, start: float, end: float, with_workers: bool = False, proportional: bool = False) -> float | None:
        """The largest sample between `start` and `end` s: this process's RSS, or with its descendants' added
        (their RSS, or with `proportional` the tree's PSS)."""
        inside = [(pss if proportional else tree) if with_workers else rss
                  for at, rss, tree, pss in self.samples if start <= at <= end]
        return round(max(inside), 1) if inside else None


def _big_read(paths: list[str]) -> dict:
    """The floor: one plain pyarrow read of both files (in a fresh process: seconds and peak RSS)."""
    before = _rss_mib()
    started = time.perf_counter()
    tables = [pq.read_table(path) for path in paths]
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 3), "arrow_mib": round(sum(t.nbytes for t in tables) / 2**20, 1),
            "rss_before_mib": round(before, 1), "peak_rss_mib": round(_peak_rss_mib(), 1)}


def _big_check(candidate: str, reference: str, cache: str, out: str, profile: str | None) -> dict:
    """One `collapse_report` as the CLI runs it, in a fresh process: seconds, steps, peak RSS (whole and per step)."""
    import cProfile
    import pstats

    import matplotlib.pyplot  # noqa: F401  (imports out of the timing, as in the read's process)

    from dmas.quality import registry, report_html  # noqa: F401
    from dmas.quality.collapse import collapse_report
    from dmas.quality.config import CollapseCheckConfig

    before = _rss_mib()
    profiler = cProfile.Profile() if profile else None
    with _RssTrace() as trace:
        if profiler:
            profiler.enable()
        started = time.perf_counter()
        outcome = collapse_report(candidate, reference, target="target", order="t",
                                  config=CollapseCheckConfig(cache_dir=cache), out_dir=out)
        seconds = time.perf_counter() - started
        if profiler:
            profiler.disable()
    if profiler:
        profiler.dump_stats(profile)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    steps = dict(outcome.timings)
    steps["write_reports_s"] = round(seconds - steps["load_s"] - steps["total_s"], 3)
    load, calibrate = steps["load_s"], steps["calibration_s"]
    check_end = load + steps["total_s"]
    spans = {"load": (0.0, load), "calibration": (load, load + calibrate),
             "dimensions": (load + calibrate, check_end), "write_reports": (check_end, seconds)}
    report = outcome.report
    return {"seconds": round(seconds, 2), "steps": steps, "rss_before_mib": round(before, 1),
            "peak_rss_mib": round(_peak_rss_mib(), 1),
            "peak_rss_with_workers_mib": max(_peak_rss_mib(), trace.peak(0.0, seconds, with_workers=True) or 0.0),
            "peak_rss_by_step_mib": {step: trace.peak(*span) for step, span in spans.items()},
            "peak_rss_with_workers_by_step_mib": {step: trace.peak(*span, with_workers=True)
                                                  for step, span in spans.items()},
            "peak_pss_with_workers_mib": trace.peak(0.0, seconds, with_workers=True, proportional=True),
            "workers_rss_after_mib": round(_tree_rss_mib()[0] - _rss_mib(), 1),
            "collapse_detected": report["collapse_detected"], "drift_detected": report["drift_detected"],
            "flags": sorted({f"{flag['dimension']}:{','.join(flag['columns'])}" for flag in report["flags"]}),
            "kinds": report["inputs"]["kinds"]}


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
    parser.add_argument("--profile", type=Path, help="big: write the cold check's cProfile stats to this file "
                        "(and its top functions to stderr); the profiled run is timed too, so leave it off for figures")
    parser.add_argument("--collapse", default="variance_shrink", help="sdmetrics: the planted ladder of the "
                        "collapsed candidate, at its goal severity")
    args = parser.parse_args()
    if args.mode == "timing":
        result = timing(args.rows or 20_000)
    elif args.mode == "big":
        result = big(args.rows or 1_000_000, args.profile)
    elif args.mode == "sdmetrics":
        result = sdmetrics_comparison(args.rows or 100_000, args.collapse)
    else:
        result = detection(args.rows or 20_000, args.seeds, args.clean)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

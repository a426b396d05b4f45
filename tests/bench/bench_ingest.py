"""Benchmark: a 1,000,000-row events CSV through dmas ingestion vs. plain pandas read_csv + to_parquet.

Both run in the same invocation, each in its own fresh process (so peak memory is per run), on the
same file, `--repeats` times; the best time of each is compared. Prints one JSON line:

    .venv/bin/python tests/bench/bench_ingest.py [--rows 1000000] [--repeats 3]

Goal (issue 2): dmas within 2x of the plain copy while validating, peak memory under 2 GB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def make_inputs(folder: Path, rows: int, entities: int = 10_000) -> tuple[Path, Path]:
    """A deterministic events file in the layout of the data model, with mixed time zone offsets."""
    rng = np.random.default_rng(0)
    ids = np.array([f"ent_{i:06d}" for i in range(entities)])
    pd.DataFrame({"entity_id": ids}).to_csv(folder / "entities.csv", index=False)
    seconds = np.sort(rng.integers(0, 180 * 86400, rows))
    stamps = pd.to_datetime("2024-01-01T00:00:00Z") + pd.to_timedelta(seconds + np.arange(rows), unit="s")
    text = stamps.strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy(dtype=object)
    text[::7] = (stamps[::7] + pd.Timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00")
    frame = pd.DataFrame({
        "entity_id": ids[rng.integers(0, entities, rows)],
        "timestamp": text,
        "event_type": np.array(["login", "purchase", "payment", "support_call", "refund"])[rng.integers(0, 5, rows)],
        "event_value": np.round(rng.gamma(2.0, 20.0, rows), 2),
    })
    frame.to_csv(folder / "events.csv", index=False)
    return folder / "entities.csv", folder / "events.csv"


def run_worker(kind: str, events: Path, entities: Path, out: Path) -> dict:
    """Time one run inside this process; report seconds and this process's peak RSS."""
    if kind == "pandas":
        started = time.perf_counter()
        pd.read_csv(events).to_parquet(out / "events.parquet")
        seconds = time.perf_counter() - started
        rows = None
    else:
        from dmas.ingest.tabular import ingest_table
        from dmas.store import Store

        store = Store(out / "store")
        ingest_table(store, "entities", entities)
        started = time.perf_counter()
        report = ingest_table(store, "events", events)
        seconds = time.perf_counter() - started
        rows = report["success_rows"]
    return {"seconds": seconds, "peak_rss_mb": _peak_rss_mb(), "rows": rows}


def _peak_rss_mb() -> float:
    """This process's own high-water mark (VmHWM); ru_maxrss would include the parent's before exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(kind: str, events: Path, entities: Path, repeats: int) -> list[dict]:
    runs = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as out:
            result = subprocess.run([sys.executable, __file__, "--worker", kind, str(events), str(entities), out],
                                    capture_output=True, text=True, check=True)
            runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", nargs=4, metavar=("KIND", "EVENTS", "ENTITIES", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, events, entities, out = args.worker
        print(json.dumps(run_worker(kind, Path(events), Path(entities), Path(out))))
        return
    with tempfile.TemporaryDirectory() as folder:
        entities, events = make_inputs(Path(folder), args.rows)
        size_mb = events.stat().st_size / 1e6
        baseline = measure("pandas", events, entities, args.repeats)
        dmas = measure("dmas", events, entities, args.repeats)
    best_base = min(run["seconds"] for run in baseline)
    best_dmas = min(run["seconds"] for run in dmas)
    assert all(run["rows"] == args.rows for run in dmas), "dmas rejected rows of a clean file"
    print(json.dumps({
        "bench": "ingest_events_csv",
        "rows": args.rows,
        "file_mb": round(size_mb, 1),
        "pandas_read_csv_to_parquet_s": round(best_base, 3),
        "dmas_ingest_s": round(best_dmas, 3),
        "pandas_rows_per_s": round(args.rows / best_base),
        "dmas_rows_per_s": round(args.rows / best_dmas),
        "dmas_over_pandas_time_ratio": round(best_dmas / best_base, 2),
        "pandas_peak_rss_mb": round(max(run["peak_rss_mb"] for run in baseline)),
        "dmas_peak_rss_mb": round(max(run["peak_rss_mb"] for run in dmas)),
        "repeats": args.repeats,
    }))


if __name__ == "__main__":
    main()

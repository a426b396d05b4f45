"""Benchmark ingestion: a large events CSV (default), or a synthetic media manifest (`--media`).

Events: a 1,000,000-row CSV through dmas ingestion vs. plain pandas read_csv + to_parquet, each in
its own fresh process (so peak memory is per run), on the same file, `--repeats` times; the best
time of each is compared. Goal (issue 2): dmas within 2x of the plain copy while validating, peak
memory under 2 GB.

Media: the manifest and files `dmas.synth` writes for `--entities` entities (small PNG/JPEG
images, WAV clips, MP4 videos, some shared bytes) through `ingest_artifact_manifest`, with its
files checked by the single-process loop and by Ray tasks on 2 CPUs, each in its own fresh process,
`--repeats` times into fresh stores; the reports and stored rows must agree. The one-time Ray start
is reported separately, and with it the files/s of a cold run (start + first ingest). Goal
(issue 10): Ray at least 1.7x the loop's files/s on 2 cores.

Prints one JSON line:

    .venv/bin/python tests/bench/bench_ingest.py [--rows 1000000] [--repeats 3]
    .venv/bin/python tests/bench/bench_ingest.py --media [--entities 20000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

CPUS = 2  # the machine

def make_inputs(folder: Path, rows: int, entities: int = 10_000) -> tuple[Path, Path]:
    """A deterministic events file in the layout of the data model, with mixed time zone offsets."""
    rng = np.random.default_rng(0)
    ids = np.array([f"ent_{i:06d}" for i in range(entities)])
    pd.DataFrame({"entity_id": ids, "attributes": "{}"}).to_csv(folder / "entities.csv", index=False)
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
    if kind in ("loop", "ray"):
        return run_media_worker(kind, events, entities, out)
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


def run_media_worker(kind: str, manifest: Path, entities: Path, out: Path) -> dict:
    """Ingest the manifest `repeats` times (fresh stores) with its files checked by `kind`.

    Ray starts once, timed on its own; the result is summarised so the two kinds can be compared.
    """
    from dmas.ingest.artifacts import ingest_artifact_manifest
    from dmas.ingest.tabular import ingest_table
    from dmas.store import Store

    ray_init_s = None
    if kind == "ray":
        import ray

        started = time.perf_counter()
        ray.init(num_cpus=CPUS, include_dashboard=False, log_to_driver=False, object_store_memory=200 * 1024**2,
                 _temp_dir=tempfile.mkdtemp(prefix="dmasbench", dir="/tmp"))
        ray_init_s = time.perf_counter() - started
    runs = []
    for repeat in range(int(os.environ["BENCH_REPEATS"])):
        store = Store(out / f"store{repeat}")
        ingest_table(store, "entities", entities)
        started = time.perf_counter()
        report = ingest_artifact_manifest(store, manifest, use_ray=kind == "ray")
        runs.append(time.perf_counter() - started)
    stored = store.table("artifacts").read().to_pylist()
    report.pop("version")
    return {"seconds": runs, "ray_init_s": ray_init_s, "peak_rss_mb": _peak_rss_mb(),
            "report_sha256": hashlib.sha256(json.dumps(report, sort_keys=True).encode()).hexdigest(),
            "stored_sha256": hashlib.sha256(json.dumps(stored, sort_keys=True, default=str).encode()).hexdigest(),
            "rows": report["total_rows"], "failed_rows": report["failed_rows"], "unique_blobs": report["unique_blobs"]}


def media_main(entities: int, repeats: int) -> dict:
    """Both ways on one synthetic manifest; the JSON line's fields."""
    from dmas.synth import generate

    with tempfile.TemporaryDirectory() as folder:
        data = generate(Path(folder) / "synth", n_entities=entities, seed=0)
        env = {**os.environ, "BENCH_REPEATS": str(repeats), "RAY_AUTH_MODE": "disabled"}
        loop, on_ray = (_run_in_fresh_process(kind, data.artifacts_path, data.entities_path, env)
                        for kind in ("loop", "ray"))
        media_mb = sum(p.stat().st_size for p in (Path(folder) / "synth" / "media").iterdir()) / 1e6
    assert (loop["report_sha256"], loop["stored_sha256"]) == (on_ray["report_sha256"], on_ray["stored_sha256"]), \
        "the loop and Ray disagree"
    files = loop["rows"]
    loop_rate, ray_rate = files / min(loop["seconds"]), files / min(on_ray["seconds"])
    cold_rate = files / (on_ray["ray_init_s"] + on_ray["seconds"][0])
    return {
        "bench": "ingest_media_manifest",
        "entities": entities,
        "files": files,
        "failed_rows": loop["failed_rows"],
        "unique_blobs": loop["unique_blobs"],
        "media_mb": round(media_mb, 1),
        "cpus": CPUS,
        "loop_s": [round(s, 2) for s in loop["seconds"]],
        "ray_s": [round(s, 2) for s in on_ray["seconds"]],
        "loop_files_per_s": round(loop_rate),
        "ray_files_per_s": round(ray_rate),
        "ray_over_loop": round(ray_rate / loop_rate, 2),
        "one_time": {"ray_init_s": round(on_ray["ray_init_s"], 2), "ray_cold_files_per_s": round(cold_rate),
                     "ray_cold_over_loop": round(cold_rate / loop_rate, 2)},
        "same_report_and_rows": True,
        "loop_peak_rss_mb": round(loop["peak_rss_mb"]),
        "ray_driver_peak_rss_mb": round(on_ray["peak_rss_mb"]),
        "repeats": repeats,
        "goal_met": ray_rate / loop_rate >= 1.7,
    }


def _run_in_fresh_process(kind: str, manifest: Path, entities: Path, env: dict) -> dict:
    with tempfile.TemporaryDirectory() as out:
        result = subprocess.run([sys.executable, __file__, "--worker", kind, str(manifest), str(entities), out],
                                capture_output=True, text=True, check=True, env=env)
    return json.loads(result.stdout.strip().splitlines()[-1])


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
    parser.add_argument("--repeats", type=int, default=None, help="runs of each way (3 for events, 2 for media)")
    parser.add_argument("--media", action="store_true", help="a synthetic media manifest instead of events")
    parser.add_argument("--entities", type=int, default=20_000, help="synthetic entities of the media manifest")
    parser.add_argument("--worker", nargs=4, metavar=("KIND", "EVENTS", "ENTITIES", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, events, entities, out = args.worker
        print(json.dumps(run_worker(kind, Path(events), Path(entities), Path(out))))
        return
    if args.media:
        print(json.dumps(media_main(args.entities, args.repeats or 2)))
        return
    args.repeats = args.repeats or 3
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

"""Benchmark: `dmas score` (Ray Data actors) against the same scoring in one plain process loop.

The store has no media and few events per entity, so building it stays quick (a run is trained on
it once, one epoch). Measured in one run on the same entities: entities/s of `score_batch` on Ray
Data (table reads in each actor included, Ray already started), entities/s of the same
read-encode-score code called in a loop in this process, their ratio, whether the rows are
identical, and peak resident memory (this process and, for Ray, the sum over its descendant
processes, sampled from /proc every 50 ms). Also the most the cores can give without Ray: one plain
process per worker, each scoring its share of the entities with one torch thread as the actors do,
started together and timed from start to the last one's exit (imports and table reads included,
as in the actors). Prints one JSON line:

    .venv/bin/python tests/bench/bench_score.py [--entities 20000] [--workers 2] [--batch-size 256] [--store DIR]
    .venv/bin/python tests/bench/bench_score.py --entities 100000   # and 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/conftest.py's store builder
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests.processes


def _everything() -> dict[str, list[int]]:
    from tests.processes import process_tree

    return {"all": process_tree(os.getpid())}


def _score_share(store_uri: str, run_id: str, versions: str, share: str) -> None:
    """One plain process of the cores' ceiling: score share `k/n` of the sorted entity ids, one thread."""
    import pyarrow as pa

    from dmas.scoring.batch import DEFAULT_BATCH_SIZE, ScoreBatch
    index, count = (int(part) for part in share.split("/"))
    worker = ScoreBatch(store_uri, run_id, json.loads(versions), torch_threads=1)
    ids = sorted(worker.tables.entity_ids())
    ids = pa.table({"entity_id": pa.array(ids[index * len(ids) // count:(index + 1) * len(ids) // count])})
    for start in range(0, ids.num_rows, DEFAULT_BATCH_SIZE):
        worker(ids.slice(start, DEFAULT_BATCH_SIZE))


def _cores_ceiling(store_uri: str, run_id: str, versions: dict[str, int], workers: int) -> float:
    """Seconds for `workers` plain processes, started together, to score every entity between them."""
    started = time.perf_counter()
    processes = [subprocess.Popen([sys.executable, __file__, "--score-share", f"{k}/{workers}", "--store-uri",
                                   store_uri, "--run-id", run_id, "--versions", json.dumps(versions)])
                 for k in range(workers)]
    if any(process.wait() != 0 for process in processes):
        raise SystemExit("a ceiling process failed")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--store", help="reuse (or build once into) this folder")
    parser.add_argument("--score-share", help=argparse.SUPPRESS)  # one process of the cores' ceiling
    parser.add_argument("--store-uri", help=argparse.SUPPRESS)
    parser.add_argument("--run-id", help=argparse.SUPPRESS)
    parser.add_argument("--versions", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.score_share:
        _score_share(args.store_uri, args.run_id, args.versions, args.score_share)
        return

    from media_free_store import media_free_store

    from dmas.runtime import RaySettings, ensure_ray
    from dmas.scoring.batch import compute_scores, score_batch, scores_table
    from tests.processes import PeakMemory

    started = time.perf_counter()
    root, store, run_id = media_free_store(args.store, "dmas-bench-score-", args.entities)
    prepared_s = time.perf_counter() - started

    ray_settings = RaySettings(num_cpus=2, include_dashboard=False)
    ensure_ray(ray_settings)
    with PeakMemory(_everything) as ray_memory:
        summary = score_batch(store, run_id, workers=args.workers, batch_size=args.batch_size, ray=ray_settings,
                              progress=False)
    stored = scores_table(store).read(version=summary["scores_version"])
    import ray

    ray.shutdown()

    versions, ids = summary["store_versions"], stored["entity_id"].to_pylist()
    before_loop_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with PeakMemory(_everything) as loop_memory:
        loop_started = time.perf_counter()
        looped = compute_scores(store, run_id, versions, ids, batch_size=args.batch_size, use_ray=False)
        loop_s = time.perf_counter() - loop_started
    loop_rate = len(ids) / loop_s
    ceiling_rate = len(ids) / _cores_ceiling(store.uri, run_id, versions, args.workers)
    print(json.dumps({
        "entities": len(ids), "workers": args.workers, "batch_size": args.batch_size, "cpus": os.cpu_count(),
        "prepare_s": round(prepared_s, 1),
        "ray_data": {"seconds": summary["seconds"], "entities_per_s": summary["entities_per_s"],
                     "peak_rss_mb_all_processes": round(ray_memory.peak["all"])},
        "plain_loop": {"seconds": round(loop_s, 2), "entities_per_s": round(loop_rate, 1),
                       "peak_rss_mb": round(loop_memory.peak["all"]), "rss_mb_before": round(before_loop_mb)},
        "plain_processes": {"processes": args.workers, "entities_per_s": round(ceiling_rate, 1)},
        "ratio_ray_over_loop": round(summary["entities_per_s"] / loop_rate, 2),
        "ratio_plain_processes_over_loop": round(ceiling_rate / loop_rate, 2),
        "ray_share_of_plain_processes": round(summary["entities_per_s"] / ceiling_rate, 2),
        "identical_rows": looped.equals(stored.select(looped.column_names).cast(looped.schema)),
        # code_version hashes the dmas sources: an edit between the two passes changes only that column
        "identical_scores": looped.drop_columns(["code_version"]).equals(
            stored.select(looped.column_names).cast(looped.schema).drop_columns(["code_version"])),
        "store": str(root),
    }), flush=True)


if __name__ == "__main__":
    main()

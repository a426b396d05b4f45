"""Benchmark: one /predict call with many entity ids (the original guide's ETL call), over HTTP on 127.0.0.1.

For each request size: wall time of the call (best of --repeats), response bytes, and the peak
resident memory of the ingress and Predictor replica processes while it ran (sampled from /proc
every 20 ms, processes found among this script's own descendants). The store has no media and few
events per entity, so building it stays quick. Prints one JSON line:

    .venv/bin/python tests/bench/bench_predict_ids.py [--entities 50000] [--sizes 10000 50000] [--store DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/conftest.py's store builder
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests.processes

REPLICA = "ServeReplica:dmas:DmasApi"


def _replica_pids() -> dict[str, list[int]]:
    """The dmas ingress replicas among this process's descendants."""
    from tests.processes import process_tree

    pids: dict[str, list[int]] = {}
    for pid in process_tree(os.getpid()):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if REPLICA in title:
            pids.setdefault("DmasApi", []).append(pid)
    return pids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=50_000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--explanations", action="store_true", help="ask for explanations (slow: IG per entity)")
    parser.add_argument("--store", help="reuse (or build once into) this folder")
    args = parser.parse_args()

    import httpx
    import ray
    from media_free_store import media_free_store
    from ray import serve

    from dmas.api.network import free_loopback_port
    from dmas.api.security import new_key
    from dmas.config import load_settings
    from serve.app import build_app
    from tests.processes import PeakMemory

    started = time.perf_counter()
    root, store, _ = media_free_store(args.store, "dmas-bench-ids-", args.entities)
    key, entry = new_key("bench", "viewer")
    port = free_loopback_port()
    settings = load_settings(store_uri=store.uri, serve={
        "port": port, "api_keys": [entry.model_dump()], "audit_log": f"{root}/audit.jsonl",
        "max_entities_per_request": max(args.sizes), "max_body_bytes": 64 * 1024**2})
    prepared_s = time.perf_counter() - started
    ids = [f"ent_{index:06d}" for index in range(args.entities)]

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=200 * 1024**2)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app(settings), name="dmas", route_prefix="/")
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"x-api-key": key}, timeout=600)
    client.post("/predict", json={"entity_ids": ids[:10]}).raise_for_status()  # load the run
    results = []
    for size in args.sizes:
        body = {"entity_ids": ids[:size], "explanations": args.explanations}
        times = []
        with PeakMemory(_replica_pids) as memory:
            for _ in range(args.repeats):
                began = time.perf_counter()
                response = client.post("/predict", json=body)
                times.append(time.perf_counter() - began)
                response.raise_for_status()
        results.append({"ids": size, "best_s": round(min(times), 2), "worst_s": round(max(times), 2),
                        "response_mb": round(len(response.content) / 1024**2, 1),
                        "rss_before_mb": {name: round(value) for name, value in memory.before.items()},
                        "rss_peak_mb": {name: round(value) for name, value in memory.peak.items()}})
    client.close()
    serve.shutdown()
    ray.shutdown()
    print(json.dumps({"bench": "predict_ids", "entities": args.entities, "prepare_s": round(prepared_s, 1),
                      "results": results}))


if __name__ == "__main__":
    main()

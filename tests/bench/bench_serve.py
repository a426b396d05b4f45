"""Benchmark: the HTTP service against the in-process model call, in one run, on 127.0.0.1 only.

(a) in-process: the model's forward for one entity; (b) HTTP /predict for one entity, sequential
(p50/p99); (c) HTTP /predict with 8 concurrent clients (entities/s); (d) /explain for one entity
(p50). Reports the HTTP overhead ratio b/a, then runs a fixed-rate load (default 60 s at 20 req/s,
bounded in count and time) and counts errors. Prints one JSON line:

    .venv/bin/python tests/bench/bench_serve.py [--entities 300] [--load-seconds 60] [--rate 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/conftest.py's store builder


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def timed_calls(call, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def fixed_rate_load(client_factory, entity_ids: list[str], seconds: float, rate: float) -> dict:
    """Send `rate` requests/s for `seconds` (at most rate*seconds requests), count errors and latencies."""
    total = int(seconds * rate)
    latencies, errors = [], []
    lock = threading.Lock()
    start = time.perf_counter()

    def one(index: int) -> None:
        delay = start + index / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        client = client_factory()
        began = time.perf_counter()
        try:
            response = client.post("/predict", json={"entity_ids": [entity_ids[index % len(entity_ids)]]})
            ok = response.status_code == 200
        except Exception as exc:  # a refused or timed-out request is an error of the run, not a crash
            ok, response = False, exc
        with lock:
            latencies.append((time.perf_counter() - began) * 1000)
            if not ok:
                errors.append(str(getattr(response, "status_code", response)))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, range(total)))
    elapsed = time.perf_counter() - start
    return {"requests": total, "errors": len(errors), "error_samples": errors[:3], "seconds": round(elapsed, 1),
            "achieved_rate": round(total / elapsed, 1), "p50_ms": round(percentile(latencies, 0.5), 2),
            "p99_ms": round(percentile(latencies, 0.99), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=300)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--load-seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=20)
    args = parser.parse_args()

    import httpx
    import ray
    import torch
    from conftest import build_synthetic_store
    from ray import serve

    from dmas.api.network import free_loopback_port
    from dmas.api.security import new_key
    from dmas.config import load_settings
    from dmas.scoring.bundle import RunBundle
    from dmas.train.config import TrainConfig
    from dmas.train.loop import to_torch
    from dmas.train.runner import train_run
    from serve.app import build_app

    with tempfile.TemporaryDirectory() as folder:
        store = build_synthetic_store(Path(folder), n_entities=args.entities, seed=0)
        key, entry = new_key("bench", "viewer")
        port = free_loopback_port()
        settings = load_settings(store_uri=store.uri, serve={"port": port, "api_keys": [entry.model_dump()],
                                                            "audit_log": f"{folder}/audit.jsonl"})
        run = train_run(store, settings, TrainConfig(epochs=5), use_ray=False)
        bundle = RunBundle.load(store, run["run_id"])
        inputs = to_torch(bundle.inputs_for(1))
        torch.set_num_threads(1)
        with torch.no_grad():
            in_process = timed_calls(lambda: bundle.model(inputs), args.requests)

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=200 * 1024**2)
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_app(settings), name="dmas", route_prefix="/")
        base = f"http://127.0.0.1:{port}"
        ids = bundle.predictions["entity_id"].to_pylist()
        local = threading.local()

        def client() -> httpx.Client:
            if not hasattr(local, "client"):
                local.client = httpx.Client(base_url=base, headers={"x-api-key": key}, timeout=30)
            return local.client

        for entity in ids[:20]:  # warm the replicas (run bundle load, first explanation)
            client().post("/predict", json={"entity_ids": [entity]})
        client().post("/explain", json={"entity_ids": [ids[0]]})
        sequential = timed_calls(lambda: client().post("/predict", json={"entity_ids": [ids[1]]}), args.requests)
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda i: client().post("/predict", json={"entity_ids": [ids[i % len(ids)]]}),
                          range(args.requests)))
        concurrent_rate = args.requests / (time.perf_counter() - started)
        explain = timed_calls(lambda: client().post("/explain", json={"entity_ids": [ids[2]]}), 20)
        load = fixed_rate_load(client, ids, args.load_seconds, args.rate)
        serve.shutdown()
        ray.shutdown()
    print(json.dumps({
        "bench": "serve",
        "in_process_forward_p50_ms": round(statistics.median(in_process), 3),
        "http_predict_p50_ms": round(statistics.median(sequential), 2),
        "http_predict_p99_ms": round(percentile(sequential, 0.99), 2),
        "http_overhead_ratio_b_over_a": round(statistics.median(sequential) / statistics.median(in_process), 1),
        "http_predict_8_clients_entities_per_s": round(concurrent_rate, 1),
        "explain_p50_ms": round(statistics.median(explain), 1),
        "fixed_rate_load": load,
    }))


if __name__ == "__main__":
    main()

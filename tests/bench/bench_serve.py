"""Benchmark: live scoring over HTTP on stores of growing size, against a trivial Serve deployment in the same run.

One store grows through `--sizes` (default 10k, 100k entities; add 1000000 for the issue's 1M), with
10 events and 2 interactions per entity, and one run trained on its first size serves all of them.
At each size, on 127.0.0.1, sequentially: POST /predict for one stored entity (p50/p99), for one
inline entity, POST /explain for one entity, and a trivial Serve deployment's answer to the same
client (the floor: proxy + HTTP). Also measured at each size, in this process: the online view's
build time and memory; at the largest size: absorbing a commit of 1,000 events; and freshness (a
commit made through the store until /predict answers from it), p50 and max over 10 commits.
Prints one JSON line:

    flock /tmp/dmas-cpu.lock .venv/bin/python tests/bench/bench_serve.py [--sizes 10000,100000,1000000]

The bulk rows are appended with deltalake directly (a benchmark's store, not an ingest benchmark:
see bench_ingest.py); every commit the measurements make goes through dmas' ingest.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

EVENTS_PER_ENTITY, LINKS_PER_ENTITY = 10, 2
START = pd.Timestamp("2024-01-01", tz="UTC").value // 1000  # microseconds


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def timed(call, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        response = call()
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
    return times


def summary(values: list[float]) -> dict:
    return {"p50_ms": round(statistics.median(values), 2), "p99_ms": round(percentile(values, 0.99), 2)}


def entity_rows(first: int, last: int, rng: np.random.Generator) -> dict[str, pa.Table]:
    """Entities first..last-1 with their events and interactions (with earlier entities only)."""
    ids = np.array([f"e{i:07d}" for i in range(first, last)], dtype=object)
    n = len(ids)
    age, income = rng.integers(18, 90, n), rng.normal(50_000, 15_000, n)
    target = (income > 50_000).astype(int)
    attributes = [json.dumps({"age": int(a), "income": round(float(b), 2), "target_binary": int(t),
                              "target_regression": round(float(b) / 1000, 3), "target_ranking": int(a) % 5},
                             separators=(",", ":")) for a, b, t in zip(age, income, target)]
    owner = np.repeat(ids, EVENTS_PER_ENTITY)
    times = START + rng.integers(0, 180 * 86_400, n * EVENTS_PER_ENTITY) * 1_000_000
    events = pa.table({"entity_id": pa.array(owner, pa.string()),
                       "timestamp": pa.array(times, pa.timestamp("us", tz="UTC")),
                       "event_type": pa.array(np.array(["view", "click", "purchase"])[rng.integers(0, 3, len(owner))]),
                       "event_value": pa.array(rng.gamma(2.0, 10.0, len(owner))),
                       "event_metadata": pa.nulls(len(owner), pa.string())})
    src = np.repeat(ids, LINKS_PER_ENTITY)
    dst = np.array([f"e{j:07d}" for j in rng.integers(0, max(first, 1), len(src))], dtype=object) if first else \
        np.roll(src, 1)
    links = pa.table({"src_entity_id": pa.array(src, pa.string()), "dst_entity_id": pa.array(dst, pa.string()),
                      "interaction_type": pa.array(np.array(["friend", "paid"])[rng.integers(0, 2, len(src))]),
                      "interaction_value": pa.array(rng.random(len(src))),
                      "timestamp": pa.array(START + rng.integers(0, 180 * 86_400, len(src)) * 1_000_000,
                                            pa.timestamp("us", tz="UTC")),
                      "metadata": pa.nulls(len(src), pa.string())})
    return {"entities": pa.table({"entity_id": pa.array(ids, pa.string()), "attributes": pa.array(attributes)}),
            "events": events, "interactions": links}


def grow(store, first: int, last: int, seed: int) -> None:
    from deltalake import write_deltalake

    rng = np.random.default_rng([seed, first])
    step = 200_000
    for start in range(first, last, step):
        for name, rows in entity_rows(start, min(start + step, last), rng).items():
            table = store.table(name)
            write_deltalake(table.uri, rows.cast(table.spec.schema), mode="append")


def view_cost(store) -> dict:
    from dmas.online import OnlineView
    from tests.processes import rss_mb

    gc.collect()
    before = rss_mb(os.getpid())
    started = time.perf_counter()
    view = OnlineView(store)
    seconds = time.perf_counter() - started
    return {"view": view, "build_s": round(seconds, 2), "memory_mb": round(rss_mb(os.getpid()) - before)}


def absorb_cost(store, view, folder: Path, events: int = 1000) -> dict:
    from dmas.ingest.tabular import ingest_table

    ids = view.entity_ids()
    rng = np.random.default_rng(7)
    path = folder / "commit.csv"
    pd.DataFrame({"entity_id": np.array(ids)[rng.integers(0, len(ids), events)],
                  "timestamp": [f"2025-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z" for i in range(events)],
                  "event_type": "purchase", "event_value": rng.random(events)}).to_csv(path, index=False)
    ingest_table(store, "events", path)
    started = time.perf_counter()
    view.refresh()
    return {"events": events, "absorb_ms": round((time.perf_counter() - started) * 1000, 1)}


def freshness(store, client, folder: Path, entity: str, commits: int = 10) -> dict:
    from dmas.ingest.tabular import ingest_table

    seen = []
    for i in range(commits):
        version = client.post("/predict", json={"entity_ids": [entity]}).json()["store_versions"]["events"]
        path = folder / f"fresh{i}.csv"
        pd.DataFrame({"entity_id": [entity], "timestamp": [f"2026-01-01T00:00:{i:02d}Z"],
                      "event_type": ["purchase"], "event_value": [float(i)]}).to_csv(path, index=False)
        ingest_table(store, "events", path)
        committed = time.perf_counter()
        while client.post("/predict", json={"entity_ids": [entity]}).json()["store_versions"]["events"] == version:
            time.sleep(0.01)
        seen.append((time.perf_counter() - committed) * 1000)
    return {"commits": commits, "p50_ms": round(statistics.median(seen)), "max_ms": round(max(seen))}


def measure(client, ids: list[str], requests: int) -> dict:
    """Sequential latencies of one stored entity, one inline entity, /explain, and the trivial deployment."""
    inline = {"attributes": {"age": 40, "income": 51000.0},
              "events": [{"timestamp": "2024-03-01T00:00:00Z", "event_type": "purchase", "event_value": 20.0}],
              "interactions": [{"dst_entity_id": ids[0], "interaction_type": "friend",
                                "timestamp": "2024-03-01T00:00:00Z"}]}
    for entity in ids[:20]:  # warm: the run loads on first use
        client.post("/predict", json={"entity_ids": [entity]})
    client.post("/explain", json={"entity_ids": [ids[0]]})
    turn = iter(range(10**9))
    stored = timed(lambda: client.post("/predict", json={"entity_ids": [ids[next(turn) % len(ids)]]}), requests)
    trivial = timed(lambda: client.post("/trivial", json={"entity_ids": [ids[0]]}), requests)
    walk_in = timed(lambda: client.post("/predict", json={"entities": [inline]}), requests)
    explain = timed(lambda: client.post("/explain", json={"entity_ids": [ids[next(turn) % len(ids)]]}), 40)
    return {"predict_stored": summary(stored), "predict_inline": summary(walk_in), "explain": summary(explain),
            "trivial_serve": summary(trivial),
            "ratio_stored_to_trivial_p50": round(statistics.median(stored) / statistics.median(trivial), 2),
            "ratio_inline_to_trivial_p50": round(statistics.median(walk_in) / statistics.median(trivial), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="store sizes in entities, growing")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    import httpx
    import ray
    import torch
    from ray import serve

    from dmas.api.network import free_loopback_port
    from dmas.api.security import new_key
    from dmas.config import load_settings
    from dmas.store import Store
    from dmas.train.config import TrainConfig
    from dmas.train.runner import train_run
    from serve.app import build_app

    @serve.deployment(ray_actor_options={"num_cpus": 0.25})
    class Trivial:
        """The floor: Serve's proxy and HTTP, no work."""

        async def __call__(self, request) -> dict:
            await request.body()
            return {"ok": True}

    torch.set_num_threads(1)
    results, absorbed, fresh = [], None, None
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        store = Store(folder / "store")
        key, entry = new_key("bench", "viewer")
        port = free_loopback_port()
        settings = load_settings(store_uri=store.uri, serve={"port": port, "api_keys": [entry.model_dump()],
                                                            "audit_log": f"{folder}/audit.jsonl"})
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=300 * 1024**2)
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(Trivial.bind(), name="trivial", route_prefix="/trivial")
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"x-api-key": key}, timeout=120)
        run_id, have = None, 0
        for size in sizes:
            grow(store, have, size, seed=1)
            have = size
            if run_id is None:
                run_id = train_run(store, settings, TrainConfig(epochs=2), use_ray=False)["run_id"]
            view = view_cost(store)
            if size == sizes[-1]:
                absorbed = absorb_cost(store, view["view"], folder)
            del view["view"]
            gc.collect()
            serve.run(build_app(settings), name="dmas", route_prefix="/")  # a fresh replica builds its view
            ids = [f"e{i:07d}" for i in np.random.default_rng(size).integers(0, size, 50)]
            timings = measure(client, ids, args.requests)
            if size == sizes[-1]:
                fresh = freshness(store, client, folder, ids[1])
            results.append({"entities": size, "events": size * EVENTS_PER_ENTITY, **timings, "online_view": view})
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
            serve.delete("dmas")
        client.close()
        serve.shutdown()
        ray.shutdown()
    print(json.dumps({"bench": "serve", "run_id": run_id, "sizes": results, "absorb_commit_at_largest": absorbed,
                      "freshness_at_largest": fresh, "refresh_s": settings.serve.refresh_s}))


if __name__ == "__main__":
    main()

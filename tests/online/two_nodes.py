"""Two Ray nodes on this machine (ray.cluster_utils.Cluster), one dmas replica pinned to each.

Run by tests/online/test_multinode.py in its own process (a test session already has its local Ray).
Checks, printing one JSON line: both replicas answer the same bytes, before and after a commit made
through the store; then the worker node is removed while a client keeps asking, retrying what fails,
and no request is lost.

    .venv/bin/python tests/online/two_nodes.py WORKDIR
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
# the proxy runs on the head node only; without this it sends every request to the head's own replica
os.environ["RAY_SERVE_PROXY_PREFER_LOCAL_NODE_ROUTING"] = "0"
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

ENTITY = "ent_000003"


def answers_by_replica(client, entity: str, wanted: int, version_at_least: int = 0, tries: int = 400) -> dict:
    """One answer from each of `wanted` replicas at events version >= `version_at_least`."""
    found: dict[str, dict] = {}
    for _ in range(tries):
        response = client.post("/predict", json={"entity_ids": [entity]})
        body = response.json()
        if response.status_code == 200 and body["store_versions"]["events"] >= version_at_least:
            prediction = body["predictions"][0]
            found[response.headers["x-dmas-replica"]] = {key: prediction[key] for key in (
                "regression", "probability", "ranking_score", "embedding")} | {
                "events_version": body["store_versions"]["events"]}
        if len(found) == wanted:
            return found
        time.sleep(0.02)
    raise AssertionError(f"only {len(found)} of {wanted} replicas answered at events version >= {version_at_least}")


def keep_asking(client, stop: threading.Event, outcomes: list, expected: dict) -> None:
    """Requests until `stop`; each one retried (up to 30 s) until it succeeds; records what it got."""
    while not stop.is_set():
        deadline, attempts = time.monotonic() + 30, 0
        while True:
            attempts += 1
            try:
                response = client.post("/predict", json={"entity_ids": [ENTITY]})
                if response.status_code == 200:
                    got = response.json()["predictions"][0]["probability"]
                    outcomes.append({"ok": got == expected["probability"], "attempts": attempts})
                    break
            except Exception:  # the node went away mid-request: retry, as a client of a cluster should
                pass
            if time.monotonic() > deadline:
                outcomes.append({"ok": False, "attempts": attempts, "lost": True})
                break
            time.sleep(0.1)


def main(workdir: Path) -> dict:
    import httpx
    import ray
    from ray import serve
    from ray.cluster_utils import Cluster

    from dmas.api.network import free_loopback_port
    from dmas.api.security import new_key
    from dmas.config import load_settings
    from dmas.ingest.tabular import ingest_table
    from dmas.train.config import TrainConfig
    from dmas.train.runner import train_run
    from serve.app import build_app
    from tests.conftest import build_synthetic_store

    store = build_synthetic_store(workdir, n_entities=60, seed=4)
    key, entry = new_key("cluster", "viewer")
    port = free_loopback_port()
    settings = load_settings(store_uri=store.uri, serve={
        "port": port, "api_keys": [entry.model_dump()], "api_replicas": 2, "max_replicas_per_node": 1,
        "refresh_s": 0.5, "audit_log": str(workdir / "audit.jsonl")})
    train_run(store, settings, TrainConfig(epochs=1), use_ray=False)

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    worker = cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False)
    cluster.wait_for_nodes()
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port, "location": "HeadOnly"})
        serve.run(build_app(settings), name="dmas", route_prefix="/")
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"x-api-key": key}, timeout=10)
        before = answers_by_replica(client, ENTITY, 2)
        nodes = sorted({name.split("@")[1] for name in before})
        first = next(iter(before.values()))
        events = workdir / "late.csv"
        events.write_text("entity_id,timestamp,event_type,event_value\n"
                          f"{ENTITY},2031-01-01T00:00:00Z,purchase,999\n")
        ingest_table(store, "events", events)
        after = answers_by_replica(client, ENTITY, 2, version_at_least=first["events_version"] + 1)
        same_before = len({json.dumps(answer, sort_keys=True) for answer in before.values()}) == 1
        same_after = len({json.dumps(answer, sort_keys=True) for answer in after.values()}) == 1
        expected = next(iter(after.values()))

        stop, outcomes = threading.Event(), []
        asker = threading.Thread(target=keep_asking, args=(client, stop, outcomes, expected))
        asker.start()
        time.sleep(1.0)
        cluster.remove_node(worker)
        time.sleep(8.0)
        stop.set()
        asker.join()
        client.close()
        return {"replicas_on_nodes": len(nodes), "same_bytes_before_commit": same_before,
                "same_bytes_after_commit": same_after,
                "changed_by_commit": expected["probability"] != first["probability"],
                "requests_during_node_loss": len(outcomes), "lost": sum(1 for o in outcomes if o.get("lost")),
                "wrong": sum(1 for o in outcomes if not o["ok"] and not o.get("lost")),
                "retried": sum(1 for o in outcomes if o["attempts"] > 1)}
    finally:
        serve.shutdown()
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))

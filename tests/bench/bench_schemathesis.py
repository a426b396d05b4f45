"""Fuzz the running HTTP service from its own /openapi.json with schemathesis, on 127.0.0.1 only.

Starts Ray and the Serve application over a small trained synthetic store, runs `st run` against
`/openapi.json` with an admin key for `--seconds` (default 180), half the run and entity ids drawn
from the real ones, and prints one JSON line: cases sent, answers by status, failing checks by kind
and one sample request per distinct failure. Exits 1 on any 5xx.

`/demo/preload`, `/train` and `/train/async` are left out by default: their work grows with what the request
asks for (100k entities, hundreds of epochs) by design, and each would hold the two cores for
minutes; `--all-operations` fuzzes them too.

    .venv/bin/python tests/bench/bench_schemathesis.py [--seconds 180] [--entities 60] [--workers 2]
"""

from __future__ import annotations

import argparse
import base64
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/conftest.py's store builder

SLOW_BY_DESIGN = "^/(demo/preload|train|train/async)$"


def known_ids_config(run_id: str, entity_ids: list[str]) -> str:
    """schemathesis.toml: half the generated run and entity ids are real ones, so cases reach past the 404s."""
    return "\n".join([
        "[dictionaries.runs]", f"values = {json.dumps([run_id])}",
        "[dictionaries.entities]", f"values = {json.dumps(entity_ids)}",
        "[parameters]",
        '"path.run_id" = { dictionary = "runs", probability = 0.5 }',
        '"body.run_id" = { dictionary = "runs", probability = 0.5 }',
        '"path.entity_id" = { dictionary = "entities", probability = 0.5 }',
        '"body.entity_ids.[*]" = { dictionary = "entities", probability = 0.5 }', ""])


def schemathesis_command(url: str, key: str, args: argparse.Namespace, report: Path, config: Path) -> list[str]:
    command = [str(Path(sys.executable).with_name("st")), "--config-file", str(config), "run", f"{url}/openapi.json",
               "--header", f"X-API-Key: {key}", "--max-time", str(args.seconds), "--workers", str(args.workers),
               "--request-timeout", "60", "--seed", str(args.seed), "--generation-database", "none",
               "--report", "ndjson", "--report-ndjson-path", str(report), "--no-color"]
    return command if args.all_operations else command + ["--exclude-path-regex", SLOW_BY_DESIGN]


def summarize(report: Path) -> dict:
    """Cases, answers by status, failing checks by kind (and the distinct operation/title pairs) from
    schemathesis' NDJSON events; one sample request per distinct failure."""
    statuses, failures, distinct = collections.Counter(), collections.Counter(), {}
    for line in report.read_text().splitlines():
        recorder = json.loads(line).get("ScenarioFinished", {}).get("recorder", {})
        interactions = recorder.get("interactions", {})
        for interaction in interactions.values():
            statuses[str((interaction.get("response") or {}).get("status_code", "no answer"))] += 1
        for case_id, checks in recorder.get("checks", {}).items():
            for check in checks:
                if check.get("status") != "failure":
                    continue
                failures[check["name"]] += 1
                failure = (check.get("failure_info") or {}).get("failure", {})
                key = (check["name"], failure.get("operation"), failure.get("title"))
                if key not in distinct:
                    interaction = interactions.get(case_id, {})
                    request, response = interaction.get("request", {}), interaction.get("response") or {}
                    distinct[key] = {"check": key[0], "operation": key[1], "title": key[2],
                                     "message": (failure.get("message") or "")[:300],
                                     "request": f"{request.get('method')} {request.get('uri')}",
                                     "request_body": _text(request.get("body")),
                                     "status": response.get("status_code"), "answer": _text(response.get("content"))}
    return {"cases": sum(statuses.values()), "statuses": dict(sorted(statuses.items())),
            "failing_checks_by_kind": dict(failures), "distinct_failures": len(distinct),
            "server_errors_5xx": sum(count for status, count in statuses.items() if status.startswith("5")),
            "failures": list(distinct.values())}


def _text(payload, limit: int = 300) -> str | None:
    """A recorded body (base64 in the NDJSON) as text, cut to `limit` characters."""
    if isinstance(payload, dict) and "$base64" in payload:
        payload = base64.b64decode(payload["$base64"]).decode("utf-8", "replace")
    return None if payload is None else str(payload)[:limit]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=180)
    parser.add_argument("--entities", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--all-operations", action="store_true", help="fuzz the slow-by-design routes too")
    parser.add_argument("--keep-report", help="copy schemathesis' NDJSON events here")
    args = parser.parse_args()

    import ray
    from conftest import build_synthetic_store
    from ray import serve

    from dmas.api.network import free_loopback_port
    from dmas.api.security import new_key
    from dmas.config import load_settings
    from dmas.train.config import TrainConfig
    from dmas.train.runner import train_run
    from serve.app import build_app

    with tempfile.TemporaryDirectory(prefix="dmas-st-") as folder:
        store = build_synthetic_store(Path(folder), n_entities=args.entities, seed=0)
        key, entry = new_key("fuzzer", "admin")
        port = free_loopback_port()
        settings = load_settings(store_uri=store.uri, serve={"host": "127.0.0.1", "port": port, "api_keys": [
            entry.model_dump()], "audit_log": f"{folder}/audit.jsonl"})
        run = train_run(store, settings, TrainConfig(epochs=2), use_ray=False)
        config = Path(folder) / "schemathesis.toml"
        entity_ids = store.table("entities").read(columns=["entity_id"])["entity_id"].to_pylist()
        config.write_text(known_ids_config(run["run_id"], entity_ids[:10]))
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=200 * 1024**2,
                 _temp_dir=tempfile.mkdtemp(prefix="dmasst", dir="/tmp"))
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_app(settings), name="dmas", route_prefix="/")
        report = Path(folder) / "events.ndjson"
        command = schemathesis_command(f"http://127.0.0.1:{port}", key, args, report, config)
        started = time.monotonic()
        finished = subprocess.run(command, capture_output=True, text=True, cwd=folder)  # its caches stay there
        elapsed = time.monotonic() - started
        serve.shutdown()
        ray.shutdown()
        if args.keep_report:
            Path(args.keep_report).write_bytes(report.read_bytes())
        summary = summarize(report)
    print(finished.stdout[-20_000:], file=sys.stderr)
    print(json.dumps({"bench": "schemathesis", "seconds": round(elapsed, 1), "st_exit": finished.returncode,
                      "command": " ".join(command).replace(key, "<admin key>"), **summary}))
    return 1 if summary["server_errors_5xx"] else 0


if __name__ == "__main__":
    sys.exit(main())

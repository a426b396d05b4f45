"""The main job, end to end on the embedded default: synthetic data -> store -> features -> train ->
reproduce -> serve predict/explain/query, live scoring of new events and inline entities, a receipt
verified, an upload job over HTTP, the cascade as an HTTP job with its progress streamed -> batch
scoring (`dmas score`) -> export -> collapse checks -> forget.

Each capability of dmas adds its step here, so one command shows the whole product working.
Progress lines go to `say`; the return value is the machine-readable summary.
"""

from __future__ import annotations

import json
import secrets
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from dmas.config import Settings
from dmas.features.pipeline import extract_pending
from dmas.ingest.tabular import ingest_table
from dmas.operations import ingest_synthetic
from dmas.runtime import ensure_ray
from dmas.scoring.batch import score_batch
from dmas.store import Store
from dmas.store.forget import forget_entity
from dmas.synth import generate
from dmas.train.config import TrainConfig
from dmas.train.reproduce import reproduce
from dmas.train.runner import train_run


def run_end_to_end(settings: Settings, *, workdir: str | Path = "dmas_demo", n_entities: int = 300,
                   say: Callable[[str], None] = lambda _: None) -> dict:
    """Generate synthetic inputs, ingest them (twice, to show idempotency), extract features, train,
    reproduce, export, forget."""
    workdir = Path(workdir)
    summary: dict = {"store": settings.store_uri}

    inputs = workdir / "input"
    if inputs.exists():
        shutil.rmtree(inputs)  # the demo's own scratch folder; regenerating gives the same bytes
    data = generate(inputs, n_entities=n_entities, seed=settings.seed)
    say(f"synth: {data.n_entities} entities, {data.n_events} events, {data.n_interactions} interactions, "
        f"media {dict(data.artifacts_by_type)} ({data.n_duplicate_media} byte-identical duplicates) "
        f"-> {data.out_dir}")
    summary["synth"] = {"entities": data.n_entities, "events": data.n_events, "interactions": data.n_interactions,
                        "artifacts": dict(data.artifacts_by_type), "duplicate_media": data.n_duplicate_media}

    store = Store(settings.store_uri)
    summary["ingest"] = ingest_synthetic(store, settings, data, say)
    reingest = ingest_table(store, "events", data.events_path, limits=settings.limits)
    say(f"re-ingest events: {reingest['inserted_rows']} inserted, {reingest['unchanged_rows']} unchanged "
        f"(idempotent), version stays {reingest['version']}")
    summary["reingest_events_inserted"] = reingest["inserted_rows"]

    features = extract_pending(store, settings)
    say(f"features: {features['extracted']} blobs extracted with Ray Data in {features['tasks']} tasks, "
        f"{features['failed']} failed, feature_version {features['feature_version'][:12]}…, "
        f"features table version {features['version']}")
    again = extract_pending(store, settings)
    say(f"features again: {again['pending']} pending ({again.get('message', '')})")
    summary["features"] = {key: features[key] for key in ("feature_version", "extracted", "failed", "tasks", "version")}

    snapshot = store.snapshot()
    say(f"snapshot (the data manifest training pins): {snapshot}")
    summary["snapshot"] = snapshot

    summary["train"] = _train_and_reproduce(store, settings, say)
    summary["serve"] = _serve_and_call(settings, workdir, data.interactions_path, say)
    summary["score"] = _score_in_batch(store, settings, summary["train"]["run_id"], say)

    export_path = workdir / "exports" / f"events_v{snapshot['events']}.parquet"
    export_path.parent.mkdir(parents=True, exist_ok=True)
    rows = store.table("events").export_parquet(str(export_path), snapshot["events"])
    say(f"export: events version {snapshot['events']} -> {export_path} ({rows} rows)")
    summary["export"] = {"path": str(export_path), "rows": rows}

    summary["collapse_check"] = _collapse_checks(workdir / "quality", settings.seed, say)

    forgotten = _forget_one(store, say)
    summary["forget"] = forgotten
    summary["snapshot_after_forget"] = store.snapshot()
    return summary


def _train_and_reproduce(store: Store, settings: Settings, say: Callable[[str], None]) -> dict:
    """Train with Ray Train on the pinned snapshot, show the lift over baselines, then prove the bytes."""
    ensure_ray(settings.ray)
    run = train_run(store, settings, TrainConfig(seed=settings.seed))
    test, linear = run["metrics"]["test"], run["metrics"]["baselines"]["attributes_linear"]
    verb = "reused (same data, config and code)" if run["reused"] else "trained with Ray Train"
    say(f"train: run {run['run_id'][:12]}… {verb}, {run['status']}, model_sha256 {run['model_sha256'][:12]}…")
    for task, metric in (("regression", "r2"), ("classification", "auc_roc"), ("ranking", "spearman")):
        say(f"  test {task} {metric}: model {_fmt(test[task].get(metric))} vs attribute-only linear "
            f"{_fmt(linear[task].get(metric))}")
    check = reproduce(store, run["run_id"], ray=settings.ray)
    say(f"reproduce: model identical={check['identical_model']}, test predictions identical="
        f"{check['identical_test_predictions']}, differences={check['differences'] or 'none'}")
    return {"run_id": run["run_id"], "status": run["status"], "model_sha256": run["model_sha256"],
            "identical_on_reproduce": check["identical_model"] and check["identical_test_predictions"]}


def _score_in_batch(store: Store, settings: Settings, run_id: str, say: Callable[[str], None]) -> dict:
    """`dmas score`: every entity with the run on Ray Data into the `scores` table, and one row's receipt checked."""
    from dmas.scoring.batch import scores_receipt, scores_table
    from dmas.scoring.receipts import verify

    scored = score_batch(store, run_id, ray=settings.ray, progress=False)
    say(f"score: {scored['rows']} entities scored with Ray Data ({scored['entities_per_s']:.0f}/s) into the scores "
        f"table, version {scored['scores_version']} (one commit), at store versions {scored['store_versions']}")
    row = scores_table(store).read(version=scored["scores_version"]).slice(0, 1).to_pylist()[0]
    checked = verify(store, scores_receipt(row))
    say(f"verify: the scores row of {row['entity_id']} -> {checked['status']}")
    return {key: scored[key] for key in ("rows", "scores_version", "entities_per_s")} | {"receipt": checked["status"]}


def _serve_and_call(settings: Settings, workdir: Path, interactions_path: Path, say: Callable[[str], None]) -> dict:
    """Start the Serve application on loopback with a fresh viewer key and call it as a client would."""
    from ray import serve

    from dmas.api.network import free_loopback_port
    from dmas.api.security import new_key
    from serve.app import build_app

    key, entry = new_key("demo", "viewer")
    admin_key, admin_entry = new_key("demo-admin", "admin")
    port = free_loopback_port()
    served = settings.model_copy(update={"serve": settings.serve.model_copy(update={
        "host": "127.0.0.1", "port": port, "api_keys": [entry.model_dump(), admin_entry.model_dump()],
        "audit_log": str(workdir / "audit" / "serve.jsonl")})})
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app(served), name="dmas", route_prefix="/")
    try:
        client = _JsonClient(f"http://127.0.0.1:{port}", key)
        predicted = client.call("POST", "/predict", {"entity_ids": ["ent_000001", "ent_000002"]})
        explained = client.call("POST", "/explain", {"entity_ids": ["ent_000001"]})
        top = client.call("POST", "/query", {"query": "top 3 most likely"})
        admin = _JsonClient(client.base_url, admin_key)
        live = _score_the_present(client, admin, workdir, say)
        upload = _upload_as_job(admin, interactions_path)
        runs = client.call("GET", "/runs")
        snapshot = client.call("GET", "/store/snapshot")
        queues = client.call("GET", "/health/queues")["queues"]
        cascade = _cascade_over_http(admin, say)
    finally:
        serve.shutdown()
    first = predicted["predictions"][0]
    explanation = explained["predictions"][0]["explanation"]
    say(f"serve: POST /predict on 127.0.0.1:{port} -> {first['entity_id']} probability {first['probability']:.3f}, "
        f"regression {first['regression']:.3f}, ranking {first['ranking_score']:.3f}")
    say(f"serve: POST /explain -> {explanation['narrative']} (IG delta {explanation['convergence_delta']:.2g})")
    say(f"serve: POST /query 'top 3 most likely' -> {[row['entity_id'] for row in top['results']]} "
        f"(read as {top['interpreted_as']})")
    say(f"serve: POST /ingest/interactions?async=true -> job {upload['job_id'][:8]}… {upload['status']}: "
        f"{upload['result']['unchanged_rows']} rows unchanged (idempotent), request id {upload['request_id'][:8]}…")
    metrics = runs[0]["metrics"]
    say(f"serve: GET /runs -> {len(runs)} run(s), the original keys reg_r2 {metrics['reg_r2']:.3f}, cls_f1 "
        f"{metrics['cls_f1']:.3f}, rank_ndcg@10 {metrics['rank_ndcg@10']:.3f}; GET /store/snapshot -> {snapshot}")
    say(f"serve: GET /health/queues -> ingest_table {queues['ingest_table']}")
    return {"port": port, "predicted": len(predicted["predictions"]), "narrative": explanation["narrative"],
            "live": live, "upload_job": {"job_id": upload["job_id"], "status": upload["status"]}, "cascade": cascade}


def _cascade_over_http(admin: _JsonClient, say: Callable[[str], None]) -> dict:
    """The default cascade (18 proxy runs, configs/cascade.yaml) as an async job, its progress read from the
    server-sent events of GET /jobs/{id}/events as a dashboard would, then its prediction."""
    from dmas.cascade.queue import progress_line

    # the Serve replica holds a quarter of a CPU: half a CPU per run lets the runs share the rest
    overrides = {"execution": {"cpus_per_run": 0.5}}
    started = admin.call("POST", "/cascade?async=true", form={"overrides": json.dumps(overrides)})
    say(f"serve: POST /cascade?async=true -> job {started['job_id'][:8]}…; following GET /jobs/{{id}}/events")
    progress, end, seen = 0, None, 0
    for _ in range(5):  # a stream cut before its end is resumed after the last event seen, as EventSource does
        for event, data in admin.events(f"/jobs/{started['job_id']}/events", last_event_id=seen):
            if event == "progress":
                progress, seen = progress + 1, data["seq"]
                say(f"  event {data['seq']}: {progress_line(data)}")
            elif event == "end":
                end = data
        if end is not None:
            break
    if end is None or end["status"] != "succeeded":
        raise RuntimeError(f"the demo's cascade did not succeed: {end}")
    result = end["result"]
    interval = result["interval"]
    say(f"cascade: {result['runs']} proxy runs ({result['executor']}, {result['workers']} workers) in "
        f"{result['seconds']:.0f} s (overhead share {result['overhead_share']}); full model of "
        f"{result['full']['parameters']:,} parameters: predicted validation loss "
        f"{result['predicted_validation_loss']:.3f} "
        f"[{interval['lower']:.3f}, {interval['upper']:.3f}], fit {result['fit']['formula']}; risk "
        f"{result['risk_score']}, unstable {result['unstable']}; {progress} progress events streamed; report sha256 "
        f"{result['report_sha256'][:12]}…")
    return {"job_id": started["job_id"], "runs": result["runs"], "seconds": result["seconds"],
            "predicted_validation_loss": result["predicted_validation_loss"], "interval": interval,
            "risk_score": result["risk_score"], "progress_events": progress, "report_sha256": result["report_sha256"]}


def _score_the_present(client: _JsonClient, admin: _JsonClient, workdir: Path, say: Callable[[str], None]) -> dict:
    """New events for an entity after training change its score within a refresh; an inline entity is
    scored without being stored; a receipt is verified."""
    entity = "ent_000001"
    before = client.call("POST", "/predict", {"entity_ids": [entity]})
    events = workdir / "input" / "late_events.csv"
    events.write_text("entity_id,timestamp,event_type,event_value\n" + "".join(
        f"{entity},2031-0{month}-01T00:00:00Z,purchase,{900 + month}\n" for month in range(1, 4)))
    admin.call("POST", "/ingest/events", upload=("file", events))
    committed = time.monotonic()
    after = before
    while after["store_versions"]["events"] == before["store_versions"]["events"] and \
            time.monotonic() - committed < 30:
        time.sleep(0.05)
        after = client.call("POST", "/predict", {"entity_ids": [entity]})
    fresh_ms = (time.monotonic() - committed) * 1000
    was, now = before["predictions"][0]["probability"], after["predictions"][0]["probability"]
    say(f"live: 3 new events for {entity} after training -> /predict probability {was:.4f} -> {now:.4f}, "
        f"visible after {fresh_ms:.0f} ms (events version {before['store_versions']['events']} -> "
        f"{after['store_versions']['events']})")
    inline = {"entity_id": "walk-in", "attributes": {"age": 37},
              "events": [{"timestamp": "2024-05-01T09:00:00Z", "event_type": "purchase", "event_value": 42.0}],
              "interactions": [{"dst_entity_id": "ent_000002", "interaction_type": "transfer",
                                "timestamp": "2024-05-01T09:00:00Z"}]}
    walk_in = client.call("POST", "/predict", {"entities": [inline]})["predictions"][0]
    say(f"live: inline entity 'walk-in' (not stored) -> probability {walk_in['probability']:.4f}"
        + (f", left out as unseen: {walk_in['unseen']}" if walk_in.get("unseen") else ""))
    checked = client.call("POST", "/verify", {"receipt": before["predictions"][0]["receipt"]})
    say(f"verify: the receipt of {entity}'s first score (events version {before['store_versions']['events']}) -> "
        f"{checked['status']}: inputs rebuilt from the store at its versions, same model, same bytes")
    return {"probability_before": was, "probability_after": now, "freshness_ms": round(fresh_ms),
            "inline_probability": walk_in["probability"], "receipt": checked["status"]}


def _upload_as_job(client: _JsonClient, path: Path) -> dict:
    """Upload a table as the original stack's clients do, asynchronously, and follow its job to the end."""
    started = client.call("POST", "/ingest/interactions?async=true", upload=("file", path))
    deadline = time.monotonic() + 300
    while True:
        job = client.call("GET", started["status_url"])
        if job["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


class _JsonClient:
    """The demo's HTTP client, on the standard library: the main job needs only the base dependencies."""

    def __init__(self, base_url: str, key: str):
        self.base_url, self.key = base_url, key

    def call(self, method: str, path: str, body: dict | None = None, *,
             upload: tuple[str, Path] | None = None, form: dict | None = None) -> dict:
        """Send a JSON body, form fields or one multipart file field; answer the JSON reply (an HTTP error
        keeps its body)."""
        headers, data = {"x-api-key": self.key}, None
        if body is not None:
            headers["content-type"], data = "application/json", json.dumps(body).encode()
        if form is not None:
            headers["content-type"], data = "application/x-www-form-urlencoded", urllib.parse.urlencode(form).encode()
        if upload is not None:
            headers["content-type"], data = _multipart(*upload)
        with self._open(method, path, data, headers) as response:
            return json.load(response)

    def events(self, path: str, last_event_id: int = 0) -> Iterator[tuple[str, dict]]:
        """(event, data) of a server-sent event stream after `last_event_id`, until the server ends it."""
        headers = {"x-api-key": self.key, "accept": "text/event-stream", "last-event-id": str(last_event_id)}
        with self._open("GET", path, None, headers) as response:
            event, data = None, None
            for raw in response:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    data = json.loads(line.removeprefix("data: "))
                elif line == "" and event is not None:
                    yield event, data
                    event, data = None, None

    def _open(self, method: str, path: str, data: bytes | None, headers: dict):
        request = urllib.request.Request(urllib.parse.urljoin(self.base_url, path), data=data, headers=headers,
                                         method=method)
        try:
            return urllib.request.urlopen(request, timeout=60)
        except urllib.error.HTTPError as error:
            error.add_note(f"{method} {path} answered: {error.read()[:2000].decode(errors='replace')}")
            raise


def _multipart(field: str, path: Path) -> tuple[str, bytes]:
    """A multipart/form-data body holding one file (what `curl -F field=@path` sends)."""
    boundary = secrets.token_hex(16)
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{path.name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n").encode()
    return f"multipart/form-data; boundary={boundary}", head + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _collapse_checks(folder: Path, seed: int, say: Callable[[str], None]) -> dict:
    """A clean and a deliberately collapsed candidate (variance of x1 shrunk to 0.7, 10% copied rows)
    checked against a reference table of the planted-collapse generator; both verdicts."""
    from dmas.quality import planted
    from dmas.quality.collapse import collapse_report
    from dmas.quality.config import CollapseCheckConfig

    rows = 4000
    folder.mkdir(parents=True, exist_ok=True)
    reference = planted.reference_table(rows, seed)
    collapsed = planted.memorization(reference, 0.1, seed + 2, candidate=planted.variance_shrink(
        reference, 0.7, seed + 2))
    paths = {"reference": folder / "reference.parquet", "clean": folder / "clean.csv",
             "collapsed": folder / "collapsed.parquet"}
    reference.to_parquet(paths["reference"], index=False)
    planted.reference_table(rows, seed + 1).to_csv(paths["clean"], index=False)
    collapsed.to_parquet(paths["collapsed"], index=False)
    config = CollapseCheckConfig(seed=seed, cache_dir=str(folder / "null-cache"))  # the second check reuses nulls
    found = {}
    for name in ("clean", "collapsed"):
        outcome = collapse_report(str(paths[name]), str(paths["reference"]), target="target", order="t",
                                  config=config, out_dir=folder / name)
        report = outcome.report
        top = [f"{flag['dimension']}:{flag['evidence']['statistic']}({','.join(flag['columns'])})"
               for flag in report["flags"][:3]]
        say(f"collapse-check: {name} candidate ({rows} rows) -> collapse "
            f"{'DETECTED' if report['collapse_detected'] else 'not detected'}, drift "
            f"{'detected' if report['drift_detected'] else 'not detected'}, overall score {report['overall_score']}, "
            f"{len(report['flags'])} flag(s) {top} in {outcome.timings['total_s']:.1f} s -> {outcome.html_path}")
        found[name] = {"collapse_detected": report["collapse_detected"], "drift_detected": report["drift_detected"],
                       "flags": len(report["flags"]), "html": str(outcome.html_path)}
    return found


def _forget_one(store: Store, say: Callable[[str], None]) -> dict:
    """Forget the last entity (a demonstration of the right-to-be-forgotten path)."""
    last = store.table("entities").read(columns=["entity_id"])["entity_id"][-1].as_py()
    report = forget_entity(store, last)
    removed = {name: info["rows_removed"] for name, info in report["tables"].items()}
    say(f"forget {last}: removed rows {removed}, blobs deleted {len(report['blobs_deleted'])}, audit recorded")
    return {"entity_id": last, "rows_removed": removed, "blobs_deleted": len(report["blobs_deleted"])}

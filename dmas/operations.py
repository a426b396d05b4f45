"""The long-running operations users start over HTTP: what each does, without Ray or HTTP in sight.

Each takes the store, the settings and a JSON-able parameter dict and returns a JSON-able result,
so the Serve app can run any of them as a Ray task and record its result (see `serve/jobs.py`).
Files an operation reads are paths the server staged itself (`uploads/<job>/`), never client paths.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dmas.config import Settings
from dmas.errors import StoreError
from dmas.features.pipeline import extract_pending
from dmas.ingest.artifacts import ingest_artifact, ingest_artifact_manifest
from dmas.ingest.tabular import ingest_table
from dmas.scoring.answers import predictions
from dmas.scoring.scorer import Scorer
from dmas.store import Store
from dmas.synth import SynthResult, generate
from dmas.train.config import TrainConfig
from dmas.train.reproduce import reproduce
from dmas.train.runner import train_run

Progress = Callable[[dict], None]  # receives one JSON-able progress snapshot at a time


def ingest_upload(store: Store, settings: Settings, params: dict) -> dict:
    """One uploaded table file into `params["kind"]`: the ingestion report, rows named as in the file."""
    return ingest_table(store, params["kind"], params["path"], strict=params.get("strict", False),
                        limits=settings.limits)


def ingest_one_artifact(store: Store, settings: Settings, params: dict) -> dict:
    """One uploaded media file with its row fields (artifact_type, entity_id, timestamp, metadata)."""
    return ingest_artifact(store, params["path"], artifact_type=params.get("artifact_type"),
                           entity_id=params.get("entity_id"), timestamp=params.get("timestamp"),
                           metadata=params.get("metadata"), source_name=params.get("source_name"),
                           limits=settings.limits)


def ingest_manifest(store: Store, settings: Settings, params: dict) -> dict:
    """An uploaded manifest and the files it lists (staged beside it under their manifest paths)."""
    return ingest_artifact_manifest(store, params["path"], strict=params.get("strict", False), limits=settings.limits,
                                    ray=settings.ray)


def extract_features(store: Store, settings: Settings, params: dict) -> dict:
    """Features of every pending blob (Ray Data); says so when nothing is pending."""
    return extract_pending(store, settings)


def train(store: Store, settings: Settings, params: dict) -> dict:
    """A training run from a TrainConfig dict; an identical earlier run is returned, not redone.

    `ignored_keys` (request keys the original API took that shape nothing here) come back as given.
    """
    run = train_run(store, settings, TrainConfig.model_validate(params.get("config") or {}))
    return {**run, "ignored_keys": params.get("ignored_keys", [])}


def predict(store: Store, settings: Settings, params: dict) -> dict:
    """The predictions of `params["entity_ids"]` by run `params["run_id"]`, on the tables as they are now."""
    scored = Scorer(store).score(params["run_id"], params["entity_ids"])
    return {"run_id": params["run_id"], "predictions": predictions(scored),
            "unknown_entity_ids": scored.unknown_entity_ids, "store_versions": scored.store_versions}


def reproduce_run(store: Store, settings: Settings, params: dict) -> dict:
    """Retrain `params["run_id"]` from the data it pinned and say whether the bytes match."""
    return reproduce(store, params["run_id"], ray=settings.ray)


def ingest_synthetic(store: Store, settings: Settings, data: SynthResult,
                     say: Callable[[str], None] = lambda _: None) -> dict:
    """Ingest every file `dmas.synth.generate` wrote: the three tables, then the media manifest."""
    results = {}
    for kind, path in (("entities", data.entities_path), ("events", data.events_path),
                       ("interactions", data.interactions_path)):
        report = ingest_table(store, kind, path, limits=settings.limits)
        say(f"ingest {kind}: {report['success_rows']}/{report['total_rows']} rows ok, "
            f"{report['inserted_rows']} inserted, {report['updated_rows']} updated, version {report['version']}")
        results[kind] = _counts(report)
    report = ingest_artifact_manifest(store, data.artifacts_path, limits=settings.limits, ray=settings.ray)
    say(f"ingest artifacts: {report['success_rows']}/{report['total_rows']} files ok, "
        f"{report['unique_blobs']} unique blobs stored once, version {report['version']}")
    results["artifacts"] = {**_counts(report), "unique_blobs": report["unique_blobs"]}
    return results


# entities per /demo/preload profile (the original UI's choice); `n_entities` sets any other size
DEMO_PROFILES = {"small": 200, "medium": 1000}


def preload_demo(store: Store, settings: Settings, params: dict) -> dict:
    """The original stack's /demo/preload: synthetic data -> ingest -> features -> a quick training run.

    The synthetic files go to `params["workdir"]` (a folder the server chose); same seed, same bytes.
    `extract_features` / `train_model` (default true) skip a step when false (a run trained without
    features uses no media). `reset_existing` never deletes: dmas keeps every version, and deleting
    is `dmas forget` (audited, per entity). So it is accepted only on a store without entities,
    where there is nothing to reset, and refused otherwise before anything is written.
    """
    if params.get("reset_existing") and store.table("entities").read(columns=["entity_id"]).num_rows:
        raise StoreError("reset_existing: this store already holds entities, and a demo never deletes data; "
                         "preload into an empty store, or without reset_existing to add the demo beside them "
                         "(forget entities one by one with DELETE /entities/{id}, audited)")
    n_entities = int(params.get("n_entities") or DEMO_PROFILES[params.get("profile", "small")])
    data = generate(Path(params["workdir"]), n_entities=n_entities, seed=settings.seed)
    ingested = ingest_synthetic(store, settings, data)
    features = extract_pending(store, settings) if params.get("extract_features", True) else None
    run = train_run(store, settings, TrainConfig(seed=settings.seed, epochs=int(params.get("epochs", 5)))) \
        if params.get("train_model", True) else None
    return {"synth": {"entities": data.n_entities, "events": data.n_events, "interactions": data.n_interactions,
                      "artifacts": dict(data.artifacts_by_type)},
            "ingest": ingested,
            "features": None if features is None else {
                key: features[key] for key in ("feature_version", "pending", "extracted", "failed")},
            "run": None if run is None else {key: run[key] for key in ("run_id", "status", "model_sha256",
                                                                       "created_at")}}


def collapse_check(store: Store, settings: Settings, params: dict) -> dict:
    """A collapse check of `candidate` against `reference` (staged uploads or store tables): the JSON report
    and, apart, its timings (the HTML page is rendered from the report when asked for)."""
    from dmas.quality.collapse import collapse_report

    changes = {key: params[key] for key in ("dimensions", "seed") if params.get(key) is not None}
    config = type(settings.quality).model_validate({**settings.quality.model_dump(), **changes})
    outcome = collapse_report(params["candidate"], params["reference"], target=params.get("target"),
                              order=params.get("order"), kinds=params.get("kinds"), config=config,
                              store_uri=store.uri)
    return {**outcome.report, "timings": outcome.timings}


def cascade(store: Store, settings: Settings, params: dict, progress: Progress) -> dict:
    """A cascade (configs/cascade.yaml, `params["profile"]`, then `params["overrides"]`): its summary, report
    and timings. Sequence data comes from the staged uploads the overrides name (else the embedded corpus),
    entity data from this store. Each progress snapshot goes to `progress` and to the Ray metrics tagged
    `params["cascade_id"]`."""
    from dmas.cascade.config import load_cascade_config
    from dmas.cascade.metrics import exported_progress
    from dmas.cascade.run import run_cascade, summary

    config = load_cascade_config(profile=params.get("profile"), overrides=params.get("overrides"))
    outcome = run_cascade(config, on_progress=exported_progress(params["cascade_id"], progress),
                          ray_settings=settings.ray, settings=settings)
    return {**summary(outcome), "report": outcome.report, "timings": outcome.timings}


def _counts(report: dict) -> dict:
    return {key: report[key] for key in ("total_rows", "success_rows", "failed_rows", "inserted_rows", "version")}


OPERATIONS: dict[str, Callable[[Store, Settings, dict], dict]] = {
    "ingest_table": ingest_upload,
    "ingest_artifact": ingest_one_artifact,
    "ingest_manifest": ingest_manifest,
    "extract_features": extract_features,
    "train": train,
    "predict": predict,
    "preload_demo": preload_demo,
    "reproduce": reproduce_run,
    "collapse_check": collapse_check,
}
# operations that report progress as they go, to a sink passed as their fourth argument
PROGRESSING_OPERATIONS: dict[str, Callable[[Store, Settings, dict, Progress], dict]] = {
    "cascade": cascade,
}
OPERATION_NAMES = (*OPERATIONS, *PROGRESSING_OPERATIONS)


def run_operation(name: str, store: Store, settings: Settings, params: dict, *,
                  progress: Progress = lambda _: None) -> dict:
    """Run operation `name`, telling `progress` how it goes where it can; an unknown name is a StoreError
    (never a KeyError)."""
    if name in PROGRESSING_OPERATIONS:
        return PROGRESSING_OPERATIONS[name](store, settings, params, progress)
    if name not in OPERATIONS:
        raise StoreError(f"unknown operation '{name}'; choose one of {', '.join(OPERATION_NAMES)}")
    return OPERATIONS[name](store, settings, params)

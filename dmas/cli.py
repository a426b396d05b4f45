"""The `dmas` command: thin argument parsing over the same functions `jobs/` and `serve/` call.

Every command prints a JSON result on stdout. Errors print one line on stderr and exit 2
(`DmasError`: bad input, invalid settings, store problems; a collapse check's `QualityError` exits
10 + its category: 11 data, 12 model, 13 resource, 14 timeout, 15 internal) — mapped here, in one place.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass

from dmas.config import Settings, load_settings
from dmas.errors import ConfigError, DmasError

EXIT_USER_ERROR = 2


@dataclass(frozen=True)
class Finished:
    """A handler's result with an exit code other than 0 (e.g. --fail-on-collapse found collapse)."""

    result: dict
    exit_code: int


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    stdout, sys.stdout = sys.stdout, sys.stderr  # only the JSON result goes to stdout; Ray prints there too
    try:
        settings = load_settings(args.config, **({"store_uri": args.store} if args.store else {}))
        result = args.handler(args, settings)
    except DmasError as exc:
        print(f"dmas: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", EXIT_USER_ERROR)  # a collapse check's error: 10 + its category
    finally:
        sys.stdout = stdout
    result, code = (result.result, result.exit_code) if isinstance(result, Finished) else (result, 0)
    print(json.dumps(result, indent=2, sort_keys=True, default=str), flush=True)
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dmas", description="Deterministic Multimodal Analytics Stack on Ray.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_synth(commands)
    _add_ingest(commands)
    _add_features(commands)
    _add_train(commands)
    _add_score(commands)
    _add_collapse_check(commands)
    _add_cascade(commands)
    _add_serve(commands)
    _add_store(commands)
    _add_forget(commands)
    _add_demo(commands)
    return parser


def _command(commands, name: str, help: str, handler: Callable) -> argparse.ArgumentParser:
    sub = commands.add_parser(name, help=help, description=help)
    sub.set_defaults(handler=handler)
    sub.add_argument("--store", help="store folder or URI (overrides DMAS_STORE_URI and the config file)")
    sub.add_argument("--config", help="YAML settings file (default: $DMAS_CONFIG)")
    sub.add_argument("--quiet", action="store_true", help="no progress output")
    sub.add_argument("--verbose", action="store_true", help="log what happens at INFO level")
    return sub


def _add_synth(commands) -> None:
    sub = _command(commands, "synth", "write deterministic synthetic entities, events, interactions and media",
                   _run_synth)
    sub.add_argument("--out", required=True, help="output folder")
    sub.add_argument("--entities", type=int, default=300, help="number of entities (default 300)")
    sub.add_argument("--seed", type=int, help="random seed (default: settings seed)")


def _run_synth(args, settings: Settings) -> dict:
    from dmas.synth import generate

    seed = settings.seed if args.seed is None else args.seed
    return generate(args.out, n_entities=args.entities, seed=seed).to_dict()


def _add_ingest(commands) -> None:
    ingest = commands.add_parser("ingest", help="validate files and commit them to the store",
                                 description="Validate every row and commit the good ones in one atomic commit.")
    kinds = ingest.add_subparsers(dest="kind", required=True, metavar="KIND")
    for kind in ("entities", "events", "interactions"):
        sub = _command(kinds, kind, f"ingest a file of {kind} (csv tsv json jsonl parquet arrow hdf5 xlsx)",
                       _run_ingest_table)
        sub.add_argument("file")
        sub.add_argument("--strict", action="store_true", help="reject the whole file on the first bad row")
    sub = _command(kinds, "artifacts", "ingest the media files an artifacts manifest lists", _run_ingest_manifest)
    sub.add_argument("manifest", help="table file with columns path, artifact_type, entity_id, timestamp, metadata")
    sub.add_argument("--strict", action="store_true", help="reject the whole manifest on the first bad row")
    sub = _command(kinds, "artifact", "ingest one media file", _run_ingest_artifact)
    sub.add_argument("file")
    sub.add_argument("--type", dest="artifact_type", choices=("image", "audio", "video"),
                     help="expected type (checked against the content)")
    sub.add_argument("--entity-id")
    sub.add_argument("--timestamp", help="ISO-8601 time")
    sub.add_argument("--metadata", help="JSON object")


def _progress(args, unit: str):
    """A tqdm bar on stderr (shown in `ray job` logs too), off with --quiet."""
    from tqdm import tqdm

    return tqdm(desc=f"ingest {args.kind}", unit=f" {unit}", disable=args.quiet, file=sys.stderr, mininterval=1.0)


def _run_ingest_table(args, settings: Settings) -> dict:
    from dmas.ingest.tabular import ingest_table
    from dmas.store import Store

    with _progress(args, "rows") as bar:
        return ingest_table(Store(settings.store_uri), args.kind, args.file, strict=args.strict,
                            limits=settings.limits, on_rows=bar.update)


def _run_ingest_manifest(args, settings: Settings) -> dict:
    from dmas.ingest.artifacts import ingest_artifact_manifest
    from dmas.store import Store

    with _progress(args, "files") as bar:
        return ingest_artifact_manifest(Store(settings.store_uri), args.manifest, strict=args.strict,
                                        limits=settings.limits, on_rows=bar.update, ray=settings.ray)


def _run_ingest_artifact(args, settings: Settings) -> dict:
    from dmas.ingest.artifacts import ingest_artifact
    from dmas.store import Store

    return ingest_artifact(Store(settings.store_uri), args.file, artifact_type=args.artifact_type,
                           entity_id=args.entity_id, timestamp=args.timestamp, metadata=args.metadata,
                           limits=settings.limits)


def _add_features(commands) -> None:
    sub = _command(commands, "features",
                   "extract features of every artifact without them at the current feature version (Ray Data)",
                   _run_features)
    sub.add_argument("--concurrency", type=int, help="parallel extraction tasks (default: one per CPU)")
    sub.add_argument("--batch-size", type=int, help="artifacts per task")


def _run_features(args, settings: Settings) -> dict:
    from dmas.features.pipeline import extract_pending

    overrides = {key: value for key, value in (("concurrency", args.concurrency), ("batch_size", args.batch_size))
                 if value is not None}
    features = settings.features.model_copy(update=overrides)
    return extract_pending(_store(settings), settings.model_copy(update={"features": features}))


def _add_train(commands) -> None:
    sub = _command(commands, "train", "train the multimodal model on the current snapshot with Ray Train", _run_train)
    sub.add_argument("--train-config", help="YAML file of training settings (see configs/train.yaml)")
    sub.add_argument("--epochs", type=int)
    sub.add_argument("--seed", type=int)
    sub.add_argument("--workers", type=int, help="Ray Train workers (DDP when > 1)")
    sub.add_argument("--no-ray", action="store_true", help="train in this process (same loop, same bytes)")
    sub = _command(commands, "reproduce", "retrain a run from its pinned data and compare the bytes", _run_reproduce)
    sub.add_argument("run_id")
    sub.add_argument("--no-ray", action="store_true", help="train in this process (same loop, same bytes)")
    sub = _command(commands, "runs", "list training runs, or show one", _run_runs)
    sub.add_argument("run_id", nargs="?")
    sub = _command(commands, "lineage", "table versions, feature version and source files a run used, and "
                   "whether it needs retraining because an entity in its data was forgotten", _run_run_lineage)
    sub.add_argument("run_id", nargs="?")
    sub.add_argument("--forgotten", action="store_true",
                     help="instead list every run whose data included an entity forgotten since")


def _train_config(args):
    from dmas.train.config import TrainConfig

    values = {}
    if args.train_config:
        import yaml

        with open(args.train_config) as handle:
            values = yaml.safe_load(handle) or {}
    overrides = {"epochs": args.epochs, "seed": args.seed, "num_workers": args.workers}
    values.update({key: value for key, value in overrides.items() if value is not None})
    try:
        return TrainConfig.model_validate(values)
    except ValueError as exc:
        raise ConfigError(f"invalid training settings: {exc}") from None


def _run_train(args, settings: Settings) -> dict:
    from dmas.train.runner import train_run

    return train_run(_store(settings), settings, _train_config(args), use_ray=not args.no_ray)


def _run_reproduce(args, settings: Settings) -> dict:
    from dmas.train.reproduce import reproduce

    return reproduce(_store(settings), args.run_id, use_ray=not args.no_ray, ray=settings.ray)


def _run_runs(args, settings: Settings):
    from dmas.store.runs import RunRegistry

    registry = RunRegistry(_store(settings))
    if args.run_id:
        return registry.require(args.run_id).to_dict()
    return [record.to_dict() for record in registry.list()]


def _run_run_lineage(args, settings: Settings) -> dict | list:
    from dmas.train.lineage import run_lineage, runs_needing_retraining

    if args.forgotten == bool(args.run_id):
        raise ConfigError("dmas lineage: give either RUN_ID or --forgotten (the runs that need retraining)")
    if args.forgotten:
        return runs_needing_retraining(_store(settings))
    return run_lineage(_store(settings), args.run_id)


def _add_score(commands) -> None:
    sub = _command(commands, "score", "score every entity (or some) with a run on Ray Data and commit the rows to "
                   "the `scores` table in one commit", _run_score)
    sub.add_argument("--run-id", help="the run (default: the latest completed run)")
    chosen = sub.add_mutually_exclusive_group()
    chosen.add_argument("--entity-ids", help="comma-separated entity ids (default: every entity)")
    chosen.add_argument("--entities-file", help="a file of entity ids, one a line")
    chosen.add_argument("--changed-since-version", metavar="JSON",
                        help='only entities whose rows changed since these table versions, e.g. the store_versions '
                             'of an earlier dmas score: \'{"entities": 3, "events": 5, "interactions": 2, '
                             '"artifacts": 4}\'')
    sub.add_argument("--workers", type=int, help="Ray Data scoring actors (default: one per CPU)")
    sub.add_argument("--batch-size", type=int, default=256, help="entities per batch (default 256; the scores "
                     "do not depend on it)")
    sub.add_argument("--no-ray", action="store_true", help="score in this process (same rows, same bytes)")
    sub.add_argument("--explain", action="store_true", help="also store each entity's explanation of its "
                     "probability, as POST /explain answers it (~35 ms an entity)")
    sub = _command(commands, "verify", "re-derive a receipt's score from the store (a prediction's receipt or a "
                   "`scores` row) and say what differs", _run_verify)
    sub.add_argument("receipt", help="JSON file holding the receipt (or a scores row), - for stdin")
    sub.add_argument("--entity", help="JSON file of the inline entity an inline receipt was scored from")


def _run_score(args, settings: Settings) -> dict:
    from dmas.scoring.batch import score_batch

    entity_ids = None
    if args.entity_ids is not None:
        entity_ids = [entity for entity in (part.strip() for part in args.entity_ids.split(",")) if entity]
    elif args.entities_file is not None:
        try:
            with open(args.entities_file) as handle:
                entity_ids = [line.strip() for line in handle if line.strip()]
        except OSError as exc:
            raise ConfigError(f"--entities-file: {exc}") from None
    changed_since = None
    if args.changed_since_version is not None:
        try:
            changed_since = json.loads(args.changed_since_version)
            if not isinstance(changed_since, dict) or not all(isinstance(v, int) for v in changed_since.values()):
                raise ValueError("expected a JSON object of table name to version")
        except ValueError as exc:
            raise ConfigError(f"--changed-since-version: {exc}") from None
    result = score_batch(_store(settings), args.run_id, entity_ids=entity_ids, changed_since=changed_since,
                         workers=args.workers, batch_size=args.batch_size, use_ray=not args.no_ray,
                         ray=settings.ray, progress=not args.quiet, explain=args.explain)
    if not args.quiet:
        print(f"dmas score: {result['rows']} entities scored with run {result['run_id']} at "
              f"{result['entities_per_s']:.0f}/s; scores table version {result['scores_version']}",
              file=sys.stderr, flush=True)
    return result


def _run_verify(args, settings: Settings) -> dict:
    from dmas.scoring.batch import scores_receipt
    from dmas.scoring.inline import InlineEntity
    from dmas.scoring.receipts import verify

    try:
        text = sys.stdin.read() if args.receipt == "-" else open(args.receipt).read()
        receipt = json.loads(text)
        entity = InlineEntity.model_validate(json.loads(open(args.entity).read())) if args.entity else None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"dmas verify: cannot read the receipt or entity: {exc}") from None
    if isinstance(receipt, dict) and "receipt" in receipt:  # a whole prediction
        receipt = receipt["receipt"]
    if isinstance(receipt, dict) and "source" not in receipt and "code_version" in receipt:  # a scores row
        receipt = scores_receipt(receipt)
    if not isinstance(receipt, dict):
        raise ConfigError("dmas verify: the receipt must be a JSON object")
    return verify(_store(settings), receipt, entity)


def _add_collapse_check(commands) -> None:
    sub = _command(commands, "collapse-check", "check a candidate dataset against a reference on eight calibrated "
                   "dimensions (distribution, correlation, entropy, gradients, loss, spectra, generalization, tests) "
                   "plus memorization; prints the JSON report and writes it with an HTML report", _run_collapse_check)
    sub.add_argument("candidate", help="file (csv tsv json jsonl parquet feather hdf5 xlsx), pyarrow URI, or store "
                     "table as NAME[@VERSION] (e.g. events@12)")
    sub.add_argument("--reference", required=True, help="the dataset to compare with (same forms as the candidate)")
    sub.add_argument("--target", help="the label column (dimensions 4, 5 and 7 predict it; without one they use a "
                     "self-supervised task and say so)")
    sub.add_argument("--order", help="the column that orders rows in time (spectral coherence)")
    sub.add_argument("--kind", action="append", default=[], metavar="COLUMN=KIND",
                     help="override an inferred column kind (numeric, categorical, boolean, datetime); repeatable")
    sub.add_argument("--out", default=".", help="folder for collapse_report.json/.html and collapse_timings.json "
                     "(default: the current folder)")
    sub.add_argument("--dimensions", help="comma-separated dimension names to run (default: all eight)")
    sub.add_argument("--seed", type=int, help="seed (default: settings quality.seed)")
    sub.add_argument("--fail-on-collapse", action="store_true", help="exit 1 when collapse is detected")


def _run_collapse_check(args, settings: Settings) -> dict:
    from dmas.quality.collapse import collapse_report

    kinds = {}
    for override in args.kind:
        column, _, kind = override.partition("=")
        if not column or not kind:
            raise ConfigError(f"--kind expects COLUMN=KIND, got {override!r}")
        kinds[column] = kind
    changes = {}
    if args.dimensions:
        changes["dimensions"] = [name.strip() for name in args.dimensions.split(",") if name.strip()]
    if args.seed is not None:
        changes["seed"] = args.seed
    try:
        config = settings.quality.model_copy(update=changes)
        config = type(config).model_validate(config.model_dump())
    except ValueError as exc:
        raise ConfigError(f"collapse-check: {exc}") from None
    outcome = collapse_report(args.candidate, args.reference, target=args.target, order=args.order, kinds=kinds,
                              config=config, out_dir=args.out, store_uri=settings.store_uri)
    report = outcome.report
    if not args.quiet:
        print(f"dmas collapse-check: collapse {'DETECTED' if report['collapse_detected'] else 'not detected'}, "
              f"drift {'DETECTED' if report['drift_detected'] else 'not detected'}, overall score "
              f"{report['overall_score']}, {len(report['flags'])} flag(s); report: {outcome.html_path}",
              file=sys.stderr, flush=True)
    return Finished(outcome.summary(), 1 if args.fail_on_collapse and report["collapse_detected"] else 0)


def _add_cascade(commands) -> None:
    sub = _command(commands, "cascade", "train tiers of small spectral proxy models (Ray Train), fit a scaling law and "
                   "predict the full model's validation loss with an interval; flags unhealthy training dynamics",
                   _run_cascade)
    sub.add_argument("--cascade-config", help="cascade YAML (default: configs/cascade.yaml)")
    sub.add_argument("--profile", help="a profile of the cascade YAML, e.g. gpu (4 GPUs, bf16)")
    sub.add_argument("--data-kind", choices=("sequence", "entities"),
                     help="sequence: next-token proxies on documents; entities: FullModel proxies on the store's "
                     "entities and their targets (default: the YAML's data.kind; --store implies entities)")
    sub.add_argument("--data", help="sequence data: a table file with one document per row (default: the embedded "
                     "synthetic corpus)")
    sub.add_argument("--column", help="the documents' column (default: text)")
    sub.add_argument("--encoding", choices=("bytes", "token_ids"), help="text as UTF-8 bytes, or lists of token ids")
    sub.add_argument("--validation", help="a separate held-out file (same column)")
    sub.add_argument("--train-full", action="store_true", help="also train the full model and report the "
                     "prediction against it")
    sub.add_argument("--executor", choices=("ray_train", "in_process"), help="where runs train (default ray_train)")
    sub.add_argument("--workers", type=int, help="concurrent runs (default: what the cluster holds)")
    sub.add_argument("--progress-interval", type=float, help="seconds between progress lines (default 10)")
    sub.add_argument("--out", default=".", help="folder for cascade_report.json and cascade_timings.json")


def _run_cascade(args, settings: Settings) -> dict:
    from dmas.cascade.config import load_cascade_config
    from dmas.cascade.metrics import exported_progress
    from dmas.cascade.queue import progress_line
    from dmas.cascade.run import run_cascade, summary, write_outcome

    data = {key: value for key, value in (("path", args.data), ("column", args.column), ("encoding", args.encoding),
                                          ("validation_path", args.validation)) if value is not None}
    kind = args.data_kind or ("entities" if args.store else None)
    if kind == "entities":
        if data:
            flags = {"path": "--data", "column": "--column", "encoding": "--encoding",
                     "validation_path": "--validation"}
            raise ConfigError(f"dmas cascade: {', '.join(flags[key] for key in data)} name sequence data; the entity "
                              "cascade reads the store's entities (--store)")
        data = {"kind": "entities", **({"store": args.store} if args.store else {})}
    elif kind == "sequence":
        data["kind"] = "sequence"
    execution = {key: value for key, value in (("executor", args.executor), ("workers", args.workers))
                 if value is not None}
    overrides = {"data": data, "execution": execution, **({"full": {"train": True}} if args.train_full else {}),
                 **({"progress_interval_s": args.progress_interval} if args.progress_interval else {})}
    config = load_cascade_config(args.cascade_config, profile=args.profile, overrides=overrides)
    say = (lambda _: None) if args.quiet else (lambda event: print(progress_line(event), file=sys.stderr, flush=True))
    outcome = run_cascade(config, on_progress=exported_progress(f"cli-{config.config_sha256()[:12]}", say),
                          ray_settings=settings.ray, settings=settings)
    return {**summary(outcome), "report": str(write_outcome(outcome, args.out))}


def _add_serve(commands) -> None:
    sub = _command(commands, "serve",
                   "the HTTP API on Ray Serve: predict, explain, query, ingest, train (Ctrl-C ends)",
                   _run_serve)
    sub.add_argument("--host", help="listen address (default from settings: 127.0.0.1)")
    sub.add_argument("--port", type=int, help="port (default from settings: 8000)")
    keys = _command(commands, "keys", "create an API key: prints the key once and the settings entry to add",
                    _run_new_key)
    keys.add_argument("key_id", help="a name for the key (written to the audit log)")
    keys.add_argument("--role", choices=("viewer", "admin"), default="viewer")


def _run_serve(args, settings: Settings) -> dict:
    """Serve until SIGTERM (systemd, Kubernetes) or SIGINT (Ctrl-C), then stop Serve and the Ray it started.

    `ray.init` installs a SIGTERM handler that exits mid-flight (SIGABRT); ours replaces it after Ray starts.
    """
    import signal
    import threading

    import ray
    from ray import serve

    from dmas.runtime import ensure_ray
    from serve.app import build_app

    updates = {key: value for key, value in (("host", args.host), ("port", args.port)) if value is not None}
    settings = settings.model_copy(update={"serve": settings.serve.model_copy(update=updates)})
    ensure_ray(settings.ray)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda received, _frame: stop.set())
    serve.start(http_options={"host": settings.serve.host, "port": settings.serve.port})
    serve.run(build_app(settings), name="dmas", route_prefix="/")
    print(f"dmas: serving on http://{settings.serve.host}:{settings.serve.port} (docs at /docs); Ctrl-C or "
          "SIGTERM stops", file=sys.stderr, flush=True)
    stop.wait()
    serve.shutdown()
    ray.shutdown()
    return {"stopped": True}


def _run_new_key(args, settings: Settings) -> dict:
    from dmas.api.security import new_key

    key, entry = new_key(args.key_id, args.role)
    return {"api_key": key, "settings_entry": entry.model_dump(),
            "note": "store only settings_entry (serve.api_keys in the YAML or DMAS_SERVE__API_KEYS); the key is "
                    "shown once"}


def _add_store(commands) -> None:
    store = commands.add_parser("store", help="inspect the store: versions, history, lineage, export, vacuum",
                                description="Inspect the versioned store.")
    actions = store.add_subparsers(dest="action", required=True, metavar="ACTION")
    _command(actions, "snapshot", "current version of every table (the data manifest a run pins)", _run_snapshot)
    sub = _command(actions, "history", "commits of a table, newest first", _run_history)
    sub.add_argument("table")
    sub = _command(actions, "lineage", "source files (by sha256) committed to a table up to a version",
                   _run_table_lineage)
    sub.add_argument("table")
    sub.add_argument("--version", type=int)
    sub = _command(actions, "export", "write a table (any version) to a Parquet file", _run_export)
    sub.add_argument("table")
    sub.add_argument("out", help="destination .parquet file")
    sub.add_argument("--version", type=int, help="table version (default: latest)")
    sub = _command(actions, "vacuum", "remove data files a killed writer left that no table version names",
                   _run_vacuum)
    sub.add_argument("--grace-hours", type=float,
                     help="keep files younger than this: a running writer's are unnamed until it commits (default 24)")


def _store(settings: Settings):
    from dmas.store import Store

    return Store(settings.store_uri)


def _run_snapshot(args, settings: Settings) -> dict:
    return _store(settings).snapshot()


def _run_history(args, settings: Settings) -> list:
    return _store(settings).table(args.table).history()


def _run_table_lineage(args, settings: Settings) -> list:
    return _store(settings).lineage(args.table, args.version)


def _run_export(args, settings: Settings) -> dict:
    table = _store(settings).table(args.table)
    version = table.version() if args.version is None else args.version
    rows = table.export_parquet(args.out, version)
    return {"table": args.table, "version": version, "rows": rows, "out": args.out}


def _run_vacuum(args, settings: Settings) -> dict:
    from datetime import timedelta

    from dmas.store.orphans import ORPHAN_GRACE

    if args.grace_hours is not None and args.grace_hours < 0:
        raise ConfigError(f"--grace-hours: must be 0 or more, got {args.grace_hours}")
    grace = ORPHAN_GRACE if args.grace_hours is None else timedelta(hours=args.grace_hours)
    removed = _store(settings).remove_orphans(grace)
    tables = {name: {"files_removed": len(files), "bytes_removed": sum(f.size_bytes for f in files),
                     "removed": [f.path for f in files]} for name, files in removed.items()}
    return {"grace_hours": grace / timedelta(hours=1), "tables": tables,
            "files_removed": sum(table["files_removed"] for table in tables.values())}


def _add_forget(commands) -> None:
    sub = _command(commands, "forget",
                   "remove an entity from every table (right to be forgotten), with an audit record", _run_forget)
    sub.add_argument("entity_id")
    sub.add_argument("--purge", action="store_true",
                     help="also delete old versions' data files, so time travel cannot read the entity any more")


def _run_forget(args, settings: Settings) -> dict:
    from dmas.store.forget import forget_entity

    return forget_entity(_store(settings), args.entity_id, purge_old_versions=args.purge)


def _add_demo(commands) -> None:
    sub = _command(commands, "demo", "run the main job end to end on synthetic data and print what it did", _run_demo)
    sub.add_argument("--workdir", default="dmas_demo", help="folder for the synthetic input files (default dmas_demo)")
    sub.add_argument("--entities", type=int, default=300)


def _run_demo(args, settings: Settings) -> dict:
    from dmas.demo import run_end_to_end

    say = (lambda _: None) if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    return run_end_to_end(settings, workdir=args.workdir, n_entities=args.entities, say=say)


if __name__ == "__main__":
    sys.exit(main())

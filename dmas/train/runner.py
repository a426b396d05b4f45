"""A training run end to end: pin the data, train (Ray Train or this process), evaluate, register, publish.

`fit` is where Ray appears; everything else is plain functions so a test can train the same loop
without Ray and compare hashes. Small one-worker runs train in the calling process: the same loop
gives the same bytes, and they skip Ray Train's ~15 s start.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import uuid
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from dmas.config import Settings
from dmas.errors import ConfigError, StoreError
from dmas.features.version import feature_version
from dmas.model import FullModel
from dmas.runtime import ensure_ray
from dmas.store import Store
from dmas.store.runs import RunRegistry, RunStatus
from dmas.train.baselines import baseline_predictions, lift
from dmas.train.config import TrainConfig, run_id_for
from dmas.train.determinism import code_version, library_versions, torch_state_restored
from dmas.train.loop import model_config_for, predict, train_model
from dmas.train.metrics import HIGHER_IS_BETTER, evaluate, original_shapes
from dmas.train.tensorize import DataManifest, EntityTensors, tensorize
from dmas.vocabulary import HEADS, TARGET_KEYS

log = logging.getLogger(__name__)


class TrainedWith(StrEnum):
    """Where a run's loop ran; recorded in the run, not part of its run_id (the bytes are the same)."""

    IN_PROCESS = "in_process"
    RAY_TRAIN = "ray_train"


@dataclass(frozen=True)
class FitResult:
    weights: bytes  # model.safetensors
    training_log: list[dict]


def pin_data(store: Store, settings: Settings, config: TrainConfig) -> DataManifest:
    """The current table versions and feature version: what this run will read, now and on reproduce."""
    as_of = config.tensorize.as_of.isoformat() if config.tensorize.as_of else None
    return DataManifest(store.snapshot(), feature_version(settings.features.extractor_config()), as_of)


def train_run(store: Store, settings: Settings, config: TrainConfig, *, use_ray: bool = True) -> dict:
    """Train, evaluate and register a run; an identical earlier run (same run_id) is returned, not redone.

    The run is leased while it trains; a run left `running` by a process that died is seen dead
    within seconds and this call retrains it under the same run_id. `use_ray=False` never uses
    Ray Train (see `trained_with`).
    """
    manifest = pin_data(store, settings, config)
    code = code_version()
    run_id = run_id_for(config, manifest.to_dict(), code)
    registry = RunRegistry(store)
    existing = registry.get(run_id, confirm=True)  # a running run is watched one lease TTL: alive or retried
    if existing is not None and existing.status.finished:
        recorded = json.loads(registry.read_file(run_id, "config.json"))
        return {**existing.to_dict(), "metrics": json.loads(registry.read_file(run_id, "metrics.json")),
                "config": recorded["train_config"], "reused": True}
    if existing is not None and existing.status == RunStatus.RUNNING:
        raise StoreError(f"run '{run_id}' is already running: its training process is alive and renews its lease")
    with registry.lease(run_id) as lease:
        registry.set_status(run_id, RunStatus.RUNNING, details={"data_manifest": manifest.to_dict()})
        try:
            tensors = tensorize(store, manifest, config.tensorize, config.seed)
            how = trained_with(config, tensors, use_ray)
            if how == TrainedWith.RAY_TRAIN:
                ensure_ray(settings.ray)  # only now: a small run never waits for Ray to start
            # a fresh Ray Train name per attempt: a retry never meets the state of the attempt that died
            fitted = fit_as(how, store.uri, manifest, config, tensors, registry.folder(".ray_train"),
                            f"{run_id}-{uuid.uuid4().hex[:8]}")
            lease.check()
            outcome = _evaluate_and_publish(registry, run_id, tensors, config, manifest, code, fitted, how)
        except BaseException as exc:
            if lease.held:  # a process that took the run over owns its status now
                registry.set_status(run_id, RunStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
            raise
    return outcome


def trained_with(config: TrainConfig, tensors: EntityTensors, use_ray: bool) -> TrainedWith:
    """This process for one-worker CPU runs of at most `in_process_max_entity_epochs` (or without Ray),
    else Ray Train; several workers or GPUs need Ray Train (one process would train another model)."""
    if config.num_workers > 1 or config.use_gpu:
        if not use_ray:
            raise ConfigError(f"num_workers={config.num_workers}, use_gpu={str(config.use_gpu).lower()} needs "
                              "Ray Train; run it with Ray (without --no-ray)")
        return TrainedWith.RAY_TRAIN
    entity_epochs = len(tensors.indices("train")) * config.epochs
    if not use_ray or entity_epochs <= config.in_process_max_entity_epochs:
        return TrainedWith.IN_PROCESS
    return TrainedWith.RAY_TRAIN


def fit_as(how: TrainedWith, store_uri: str, manifest: DataManifest, config: TrainConfig, tensors: EntityTensors,
           storage_path: str, name: str) -> FitResult:
    """Train in this process or with Ray Train, as `trained_with` chose."""
    if how == TrainedWith.IN_PROCESS:
        with torch_state_restored():  # the caller (a CLI, a job's worker) keeps its own torch threads
            return fit_locally(tensors, config)
    return fit(store_uri, manifest, config, storage_path, name)


def fit_locally(tensors: EntityTensors, config: TrainConfig) -> FitResult:
    """The same loop without Ray (one worker): small runs, and the proof that Ray Train changes nothing."""
    model, training_log = train_model(tensors, config)
    return FitResult(serialize_weights(model), training_log)


def fit(store_uri: str, manifest: DataManifest, config: TrainConfig, storage_path: str, name: str) -> FitResult:
    """Train with Ray Train's TorchTrainer (DDP over gloo when num_workers > 1)."""
    import ray
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    if config.use_gpu and ray.cluster_resources().get("GPU", 0) < config.num_workers:
        # asking Ray Train for GPUs the cluster lacks waits forever instead of failing
        raise ConfigError(f"use_gpu=true needs {config.num_workers} GPU(s); the cluster has "
                          f"{ray.cluster_resources().get('GPU', 0)}")
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"store_uri": store_uri, "manifest": manifest.to_dict(), "config": config.canonical_json()},
        scaling_config=ScalingConfig(num_workers=config.num_workers, use_gpu=config.use_gpu),
        run_config=RunConfig(name=name, storage_path=storage_path,
                             failure_config=FailureConfig(max_failures=0),
                             checkpoint_config=CheckpointConfig(num_to_keep=1)),
    )
    result = trainer.fit()
    if result.checkpoint is None:
        raise StoreError(f"Ray Train finished '{name}' without a checkpoint: {result.error}")
    with result.checkpoint.as_directory() as folder:
        weights = (Path(folder) / "model.safetensors").read_bytes()
        training_log = json.loads((Path(folder) / "training_log.json").read_text())
    return FitResult(weights, training_log)


def train_loop_per_worker(loop_config: dict) -> None:
    """Runs in each Ray Train worker: rebuild the pinned arrays, train, report each epoch, checkpoint."""
    import ray.train
    import ray.train.torch

    config = TrainConfig.model_validate_json(loop_config["config"])
    manifest = DataManifest(**loop_config["manifest"])
    tensors = tensorize(Store(loop_config["store_uri"]), manifest, config.tensorize, config.seed)
    context = ray.train.get_context()
    rank, world_size = context.get_world_rank(), context.get_world_size()
    wrap = ray.train.torch.prepare_model if world_size > 1 else (lambda model: model)
    model, training_log = train_model(tensors, config, rank=rank, world_size=world_size, wrap=wrap,
                                      report=lambda entry: ray.train.report(entry))
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = None
        if rank == 0:
            (Path(folder) / "model.safetensors").write_bytes(serialize_weights(model))
            (Path(folder) / "training_log.json").write_text(json.dumps(training_log))
            checkpoint = ray.train.Checkpoint.from_directory(folder)
        ray.train.report({"done": 1}, checkpoint=checkpoint)


def serialize_weights(model: torch.nn.Module) -> bytes:
    """safetensors bytes of the weights (no pickle; same weights -> same bytes)."""
    state = {name: tensor.detach().contiguous() for name, tensor in sorted(model.state_dict().items())}
    return save_safetensors(state)


def load_model(weights: bytes, tensors: EntityTensors, config: TrainConfig) -> FullModel:
    model = FullModel(model_config_for(tensors, config))
    model.load_state_dict(load_safetensors(weights))
    model.eval()
    return model


def _evaluate_and_publish(registry: RunRegistry, run_id: str, tensors: EntityTensors, config: TrainConfig,
                          manifest: DataManifest, code: str, fitted: FitResult, how: TrainedWith) -> dict:
    model = load_model(fitted.weights, tensors, config)
    test_rows, train_rows = tensors.indices("test"), tensors.indices("train")
    predictions = predict(model, tensors, test_rows)
    targets = {key: tensors.arrays[key][test_rows] for key in TARGET_KEYS}
    masks = {f"{key}_mask": tensors.arrays[f"{key}_mask"][test_rows] for key in TARGET_KEYS}
    metrics = evaluate(predictions, targets, masks)
    baselines = {name: evaluate(baseline, targets, masks) for name, baseline in baseline_predictions(
        tensors.arrays["attributes"][train_rows],
        {key: tensors.arrays[key][train_rows] for key in TARGET_KEYS},
        {f"{key}_mask": tensors.arrays[f"{key}_mask"][train_rows] for key in TARGET_KEYS},
        tensors.arrays["attributes"][test_rows], config.seed).items()}
    violations = gate_violations(metrics, config.quality_gates)
    model_sha256 = hashlib.sha256(fitted.weights).hexdigest()
    summary = {
        "run_id": run_id,
        "test": metrics,
        "baselines": baselines,
        "lift_over_attributes_linear": lift(metrics, baselines["attributes_linear"]) if "attributes_linear" in
        baselines else {},
        "split_sizes": {name: int(len(tensors.indices(name))) for name in ("train", "validation", "test")},
        "test_predictions_sha256": predictions_sha256(predictions),
        "gate_violations": violations,
        **original_shapes(metrics),
    }
    recorded_config = {"train_config": json.loads(config.canonical_json()), "code_version": code,
                       "library_versions": library_versions(), "model_config": model.config.model_dump(mode="json"),
                       "attribute_names": list(tensors.attribute_names), "event_types": list(tensors.event_types),
                       "interaction_types": list(tensors.interaction_types),
                       "normalisation": tensors.normalisation}
    registry.publish(run_id, {
        "model.safetensors": fitted.weights,
        "config.json": _json_bytes(recorded_config),
        "metrics.json": _json_bytes(summary),
        "data_manifest.json": _json_bytes(manifest.to_dict()),
        "model_sha256.txt": (model_sha256 + "\n").encode(),
        "training_log.jsonl": "".join(json.dumps(entry, sort_keys=True) + "\n"
                                      for entry in fitted.training_log).encode(),
        **training_predictions(model, tensors),
    })
    status = RunStatus.REJECTED if violations else RunStatus.COMPLETED
    registry.set_status(run_id, status, model_sha256=model_sha256,
                        details={"test": metrics, "metrics": original_shapes(metrics), "gate_violations": violations,
                                 "data_manifest": manifest.to_dict(), "trained_with": how})
    log.info("run %s %s (%s)", run_id, status, how)
    return {"run_id": run_id, "status": status, "model_sha256": model_sha256, "metrics": summary,
            "config": recorded_config["train_config"], "created_at": registry.require(run_id).created_at.isoformat(),
            "trained_with": how, "reused": False}


def training_predictions(model: FullModel, tensors: EntityTensors) -> dict[str, bytes]:
    """Every entity's scores at the pinned snapshot, as training computed them: the record that live
    scoring at these versions must reproduce byte for byte (tests/scoring compare them)."""
    scores = predict(model, tensors, np.arange(len(tensors.entity_ids)), outputs=(*HEADS, "embedding"))
    predictions = pa.table({
        "entity_id": pa.array(tensors.entity_ids.tolist(), pa.string()),
        **{head: pa.array(scores[head], pa.float32()) for head in HEADS},
        "embedding": pa.array(list(scores["embedding"]), pa.list_(pa.float32())),
    })
    return {"predictions.arrow": _arrow_file_bytes(predictions)}


def _arrow_file_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def gate_violations(metrics: dict, gates: dict[str, float]) -> list[str]:
    """Each gate "task.metric": bound that the test metrics miss (a missing metric is a violation too)."""
    violations = []
    for name, bound in sorted(gates.items()):
        task, _, metric = name.partition(".")
        value = metrics.get(task, {}).get(metric)
        if value is None:
            violations.append(f"{name}: not available (bound {bound})")
        elif HIGHER_IS_BETTER.get(metric, True) and value < bound:
            violations.append(f"{name} = {value:.4g} < {bound}")
        elif not HIGHER_IS_BETTER.get(metric, True) and value > bound:
            violations.append(f"{name} = {value:.4g} > {bound}")
    return violations


def predictions_sha256(predictions: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for key in sorted(predictions):
        digest.update(key.encode() + np.ascontiguousarray(predictions[key], dtype=np.float32).tobytes())
    return digest.hexdigest()


def _json_bytes(value: dict) -> bytes:
    return (json.dumps(value, sort_keys=True, indent=2) + "\n").encode()

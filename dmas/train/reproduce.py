"""Retrain a run from its pinned data and recorded config; say whether the bytes match and, if not, why."""

from __future__ import annotations

import hashlib
import json
import uuid

from dmas.runtime import RaySettings, ensure_ray
from dmas.store import Store
from dmas.store.runs import RunRegistry
from dmas.train.config import TrainConfig
from dmas.train.determinism import code_version, library_versions
from dmas.train.loop import predict
from dmas.train.runner import TrainedWith, fit_as, load_model, predictions_sha256, trained_with
from dmas.train.tensorize import DataManifest, tensorize


def reproduce(store: Store, run_id: str, *, use_ray: bool = True, ray: RaySettings | None = None) -> dict:
    """Retrain `run_id` from the table and feature versions it pinned; compare weights and test predictions.

    Small runs retrain in this process, as `train_run` does (the same bytes either way); only a run
    that goes to Ray Train starts (or attaches to) Ray, with `ray`'s settings.
    """
    registry = RunRegistry(store)
    registry.require(run_id)
    recorded = json.loads(registry.read_file(run_id, "config.json"))
    metrics = json.loads(registry.read_file(run_id, "metrics.json"))
    manifest = DataManifest(**json.loads(registry.read_file(run_id, "data_manifest.json")))
    original_sha = registry.read_file(run_id, "model_sha256.txt").decode().strip()
    config = TrainConfig.model_validate(recorded["train_config"])

    tensors = tensorize(store, manifest, config.tensorize, config.seed)
    how = trained_with(config, tensors, use_ray)
    if how == TrainedWith.RAY_TRAIN:
        ensure_ray(ray or RaySettings())
    fitted = fit_as(how, store.uri, manifest, config, tensors, registry.folder(".ray_train"),
                    f"reproduce-{run_id}-{uuid.uuid4().hex}")
    reproduced_sha = hashlib.sha256(fitted.weights).hexdigest()
    predictions = predict(load_model(fitted.weights, tensors, config), tensors, tensors.indices("test"))
    same_predictions = predictions_sha256(predictions) == metrics["test_predictions_sha256"]
    return {
        "run_id": run_id,
        "identical_model": reproduced_sha == original_sha,
        "identical_test_predictions": same_predictions,
        "original_model_sha256": original_sha,
        "reproduced_model_sha256": reproduced_sha,
        "trained_with": how,
        "differences": _what_differs(recorded, tensors, manifest),
    }


def _what_differs(recorded: dict, tensors, manifest: DataManifest) -> dict:
    """What changed since the run: code, library versions, and the data as read now (should be nothing)."""
    differences = {}
    current_code = code_version()
    if current_code != recorded["code_version"]:
        differences["code"] = {"run": recorded["code_version"], "now": current_code}
    libraries = library_versions()
    changed = {name: {"run": version, "now": libraries.get(name)} for name, version in
               recorded["library_versions"].items() if libraries.get(name) != version}
    if changed:
        differences["library_versions"] = changed
    if list(tensors.attribute_names) != recorded["attribute_names"] or \
            tensors.normalisation != recorded["normalisation"]:
        differences["data"] = f"the pinned tables {manifest.tables} no longer read as they did"
    return differences

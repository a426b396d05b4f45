"""Training runs: same bytes every time (with or without Ray Train), real lift, registry and reproduce."""

import hashlib
import time

import numpy as np
import pytest
import torch

from dmas.config import load_settings
from dmas.errors import ConfigError, StoreError
from dmas.ingest.tabular import ingest_table
from dmas.model.config import ModelArchitecture
from dmas.store import Store
from dmas.store.runs import RUN_FILES, RunRegistry
from dmas.train.baselines import baseline_predictions
from dmas.train.config import TrainConfig, run_id_for
from dmas.train.lineage import run_lineage
from dmas.train.loop import TorchRows, predict
from dmas.train.metrics import evaluate
from dmas.train.reproduce import reproduce
from dmas.train.runner import fit, fit_locally, load_model, pin_data, train_run
from dmas.train.tensorize import tensorize
from dmas.vocabulary import TARGET_KEYS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(tmp_path_factory, synthetic_store):
    """1,500 synthetic entities with events, interactions, media and their features."""
    return synthetic_store(tmp_path_factory.mktemp("training"), n_entities=1500, seed=3)


@pytest.fixture(scope="module")
def settings(store):
    return load_settings(store_uri=store.uri)


def _tensors(store, settings, config):
    return tensorize(store, pin_data(store, settings, config), config.tensorize, config.seed)


def _test_metrics(store, settings, config):
    tensors = _tensors(store, settings, config)
    model = load_model(fit_locally(tensors, config).weights, tensors, config)
    test, train = tensors.indices("test"), tensors.indices("train")
    targets = {key: tensors.arrays[key][test] for key in TARGET_KEYS}
    masks = {f"{key}_mask": tensors.arrays[f"{key}_mask"][test] for key in TARGET_KEYS}
    linear = baseline_predictions(tensors.arrays["attributes"][train],
                                  {key: tensors.arrays[key][train] for key in TARGET_KEYS},
                                  {f"{key}_mask": tensors.arrays[f"{key}_mask"][train] for key in TARGET_KEYS},
                                  tensors.arrays["attributes"][test], config.seed)["attributes_linear"]
    return evaluate(predict(model, tensors, test), targets, masks), evaluate(linear, targets, masks)


def test_same_config_gives_the_same_weights_with_or_without_ray_train(local_ray, store, settings):
    config = TrainConfig(epochs=3)
    tensors = _tensors(store, settings, config)
    first, second = fit_locally(tensors, config), fit_locally(tensors, config)
    assert first.weights == second.weights
    through_ray = fit(store.uri, pin_data(store, settings, config), config,
                      RunRegistry(store).folder(".ray_train"), f"test-{time.time_ns()}")
    assert hashlib.sha256(through_ray.weights).digest() == hashlib.sha256(first.weights).digest()
    assert [entry["epoch"] for entry in through_ray.training_log] == [0, 1, 2]
    other_seed = fit_locally(_tensors(store, settings, TrainConfig(epochs=3, seed=1)), TrainConfig(epochs=3, seed=1))
    assert other_seed.weights != first.weights


def test_gathered_batches_hold_the_rows_asked_for_in_that_order(store, settings):
    config = TrainConfig(epochs=1)
    tensors = _tensors(store, settings, config)
    rows = np.random.default_rng(0).permutation(len(tensors.entity_ids))[:37]
    batch = TorchRows(tensors).batch(torch.from_numpy(rows))
    assert set(batch) == set(tensors.arrays)
    for key, value in tensors.rows(rows).items():
        assert batch[key].numpy().dtype == value.dtype
        np.testing.assert_array_equal(batch[key].numpy(), value)


def test_training_with_dropout_is_reproducible(store, settings):
    config = TrainConfig(epochs=1, model=ModelArchitecture(dropout=0.2))
    tensors = _tensors(store, settings, config)
    assert fit_locally(tensors, config).weights == fit_locally(tensors, config).weights


def test_gpu_request_without_gpus_fails_instead_of_hanging(local_ray, store, settings):
    config = TrainConfig(epochs=1, use_gpu=True)
    with pytest.raises(ConfigError, match="use_gpu=true needs 1 GPU"):
        fit(store.uri, pin_data(store, settings, config), config, RunRegistry(store).folder(".ray_train"), "gpu")


def test_run_id_changes_with_seed_data_config_or_code():
    manifest = {"tables": {"events": 1}, "feature_version": "f", "as_of": None}
    base = run_id_for(TrainConfig(), manifest, "code")
    assert base == run_id_for(TrainConfig(), manifest, "code")
    assert base != run_id_for(TrainConfig(seed=1), manifest, "code")
    assert base != run_id_for(TrainConfig(), {**manifest, "tables": {"events": 2}}, "code")
    assert base != run_id_for(TrainConfig(), {**manifest, "feature_version": "g"}, "code")
    assert base != run_id_for(TrainConfig(epochs=7), manifest, "code")
    assert base != run_id_for(TrainConfig(), manifest, "other code")


def test_full_model_beats_attributes_and_every_modality_carries_signal(store, settings):
    full, linear = _test_metrics(store, settings, TrainConfig(epochs=30))
    assert full["regression"]["r2"] >= linear["regression"]["r2"] + 0.15
    assert full["classification"]["auc_roc"] >= linear["classification"]["auc_roc"] + 0.04
    assert full["ranking"]["spearman"] >= linear["ranking"]["spearman"] + 0.2
    for modality in ("events", "graph", "artifacts"):
        ablation = TrainConfig(epochs=30, model=ModelArchitecture(disabled={modality}))
        ablated, _ = _test_metrics(store, settings, ablation)
        assert ablated["regression"]["r2"] <= full["regression"]["r2"] - 0.1, modality
        assert ablated["ranking"]["spearman"] <= full["ranking"]["spearman"] - 0.05, modality


def test_a_run_writes_its_files_registers_and_is_never_redone(store, settings):
    config = TrainConfig(epochs=2, seed=21)
    result = train_run(store, settings, config, use_ray=False)
    registry = RunRegistry(store)
    assert result["status"] == "completed" and not result["reused"]
    weights = registry.read_file(result["run_id"], "model.safetensors")
    assert hashlib.sha256(weights).hexdigest() == result["model_sha256"]
    assert registry.read_file(result["run_id"], "model_sha256.txt").decode().strip() == result["model_sha256"]
    assert all(registry.read_file(result["run_id"], name) for name in RUN_FILES)
    assert len(registry.read_file(result["run_id"], "training_log.jsonl").splitlines()) == 2
    again = train_run(store, settings, config, use_ray=False)
    assert again["reused"] and again["model_sha256"] == result["model_sha256"]
    assert registry.latest_completed().run_id == result["run_id"]


def test_a_run_missing_its_quality_gate_is_rejected_and_not_latest(store, settings):
    latest_before = RunRegistry(store).latest_completed()
    result = train_run(store, settings, TrainConfig(epochs=1, seed=22, quality_gates={"regression.r2": 0.99}),
                       use_ray=False)
    assert result["status"] == "rejected"
    assert result["metrics"]["gate_violations"][0].startswith("regression.r2 = ")
    latest = RunRegistry(store).latest_completed()
    assert latest is None or latest.run_id != result["run_id"]
    assert latest_before is None or latest.run_id == latest_before.run_id


def test_reproduce_gives_identical_bytes_and_lineage_names_the_sources(store, settings):
    result = train_run(store, settings, TrainConfig(epochs=2, seed=23), use_ray=False)
    report = reproduce(store, result["run_id"], use_ray=False)
    assert report["identical_model"] and report["identical_test_predictions"]
    assert report["differences"] == {}
    lineage = run_lineage(store, result["run_id"])
    assert lineage["sources"]["events"][0]["source_file"] == "events.csv"
    assert len(lineage["sources"]["events"][0]["source_sha256"]) == 64


def test_reproduce_after_the_pinned_data_was_purged_says_so(tmp_path, write):
    small = Store(tmp_path / "s")
    ingest_table(small, "entities", write("e.csv", "entity_id,attributes\n" + "".join(
        f'e{i},"{{""x"": {i}, ""target_regression"": {i * 2}}}"\n' for i in range(40))))
    small_settings = load_settings(store_uri=small.uri)
    result = train_run(small, small_settings, TrainConfig(epochs=1), use_ray=False)
    from dmas.store.forget import forget_entity

    forget_entity(small, "e1", purge_old_versions=True)
    with pytest.raises(StoreError, match="purged"):
        reproduce(small, result["run_id"], use_ray=False)
    assert np.isfinite(result["metrics"]["test"]["regression"]["mae"])


def test_two_workers_with_ddp_are_reproducible(local_ray, store, settings):
    config = TrainConfig(epochs=1, num_workers=2)
    manifest = pin_data(store, settings, config)
    folder = RunRegistry(store).folder(".ray_train")
    first = fit(store.uri, manifest, config, folder, f"ddp-a-{time.time_ns()}")
    second = fit(store.uri, manifest, config, folder, f"ddp-b-{time.time_ns()}")
    assert first.weights == second.weights
    one_worker = fit_locally(_tensors(store, settings, config), config.model_copy(update={"num_workers": 1}))
    assert one_worker.weights != first.weights  # each rank sees half the batches: a different, fixed model

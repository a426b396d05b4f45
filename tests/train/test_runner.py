"""train_run on small stores: a killed run is retried in seconds, small runs skip Ray Train, records
carry the original stack's metric shapes, and the model's own settings reach the model."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from dmas.config import load_settings
from dmas.errors import ConfigError
from dmas.ingest.tabular import ingest_table
from dmas.store import Store
from dmas.store.runs import RunRegistry, RunStatus, read_lease
from dmas.train.config import TrainConfig
from dmas.train.loop import model_config_for
from dmas.train.runner import TrainedWith, fit_locally, pin_data, train_run
from dmas.train.tensorize import tensorize

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def _small_store(root: Path, n: int = 40) -> Store:
    """`n` entities with two numeric attributes and all three targets (no events, graph or media)."""
    root.mkdir(parents=True, exist_ok=True)
    rows = "".join(
        f'e{i},"{{""x"": {i % 7}, ""y"": {i % 3}, ""target_regression"": {i % 7 * 2 + i % 3}, '
        f'""target_binary"": {int(i % 7 > 3)}, ""target_ranking"": {i % 4}}}"\n' for i in range(n))
    (root / "entities.csv").write_text("entity_id,attributes\n" + rows)
    store = Store(root / "store")
    ingest_table(store, "entities", root / "entities.csv")
    return store


_KILLED_TRAINER = textwrap.dedent("""
    import sys, time
    from dmas.config import load_settings
    from dmas.store import Store
    from dmas.train import runner
    from dmas.train.config import TrainConfig

    train_for_real = runner.fit_locally

    def train_then_hang(tensors, config):
        result = train_for_real(tensors, config)
        print("trained", flush=True)
        time.sleep(600)  # SIGKILLed here: mid-run, lease held, nothing published
        return result

    runner.fit_locally = train_then_hang
    runner.code_version = lambda: "pinned"  # others may edit the tree meanwhile; the run_id must not move
    store = Store(sys.argv[1])
    runner.train_run(store, load_settings(store_uri=store.uri), TrainConfig(epochs=3), use_ray=False)
""")


def test_a_training_killed_with_sigkill_is_retried_within_seconds_under_its_run_id(tmp_path, monkeypatch):
    monkeypatch.setattr("dmas.train.runner.code_version", lambda: "pinned")
    store = _small_store(tmp_path)
    trainer = subprocess.Popen([sys.executable, "-c", _KILLED_TRAINER, store.uri], cwd=REPO,
                               stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert trainer.stdout.readline().strip() == "trained"
        [record] = RunRegistry(store).list()
        assert record.status == RunStatus.RUNNING
        assert f":{trainer.pid}:" in read_lease(store.location, record.run_id)["holder"]
    finally:
        os.kill(trainer.pid, signal.SIGKILL)
        trainer.wait()
    start = time.monotonic()
    retried = train_run(store, load_settings(store_uri=store.uri), TrainConfig(epochs=3), use_ray=False)
    elapsed = time.monotonic() - start
    assert retried["run_id"] == record.run_id and retried["status"] == RunStatus.COMPLETED
    assert not retried["reused"]
    assert elapsed < 15, f"the retry took {elapsed:.1f} s"
    assert RunRegistry(store).require(record.run_id).status == RunStatus.COMPLETED
    assert read_lease(store.location, record.run_id) is None


def test_small_runs_train_in_process_with_the_bytes_ray_train_gives(local_ray, tmp_path, monkeypatch):
    monkeypatch.setattr("dmas.train.runner.code_version", lambda: "pinned")  # others may edit the tree meanwhile
    in_process_store, ray_store = _small_store(tmp_path / "a"), _small_store(tmp_path / "b")
    config = TrainConfig(epochs=3)
    start = time.monotonic()
    small = train_run(in_process_store, load_settings(store_uri=in_process_store.uri), config)
    in_process_s = time.monotonic() - start
    start = time.monotonic()
    through_ray = train_run(ray_store, load_settings(store_uri=ray_store.uri),
                            config.model_copy(update={"in_process_max_entity_epochs": 0}))
    ray_s = time.monotonic() - start
    assert small["trained_with"] == TrainedWith.IN_PROCESS and through_ray["trained_with"] == TrainedWith.RAY_TRAIN
    assert small["run_id"] == through_ray["run_id"]  # how it trained is not part of the run_id
    assert small["model_sha256"] == through_ray["model_sha256"]
    assert RunRegistry(in_process_store).require(small["run_id"]).to_dict()["trained_with"] == "in_process"
    assert in_process_s < ray_s, (in_process_s, ray_s)


def test_a_big_one_worker_run_and_a_multi_worker_run_go_to_ray_train(tmp_path):
    from dmas.train.runner import trained_with

    store = _small_store(tmp_path)
    config = TrainConfig(epochs=3)
    tensors = tensorize(store, pin_data(store, load_settings(store_uri=store.uri), config), config.tensorize, 0)
    entity_epochs = len(tensors.indices("train")) * config.epochs
    at_limit = config.model_copy(update={"in_process_max_entity_epochs": entity_epochs})
    assert trained_with(at_limit, tensors, use_ray=True) == TrainedWith.IN_PROCESS
    over = config.model_copy(update={"in_process_max_entity_epochs": entity_epochs - 1})
    assert trained_with(over, tensors, use_ray=True) == TrainedWith.RAY_TRAIN
    assert trained_with(over, tensors, use_ray=False) == TrainedWith.IN_PROCESS
    two_workers = config.model_copy(update={"num_workers": 2})
    assert trained_with(two_workers, tensors, use_ray=True) == TrainedWith.RAY_TRAIN
    with pytest.raises(ConfigError, match="num_workers=2.*needs Ray Train"):
        trained_with(two_workers, tensors, use_ray=False)


def test_run_records_carry_the_original_metric_shapes_beside_dmas_metrics(tmp_path):
    store = _small_store(tmp_path, n=80)
    result = train_run(store, load_settings(store_uri=store.uri), TrainConfig(epochs=3), use_ray=False)
    [listed] = RunRegistry(store).list()
    for record in (listed.to_dict(), RunRegistry(store).require(result["run_id"]).to_dict(), result):
        metrics, test = record["metrics"], (record.get("test") or record["metrics"]["test"])
        assert {"run_id", "created_at", "status", "metrics"} <= set(record)
        assert set(metrics["regression"]) == {"mae", "rmse", "r2"}
        assert set(metrics["classification"]) == {"f1", "precision", "recall"}
        assert set(metrics["ranking"]) == {"ndcg", "spearman"}
        assert metrics["reg_r2"] == metrics["regression"]["r2"] == test["regression"]["r2"] is not None
        assert metrics["reg_mae"] == test["regression"]["mae"] and metrics["reg_rmse"] == test["regression"]["rmse"]
        assert metrics["cls_f1"] == metrics["classification"]["f1"] == test["classification"]["f1"]
        assert metrics["cls_precision"] == test["classification"]["precision"]
        assert metrics["cls_recall"] == test["classification"]["recall"]
        assert metrics["rank_ndcg@10"] == metrics["ranking"]["ndcg"] == test["ranking"]["ndcg_at_10"] is not None
        assert metrics["rank_spearman"] == test["ranking"]["spearman"]
        assert test["classification"]["auc_roc"] is not None and "log_loss" in test["classification"]
    assert "attributes_linear" in result["metrics"]["baselines"] and result["metrics"]["lift_over_attributes_linear"]
    on_disk = json.loads(RunRegistry(store).read_file(result["run_id"], "metrics.json"))
    assert on_disk["reg_r2"] == result["metrics"]["reg_r2"]


def test_dropout_from_a_train_config_reaches_the_model_and_changes_its_weights(tmp_path):
    store = _small_store(tmp_path)
    settings = load_settings(store_uri=store.uri)
    plain = TrainConfig(epochs=2)
    with_dropout = TrainConfig.model_validate({"epochs": 2, "model": {"dropout": 0.2}})
    tensors = tensorize(store, pin_data(store, settings, plain), plain.tensorize, plain.seed)
    assert model_config_for(tensors, with_dropout).dropout == 0.2
    assert model_config_for(tensors, plain).dropout == 0.0
    weights = fit_locally(tensors, with_dropout).weights
    assert hashlib.sha256(weights).digest() != hashlib.sha256(fit_locally(tensors, plain).weights).digest()
    assert weights == fit_locally(tensors, with_dropout).weights  # seeded dropout masks: still deterministic
    run = train_run(store, settings, with_dropout, use_ray=False)
    recorded = json.loads(RunRegistry(store).read_file(run["run_id"], "config.json"))
    assert recorded["model_config"]["dropout"] == 0.2 and recorded["train_config"]["model"]["dropout"] == 0.2


def test_a_small_run_asked_to_use_ray_never_starts_ray(tmp_path):
    store = _small_store(tmp_path)
    script = textwrap.dedent("""
        import sys, ray
        from dmas.config import load_settings
        from dmas.store import Store
        from dmas.train.config import TrainConfig
        from dmas.train.runner import train_run

        store = Store(sys.argv[1])
        run = train_run(store, load_settings(store_uri=store.uri), TrainConfig(epochs=3))
        print(run["trained_with"], run["status"], ray.is_initialized())
    """)
    done = subprocess.run([sys.executable, "-c", script, store.uri], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert done.stdout.split() == ["in_process", "completed", "False"], done.stderr[-2000:]

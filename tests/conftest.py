"""Shared fixtures: a fresh store per test, small file writers, and one local Ray per session."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.2")


@pytest.fixture
def store(tmp_path):
    from dmas.store import Store

    return Store(tmp_path / "store")


@pytest.fixture
def write(tmp_path):
    """write("name.csv", text) -> path of a file holding exactly `text`."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    return _write


@pytest.fixture
def one_torch_thread():
    """Small tensors run fastest on one thread, and the test machine has two cores to share."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def local_ray():
    """One small local Ray for the whole session, on loopback, dashboard off."""
    import ray

    temp_dir = tempfile.mkdtemp(prefix="dmasray", dir="/tmp")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024**2,
             _temp_dir=temp_dir, log_to_driver=False)
    yield ray
    ray.shutdown()


def build_synthetic_store(root: Path, n_entities: int, seed: int, **synth_options):
    """Synthetic data ingested into a store under `root`, with features (extracted in-process)."""
    from dmas.config import load_settings
    from dmas.features.pipeline import extract_pending
    from dmas.ingest.artifacts import ingest_artifact_manifest
    from dmas.ingest.tabular import ingest_table
    from dmas.store import Store
    from dmas.synth import generate

    data = generate(root / "synth", n_entities=n_entities, seed=seed, **synth_options)
    store = Store(root / "store")
    for kind, path in (("entities", data.entities_path), ("events", data.events_path),
                       ("interactions", data.interactions_path)):
        ingest_table(store, kind, path)
    report = ingest_artifact_manifest(store, data.artifacts_path)
    assert report["failed_rows"] == 0, report["errors"]
    extract_pending(store, load_settings(store_uri=store.uri), use_ray=False)
    return store


@pytest.fixture(scope="session")
def synthetic_store():
    """The factory above, for module-scoped fixtures."""
    return build_synthetic_store

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


@pytest.fixture(scope="session")
def local_ray():
    """One small local Ray for the whole session, on loopback, dashboard off."""
    import ray

    temp_dir = tempfile.mkdtemp(prefix="dmasray", dir="/tmp")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024**2,
             _temp_dir=temp_dir, log_to_driver=False)
    yield ray
    ray.shutdown()

"""A killed ingest leaves the previous version intact: commits are all or nothing."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dmas.ingest.artifacts import ingest_artifact_manifest
from dmas.ingest.tabular import ingest_table
from dmas.store import Store
from dmas.synth import generate


def _start_ingest(store_path: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dmas.cli", "ingest", *args, "--store", str(store_path), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _kill_when(process: subprocess.Popen, ready, timeout: float = 120) -> bool:
    """SIGKILL the process as soon as `ready()` holds; False if it finished first."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        if ready():
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.005)
    process.wait(timeout=60)
    return False


@pytest.mark.slow
def test_manifest_ingest_killed_midway_leaves_previous_version(tmp_path):
    data = generate(tmp_path / "synth", n_entities=300, seed=1)
    store = Store(tmp_path / "store")
    ingest_table(store, "entities", data.entities_path)
    before = store.snapshot()
    blobs = tmp_path / "store" / "blobs"

    def some_blobs_published() -> bool:
        return sum(1 for p in blobs.glob("??/??/*") if p.is_file()) >= 20

    process = _start_ingest(tmp_path / "store", "artifacts", str(data.artifacts_path))
    assert _kill_when(process, some_blobs_published), "ingest finished before it could be killed"

    reopened = Store(tmp_path / "store")
    assert reopened.snapshot() == before
    assert reopened.table("artifacts").read().num_rows == 0
    assert reopened.table("entities").read().num_rows == 300
    rerun = ingest_artifact_manifest(reopened, data.artifacts_path)  # the retry completes normally
    assert rerun["failed_rows"] == 0 and rerun["success_rows"] == rerun["total_rows"]


@pytest.mark.slow
@pytest.mark.parametrize("kill_after_s", [0.8, 1.6, 2.4])
def test_table_ingest_killed_at_any_time_is_all_or_nothing(tmp_path, write, kill_after_s):
    n = 200_000
    ids = np.array([f"e{i}" for i in range(500)])
    pd.DataFrame({"entity_id": ids, "attributes": "{}"}).to_csv(tmp_path / "entities.csv", index=False)
    stamps = (pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(np.arange(n), unit="s"))
    pd.DataFrame({"entity_id": ids[np.arange(n) % 500], "timestamp": stamps.strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "event_type": "a", "event_value": np.arange(n) % 7}).to_csv(tmp_path / "events.csv", index=False)
    store = Store(tmp_path / "store")
    ingest_table(store, "entities", tmp_path / "entities.csv")

    process = _start_ingest(tmp_path / "store", "events", str(tmp_path / "events.csv"))
    started = time.monotonic()
    _kill_when(process, lambda: time.monotonic() - started > kill_after_s)

    events = Store(tmp_path / "store").table("events")
    rows = events.read().num_rows
    assert (events.version(), rows) in ((0, 0), (1, n))

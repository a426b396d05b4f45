"""A killed ingest leaves the previous version intact: commits are all or nothing."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

from dmas.ingest.artifacts import ingest_artifact_manifest
from dmas.ingest.tabular import ingest_table
from dmas.store import Store
from dmas.synth import generate
from tests.big_tables import write_entities_and_events


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
    write_entities_and_events(tmp_path, n)
    store = Store(tmp_path / "store")
    ingest_table(store, "entities", tmp_path / "entities.csv")

    process = _start_ingest(tmp_path / "store", "events", str(tmp_path / "events.csv"))
    started = time.monotonic()
    _kill_when(process, lambda: time.monotonic() - started > kill_after_s)

    events = Store(tmp_path / "store").table("events")
    rows = events.read().num_rows
    assert (events.version(), rows) in ((0, 0), (1, n))


def _killed_mid_write(tmp_path: Path, write) -> tuple[Store, list[Path], pa.Table]:
    """A store with one events commit, and an events ingest SIGKILLed while it wrote data files.

    The kill comes as the first data file is staged; should the commit still win the race (a loaded
    machine can leave the watcher without a core for the few ms it takes), the scenario runs again
    in a fresh store, up to 8 times.
    """
    n = 600_000
    write_entities_and_events(tmp_path, n)
    first = write("first.csv", "entity_id,timestamp,event_type,event_value\ne1,2023-01-01T00:00:00Z,a,1\n")
    for attempt in range(8):
        root = tmp_path / f"store{attempt}"
        store = Store(root)
        ingest_table(store, "entities", tmp_path / "entities.csv")
        ingest_table(store, "events", first)
        folder = root / "tables" / "events"
        committed = {p.name for p in folder.iterdir()}

        def writing(folder=folder, committed=committed) -> bool:
            return any(p.name not in committed for p in folder.iterdir())

        process = _start_ingest(root, "events", str(tmp_path / "events.csv"))
        assert _kill_when(process, writing), "ingest finished before it could be killed"
        reopened = Store(root)
        if reopened.snapshot()["events"] == 1:
            return reopened, [p for p in folder.iterdir() if p.name not in committed], store.table("events").read()
    pytest.fail("the ingest committed before every kill")


def _a_day_old(paths: list[Path]) -> None:
    past = time.time() - 25 * 3600
    for path in paths:
        os.utime(path, (past, past))


@pytest.mark.slow
def test_store_vacuum_removes_what_a_killed_ingest_left(tmp_path, write):
    store, orphans, before = _killed_mid_write(tmp_path, write)
    assert orphans and all(p.exists() for p in orphans)
    _a_day_old(orphans)

    result = subprocess.run([sys.executable, "-m", "dmas.cli", "store", "vacuum", "--store", store.uri, "--quiet"],
                            capture_output=True, text=True, check=True)
    report = json.loads(result.stdout)
    assert sorted(report["tables"]["events"]["removed"]) == sorted(p.name for p in orphans)
    assert report["files_removed"] == len(orphans)
    assert not any(p.exists() for p in orphans)
    reopened = Store(store.uri)
    assert reopened.snapshot()["events"] == 1 and reopened.table("events").read().equals(before)


@pytest.mark.slow
def test_the_next_commit_removes_what_a_killed_ingest_left(tmp_path, write):
    store, orphans, _ = _killed_mid_write(tmp_path, write)
    _a_day_old(orphans)
    report = ingest_table(store, "events", write("next.csv", "entity_id,timestamp,event_type,event_value\n"
                                                             "e2,2023-01-01T00:00:00Z,a,1\n"))
    assert report["version"] == 2 and not any(p.exists() for p in orphans)
    assert store.table("events").read().num_rows == 2

"""The Ray Data feature pipeline: same bytes whatever the parallelism, failures marked, crashes retried."""

import functools
import io
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from dmas.config import load_settings
from dmas.features import extract_features
from dmas.features.pipeline import extract_pending, pending_blobs
from dmas.ingest.artifacts import ingest_artifact_manifest
from dmas.ingest.tabular import ingest_table
from dmas.store import Store
from dmas.synth import generate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ingested_store(tmp_path_factory):
    """A store holding a few hundred synthetic artifacts (some sharing bytes), plus one corrupt blob."""
    root = tmp_path_factory.mktemp("pipeline")
    data = generate(root / "synth", n_entities=200, seed=7, video_fraction=0.15)
    store = Store(root / "store")
    ingest_table(store, "entities", data.entities_path)
    report = ingest_artifact_manifest(store, data.artifacts_path)
    assert report["failed_rows"] == 0, report["errors"]
    _plant_corrupt_video(store)
    return root / "store"


def _plant_corrupt_video(store: Store) -> None:
    """A video blob that stopped decoding after it was stored (bit rot, an older dmas's weaker checks)."""
    video = store.table("artifacts").read().filter(pa.compute.equal(pa.compute.field("artifact_type"), "video"))
    good = video.slice(0, 1).to_pylist()[0]
    damaged = store.blobs.read(good["sha256"])[:400]
    with store.blobs.staged(io.BytesIO(damaged), max_bytes=10**6) as staged:
        sha256 = staged.sha256
    row = {**good, "sha256": sha256, "artifact_id": "corrupt-video", "size_bytes": len(damaged)}
    store.table("artifacts").upsert(pa.Table.from_pylist([row], schema=store.table("artifacts").spec.schema), {})


def _copy(template: Path, tmp_path: Path) -> Store:
    shutil.copytree(template, tmp_path / "store")
    return Store(tmp_path / "store")


def _settings(**features):
    return load_settings(features=features)


def _stored_bytes(store: Store) -> bytes:
    table = store.table("features").read()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def test_same_bytes_with_one_or_two_workers_and_any_task_split(local_ray, ingested_store, tmp_path):
    one = _copy(ingested_store, tmp_path / "a")
    two = _copy(ingested_store, tmp_path / "b")
    first = extract_pending(one, _settings(concurrency=1, tasks_per_cpu=1, batch_size=1000))  # one task
    second = extract_pending(two, _settings(concurrency=2, batch_size=5))  # dozens of tasks
    assert first["pending"] == second["pending"] > 200
    assert (first["tasks"], second["tasks"]) == (1, 2 * -(-first["pending"] // 10))  # 2 CPUs, at most 5 each
    assert _stored_bytes(one) == _stored_bytes(two)
    blobs = one.table("artifacts").read(columns=["sha256"])["sha256"]
    assert first["pending"] == len(set(blobs.to_pylist())) < len(blobs)  # shared blobs extracted once


def test_a_corrupt_file_is_marked_failed_and_the_rest_goes_on(local_ray, ingested_store, tmp_path):
    store = _copy(ingested_store, tmp_path)
    result = extract_pending(store, _settings(batch_size=16))
    assert result["failed"] == 1 and result["extracted"] == result["pending"] - 1
    (failure,) = result["failures"]
    assert failure["artifact_type"] == "video" and failure["error"]
    artifacts = store.table("artifacts").read()
    failed = artifacts.filter(pa.compute.equal(artifacts["status"], "failed")).to_pylist()
    assert [row["sha256"] for row in failed] == [failure["sha256"]] and failed[0]["error"] == failure["error"]
    features = store.table("features").read().to_pylist()
    vectors = {row["artifact_type"]: len(row["vector"]) for row in features if row["status"] == "ok"}
    assert vectors["image"] >= 240 and set(vectors) == {"image", "audio", "video"}


def test_second_run_with_nothing_pending_does_nothing(local_ray, ingested_store, tmp_path):
    store = _copy(ingested_store, tmp_path)
    extract_pending(store, _settings())
    before = store.snapshot()
    again = extract_pending(store, _settings())
    assert again["pending"] == 0 and "nothing pending" in again["message"]
    assert store.snapshot() == before


def crash_once(artifact_type, data, config, *, sentinel: str):
    """Kills its worker process the first time it runs anywhere (a crashed task), then extracts normally."""
    try:
        fd = os.open(sentinel, os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        return extract_features(artifact_type, data, config)
    os.close(fd)
    os._exit(1)


def test_a_crashed_task_is_retried_and_the_result_is_unchanged(local_ray, ingested_store, tmp_path):
    reference = _copy(ingested_store, tmp_path / "ref")
    crashed = _copy(ingested_store, tmp_path / "crash")
    extract_pending(reference, _settings(batch_size=32))
    sentinel = tmp_path / "crashed-once"
    extract_pending(crashed, _settings(batch_size=32), extract=functools.partial(crash_once, sentinel=str(sentinel)))
    assert sentinel.exists()
    assert _stored_bytes(crashed) == _stored_bytes(reference)
    assert pending_blobs(crashed, extract_pending(crashed, _settings())["feature_version"]).num_rows == 0


def test_in_process_extraction_stores_the_same_bytes(local_ray, ingested_store, tmp_path):
    through_ray = _copy(ingested_store, tmp_path / "ray")
    in_process = _copy(ingested_store, tmp_path / "local")
    extract_pending(through_ray, _settings())
    extract_pending(in_process, _settings(), use_ray=False)
    assert _stored_bytes(through_ray) == _stored_bytes(in_process)

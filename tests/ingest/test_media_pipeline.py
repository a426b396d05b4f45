"""Checking a manifest's files on Ray or in this process, in one task or many: same report, same store."""

import hashlib
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from dmas.config import LimitSettings, RaySettings
from dmas.ingest.artifacts import ingest_artifact_manifest
from dmas.ingest.media_pipeline import MediaCheckSettings
from dmas.ingest.tabular import ingest_table
from dmas.store import Store
from dmas.synth_media import encode_image, encode_mp4, encode_wav

pytestmark = pytest.mark.slow


def _files() -> dict[str, bytes]:
    """Distinct images, sounds and clips, plus the bad kinds of file a manifest meets."""
    rng = np.random.default_rng(11)
    files = {}
    for i in range(12):
        files[f"img{i}.png"] = encode_image(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8), "png")
        files[f"snd{i}.wav"] = encode_wav((rng.normal(0, 3000, 800)).astype(np.int16))
    for i in range(4):
        files[f"clip{i}.mp4"] = encode_mp4(rng.integers(0, 255, (2, 16, 16, 3), dtype=np.uint8))
    files["broken.png"] = files["img0.png"][:60]
    files["text.jpg"] = b"not a picture at all" * 5
    files["big.png"] = encode_image(np.zeros((40, 40, 3), dtype=np.uint8), "png")  # above the pixel limit below
    return files


_GOOD = [f"media/{name}" for name in sorted(_files()) if name[:3] in ("img", "snd", "cli")]
# Rows after the good ones, each with the error it must get (None: stored). They repeat contents and
# rows of the good ones, so that with several tasks the repeats are checked in other tasks.
_MORE = [
    ("media/img0.png,image,e0,,", ("path", f"duplicate of row {2 + _GOOD.index('media/img0.png')} in this file")),
    ("media/img0.png,image,e1,2024-01-01T00:00:00Z,", None),  # same content, its own row
    ("media/broken.png,audio,e0,,", ("artifact_type", "'media/broken.png': declared 'audio' but the content is image "
                                                      "(png)")),  # found before decoding ...
    ("media/broken.png,,e1,,", ("path", "'media/broken.png': png: image does not decode")),  # ... and not let in
    ("media/text.jpg,,e2,,", ("path", "'media/text.jpg': not a supported image, audio or video file")),
    ("media/big.png,,e0,,", ("path", "'media/big.png': png: image is 40x40 = 1600 pixels, above the limit of 1000")),
    ("media/snd1.wav,video,e0,,", ("artifact_type", "declared 'video' but the content is audio (wav)")),
    ("media/clip0.mp4,audio,e1,,", ("artifact_type", "declared 'audio' but the content is video (mp4)")),
    ("media/missing.png,,e0,,", ("path", "cannot open 'media/missing.png': No such file or directory")),
    ("../outside.png,,e0,,", ("path", "path leaves the manifest's folder")),
    ("media/img1.png,,nobody,,", ("entity_id", "unknown entity 'nobody'")),
    (",,e0,,", ("path", "missing required field 'path'")),
    *[(f"media/snd{i}.wav,,e{i % 3},2024-02-0{1 + i % 9}T00:00:00Z,\"{{\"\"take\"\": {i}}}\"", None)
      for i in range(12)],
]
# Then every good row again: duplicates whose first row is checked in a later task for some split.
_REPEATS = [f"{name},,e0,," for name in _GOOD]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("manifest")
    (folder / "media").mkdir()
    for name, data in _files().items():
        (folder / "media" / name).write_bytes(data)
    (folder / "entities.csv").write_text("entity_id,attributes\ne0,\ne1,\ne2,\n")
    path = folder / "artifacts.csv"
    path.write_text("path,artifact_type,entity_id,timestamp,metadata\n" + "\n".join(
        [f"{name},,e0,," for name in _GOOD] + [row for row, _ in _MORE] + _REPEATS) + "\n")
    return path


def _ingest(root: Path, manifest: Path, use_ray: bool, **checks) -> tuple[dict, Store]:
    store = Store(root)
    ingest_table(store, "entities", manifest.parent / "entities.csv")
    report = ingest_artifact_manifest(store, manifest, limits=LimitSettings(max_image_pixels=1000),
                                      checks=MediaCheckSettings(**checks), use_ray=use_ray,
                                      ray=RaySettings(num_cpus=2, include_dashboard=False))
    return report, store


def _stored(store: Store) -> tuple[list[dict], dict[str, str]]:
    """The artifacts table as read, and every published blob's path and content hash."""
    root = Path(store.uri) / "blobs"
    blobs = {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(root.rglob("*")) if p.is_file() and p.relative_to(root).parts[0] != "tmp"}
    return store.table("artifacts").read().to_pylist(), blobs


@pytest.fixture(scope="module")
def serial(manifest, tmp_path_factory):
    """The reference: every file checked in turn, in one task, in this process."""
    report, store = _ingest(tmp_path_factory.mktemp("serial") / "store", manifest, use_ray=False)
    return report, _stored(store)


def test_the_reference_report_has_each_rejection_in_its_row(serial):
    report, (rows, blobs) = serial
    errors = {error["row"]: (error["field"], error["error"]) for error in report["errors"]}
    for row, (_, expected) in enumerate(_MORE, start=2 + len(_GOOD)):
        if expected is None:
            assert row not in errors
        else:
            assert errors[row][0] == expected[0] and expected[1] in errors[row][1], (row, errors[row], expected)
    for row, first in enumerate(range(2, 2 + len(_GOOD)), start=2 + len(_GOOD) + len(_MORE)):
        assert errors[row] == ("path", f"duplicate of row {first} in this file (same content, entity and timestamp)")
    assert report["success_rows"] == len(rows) == len(_GOOD) + 1 + 12
    assert report["failed_rows"] == len(errors) == 11 + len(_REPEATS)
    assert len(blobs) == len(_GOOD)  # the broken and the rejected files published nothing


@pytest.mark.parametrize("checks", [
    {"files_per_task": 1},  # a task per file
    {"files_per_task": 5},
])
def test_in_process_tasks_of_any_size_give_the_same_report_and_store(serial, manifest, tmp_path, checks):
    report, store = _ingest(tmp_path / "store", manifest, use_ray=False, **checks)
    assert (report, _stored(store)) == serial


@pytest.mark.parametrize("checks", [
    {},  # two tasks per CPU
    {"tasks_per_cpu": 1},  # one task per CPU
    {"files_per_task": 3, "tasks_per_cpu": 1},  # many small tasks, rows of one content in different tasks
])
def test_ray_tasks_give_the_same_report_and_store_as_the_loop(local_ray, serial, manifest, tmp_path, checks):
    report, store = _ingest(tmp_path / "store", manifest, use_ray=True, **checks)
    assert (report, _stored(store)) == serial


def test_large_manifests_go_to_ray_and_small_ones_stay_here(local_ray, serial, manifest, tmp_path, caplog):
    caplog.set_level("INFO", logger="dmas.ingest.media_pipeline")
    small, _ = _ingest(tmp_path / "small", manifest, use_ray=None, ray_min_files=1000)
    assert "Ray tasks" not in caplog.text
    large, store = _ingest(tmp_path / "large", manifest, use_ray=None, ray_min_files=10)
    assert "Ray tasks" in caplog.text
    assert small == large == serial[0] and _stored(store) == serial[1]


def _descendants_running(title: str) -> list[int]:
    """Pids of this process's descendants (its Ray workers) whose title starts with `title`."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid, rest = stat.read_text().split(" ", 1)
        except OSError:
            continue
        parents[int(pid)] = int(rest.rsplit(")", 1)[1].split()[1])
    ours, found = {os.getpid()}, True
    while found:
        found = {pid for pid, parent in parents.items() if parent in ours} - ours
        ours |= found
    running = []
    for pid in ours - {os.getpid()}:
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(title.encode()):
                running.append(pid)
        except OSError:
            continue
    return running


def test_a_killed_check_task_is_retried_and_the_result_is_unchanged(local_ray, serial, manifest, tmp_path):
    folder = tmp_path / "upload"
    shutil.copytree(manifest.parent, folder)
    stuck = folder / "media" / "text.jpg"  # one row's file, now a FIFO: its task waits until the test writes
    content = stuck.read_bytes()
    stuck.unlink()
    os.mkfifo(stuck)
    done = {}
    worker = threading.Thread(target=lambda: done.update(result=_ingest(
        tmp_path / "store", folder / "artifacts.csv", use_ray=True, files_per_task=4, tasks_per_cpu=1)), daemon=True)
    worker.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (waiting := _stuck_check_workers()):
        time.sleep(0.05)
    assert waiting, "no check task opened the FIFO"
    for pid in waiting:
        os.kill(pid, signal.SIGKILL)
    while any(_alive(pid) for pid in waiting):  # a reader dying in open() still counts: the write would be lost
        time.sleep(0.01)
    with open(stuck, "wb") as writer:  # opens once the retried task reads it again
        writer.write(content)
    worker.join(timeout=120)
    report, store = done["result"]
    assert ({**report, "file": manifest}, _stored(store)) == ({**serial[0], "file": manifest}, serial[1])


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _stuck_check_workers() -> list[int]:
    """Check-task workers still running a second later: one stuck opening a FIFO (tasks take ms)."""
    first = set(_descendants_running("ray::admit_files"))
    time.sleep(1.0)
    return sorted(first & set(_descendants_running("ray::admit_files")))

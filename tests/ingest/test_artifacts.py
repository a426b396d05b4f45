"""Artifact ingestion: content sniffing, limits, path confinement, dedupe, per-row rejections."""

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dmas.errors import IngestError
from dmas.ingest.artifacts import ingest_artifact, ingest_artifact_manifest
from dmas.ingest.tabular import ingest_table
from dmas.limits import LimitSettings
from dmas.synth_media import encode_image, encode_mp4, encode_wav

PNG = encode_image(np.full((8, 8, 3), 200, dtype=np.uint8), "png")
JPEG = encode_image(np.full((8, 8, 3), 30, dtype=np.uint8), "jpeg")
WAV = encode_wav((np.sin(np.arange(4000) / 5) * 8000).astype(np.int16))
MP4 = encode_mp4(np.zeros((3, 16, 16, 3), dtype=np.uint8))


@pytest.fixture
def media(tmp_path, store, write):
    ingest_table(store, "entities", write("entities.csv", "entity_id,attributes\ne1,\ne2,\n"))
    folder = tmp_path / "upload"
    (folder / "media").mkdir(parents=True)
    for name, data in {"a.png": PNG, "b.jpg": JPEG, "c.wav": WAV, "d.mp4": MP4, "same.png": PNG,
                       "looks_like.wav": PNG, "broken.png": PNG[:40], "text.png": b"hello, not an image" * 10}.items():
        (folder / "media" / name).write_bytes(data)
    return folder


def _manifest(folder: Path, rows: list[str]) -> Path:
    path = folder / "artifacts.csv"
    path.write_text("path,artifact_type,entity_id,timestamp,metadata\n" + "\n".join(rows) + "\n")
    return path


def _blob_files(store) -> list[Path]:
    root = Path(store.uri) / "blobs"
    return [p for p in root.rglob("*") if p.is_file() and p.relative_to(root).parts[0] != "tmp"]


def test_manifest_stores_each_kind_and_dedupes_identical_bytes(store, media):
    report = ingest_artifact_manifest(store, _manifest(media, [
        "media/a.png,image,e1,2024-01-01T00:00:00Z,\"{\"\"camera\"\": \"\"x\"\"}\"",
        "media/b.jpg,image,e1,,",
        "media/c.wav,audio,e2,,",
        "media/d.mp4,video,e2,,",
        "media/same.png,image,e2,,",  # same bytes as a.png, another entity: its own row, no new blob
    ]))
    assert (report["success_rows"], report["failed_rows"], report["unique_blobs"]) == (5, 0, 4)
    rows = store.table("artifacts").read().to_pylist()
    assert sorted((r["entity_id"], r["artifact_type"], r["media_format"]) for r in rows) == [
        ("e1", "image", "jpeg"), ("e1", "image", "png"), ("e2", "audio", "wav"), ("e2", "image", "png"),
        ("e2", "video", "mp4")]
    assert len(_blob_files(store)) == 4
    assert store.blobs.read(hashlib.sha256(PNG).hexdigest()) == PNG


def test_reingesting_a_manifest_changes_nothing(store, media):
    manifest = _manifest(media, ["media/a.png,image,e1,,", "media/c.wav,,e2,,"])
    first = ingest_artifact_manifest(store, manifest)
    again = ingest_artifact_manifest(store, manifest)
    assert (again["inserted_rows"], again["version"]) == (0, first["version"])


def test_type_comes_from_content_not_from_the_name(store, media):
    report = ingest_artifact_manifest(store, _manifest(media, ["media/looks_like.wav,,e1,,"]))
    assert report["success_rows"] == 1
    assert store.table("artifacts").read().column("artifact_type").to_pylist() == ["image"]


@pytest.mark.parametrize(("row", "field", "message"), [
    ("media/looks_like.wav,audio,e1,,", "artifact_type", "declared 'audio' but the content is image (png)"),
    ("media/broken.png,image,e1,,", "path", "image does not decode"),
    ("media/text.png,,e1,,", "path", "not a supported image, audio or video file"),
    ("media/missing.png,,e1,,", "path", "cannot open"),
    ("../outside.png,,e1,,", "path", "path leaves the manifest's folder"),
    ("/etc/passwd,,e1,,", "path", "absolute paths are not allowed"),
    ("media/a.png,picture,e1,,", "artifact_type", "must be one of image, audio, video"),
    ("media/a.png,,nobody,,", "entity_id", "unknown entity 'nobody'"),
    ("media/a.png,,e1,soon,", "timestamp", "not an ISO-8601 timestamp"),
    ("media/a.png,,e1,,[1]", "metadata", "not a JSON object"),
    (",,e1,,", "path", "missing required field 'path'"),
])
def test_bad_rows_are_rejected_with_row_and_field(store, media, row, field, message):
    (media.parent / "outside.png").write_bytes(PNG)
    report = ingest_artifact_manifest(store, _manifest(media, ["media/c.wav,audio,e1,,", row]))
    assert report["success_rows"] == 1 and report["failed_rows"] == 1
    error = report["errors"][0]
    assert (error["row"], error["field"]) == (3, field) and message in error["error"]


def test_symlink_out_of_the_folder_is_refused(store, media, tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(PNG)
    os.symlink(secret, media / "media" / "link.png")
    report = ingest_artifact_manifest(store, _manifest(media, ["media/link.png,,e1,,"]))
    assert report["errors"][0]["field"] == "path" and "leaves the manifest's folder" in report["errors"][0]["error"]
    assert _blob_files(store) == []


def test_size_limit_is_enforced_while_streaming(store, media):
    report = ingest_artifact_manifest(store, _manifest(media, ["media/d.mp4,,e1,,", "media/b.jpg,,e1,,"]),
                                      limits=LimitSettings(max_upload_bytes=len(JPEG) + 1))
    assert [(e["row"], e["field"]) for e in report["errors"]] == [(2, "path")]
    assert "larger than the upload limit" in report["errors"][0]["error"]
    assert len(_blob_files(store)) == 1


def test_decompression_bomb_is_rejected(store, media):
    Image.new("L", (400, 300)).save(media / "media" / "big.png")
    report = ingest_artifact_manifest(store, _manifest(media, ["media/big.png,,e1,,"]),
                                      limits=LimitSettings(max_image_pixels=100_000))
    assert "120000 pixels, above the limit of 100000" in report["errors"][0]["error"]
    assert _blob_files(store) == []


def test_strict_manifest_changes_nothing_on_a_bad_row(store, media):
    before = store.snapshot()
    with pytest.raises(IngestError, match="row 3, field 'path'"):
        ingest_artifact_manifest(store, _manifest(media, ["media/a.png,,e1,,", "media/text.png,,e1,,"]), strict=True)
    assert store.snapshot() == before


def test_single_file_upload(store, media):
    result = ingest_artifact(store, media / "media" / "c.wav", artifact_type="audio", entity_id="e1",
                             timestamp="2024-05-01T10:00:00+02:00", metadata={"mic": "left"})
    assert (result["artifact_type"], result["media_format"], result["inserted"]) == ("audio", "wav", True)
    assert result["timestamp"] == "2024-05-01T08:00:00+00:00" and result["metadata"] == '{"mic":"left"}'
    again = ingest_artifact(store, media / "media" / "c.wav", artifact_type="audio", entity_id="e1",
                            timestamp="2024-05-01T08:00:00Z", metadata={"mic": "left"})
    assert (again["inserted"], again["blob_was_stored"], again["artifact_id"]) == (False, True, result["artifact_id"])


def test_single_file_rejection_names_file_and_field(store, media):
    with pytest.raises(IngestError, match=r"text.png, row 1, field 'path': not a supported"):
        ingest_artifact(store, media / "media" / "text.png")
    with pytest.raises(IngestError, match="field 'entity_id'"):
        ingest_artifact(store, media / "media" / "a.png", entity_id="ghost")

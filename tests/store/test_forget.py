import hashlib
from pathlib import Path

import numpy as np
import pytest

from dmas.errors import StoreError
from dmas.ingest.artifacts import ingest_artifact_manifest
from dmas.ingest.tabular import ingest_table
from dmas.store.forget import forget_entity
from dmas.synth_media import encode_image

SHARED = encode_image(np.full((8, 8, 3), 90, dtype=np.uint8), "png")
OWN = encode_image(np.full((8, 8, 3), 10, dtype=np.uint8), "png")


@pytest.fixture
def populated(store, tmp_path, write):
    ingest_table(store, "entities", write("e.csv", "entity_id,attributes\nalice,{}\nbob,{}\n"))
    ingest_table(store, "events", write("ev.csv", "entity_id,timestamp,event_type,event_value\n"
                                                  "alice,2024-01-01T00:00:00Z,a,1\nbob,2024-01-01T00:00:00Z,a,1\n"))
    ingest_table(store, "interactions", write("i.csv", "src_entity_id,dst_entity_id,interaction_type,timestamp\n"
                                                       "bob,alice,msg,2024-01-01T00:00:00Z\n"
                                                       "bob,bob,note,2024-01-01T00:00:00Z\n"))
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "shared.png").write_bytes(SHARED)
    (tmp_path / "m" / "own.png").write_bytes(OWN)
    manifest = write("m/manifest.csv", "path,entity_id\nshared.png,alice\nown.png,alice\nshared.png,bob\n")
    ingest_artifact_manifest(store, manifest)
    return store


def test_forget_removes_the_entity_everywhere_and_keeps_shared_blobs(populated):
    before = populated.snapshot()
    report = forget_entity(populated, "alice")
    assert {name: info["rows_removed"] for name, info in report["tables"].items()} == {
        "entities": 1, "events": 1, "interactions": 1, "artifacts": 2, "features": 0}
    changed = {name for name in before if populated.snapshot()[name] != before[name]}
    assert changed == {"entities", "events", "interactions", "artifacts"}  # one new version each
    for name, table in populated.tables.items():
        for column in table.spec.entity_columns:
            assert "alice" not in table.read()[column].to_pylist(), name
    assert report["blobs_deleted"] == [hashlib.sha256(OWN).hexdigest()]
    assert populated.blobs.exists(hashlib.sha256(SHARED).hexdigest())
    assert not populated.blobs.exists(hashlib.sha256(OWN).hexdigest())
    assert populated.table("events").read().column("entity_id").to_pylist() == ["bob"]


def test_forget_writes_an_audit_record(populated):
    forget_entity(populated, "alice")
    (record,) = populated.audit("forget").records()
    assert record["entity_id"] == "alice" and record["tables"]["events"]["rows_removed"] == 1
    assert "time" in record


def test_old_versions_stay_readable_until_purged(populated):
    forget_entity(populated, "alice")
    old = populated.table("events").read(version=1).column("entity_id").to_pylist()
    assert "alice" in old  # time travel still works without --purge


def test_purge_makes_old_versions_unreadable(populated):
    forget_entity(populated, "alice", purge_old_versions=True)
    with pytest.raises(StoreError, match="version 1 cannot be read: its data files were purged"):
        populated.table("events").read(version=1)
    assert populated.table("events").read().column("entity_id").to_pylist() == ["bob"]
    files = [p.name for p in Path(populated.uri, "tables", "events").glob("*.parquet")]
    assert len(files) == 1


def test_unknown_entity_is_an_error(populated):
    with pytest.raises(StoreError, match="unknown entity 'carol'"):
        forget_entity(populated, "carol")

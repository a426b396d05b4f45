"""Artifact ids and types for the blobs in a run's slots, from the artifacts table at the pinned version."""

from datetime import UTC, datetime

import pyarrow as pa

from dmas.explain import ArtifactName
from dmas.scoring.artifact_names import ArtifactNames
from dmas.store.schemas import ARTIFACTS

A, B = "a" * 64, "b" * 64


def _commit(store, rows: list[tuple[str, str, str, str | None, int | None]]) -> int:
    """Artifact rows (artifact_id, sha256, type, entity_id, day of June 2024 or None) in one commit."""
    columns = {name: [] for name in ARTIFACTS.schema.names}
    for artifact_id, sha, kind, entity_id, day in rows:
        values = {"artifact_id": artifact_id, "sha256": sha, "artifact_type": kind, "media_format": "png",
                  "entity_id": entity_id, "timestamp": day and datetime(2024, 6, day, tzinfo=UTC),
                  "metadata": None, "size_bytes": 10, "source_name": None, "status": "ok", "error": None}
        for name in columns:
            columns[name].append(values[name])
    return store.table("artifacts").upsert(pa.table(columns, schema=ARTIFACTS.schema), {}).version


def test_slots_are_named_by_their_rows_even_when_a_blob_repeats(store):
    version = _commit(store, [("art_a1", A, "image", "e1", 1), ("art_b2", B, "audio", "e1", 2),
                              ("art_a3", A, "image", "e1", 3), ("art_e2", A, "image", "e2", 1),
                              ("art_free", B, "audio", None, None)])
    names = ArtifactNames(store, version, as_of=None)
    # training keeps the most recent artifacts in time order: with 2 slots B@2 then A@3, with 3 all of them
    assert names.of("e1", [B, A]) == [ArtifactName("art_b2", "audio"), ArtifactName("art_a3", "image")]
    assert [name.artifact_id for name in names.of("e1", [A, B, A, ""])] == ["art_a1", "art_b2", "art_a3"]
    assert names.of("e2", [A, ""]) == [ArtifactName("art_e2", "image")]
    assert names.of("nobody", [A]) == [ArtifactName(None, None)]


def test_read_at_the_pinned_version_and_cut_at_as_of(store):
    pinned = _commit(store, [("art_a1", A, "image", "e1", 1), ("art_a3", A, "image", "e1", 3)])
    _commit(store, [("art_a5", A, "image", "e1", 5)])
    assert names_of(ArtifactNames(store, pinned, None), [A]) == ["art_a3"]
    assert names_of(ArtifactNames(store, None, None), [A]) == ["art_a5"]
    assert names_of(ArtifactNames(store, pinned, "2024-06-02T00:00:00+00:00"), [A]) == ["art_a1"]


def test_an_unreadable_version_falls_back_to_the_latest(store):  # e.g. purged by forget --purge
    names = ArtifactNames(store, 99, None)
    _commit(store, [("art_a1", A, "image", "e1", 1)])
    assert names_of(names, [A]) == ["art_a1"]


def names_of(names: ArtifactNames, shas: list[str]) -> list[str | None]:
    return [name.artifact_id for name in names.of("e1", shas)]

"""Ingest media artifacts: one file, or a manifest of many, into blobs plus one artifacts commit.

Each file is streamed into a staged blob (size limit enforced while reading), its type sniffed from
content, decoded once to prove it is readable, and only then published under its sha256
(`admission.py`). Identical bytes are stored once; every manifest row still gets its own artifact
row. A manifest's files are checked in parallel on Ray when there are many (`media_pipeline.py`);
the report and the commit are the same as checked one by one here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dmas.errors import IngestError, RowError, UnreadableFileError
from dmas.ingest.admission import Admitter, ArtifactRejected
from dmas.ingest.fields import (
    ChunkChecks,
    canonical_json_object,
    optional_text,
    parse_timestamps,
    require_known,
    shown,
)
from dmas.ingest.hashing import file_sha256
from dmas.ingest.media_pipeline import ManifestChecker, MediaCheckSettings
from dmas.ingest.readers import read_table_file
from dmas.ingest.report import IngestReport
from dmas.limits import LimitSettings
from dmas.runtime import RaySettings
from dmas.store import Store
from dmas.store.schemas import ARTIFACTS
from dmas.vocabulary import ARTIFACT_TYPES

MANIFEST_COLUMNS = ("path", "artifact_type", "entity_id", "timestamp", "metadata")


@dataclass(frozen=True)
class ArtifactRow:
    """The descriptive fields of an artifact, already validated."""

    entity_id: str | None = None
    timestamp: datetime | None = None
    metadata: str | None = None  # canonical JSON object
    declared_type: str | None = None
    source_name: str | None = None


def artifact_id(sha256: str, entity_id: str | None, timestamp: datetime | None) -> str:
    """Deterministic id from content, owner and time, so re-ingesting the same row is a no-op."""
    when = "" if timestamp is None else timestamp.isoformat()
    return hashlib.sha256(f"{sha256}\x1f{entity_id or ''}\x1f{when}".encode()).hexdigest()[:32]


def ingest_artifact(store: Store, path: str | Path, *, artifact_type: str | None = None, entity_id: str | None = None,
                    timestamp: str | None = None, metadata: str | dict | None = None,
                    source_name: str | None = None, limits: LimitSettings | None = None) -> dict:
    """Ingest one media file; raises a DmasError naming the file and field when it is rejected."""
    limits = limits or LimitSettings()
    file = str(path)
    frame = pd.DataFrame({"entity_id": [entity_id], "timestamp": [timestamp],
                          "metadata": [metadata if not isinstance(metadata, dict) else canonical_json_object(metadata)],
                          "artifact_type": [artifact_type]})
    rows, errors = _validated_rows(store, frame, np.array([1]), require_path=False)
    if errors:
        raise IngestError(file, errors[0])
    row = replace(rows[0][1], source_name=source_name or Path(file).name)
    try:
        with open(file, "rb") as stream:
            blob = Admitter(store.blobs, limits).admit(stream, row.declared_type)
    except ArtifactRejected as exc:
        raise IngestError(file, RowError(1, exc.field, exc.reason)) from None
    except OSError as exc:
        raise UnreadableFileError(file, exc.strerror or str(exc)) from None
    record = _record(row, blob.sha256, blob.size_bytes, blob.kind.artifact_type, blob.kind.media_format)
    result = store.table("artifacts").upsert(
        pa.Table.from_pylist([record], schema=ARTIFACTS.schema),
        {"dmas_operation": "ingest artifact", "source_file": Path(file).name, "source_sha256": record["sha256"]})
    return {**_public(record), "version": result.version, "inserted": bool(result.inserted),
            "blob_was_stored": blob.already_stored}


def ingest_artifact_manifest(store: Store, manifest: str | Path, *, strict: bool = False,
                             limits: LimitSettings | None = None,
                             on_rows: Callable[[int], None] | None = None,
                             checks: MediaCheckSettings | None = None, ray: RaySettings | None = None,
                             use_ray: bool | None = None) -> dict:
    """Ingest every file a manifest lists (paths relative to its folder); one commit for all good rows.

    `on_rows(n)` is called as manifest rows are done, for progress bars. The files are checked on
    Ray (reached through `ray`) when a chunk has at least `checks.ray_min_files` of them, here
    otherwise; `use_ray` forces either. Both give the same report and the same store.
    """
    limits = limits or LimitSettings()
    file = str(manifest)
    base = Path(file).resolve().parent
    report = IngestReport(file=file, table="artifacts", max_errors=limits.max_reported_errors)
    checker = ManifestChecker(str(base), store.uri, limits, checks or MediaCheckSettings(), ray or RaySettings(),
                              use_ray)
    records = list(_manifest_records(store, file, checker, report, strict, limits.ingest_chunk_rows,
                                     on_rows or (lambda _: None)))
    report.success_rows = len(records)
    if records:
        result = store.table("artifacts").upsert(
            pa.Table.from_pylist(records, schema=ARTIFACTS.schema),
            {"dmas_operation": "ingest artifacts", "source_file": Path(file).name, "source_sha256": file_sha256(file)})
        report.inserted_rows, report.updated_rows, report.version = result.inserted, result.updated, result.version
    else:
        report.version = store.table("artifacts").version()
    out = report.to_dict()
    out["unique_blobs"] = len({record["sha256"] for record in records})
    return out


def _manifest_records(store: Store, file: str, checker: ManifestChecker, report: IngestReport,
                      strict: bool, chunk_rows: int, on_rows: Callable[[int], None]) -> Iterator[dict]:
    seen_ids: dict[str, int] = {}
    for chunk in read_table_file(file, chunk_rows=chunk_rows):
        _check_manifest_columns(file, list(chunk.frame.columns))
        report.total_rows += len(chunk.rows) + len(chunk.bad_rows)
        rows, errors = _validated_rows(store, chunk.frame, chunk.rows, require_path=True)
        errors = list(chunk.bad_rows) + errors
        on_rows(len(chunk.rows) - len(rows) + len(chunk.bad_rows))  # rows rejected before opening a file
        described = dict(rows)
        files = pa.table({"row": pa.array(list(described), pa.int64()),
                          "path": pa.array([row.source_name for row in described.values()], pa.string()),
                          "artifact_type": pa.array([row.declared_type for row in described.values()], pa.string())})
        outcomes = checker.check(files, on_rows)
        for row_number, sha256, size_bytes, artifact_type, media_format, field, error in zip(
                *(column.to_pylist() for column in outcomes.columns)):
            if error is not None:
                errors.append(RowError(row_number, field, error))
                continue
            record = _record(described[row_number], sha256, size_bytes, artifact_type, media_format)
            first = seen_ids.setdefault(record["artifact_id"], row_number)
            if first != row_number:
                errors.append(RowError(row_number, "path", f"duplicate of row {first} in this file "
                                                           "(same content, entity and timestamp)"))
                continue
            yield record
        errors.sort(key=lambda error: error.row)
        if strict and errors:
            raise IngestError(file, errors[0])
        report.add_errors(errors)


def _record(row: ArtifactRow, sha256: str, size_bytes: int, artifact_type: str, media_format: str) -> dict:
    """The stored artifacts row of an admitted blob."""
    return {
        "artifact_id": artifact_id(sha256, row.entity_id, row.timestamp),
        "sha256": sha256,
        "artifact_type": artifact_type,
        "media_format": media_format,
        "entity_id": row.entity_id,
        "timestamp": row.timestamp,
        "metadata": row.metadata,
        "size_bytes": size_bytes,
        "source_name": row.source_name,
        "status": "stored",
        "error": None,
    }


def _check_manifest_columns(file: str, columns: list[str]) -> None:
    if "path" not in columns:
        raise UnreadableFileError(file, f"an artifacts manifest needs a 'path' column; found {columns}")
    unexpected = [name for name in columns if name not in MANIFEST_COLUMNS]
    if unexpected:
        raise UnreadableFileError(file, f"unexpected column(s) {unexpected}; manifests have {list(MANIFEST_COLUMNS)}")


def _validated_rows(store: Store, frame: pd.DataFrame, rows: np.ndarray,
                    require_path: bool) -> tuple[list[tuple[int, ArtifactRow]], list[RowError]]:
    """Check the descriptive columns of manifest rows (or a single upload) and build ArtifactRows."""
    frame = frame.reindex(columns=list(dict.fromkeys([*MANIFEST_COLUMNS, *frame.columns])))
    checks = ChunkChecks(rows)
    entity = optional_text(frame["entity_id"])
    if entity.null_count < len(entity):
        known = store.table("entities").dataset().to_table(columns=["entity_id"])["entity_id"].combine_chunks()
        require_known(checks, entity, "entity_id", known)
    timestamps = parse_timestamps(checks, frame, "timestamp", required=False).to_pylist()
    declared = pc.utf8_lower(optional_text(frame["artifact_type"]))
    wrong_type = np.asarray(pc.and_(pc.is_valid(declared), pc.invert(pc.is_in(declared, pa.array(ARTIFACT_TYPES)))),
                            dtype=bool)
    checks.reject(wrong_type, "artifact_type",
                  lambda i: f"must be one of {', '.join(ARTIFACT_TYPES)}, got {shown(frame['artifact_type'].iloc[i])}")
    metadata = _metadata_texts(checks, frame["metadata"])
    paths = optional_text(frame["path"])
    if require_path:
        checks.reject(paths.is_null().to_numpy(zero_copy_only=False), "path",
                      lambda _: "missing required field 'path'")
    entity, declared, paths = entity.to_pylist(), declared.to_pylist(), paths.to_pylist()
    good = [
        (int(rows[i]), ArtifactRow(entity_id=entity[i], timestamp=timestamps[i], metadata=metadata[i],
                                   declared_type=declared[i], source_name=paths[i]))
        for i in np.flatnonzero(~checks.bad)
    ]
    return good, checks.sorted_errors()


def _metadata_texts(checks: ChunkChecks, column: pd.Series) -> list[str | None]:
    texts: list[str | None] = [None] * len(column)
    failures: dict[int, str] = {}
    for position, value in enumerate(column.to_numpy(dtype=object)):
        if value is None or (isinstance(value, float) and np.isnan(value)) or value == "":
            continue
        try:
            texts[position] = canonical_json_object(value)
        except ValueError as exc:
            failures[position] = f"not a JSON object ({exc}): {shown(value)}"
    checks.reject(np.isin(np.arange(len(column)), list(failures)), "metadata", lambda i: failures[i])
    return texts


def _public(record: dict) -> dict:
    out = dict(record)
    out["timestamp"] = None if record["timestamp"] is None else record["timestamp"].isoformat()
    return out

"""Ingest media artifacts: one file, or a manifest of many, into blobs plus one artifacts commit.

Each file is streamed into a staged blob (size limit enforced while reading), its type sniffed from
content, decoded once to prove it is readable, and only then published under its sha256. Identical
bytes are stored once; every manifest row still gets its own artifact row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dmas.config import LimitSettings
from dmas.errors import DmasError, IngestError, LimitExceededError, RowError, UnreadableFileError, UnsafePathError
from dmas.ingest.fields import (
    ChunkChecks,
    canonical_json_object,
    optional_text,
    parse_timestamps,
    require_known,
    shown,
)
from dmas.ingest.hashing import file_sha256
from dmas.ingest.media_check import UnreadableMediaError, check_media
from dmas.ingest.readers import read_table_file
from dmas.ingest.report import IngestReport
from dmas.ingest.safe_paths import confined_path
from dmas.ingest.sniff import ARTIFACT_TYPES, CONTAINER_FORMATS, MediaKind, sniff_media
from dmas.store import Store
from dmas.store.schemas import ARTIFACTS

MANIFEST_COLUMNS = ("path", "artifact_type", "entity_id", "timestamp", "metadata")


class ArtifactRejected(DmasError):
    """One artifact cannot be admitted; `field` names the offending input."""

    def __init__(self, field: str | None, reason: str):
        super().__init__(reason)
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class ArtifactRow:
    """The descriptive fields of an artifact, already validated."""

    entity_id: str | None = None
    timestamp: datetime | None = None
    metadata: str | None = None  # canonical JSON object
    declared_type: str | None = None
    source_name: str | None = None


class _Admitter:
    """Stages, sniffs, checks and publishes blobs; remembers what it already checked in this ingest."""

    def __init__(self, store: Store, limits: LimitSettings):
        self.store = store
        self.limits = limits
        self.checked: dict[str, MediaKind] = {}

    def admit(self, stream: BinaryIO, row: ArtifactRow) -> tuple[dict, bool]:
        """Publish the blob; returns the artifact row (stored schema) and whether the blob was already stored."""
        try:
            with self.store.blobs.staged(stream, self.limits.max_upload_bytes) as staged:
                kind = self.checked.get(staged.sha256) or self._check(staged, row.declared_type)
                self.checked[staged.sha256] = kind
        except LimitExceededError as exc:
            raise ArtifactRejected("path", str(exc)) from None
        if row.declared_type and row.declared_type != kind.artifact_type:
            raise ArtifactRejected("artifact_type", f"declared '{row.declared_type}' but the content is "
                                                    f"{kind.artifact_type} ({kind.media_format})")
        return {
            "artifact_id": artifact_id(staged.sha256, row.entity_id, row.timestamp),
            "sha256": staged.sha256,
            "artifact_type": kind.artifact_type,
            "media_format": kind.media_format,
            "entity_id": row.entity_id,
            "timestamp": row.timestamp,
            "metadata": row.metadata,
            "size_bytes": staged.size_bytes,
            "source_name": row.source_name,
            "status": "stored",
            "error": None,
        }, staged.already_stored

    def _check(self, staged, declared_type: str | None) -> MediaKind:
        kind = sniff_media(staged.head)
        if kind is None:
            raise ArtifactRejected(
                "path", f"not a supported image, audio or video file (starts with {staged.head[:8].hex(' ')})")
        streams_decide = kind.media_format in CONTAINER_FORMATS
        if declared_type and declared_type != kind.artifact_type and not streams_decide:
            return kind  # the caller reports the mismatch with both types
        try:
            with staged.open() as handle:
                checked = check_media(handle, None if streams_decide else kind.artifact_type,
                                      self.limits.max_image_pixels)
        except (UnreadableMediaError, LimitExceededError) as exc:
            raise ArtifactRejected("path", f"{kind.media_format}: {exc}") from None
        return MediaKind(checked, kind.media_format)


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
            record, blob_was_stored = _Admitter(store, limits).admit(stream, row)
    except ArtifactRejected as exc:
        raise IngestError(file, RowError(1, exc.field, exc.reason)) from None
    except OSError as exc:
        raise UnreadableFileError(file, exc.strerror or str(exc)) from None
    result = store.table("artifacts").upsert(
        pa.Table.from_pylist([record], schema=ARTIFACTS.schema),
        {"dmas_operation": "ingest artifact", "source_file": Path(file).name, "source_sha256": record["sha256"]})
    return {**_public(record), "version": result.version, "inserted": bool(result.inserted),
            "blob_was_stored": blob_was_stored}


def ingest_artifact_manifest(store: Store, manifest: str | Path, *, strict: bool = False,
                             limits: LimitSettings | None = None,
                             on_rows: Callable[[int], None] | None = None) -> dict:
    """Ingest every file a manifest lists (paths relative to its folder); one commit for all good rows.

    `on_rows(n)` is called as manifest rows are done, for progress bars.
    """
    limits = limits or LimitSettings()
    file = str(manifest)
    base = Path(file).resolve().parent
    report = IngestReport(file=file, table="artifacts", max_errors=limits.max_reported_errors)
    admitter = _Admitter(store, limits)
    records = list(_manifest_records(store, file, base, admitter, report, strict, limits.ingest_chunk_rows,
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


def _manifest_records(store: Store, file: str, base: Path, admitter: _Admitter, report: IngestReport,
                      strict: bool, chunk_rows: int, on_rows: Callable[[int], None]) -> Iterator[dict]:
    seen_ids: dict[str, int] = {}
    for chunk in read_table_file(file, chunk_rows=chunk_rows):
        _check_manifest_columns(file, list(chunk.frame.columns))
        report.total_rows += len(chunk.rows) + len(chunk.bad_rows)
        rows, errors = _validated_rows(store, chunk.frame, chunk.rows, require_path=True)
        errors = list(chunk.bad_rows) + errors
        on_rows(len(chunk.rows) - len(rows) + len(chunk.bad_rows))  # rows rejected before opening a file
        for row_number, row in rows:
            on_rows(1)
            try:
                target = confined_path(base, row.source_name)
                with open(target, "rb") as stream:
                    record, _ = admitter.admit(stream, row)
            except UnsafePathError as exc:
                errors.append(RowError(row_number, "path", str(exc)))
                continue
            except OSError as exc:
                errors.append(RowError(row_number, "path", f"cannot open {shown(row.source_name)}: "
                                                           f"{exc.strerror or exc}"))
                continue
            except ArtifactRejected as exc:
                errors.append(RowError(row_number, exc.field, f"{shown(row.source_name)}: {exc.reason}"))
                continue
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

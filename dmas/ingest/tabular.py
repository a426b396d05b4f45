"""Ingest one table file (entities, events or interactions) into the store in one atomic commit.

The file is streamed chunk by chunk through reading, validation and duplicate detection straight
into a Delta merge, so memory stays bounded; the commit happens only after the last chunk, so a
crash or a strict-mode rejection leaves the previous version untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
from deltalake.exceptions import CommitFailedError

from dmas.errors import ConflictError, IngestError, RowError, StoreError
from dmas.ingest.duplicates import key_hashes, repeated_rows
from dmas.ingest.hashing import file_sha256
from dmas.ingest.prefetch import prefetched
from dmas.ingest.readers import read_table_file
from dmas.ingest.report import IngestReport
from dmas.ingest.validators import LAYOUTS, TableLayout
from dmas.limits import LimitSettings
from dmas.store import Store
from dmas.store.tables import CommitResult

log = logging.getLogger(__name__)

TABLE_KINDS = tuple(LAYOUTS)
COMMIT_ATTEMPTS = 5


def ingest_table(store: Store, kind: str, path: str | Path, *, strict: bool = False,
                 limits: LimitSettings | None = None, on_rows: Callable[[int], None] | None = None) -> dict:
    """Validate every row of `path` and commit the good ones to table `kind`; returns the report dict.

    With `strict`, the first bad row raises IngestError and nothing is written. `on_rows(n)` is
    called as rows are read, for progress bars.
    """
    if kind not in LAYOUTS:
        raise StoreError(f"unknown table kind '{kind}'; choose one of {', '.join(TABLE_KINDS)}")
    limits = limits or LimitSettings()
    layout = LAYOUTS[kind]
    file = str(path)
    metadata = {"dmas_operation": f"ingest {kind}", "source_file": Path(file).name, "source_sha256": file_sha256(file)}
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        try:
            result, report = _stream_into_table(store, layout, file, strict, limits, metadata, on_rows)
            break
        except CommitFailedError as exc:  # another writer committed first: validate again against its version
            if attempt == COMMIT_ATTEMPTS:
                raise ConflictError(f"{file}: other writers kept committing to '{kind}' first ({attempt} "
                                    "attempts); nothing was written, send the file again") from exc
            log.info("commit conflict on %s, attempt %d; retrying", kind, attempt)
    report.inserted_rows, report.updated_rows = result.inserted, result.updated
    report.version = result.version
    log.info("ingested %s", file, extra={"table": kind, "version": result.version, "rows": report.total_rows})
    return report.to_dict()


def _stream_into_table(store: Store, layout: TableLayout, file: str, strict: bool, limits: LimitSettings,
                       metadata: dict, on_rows: Callable[[int], None] | None) -> tuple[CommitResult, IngestReport]:
    """Read, validate and merge the file in a single commit.

    Duplicate keys inside the file are found optimistically: the first pass only collects key
    hashes and checks them once at the end. A clean file (the usual case) is read once; a file
    with repeats aborts that pass before its commit and is read again, dropping the repeats.
    """
    known_ids = None if layout.spec.name == "entities" else _entity_ids(store)
    repeats: dict[int, int] | None = None
    while True:
        report = IngestReport(file=file, table=layout.spec.name, max_errors=limits.max_reported_errors)
        stream = _ValidatedStream(layout, file, known_ids, strict, report, limits.ingest_chunk_rows, repeats,
                                  on_rows or (lambda _: None))
        try:
            result = store.table(layout.spec.name).upsert(
                pa.RecordBatchReader.from_batches(layout.spec.schema, stream.batches()), metadata)
        except CommitFailedError:
            raise
        except Exception as exc:
            if isinstance(stream.failure, _RepeatsFound):
                repeats = stream.failure.repeats
                continue
            if stream.failure is not None:
                raise stream.failure from None
            raise StoreError(f"{file}: commit to '{layout.spec.name}' failed, nothing was written: {exc}") from exc
        return result, report


class _RepeatsFound(Exception):
    """Ends a first pass that found repeated keys, so nothing is committed."""

    def __init__(self, repeats: dict[int, int]):
        super().__init__(f"{len(repeats)} repeated keys")
        self.repeats = repeats


def _entity_ids(store: Store) -> pa.Array:
    """Every stored entity id (unique: it is the entities table's key)."""
    return store.table("entities").dataset().to_table(columns=["entity_id"])["entity_id"].combine_chunks()


class _ValidatedStream:
    """Yields validated record batches; remembers an error raised mid-stream so the caller re-raises it
    (the Delta merge that consumes the stream would otherwise wrap it in its own error).

    `repeats` is None on a first pass (collect key hashes, check at the end) or the known
    {row: first row} of repeated keys on a second pass (drop and report them).
    """

    def __init__(self, layout: TableLayout, file: str, known_ids: pa.Array | None, strict: bool,
                 report: IngestReport, chunk_rows: int, repeats: dict[int, int] | None,
                 on_rows: Callable[[int], None]):
        self.layout = layout
        self.file = file
        self.known_ids = known_ids
        self.strict = strict
        self.report = report
        self.chunk_rows = chunk_rows
        self.repeats = repeats
        self.on_rows = on_rows
        self.failure: Exception | None = None

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Validated batches, produced in a background thread so validating overlaps the Delta write."""
        try:
            yield from prefetched(self._batches(), depth=4)
        except Exception as exc:
            self.failure = exc
            raise

    def _batches(self) -> Iterator[pa.RecordBatch]:
        absent: tuple[str, ...] | None = None  # known from the first chunk with records
        hashes, hashed_rows = [], []
        for chunk in prefetched(read_table_file(self.file, chunk_rows=self.chunk_rows)):
            first = absent is None
            if first and len(chunk.frame):
                absent = self.layout.absent_per_row(chunk.frame)
            chunk = replace(chunk, frame=self.layout.conform(self.file, chunk.frame, first))
            validated = self.layout.validate(chunk, self.known_ids, absent or ())
            if self.repeats is None:
                keep = np.ones(len(validated.rows), dtype=bool)
                hashes.append(key_hashes(validated.table, self.layout.spec.key))
                hashed_rows.append(validated.rows)
                repeat_errors = []
            else:
                keep, repeat_errors = self._drop_repeats(validated.rows)
            errors = sorted([*chunk.bad_rows, *validated.errors, *repeat_errors], key=lambda e: e.row)
            self._fail_if_strict(errors)
            self.report.total_rows += len(chunk.rows) + len(chunk.bad_rows)
            self.report.add_errors(errors)
            good = validated.table.filter(pa.array(keep))
            self.report.success_rows += good.num_rows
            self.on_rows(len(chunk.rows) + len(chunk.bad_rows))
            yield from good.to_batches()
        if self.repeats is None and hashes:
            repeats = repeated_rows(np.concatenate(hashes), np.concatenate(hashed_rows))
            if repeats:
                self._fail_if_strict([self._repeat_error(min(repeats), repeats)])
                raise _RepeatsFound(repeats)

    def _drop_repeats(self, rows: np.ndarray) -> tuple[np.ndarray, list[RowError]]:
        drop = np.fromiter((row in self.repeats for row in rows.tolist()), dtype=bool, count=len(rows))
        return ~drop, [self._repeat_error(int(row), self.repeats) for row in rows[drop]]

    def _repeat_error(self, row: int, repeats: dict[int, int]) -> RowError:
        return RowError(row, ", ".join(self.layout.spec.key), f"duplicate of row {repeats[row]} in this file")

    def _fail_if_strict(self, errors: list[RowError]) -> None:
        if self.strict and errors:
            raise IngestError(self.file, errors[0])

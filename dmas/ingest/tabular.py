"""Ingest one table file (entities, events or interactions) into the store in one atomic commit.

The file is streamed chunk by chunk through reading, validation and duplicate detection straight
into a Delta merge, so memory stays bounded; the commit happens only after the last chunk, so a
crash or a strict-mode rejection leaves the previous version untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from dmas.config import LimitSettings
from dmas.errors import IngestError, RowError, StoreError
from dmas.ingest.duplicates import DuplicateTracker
from dmas.ingest.hashing import file_sha256
from dmas.ingest.readers import read_table_file
from dmas.ingest.report import IngestReport
from dmas.ingest.validators import LAYOUTS, TableLayout
from dmas.store import Store

log = logging.getLogger(__name__)

TABLE_KINDS = tuple(LAYOUTS)


def ingest_table(store: Store, kind: str, path: str | Path, *, strict: bool = False,
                 limits: LimitSettings | None = None) -> dict:
    """Validate every row of `path` and commit the good ones to table `kind`; returns the report dict.

    With `strict`, the first bad row raises IngestError and nothing is written.
    """
    if kind not in LAYOUTS:
        raise StoreError(f"unknown table kind '{kind}'; choose one of {', '.join(TABLE_KINDS)}")
    limits = limits or LimitSettings()
    layout = LAYOUTS[kind]
    file = str(path)
    report = IngestReport(file=file, table=kind, max_errors=limits.max_reported_errors)
    known_ids = None if kind == "entities" else _entity_ids(store)
    stream = _ValidatedStream(layout, file, known_ids, strict, report, limits.ingest_chunk_rows)
    table = store.table(kind)
    metadata = {"dmas_operation": f"ingest {kind}", "source_file": Path(file).name, "source_sha256": file_sha256(file)}
    try:
        result = table.upsert(pa.RecordBatchReader.from_batches(layout.spec.schema, stream.batches()), metadata)
    except Exception as exc:
        if stream.failure is not None:
            raise stream.failure from None
        raise StoreError(f"{file}: commit to '{kind}' failed, nothing was written: {exc}") from exc
    report.inserted_rows, report.updated_rows = result.inserted, result.updated
    report.version = result.version
    log.info("ingested %s", file, extra={"table": kind, "version": result.version, "rows": report.total_rows})
    return report.to_dict()


def _entity_ids(store: Store) -> pa.Array:
    """Every stored entity id (unique: it is the entities table's key)."""
    return store.table("entities").dataset().to_table(columns=["entity_id"])["entity_id"].combine_chunks()


class _ValidatedStream:
    """Yields validated record batches; remembers an error raised mid-stream so the caller re-raises it
    (the Delta merge that consumes the stream would otherwise wrap it in its own error)."""

    def __init__(self, layout: TableLayout, file: str, known_ids: pa.Array | None, strict: bool,
                 report: IngestReport, chunk_rows: int):
        self.layout = layout
        self.file = file
        self.known_ids = known_ids
        self.strict = strict
        self.report = report
        self.chunk_rows = chunk_rows
        self.duplicates = DuplicateTracker(layout.spec.key)
        self.failure: Exception | None = None

    def batches(self) -> Iterator[pa.RecordBatch]:
        try:
            yield from self._batches()
        except Exception as exc:
            self.failure = exc
            raise

    def _batches(self) -> Iterator[pa.RecordBatch]:
        columns_checked = False
        for chunk in read_table_file(self.file, chunk_rows=self.chunk_rows):
            if not columns_checked:
                self.layout.check_columns(self.file, list(chunk.frame.columns))
                columns_checked = True
            validated = self.layout.validate(chunk, self.known_ids)
            keep, duplicate_errors = self.duplicates.check(validated.table, validated.rows)
            errors = sorted([*chunk.bad_rows, *validated.errors, *duplicate_errors], key=lambda e: e.row)
            self._fail_if_strict(errors)
            self.report.total_rows += len(chunk.rows) + len(chunk.bad_rows)
            self.report.add_errors(errors)
            good = validated.table.filter(pa.array(keep))
            self.report.success_rows += good.num_rows
            yield from good.to_batches()

    def _fail_if_strict(self, errors: list[RowError]) -> None:
        if self.strict and errors:
            raise IngestError(self.file, errors[0])

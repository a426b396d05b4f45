"""Row validation per table kind: a chunk as read from a file in, stored-schema rows and errors out."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dmas.errors import RowError, UnreadableFileError
from dmas.ingest.fields import (
    ChunkChecks,
    canonical_json_object,
    is_blank,
    json_object_text,
    optional_json_objects,
    parse_floats,
    parse_timestamps,
    require_known,
    require_text,
    scalar_from_text,
)
from dmas.ingest.readers import Chunk
from dmas.store.schemas import ENTITIES, EVENTS, INTERACTIONS, TableSpec


@dataclass(frozen=True)
class ValidatedChunk:
    """The good rows in the stored schema, their source row numbers, and the row errors."""

    table: pa.Table
    rows: np.ndarray
    errors: list[RowError]


@dataclass(frozen=True)
class TableLayout:
    """The columns a source file of one kind must have, may have, and how rows are checked.

    `required_per_row`: columns whose absence from a file fails each of its rows, not the file
    (the original API's rule for an entities file without `attributes`: a 0/N report).
    """

    spec: TableSpec
    required: tuple[str, ...]
    optional: tuple[str, ...]
    extra_columns_allowed: bool
    parse: Callable[[ChunkChecks, pd.DataFrame, pa.Array | None], dict[str, pa.Array]]
    required_per_row: tuple[str, ...] = ()

    def conform(self, file: str, frame: pd.DataFrame, first: bool) -> pd.DataFrame:
        """Check a chunk's columns and add absent ones as missing values.

        A required column absent from the first chunk fails the whole file (a wrong header);
        in later chunks of JSON files, where each record brings its own keys, absence is a
        per-row "missing required field". Unexpected columns fail the file wherever they appear.
        """
        columns = [str(name) for name in frame.columns]
        known = [*self.required, *self.optional]
        problems = []
        missing = [name for name in self.required if name not in columns]
        if first and missing and len(frame):
            problems.append(f"missing required column(s) {missing}")
        unexpected = [name for name in columns if name not in known]
        if unexpected and not self.extra_columns_allowed:
            problems.append(f"unexpected column(s) {unexpected}")
        if problems:
            raise UnreadableFileError(file, f"{'; '.join(problems)}; {self.spec.name} files have {known}, "
                                            f"found {columns}")
        return frame.reindex(columns=[*known, *[name for name in columns if name not in known]])

    def absent_per_row(self, frame: pd.DataFrame) -> tuple[str, ...]:
        """The `required_per_row` columns a file lacks, told from its first chunk as its header."""
        return tuple(name for name in self.required_per_row if name not in frame.columns)

    def validate(self, chunk: Chunk, known_ids: pa.Array | None, absent: tuple[str, ...] = ()) -> ValidatedChunk:
        """Parse and check a conformed chunk; every row fails on each `absent` column."""
        checks = ChunkChecks(chunk.rows)
        for name in absent:
            checks.reject(np.ones(len(chunk.rows), dtype=bool), name,
                          lambda _, name=name: f"missing required field '{name}': the file has no '{name}' column "
                                               "(it may be empty; other columns are merged into it)")
        columns = self.parse(checks, chunk.frame, known_ids)
        keep = pa.array(~checks.bad)
        arrays = [pc.filter(columns[field.name], keep).cast(field.type) for field in self.spec.schema]
        table = pa.Table.from_arrays(arrays, schema=self.spec.schema)
        return ValidatedChunk(table, chunk.rows[~checks.bad], checks.sorted_errors())


def _parse_entities(checks: ChunkChecks, frame: pd.DataFrame, _known: pa.Array | None) -> dict[str, pa.Array]:
    entity_id = require_text(checks, frame, "entity_id")
    raw = frame["attributes"].to_numpy(dtype=object)
    extra = {name: frame[name].to_numpy(dtype=object) for name in frame.columns
             if name not in ("entity_id", "attributes")}
    attributes = np.full(len(frame), "{}", dtype=object)
    failures: dict[int, str] = {}
    for position in np.flatnonzero(~checks.bad):
        try:
            attributes[position] = _entity_attributes(raw[position],
                                                      {name: cells[position] for name, cells in extra.items()})
        except ValueError as exc:
            failures[position] = str(exc)
    failed = np.isin(np.arange(len(frame)), list(failures))
    checks.reject(failed, "attributes", lambda i: failures[i])
    return {"entity_id": entity_id, "attributes": pa.array(attributes, type=pa.string())}


def _entity_attributes(raw: object, extra: dict[str, object]) -> str:
    """The attributes JSON object, merged with any extra columns (a 'wide' file: one column per attribute)."""
    attributes = {} if is_blank(raw) else json.loads(json_object_text(raw))
    for name, value in extra.items():
        if is_blank(value):
            continue
        if name in attributes:
            raise ValueError(f"attribute '{name}' is given both as a column and inside 'attributes'")
        attributes[name] = scalar_from_text(value)
    return canonical_json_object(attributes)


def _parse_events(checks: ChunkChecks, frame: pd.DataFrame, known: pa.Array | None) -> dict[str, pa.Array]:
    columns = {
        "entity_id": require_text(checks, frame, "entity_id"),
        "timestamp": parse_timestamps(checks, frame, "timestamp"),
        "event_type": require_text(checks, frame, "event_type"),
        "event_value": parse_floats(checks, frame, "event_value"),
        "event_metadata": optional_json_objects(checks, frame, "event_metadata"),
    }
    require_known(checks, columns["entity_id"], "entity_id", known)
    return columns


def _parse_interactions(checks: ChunkChecks, frame: pd.DataFrame, known: pa.Array | None) -> dict[str, pa.Array]:
    columns = {
        "src_entity_id": require_text(checks, frame, "src_entity_id"),
        "dst_entity_id": require_text(checks, frame, "dst_entity_id"),
        "interaction_type": require_text(checks, frame, "interaction_type"),
        "interaction_value": parse_floats(checks, frame, "interaction_value", default=1.0),
        "timestamp": parse_timestamps(checks, frame, "timestamp"),
        "metadata": optional_json_objects(checks, frame, "metadata"),
    }
    require_known(checks, columns["src_entity_id"], "src_entity_id", known)
    require_known(checks, columns["dst_entity_id"], "dst_entity_id", known)
    return columns


LAYOUTS: dict[str, TableLayout] = {
    "entities": TableLayout(ENTITIES, ("entity_id",), ("attributes",), True, _parse_entities,
                            required_per_row=("attributes",)),
    "events": TableLayout(EVENTS, ("entity_id", "timestamp", "event_type", "event_value"), ("event_metadata",),
                          False, _parse_events),
    "interactions": TableLayout(
        INTERACTIONS, ("src_entity_id", "dst_entity_id", "interaction_type", "timestamp"),
        ("interaction_value", "metadata"), False, _parse_interactions),
}

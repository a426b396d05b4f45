"""The stored tables: their Arrow schemas and the columns that identify a row.

Events and interactions are keyed by their content, so a retried upload never duplicates rows;
entities by `entity_id` (re-ingesting updates); artifacts by `artifact_id`, itself derived from
content (blob sha256, entity, time).

An event's or interaction's optional metadata (a JSON object, the original platform's
`event_metadata` / `metadata`) describes it but is not part of what happened, so it is not in the
key: the same event uploaded again with corrected metadata updates that row instead of adding a
second event that training would count twice, and a file without metadata (the older layout)
keeps what is stored (`keep_when_null`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

TIMESTAMP = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class TableSpec:
    """A table's schema, its key columns and the columns a re-ingest may update.

    `keep_when_null`: updatable columns that a null in the new rows leaves as stored.
    """

    name: str
    schema: pa.Schema
    key: tuple[str, ...]
    updatable: tuple[str, ...] = ()
    entity_columns: tuple[str, ...] = ()
    keep_when_null: tuple[str, ...] = ()


ENTITIES = TableSpec(
    name="entities",
    schema=pa.schema([
        pa.field("entity_id", pa.string(), nullable=False),
        pa.field("attributes", pa.string(), nullable=False),  # canonical JSON object
    ]),
    key=("entity_id",),
    updatable=("attributes",),
    entity_columns=("entity_id",),
)

EVENTS = TableSpec(
    name="events",
    schema=pa.schema([
        pa.field("entity_id", pa.string(), nullable=False),
        pa.field("timestamp", TIMESTAMP, nullable=False),
        pa.field("event_type", pa.string(), nullable=False),
        pa.field("event_value", pa.float64(), nullable=False),
        pa.field("event_metadata", pa.string(), nullable=True),  # canonical JSON object
    ]),
    key=("entity_id", "timestamp", "event_type", "event_value"),
    updatable=("event_metadata",),
    entity_columns=("entity_id",),
    keep_when_null=("event_metadata",),
)

INTERACTIONS = TableSpec(
    name="interactions",
    schema=pa.schema([
        pa.field("src_entity_id", pa.string(), nullable=False),
        pa.field("dst_entity_id", pa.string(), nullable=False),
        pa.field("interaction_type", pa.string(), nullable=False),
        pa.field("interaction_value", pa.float64(), nullable=False),
        pa.field("timestamp", TIMESTAMP, nullable=False),
        pa.field("metadata", pa.string(), nullable=True),  # canonical JSON object
    ]),
    key=("src_entity_id", "dst_entity_id", "interaction_type", "interaction_value", "timestamp"),
    updatable=("metadata",),
    entity_columns=("src_entity_id", "dst_entity_id"),
    keep_when_null=("metadata",),
)

ARTIFACTS = TableSpec(
    name="artifacts",
    schema=pa.schema([
        pa.field("artifact_id", pa.string(), nullable=False),
        pa.field("sha256", pa.string(), nullable=False),
        pa.field("artifact_type", pa.string(), nullable=False),  # image | audio | video
        pa.field("media_format", pa.string(), nullable=False),  # png, jpeg, wav, mp4, ... (sniffed)
        pa.field("entity_id", pa.string(), nullable=True),
        pa.field("timestamp", TIMESTAMP, nullable=True),
        pa.field("metadata", pa.string(), nullable=True),  # canonical JSON object
        pa.field("size_bytes", pa.int64(), nullable=False),
        pa.field("source_name", pa.string(), nullable=True),  # file name as uploaded, for people
        pa.field("status", pa.string(), nullable=False),
        pa.field("error", pa.string(), nullable=True),
    ]),
    key=("artifact_id",),
    updatable=("metadata", "source_name"),
    entity_columns=("entity_id",),
)

FEATURES = TableSpec(
    name="features",
    schema=pa.schema([
        pa.field("sha256", pa.string(), nullable=False),  # the blob the vector was extracted from
        pa.field("feature_version", pa.string(), nullable=False),
        pa.field("artifact_type", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),  # ok | failed
        pa.field("error", pa.string(), nullable=True),
        pa.field("vector", pa.list_(pa.float32()), nullable=True),
    ]),
    key=("sha256", "feature_version"),
)

TABLES: dict[str, TableSpec] = {
    spec.name: spec for spec in (ENTITIES, EVENTS, INTERACTIONS, ARTIFACTS, FEATURES)
}

# Batch scores (`dmas score`): outputs of a run at pinned table versions, one row per entity. Not in
# TABLES: the store's snapshot (what training pins) stays the five data tables, so scoring never
# changes a run's data manifest. Rows hold no wall-clock time, so scoring again gives the same bytes.
SCORES = TableSpec(
    name="scores",
    schema=pa.schema([
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("store_versions", pa.string(), nullable=False),  # canonical JSON {table: version}
        pa.field("as_of", pa.string(), nullable=True),  # ISO-8601 cut, null: none
        pa.field("entity_id", pa.string(), nullable=False),
        pa.field("regression", pa.float32(), nullable=False),
        pa.field("probability", pa.float32(), nullable=False),
        pa.field("ranking_score", pa.float32(), nullable=False),
        pa.field("embedding", pa.list_(pa.float32()), nullable=False),
        pa.field("input_sha256", pa.string(), nullable=False),
        pa.field("output_sha256", pa.string(), nullable=False),
        pa.field("model_sha256", pa.string(), nullable=False),
        pa.field("code_version", pa.string(), nullable=False),
        pa.field("explanation", pa.string(), nullable=True),  # JSON, with `dmas score --explain`
    ]),
    key=("run_id", "store_versions", "entity_id"),
    updatable=("as_of", "regression", "probability", "ranking_score", "embedding", "input_sha256", "output_sha256",
               "model_sha256", "code_version", "explanation"),
    entity_columns=("entity_id",),
    keep_when_null=("explanation",),  # a rescore without --explain keeps the explanations it has
)

"""The raw rows that describe some entities, read from pinned tables (the offline side).

Training reads every entity; scoring the past (`as_of`, `store_version`) and `dmas verify` read
only the entities asked about. The online view (dmas.online) produces the same `EntityRows` from
memory for the present. Every ordering the encoder relies on is made explicit here: entities in the
order asked (training: sorted by id), neighbours sorted by id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dmas.store import Store

MICROS = pa.timestamp("us", tz="UTC")
UNDATED = np.iinfo(np.int64).min  # an artifact without a time sorts before every dated one

EVENT_SCHEMA = pa.schema([("owner", pa.int64()), ("timestamp", pa.int64()), ("event_type", pa.string()),
                          ("event_value", pa.float64())])
LINK_SCHEMA = pa.schema([("owner", pa.int64()), ("other", pa.int64()), ("interaction_type", pa.string()),
                         ("interaction_value", pa.float64()), ("timestamp", pa.int64())])
ARTIFACT_SCHEMA = pa.schema([("owner", pa.int64()), ("artifact_id", pa.string()), ("sha256", pa.string()),
                             ("artifact_type", pa.string()), ("timestamp", pa.int64())])
FEATURE_SCHEMA = pa.schema([("sha256", pa.string()), ("artifact_type", pa.string()),
                            ("vector", pa.list_(pa.float32()))])


@dataclass
class EntityRows:
    """What the store holds about N entities; rows of each part name their entity by `owner` (0..N-1).

    `links` are interactions seen from the owner's side (both directions of each interaction);
    `other` is a row of `neighbour_attributes` (sorted by neighbour id), or of the entities
    themselves when `neighbour_attributes` is None (training, where every entity is present).
    `features` holds the vectors of the run's feature version for the blobs of `artifacts`.
    """

    entity_ids: np.ndarray  # object [N]
    attributes: pa.Array  # string [N]: canonical JSON objects
    events: pa.Table  # EVENT_SCHEMA
    links: pa.Table  # LINK_SCHEMA
    neighbour_attributes: pa.Array | None  # string [Q]
    artifacts: pa.Table  # ARTIFACT_SCHEMA
    features: pa.Table  # FEATURE_SCHEMA

    def __len__(self) -> int:
        return len(self.entity_ids)


def read_pinned(store: Store, tables: dict[str, int], feature_version: str,
                as_of: datetime | None) -> dict[str, pa.Table]:
    """Each table at its pinned version, rows after `as_of` removed, features of `feature_version` only."""
    read = {name: store.table(name).read(version=version) for name, version in tables.items()}
    if as_of is not None:
        cut = pa.scalar(as_of, MICROS)
        for name in ("events", "interactions"):
            read[name] = read[name].filter(pc.less_equal(read[name]["timestamp"], cut))
        artifacts = read["artifacts"]
        undated_or_before = pc.or_kleene(pc.is_null(artifacts["timestamp"]), pc.less_equal(artifacts["timestamp"], cut))
        read["artifacts"] = artifacts.filter(undated_or_before)
    features = read["features"]
    read["features"] = features.filter(pc.and_(pc.equal(features["feature_version"], feature_version),
                                               pc.equal(features["status"], "ok")))
    return read


def reference_time(tables: dict[str, pa.Table], as_of: datetime | None) -> int:
    """Microseconds of `as_of`, or of the latest timestamp in the snapshot: what "age" is measured to."""
    if as_of is not None:
        return micros(as_of)
    latest = [pc.max(tables[name]["timestamp"]).cast(pa.int64()).as_py() for name in ("events", "interactions",
                                                                                   "artifacts")]
    return max((value for value in latest if value is not None), default=0)


def micros(moment: datetime) -> int:
    return int(pa.scalar(moment, MICROS).cast(pa.int64()).as_py())


def rows_from_tables(tables: dict[str, pa.Table], entity_ids: list[str] | None = None) -> tuple[EntityRows, list[str]]:
    """The rows of `entity_ids` (every entity, sorted, when None) and the requested ids the tables lack."""
    entities = tables["entities"]
    if entity_ids is None:
        chosen, unknown = entities, []
    else:
        chosen, unknown = _in_order(entities, entity_ids)
    ids = chosen["entity_id"].combine_chunks()
    known_ids = entities["entity_id"].combine_chunks()
    events = tables["events"]
    owner = _index(events["entity_id"], ids)
    events = events.filter(pc.greater_equal(owner, 0))
    event_rows = pa.table([pc.filter(owner, pc.greater_equal(owner, 0)), _as_micros(events["timestamp"]),
                           events["event_type"].cast(pa.string()), events["event_value"]], schema=EVENT_SCHEMA)
    links, neighbours = _links(tables["interactions"], ids, known_ids, entities, everyone=entity_ids is None)
    return EntityRows(
        entity_ids=np.asarray(ids.to_pylist(), dtype=object),
        attributes=chosen["attributes"].combine_chunks().cast(pa.string()),
        events=event_rows,
        links=links,
        neighbour_attributes=neighbours,
        artifacts=_artifacts(tables["artifacts"], ids),
        features=tables["features"].select(["sha256", "artifact_type", "vector"]).cast(FEATURE_SCHEMA),
    ), unknown


def _in_order(entities: pa.Table, entity_ids: list[str]) -> tuple[pa.Table, list[str]]:
    """The entity rows of `entity_ids` in the order asked (each once), and the ids not among them."""
    unique = list(dict.fromkeys(entity_ids))
    found = pc.index_in(pa.array(unique, pa.string()), value_set=entities["entity_id"].combine_chunks())
    rows = [row for row in found.to_pylist() if row is not None]
    unknown = [entity for entity, row in zip(unique, found.to_pylist()) if row is None]
    return entities.take(pa.array(rows, pa.int64())), unknown


def _index(column: pa.ChunkedArray | pa.Array, ids: pa.Array) -> pa.Array:
    """Row of each value in `ids`, -1 when absent."""
    return pc.fill_null(pc.index_in(column, value_set=ids), -1).cast(pa.int64())


def _as_micros(column) -> pa.Array:
    return pc.cast(column, pa.int64()) if not isinstance(column, pa.ChunkedArray) else \
        pc.cast(column.combine_chunks(), pa.int64())


def _links(interactions: pa.Table, ids: pa.Array, known_ids: pa.Array, entities: pa.Table,
           everyone: bool) -> tuple[pa.Table, pa.Array | None]:
    """Both directions of every interaction between known entities whose owner is among `ids`."""
    src, dst = interactions["src_entity_id"], interactions["dst_entity_id"]
    known = pc.and_(pc.is_in(src, value_set=known_ids), pc.is_in(dst, value_set=known_ids))
    interactions = interactions.filter(known)
    src, dst = interactions["src_entity_id"], interactions["dst_entity_id"]
    owners = pa.chunked_array(src.chunks + dst.chunks, pa.string()) if interactions.num_rows else pa.chunked_array(
        [], pa.string())
    others = pa.chunked_array(dst.chunks + src.chunks, pa.string()) if interactions.num_rows else pa.chunked_array(
        [], pa.string())
    twice = {name: pa.concat_arrays([interactions[name].combine_chunks()] * 2) for name in
             ("interaction_type", "interaction_value")}
    times = pa.concat_arrays([_as_micros(interactions["timestamp"])] * 2)
    owner = _index(owners, ids)
    mine = pc.greater_equal(owner, 0)
    other_ids = pc.filter(others, mine).combine_chunks() if len(others) else pa.array([], pa.string())
    if everyone:
        neighbours, other = None, _index(other_ids, ids)
    else:
        neighbour_ids = pc.unique(other_ids).sort() if len(other_ids) else pa.array([], pa.string())
        neighbour_rows = pc.index_in(neighbour_ids, value_set=entities["entity_id"].combine_chunks())
        neighbours = entities["attributes"].combine_chunks().take(neighbour_rows).cast(pa.string())
        other = _index(other_ids, neighbour_ids)
    links = pa.table([pc.filter(owner, mine), other, pc.filter(twice["interaction_type"], mine).cast(pa.string()),
                      pc.filter(twice["interaction_value"], mine), pc.filter(times, mine)], schema=LINK_SCHEMA)
    return links, neighbours


def _artifacts(artifacts: pa.Table, ids: pa.Array) -> pa.Table:
    owned = artifacts.filter(pc.is_valid(artifacts["entity_id"]))
    owner = _index(owned["entity_id"], ids)
    owned = owned.filter(pc.greater_equal(owner, 0))
    times = pc.fill_null(_as_micros(owned["timestamp"]), UNDATED)
    return pa.table([pc.filter(owner, pc.greater_equal(owner, 0)), owned["artifact_id"].cast(pa.string()),
                     owned["sha256"].cast(pa.string()), owned["artifact_type"].cast(pa.string()), times],
                    schema=ARTIFACT_SCHEMA)

"""From a pinned store snapshot to the fixed-shape arrays the model trains on.

Everything is vectorised over all rows (numpy/pyarrow; no Python loop per entity) so a million
entities fit in memory, and every ordering is explicit so reading the same snapshot again yields
the same arrays. Normalisation statistics come from the training split only. With `as_of`, no
event, interaction or artifact after that time reaches the inputs (point-in-time correctness).
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from dmas.errors import StoreError
from dmas.store import Store
from dmas.vocabulary import TARGET_KEYS

ARTIFACT_TYPE_INDEX = {"image": 1, "audio": 2, "video": 3}
SPLITS = ("train", "validation", "test")
_MICROS = 1_000_000


class TensorizeConfig(BaseModel):
    """What goes into the arrays; part of a run's configuration (and so of its run_id)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)  # JSON bodies may say Infinity

    max_events: int = Field(50, gt=0, description="the last L events of each entity")
    max_neighbors: int = Field(5, ge=0, description="neighbours from interactions, most recent first")
    max_artifacts_per_entity: int = Field(2, ge=0, description="artifact vectors, most recent first")
    as_of: datetime | None = Field(None, description="keep everything after this time out of the inputs")
    split: Literal["hash", "time"] = Field("hash", description="by a hash of entity_id, or by entity time")
    split_fractions: tuple[float, float, float] = Field((0.7, 0.15, 0.15), description="train, validation, test")
    attribute_names: tuple[str, ...] | None = Field(None, description="numeric attributes used (None: all)")

    @model_validator(mode="after")
    def _check(self) -> TensorizeConfig:
        if abs(sum(self.split_fractions) - 1.0) > 1e-9 or min(self.split_fractions) < 0:
            raise ValueError(f"split_fractions={self.split_fractions} must be >= 0 and sum to 1")
        if self.as_of is not None and self.as_of.tzinfo is None:
            raise ValueError("as_of must carry a time zone (e.g. 2024-06-01T00:00:00Z)")
        return self


@dataclass(frozen=True)
class DataManifest:
    """Exactly which data a run read: table versions, feature version and the point-in-time cut."""

    tables: dict[str, int]
    feature_version: str
    as_of: str | None

    def to_dict(self) -> dict:
        return {"tables": dict(sorted(self.tables.items())), "feature_version": self.feature_version,
                "as_of": self.as_of}


@dataclass
class EntityTensors:
    """Per-entity model inputs and targets (row i describes `entity_ids[i]`), plus what shaped them."""

    entity_ids: np.ndarray  # object [N], sorted
    arrays: dict[str, np.ndarray]  # the model's input keys and targets, first axis N
    split: np.ndarray  # int8 [N]: 0 train, 1 validation, 2 test
    attribute_names: tuple[str, ...]
    event_types: tuple[str, ...]  # index i+1 in event_type is event_types[i]; 0 is padding
    interaction_types: tuple[str, ...]
    artifact_dims: dict[int, int]  # artifact type index -> vector length
    artifact_sha256: np.ndarray  # object [N, M]: which blob fills each artifact slot ("" for padding)
    event_keys: np.ndarray  # int64 [N, L]: microsecond timestamps of the events in each slot
    normalisation: dict[str, list[float]] = field(default_factory=dict)
    reference_time_us: int = 0

    def indices(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == SPLITS.index(split))

    def rows(self, index: np.ndarray) -> dict[str, np.ndarray]:
        return {key: value[index] for key, value in self.arrays.items()}


def tensorize(store: Store, manifest: DataManifest, config: TensorizeConfig, seed: int) -> EntityTensors:
    """Read the tables at `manifest`'s versions and build the model's arrays."""
    tables = _read_pinned(store, manifest, config)
    entity_ids = tables["entities"]["entity_id"].to_numpy(zero_copy_only=False).astype(object)
    if len(entity_ids) == 0:
        raise StoreError(f"no entities at entities version {manifest.tables['entities']}; ingest entities first")
    attributes, names, targets = _attributes_and_targets(tables["entities"], config.attribute_names)
    reference_us = _reference_time(tables, config)
    split = _split(entity_ids, tables, config, seed)
    train = split == 0

    stats: dict[str, list[float]] = {}
    attributes = _standardise_columns(attributes, train, stats, "attributes")
    arrays = {"attributes": attributes.astype(np.float32)}
    event_arrays, event_types, event_keys = _events(tables["events"], entity_ids, config.max_events, reference_us,
                                                    train, stats)
    arrays.update(event_arrays)
    neighbor_arrays, interaction_types = _neighbors(tables["interactions"], entity_ids, attributes,
                                                    config.max_neighbors, train, stats)
    arrays.update(neighbor_arrays)
    artifact_arrays, artifact_dims, artifact_sha = _artifacts(tables["artifacts"], tables["features"], entity_ids,
                                                              config.max_artifacts_per_entity, train, stats)
    arrays.update(artifact_arrays)
    arrays.update(targets)
    return EntityTensors(entity_ids, arrays, split, names, event_types, interaction_types, artifact_dims,
                         artifact_sha, event_keys, stats, reference_us)


def _read_pinned(store: Store, manifest: DataManifest, config: TensorizeConfig) -> dict[str, pa.Table]:
    """Each table at its pinned version, rows after `as_of` removed, features of the pinned version only."""
    tables = {name: store.table(name).read(version=version) for name, version in manifest.tables.items()}
    if config.as_of is not None:
        cut = pa.scalar(config.as_of, pa.timestamp("us", tz="UTC"))
        for name in ("events", "interactions"):
            tables[name] = tables[name].filter(pc.less_equal(tables[name]["timestamp"], cut))
        artifacts = tables["artifacts"]
        undated_or_before = pc.or_kleene(pc.is_null(artifacts["timestamp"]), pc.less_equal(artifacts["timestamp"], cut))
        tables["artifacts"] = artifacts.filter(undated_or_before)
    features = tables["features"]
    tables["features"] = features.filter(pc.and_(pc.equal(features["feature_version"], manifest.feature_version),
                                                 pc.equal(features["status"], "ok")))
    return tables


def _attributes_and_targets(entities: pa.Table, wanted: tuple[str, ...] | None):
    """Numeric attribute matrix [N, A] (NaN where absent), its column names, and the targets with masks."""
    parsed = _parse_attribute_objects(entities["attributes"])
    numeric = sorted(name for name in parsed.column_names
                     if pa.types.is_integer(parsed[name].type) or pa.types.is_floating(parsed[name].type)
                     or pa.types.is_boolean(parsed[name].type))
    names = tuple(wanted) if wanted is not None else tuple(name for name in numeric if name not in TARGET_KEYS)
    missing = [name for name in names if name not in numeric]
    if missing:
        raise StoreError(f"attribute(s) {missing} are not numeric attributes of any entity; numeric ones: {numeric}")
    n = entities.num_rows
    matrix = np.column_stack([_as_float(parsed[name]) for name in names]) if names else np.zeros((n, 0))
    targets = {}
    for name in TARGET_KEYS:
        values = _as_float(parsed[name]) if name in numeric else np.full(n, np.nan)
        targets[name] = np.nan_to_num(values).astype(np.float32)
        targets[f"{name}_mask"] = ~np.isnan(values)
    return matrix, names, targets


def _parse_attribute_objects(column: pa.ChunkedArray) -> pa.Table:
    """All attribute JSON objects as one table (a column per key), parsed by Arrow in one pass.

    A key whose values mix numbers and text makes Arrow's reader refuse; such keys are parsed
    row by row instead, and the mixed key is treated as non-numeric.
    """
    lines = "\n".join(column.to_pylist()).encode() + b"\n"
    try:
        return pajson.read_json(io.BytesIO(lines))
    except pa.ArrowInvalid:
        rows = [json.loads(text) for text in column.to_pylist()]
        keys = sorted({key for row in rows for key in row})
        columns = {}
        for key in keys:
            values = [row.get(key) for row in rows]
            numbers = all(value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
                          for value in values)
            columns[key] = pa.array(values, pa.float64()) if numbers else pa.array([None] * len(rows), pa.string())
        return pa.table(columns) if columns else pa.table({"_": pa.nulls(len(rows))})


def _as_float(column: pa.ChunkedArray) -> np.ndarray:
    return pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)


def _reference_time(tables: dict[str, pa.Table], config: TensorizeConfig) -> int:
    """Microseconds of `as_of`, or of the latest timestamp in the snapshot: what "age" is measured to."""
    if config.as_of is not None:
        return int(pa.scalar(config.as_of, pa.timestamp("us", tz="UTC")).cast(pa.int64()).as_py())
    latest = [pc.max(tables[name]["timestamp"]).cast(pa.int64()).as_py() for name in ("events", "interactions",
                                                                                   "artifacts")]
    return max((value for value in latest if value is not None), default=0)


def _split(entity_ids: np.ndarray, tables: dict[str, pa.Table], config: TensorizeConfig, seed: int) -> np.ndarray:
    """0/1/2 = train/validation/test, by a keyed hash of entity_id (stable as rows are added) or by time."""
    train_share, validation_share, _ = config.split_fractions
    if config.split == "hash":
        key = seed.to_bytes(8, "little", signed=False)
        position = np.array([int.from_bytes(hashlib.blake2b(entity.encode(), digest_size=8, key=key).digest(),
                                            "little") / 2**64 for entity in entity_ids])
    else:  # each entity's latest event time orders the entities: train on the past, test on the future
        latest = _latest_event_time(tables["events"], entity_ids)
        order = np.lexsort((np.arange(len(entity_ids)), latest))
        position = np.empty(len(entity_ids))
        position[order] = (np.arange(len(entity_ids)) + 0.5) / len(entity_ids)
    return np.where(position < train_share, 0, np.where(position < train_share + validation_share, 1, 2)).astype(
        np.int8)


def _latest_event_time(events: pa.Table, entity_ids: np.ndarray) -> np.ndarray:
    index = _entity_index(events["entity_id"], entity_ids)
    times = events["timestamp"].cast(pa.int64()).to_numpy()
    latest = np.full(len(entity_ids), np.iinfo(np.int64).min)
    known = index >= 0
    np.maximum.at(latest, index[known], times[known])
    return latest


def _entity_index(column: pa.ChunkedArray, entity_ids: np.ndarray) -> np.ndarray:
    """Row of each id in the sorted `entity_ids`, -1 when unknown."""
    found = pc.index_in(column, value_set=pa.array(entity_ids, pa.string()))
    return pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def _standardise_columns(matrix: np.ndarray, train: np.ndarray, stats: dict, name: str) -> np.ndarray:
    """Z-score each column with training-split statistics; missing values become 0 (the training mean)."""
    if matrix.shape[1] == 0:
        stats[f"{name}_mean"], stats[f"{name}_std"] = [], []
        return matrix
    reference = matrix[train] if train.any() else matrix
    with warnings.catch_warnings():  # a column with no training values: its mean is NaN, replaced by 0 below
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nan_to_num(np.nanmean(reference, axis=0))
        std = np.nan_to_num(np.nanstd(reference, axis=0))
    std = np.where(std > 0, std, 1.0)
    stats[f"{name}_mean"], stats[f"{name}_std"] = mean.tolist(), std.tolist()
    return np.nan_to_num((matrix - mean) / std)


def _standardise_values(values: np.ndarray, train_rows: np.ndarray, stats: dict, name: str) -> np.ndarray:
    reference = values[train_rows] if train_rows.any() else values
    mean = float(reference.mean()) if len(reference) else 0.0
    std = float(reference.std()) if len(reference) else 1.0
    std = std if std > 0 else 1.0
    stats[f"{name}_mean"], stats[f"{name}_std"] = [mean], [std]
    return (values - mean) / std


def _vocabulary(column: pa.ChunkedArray) -> tuple[tuple[str, ...], np.ndarray]:
    """Sorted distinct values and each row's 1-based index into them (0 is kept for padding)."""
    vocabulary = tuple(sorted(pc.unique(column).to_pylist()))
    codes = pc.index_in(column, value_set=pa.array(vocabulary, pa.string())).to_numpy(zero_copy_only=False)
    return vocabulary, codes.astype(np.int64) + 1


def _last_per_entity(index: np.ndarray, sort_keys: list[np.ndarray], limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows kept (the last `limit` of each entity under `sort_keys`, ascending) and their slot 0..limit-1."""
    order = np.lexsort([*reversed(sort_keys), index])  # by entity, then the keys in the given priority
    ordered_index = index[order]
    counts = np.bincount(ordered_index, minlength=1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.arange(len(order)) - starts[ordered_index]
    first_kept = np.maximum(counts[ordered_index] - limit, 0)
    keep = position >= first_kept
    return order[keep], (position - first_kept)[keep]


def _events(events: pa.Table, entity_ids: np.ndarray, limit: int, reference_us: int, train: np.ndarray,
            stats: dict) -> tuple[dict[str, np.ndarray], tuple[str, ...], np.ndarray]:
    n = len(entity_ids)
    index = _entity_index(events["entity_id"], entity_ids)
    known = index >= 0
    events = events.filter(pa.array(known))
    index = index[known]
    types, codes = _vocabulary(events["event_type"])
    times = events["timestamp"].cast(pa.int64()).to_numpy()
    values = events["event_value"].to_numpy()
    value_rank = np.argsort(np.argsort(values, kind="stable"), kind="stable")  # ties broken deterministically
    order = np.lexsort((value_rank, codes, times, index))
    previous = np.empty(len(order), dtype=np.int64)
    if len(order):
        sorted_index, sorted_times = index[order], times[order]
        same_entity = np.concatenate([[False], sorted_index[1:] == sorted_index[:-1]])
        gaps = np.where(same_entity, np.diff(sorted_times, prepend=sorted_times[0]), 0)
        previous[order] = gaps
    values = _standardise_values(values, train[index], stats, "event_value")
    rows, slots = _last_per_entity(index, [times, codes, value_rank], limit)
    out = {
        "event_type": np.zeros((n, limit), np.int64),
        "event_value": np.zeros((n, limit), np.float32),
        "event_dt_prev": np.zeros((n, limit), np.float32),
        "event_age": np.zeros((n, limit), np.float32),
        "event_mask": np.zeros((n, limit), bool),
    }
    keys = np.zeros((n, limit), np.int64)
    target = (index[rows], slots)
    out["event_type"][target] = codes[rows]
    out["event_value"][target] = values[rows]
    out["event_dt_prev"][target] = np.log1p(np.maximum(previous[rows], 0) / _MICROS)
    out["event_age"][target] = np.log1p(np.maximum(reference_us - times[rows], 0) / _MICROS)
    out["event_mask"][target] = True
    keys[target] = times[rows]
    return out, types, keys


def _neighbors(interactions: pa.Table, entity_ids: np.ndarray, attributes: np.ndarray, limit: int,
               train: np.ndarray, stats: dict) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """Both directions of every interaction; the most recent `limit` per entity, ties by neighbour row."""
    n, width = attributes.shape
    src = _entity_index(interactions["src_entity_id"], entity_ids)
    dst = _entity_index(interactions["dst_entity_id"], entity_ids)
    types, codes = _vocabulary(interactions["interaction_type"])
    values = interactions["interaction_value"].to_numpy()
    times = interactions["timestamp"].cast(pa.int64()).to_numpy()
    known = (src >= 0) & (dst >= 0)
    owner = np.concatenate([src[known], dst[known]])
    other = np.concatenate([dst[known], src[known]])
    kind = np.concatenate([codes[known], codes[known]])
    value = np.concatenate([values[known], values[known]])
    time = np.concatenate([times[known], times[known]])
    value = _standardise_values(value, train[owner], stats, "interaction_value") if len(value) else value
    # the `limit` most recent per entity (ties: smaller neighbour row, then type), in chronological slot order
    rows, slots = _last_per_entity(owner, [time, -other, -kind], limit)
    out = {
        "neighbor_attributes": np.zeros((n, limit, width), np.float32),
        "neighbor_type": np.zeros((n, limit), np.int64),
        "neighbor_value": np.zeros((n, limit), np.float32),
        "neighbor_mask": np.zeros((n, limit), bool),
    }
    target = (owner[rows], slots)
    out["neighbor_attributes"][target] = attributes[other[rows]]
    out["neighbor_type"][target] = kind[rows]
    out["neighbor_value"][target] = value[rows]
    out["neighbor_mask"][target] = True
    return out, types


def _artifacts(artifacts: pa.Table, features: pa.Table, entity_ids: np.ndarray, limit: int, train: np.ndarray,
               stats: dict) -> tuple[dict[str, np.ndarray], dict[int, int], np.ndarray]:
    """Each entity's most recent artifacts that have features; vectors standardised per artifact type."""
    n = len(entity_ids)
    owned = artifacts.filter(pc.is_valid(artifacts["entity_id"]))
    owned = owned.filter(pc.is_in(owned["sha256"], value_set=features["sha256"].combine_chunks()))
    index = _entity_index(owned["entity_id"], entity_ids)
    owned = owned.filter(pa.array(index >= 0))
    index = index[index >= 0]
    type_names = pa.array(list(ARTIFACT_TYPE_INDEX), pa.string())
    kinds = pc.index_in(owned["artifact_type"], value_set=type_names).to_numpy(zero_copy_only=False) + 1
    times = pc.fill_null(owned["timestamp"].cast(pa.int64()), np.iinfo(np.int64).min).to_numpy()
    artifact_rank = pc.rank(owned["artifact_id"], sort_keys="ascending", tiebreaker="first").to_numpy()
    # the `limit` most recent per entity (ties: smaller artifact_id), in chronological slot order
    rows, slots = _last_per_entity(index, [times, -artifact_rank.astype(np.int64)], limit)
    shas = owned["sha256"].combine_chunks()
    matrices = _feature_matrices(features)
    dims = {kind: matrix.shape[1] for kind, (_, matrix) in matrices.items()}
    out = {
        "artifact_vector": np.zeros((n, limit, max(dims.values(), default=1)), np.float32),
        "artifact_type": np.zeros((n, limit), np.int64),
        "artifact_mask": np.zeros((n, limit), bool),
    }
    sha_slots = np.full((n, limit), "", dtype=object)
    for kind, (kind_shas, matrix) in matrices.items():
        chosen = rows[kinds[rows] == kind]
        slot = slots[kinds[rows] == kind]
        position = pc.index_in(shas.take(pa.array(chosen)), value_set=kind_shas).to_numpy(zero_copy_only=False)
        vectors = _standardise_columns(matrix[position].astype(np.float64), train[index[chosen]], stats,
                                       f"artifact_{kind}")
        out["artifact_vector"][index[chosen], slot, : matrix.shape[1]] = vectors
        out["artifact_type"][index[chosen], slot] = kind
        out["artifact_mask"][index[chosen], slot] = True
        sha_slots[index[chosen], slot] = shas.take(pa.array(chosen)).to_numpy(zero_copy_only=False)
    return out, dict(sorted(dims.items())), sha_slots


def _feature_matrices(features: pa.Table) -> dict[int, tuple[pa.Array, np.ndarray]]:
    """Per artifact type index: the blobs' sha256 and their vectors as one [rows, dim] matrix."""
    matrices = {}
    for name, kind in ARTIFACT_TYPE_INDEX.items():
        of_kind = features.filter(pc.equal(features["artifact_type"], name))
        if of_kind.num_rows == 0:
            continue
        vectors = of_kind["vector"].combine_chunks()
        flat = pc.list_flatten(vectors).to_numpy(zero_copy_only=False)
        matrices[kind] = (of_kind["sha256"].combine_chunks(), flat.reshape(of_kind.num_rows, -1))
    return matrices

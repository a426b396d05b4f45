"""From a pinned store snapshot to the fixed-shape arrays the model trains on.

The rows are read (dmas.inputs.rows) and encoded (dmas.inputs.encode) by the same code that
scoring uses for one entity; here every entity is read, the split is drawn, and the vocabularies
and normalisation statistics are fitted on the training split. With `as_of`, no event,
interaction or artifact after that time reaches the inputs (point-in-time correctness).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, model_validator

from dmas.errors import StoreError
from dmas.inputs.encode import InputLimits, fit_encoding
from dmas.inputs.rows import read_pinned, reference_time, rows_from_tables
from dmas.store import Store

SPLITS = ("train", "validation", "test")


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
    """Read the tables at `manifest`'s versions and build the model's arrays (statistics from the training split)."""
    tables = read_pinned(store, manifest.tables, manifest.feature_version, config.as_of)
    rows, _ = rows_from_tables(tables)
    if len(rows) == 0:
        raise StoreError(f"no entities at entities version {manifest.tables['entities']}; ingest entities first")
    reference_us = reference_time(tables, config.as_of)
    split = _split(rows.entity_ids, tables, config, seed)
    limits = InputLimits(config.max_events, config.max_neighbors, config.max_artifacts_per_entity)
    encoded = fit_encoding(rows, reference_us, limits, split == 0, config.attribute_names)
    encoding = encoded.encoding
    return EntityTensors(rows.entity_ids, encoded.arrays, split, encoding.attribute_names, encoding.event_types,
                         encoding.interaction_types, encoding.artifact_dims, encoded.artifact_sha256,
                         encoded.event_keys, encoding.normalisation, reference_us)


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



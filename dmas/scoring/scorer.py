"""Scoring with a run on the store's data: the present from the online view, the past from the tables.

Whatever the source, the rows go through the same encoder as training (dmas.inputs) and the same
fixed-shape forward passes (dmas.scoring.forward), so an entity scored live at a run's pinned
versions gives the bytes training computed for it, alone or among thousands. Every answer carries
a receipt (dmas.scoring.receipts) that `dmas verify` can check later.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from safetensors.torch import load as load_torch

from dmas.errors import DmasError, StoreError
from dmas.inputs import EncodedInputs, EntityRows, InputEncoding, encode, rows_from_tables
from dmas.inputs.rows import micros, read_pinned, reference_time
from dmas.model import FullModel, ModelConfig
from dmas.online import OnlineView
from dmas.scoring.forward import score_arrays
from dmas.scoring.inline import InlineEntity, inline_rows
from dmas.store import Store
from dmas.store.runs import RunRegistry
from dmas.vocabulary import HEADS

OUTPUTS = (*HEADS, "embedding")


class IntegrityError(DmasError):
    """A run's weights do not match the hash recorded when it was trained; they are not loaded."""


class UnknownEntitiesError(DmasError):
    """None of the requested entity ids is stored (at the versions read); `missing` lists them."""

    def __init__(self, missing: list[str], versions: dict[str, int]):
        shown = ", ".join(missing[:20]) + (f" (+{len(missing) - 20} more)" if len(missing) > 20 else "")
        super().__init__(f"unknown entity id(s): {shown} (entities version {versions.get('entities')})")
        self.missing = missing


@dataclass
class ScoringRun:
    """A finished run loaded for scoring: its model (weights verified) and how it encodes inputs."""

    run_id: str
    model: FullModel
    config: dict  # config.json of the run
    encoding: InputEncoding
    feature_version: str
    model_sha256: str

    @classmethod
    def load(cls, store: Store, run_id: str) -> ScoringRun:
        registry = RunRegistry(store)
        record = registry.require(run_id)
        if record.status not in ("completed", "rejected"):
            raise StoreError(f"run '{run_id}' is {record.status}; only finished runs can score")
        weights = registry.read_file(run_id, "model.safetensors")
        expected = registry.read_file(run_id, "model_sha256.txt").decode().strip()
        actual = hashlib.sha256(weights).hexdigest()
        if actual != expected:
            raise IntegrityError(f"run {run_id}: model.safetensors has sha256 {actual}, but model_sha256.txt "
                                 f"records {expected}; refusing to load modified weights")
        config = json.loads(registry.read_file(run_id, "config.json"))
        manifest = json.loads(registry.read_file(run_id, "data_manifest.json"))
        model = FullModel(ModelConfig.model_validate(config["model_config"]))
        model.load_state_dict(load_torch(weights))
        model.eval()
        return cls(run_id, model, config, InputEncoding.of_run(config), manifest["feature_version"], actual)


@dataclass
class Scored:
    """The answer for one request: per answered entity its outputs and inputs, plus what was read."""

    run: ScoringRun
    entity_ids: list[str | None]  # stored ids asked for (in order), then the inline entities' ids
    inline: list[InlineEntity | None]  # None for stored entities
    outputs: dict[str, np.ndarray]
    inputs: EncodedInputs
    unknown_entity_ids: list[str]
    store_versions: dict[str, int]
    as_of: datetime | None
    notes: list[dict[str, list[str]]] = field(default_factory=list)  # per entity: what the run never saw

    def __len__(self) -> int:
        return len(self.entity_ids)


class Scorer:
    """Loads runs on demand (the `cached_runs` most recently used stay loaded) and scores entities with them."""

    def __init__(self, store: Store, view: OnlineView | None = None, cached_runs: int = 4):
        self.store, self.view, self.cached_runs = store, view, cached_runs
        self._runs: OrderedDict[str, ScoringRun] = OrderedDict()

    def run(self, run_id: str) -> ScoringRun:
        if run_id in self._runs:
            self._runs.move_to_end(run_id)
            return self._runs[run_id]
        loaded = self._runs[run_id] = ScoringRun.load(self.store, run_id)
        while len(self._runs) > self.cached_runs:
            self._runs.popitem(last=False)
        return loaded

    def score(self, run_id: str, entity_ids: list[str] = (), inline: list[InlineEntity] = (), *,
              as_of: datetime | None = None, store_version: dict[str, int] | None = None) -> Scored:
        """Score stored `entity_ids` (unknown ones are listed, an error only when none is known) and `inline`."""
        run = self.run(run_id)
        source = self._source(run, as_of, store_version)
        rows, unknown = source.rows(list(entity_ids))
        if entity_ids and len(rows) == 0 and not inline:
            raise UnknownEntitiesError(unknown, source.versions)
        parts, notes = [], []
        if len(rows) or not inline:
            stored = encode(rows, source.reference_us, run.encoding)
            parts.append(stored)
            notes += stored.unseen
        if inline:
            inline = [_until(entity, as_of) for entity in inline]
            extra, missing = inline_rows(inline, source.neighbour_attributes(inline),
                                         source.features(inline, run.feature_version))
            reference = np.full(len(inline), source.reference_us, np.int64) if as_of is not None else np.array(
                [max(source.reference_us, entity.latest_us()) for entity in inline], np.int64)
            encoded = encode(extra, reference, run.encoding)
            parts.append(encoded)
            notes += [{**seen, **lacked} for seen, lacked in zip(encoded.unseen, missing)]
        inputs = _concatenated(parts)
        outputs = score_arrays(run.model, inputs.arrays, OUTPUTS)
        return Scored(run, [*rows.entity_ids.tolist(), *(entity.entity_id for entity in inline)],
                      [None] * len(rows) + list(inline), outputs, inputs, unknown, source.versions, as_of, notes)

    def _source(self, run: ScoringRun, as_of: datetime | None, store_version: dict[str, int] | None):
        limits = run.encoding.limits
        if as_of is None and store_version is None and self.view is not None and self.view.depth.serves(
                limits.max_events, limits.max_neighbors, limits.max_artifacts):
            return _ViewSource(self.view, run.feature_version)
        versions = dict(self.view.versions if self.view is not None else self.store.snapshot())
        unknown = sorted(set(store_version or {}) - set(versions))
        if unknown:
            raise DmasError(f"store_version names unknown table(s) {unknown}; tables are {sorted(versions)}")
        versions.update(store_version or {})
        return _TableSource(self.store, versions, run.feature_version, as_of)


class _ViewSource:
    """The present, from the online view (no table is read)."""

    def __init__(self, view: OnlineView, feature_version: str):
        self.view, self.feature_version = view, feature_version
        self.versions: dict[str, int] = {}
        self.reference_us = 0

    def rows(self, entity_ids: list[str]) -> tuple[EntityRows, list[str]]:
        rows, unknown, self.versions, self.reference_us = self.view.rows_for(entity_ids, self.feature_version)
        return rows, unknown

    def neighbour_attributes(self, inline: list[InlineEntity]) -> dict[str, str]:
        return self.view.attributes_of({link.dst_entity_id for entity in inline for link in entity.interactions})

    def features(self, inline: list[InlineEntity], feature_version: str) -> dict:
        return self.view.features_of({digest for entity in inline for digest in entity.artifact_sha256},
                                     feature_version)


class _TableSource:
    """The tables at given versions (and `as_of`): the past, or a run deeper than the view's windows."""

    def __init__(self, store: Store, versions: dict[str, int], feature_version: str, as_of: datetime | None):
        self.versions = dict(sorted(versions.items()))
        self.tables = read_pinned(store, self.versions, feature_version, as_of)
        self.reference_us = reference_time(self.tables, as_of)

    def rows(self, entity_ids: list[str]) -> tuple[EntityRows, list[str]]:
        return rows_from_tables(self.tables, entity_ids)

    def neighbour_attributes(self, inline: list[InlineEntity]) -> dict[str, str]:
        wanted = pa.array(sorted({link.dst_entity_id for entity in inline for link in entity.interactions}),
                          pa.string())
        entities = self.tables["entities"].filter(pc.is_in(self.tables["entities"]["entity_id"], value_set=wanted))
        return dict(zip(entities["entity_id"].to_pylist(), entities["attributes"].to_pylist()))

    def features(self, inline: list[InlineEntity], feature_version: str) -> dict:
        wanted = pa.array(sorted({digest for entity in inline for digest in entity.artifact_sha256}), pa.string())
        features = self.tables["features"].filter(pc.is_in(self.tables["features"]["sha256"], value_set=wanted))
        return {digest: (kind, np.asarray(vector, np.float32)) for digest, kind, vector in zip(
            features["sha256"].to_pylist(), features["artifact_type"].to_pylist(), features["vector"].to_pylist())}


def _until(entity: InlineEntity, as_of: datetime | None) -> InlineEntity:
    """With `as_of`, the entity's events and interactions after it are left out (as training does)."""
    if as_of is None:
        return entity
    cut = micros(as_of)
    return entity.model_copy(update={
        "events": [event for event in entity.events if micros(event.timestamp) <= cut],
        "interactions": [link for link in entity.interactions if micros(link.timestamp) <= cut]})


def _concatenated(parts: list[EncodedInputs]) -> EncodedInputs:
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    return EncodedInputs({key: np.concatenate([part.arrays[key] for part in parts]) for key in first.arrays},
                         np.concatenate([part.event_keys for part in parts]),
                         np.concatenate([part.artifact_sha256 for part in parts]),
                         np.concatenate([part.artifact_ids for part in parts]), first.encoding,
                         [note for part in parts for note in part.unseen])

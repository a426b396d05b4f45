"""A trained run, loaded for serving: weights verified against model_sha256.txt before use.

Predictions and per-entity inputs were computed once when the run was trained, for its pinned
snapshot, so a request costs a lookup, not a scan of the tables (latency does not grow with the
store), and an entity's answer never depends on which other entities share the request.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from safetensors.numpy import load as load_numpy
from safetensors.torch import load as load_torch

from dmas.errors import DmasError, StoreError
from dmas.explain.narrative import heads_narrative, narrative_fields
from dmas.explain.published import ArtifactName
from dmas.model import FullModel, ModelConfig
from dmas.scoring.artifact_names import ArtifactNames
from dmas.store import Store
from dmas.store.runs import RunRegistry
from dmas.vocabulary import HEADS


class IntegrityError(DmasError):
    """A run's weights do not match the hash recorded when it was trained; they are not loaded."""


class UnknownEntitiesError(DmasError):
    """Some requested entity ids are not in the run's snapshot; `missing` lists them."""

    def __init__(self, run_id: str, missing: list[str]):
        shown = ", ".join(missing[:20]) + (f" (+{len(missing) - 20} more)" if len(missing) > 20 else "")
        super().__init__(f"unknown entity id(s) for run {run_id[:12]}: {shown}")
        self.missing = missing


@dataclass
class RunBundle:
    run_id: str
    model: FullModel
    config: dict  # config.json of the run
    predictions: pa.Table  # entity_id, heads, embedding; sorted by entity_id
    entities: pa.Table  # entity_id, split, event_keys, artifact_sha256; same order
    inputs: dict[str, np.ndarray]  # the model's input arrays, same order
    artifact_names: ArtifactNames  # artifact_id and type of each slot's blob, at the pinned version

    @classmethod
    def load(cls, store: Store, run_id: str) -> RunBundle:
        """Read a completed (or rejected) run's files, refusing weights whose sha256 does not match."""
        registry = RunRegistry(store)
        record = registry.require(run_id)
        if record.status not in ("completed", "rejected"):
            raise StoreError(f"run '{run_id}' is {record.status}; only finished runs can be served")
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
        return cls(run_id, model, config, _arrow(registry.read_file(run_id, "predictions.arrow")),
                   _arrow(registry.read_file(run_id, "entities.arrow")),
                   load_numpy(registry.read_file(run_id, "inputs.safetensors")),
                   ArtifactNames(store, manifest["tables"].get("artifacts"), manifest["as_of"]))

    @cached_property
    def _ids(self) -> pa.Array:
        return self.predictions["entity_id"].combine_chunks()

    @cached_property
    def _id_set(self) -> frozenset[str]:
        return frozenset(self._ids.to_pylist())

    def known(self, entity_ids: list[str]) -> list[str]:
        """The ids among `entity_ids` that the run scored, in order (cost: the request's, not the store's)."""
        return [entity for entity in entity_ids if entity in self._id_set]

    def rows_of(self, entity_ids: list[str]) -> np.ndarray:
        """Row of each requested id (duplicates answered once, in first-seen order); unknown ids raise."""
        unique = list(dict.fromkeys(entity_ids))
        found = pc.index_in(pa.array(unique, pa.string()), value_set=self._ids)
        missing = [entity for entity, row in zip(unique, found.to_pylist()) if row is None]
        if missing:
            raise UnknownEntitiesError(self.run_id, missing)
        return np.asarray(found.to_numpy(zero_copy_only=False), dtype=np.int64)

    def predictions_for(self, entity_ids: list[str]) -> list[dict]:
        """The original stack's prediction objects: entity_id, the three heads, the embedding, a narrative."""
        rows = self.rows_of(entity_ids)
        chosen = self.predictions.take(pa.array(rows)).to_pylist()
        return [{**_scores(row), "embedding": row["embedding"]} for row in chosen]

    def entity_meta(self, row: int):
        """What names the entity's input slots, for explanations (vocabularies, event times, blob ids)."""
        from dmas.explain import EntityMeta

        return EntityMeta(attribute_names=self.config["attribute_names"], event_types=self.config["event_types"],
                          event_keys=self.entities["event_keys"][row].as_py(),
                          artifact_sha256=self.entities["artifact_sha256"][row].as_py(),
                          normalisation=self.config["normalisation"])

    def inputs_for(self, row: int) -> dict[str, np.ndarray]:
        """One entity's model inputs as a batch of one."""
        return {key: value[row:row + 1] for key, value in self.inputs.items()}

    def top(self, order_by: str, descending: bool, limit: int, entity_filter: list[str] | None = None) -> list[dict]:
        """Entities ranked by a head's precomputed score (ties by entity_id, so the order is stable)."""
        if order_by not in HEADS:
            raise DmasError(f"order_by must be one of {', '.join(HEADS)}, got {order_by!r}")
        table = self.predictions
        if entity_filter:
            table = table.take(pa.array(self.rows_of(entity_filter)))
        order = "descending" if descending else "ascending"
        ranked = table.sort_by([(order_by, order), ("entity_id", "ascending")]).slice(0, limit)
        return [_scores(row) for row in ranked.to_pylist()]

    def artifacts_of(self, row: int) -> list[ArtifactName]:
        """The artifact rows filling entity `row`'s artifact slots, in slot order."""
        return self.artifact_names.of(self.entities["entity_id"][row].as_py(),
                                      self.entities["artifact_sha256"][row].as_py())


def _scores(row: dict) -> dict:
    """entity_id, the three heads and their template narrative (the original stack's keys)."""
    heads = {head: row[head] for head in HEADS}
    return {"entity_id": row["entity_id"], **heads, **narrative_fields(heads_narrative(heads))}


def _arrow(data: bytes) -> pa.Table:
    return pa.ipc.open_file(io.BytesIO(data)).read_all()

"""Where a run's data came from: the table versions and feature version it pinned, and the source files.

Also which entities in that data have since been forgotten: such a run's model still holds what it
learned from them, so honouring the erasure means retraining it.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum

import pyarrow.compute as pc

from dmas.errors import StoreError
from dmas.store import Store
from dmas.store.runs import RunRecord, RunRegistry, RunStatus


class ErasureEvidence(StrEnum):
    """How a run was found to include a forgotten entity: what the forget record and the store could tell."""

    PRESENT = "in the pinned entities version, removed by a later version"
    ASSUMED_PURGED = ("removed by a later version than the pinned one, which was purged: "
                      "presence assumed from the audit alone")
    PRESENT_FORGOTTEN_LATER = ("in the pinned entities version, forgotten after the run was created "
                               "(forget record without versions)")
    ASSUMED_FORGOTTEN_LATER = ("forgotten after the run was created (forget record without versions) and the "
                               "pinned version was purged: presence assumed")


def run_lineage(store: Store, run_id: str) -> dict:
    """The run's data manifest plus, per table, the source files (name, sha256) committed up to its version.

    `forgotten_entities`: the entities in the run's data that were forgotten since (`erasure_evidence`
    says how each was decided); any of them means the run `needs_retraining` to honour the erasure.
    """
    registry = RunRegistry(store)
    manifest = json.loads(registry.read_file(run_id, "data_manifest.json"))
    found = _forgotten_in(store, registry.require(run_id), manifest, _forgets(store), {})
    return {
        "run_id": run_id,
        "data_manifest": manifest,
        "sources": {name: store.lineage(name, version) for name, version in sorted(manifest["tables"].items())},
        "forgotten_entities": sorted(found),
        "erasure_evidence": dict(sorted(found.items())),
        "needs_retraining": bool(found),
    }


def runs_needing_retraining(store: Store) -> list[dict]:
    """Every run, newest first, whose data included an entity forgotten since; failed runs made no model, so none."""
    forgets = _forgets(store)
    if not forgets:
        return []
    registry, presence = RunRegistry(store), {}
    listed = []
    for record in registry.list():
        manifest = record.details.get("data_manifest")
        if record.status == RunStatus.FAILED or manifest is None:
            continue
        found = _forgotten_in(store, record, manifest, forgets, presence)
        if found:
            listed.append({"run_id": record.run_id, "status": record.status,
                           "created_at": record.created_at.isoformat(), "forgotten_entities": sorted(found),
                           "erasure_evidence": dict(sorted(found.items()))})
    return listed


def _forgets(store: Store) -> list[dict]:
    """Forget records that removed an entity row: entity, the entities version of the removal (None in
    records that lack it) and the record's time."""
    forgets = []
    for record in store.audit("forget").records():
        change = record.get("tables", {}).get("entities")
        removed = change.get("rows_removed") if isinstance(change, dict) else change
        if not removed:  # a retry that found nothing left, or an entity known only by its artifacts
            continue
        version = change.get("version") if isinstance(change, dict) else None
        forgets.append({"entity_id": record["entity_id"], "version": version,
                        "time": datetime.fromisoformat(record["time"])})
    return forgets


def _forgotten_in(store: Store, run: RunRecord, manifest: dict, forgets: list[dict],
                  presence: dict[int, set[str] | None]) -> dict[str, ErasureEvidence]:
    """The forgotten entities the run's pinned entities version held, each with how that was decided.

    An entity was in the run iff it was in the pinned version `v` and a forget removed it after `v`
    (an entity forgotten, ingested again and pinned after is not a violation). Presence is read at `v`
    (cached in `presence` per version); where `v` was purged, the audit alone decides.
    """
    pinned = manifest["tables"].get("entities")
    if pinned is None:
        return {}
    later = {}
    for forget in forgets:
        if forget["version"] is not None:
            after = forget["version"] > pinned
        else:  # an older record: its time against the run's creation (data is pinned just before it)
            after = forget["time"] > run.created_at
        if after:
            later.setdefault(forget["entity_id"], forget["version"] is not None)
    if not later:
        return {}
    if pinned not in presence:
        presence[pinned] = _entities_at(store, pinned, sorted({forget["entity_id"] for forget in forgets}))
    present = presence[pinned]
    found = {}
    for entity_id, by_version in later.items():
        if present is None:
            found[entity_id] = ErasureEvidence.ASSUMED_PURGED if by_version else ErasureEvidence.ASSUMED_FORGOTTEN_LATER
        elif entity_id in present:
            found[entity_id] = ErasureEvidence.PRESENT if by_version else ErasureEvidence.PRESENT_FORGOTTEN_LATER
    return found


def _entities_at(store: Store, version: int, entity_ids: list[str]) -> set[str] | None:
    """Which of `entity_ids` the entities table held at `version`; None when that version was purged."""
    try:
        rows = store.table("entities").read(columns=["entity_id"], version=version,
                                            filter=pc.field("entity_id").isin(entity_ids))
    except StoreError:
        return None
    return set(rows["entity_id"].to_pylist())

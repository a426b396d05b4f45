"""Right to be forgotten: remove one entity from every table, its unshared blobs, and record it."""

from __future__ import annotations

import pyarrow.compute as pc

from dmas.errors import StoreError
from dmas.store.schemas import SCORES
from dmas.store.store import Store
from dmas.store.tables import VersionedTable, sql_string_list


def forget_entity(store: Store, entity_id: str, *, purge_old_versions: bool = False) -> dict:
    """Delete every row about `entity_id` in a new version of each table and the blobs no one else uses.

    With `purge_old_versions`, data files of older versions are deleted too, so time travel can no
    longer read the removed rows. Returns (and writes to the `forget` audit trail) what was removed.
    Blobs go first and the entity row last, so running it again after an interruption finishes the job.
    """
    entities = store.table("entities")
    known = entities.read(columns=["entity_id"], filter=pc.field("entity_id") == entity_id)
    owned = store.table("artifacts").read(columns=["sha256"], filter=pc.field("entity_id") == entity_id)
    if known.num_rows == 0 and owned.num_rows == 0:
        raise StoreError(f"unknown entity '{entity_id}'")
    blobs = _delete_unshared_blobs(store, entity_id, sorted(set(owned["sha256"].to_pylist())))
    quoted = sql_string_list([entity_id])
    metadata = {"dmas_operation": "forget entity"}
    removed = {}
    for name, table in store.tables.items():
        if name == "entities" or not table.spec.entity_columns:
            continue  # entities last, so a retry after a crash can still find what belongs to the entity
        predicate = " OR ".join(f"{column} IN ({quoted})" for column in table.spec.entity_columns)
        removed[name] = _deleted(table.delete_where(predicate, metadata))
    removed["entities"] = _deleted(entities.delete_where(f"entity_id IN ({quoted})", metadata))
    scores = _scores_table(store)  # batch scores (`dmas score`) are about the entity too
    if scores is not None:
        removed["scores"] = _deleted(scores.delete_where(f"entity_id IN ({quoted})", metadata))
    if blobs:  # vectors computed from the deleted media are personal data too
        removed["features"] = _deleted(store.table("features").delete_where(
            f"sha256 IN ({sql_string_list(blobs)})", metadata))
    every = {**store.tables, **({"scores": scores} if scores is not None else {})}
    purged = {name: len(table.purge_unreferenced_files()) for name, table in every.items()} \
        if purge_old_versions else {}
    report = {
        "entity_id": entity_id,
        "tables": removed,
        "blobs_deleted": blobs,
        "purged_old_versions": purge_old_versions,
        "files_purged": purged,
    }
    store.audit("forget").record(report)
    return report


def _scores_table(store: Store) -> VersionedTable | None:
    """The `scores` table when one was written (it is not among `store.tables`)."""
    table = VersionedTable(store.location, SCORES)
    try:
        table.version()
    except StoreError:
        return None
    return table


def _deleted(result) -> dict:
    return {"rows_removed": result.deleted, "version": result.version}


def _delete_unshared_blobs(store: Store, entity_id: str, digests: list[str]) -> list[str]:
    """Delete the blobs among `digests` that no artifact row of another entity (or of none) references."""
    if not digests:
        return []
    others = pc.field("entity_id").is_null() | (pc.field("entity_id") != entity_id)
    still_used = store.table("artifacts").read(columns=["sha256"], filter=pc.field("sha256").isin(digests) & others)
    shared = set(still_used["sha256"].to_pylist())
    return [digest for digest in digests if digest not in shared and store.blobs.delete(digest)]

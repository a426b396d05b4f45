"""Batch scoring (`dmas score`): a run's outputs for many entities, on Ray Data, in one commit of `scores`.

Every worker (a Ray Data actor) reads the pinned tables once and indexes them by entity, so a batch
costs its own rows, not a scan of the tables. Rows go through the same encoder and fixed-shape
forward passes as live scoring, so a row's bytes equal `Scorer(store).score(...)`'s for the entity at
the same versions, whatever the workers, the batch size or the order batches finish in. Rows are
sorted by entity_id and hold no wall-clock time: scoring again at the same versions changes nothing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dmas.errors import DmasError, StoreError
from dmas.inputs import EntityRows, encode, rows_from_tables
from dmas.inputs.rows import read_pinned, reference_time
from dmas.runtime import RaySettings
from dmas.scoring.answers import explanations, predictions
from dmas.scoring.forward import score_arrays
from dmas.scoring.receipts import code_version_now, input_sha256, output_sha256
from dmas.store import Store
from dmas.store.runs import RunRegistry
from dmas.store.schemas import SCORES
from dmas.store.tables import VersionedTable
from dmas.vocabulary import HEADS

log = logging.getLogger(__name__)

OPERATION = "dmas score"
ENTITY_TABLES = ("entities", "events", "interactions", "artifacts")  # what `changed_since` compares
DEFAULT_BATCH_SIZE = 256


def scores_table(store: Store) -> VersionedTable:
    """The `scores` table (created empty when missing); not one of `store.tables`, so no snapshot pins it."""
    table = VersionedTable(store.location, SCORES)
    table.create_if_missing()
    return table


def versions_key(versions: dict[str, int]) -> str:
    """The canonical JSON of table versions that `scores.store_versions` holds."""
    return json.dumps(dict(sorted(versions.items())), sort_keys=True, separators=(",", ":"))


class _SortedIndex:
    """Rows of a table by the value of one column: `rows_of(values)` without scanning the column."""

    def __init__(self, column: pa.ChunkedArray):
        order = pc.sort_indices(column).to_numpy()  # nulls last
        valid = len(column) - column.null_count
        self.order = order[:valid]
        self.values = np.asarray(column.take(pa.array(self.order)).to_numpy(zero_copy_only=False), dtype=object)

    def rows_of(self, values: np.ndarray) -> np.ndarray:
        """Row numbers (int64, unordered) whose value is among `values` (an object array of str)."""
        lefts = np.searchsorted(self.values, values, "left")
        lengths = np.searchsorted(self.values, values, "right") - lefts
        total = int(lengths.sum())
        if total == 0:
            return np.zeros(0, np.int64)
        starts = np.repeat(lefts - np.cumsum(lengths) + lengths, lengths) + np.arange(total)
        return self.order[starts].astype(np.int64)


class PinnedTables:
    """The tables at pinned versions, read once, and each batch's rows cut from them by index.

    `rows(ids)` equals `rows_from_tables(tables, ids)` on the whole tables: the cut keeps every row
    about the ids, their interactions' other ends and their blobs' features, in the tables' order.
    """

    def __init__(self, store: Store, versions: dict[str, int], feature_version: str):
        self.versions = dict(sorted(versions.items()))
        self.tables = read_pinned(store, self.versions, feature_version, None)
        self.reference_us = reference_time(self.tables, None)
        tables = self.tables
        self._index = {
            "entities": _SortedIndex(tables["entities"]["entity_id"]),
            "events": _SortedIndex(tables["events"]["entity_id"]),
            "src": _SortedIndex(tables["interactions"]["src_entity_id"]),
            "dst": _SortedIndex(tables["interactions"]["dst_entity_id"]),
            "artifacts": _SortedIndex(tables["artifacts"]["entity_id"]),
            "features": _SortedIndex(tables["features"]["sha256"]),
        }

    def entity_ids(self) -> list[str]:
        return self.tables["entities"]["entity_id"].to_pylist()

    def rows(self, entity_ids: list[str]) -> tuple[EntityRows, list[str]]:
        ids = np.asarray(entity_ids, dtype=object)
        index, tables = self._index, self.tables
        interactions = _take(tables["interactions"], np.union1d(index["src"].rows_of(ids), index["dst"].rows_of(ids)))
        ends = np.unique(np.concatenate([ids, _objects(interactions["src_entity_id"]),
                                         _objects(interactions["dst_entity_id"])]))
        artifacts = _take(tables["artifacts"], np.sort(index["artifacts"].rows_of(ids)))
        blobs = np.unique(_objects(artifacts["sha256"]))
        cut = {"entities": _take(tables["entities"], np.sort(index["entities"].rows_of(ends))),
               "events": _take(tables["events"], np.sort(index["events"].rows_of(ids))),
               "interactions": interactions, "artifacts": artifacts,
               "features": _take(tables["features"], np.sort(index["features"].rows_of(blobs)))}
        return rows_from_tables(cut, list(entity_ids))


def _take(table: pa.Table, rows: np.ndarray) -> pa.Table:
    return table.take(pa.array(rows, pa.int64()))


def _objects(column: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=object) if len(column) else np.zeros(0, object)


class ScoreBatch:
    """One worker: loads the run and the pinned tables once; each call scores a batch of entity ids."""

    def __init__(self, store_uri: str, run_id: str, versions: dict[str, int], torch_threads: int | None = None,
                 explain: bool = False):
        from dmas.scoring.scorer import ScoringRun

        if torch_threads:
            import torch

            torch.set_num_threads(torch_threads)
        store = Store(store_uri)
        self.run = ScoringRun.load(store, run_id)
        self.tables = PinnedTables(store, versions, self.run.feature_version)
        self.versions = versions_key(self.tables.versions)
        self.explain = explain

    def __call__(self, batch: pa.Table) -> pa.Table:
        from dmas.scoring.scorer import OUTPUTS, Scored

        rows, unknown = self.tables.rows(batch["entity_id"].to_pylist())
        if unknown:
            raise StoreError(f"entity id(s) not in the pinned entities table: {unknown[:10]}")
        inputs = encode(rows, self.tables.reference_us, self.run.encoding)
        outputs = score_arrays(self.run.model, inputs.arrays, OUTPUTS)
        explained = None
        if self.explain:  # what POST /explain answers for these entities at these versions
            scored = Scored(self.run, rows.entity_ids.tolist(), [None] * len(rows), outputs, inputs, [],
                            self.tables.versions, None, inputs.unseen)
            explained = [json.dumps(found, sort_keys=True) for found in
                         explanations(scored, "probability", predictions(scored))]
        return score_rows(self.run.run_id, self.versions, rows.entity_ids.tolist(), inputs.arrays, outputs,
                          self.run.model_sha256, explained)


def score_rows(run_id: str, versions: str, entity_ids: list[str], arrays: dict, outputs: dict,
               model_sha256: str, explained: list[str] | None = None) -> pa.Table:
    """`scores` rows for scored entities (SCORES schema)."""
    n = len(entity_ids)
    embedding = np.ascontiguousarray(outputs["embedding"], np.float32).reshape(n, -1)
    offsets = pa.array(np.arange(0, embedding.size + 1, max(embedding.shape[1], 1))[:n + 1], pa.int32())
    columns = {
        "run_id": pa.array([run_id] * n, pa.string()),
        "store_versions": pa.array([versions] * n, pa.string()),
        "as_of": pa.nulls(n, pa.string()),
        "entity_id": pa.array(entity_ids, pa.string()),
        **{head: pa.array(np.asarray(outputs[head], np.float32).reshape(n)) for head in HEADS},
        "embedding": pa.ListArray.from_arrays(offsets, pa.array(embedding.reshape(-1))),
        "input_sha256": pa.array([input_sha256(arrays, row) for row in range(n)], pa.string()),
        "output_sha256": pa.array([output_sha256(outputs, row) for row in range(n)], pa.string()),
        "model_sha256": pa.array([model_sha256] * n, pa.string()),
        "code_version": pa.array([code_version_now()] * n, pa.string()),
        "explanation": pa.array(explained, pa.string()) if explained is not None else pa.nulls(n, pa.string()),
    }
    return pa.table(columns).cast(SCORES.schema)


@dataclass(frozen=True)
class Selection:
    """Which entities a batch scores, and how they were chosen (recorded with the commit)."""

    entity_ids: list[str]  # sorted, each once, all present at the pinned versions
    scope: str  # "all", "entity_ids" or "changed_since"
    unknown_entity_ids: list[str]
    changed_since: dict[str, int] | None = None


def select_entities(store: Store, versions: dict[str, int], entity_ids: Iterable[str] | None = None,
                    changed_since: dict[str, int] | None = None) -> Selection:
    """Every entity at `versions`, the listed ones, or those whose rows changed since `changed_since`."""
    if entity_ids is not None and changed_since is not None:
        raise DmasError("give entity ids or changed_since, not both")
    known = store.table("entities").read(columns=["entity_id"], version=versions["entities"])["entity_id"]
    if changed_since is None and entity_ids is None:
        return Selection(known.to_pylist(), "all", [])
    wanted = sorted(set(entity_ids)) if entity_ids is not None else sorted(
        changed_entities(store, changed_since, versions))
    present = pc.is_in(pa.array(wanted, pa.string()), value_set=known.combine_chunks()).to_pylist()
    chosen = [entity for entity, here in zip(wanted, present) if here]
    missing = [entity for entity, here in zip(wanted, present) if not here]
    if entity_ids is not None:
        return Selection(chosen, "entity_ids", missing)
    return Selection(chosen, "changed_since", [], dict(sorted(changed_since.items())))


def changed_entities(store: Store, since: dict[str, int], now: dict[str, int]) -> set[str]:
    """Entities whose rows in entities/events/interactions/artifacts differ between `since` and `now`.

    Only the data files one version has and the other lacks are read (a Delta commit adds and removes
    whole files), and their rows compared: a file rewritten with the same rows changes no entity.
    Entities removed since (forgotten) are among them; the caller keeps those still present.
    """
    missing = [name for name in ENTITY_TABLES if name not in since]
    if missing:
        raise DmasError(f"changed_since lacks table version(s) for {missing}: give all of {list(ENTITY_TABLES)}")
    changed: set[str] = set()
    for name in ENTITY_TABLES:
        if since[name] != now[name]:
            changed |= _table_changes(store.table(name), since[name], now[name])
    return changed


def _table_changes(table: VersionedTable, old: int, new: int) -> set[str]:
    before, after = _files(table, old), _files(table, new)
    differing = _row_set(table, before - after) ^ _row_set(table, after - before)
    columns = [table.spec.schema.names.index(column) for column in table.spec.entity_columns]
    return {row[i] for row in differing for i in columns if row[i] is not None}


def _files(table: VersionedTable, version: int) -> frozenset[str]:
    from urllib.parse import unquote

    actions = pa.table(table.delta(version).get_add_actions(flatten=True))
    return frozenset(unquote(path) for path in actions["path"].to_pylist())


def _row_set(table: VersionedTable, files: Iterable[str]) -> frozenset[tuple]:
    found: set[tuple] = set()
    for path in sorted(files):
        try:
            part = pq.read_table(f"{table._path}/{path}", filesystem=table._filesystem)
        except OSError as exc:
            raise StoreError(f"table '{table.spec.name}': a data file of an older version was purged ({exc}); "
                             "changes since that version cannot be computed, score every entity") from None
        part = table._with_added_columns(part).select(table.spec.schema.names)
        found.update(zip(*(part[name].to_pylist() for name in part.column_names)))
    return frozenset(found)


def compute_scores(store: Store, run_id: str, versions: dict[str, int], entity_ids: list[str], *,
                   workers: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE, use_ray: bool = True,
                   ray: RaySettings | None = None, progress: bool = True, explain: bool = False) -> pa.Table:
    """`scores` rows of `entity_ids` (sorted by entity_id) at `versions`, with Ray Data or in this process."""
    if batch_size < 1:
        raise DmasError(f"batch_size must be at least 1, got {batch_size}")
    ids = pa.table({"entity_id": pa.array(sorted(entity_ids), pa.string())})
    if not use_ray:
        worker = ScoreBatch(store.uri, run_id, versions, explain=explain)
        parts = [worker(ids.slice(start, batch_size)) for start in range(0, ids.num_rows, batch_size)]
    else:
        parts = _with_ray_data(store.uri, run_id, versions, ids, workers, batch_size, ray or RaySettings(), progress,
                               explain)
    table = pa.concat_tables(parts) if parts else SCORES.schema.empty_table()
    return table.sort_by([("entity_id", "ascending")])


def _with_ray_data(store_uri: str, run_id: str, versions: dict[str, int], ids: pa.Table, workers: int | None,
                   batch_size: int, settings: RaySettings, progress: bool, explain: bool) -> list[pa.Table]:
    import ray

    from dmas.runtime import ensure_ray

    ensure_ray(settings)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = progress
    context.op_resource_reservation_enabled = False  # one map operator (see dmas.features.pipeline)
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    workers = workers or cpus
    if workers < 1:
        raise DmasError(f"workers must be at least 1, got {workers}")
    # blocks of whole batches, several per worker so a slow one does not hold the end back
    per_block = max(batch_size, -(-ids.num_rows // (workers * 4 * batch_size)) * batch_size)
    blocks = [ids.slice(start, per_block) for start in range(0, ids.num_rows, per_block)]
    scored = ray.data.from_arrow(blocks).map_batches(
        ScoreBatch, batch_size=batch_size, batch_format="pyarrow", concurrency=workers, num_cpus=1,
        fn_constructor_kwargs={"store_uri": store_uri, "run_id": run_id, "versions": versions, "torch_threads": 1,
                               "explain": explain})
    return list(scored.iter_batches(batch_size=None, batch_format="pyarrow"))


def score_batch(store: Store, run_id: str | None = None, *, entity_ids: Iterable[str] | None = None,
                changed_since: dict[str, int] | None = None, workers: int | None = None,
                batch_size: int = DEFAULT_BATCH_SIZE, use_ray: bool = True, ray: RaySettings | None = None,
                progress: bool = True, explain: bool = False) -> dict:
    """Score the chosen entities with a run (default: the latest completed) at the store's current
    versions and commit the rows to `scores` in one commit (with `explain`, each row also holds the
    entity's explanation of its probability, ~35 ms an entity); returns a summary."""
    started = time.perf_counter()
    if run_id is None:
        latest = RunRegistry(store).latest_completed()
        if latest is None:
            raise StoreError("no completed run yet: train one first (dmas train), or give --run-id")
        run_id = latest.run_id
    versions = store.snapshot()
    selection = select_entities(store, versions, entity_ids, changed_since)
    table = scores_table(store)
    summary = {"run_id": run_id, "store_versions": versions, "scope": selection.scope,
               "changed_since": selection.changed_since, "unknown_entity_ids": selection.unknown_entity_ids,
               "batch_size": batch_size, "workers": workers if use_ray else 1, "ray": use_ray, "explained": explain}
    if not selection.entity_ids:
        return {**summary, "rows": 0, "inserted": 0, "updated": 0, "scores_version": table.version(),
                "seconds": round(time.perf_counter() - started, 3), "entities_per_s": 0.0}
    rows = compute_scores(store, run_id, versions, selection.entity_ids, workers=workers, batch_size=batch_size,
                          use_ray=use_ray, ray=ray, progress=progress, explain=explain)
    commit = table.upsert(rows, {"dmas_operation": OPERATION, "run_id": run_id, "store_versions": versions,
                                 "scope": selection.scope, "changed_since": selection.changed_since,
                                 "rows": rows.num_rows})
    seconds = time.perf_counter() - started
    result = {**summary, "rows": rows.num_rows, "inserted": commit.inserted, "updated": commit.updated,
              "scores_version": commit.version, "seconds": round(seconds, 3),
              "entities_per_s": round(rows.num_rows / seconds, 1)}
    log.info("scored %d entities with run %s in %.1f s (%.0f/s): scores version %d", rows.num_rows, run_id,
             seconds, rows.num_rows / seconds, commit.version)
    return result


def scores_receipt(row: dict) -> dict:
    """The receipt of a `scores` row: the keys `dmas.scoring.receipts.verify` checks."""
    return {"run_id": row["run_id"], "model_sha256": row["model_sha256"], "code_version": row["code_version"],
            "entity_id": row["entity_id"], "source": "stored", "store_versions": json.loads(row["store_versions"]),
            "as_of": row["as_of"], "input_sha256": row["input_sha256"], "output_sha256": row["output_sha256"],
            "payload_sha256": None}


@dataclass
class LatestScores:
    """The rows of the latest `dmas score` commit of a run."""

    rows: pa.Table
    table_version: int  # the commit's version of `scores`
    store_versions: dict[str, int]
    scope: str

    def describe(self) -> str:
        return (f"scores table version {self.table_version} (dmas score at store versions "
                f"{json.dumps(self.store_versions, sort_keys=True)}, {self.scope}, {self.rows.num_rows} entities)")


_latest_cache: dict[tuple[str, str], tuple[int, LatestScores | None]] = {}


def latest_scores(store: Store, run_id: str) -> LatestScores | None:
    """The latest `dmas score` commit of `run_id` and its rows, or None when the run was never batch-scored.

    Rows are re-read only when `scores` has a new version (one reader per process keeps the last answer).
    """
    table = VersionedTable(store.location, SCORES)
    try:
        current = table.version()
    except StoreError:
        return None
    cached = _latest_cache.get((store.uri, run_id))
    if cached is not None and cached[0] == current:
        return cached[1]
    commit = next((entry for entry in table.history() if entry.get("dmas_operation") == OPERATION
                   and entry.get("run_id") == run_id), None)
    found = None
    if commit is not None:
        versions = json.loads(commit["store_versions"])
        rows = table.read(version=commit["version"], filter=(pc.field("run_id") == run_id) & (
            pc.field("store_versions") == versions_key(versions)))
        found = LatestScores(rows, commit["version"], versions, commit.get("scope", "all"))
    _latest_cache.clear()
    _latest_cache[(store.uri, run_id)] = (current, found)
    return found


def ranked_from_scores(store: Store, run_id: str, order_by: str, descending: bool, limit: int,
                       among: list[str], answer: Callable[[dict], dict]) -> tuple[list[dict], str] | None:
    """The top `limit` entities by `order_by` from the run's latest `scores` commit (ties by entity_id),
    each made an answer by `answer(row)`; None when there is no such commit or it lacks one of `among`."""
    latest = latest_scores(store, run_id)
    if latest is None:
        return None
    rows = latest.rows
    if among:
        rows = rows.filter(pc.is_in(rows["entity_id"], value_set=pa.array(sorted(set(among)), pa.string())))
        if rows.num_rows < len(set(among)):
            return None
    ordered = rows.sort_by([(order_by, "descending" if descending else "ascending"), ("entity_id", "ascending")])
    top = ordered.slice(0, limit).drop_columns(["embedding"]).to_pylist()
    return [answer(row) for row in top], latest.describe()

"""The online view: what scoring the present needs about every entity, in memory, current within a poll.

Feast's split: the Delta tables are the offline store (full history, time travel, training), this
is the online store (the latest state per entity, answered without scanning). For each entity it
keeps its attributes and bounded windows of its latest rows, ordered exactly as the encoder orders
them: the last `depth.events` events, the last `depth.links` interactions (both directions), the
last `depth.artifacts` artifacts; plus the feature vectors of those artifacts' blobs. `refresh`
absorbs the commits made since the last one, one at a time from the Delta log (see
dmas.online.changes): its cost follows the commits, not the store. A deletion inside a full window
(forgetting an entity) reloads the entities it touched from their tables, and a log the view cannot
follow (cleaned up, purged) rebuilds it; both are rare and logged.

A row of a type a run never saw takes a window slot but is left out of that run's inputs, so the
windows are deeper than a run needs (64 events for L=50, 16 links for K=5, 8 artifacts for M=2):
inputs are exact unless an entity's latest rows hold more such rows than the slack.

Each replica holds its own view built from the shared store at start, so any number of replicas on
any number of nodes answer from the same committed data, each at most one poll behind; every
answer names the table versions it read.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dmas.inputs.rows import ARTIFACT_SCHEMA, EVENT_SCHEMA, FEATURE_SCHEMA, LINK_SCHEMA, UNDATED, EntityRows
from dmas.online.changes import RebuildNeeded, TableChange, commit_change, latest_version
from dmas.store import Store

log = logging.getLogger(__name__)

_COLUMNS = {
    "entities": ["entity_id", "attributes"],
    "events": ["entity_id", "timestamp", "event_type", "event_value"],
    "interactions": ["src_entity_id", "dst_entity_id", "interaction_type", "interaction_value", "timestamp"],
    "artifacts": ["artifact_id", "sha256", "artifact_type", "entity_id", "timestamp"],
    "features": ["sha256", "feature_version", "artifact_type", "status", "vector"],
}
# the tables whose versions a refresh reads first: rows there refer to entities, so entities is read last
_ORDER = ("events", "interactions", "artifacts", "features", "entities")
_APPLY = ("entities", "events", "interactions", "artifacts", "features")


@dataclass(frozen=True)
class ViewDepth:
    """How many of each entity's latest rows the view keeps; a run needing more is scored from the tables."""

    events: int = 64
    links: int = 16
    artifacts: int = 8

    def serves(self, max_events: int, max_neighbors: int, max_artifacts: int) -> bool:
        """Whether windows this deep give a run's inputs exactly (an event's gap needs the one before it)."""
        return self.events >= max_events + 1 and self.links >= max_neighbors and self.artifacts >= max_artifacts


class OnlineView:
    """Per-entity windows of the store's latest versions; `rows_for` hands the encoder its `EntityRows`.

    A commit of more than `rebuild_rows` rows (a bulk load) rebuilds the view instead: the rebuild is
    vectorised, absorbing is a loop over the entities touched, so past that size rebuilding is faster.
    """

    def __init__(self, store: Store, depth: ViewDepth = ViewDepth(), rebuild_rows: int = 200_000):
        self.store, self.depth, self.rebuild_rows = store, depth, rebuild_rows
        self._lock = threading.RLock()
        self.build()

    # -- building ---------------------------------------------------------------------------------------------

    def build(self) -> None:
        """(Re)build from the current versions of every table."""
        started = time.perf_counter()
        with self._lock:
            versions = {name: self.store.table(name).version() for name in _ORDER}
            tables = {name: self.store.table(name).read(columns=_COLUMNS[name], version=versions[name])
                      for name in _APPLY}
            self.versions = dict(sorted(versions.items()))
            ids = tables["entities"]["entity_id"].to_pylist()
            self._ids: list[str | None] = ids
            self._slot = {entity: slot for slot, entity in enumerate(ids)}
            self._attributes: list[str | None] = tables["entities"]["attributes"].to_pylist()
            capacity = max(16, len(ids))
            self._allocate(capacity)
            self._event_types: list[str] = []
            self._event_code: dict[str, int] = {}
            self._interaction_types: list[str] = []
            self._interaction_code: dict[str, int] = {}
            self._build_events(tables["events"])
            self._build_links(tables["interactions"])
            self._artifacts: dict[int, list[tuple]] = defaultdict(list)
            self._insert_artifacts(tables["artifacts"])
            self._features: dict[tuple[str, str], tuple[str, np.ndarray]] = {}
            self._apply_features(TableChange(tables["features"], tables["features"].select(["sha256",
                                                                                          "feature_version"])[:0]))
            self._latest = {name: _max_time(tables[name]) for name in ("events", "interactions", "artifacts")}
        # a million entities are millions of long-lived objects: leave them out of the cycle collector's
        # full passes (measured: in-process p50 of one prediction 3.9 -> 3.5 ms at 1M entities, = 10k's)
        gc.freeze()
        self.built_s = time.perf_counter() - started
        log.info("online view built: %d entities in %.2f s at %s", len(self._slot), self.built_s, self.versions)

    def _allocate(self, capacity: int) -> None:
        d = self.depth
        self._ev_time = np.zeros((capacity, d.events), np.int64)
        self._ev_type = np.zeros((capacity, d.events), np.int32)
        self._ev_value = np.zeros((capacity, d.events), np.float64)
        self._ev_count = np.zeros(capacity, np.int32)
        self._lk_time = np.zeros((capacity, d.links), np.int64)
        self._lk_other = np.zeros((capacity, d.links), np.int64)
        self._lk_type = np.zeros((capacity, d.links), np.int32)
        self._lk_value = np.zeros((capacity, d.links), np.float64)
        self._lk_count = np.zeros(capacity, np.int32)

    def _grow(self, needed: int) -> None:
        capacity = len(self._ev_count)
        if needed <= capacity:
            return
        new = max(needed, capacity * 2)
        for name in ("_ev_time", "_ev_type", "_ev_value", "_ev_count", "_lk_time", "_lk_other", "_lk_type",
                     "_lk_value", "_lk_count"):
            old = getattr(self, name)
            grown = np.zeros((new, *old.shape[1:]), old.dtype)
            grown[:capacity] = old
            setattr(self, name, grown)

    def _codes(self, names: pa.ChunkedArray, table: list[str], code: dict[str, int]) -> np.ndarray:
        """Store-wide integer codes of type names (new names get the next code)."""
        unique = pc.unique(names).to_pylist()
        for name in sorted(unique):
            if name not in code:
                code[name] = len(table)
                table.append(name)
        return pc.index_in(names, value_set=pa.array(table, pa.string())).to_numpy(zero_copy_only=False).astype(
            np.int32)

    def _slots(self, column: pa.ChunkedArray) -> np.ndarray:
        index = pc.index_in(column, value_set=pa.array(self._ids, pa.string()))
        return pc.fill_null(index, -1).to_numpy(zero_copy_only=False).astype(np.int64)

    def _build_events(self, events: pa.Table) -> None:
        slot = self._slots(events["entity_id"])
        known = slot >= 0
        codes = self._codes(events["event_type"], self._event_types, self._event_code)[known]
        rank = _string_rank(self._event_types)[codes]
        times = events["timestamp"].cast(pa.int64()).to_numpy()[known]
        values = events["event_value"].to_numpy()[known]
        slot = slot[known]
        kept, position = _last_per_group(slot, [times, rank, values], self.depth.events)
        target = (slot[kept], position)
        self._ev_time[target], self._ev_type[target], self._ev_value[target] = times[kept], codes[kept], values[kept]
        self._ev_count[:] = np.bincount(slot[kept], minlength=len(self._ev_count))[:len(self._ev_count)]

    def _build_links(self, interactions: pa.Table) -> None:
        src, dst = self._slots(interactions["src_entity_id"]), self._slots(interactions["dst_entity_id"])
        codes = self._codes(interactions["interaction_type"], self._interaction_types, self._interaction_code)
        known = (src >= 0) & (dst >= 0)
        owner = np.concatenate([src[known], dst[known]])
        other = np.concatenate([dst[known], src[known]])
        kind = np.concatenate([codes[known]] * 2)
        value = np.concatenate([interactions["interaction_value"].to_numpy()[known]] * 2)
        when = np.concatenate([interactions["timestamp"].cast(pa.int64()).to_numpy()[known]] * 2)
        other_rank = _string_rank(self._ids)[other] if len(other) else other
        kind_rank = _string_rank(self._interaction_types)[kind] if len(kind) else kind
        kept, position = _last_per_group(owner, [when, -other_rank, -kind_rank], self.depth.links)
        target = (owner[kept], position)
        self._lk_time[target], self._lk_other[target] = when[kept], other[kept]
        self._lk_type[target], self._lk_value[target] = kind[kept], value[kept]
        self._lk_count[:] = np.bincount(owner[kept], minlength=len(self._lk_count))[:len(self._lk_count)]

    # -- absorbing commits ------------------------------------------------------------------------------------

    def refresh(self) -> bool:
        """Absorb every commit since the last refresh; True when the view changed."""
        location = self.store.location
        with self._lock:
            targets = {name: latest_version(location.filesystem, location.path("tables", name), self.versions[name])
                       for name in _ORDER}
            if targets == self.versions:
                return False
            self._forgotten: list[str] = []
            try:
                for name in _APPLY:
                    for version in range(self.versions[name] + 1, targets[name] + 1):
                        change = commit_change(location.filesystem, location.path("tables", name),
                                               self.store.table(name).spec, version, _COLUMNS[name])
                        if change.written.num_rows + change.deleted.num_rows > self.rebuild_rows:
                            raise RebuildNeeded(f"{name} version {version} changed {change.written.num_rows} rows "
                                         f"(more than {self.rebuild_rows})")
                        self.versions[name] = version  # what a reload or a recomputation reads
                        getattr(self, f"_apply_{name}")(change)
                self._remove_entities(self._forgotten)
            except RebuildNeeded as gap:
                log.info("online view rebuilds: %s", gap)
                self.build()
        return True

    def _apply_entities(self, change: TableChange) -> None:
        """New and updated entities now; deleted ones at the end of the refresh, so that the deletions of
        their rows in the other tables (a forget deletes those first) still find them."""
        self._forgotten += change.deleted["entity_id"].to_pylist()
        for entity, attributes in zip(change.written["entity_id"].to_pylist(),
                                      change.written["attributes"].to_pylist()):
            if entity in self._forgotten:  # forgotten, then ingested again within one refresh
                self._forgotten.remove(entity)
            slot = self._slot.get(entity)
            if slot is None:
                slot = self._slot[entity] = len(self._ids)
                self._ids.append(entity)
                self._attributes.append(None)
                self._grow(len(self._ids))
            self._attributes[slot] = attributes

    def _remove_entities(self, entity_ids: list[str]) -> None:
        for entity in entity_ids:
            slot = self._slot.pop(entity, None)
            if slot is not None:
                self._ids[slot] = self._attributes[slot] = None
                self._ev_count[slot] = self._lk_count[slot] = 0
                self._artifacts.pop(slot, None)

    def _apply_events(self, change: TableChange) -> None:
        reload: set[int] = set()
        touched: dict[int, list[tuple]] = defaultdict(list)
        written = change.written
        codes = self._codes(written["event_type"], self._event_types, self._event_code) if written.num_rows else []
        for entity, when, code, value in zip(written["entity_id"].to_pylist(),
                                             written["timestamp"].cast(pa.int64()).to_pylist(), codes,
                                             written["event_value"].to_pylist()):
            if (slot := self._slot.get(entity)) is not None:
                touched[slot].append((when, int(code), value))
        deleted = _grouped(change.deleted, "entity_id", self._slot,
                           lambda row: (row["timestamp"], self._event_code.get(row["event_type"], -1),
                                        row["event_value"]), timestamps=("timestamp",))
        for slot in set(touched) | set(deleted):
            window = [(int(t), int(c), float(v)) for t, c, v in zip(*self._event_window(slot))]
            if deleted.get(slot):
                gone = set(deleted[slot])
                if len(window) == self.depth.events and gone & set(window):
                    reload.add(slot)
                window = [row for row in window if row not in gone]
            window.extend(touched.get(slot, []))
            window.sort(key=lambda row: (row[0], self._event_types[row[1]], row[2]))
            self._set_events(slot, window[-self.depth.events:])
        self._latest["events"] = max(self._latest["events"], _max_time(written))
        if change.deleted.num_rows:
            self._recompute_latest("events")
        self._reload("events", reload)

    def _event_window(self, slot: int):
        count = self._ev_count[slot]
        return self._ev_time[slot, :count], self._ev_type[slot, :count], self._ev_value[slot, :count]

    def _set_events(self, slot: int, window: list[tuple]) -> None:
        self._ev_count[slot] = len(window)
        if window:
            times, codes, values = zip(*window)
            self._ev_time[slot, :len(window)] = times
            self._ev_type[slot, :len(window)] = codes
            self._ev_value[slot, :len(window)] = values

    def _apply_interactions(self, change: TableChange) -> None:
        gone: dict[int, set[tuple]] = defaultdict(set)
        for row in change.deleted.to_pylist():
            a, b = self._slot.get(row["src_entity_id"]), self._slot.get(row["dst_entity_id"])
            code = self._interaction_code.get(row["interaction_type"], -1)
            when = _micros(row["timestamp"])
            for owner, other in ((a, b), (b, a)):
                if owner is not None and other is not None:
                    gone[owner].add((when, other, code, row["interaction_value"]))
        reload = self._merge_links(self._new_links(change.written), gone)
        self._latest["interactions"] = max(self._latest["interactions"], _max_time(change.written))
        if change.deleted.num_rows:
            self._recompute_latest("interactions")
        self._reload("interactions", reload)

    def _new_links(self, written: pa.Table, only: set[int] | None = None) -> dict[int, list[tuple]]:
        """Both directions of each new interaction, by owner (only the owners in `only`, when given)."""
        codes = self._codes(written["interaction_type"], self._interaction_types,
                            self._interaction_code) if written.num_rows else []
        touched: dict[int, list[tuple]] = defaultdict(list)
        for src, dst, code, value, when in zip(written["src_entity_id"].to_pylist(),
                                               written["dst_entity_id"].to_pylist(), codes,
                                               written["interaction_value"].to_pylist(),
                                               written["timestamp"].cast(pa.int64()).to_pylist()):
            a, b = self._slot.get(src), self._slot.get(dst)
            if a is None or b is None:
                continue
            for owner, other in ((a, b), (b, a)):
                if only is None or owner in only:
                    touched[owner].append((when, other, int(code), value))
        return touched

    def _merge_links(self, touched: dict[int, list[tuple]], gone: dict[int, set[tuple]]) -> set[int]:
        """Windows with `touched` added and `gone` removed; the owners whose full window lost a row."""
        reload = set()
        for slot in set(touched) | set(gone):
            count = self._lk_count[slot]
            window = [(int(t), int(o), int(c), float(v)) for t, o, c, v in zip(
                self._lk_time[slot, :count], self._lk_other[slot, :count], self._lk_type[slot, :count],
                self._lk_value[slot, :count])]
            if gone.get(slot):
                if len(window) == self.depth.links and gone[slot] & set(window):
                    reload.add(slot)
                window = [row for row in window if row not in gone[slot]]
            window.extend(touched.get(slot, []))
            self._set_links(slot, self._link_order(window)[-self.depth.links:])
        return reload

    def _link_order(self, window: list[tuple]) -> list[tuple]:
        """The encoder's order: by time; at equal times a larger neighbour id first, then a larger type."""
        window = sorted(window, key=lambda row: self._interaction_types[row[2]], reverse=True)
        window.sort(key=lambda row: self._ids[row[1]] or "", reverse=True)
        window.sort(key=lambda row: row[0])
        return window

    def _set_links(self, slot: int, window: list[tuple]) -> None:
        self._lk_count[slot] = len(window)
        if window:
            times, others, codes, values = zip(*window)
            n = len(window)
            self._lk_time[slot, :n], self._lk_other[slot, :n] = times, others
            self._lk_type[slot, :n], self._lk_value[slot, :n] = codes, values

    def _insert_artifacts(self, artifacts: pa.Table) -> set[int]:
        touched = set()
        for row in artifacts.to_pylist():
            slot = self._slot.get(row["entity_id"]) if row["entity_id"] is not None else None
            if slot is None:
                continue
            entries = [entry for entry in self._artifacts[slot] if entry[1] != row["artifact_id"]]
            entries.append((_micros(row["timestamp"]) if row["timestamp"] is not None else UNDATED,
                            row["artifact_id"], row["sha256"], row["artifact_type"]))
            self._artifacts[slot] = entries
            touched.add(slot)
        for slot in touched:  # the encoder's order: by time; at equal times a larger artifact_id first
            entries = sorted(self._artifacts[slot], key=lambda entry: entry[1], reverse=True)
            entries.sort(key=lambda entry: entry[0])
            self._artifacts[slot] = entries[-self.depth.artifacts:]
        return touched

    def _apply_artifacts(self, change: TableChange) -> None:
        reload = set()
        for artifact_id in change.deleted["artifact_id"].to_pylist():
            for slot, entries in list(self._artifacts.items()):
                if any(entry[1] == artifact_id for entry in entries):
                    if len(entries) == self.depth.artifacts:
                        reload.add(slot)
                    self._artifacts[slot] = [entry for entry in entries if entry[1] != artifact_id]
        self._insert_artifacts(change.written)
        self._latest["artifacts"] = max(self._latest["artifacts"], _max_time(change.written))
        if change.deleted.num_rows:
            self._recompute_latest("artifacts")
        self._reload("artifacts", reload)

    def _apply_features(self, change: TableChange) -> None:
        for sha256, version in zip(change.deleted["sha256"].to_pylist(), change.deleted["feature_version"].to_pylist()):
            self._features.pop((sha256, version), None)
        written = change.written.filter(pc.equal(change.written["status"], "ok"))
        vectors = written["vector"].to_pylist()
        for sha256, version, kind, vector in zip(written["sha256"].to_pylist(),
                                                 written["feature_version"].to_pylist(),
                                                 written["artifact_type"].to_pylist(), vectors):
            self._features[(sha256, version)] = (kind, np.asarray(vector, np.float32))

    def _recompute_latest(self, name: str) -> None:
        """After a deletion the latest time may have gone with it: read the column at the view's version."""
        column = self.store.table(name).read(columns=["timestamp"], version=self.versions[name])
        self._latest[name] = _max_time(column)

    def _reload(self, name: str, slots: set[int]) -> None:
        """Rebuild the `name` windows of `slots` from the table (a deletion emptied part of a full window)."""
        ids = [self._ids[slot] for slot in slots if self._ids[slot] is not None]
        if not ids:
            return
        log.info("online view reloads the %s of %d entities after a deletion inside a full window", name, len(ids))
        wanted = pa.array(ids, pa.string())
        table = self.store.table(name).read(columns=_COLUMNS[name], version=self.versions[name])
        columns = ("src_entity_id", "dst_entity_id") if name == "interactions" else ("entity_id",)
        mine = pc.is_in(table[columns[0]], value_set=wanted)
        for column in columns[1:]:
            mine = pc.or_(mine, pc.is_in(table[column], value_set=wanted))
        table = table.filter(mine)
        chosen = set(slots)
        if name == "events":
            self._ev_count[list(chosen)] = 0
            self._apply_events(TableChange(table, table.slice(0, 0)))
        elif name == "interactions":
            self._lk_count[list(chosen)] = 0
            self._merge_links(self._new_links(table, only=chosen), {})
        else:
            for slot in chosen:
                self._artifacts.pop(slot, None)
            self._insert_artifacts(table)

    # -- reading ----------------------------------------------------------------------------------------------

    def known(self, entity_ids: list[str]) -> list[str]:
        """The ids among `entity_ids` that the view holds, in order (cost: the request's, not the store's)."""
        return [entity for entity in entity_ids if entity in self._slot]

    def rows_for(self, entity_ids: list[str], feature_version: str) -> tuple[EntityRows, list[str], dict, int]:
        """`EntityRows` of the known ids (in order, each once), the unknown ids, the versions read and the
        reference time (the latest time in the store: what event ages are measured to)."""
        with self._lock:
            unique = list(dict.fromkeys(entity_ids))
            slots = [self._slot[entity] for entity in unique if entity in self._slot]
            unknown = [entity for entity in unique if entity not in self._slot]
            rows = self._rows(slots, feature_version)
            reference = max(self._latest.values(), default=0)
            return rows, unknown, dict(self.versions), max(reference, 0)

    def _rows(self, slots: list[int], feature_version: str) -> EntityRows:
        owner = np.arange(len(slots))
        ev_count = self._ev_count[slots]
        ev_mask = np.arange(self.depth.events)[None, :] < ev_count[:, None]
        event_owner = np.repeat(owner, ev_count)
        event_codes = self._ev_type[slots][ev_mask]
        events = pa.table([event_owner, self._ev_time[slots][ev_mask],
                           pa.array(self._event_types, pa.string()).take(pa.array(event_codes)) if len(event_codes)
                           else pa.array([], pa.string()), self._ev_value[slots][ev_mask]], schema=EVENT_SCHEMA)
        links, neighbours = self._link_rows(slots)
        artifact_rows = [(i, entry) for i, slot in enumerate(slots) for entry in self._artifacts.get(slot, [])]
        artifacts = pa.table([pa.array([i for i, _ in artifact_rows], pa.int64()),
                              pa.array([entry[1] for _, entry in artifact_rows], pa.string()),
                              pa.array([entry[2] for _, entry in artifact_rows], pa.string()),
                              pa.array([entry[3] for _, entry in artifact_rows], pa.string()),
                              pa.array([entry[0] for _, entry in artifact_rows], pa.int64())], schema=ARTIFACT_SCHEMA)
        shas = sorted({entry[2] for _, entry in artifact_rows})
        found = [(sha, self._features[(sha, feature_version)]) for sha in shas
                 if (sha, feature_version) in self._features]
        features = pa.table([pa.array([sha for sha, _ in found], pa.string()),
                             pa.array([kind for _, (kind, _) in found], pa.string()),
                             pa.array([vector for _, (_, vector) in found], pa.list_(pa.float32()))],
                            schema=FEATURE_SCHEMA)
        return EntityRows(np.asarray([self._ids[slot] for slot in slots], dtype=object),
                          pa.array([self._attributes[slot] for slot in slots], pa.string()), events, links,
                          neighbours, artifacts, features)

    def _link_rows(self, slots: list[int]) -> tuple[pa.Table, pa.Array]:
        count = self._lk_count[slots]
        mask = np.arange(self.depth.links)[None, :] < count[:, None]
        owner = np.repeat(np.arange(len(slots)), count)
        other = self._lk_other[slots][mask]
        alive = np.array([self._ids[slot] is not None for slot in other], bool)
        owner, other = owner[alive], other[alive]
        neighbour_slots = sorted(set(other.tolist()), key=lambda slot: self._ids[slot])
        position = {slot: i for i, slot in enumerate(neighbour_slots)}
        codes = self._lk_type[slots][mask][alive]
        links = pa.table([owner, np.array([position[slot] for slot in other.tolist()], np.int64),
                          pa.array(self._interaction_types, pa.string()).take(pa.array(codes)) if len(codes)
                          else pa.array([], pa.string()),
                          self._lk_value[slots][mask][alive], self._lk_time[slots][mask][alive]], schema=LINK_SCHEMA)
        return links, pa.array([self._attributes[slot] for slot in neighbour_slots], pa.string())

    def entity_ids(self) -> list[str]:
        """Every entity the view holds, sorted."""
        with self._lock:
            return sorted(self._slot)

    def attributes_of(self, entity_ids: set[str]) -> dict[str, str]:
        """Attribute JSON of the stored ones among `entity_ids` (inline entities' neighbours)."""
        with self._lock:
            return {entity: self._attributes[self._slot[entity]] for entity in entity_ids if entity in self._slot}

    def features_of(self, digests: set[str], feature_version: str) -> dict[str, tuple[str, np.ndarray]]:
        """(artifact type, vector) of the blobs among `digests` that have features of `feature_version`."""
        with self._lock:
            return {digest: self._features[(digest, feature_version)] for digest in digests
                    if (digest, feature_version) in self._features}

    def __len__(self) -> int:
        return len(self._slot)


def _string_rank(names: list) -> np.ndarray:
    """Position of each name in sorted order (None sorts first)."""
    order = sorted(range(len(names)), key=lambda i: (names[i] is not None, names[i] or ""))
    rank = np.empty(len(names), np.int64)
    rank[order] = np.arange(len(names))
    return rank


def _last_per_group(group: np.ndarray, sort_keys: list[np.ndarray], limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows kept (the last `limit` of each group under `sort_keys`) and their position 0..limit-1."""
    order = np.lexsort([*reversed(sort_keys), group])
    ordered = group[order]
    counts = np.bincount(ordered, minlength=1) if len(ordered) else np.zeros(1, np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.arange(len(order)) - starts[ordered]
    first_kept = np.maximum(counts[ordered] - limit, 0)
    keep = position >= first_kept
    return order[keep], (position - first_kept)[keep]


def _grouped(table: pa.Table, column: str, slot_of: dict, key, timestamps: tuple[str, ...] = ()) -> dict[int, list]:
    groups: dict[int, list] = defaultdict(list)
    for row in table.to_pylist():
        for name in timestamps:
            row[name] = _micros(row[name])
        if (slot := slot_of.get(row[column])) is not None:
            groups[slot].append(key(row))
    return groups


def _micros(moment) -> int:
    return int(pa.scalar(moment, pa.timestamp("us", tz="UTC")).cast(pa.int64()).as_py())


def _max_time(table: pa.Table) -> int:
    if table.num_rows == 0 or "timestamp" not in table.column_names:
        return np.iinfo(np.int64).min
    latest = pc.max(table["timestamp"].cast(pa.int64())).as_py()
    return latest if latest is not None else np.iinfo(np.int64).min

"""The run registry: one row per training run (a Delta table beside the data), plus each run's files.

A run is `running` while the process training it holds its lease (`RunLease`), then `completed`,
`rejected` (a quality gate missed) or `failed`. A running run whose lease stopped being renewed is
marked failed by whoever reads it next, within seconds, so a retry of the same config (same run_id)
can proceed. Run folders are written under a temporary name and renamed, and never overwritten.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import fs as pafs

from dmas.errors import NotFoundError, StoreError
from dmas.store import Store
from dmas.store.location import StoreLocation
from dmas.store.schemas import TIMESTAMP, TableSpec
from dmas.store.tables import VersionedTable

log = logging.getLogger(__name__)


class RunStatus(StrEnum):
    """Where a run stands; the values are the strings the registry table and the HTTP API carry."""

    RUNNING = "running"
    COMPLETED = "completed"
    REJECTED = "rejected"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        """Trained and published (a rejected run missed a gate but has its files and can be served)."""
        return self in (RunStatus.COMPLETED, RunStatus.REJECTED)


RUNS = TableSpec(
    name="runs",
    schema=pa.schema([
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("created_at", TIMESTAMP, nullable=False),
        pa.field("updated_at", TIMESTAMP, nullable=False),
        pa.field("error", pa.string(), nullable=True),
        pa.field("model_sha256", pa.string(), nullable=True),
        pa.field("details", pa.string(), nullable=True),  # JSON: metrics summary, gate violations, ...
    ]),
    key=("run_id",),
    updatable=("status", "updated_at", "error", "model_sha256", "details"),
)
RUN_FILES = ("model.safetensors", "config.json", "metrics.json", "data_manifest.json", "model_sha256.txt",
             "training_log.jsonl")
# every entity's scores at the pinned snapshot as training computed them (live scoring must reproduce them)
SERVING_FILES = ("predictions.arrow",)
LEASE_RENEW_EVERY_S = 1.0
LEASE_TTL_S = 5.0  # a lease not renewed for this long (five missed renewals) belongs to a dead process


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    status: RunStatus
    created_at: datetime
    updated_at: datetime
    error: str | None
    model_sha256: str | None
    details: dict

    def to_dict(self) -> dict:
        """The record as `dmas runs` and GET /runs show it; `metrics` is {} until the run has test metrics."""
        return {"run_id": self.run_id, "status": self.status, "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat(), "error": self.error, "model_sha256": self.model_sha256,
                "metrics": {}, **self.details}


class RunLease:
    """Proof of life of the process training a run: a small file in the store it rewrites every second.

    The file holds the holder's name, a beat counter, the holder's clock and the TTL. It lives in the
    store, so readers on any node see it (local folder, NFS or s3://; no local pids). Used as a
    context manager around the training; `check()` raises once another process has taken the lease.
    """

    def __init__(self, location: StoreLocation, run_id: str, *, renew_every_s: float = LEASE_RENEW_EVERY_S,
                 ttl_s: float = LEASE_TTL_S):
        self.location = location
        self.run_id = run_id
        self.renew_every_s = renew_every_s
        self.ttl_s = ttl_s
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lost_to: str | None = None
        self._beat = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RunLease:
        self._write()
        self._thread = threading.Thread(target=self._renew, name=f"dmas-lease-{self.run_id[:8]}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.ttl_s)
        if self.held:
            self.location.filesystem.delete_file(lease_path(self.location, self.run_id))

    @property
    def held(self) -> bool:
        return self.lost_to is None

    def check(self) -> None:
        """Raise if another process took this run over (it judged this one dead); it now owns the run."""
        if not self.held:
            raise StoreError(f"run '{self.run_id}' was taken over by {self.lost_to}; this process stopped "
                             "renewing its lease in time and leaves the run to it")

    def _renew(self) -> None:
        while not self._stop.wait(self.renew_every_s):
            try:
                current = read_lease(self.location, self.run_id)
                if current is not None and current.get("holder") != self.holder:
                    self.lost_to = str(current.get("holder"))
                    return
                self._beat += 1
                self._write()
            except OSError as exc:  # a storage hiccup: readers allow five missed renewals
                log.warning("run %s: cannot renew the lease: %s", self.run_id, exc)

    def _write(self) -> None:
        state = {"holder": self.holder, "beat": self._beat, "renewed_at": datetime.now(UTC).isoformat(),
                 "ttl_s": self.ttl_s}
        with self.location.filesystem.open_output_stream(lease_path(self.location, self.run_id)) as out:
            out.write(json.dumps(state).encode())


def lease_path(location: StoreLocation, run_id: str) -> str:
    return location.path("runs", f".lease-{run_id}")


def read_lease(location: StoreLocation, run_id: str) -> dict | None:
    """The lease file's state; None when there is none, {} while it is being rewritten (unreadable)."""
    raw = _read_raw(location, lease_path(location, run_id))
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return {}


def lease_alive(location: StoreLocation, run_ids: list[str], *, confirm: bool = False) -> set[str]:
    """Which of `run_ids` have a live lease holder.

    Clock skew: a lease renewed less than its TTL from now (either way) by the holder's clock, as
    read on this node's clock, is alive at once. Anything else (no lease, an old, future or
    unreadable one) is only a suspect: it is watched for one TTL on this node's monotonic clock and
    alive if its file changes. So skewed clocks can delay a verdict by about one TTL, never make a
    live holder look dead. With `confirm`, every lease is watched (no verdict from clocks at all):
    what a retry uses before taking a run over, so it proceeds as soon as one TTL shows no renewal.
    """
    alive: set[str] = set()
    suspects: dict[str, bytes | None] = {}
    watch_s = 0.0
    now = datetime.now(UTC)
    for run_id in run_ids:
        state = read_lease(location, run_id)
        ttl_s = float(state.get("ttl_s", LEASE_TTL_S)) if state else LEASE_TTL_S
        if state and not confirm and abs(_age_s(state, now)) < ttl_s:
            alive.add(run_id)
        else:
            suspects[run_id] = _read_raw(location, lease_path(location, run_id))
            watch_s = max(watch_s, ttl_s)
    deadline = time.monotonic() + watch_s
    while suspects and time.monotonic() < deadline:
        time.sleep(min(0.25, watch_s / 10))
        for run_id, seen in list(suspects.items()):
            if _read_raw(location, lease_path(location, run_id)) != seen:
                alive.add(run_id)
                del suspects[run_id]
    return alive


def _age_s(state: dict, now: datetime) -> float:
    try:
        return (now - datetime.fromisoformat(state["renewed_at"])).total_seconds()
    except (KeyError, TypeError, ValueError):
        return float("inf")


def _read_raw(location: StoreLocation, path: str) -> bytes | None:
    try:
        with location.filesystem.open_input_stream(path) as handle:
            return handle.read()
    except FileNotFoundError:
        return None


class RunRegistry:
    def __init__(self, store: Store):
        self.store = store
        self.location = store.location
        self.table = VersionedTable(store.location, RUNS)
        self.location.makedirs("runs")
        self.table.create_if_missing()

    def folder(self, run_id: str) -> str:
        return self.location.path("runs", run_id)

    def get(self, run_id: str, *, confirm: bool = False) -> RunRecord | None:
        """The run's record; running with a dead holder reads as failed (`confirm`: see `lease_alive`)."""
        stored = self._stored(run_id)
        return self._fresh([stored], confirm=confirm)[0] if stored else None

    def _stored(self, run_id: str) -> RunRecord | None:
        rows = self.table.read(filter=pc.field("run_id") == run_id).to_pylist()
        return _record(rows[0]) if rows else None

    def require(self, run_id: str) -> RunRecord:
        record = self.get(run_id)
        if record is None:
            raise NotFoundError(f"unknown run '{run_id}'")
        return record

    def list(self) -> list[RunRecord]:
        """Every run, newest first (running runs whose holder died are marked failed on the way)."""
        records = self._fresh([_record(row) for row in self.table.read().to_pylist()])
        return sorted(records, key=lambda record: (record.created_at, record.run_id), reverse=True)

    def latest_completed(self) -> RunRecord | None:
        return next((record for record in self.list() if record.status == RunStatus.COMPLETED), None)

    def lease(self, run_id: str) -> RunLease:
        """The lease the process training `run_id` holds while the run is `running`."""
        return RunLease(self.location, run_id)

    def set_status(self, run_id: str, status: RunStatus, *, error: str | None = None,
                   model_sha256: str | None = None, details: dict | None = None) -> None:
        now = datetime.now(UTC)
        existing = self._stored(run_id)
        row = {
            "run_id": run_id, "status": RunStatus(status).value,
            "created_at": existing.created_at if existing else now,
            "updated_at": now, "error": error,
            "model_sha256": model_sha256 or (existing.model_sha256 if existing else None),
            "details": json.dumps(details if details is not None else (existing.details if existing else {}),
                                  sort_keys=True),
        }
        self.table.upsert(pa.Table.from_pylist([row], schema=RUNS.schema), {"dmas_operation": f"run {status}"})

    def publish(self, run_id: str, files: dict[str, bytes]) -> None:
        """Write the run's files under a temporary folder, then rename it into place (never overwriting).

        The same files again are accepted: a holder that died between publishing and recording the
        status leaves them, and its retry trains the same bytes.
        """
        final = self.folder(run_id)
        if self.location.filesystem.get_file_info(final).type != pafs.FileType.NotFound:
            if _read_raw(self.location, f"{final}/model_sha256.txt") == files.get("model_sha256.txt"):
                return
            raise StoreError(f"run '{run_id}' already has files; runs are immutable")
        staging = self.location.path("runs", f".staging-{run_id}-{uuid.uuid4().hex[:8]}")
        self.location.filesystem.create_dir(staging, recursive=True)
        for name, data in files.items():
            with self.location.filesystem.open_output_stream(f"{staging}/{name}") as out:
                out.write(data)
        self.location.filesystem.move(staging, final)

    def read_file(self, run_id: str, name: str) -> bytes:
        if name not in RUN_FILES + SERVING_FILES:
            raise StoreError(f"'{name}' is not a run file; run files are {', '.join(RUN_FILES + SERVING_FILES)}")
        data = _read_raw(self.location, f"{self.folder(run_id)}/{name}")
        if data is None:
            raise StoreError(f"run '{run_id}' has no file '{name}'")
        return data

    def _fresh(self, records: list[RunRecord], *, confirm: bool = False) -> list[RunRecord]:
        """Running records whose lease holder is gone are marked failed (re-read first: it may just have ended)."""
        running = [record.run_id for record in records if record.status == RunStatus.RUNNING]
        if not running:
            return records
        dead = set(running) - lease_alive(self.location, running, confirm=confirm)
        return [self._mark_dead(record) if record.run_id in dead else record for record in records]

    def _mark_dead(self, record: RunRecord) -> RunRecord:
        current = self._stored(record.run_id)
        if current is None or current.status != RunStatus.RUNNING:
            return current or record
        error = "the training process stopped: its lease was not renewed"
        self.set_status(record.run_id, RunStatus.FAILED, error=error)
        return self._stored(record.run_id)


def _record(row: dict) -> RunRecord:
    return RunRecord(row["run_id"], RunStatus(row["status"]), row["created_at"], row["updated_at"], row["error"],
                     row["model_sha256"], json.loads(row["details"] or "{}"))


"""The run registry: one row per training run (a Delta table beside the data), plus each run's files.

Status moves pending -> running -> completed | rejected | failed. A run whose process died stops
sending heartbeats; reading the registry marks such a run failed instead of leaving it running
forever. Run folders are written under a temporary name and renamed, and never overwritten.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import fs as pafs

from dmas.errors import NotFoundError, StoreError
from dmas.store import Store
from dmas.store.schemas import TIMESTAMP, TableSpec
from dmas.store.tables import VersionedTable

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
# what serving looks up instead of reading the tables: every entity's inputs and scores at the pinned snapshot
SERVING_FILES = ("inputs.safetensors", "entities.arrow", "predictions.arrow")
STALE_AFTER = timedelta(minutes=15)
HEARTBEAT_EVERY = timedelta(minutes=1)
FINAL_STATUSES = ("completed", "rejected", "failed")


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    status: str
    created_at: datetime
    updated_at: datetime
    error: str | None
    model_sha256: str | None
    details: dict

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "status": self.status, "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat(), "error": self.error, "model_sha256": self.model_sha256,
                **self.details}


class RunRegistry:
    def __init__(self, store: Store):
        self.store = store
        self.location = store.location
        self.table = VersionedTable(store.location, RUNS)
        self.location.makedirs("runs")
        self.table.create_if_missing()

    def folder(self, run_id: str) -> str:
        return self.location.path("runs", run_id)

    def get(self, run_id: str) -> RunRecord | None:
        stored = self._stored(run_id)
        return self._fresh(stored) if stored else None

    def _stored(self, run_id: str) -> RunRecord | None:
        rows = self.table.read(filter=pc.field("run_id") == run_id).to_pylist()
        return _record(rows[0]) if rows else None

    def require(self, run_id: str) -> RunRecord:
        record = self.get(run_id)
        if record is None:
            raise NotFoundError(f"unknown run '{run_id}'")
        return record

    def list(self) -> list[RunRecord]:
        """Every run, newest first (stale running runs are marked failed on the way)."""
        records = [self._fresh(_record(row)) for row in self.table.read().to_pylist()]
        return sorted(records, key=lambda record: (record.created_at, record.run_id), reverse=True)

    def latest_completed(self) -> RunRecord | None:
        return next((record for record in self.list() if record.status == "completed"), None)

    def set_status(self, run_id: str, status: str, *, error: str | None = None, model_sha256: str | None = None,
                   details: dict | None = None) -> None:
        now = datetime.now(UTC)
        existing = self._stored(run_id)
        row = {
            "run_id": run_id, "status": status, "created_at": existing.created_at if existing else now,
            "updated_at": now, "error": error,
            "model_sha256": model_sha256 or (existing.model_sha256 if existing else None),
            "details": json.dumps(details if details is not None else (existing.details if existing else {}),
                                  sort_keys=True),
        }
        self.table.upsert(pa.Table.from_pylist([row], schema=RUNS.schema), {"dmas_operation": f"run {status}"})

    @contextmanager
    def heartbeating(self, run_id: str, every: timedelta = HEARTBEAT_EVERY) -> Iterator[None]:
        """Touch the heartbeat in a background thread while the block runs (a long fit blocks the caller)."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(every.total_seconds()):
                self.heartbeat(run_id)

        self.heartbeat(run_id)
        thread = threading.Thread(target=beat, name=f"dmas-heartbeat-{run_id[:8]}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)

    def heartbeat(self, run_id: str) -> None:
        """Touch the run's heartbeat file: proof of life while it runs (no table commit per epoch)."""
        with self.location.filesystem.open_output_stream(self._heartbeat_path(run_id)) as out:
            out.write(datetime.now(UTC).isoformat().encode())

    def publish(self, run_id: str, files: dict[str, bytes]) -> None:
        """Write the run's files under a temporary folder, then rename it into place (never overwriting)."""
        final = self.folder(run_id)
        if self.location.filesystem.get_file_info(final).type != pafs.FileType.NotFound:
            raise StoreError(f"run '{run_id}' already has files; runs are immutable")
        staging = self.location.path("runs", f".staging-{run_id}")
        self.location.filesystem.create_dir(staging, recursive=True)
        for name, data in files.items():
            with self.location.filesystem.open_output_stream(f"{staging}/{name}") as out:
                out.write(data)
        self.location.filesystem.move(staging, final)

    def read_file(self, run_id: str, name: str) -> bytes:
        if name not in RUN_FILES + SERVING_FILES:
            raise StoreError(f"'{name}' is not a run file; run files are {', '.join(RUN_FILES + SERVING_FILES)}")
        try:
            with self.location.filesystem.open_input_stream(f"{self.folder(run_id)}/{name}") as handle:
                return handle.read()
        except FileNotFoundError:
            raise StoreError(f"run '{run_id}' has no file '{name}'") from None

    def _heartbeat_path(self, run_id: str) -> str:
        return self.location.path("runs", f".heartbeat-{run_id}")

    def _fresh(self, record: RunRecord) -> RunRecord:
        """A running run with no heartbeat for STALE_AFTER is marked failed (its process is gone)."""
        if record.status not in ("pending", "running"):
            return record
        info = self.location.filesystem.get_file_info(self._heartbeat_path(record.run_id))
        last = info.mtime if info.type == pafs.FileType.File else record.updated_at
        if last.tzinfo is None:
            last = last.replace(tzinfo=UTC)
        if datetime.now(UTC) - last < STALE_AFTER:
            return record
        error = f"no heartbeat since {last.isoformat()}: the training process stopped"
        self.set_status(record.run_id, "failed", error=error)
        return RunRecord(record.run_id, "failed", record.created_at, datetime.now(UTC), error, record.model_sha256,
                         record.details)


def _record(row: dict) -> RunRecord:
    return RunRecord(row["run_id"], row["status"], row["created_at"], row["updated_at"], row["error"],
                     row["model_sha256"], json.loads(row["details"] or "{}"))

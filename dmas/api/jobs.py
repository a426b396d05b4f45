"""Jobs the HTTP API starts (ingest, features, train, preload): their records and how one is run.

A job's record is one JSON file in the store (`jobs/<job_id>.json`), replaced atomically at each
state change, so any replica (or a restarted one) answers `GET /jobs/{id}` the same way. Files a
job reads were staged by the server under `uploads/<job_id>/` and are deleted when it ends; the
report the client sees names them as the client sent them, never by their path on the server.

A job that reports progress (the cascade) writes each report as one event file,
`jobs/<job_id>.events/<seq>.json` (staged and renamed, so a reader never sees half an event, on any
filesystem pyarrow reaches), and keeps the latest in its record's `progress`; `GET /jobs/{id}/events`
streams them.

An idempotency key names one job for good: `jobs/keys/<sha256>.json` is created once, by a hard
link (atomic, and refused when the name exists, also on NFS), so replicas that race on the same key
all answer with the job of the one that won.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
import shutil
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from pyarrow import fs as pafs

from dmas.api.errors import error_body
from dmas.config import Settings
from dmas.errors import DmasError, NotFoundError, StoreError
from dmas.operations import run_operation
from dmas.store import Store

_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
_EVENT_NAME = re.compile(r"^[0-9]{8}\.json$")
UNFINISHED = ("queued", "running")
# the original stack's task statuses, as its async routes and /health/queues named them
ORIGINAL_STATUS = {"queued": "pending", "running": "running", "succeeded": "completed", "failed": "failed"}


@dataclass(frozen=True)
class JobRecord:
    """One job: status goes queued -> running -> succeeded | failed; `error` is {"status", "detail"}."""

    job_id: str
    operation: str
    status: str
    request_id: str | None
    key_id: str | None
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    result: dict | None = None
    error: dict | None = None
    progress: dict | None = None  # the latest progress event, for jobs that report progress

    def to_dict(self) -> dict:
        return {**asdict(self), "status_url": f"/jobs/{self.job_id}"}


def _now() -> str:
    return datetime.now(UTC).isoformat()


class JobBook:
    """Job records of one store; every write replaces the whole file through a rename."""

    def __init__(self, store: Store):
        self.store = store
        self.location = store.location
        self.location.makedirs("jobs")

    def create(self, operation: str, request_id: str | None, key_id: str | None) -> JobRecord:
        record = JobRecord(job_id=uuid.uuid4().hex, operation=operation, status="queued", request_id=request_id,
                           key_id=key_id, created_at=_now())
        self._write(record)
        return record

    def create_once(self, operation: str, request_id: str | None, key_id: str | None,
                    idempotency_key: str) -> tuple[JobRecord, bool]:
        """The job that `key_id`'s `idempotency_key` names for `operation`: (record, True) when this
        call created it, (the earlier record, False) when any replica did before."""
        if not self.location.is_local:
            raise StoreError("idempotency keys need a store on a local (or shared) filesystem, which can "
                             f"create a file only if it does not exist; '{self.location.uri}' is not")
        scope = json.dumps([key_id, operation, idempotency_key])
        claim = Path(self.location.path("jobs", "keys", f"{hashlib.sha256(scope.encode()).hexdigest()}.json"))
        claim.parent.mkdir(exist_ok=True)
        record = self.create(operation, request_id, key_id)  # first, so a claim always names a readable job
        staged = claim.with_name(f"{claim.name}.{record.job_id}.tmp")
        staged.write_text(json.dumps({"job_id": record.job_id}))
        try:
            os.link(staged, claim)
        except FileExistsError:
            self.location.filesystem.delete_file(self._path(record.job_id))  # never started: nothing to keep
            return self.get(json.loads(claim.read_text())["job_id"]), False
        finally:
            staged.unlink()
        return record, True

    def get(self, job_id: str) -> JobRecord:
        if not _JOB_ID.match(job_id):  # ids are ours: anything else is not a job (and never a path)
            raise NotFoundError(f"unknown job '{job_id}'")
        try:
            with self.location.filesystem.open_input_stream(self._path(job_id)) as stream:
                return JobRecord(**json.loads(stream.read()))
        except FileNotFoundError:
            raise NotFoundError(f"unknown job '{job_id}'") from None

    def update(self, job_id: str, **changes) -> JobRecord:
        record = replace(self.get(job_id), **changes)
        self._write(record)
        return record

    def fail(self, job_id: str, error: dict) -> JobRecord:
        """End a job that could not report its own end (its upload failed, its worker died)."""
        return self.update(job_id, status="failed", finished_at=_now(), error=error)

    def fail_unfinished(self, job_id: str, error: dict) -> None:
        """`fail` a job unless it has ended already (it may have, between a crash and its report)."""
        if self.get(job_id).status in UNFINISHED:
            self.fail(job_id, error)

    def status_counts(self) -> dict[str, Counter]:
        """How many jobs of each operation are in each status, from every record in the store."""
        counts: dict[str, Counter] = {}
        selector = pafs.FileSelector(self.location.path("jobs"))
        for info in self.location.filesystem.get_file_info(selector):
            if info.type == pafs.FileType.File and info.base_name.endswith(".json"):
                try:
                    record = self.get(info.base_name.removesuffix(".json"))
                except NotFoundError:  # discarded between the listing and the read
                    continue
                counts.setdefault(record.operation, Counter())[record.status] += 1
        return counts

    def append_event(self, job_id: str, seq: int, event: dict) -> None:
        """Write progress event number `seq` (1, 2, ... from the job's one writer) and make it the record's
        latest; a reader sees an event whole or not at all."""
        self.location.makedirs("jobs", f"{job_id}.events")
        self._write_json(self._event_path(job_id, seq), {"seq": seq, **event})
        self.update(job_id, progress={"seq": seq, **event})

    def events(self, job_id: str, after_seq: int = 0) -> list[dict]:
        """The job's progress events after `after_seq`, in order ([] for a job that reported none)."""
        self.get(job_id)  # unknown ids are NotFoundError, never a path
        selector = pafs.FileSelector(self.location.path("jobs", f"{job_id}.events"), allow_not_found=True)
        names = sorted(info.base_name for info in self.location.filesystem.get_file_info(selector)
                       if info.type == pafs.FileType.File and _EVENT_NAME.match(info.base_name))
        events = []
        for name in names:
            if int(name.removesuffix(".json")) > after_seq:
                with self.location.filesystem.open_input_stream(self.location.path("jobs", f"{job_id}.events",
                                                                                   name)) as stream:
                    events.append(json.loads(stream.read()))
        return events

    def staging_folder(self, job_id: str) -> Path:
        """A fresh local folder for this job's uploads (HTTP uploads need a store on a local filesystem)."""
        if not self.location.is_local:
            raise StoreError("uploads over HTTP need a store on a local (or shared) filesystem; "
                             f"'{self.location.uri}' is not")
        folder = Path(self.location.path("uploads", job_id))
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _path(self, job_id: str) -> str:
        return self.location.path("jobs", f"{job_id}.json")

    def _event_path(self, job_id: str, seq: int) -> str:
        return self.location.path("jobs", f"{job_id}.events", f"{seq:08d}.json")

    def _write(self, record: JobRecord) -> None:
        self._write_json(self._path(record.job_id), asdict(record))

    def _write_json(self, final: str, body: dict) -> None:
        """`body` at `final`, staged beside it and renamed: readers see the old file or the new, never half."""
        staged = f"{final}.{uuid.uuid4().hex}.tmp"
        with self.location.filesystem.open_output_stream(staged) as stream:
            stream.write(json.dumps(body, sort_keys=True).encode())
        self.location.filesystem.move(staged, final)


def run_job(book: JobBook, job_id: str, operation: str, params: dict, settings: Settings) -> JobRecord:
    """Run a queued job to its end and record how it ended; the record is returned, never raised.

    A DmasError (bad input, unknown run...) fails the job with the status code the API gives that
    error; anything else fails it with 500 and the exception's type and message.
    """
    book.update(job_id, status="running", started_at=_now())
    staging = Path(book.location.path("uploads", job_id))
    try:
        progress = _progress_writer(book, job_id, staging)
        result = run_operation(operation, book.store, settings, params, progress=progress)
        outcome = {"status": "succeeded", "result": _client_view(result, staging)}
    except DmasError as exc:
        outcome = {"status": "failed", "error": _client_view(error_body(exc), staging)}
    except Exception as exc:  # the job must end with a record whatever went wrong
        outcome = {"status": "failed", "error": {"status": 500, "detail": f"{type(exc).__name__}: {exc}"}}
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return book.update(job_id, finished_at=_now(), **outcome)


def _progress_writer(book: JobBook, job_id: str, staging: Path) -> Callable[[dict], None]:
    """The job's progress sink: each report becomes the job's next event (numbered from 1), in client terms."""
    written = itertools.count(1)

    def write(event: dict) -> None:
        book.append_event(job_id, next(written), _client_view(event, staging))

    return write


def _client_view(value, staging: Path):
    """`value` with the server's staging folder cut from every string (clients see their own file names)
    and NaN or infinite numbers as null (JSON has neither: an undefined metric must not break the answer)."""
    if isinstance(value, str):
        return value.replace(f"{staging}/", "")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _client_view(item, staging) for key, item in value.items()}
    if isinstance(value, list):
        return [_client_view(item, staging) for item in value]
    return value

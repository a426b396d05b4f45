"""A job's progress as server-sent events: what `GET /jobs/{id}/events` streams.

    retry: 2000                        (reconnect after 2 s; send Last-Event-ID to resume)
    event: status   data: {...}        the job's status whenever it changes (queued, running)
    id: 3
    event: progress data: {...}        each progress event the job wrote, numbered from 1
    event: end      data: {...}        the finished job's record (result or error); the stream ends

The job writes its events to the store (`JobBook.append_event`), so any replica streams any job,
and a client that reconnects with `Last-Event-ID: 3` gets events 4, 5, ... and nothing twice. The
store is read every `POLL_S`; a comment line every `KEEP_ALIVE_S` without news keeps proxies from
closing an idle stream. The stream stops when the job ends or the client goes away.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi.concurrency import run_in_threadpool

from dmas.api.jobs import UNFINISHED, JobBook

POLL_S = 0.25
KEEP_ALIVE_S = 15.0
RECONNECT_MS = 2000


def sse(event: str, data: dict, event_id: int | None = None) -> str:
    """One server-sent event (JSON data on one line)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, sort_keys=True, allow_nan=False)}\n\n"


def resume_after(last_event_id: str | None) -> int:
    """The sequence number a reconnecting client saw last (0: from the start; junk counts as 0)."""
    return int(last_event_id) if last_event_id and last_event_id.strip().isdigit() else 0


async def job_event_stream(jobs: JobBook, job_id: str, after_seq: int,
                           disconnected: Callable[[], Awaitable[bool]]) -> AsyncIterator[str]:
    """The job's events after `after_seq` as they come, then its end (see the module docstring)."""
    yield f"retry: {RECONNECT_MS}\n\n"
    status, quiet_since = None, time.monotonic()
    while True:
        record = await run_in_threadpool(jobs.get, job_id)  # before the events: a finished job wrote them all
        events = await run_in_threadpool(jobs.events, job_id, after_seq)
        if record.status != status and record.status in UNFINISHED:
            status = record.status
            yield sse("status", {"job_id": job_id, "status": status, "started_at": record.started_at})
        for event in events:
            yield sse("progress", event, event["seq"])
            after_seq = event["seq"]
        if record.status not in UNFINISHED:
            yield sse("end", record.to_dict())
            return
        if events:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= KEEP_ALIVE_S:
            yield ": keep-alive\n\n"
            quiet_since = time.monotonic()
        if await disconnected():
            return
        await asyncio.sleep(POLL_S)

"""A job's server-sent events without HTTP: what a client reads while a job runs, after it ends, on resume."""

import asyncio
import json
import threading
import time

from dmas import operations
from dmas.api.jobs import JobBook, run_job
from dmas.config import load_settings
from serve import job_events


def _parse(chunks: list[str]) -> list[dict]:
    """The stream's events as {"event", "id", "data"} (comments and the retry line left out)."""
    events = []
    for block in "".join(chunks).split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":")
                      and not line.startswith("retry"))
        if fields:
            events.append({"event": fields["event"], "id": fields.get("id"), "data": json.loads(fields["data"])})
    return events


def _read(book: JobBook, job_id: str, after_seq: int = 0, disconnect_after: int | None = None) -> list[str]:
    async def gone() -> bool:
        return disconnect_after is not None and len(chunks) >= disconnect_after

    async def collect() -> None:
        async for chunk in job_events.job_event_stream(book, job_id, after_seq, gone):
            chunks.append(chunk)

    chunks: list[str] = []
    asyncio.run(asyncio.wait_for(collect(), 60))
    return chunks


def _slow_job(book: JobBook, monkeypatch, steps: int, pause_s: float) -> str:
    def stepping(store, settings, params, progress):
        for step in range(1, steps + 1):
            time.sleep(pause_s)
            progress({"step": step})
        return {"steps": steps}

    monkeypatch.setitem(operations.PROGRESSING_OPERATIONS, "steps", stepping)
    return book.create("steps", request_id=None, key_id=None).job_id


def test_a_running_job_streams_status_each_progress_event_in_order_then_its_end(store, monkeypatch):
    book = JobBook(store)
    job_id = _slow_job(book, monkeypatch, steps=4, pause_s=0.3)
    worker = threading.Thread(target=run_job, args=(book, job_id, "steps", {}, load_settings()))
    worker.start()
    try:
        events = _parse(_read(book, job_id))
    finally:
        worker.join()
    kinds = [event["event"] for event in events]
    assert kinds[-1] == "end" and kinds.count("end") == 1
    progress = [event for event in events if event["event"] == "progress"]
    assert [event["data"]["step"] for event in progress] == [1, 2, 3, 4], "every event once, in order"
    assert [event["id"] for event in progress] == ["1", "2", "3", "4"]
    assert events[-1]["data"]["status"] == "succeeded" and events[-1]["data"]["result"] == {"steps": 4}
    assert "status" in kinds and kinds.index("status") < kinds.index("progress")


def test_a_client_resuming_after_event_two_gets_only_the_rest(store, monkeypatch):
    book = JobBook(store)
    job_id = _slow_job(book, monkeypatch, steps=4, pause_s=0)
    run_job(book, job_id, "steps", {}, load_settings())
    events = _parse(_read(book, job_id, after_seq=job_events.resume_after("2")))
    assert [event["data"]["step"] for event in events if event["event"] == "progress"] == [3, 4]
    assert [event["event"] for event in events] == ["progress", "progress", "end"]


def test_the_stream_stops_when_the_client_goes_away(store, monkeypatch):
    book = JobBook(store)
    job_id = book.create("steps", request_id=None, key_id=None).job_id  # queued for ever: nobody runs it
    started = time.monotonic()
    chunks = _read(book, job_id, disconnect_after=2)
    assert time.monotonic() - started < 10
    assert [event["event"] for event in _parse(chunks)] == ["status"]


def test_junk_last_event_ids_start_from_the_beginning():
    assert [job_events.resume_after(value) for value in (None, "", "abc", "-3", " 7 ", "12")] == [0, 0, 0, 0, 7, 12]

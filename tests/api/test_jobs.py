"""Job records without Ray or HTTP: how a job ends is always written down, in the client's terms."""

import pytest

from dmas import operations
from dmas.api.jobs import JobBook, run_job
from dmas.config import load_settings
from dmas.errors import IngestError, RowError


@pytest.fixture
def book(store):
    return JobBook(store)


def _operation(monkeypatch, body):
    monkeypatch.setitem(operations.OPERATIONS, "probe", lambda store, settings, params: body(params))


def test_a_job_moves_from_queued_to_succeeded_with_its_result(book, monkeypatch):
    _operation(monkeypatch, lambda params: {"echo": params["x"]})
    record = book.create("probe", request_id="req-1", key_id="ops")
    assert book.get(record.job_id).status == "queued"
    ended = run_job(book, record.job_id, "probe", {"x": 7}, load_settings())
    assert ended.status == "succeeded" and ended.result == {"echo": 7}
    assert ended.started_at and ended.finished_at and ended.request_id == "req-1"
    assert book.get(record.job_id) == ended


def test_a_dmas_error_fails_the_job_with_its_status_and_the_clients_file_name(book, monkeypatch):
    record = book.create("probe", request_id=None, key_id="ops")
    staging = book.staging_folder(record.job_id)
    (staging / "events.csv").write_text("x")

    def reject(params):
        raise IngestError(str(staging / "events.csv"), RowError(3, "timestamp", "not a time"))

    _operation(monkeypatch, reject)
    ended = run_job(book, record.job_id, "probe", {}, load_settings())
    assert ended.status == "failed" and ended.error["status"] == 400
    assert ended.error["detail"].startswith("events.csv, row 3, field 'timestamp'")
    assert not staging.exists(), "the job's uploads outlive it"


def test_an_unexpected_error_fails_the_job_with_500(book, monkeypatch):
    _operation(monkeypatch, lambda params: 1 / 0)
    record = book.create("probe", request_id=None, key_id=None)
    ended = run_job(book, record.job_id, "probe", {}, load_settings())
    assert ended.status == "failed" and ended.error == {"status": 500, "detail": "ZeroDivisionError: division by zero"}


def test_job_ids_are_never_paths(book):
    from dmas.errors import NotFoundError

    for job_id in ("../runs", "x" * 32, "/etc/passwd"):
        with pytest.raises(NotFoundError):
            book.get(job_id)


def test_a_job_whose_worker_died_is_recorded_as_failed_once(book):
    import asyncio
    from types import SimpleNamespace

    from serve.app import DmasApi

    record_crash = DmasApi.func_or_class._record_crash
    record = book.create("probe", request_id=None, key_id=None)
    crashed = asyncio.new_event_loop().create_future()
    crashed.set_exception(RuntimeError("worker died: SIGKILL"))
    record_crash(SimpleNamespace(jobs=book), record.job_id, crashed)
    failed = book.get(record.job_id)
    assert failed.status == "failed" and "worker died" in failed.error["detail"]
    record_crash(SimpleNamespace(jobs=book), record.job_id, crashed)
    assert book.get(record.job_id) == failed

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



def test_numbers_json_cannot_carry_are_recorded_as_null(book, monkeypatch):
    import json

    _operation(monkeypatch, lambda params: {"metrics": {"r2": float("nan"), "lift": [float("inf"), 1.5]}})
    record = book.create("probe", request_id=None, key_id=None)
    ended = run_job(book, record.job_id, "probe", {}, load_settings())
    assert ended.result == {"metrics": {"r2": None, "lift": [None, 1.5]}}
    json.dumps(book.get(record.job_id).to_dict(), allow_nan=False)  # what an HTTP answer needs

def test_job_ids_are_never_paths(book):
    from dmas.errors import NotFoundError

    for job_id in ("../runs", "x" * 32, "/etc/passwd"):
        with pytest.raises(NotFoundError):
            book.get(job_id)


def test_a_job_whose_worker_died_is_recorded_as_failed_once(book):
    from serve.job_launch import record_crash

    record = book.create("probe", request_id=None, key_id=None)
    record_crash(book, record.job_id, RuntimeError("worker died: SIGKILL"))
    failed = book.get(record.job_id)
    assert failed.status == "failed" and "worker died" in failed.error["detail"]
    record_crash(book, record.job_id, RuntimeError("reported again by the other watcher"))
    assert book.get(record.job_id) == failed


def test_an_idempotency_key_names_one_job_per_caller_and_operation(book):
    first, created = book.create_once("train", "req-1", "ops", "nightly-2026-12-01")
    again, created_again = book.create_once("train", "req-2", "ops", "nightly-2026-12-01")
    assert created and not created_again and again == first
    assert book.create_once("predict", None, "ops", "nightly-2026-12-01")[0].job_id != first.job_id
    assert book.create_once("train", None, "analyst", "nightly-2026-12-01")[0].job_id != first.job_id
    assert sum(sum(counts.values()) for counts in book.status_counts().values()) == 3, "the loser's record stayed"


def test_racing_replicas_with_one_key_all_get_the_winners_job(book):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda n: book.create_once("train", f"req-{n}", "ops", "retry-me"), range(16)))
    assert len({record.job_id for record, _ in answers}) == 1
    assert [created for _, created in answers].count(True) == 1
    assert book.status_counts() == {"train": {"queued": 1}}


def test_status_counts_are_per_operation_and_status(book):
    done = book.create("train", None, None)
    book.update(done.job_id, status="succeeded")
    book.fail(book.create("train", None, None).job_id, {"status": 500, "detail": "x"})
    book.create("predict", None, None)
    assert book.status_counts() == {"train": {"succeeded": 1, "failed": 1}, "predict": {"queued": 1}}


def test_preload_refuses_reset_existing_on_a_store_with_entities_and_writes_nothing(store, write, tmp_path):
    from dmas.errors import StoreError
    from dmas.ingest.tabular import ingest_table

    ingest_table(store, "entities", write("entities.csv", 'entity_id,attributes\nmine,"{""x"": 1}"\n'))
    before = store.snapshot()
    with pytest.raises(StoreError, match="reset_existing"):
        operations.preload_demo(store, load_settings(store_uri=store.uri),
                                {"reset_existing": True, "workdir": str(tmp_path / "demo")})
    assert store.snapshot() == before and not (tmp_path / "demo").exists()


def _progressing(monkeypatch, body):
    monkeypatch.setitem(operations.PROGRESSING_OPERATIONS, "steps",
                        lambda store, settings, params, progress: body(params, progress))


def test_progress_events_are_numbered_kept_in_order_and_the_latest_is_on_the_record(book, monkeypatch):
    def three_steps(params, progress):
        for step in range(1, 4):
            progress({"step": step, "loss": float("nan") if step == 2 else 1.0 / step})
        return {"steps": 3}

    _progressing(monkeypatch, three_steps)
    record = book.create("steps", request_id=None, key_id=None)
    ended = run_job(book, record.job_id, "steps", {}, load_settings())
    assert ended.status == "succeeded" and ended.result == {"steps": 3}
    events = book.events(record.job_id)
    assert [event["seq"] for event in events] == [1, 2, 3]
    assert [event["step"] for event in events] == [1, 2, 3]
    assert events[1]["loss"] is None, "a NaN loss must reach clients as null (JSON has no NaN)"
    assert [event["seq"] for event in book.events(record.job_id, after_seq=2)] == [3]
    assert ended.progress == events[-1]


def test_a_job_that_reports_nothing_has_no_events_and_unknown_jobs_have_none_to_read(book, monkeypatch):
    from dmas.errors import NotFoundError

    _operation(monkeypatch, lambda params: {})
    record = book.create("probe", request_id=None, key_id=None)
    assert run_job(book, record.job_id, "probe", {}, load_settings()).progress is None
    assert book.events(record.job_id) == []
    with pytest.raises(NotFoundError):
        book.events("0" * 32)


def test_event_folders_do_not_count_as_jobs(book, monkeypatch):
    _progressing(monkeypatch, lambda params, progress: progress({"step": 1}) or {})
    record = book.create("steps", request_id=None, key_id=None)
    run_job(book, record.job_id, "steps", {}, load_settings())
    assert book.status_counts() == {"steps": {"succeeded": 1}}

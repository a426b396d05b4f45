"""The original stack's clients against the job routes, over real HTTP: the old UI's exact request
bodies (health, artifact upload, extract, train, demo preload, the async task routes) and the
fields the old clients read from the answers; and a client that hangs up on a long POST /train."""

import json
import time
from pathlib import Path

import httpx
import pytest

from dmas.api.network import free_loopback_port
from dmas.api.security import new_key
from dmas.config import load_settings
from dmas.store import Store
from dmas.synth import generate
from tests.served import served_app

pytestmark = pytest.mark.slow

FINISHED = ("completed", "failed")


@pytest.fixture(scope="module")
def old_stack(local_ray, tmp_path_factory):
    """The application over a store with 40 synthetic entities' tables (media not yet uploaded)."""
    root = tmp_path_factory.mktemp("compat_jobs")
    data = generate(root / "input", n_entities=40, seed=11)
    admin_key, admin = new_key("ops", "admin")
    viewer_key, viewer = new_key("analyst", "viewer")
    port = free_loopback_port()
    settings = load_settings(store_uri=str(root / "store"), features={"batch_size": 16}, serve={
        "host": "127.0.0.1", "port": port, "api_keys": [admin.model_dump(), viewer.model_dump()],
        "audit_log": str(root / "audit.jsonl"), "latest_run_refresh_s": 0.5})
    with served_app(settings, timeout=300) as client:
        admin_headers = {"x-api-key": admin_key}
        for kind, path in (("entities", data.entities_path), ("events", data.events_path),
                           ("interactions", data.interactions_path)):
            answer = client.post(f"/ingest/{kind}", files={"file": (path.name, path.read_bytes(), "text/csv")},
                                 headers=admin_headers)
            assert answer.status_code == 200, answer.text
        yield {"client": client, "admin": admin_headers, "viewer": {"x-api-key": viewer_key}, "data": data,
               "store": Store(root / "store"), "port": port}


def _media(data) -> list:
    paths = sorted({row.split(",")[0] for row in data.artifacts_path.read_text().splitlines()[1:]})
    return [("files", (path, (data.out_dir / path).read_bytes())) for path in paths]


def _manifest(data, field: str) -> tuple:
    return (field, ("artifacts.csv", data.artifacts_path.read_bytes(), "text/csv"))


def _poll(old_stack, url: str, headers: dict, done, timeout_s: float = 240) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        answer = old_stack["client"].get(url, headers=headers)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        if done(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.3)


@pytest.fixture(scope="module")
def uploaded(old_stack):
    """The old UI's media upload: the manifest in the multipart field `file`, then an extract."""
    data = old_stack["data"]
    upload = old_stack["client"].post("/ingest/artifacts", files=[_manifest(data, "file"), *_media(data)],
                                      headers=old_stack["admin"])
    extract = old_stack["client"].post("/features/extract", headers=old_stack["admin"])
    return {"upload": upload, "extract": extract}


@pytest.fixture(scope="module")
def trained(old_stack, uploaded):
    """POST /train as the old UI sends it: no body at all."""
    return old_stack["client"].post("/train", headers=old_stack["admin"])


def test_health_answers_ok_with_and_without_the_trailing_slash_and_no_key(old_stack):
    for path in ("/health", "/health/"):
        answer = old_stack["client"].get(path)
        assert answer.status_code == 200 and answer.json() == {"status": "ok"}, (path, answer.text)


def test_the_manifest_is_taken_in_the_old_uis_field_file(old_stack, uploaded):
    answer = uploaded["upload"]
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["failed_rows"] == 0 and report["success_rows"] == sum(old_stack["data"].artifacts_by_type.values())


@pytest.mark.parametrize("fields", [("manifest", "file"), ()], ids=["both", "neither"])
def test_the_manifest_must_come_in_exactly_one_field(old_stack, fields):
    data = old_stack["data"]
    parts = [_manifest(data, field) for field in fields] or [("strict", (None, "false"))]
    answer = old_stack["client"].post("/ingest/artifacts", files=parts, headers=old_stack["admin"])
    assert answer.status_code == 422, answer.text
    problem = answer.json()["problems"][0]
    assert problem["field"] == "manifest" and "'file'" in problem["error"]


def test_extract_says_how_many_artifacts_it_updated(uploaded):
    answer = uploaded["extract"]
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert isinstance(body["updated_artifacts"], int)
    assert body["updated_artifacts"] >= body["extracted"] > 0  # a blob shared by artifacts updates each of them


def test_train_with_no_body_answers_the_old_shape_with_old_and_flat_metrics(trained):
    assert trained.status_code == 200, trained.text
    body = trained.json()
    assert {"run_id", "status", "metrics", "config", "created_at", "model_sha256"} <= set(body)
    assert body["status"] == "completed" and body["config"]["epochs"] == 3  # the old default
    metrics = body["metrics"]
    assert {"mae", "rmse", "r2"} <= set(metrics["regression"])
    assert {"f1", "precision", "recall"} <= set(metrics["classification"])
    assert {"ndcg", "spearman"} <= set(metrics["ranking"])
    assert {"reg_r2", "cls_f1", "rank_ndcg@10"} <= set(metrics)


@pytest.mark.parametrize("body, expected", [
    ({}, {"epochs": 3}),
    ({"epochs": 100, "batch_size": 32, "learning_rate": 0.001, "seed": 1234},
     {"epochs": 100, "batch_size": 32, "learning_rate": 0.001, "seed": 1234}),
    ({"config": {"epochs": 4, "seed": 7}}, {"epochs": 4, "seed": 7}),
    ({"max_neighbors": 4, "max_artifacts_per_entity": 2}, {"tensorize": {"max_neighbors": 4,
                                                                          "max_artifacts_per_entity": 2}}),
], ids=["empty-object", "flat", "wrapped", "old-tensorize-keys"])
def test_train_accepts_every_old_body_form(old_stack, trained, body, expected):
    answer = old_stack["client"].post("/train", json=body, headers=old_stack["admin"])
    assert answer.status_code == 200, answer.text
    config = answer.json()["config"]
    for key, value in expected.items():
        if isinstance(value, dict):
            assert {name: config[key][name] for name in value} == value
        else:
            assert config[key] == value
    assert answer.json()["status"] == "completed"


@pytest.mark.parametrize("body, named", [
    ({"epochs": 3, "epocs": 4}, "epocs"),
    ({"deterministic": 0}, "deterministic"),
    ({"epochs": 0}, "epochs"),
], ids=["unknown-key", "number-as-bool", "out-of-range"])
def test_a_bad_train_body_is_a_422_naming_the_key(old_stack, body, named):
    answer = old_stack["client"].post("/train", json=body, headers=old_stack["admin"])
    assert answer.status_code == 422, answer.text
    problems = answer.json()["problems"]
    assert any(named in problem["error"] for problem in problems), problems


def test_a_train_body_that_is_not_an_object_is_a_422(old_stack):
    answer = old_stack["client"].post("/train", json=[1, 2], headers=old_stack["admin"])
    assert answer.status_code == 422 and answer.json()["problems"], answer.text


def test_a_client_that_hangs_up_on_train_does_not_cancel_the_job(old_stack, trained):
    """The job outlives the request: it succeeds and its run is completed (not failed by a cancel)."""
    body = {"epochs": 120, "seed": 99}  # a new run, long enough to be running when the client leaves
    with pytest.raises(httpx.ReadTimeout):
        old_stack["client"].post("/train", json=body, headers={**old_stack["admin"], "x-request-id": "hangs-up-1"},
                                 timeout=1.0)
    jobs = old_stack["store"].location.path("jobs")
    deadline = time.monotonic() + 30
    job_id = None
    while job_id is None and time.monotonic() < deadline:
        for path in sorted(Path(jobs).glob("*.json")):
            record = json.loads(path.read_text())
            if record["request_id"] == "hangs-up-1":
                job_id = record["job_id"]
        time.sleep(0.2)
    assert job_id, "the hung-up request left no job record"
    job = _poll(old_stack, f"/jobs/{job_id}", old_stack["admin"], lambda job: job["status"] in ("succeeded", "failed"),
                timeout_s=120)
    assert job["status"] == "succeeded", job
    run = old_stack["client"].get(f"/runs/{job['result']['run_id']}", headers=old_stack["viewer"]).json()
    assert run["status"] == "completed", run


def test_train_async_with_an_idempotency_key_is_one_task(old_stack, trained):
    body = {"epochs": 3, "seed": 5, "idempotency_key": "nightly-2026-12-01"}
    first = old_stack["client"].post("/train/async", json=body, headers=old_stack["admin"])
    again = old_stack["client"].post("/train/async", json={"epochs": 3, "seed": 5},
                                     headers={**old_stack["admin"], "Idempotency-Key": "nightly-2026-12-01"})
    assert first.status_code == again.status_code == 202, (first.text, again.text)
    task = first.json()
    assert task["status"] == "pending" and task["task_id"] and again.json()["task_id"] == task["task_id"]
    done = _poll(old_stack, f"/train/async/{task['task_id']}", old_stack["admin"],
                 lambda body: body["status"] in FINISHED)
    assert done["status"] == "completed" and done["error"] is None, done
    assert done["result"]["run_id"] and done["result"]["status"] == "completed"
    assert old_stack["client"].get(f"/predict/async/{task['task_id']}", headers=old_stack["viewer"]).status_code == 404
    assert old_stack["client"].get("/train/async/" + "0" * 32, headers=old_stack["admin"]).status_code == 404


def test_two_different_idempotency_keys_in_one_request_are_a_422(old_stack):
    answer = old_stack["client"].post("/train/async", json={"idempotency_key": "a"},
                                      headers={**old_stack["admin"], "Idempotency-Key": "b"})
    assert answer.status_code == 422 and answer.json()["problems"][0]["field"] == "idempotency_key"


def test_predict_async_scores_as_a_task_and_a_failed_task_says_why(old_stack, trained):
    started = old_stack["client"].post("/predict/async", json={"entity_ids": ["ent_000001", "ent_000002"]},
                                       headers=old_stack["viewer"])
    assert started.status_code == 202, started.text
    done = _poll(old_stack, f"/predict/async/{started.json()['task_id']}", old_stack["viewer"],
                 lambda body: body["status"] in FINISHED)
    assert done["status"] == "completed", done
    predictions = done["result"]["predictions"]
    assert [row["entity_id"] for row in predictions] == ["ent_000001", "ent_000002"]
    assert {"regression", "probability", "ranking_score", "embedding"} <= set(predictions[0])
    missing = old_stack["client"].post("/predict/async", json={"entity_ids": ["nobody"]}, headers=old_stack["viewer"])
    failed = _poll(old_stack, f"/predict/async/{missing.json()['task_id']}", old_stack["viewer"],
                   lambda body: body["status"] in FINISHED)
    assert failed["status"] == "failed" and failed["error_status"] == 404 and "nobody" in failed["error"]
    explained = old_stack["client"].post("/predict/async", json={"entity_ids": ["ent_000001"], "explanations": True},
                                         headers=old_stack["viewer"])
    assert explained.status_code == 422 and explained.json()["problems"][0]["field"] == "explanations"


def test_features_extract_async_runs_the_extract_as_a_task(old_stack, uploaded):
    started = old_stack["client"].post("/features/extract/async", json={"idempotency_key": "extract-1"},
                                       headers=old_stack["admin"])
    assert started.status_code == 202, started.text
    done = _poll(old_stack, f"/features/extract/async/{started.json()['task_id']}", old_stack["admin"],
                 lambda body: body["status"] in FINISHED)
    assert done["status"] == "completed", done
    assert done["result"]["pending"] == done["result"]["updated_artifacts"] == 0  # all extracted already
    bare = old_stack["client"].post("/features/extract/async", headers=old_stack["admin"])
    assert bare.status_code == 202 and bare.json()["task_id"] != started.json()["task_id"]


def test_health_queues_counts_jobs_by_operation_and_leaks_nothing(old_stack, trained):
    answer = old_stack["client"].get("/health/queues", headers=old_stack["viewer"])
    assert answer.status_code == 200, answer.text
    queues = answer.json()["queues"]
    assert {"train", "predict", "extract_features", "ingest_table"} <= set(queues)
    assert all(set(counts) == {"pending", "running", "completed", "failed"} for counts in queues.values())
    assert queues["ingest_table"]["completed"] >= 3 and queues["train"]["completed"] >= 1
    text = answer.text
    assert "127.0.0.1" not in text and str(old_stack["port"]) not in text and "/tmp" not in text
    assert old_stack["client"].get("/health/queues").status_code == 401


def test_preload_refuses_reset_existing_on_a_store_with_entities(old_stack, uploaded):
    before = old_stack["store"].table("entities").version()
    answer = old_stack["client"].post("/demo/preload", json={
        "profile": "small", "reset_existing": True, "extract_features": True, "train_model": True},
        headers=old_stack["admin"])
    assert answer.status_code == 400 and "reset_existing" in answer.json()["detail"], answer.text
    assert old_stack["store"].table("entities").version() == before


def test_preload_takes_the_old_uis_body(old_stack, uploaded):
    """Last: it adds the demo's entities to the store."""
    answer = old_stack["client"].post("/demo/preload", json={
        "profile": "small", "reset_existing": False, "extract_features": True, "train_model": True},
        headers=old_stack["admin"])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["synth"]["entities"] == 200 and body["ingest"]["entities"]["failed_rows"] == 0
    assert body["features"]["extracted"] > 0 and body["features"]["failed"] == 0
    assert body["run"]["status"] == "completed" and body["run"]["model_sha256"]
    skipped = old_stack["client"].post("/demo/preload", json={
        "profile": "small", "reset_existing": False, "extract_features": False, "train_model": False},
        headers=old_stack["admin"])
    assert skipped.status_code == 200 and skipped.json()["features"] is None and skipped.json()["run"] is None
    assert skipped.json()["ingest"]["entities"]["inserted_rows"] == 0  # the same demo again changes nothing
    refused = old_stack["client"].post("/demo/preload", json={"profile": "large"}, headers=old_stack["admin"])
    assert refused.status_code == 422 and refused.json()["problems"][0]["field"] == "profile"

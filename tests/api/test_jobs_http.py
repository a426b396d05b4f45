"""The original stack's workflow over HTTP on 127.0.0.1, from an empty store: upload the tables and
media, extract features, train, predict with explanations; then the async form, roles and limits."""

import hashlib
import json
import time

import pytest

from dmas.api.audit_log import AuditLog
from dmas.api.network import free_loopback_port
from dmas.api.security import new_key
from dmas.config import load_settings
from dmas.store import Store
from dmas.synth import generate
from tests.served import served_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service(local_ray, tmp_path_factory):
    """The application over an empty store, with an admin and a viewer key, and synthetic input files."""
    root = tmp_path_factory.mktemp("jobs")
    data = generate(root / "input", n_entities=60, seed=3)
    admin_key, admin = new_key("ops", "admin")
    viewer_key, viewer = new_key("analyst", "viewer")
    port = free_loopback_port()
    settings = load_settings(store_uri=str(root / "store"), features={"batch_size": 16}, limits={
        "max_upload_bytes": 2_000_000}, serve={
        "host": "127.0.0.1", "port": port, "api_keys": [admin.model_dump(), viewer.model_dump()],
        "max_upload_request_bytes": 5_000_000, "audit_log": str(root / "audit.jsonl"), "latest_run_refresh_s": 0.5})
    with served_app(settings, timeout=300) as client:
        yield {"client": client, "admin": {"x-api-key": admin_key}, "viewer": {"x-api-key": viewer_key}, "data": data,
               "store": Store(root / "store"), "audit": AuditLog(root / "audit.jsonl"), "root": root}


def _upload(service, path, files, data=None, key="admin", params=None):
    return service["client"].post(path, files=files, data=data or {}, headers=service[key], params=params)


def _media_files(data):
    rows = data.artifacts_path.read_text().splitlines()[1:]
    paths = sorted({row.split(",")[0] for row in rows})
    return [("files", (path, (data.out_dir / path).read_bytes())) for path in paths]


@pytest.fixture(scope="module")
def workflow(service):
    """The original guide's sequence, each call answering when its job is done (the default)."""
    data, answers = service["data"], {}
    for kind, path in (("entities", data.entities_path), ("events", data.events_path),
                       ("interactions", data.interactions_path)):
        answers[kind] = _upload(service, f"/ingest/{kind}", {"file": (path.name, path.read_bytes(), "text/csv")})
    answers["artifacts"] = _upload(service, "/ingest/artifacts", [
        ("manifest", ("artifacts.csv", data.artifacts_path.read_bytes(), "text/csv")), *_media_files(data)])
    answers["features"] = service["client"].post("/features/extract", headers=service["admin"])
    answers["train"] = service["client"].post("/train", json={"epochs": 3, "seed": 1}, headers=service["admin"])
    return answers


def test_uploaded_tables_are_ingested_with_the_original_report(workflow, service):
    for kind in ("entities", "events", "interactions"):
        response = workflow[kind]
        assert response.status_code == 200, response.text
        report = response.json()
        assert report["failed_rows"] == 0 and report["success_rows"] > 0 and report["errors"] == []
        assert response.headers["x-job-id"]
    assert service["store"].table("entities").read().num_rows == 60
    sources = service["store"].lineage("events")
    assert sources[0]["source_file"] == "events.csv"  # the client's name, not the staging path
    assert sources[0]["source_sha256"] == hashlib.sha256(service["data"].events_path.read_bytes()).hexdigest()


def test_manifest_upload_stores_every_listed_file(workflow, service):
    response = workflow["artifacts"]
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["failed_rows"] == 0 and report["success_rows"] == sum(service["data"].artifacts_by_type.values())
    assert "uploads" not in json.dumps(report), "the server's staging path leaked into the report"
    assert not (service["root"] / "store" / "uploads" / response.headers["x-job-id"]).exists()


def test_features_then_training_return_the_original_train_shape(workflow):
    features = workflow["features"]
    assert features.status_code == 200, features.text
    assert features.json()["extracted"] > 0 and features.json()["failed"] == 0
    train = workflow["train"]
    assert train.status_code == 200, train.text
    body = train.json()
    assert {"run_id", "status", "metrics", "config", "created_at", "model_sha256"} <= set(body)
    assert body["status"] == "completed" and body["config"]["epochs"] == 3


def test_the_trained_run_predicts_with_explanations(workflow, service):
    run_id = workflow["train"].json()["run_id"]
    response = service["client"].post("/predict", json={"entity_ids": ["ent_000001"], "explanations": True},
                                      headers=service["viewer"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["run_id"] == run_id
    assert body["predictions"][0]["explanation"]["narrative"]


def test_async_returns_the_job_at_once_and_the_status_url_follows_it(workflow, service):
    events = service["data"].events_path
    response = _upload(service, "/ingest/events", {"file": ("events.csv", events.read_bytes())},
                       params={"async": "true"}, key="admin")
    assert response.status_code == 202, response.text
    started = response.json()
    assert started["status"] == "queued" and started["status_url"] == f"/jobs/{started['job_id']}"
    assert started["request_id"] == response.headers["x-request-id"]
    deadline = time.monotonic() + 120
    while True:
        job = service["client"].get(started["status_url"], headers=service["admin"]).json()
        if job["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert job["status"] == "succeeded", job
    assert job["request_id"] == started["request_id"] and job["operation"] == "ingest_table"
    assert job["result"]["inserted_rows"] == 0 and job["result"]["unchanged_rows"] > 0  # same file again
    audited = [entry for entry in service["audit"].entries() if entry["request_id"] == started["request_id"]]
    assert audited and audited[0]["job_id"] == started["job_id"]


def test_a_bad_row_is_reported_by_row_and_field(service):
    text = "entity_id,timestamp,event_type,event_value\nent_000001,2024-01-01T00:00:00Z,login,1.0\n" \
           "ent_000001,not-a-time,login,2.0\n"
    response = _upload(service, "/ingest/events", {"file": ("late.csv", text.encode())})
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["failed_rows"] == 1 and report["errors"][0]["row"] == 3
    assert report["errors"][0]["field"] == "timestamp"
    assert report["file"] == "late.csv"


def test_strict_upload_failure_answers_400_and_writes_nothing(service):
    before = service["store"].table("events").version()
    text = "entity_id,timestamp,event_type,event_value\nent_000001,2024-01-01T00:00:00Z,login,oops\n"
    response = _upload(service, "/ingest/events", {"file": ("bad.csv", text.encode())}, data={"strict": "true"})
    assert response.status_code == 400, response.text
    assert "bad.csv" in response.json()["detail"] and "event_value" in response.json()["detail"]
    assert service["store"].table("events").version() == before


def test_single_artifact_upload_with_its_fields(workflow, service):
    media = next((service["data"].out_dir / "media").glob("img_*"))
    response = _upload(service, "/ingest/artifact", {"file": ("photo.bin", media.read_bytes())},
                       data={"artifact_type": "image", "entity_id": "ent_000002",
                             "timestamp": "2024-02-01T00:00:00Z", "metadata": '{"source": "upload"}'})
    assert response.status_code == 200, response.text
    assert response.json()["artifact_type"] == "image"


def test_viewers_cannot_start_jobs_and_unknown_jobs_are_404(service):
    response = _upload(service, "/ingest/entities", {"file": ("e.csv", b"entity_id\nx\n")}, key="viewer")
    assert response.status_code == 403
    assert service["client"].post("/demo/preload", headers=service["viewer"]).status_code == 403
    assert service["client"].get("/jobs/" + "0" * 32, headers=service["admin"]).status_code == 404
    assert service["client"].get("/jobs/../../etc", headers=service["admin"]).status_code == 404


def test_upload_limits_and_names_that_leave_the_folder(service):
    too_big = _upload(service, "/ingest/entities", {"file": ("big.csv", b"entity_id\n" + b"x\n" * 1_100_000)})
    assert too_big.status_code == 413, too_big.text
    escaping = _upload(service, "/ingest/artifacts", [("manifest", ("m.csv", b"path,artifact_type\n../x.png,image\n")),
                                                      ("files", ("../x.png", b"\x89PNG..."))])
    assert escaping.status_code == 400 and "../x.png" in escaping.json()["detail"]
    chunked = service["client"].post("/predict", content=iter([b'{"entity_ids": ["ent_000001"]}']),
                                     headers={**service["viewer"], "content-type": "application/json"})
    assert chunked.status_code == 411


def test_bad_train_config_is_422_naming_the_field(service):
    response = service["client"].post("/train", json={"epochs": 0}, headers=service["admin"])
    assert response.status_code == 422
    assert "epochs" in response.json()["problems"][0]["error"]


def test_preload_builds_a_served_run_from_nothing_but_the_request(service):
    """Last in the module: it adds entities of its own to the store."""
    response = service["client"].post("/demo/preload", json={"n_entities": 20, "epochs": 1}, headers=service["admin"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["synth"]["entities"] == 20 and body["ingest"]["entities"]["failed_rows"] == 0
    assert body["run"]["status"] == "completed" and body["run"]["model_sha256"]
    run = service["client"].get(f"/runs/{body['run']['run_id']}", headers=service["viewer"])
    assert run.status_code == 200 and run.json()["status"] == "completed"
    time.sleep(0.6)  # serve.latest_run_refresh_s: how long a replica may keep answering from the previous run
    predicted = service["client"].post("/predict", json={"entity_ids": ["ent_000001"]}, headers=service["viewer"])
    assert predicted.json()["run_id"] == body["run"]["run_id"], "a newly completed run is not being served"

"""Store operations over HTTP on 127.0.0.1: table versions, history, lineage, export, run lineage,
reproduce, forget (with purge); and error bodies as /openapi.json publishes them."""

import io
import time
from concurrent.futures import ThreadPoolExecutor

import jsonschema
import pyarrow.parquet as pq
import pytest

from dmas.api.audit_log import AuditLog
from dmas.api.network import free_loopback_port
from dmas.api.security import new_key
from dmas.config import load_settings
from dmas.train.config import TrainConfig
from dmas.train.lineage import run_lineage
from dmas.train.runner import train_run
from tests.served import served_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service(local_ray, tmp_path_factory, synthetic_store):
    """A trained run on 40 synthetic entities, served by the real application on a free loopback port."""
    root = tmp_path_factory.mktemp("store_http")
    store = synthetic_store(root, n_entities=40, seed=11)
    viewer_key, viewer = new_key("analyst", "viewer")
    admin_key, admin = new_key("ops", "admin")
    port = free_loopback_port()
    settings = load_settings(store_uri=store.uri, serve={
        "host": "127.0.0.1", "port": port, "api_keys": [viewer.model_dump(), admin.model_dump()],
        "audit_log": str(root / "audit.jsonl")})
    run = train_run(store, settings, TrainConfig(epochs=2), use_ray=False)
    with served_app(settings, timeout=120) as client:
        yield {"client": client, "viewer": {"x-api-key": viewer_key}, "admin": {"x-api-key": admin_key}, "run": run,
               "store": store, "root": root, "audit": AuditLog(root / "audit.jsonl")}


def _get(service, path, key="viewer", **params):
    return service["client"].get(path, headers=service[key], params=params)


def test_snapshot_is_the_stores_current_versions(service):
    response = _get(service, "/store/snapshot")
    assert response.status_code == 200, response.text
    assert response.json() == service["store"].snapshot()
    assert service["client"].get("/store/snapshot").status_code == 401


def test_history_lists_commits_newest_first_with_their_source(service):
    response = _get(service, "/store/events/history")
    assert response.status_code == 200, response.text
    commits = response.json()
    assert [commit["version"] for commit in commits] == list(range(service["store"].table("events").version(), -1, -1))
    assert commits[0]["source_file"] == "events.csv" and len(commits[0]["source_sha256"]) == 64
    assert commits[0]["operationMetrics"]["num_target_rows_inserted"] > 0


def test_table_lineage_up_to_a_version(service):
    latest = _get(service, "/store/entities/lineage")
    assert latest.status_code == 200 and latest.json() == service["store"].lineage("entities")
    assert _get(service, "/store/entities/lineage", version=0).json() == []


def test_export_streams_the_table_at_a_version_as_parquet(service):
    table = service["store"].table("events")
    with service["client"].stream("GET", "/store/events/export", headers=service["admin"]) as response:
        assert response.status_code == 200, response.read()
        data = b"".join(response.iter_bytes())
    version = table.version()
    assert response.headers["content-disposition"] == f'attachment; filename="events-v{version}.parquet"'
    exported = pq.read_table(io.BytesIO(data))
    assert exported.num_rows == table.read().num_rows > 0
    assert set(exported.column_names) == set(table.spec.schema.names)
    empty = service["client"].get("/store/events/export", headers=service["admin"], params={"version": 0})
    assert empty.status_code == 200 and pq.read_table(io.BytesIO(empty.content)).num_rows == 0


def test_export_refuses_unknown_tables_versions_formats_and_viewers(service):
    unknown = _get(service, "/store/passwords/export", key="admin")
    assert unknown.status_code == 404 and "unknown table 'passwords'" in unknown.json()["detail"]
    assert _get(service, "/store/..%2F..%2Fetc/export", key="admin").status_code == 404
    assert _get(service, "/store/runs/history").status_code == 404
    future = _get(service, "/store/events/export", key="admin", version=999)
    assert future.status_code == 404 and "no version 999" in future.json()["detail"]
    negative = _get(service, "/store/events/export", key="admin", version=-1)
    assert negative.status_code == 422 and negative.json()["problems"][0]["field"] == "query.version"
    assert _get(service, "/store/events/export", key="admin", format="pickle").status_code == 422
    assert _get(service, "/store/events/export").status_code == 403


def test_run_lineage_and_unknown_runs(service):
    run_id = service["run"]["run_id"]
    response = _get(service, f"/runs/{run_id}/lineage")
    assert response.status_code == 200, response.text
    assert response.json() == run_lineage(service["store"], run_id)
    assert response.json()["sources"]["entities"][0]["source_file"] == "entities.csv"
    unknown = _get(service, f"/runs/{'0' * 64}/lineage")
    assert unknown.status_code == 404 and "unknown run" in unknown.json()["detail"]
    assert _get(service, "/runs/../lineage").status_code == 404


def test_reproduce_answers_when_the_job_ends_or_at_once_with_its_id(service):
    run_id = service["run"]["run_id"]
    client = service["client"]
    response = client.post(f"/runs/{run_id}/reproduce", headers=service["admin"])
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["identical_model"] and report["identical_test_predictions"]
    assert report["reproduced_model_sha256"] == service["run"]["model_sha256"]
    started = client.post(f"/runs/{run_id}/reproduce", headers=service["admin"], params={"async": "true"})
    assert started.status_code == 202, started.text
    deadline = time.monotonic() + 120
    while (job := client.get(started.json()["status_url"], headers=service["admin"]).json())["status"] in (
            "queued", "running") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert job["operation"] == "reproduce" and job["result"]["identical_model"], job
    assert client.post(f"/runs/{run_id}/reproduce", headers=service["viewer"]).status_code == 403
    assert client.post(f"/runs/{'0' * 64}/reproduce", headers=service["admin"]).status_code == 404


def test_forget_removes_the_entity_and_is_audited(service):
    client, store = service["client"], service["store"]
    assert client.delete("/entities/ent_000003", headers=service["viewer"]).status_code == 403
    response = client.delete("/entities/ent_000003", headers={**service["admin"], "x-request-id": "forget-3"})
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["entity_id"] == "ent_000003" and report["tables"]["entities"]["rows_removed"] == 1
    assert not report["purged_old_versions"]
    assert "ent_000003" not in store.table("entities").read()["entity_id"].to_pylist()
    assert store.audit("forget").records()[-1]["entity_id"] == "ent_000003"
    (line,) = [entry for entry in service["audit"].entries() if entry["request_id"] == "forget-3"]
    assert line["key_id"] == "ops" and line["status"] == 200 and line["entity_count"] == 1
    again = client.delete("/entities/ent_000003", headers=service["admin"])
    assert again.status_code == 404 and "unknown entity 'ent_000003'" in again.json()["detail"]


def test_concurrent_forgets_all_finish(service):
    """Each forget commits to every table: run side by side they race for the same table versions."""
    ids = ["ent_000005", "ent_000006", "ent_000007"]
    with ThreadPoolExecutor(len(ids)) as pool:
        answers = list(pool.map(lambda entity: service["client"].delete(f"/entities/{entity}",
                                                                        headers=service["admin"]), ids))
    assert [answer.status_code for answer in answers] == [200, 200, 200], [answer.text for answer in answers]
    remaining = set(service["store"].table("entities").read()["entity_id"].to_pylist())
    assert not remaining & set(ids)


def test_forget_with_purge_leaves_no_readable_old_version(service):
    client, store = service["client"], service["store"]
    before = store.table("entities").version()
    response = client.delete("/entities/ent_000004", headers=service["admin"], params={"purge": "true"})
    assert response.status_code == 200, response.text
    assert response.json()["purged_old_versions"] and response.json()["files_purged"]["entities"] >= 1
    old = _get(service, "/store/entities/export", key="admin", version=before)
    assert old.status_code == 404 and "purged" in old.json()["detail"]


def test_history_names_no_forgotten_entity_and_no_server_path(service):
    text = _get(service, "/store/entities/history").text
    assert "ent_000003" not in text and "ent_000004" not in text
    assert str(service["root"]) not in text


def test_error_bodies_match_the_published_schema(service):
    document = service["client"].get("/openapi.json").json()
    error_body = jsonschema.Draft202012Validator({**document, "$ref": "#/components/schemas/ErrorBody"})
    answers = [
        ("/store/snapshot", "get", "401", service["client"].get("/store/snapshot")),
        ("/store/{table}/history", "get", "404", _get(service, "/store/nothing/history")),
        ("/predict", "post", "422", service["client"].post("/predict", json={"entity_id": "x"},
                                                           headers=service["viewer"])),
        ("/store/{table}/export", "get", "403", _get(service, "/store/events/export")),
    ]
    for path, method, status, response in answers:
        assert str(response.status_code) == status, (path, response.text)
        error_body.validate(response.json())
        assert status in document["paths"][path][method]["responses"], (path, status)
    assert {problem["field"] for problem in answers[2][3].json()["problems"]} == {"entity_ids", "entity_id"}

"""POST /cascade over HTTP on 127.0.0.1: a tiny cascade as a job whose progress streams as server-sent
events, on the embedded corpus and on an uploaded file; config errors are 422 before anything runs."""

import json
import time

import pytest

from dmas.api.network import free_loopback_port
from dmas.api.security import new_key
from dmas.cascade.config import DEFAULT_CONFIG
from dmas.config import load_settings
from tests.served import served_app

pytestmark = pytest.mark.slow

# a 6 + 2 + 2 cascade of tiny proxies (six sizes: with fewer the bootstrap draws lack distinct sizes to
# refit), trained in the job's own process (the Ray Train executor has its own parity test in tests/cascade)
TINY = {"data": {"synthetic_documents": 120}, "model": {"seq_len": 32, "n_heads": 2},
        "tiers": [{"name": "tier1", "sizes": [{"d_model": 8, "n_layers": 1}, {"d_model": 12, "n_layers": 1}],
                   "fractions": [0.25, 0.5, 1.0]},
                  {"name": "tier2", "sizes": [{"d_model": 16, "n_layers": 1}, {"d_model": 20, "n_layers": 1}],
                   "fractions": [0.5]},
                  {"name": "tier3", "sizes": [{"d_model": 24, "n_layers": 1}, {"d_model": 32, "n_layers": 1}],
                   "fractions": [1.0]}],
        "full": {"size": {"d_model": 48, "n_layers": 1}}, "schedule": {"epochs": 2, "record_every": 2},
        "scaling": {"bootstrap_draws": 30, "starts": 3},
        "execution": {"executor": "in_process"}, "progress_interval_s": 0.2}


@pytest.fixture(scope="module")
def service(local_ray, tmp_path_factory):
    root = tmp_path_factory.mktemp("cascade-http")
    admin_key, admin = new_key("ops", "admin")
    viewer_key, viewer = new_key("analyst", "viewer")
    settings = load_settings(store_uri=str(root / "store"), serve={
        "host": "127.0.0.1", "port": free_loopback_port(), "api_keys": [admin.model_dump(), viewer.model_dump()],
        "audit_log": str(root / "audit.jsonl")})
    with served_app(settings, timeout=300) as client:
        yield {"client": client, "admin": {"x-api-key": admin_key}, "viewer": {"x-api-key": viewer_key}}


def _events(service, job_id: str, last_event_id: str | None = None) -> list[dict]:
    """Every event of the job's stream until it ends, with the time each arrived."""
    headers = {**service["admin"], **({"Last-Event-ID": last_event_id} if last_event_id else {})}
    events, fields = [], {}
    with service["client"].stream("GET", f"/jobs/{job_id}/events", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line == "":
                if "event" in fields:
                    events.append({"event": fields["event"], "id": fields.get("id"), "at": time.monotonic(),
                                   "data": json.loads(fields["data"])})
                fields = {}
            elif not line.startswith(":") and ": " in line:
                name, value = line.split(": ", 1)
                fields[name] = value
    return events


def test_an_async_cascade_streams_its_progress_then_its_report(service):
    response = service["client"].post("/cascade", params={"async": "true"}, headers=service["admin"],
                                      data={"overrides": json.dumps(TINY)})
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    events = _events(service, job_id)
    kinds = [event["event"] for event in events]
    assert kinds[-1] == "end", kinds
    progress = [event for event in events if event["event"] == "progress"]
    assert len(progress) >= 2, kinds
    assert [int(event["id"]) for event in progress] == list(range(1, len(progress) + 1))
    last = progress[-1]["data"]
    assert last["completed"] == last["total"] == 10 and last["percent"] == 100.0
    assert all(0 <= event["data"]["percent"] <= 100 for event in progress)
    end = events[-1]["data"]
    assert end["status"] == "succeeded", end
    result = end["result"]
    assert result["runs"] == 10 and result["interval"]["lower"] <= result["predicted_validation_loss"]
    assert len(result["report"]["runs"]) == 10 and result["report_sha256"]
    record = service["client"].get(f"/jobs/{job_id}", headers=service["admin"]).json()
    assert record["progress"]["seq"] == len(progress) and record["result"]["report_sha256"] == result["report_sha256"]
    resumed = _events(service, job_id, last_event_id=str(len(progress) - 1))
    assert [event["event"] for event in resumed] == ["progress", "end"], "a resumed stream repeats nothing"


def test_a_cascade_on_an_uploaded_table_names_the_file_as_the_client_sent_it(service):
    rows = ["text"] + [f"the {('cat', 'dog')[i % 2]} sat on mat {i % 13} and ran {i % 7} times" for i in range(400)]
    overrides = {key: value for key, value in TINY.items() if key != "data"}
    response = service["client"].post("/cascade", headers=service["admin"],
                                      files={"data": ("docs.csv", "\n".join(rows).encode(), "text/csv")},
                                      data={"column": "text", "overrides": json.dumps(overrides)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["runs"] == 10 and response.headers["x-job-id"]
    described = json.dumps(body["report"]["data"])
    assert "docs.csv" in described and "uploads/" not in described, described


def test_config_mistakes_are_422_naming_the_field_and_server_files_cannot_be_named(service):
    client, admin = service["client"], service["admin"]
    bad = client.post("/cascade", headers=admin, data={"overrides": json.dumps({"schedule": {"epochs": 0}})})
    assert bad.status_code == 422 and "schedule.epochs" in bad.json()["problems"][0]["error"], bad.text
    assert str(DEFAULT_CONFIG) not in bad.text, "the server's own paths stay on the server"
    path = client.post("/cascade", headers=admin, data={"overrides": json.dumps({"data": {"path": "/etc/passwd"}})})
    assert path.status_code == 422 and "data.path" in path.json()["problems"][0]["error"]
    store = client.post("/cascade", headers=admin,
                        data={"overrides": json.dumps({"data": {"kind": "entities", "store": "/var/other"}})})
    assert store.status_code == 422 and "data.store" in store.json()["problems"][0]["error"]
    entities = client.post("/cascade", headers=admin, data={"overrides": json.dumps({"data": {"kind": "entities"}})})
    assert entities.status_code == 400 and "entities" in entities.json()["detail"], entities.text  # an empty store
    assert client.post("/cascade", headers=admin, data={"overrides": "[1"}).status_code == 422
    assert client.post("/cascade", headers=admin, data={"profile": "nope"}).status_code == 422
    assert client.post("/cascade", headers=service["viewer"]).status_code == 403
    assert client.get("/jobs/" + "0" * 32 + "/events", headers=admin).status_code == 404

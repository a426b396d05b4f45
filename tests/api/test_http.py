"""The HTTP service end to end on 127.0.0.1: predict, query, runs, auth, roles, limits, audit."""

import json

import pytest

from dmas.api.audit_log import AuditLog
from dmas.api.network import free_loopback_port
from dmas.api.security import new_key
from dmas.config import load_settings
from dmas.train.config import TrainConfig
from dmas.train.runner import train_run
from tests.served import served_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service(local_ray, tmp_path_factory, synthetic_store):
    """A trained run on 200 synthetic entities, served by the real application on a free loopback port."""
    root = tmp_path_factory.mktemp("serving")
    store = synthetic_store(root, n_entities=200, seed=5)
    viewer_key, viewer = new_key("analyst", "viewer")
    admin_key, admin = new_key("ops", "admin")
    port = free_loopback_port()
    settings = load_settings(store_uri=store.uri, serve={
        "host": "127.0.0.1", "port": port, "api_keys": [viewer.model_dump(), admin.model_dump()],
        "max_entities_per_request": 50, "max_body_bytes": 20_000, "audit_log": str(root / "audit.jsonl")})
    run = train_run(store, settings, TrainConfig(epochs=3), use_ray=False)
    with served_app(settings, timeout=60) as client:
        yield {"client": client, "viewer": viewer_key, "admin": admin_key, "run": run, "store": store,
               "audit": AuditLog(root / "audit.jsonl")}


def _post(service, path, body, key="viewer", **headers):
    return service["client"].post(path, json=body, headers={"x-api-key": service[key], **headers})


def test_health_needs_no_key(service):
    response = service["client"].get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert response.headers["x-request-id"]


def test_predict_answers_in_the_original_shape_from_the_latest_run(service):
    response = _post(service, "/predict", {"entity_ids": ["ent_000003", "ent_000001"]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["run_id"] == service["run"]["run_id"]
    assert [p["entity_id"] for p in body["predictions"]] == ["ent_000003", "ent_000001"]
    first = body["predictions"][0]
    assert set(first) == {"entity_id", "regression", "probability", "ranking_score", "embedding", "narrative",
                          "narrative_template", "narrative_source", "receipt"}
    assert body["unknown_entity_ids"] == [] and set(body["store_versions"]) == {
        "artifacts", "entities", "events", "features", "interactions"}
    assert 0 <= first["probability"] <= 1 and len(first["embedding"]) == 64


def test_same_request_same_bytes_and_no_dependence_on_other_entities(service):
    alone = _post(service, "/predict", {"entity_ids": ["ent_000007"]}).json()["predictions"][0]
    crowded = _post(service, "/predict", {"entity_ids": ["ent_000011", "ent_000007", "ent_000002"]}).json()
    again = _post(service, "/predict", {"entity_ids": ["ent_000007"]}).json()["predictions"][0]
    assert json.dumps(alone) == json.dumps(crowded["predictions"][1]) == json.dumps(again)


def test_duplicates_are_answered_once_and_unknown_ids_are_listed(service):
    duplicated = _post(service, "/predict", {"entity_ids": ["ent_000001", "ent_000001"]})
    assert duplicated.status_code == 200 and len(duplicated.json()["predictions"]) == 1
    unknown = _post(service, "/predict", {"entity_ids": ["ent_000001", "nobody", "ghost"]})
    assert unknown.status_code == 200 and unknown.json()["unknown_entity_ids"] == ["nobody", "ghost"]
    none_known = _post(service, "/predict", {"entity_ids": ["nobody"]})
    assert none_known.status_code == 404 and none_known.json()["unknown_entity_ids"] == ["nobody"]


def test_unknown_run_is_404(service):
    response = _post(service, "/predict", {"entity_ids": ["ent_000001"], "run_id": "0" * 64})
    assert response.status_code == 404 and "unknown run" in response.json()["detail"]


def test_auth_and_roles(service):
    client = service["client"]
    assert client.post("/predict", json={"entity_ids": ["ent_000001"]}).status_code == 401
    assert client.post("/predict", json={"entity_ids": ["ent_000001"]},
                       headers={"x-api-key": "wrong"}).status_code == 401
    bearer = client.get("/runs", headers={"authorization": f"Bearer {service['viewer']}"})
    assert bearer.status_code == 200 and bearer.json()[0]["run_id"] == service["run"]["run_id"]


def test_limits_and_malformed_requests(service):
    too_many = _post(service, "/predict", {"entity_ids": [f"e{i}" for i in range(51)]})
    assert too_many.status_code == 413 and "limit of 50 per request" in too_many.json()["detail"]
    too_big = _post(service, "/predict", {"entity_ids": ["x" * 30_000]})
    assert too_big.status_code == 413
    missing = _post(service, "/predict", {"entity_id": ["ent_000001"]})
    assert missing.status_code == 422
    assert {problem["field"] for problem in missing.json()["problems"]} >= {"entity_ids"}
    broken = service["client"].post("/predict", content=b"{not json", headers={
        "x-api-key": service["viewer"], "content-type": "application/json"})
    assert broken.status_code == 422


def test_query_structured_and_in_words(service):
    top = _post(service, "/query", {"order_by": "probability", "descending": True, "limit": 3}).json()
    scores = [row["probability"] for row in top["results"]]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)
    words = _post(service, "/query", {"query": "weakest 4", "limit": 10}).json()
    assert words["interpretation"]["order_by"] == "ranking_score" and not words["interpretation"]["descending"]
    assert words["interpreted_as"] == "top 4 by ranking_score, lowest first"
    assert len(words["results"]) == 4
    named = _post(service, "/query", {"query": "how is ent_000009 doing"}).json()
    assert [row["entity_id"] for row in named["results"]] == ["ent_000009"]


def test_request_id_is_echoed_and_audited_without_secrets(service):
    response = _post(service, "/predict", {"entity_ids": ["ent_000004"]}, **{"x-request-id": "req-42"})
    assert response.headers["x-request-id"] == "req-42"
    entries = [entry for entry in service["audit"].entries() if entry["request_id"] == "req-42"]
    assert entries and entries[0]["key_id"] == "analyst" and entries[0]["entity_count"] == 1
    assert entries[0]["run_id"] == service["run"]["run_id"] and entries[0]["status"] == 200
    log_text = service["audit"].path.read_text()
    assert service["viewer"] not in log_text and service["admin"] not in log_text


def test_explain_names_real_inputs_and_converges(service):
    response = _post(service, "/explain", {"entity_ids": ["ent_000005"], "target": "regression"})
    assert response.status_code == 200, response.text
    (prediction,) = response.json()["predictions"]
    explanation = prediction["explanation"]
    assert {item["name"] for item in explanation["attributes"]} >= {"age", "income"}
    assert all(event["event_type"] in {"login", "purchase", "payment", "support_call", "refund"}
               for event in explanation["events"])
    assert all(len(artifact["sha256"]) == 64 for artifact in explanation["artifacts"])
    change = abs(explanation["f_x"] - explanation["f_baseline"])
    assert explanation["convergence_delta"] <= 0.01 * change + 1e-6
    assert explanation["narrative"].startswith("regression")
    again = _post(service, "/explain", {"entity_ids": ["ent_000005"], "target": "regression"})
    assert again.content == response.content


def test_predict_with_explanations_in_the_original_shape(service):
    body = _post(service, "/predict", {"entity_ids": ["ent_000006"], "explanations": True}).json()
    assert "explanation" in body["predictions"][0] and "narrative" in body["predictions"][0]["explanation"]

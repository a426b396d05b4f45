"""Live scoring over real HTTP: a commit reaches /predict within serve.refresh_s, inline entities are
validated like ingest, receipts verify through POST /verify, /query ranks the present."""

import json
import time

import pytest

from dmas.api.network import free_loopback_port
from dmas.api.security import new_key
from dmas.config import load_settings
from dmas.train.config import TrainConfig
from dmas.train.runner import train_run
from tests.served import served_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service(local_ray, tmp_path_factory, synthetic_store):
    root = tmp_path_factory.mktemp("live-http")
    store = synthetic_store(root, n_entities=150, seed=8)
    viewer_key, viewer = new_key("analyst", "viewer")
    admin_key, admin = new_key("ops", "admin")
    settings = load_settings(store_uri=store.uri, serve={
        "host": "127.0.0.1", "port": free_loopback_port(), "api_keys": [viewer.model_dump(), admin.model_dump()],
        "audit_log": str(root / "audit.jsonl")})
    run = train_run(store, settings, TrainConfig(epochs=2), use_ray=False)
    with served_app(settings, timeout=60) as client:
        yield {"client": client, "viewer": viewer_key, "admin": admin_key, "run": run, "store": store,
               "settings": settings, "root": root}


def _post(service, path, body, key="viewer"):
    return service["client"].post(path, json=body, headers={"x-api-key": service[key]})


def test_an_http_ingest_reaches_predict_within_the_refresh_interval(service):
    entity = "ent_000004"
    before = _post(service, "/predict", {"entity_ids": [entity]}).json()
    csv = "entity_id,timestamp,event_type,event_value\n" + "".join(
        f"{entity},2031-0{month}-01T00:00:00Z,purchase,{500 + month}\n" for month in range(1, 4))
    response = service["client"].post("/ingest/events", files={"file": ("late.csv", csv.encode())},
                                      headers={"x-api-key": service["admin"]})
    assert response.status_code == 200, response.text
    committed = time.monotonic()
    while True:
        now = _post(service, "/predict", {"entity_ids": [entity]}).json()
        if now["store_versions"]["events"] > before["store_versions"]["events"]:
            break
        assert time.monotonic() - committed < 10 * service["settings"].serve.refresh_s, "the commit never arrived"
        time.sleep(0.02)
    seen_after = time.monotonic() - committed
    print(f"freshness: commit visible to /predict after {seen_after * 1000:.0f} ms "
          f"(serve.refresh_s={service['settings'].serve.refresh_s})")
    assert now["predictions"][0]["probability"] != before["predictions"][0]["probability"]
    assert _post(service, "/verify", {"receipt": before["predictions"][0]["receipt"]}).json()["status"] == "verified"


def test_inline_entities_are_scored_and_validated_like_ingest(service):
    entity = {"entity_id": "walk-in", "attributes": {"age": 33},
              "events": [{"timestamp": "2024-03-01T00:00:00Z", "event_type": "purchase", "event_value": 4.5}],
              "interactions": [{"dst_entity_id": "ent_000002", "interaction_type": "friend",
                                "timestamp": "2024-03-01T00:00:00Z"}]}
    both = _post(service, "/predict", {"entity_ids": ["ent_000001"], "entities": [entity]})
    assert both.status_code == 200, both.text
    answers = both.json()["predictions"]
    assert [a["entity_id"] for a in answers] == ["ent_000001", "walk-in"]
    receipt = answers[1]["receipt"]
    assert receipt["source"] == "inline" and len(receipt["payload_sha256"]) == 64
    verified = _post(service, "/verify", {"receipt": receipt, "entity": entity}).json()
    assert verified["status"] == "verified", verified
    bad = dict(entity, events=[{"timestamp": "2024-03-01", "event_type": "purchase", "event_value": "lots"}])
    refused = _post(service, "/predict", {"entities": [entity, bad]})
    assert refused.status_code == 422
    fields = {problem["field"] for problem in refused.json()["problems"]}
    assert fields == {"entities.1.events.0.timestamp", "entities.1.events.0.event_value"}, fields
    assert _post(service, "/predict", {}).status_code == 422


def test_explain_answers_live_and_inline_entities(service):
    entity = {"attributes": {"age": 50}, "events": [{"timestamp": "2024-03-02T00:00:00Z",
                                                     "event_type": "purchase", "event_value": 1.0}]}
    response = _post(service, "/explain", {"entity_ids": ["ent_000005"], "entities": [entity]})
    assert response.status_code == 200, response.text
    for answer in response.json()["predictions"]:
        assert answer["explanation"]["target"] == "probability" and answer["narrative"]


def test_query_ranks_the_present_and_says_so(service):
    body = _post(service, "/query", {"order_by": "probability", "limit": 5}).json()
    scores = [row["probability"] for row in body["results"]]
    assert len(scores) == 5 and scores == sorted(scores, reverse=True)
    assert body["scores_from"].startswith("scored now")
    everyone = _post(service, "/predict", {"entity_ids": [f"ent_{i:06d}" for i in range(150)]}).json()
    best = max(everyone["predictions"], key=lambda p: (p["probability"], [-ord(c) for c in p["entity_id"]]))
    assert body["results"][0]["entity_id"] == best["entity_id"]
    assert json.dumps(body) == json.dumps(_post(service, "/query", {"order_by": "probability", "limit": 5}).json())

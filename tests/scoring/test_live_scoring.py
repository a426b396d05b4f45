"""Scoring with a run on the store's data: the same bytes as training at its pinned versions, alone or in
any company, the present as it changes, the past, inline entities, and receipts that verify."""

import io
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from dmas.config import load_settings
from dmas.ingest.tabular import ingest_table
from dmas.online import OnlineView
from dmas.scoring.answers import explanations, predictions
from dmas.scoring.inline import InlineEntity
from dmas.scoring.receipts import verify
from dmas.scoring.scorer import Scorer, UnknownEntitiesError
from dmas.store.forget import forget_entity
from dmas.store.runs import RunRegistry
from dmas.train.config import TrainConfig
from dmas.train.runner import train_run
from dmas.vocabulary import HEADS


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synthetic_store):
    root = tmp_path_factory.mktemp("live")
    store = synthetic_store(root, 120, 11)
    run = train_run(store, load_settings(store_uri=store.uri), TrainConfig(epochs=2), use_ray=False)
    recorded = pa.ipc.open_file(io.BytesIO(RunRegistry(store).read_file(run["run_id"], "predictions.arrow")))
    manifest = json.loads(RunRegistry(store).read_file(run["run_id"], "data_manifest.json"))
    return {"root": root, "store": store, "run_id": run["run_id"], "pinned": manifest["tables"],
            "training": recorded.read_all()}


def _bytes(scored, head: str, rows=slice(None)) -> bytes:
    return np.ascontiguousarray(scored.outputs[head][rows], np.float32).tobytes()


def test_live_scores_at_the_pinned_versions_are_the_training_bytes(trained):
    """Every entity, through the online view (the store has not changed since training)."""
    ids = trained["training"]["entity_id"].to_pylist()
    scored = Scorer(trained["store"], OnlineView(trained["store"])).score(trained["run_id"], ids)
    assert scored.store_versions == trained["pinned"]
    for head in HEADS:
        assert _bytes(scored, head) == trained["training"][head].to_numpy().astype(np.float32).tobytes(), head
    embedding = np.stack(trained["training"]["embedding"].to_numpy(zero_copy_only=False))
    assert scored.outputs["embedding"].tobytes() == embedding.astype(np.float32).tobytes()


def test_an_entity_scores_the_same_alone_and_in_requests_of_64_and_256(trained):
    ids = trained["training"]["entity_id"].to_pylist()
    scorer = Scorer(trained["store"], OnlineView(trained["store"]))
    alone = scorer.score(trained["run_id"], [ids[40]])
    crowd = (ids * 3)[:300]
    for size in (64, 256):
        request = [*crowd[41:41 + size - 1]]
        request.insert(size // 2, ids[40])
        company = scorer.score(trained["run_id"], list(dict.fromkeys(request)))
        row = company.entity_ids.index(ids[40])
        for head in (*HEADS, "embedding"):
            assert _bytes(alone, head, 0) == _bytes(company, head, row), (size, head)


def test_view_and_tables_give_the_same_bytes(trained):
    ids = trained["training"]["entity_id"].to_pylist()[:30]
    live = Scorer(trained["store"], OnlineView(trained["store"])).score(trained["run_id"], ids)
    tables = Scorer(trained["store"]).score(trained["run_id"], ids)
    assert [_bytes(live, head) for head in HEADS] == [_bytes(tables, head) for head in HEADS]
    assert [r["input_sha256"] for r in _receipts(live)] == [r["input_sha256"] for r in _receipts(tables)]


def _receipts(scored):
    return [answer["receipt"] for answer in predictions(scored)]


def test_unknown_ids_are_listed_and_all_unknown_is_an_error(trained):
    scorer = Scorer(trained["store"])
    known = trained["training"]["entity_id"][0].as_py()
    scored = scorer.score(trained["run_id"], ["ghost", known, "ghost"])
    assert scored.entity_ids == [known] and scored.unknown_entity_ids == ["ghost"]
    with pytest.raises(UnknownEntitiesError) as raised:
        scorer.score(trained["run_id"], ["ghost", "spirit"])
    assert raised.value.missing == ["ghost", "spirit"]


def test_inline_entity_scores_as_if_ingested(trained, tmp_path):
    """An inline payload gives the bytes its entity gets once ingested; unseen values are named."""
    store, ids = trained["store"], trained["training"]["entity_id"].to_pylist()
    payload = InlineEntity(entity_id="walk-in", attributes={"age": 41, "income": 52000.5},
                           events=[{"timestamp": "2024-02-01T10:00:00Z", "event_type": "purchase",
                                    "event_value": 12.5},
                                   {"timestamp": "2024-02-03T10:00:00Z", "event_type": "never_seen",
                                    "event_value": 1}],
                           interactions=[{"dst_entity_id": ids[2], "interaction_type": "friend",
                                          "interaction_value": 1.0, "timestamp": "2024-02-02T00:00:00Z"},
                                         {"dst_entity_id": "nobody", "interaction_type": "friend",
                                          "timestamp": "2024-02-02T00:00:00Z"}])
    view = OnlineView(store)
    scorer = Scorer(store, view)
    inline = scorer.score(trained["run_id"], [], [payload])
    answer = predictions(inline)[0]
    assert answer["entity_id"] == "walk-in" and answer["receipt"]["source"] == "inline"
    assert answer["unseen"]["event_types"] == ["never_seen"] and answer["unseen"]["neighbors"] == ["nobody"]
    assert verify(store, answer["receipt"], payload)["verified"]
    tampered = payload.model_copy(update={"attributes": {"age": 42, "income": 52000.5}})
    assert [d["what"] for d in verify(store, answer["receipt"], tampered)["differences"]] == ["data", "data"]

    entity = pd.DataFrame({"entity_id": ["walk-in"], "attributes": [json.dumps(payload.attributes)]})
    events = pd.DataFrame([{"entity_id": "walk-in", **e.model_dump(mode="json")} for e in payload.events])
    links = pd.DataFrame([{"src_entity_id": "walk-in", **link.model_dump(mode="json")}
                          for link in payload.interactions[:1]])
    for kind, frame in (("entities", entity), ("events", events), ("interactions", links)):
        frame.to_csv(tmp_path / f"{kind}.csv", index=False)
        assert ingest_table(store, kind, tmp_path / f"{kind}.csv")["failed_rows"] == 0
    view.refresh()
    stored = scorer.score(trained["run_id"], ["walk-in"])
    assert [_bytes(stored, head) for head in HEADS] == [_bytes(inline, head) for head in HEADS]


def test_new_events_change_the_score_and_forgotten_entities_are_unknown(trained, tmp_path):
    store = trained["store"]
    view = OnlineView(store)
    scorer = Scorer(store, view)
    entity = trained["training"]["entity_id"][7].as_py()
    before = scorer.score(trained["run_id"], [entity])
    receipt = predictions(before)[0]["receipt"]
    path = tmp_path / "more.csv"
    pd.DataFrame({"entity_id": [entity] * 3, "timestamp": ["2030-05-01T00:00:00Z", "2030-05-02T00:00:00Z",
                                                           "2030-05-03T00:00:00Z"],
                  "event_type": ["purchase"] * 3, "event_value": [900.0, 950.0, 990.0]}).to_csv(path, index=False)
    ingest_table(store, "events", path)
    assert view.refresh()
    after = scorer.score(trained["run_id"], [entity])
    assert after.store_versions["events"] == before.store_versions["events"] + 1
    assert _bytes(after, "probability") != _bytes(before, "probability")
    assert verify(store, receipt)["verified"]  # the old receipt still verifies: it names the versions it read
    past = scorer.score(trained["run_id"], [entity], store_version=before.store_versions)
    assert [_bytes(past, head) for head in HEADS] == [_bytes(before, head) for head in HEADS]
    forged = {**receipt, "input_sha256": "0" * 64}
    assert [d["what"] for d in verify(store, forged)["differences"]] == ["data"]
    assert [d["what"] for d in verify(store, {**receipt, "model_sha256": "1" * 64})["differences"]] == ["weights"]
    forget_entity(store, entity)
    view.refresh()
    with pytest.raises(UnknownEntitiesError):
        scorer.score(trained["run_id"], [entity])


def test_as_of_uses_nothing_after_it(trained):
    """Scoring as of a time equals scoring tables from which every later row was removed."""
    store = trained["store"]
    ids = trained["training"]["entity_id"].to_pylist()[:20]
    scorer = Scorer(store, OnlineView(store))
    cut = pd.Timestamp("2024-03-15T00:00:00Z").to_pydatetime()
    past = scorer.score(trained["run_id"], ids, as_of=cut)
    now = scorer.score(trained["run_id"], ids)
    assert past.as_of == cut and _bytes(past, "probability") != _bytes(now, "probability")
    events = store.table("events").read()
    assert (events["timestamp"].to_pandas() > pd.Timestamp(cut)).any()  # the cut removes something
    late = InlineEntity(attributes={}, events=[{"timestamp": "2030-01-01T00:00:00Z", "event_type": "purchase",
                                                "event_value": 5.0}])
    empty = InlineEntity(attributes={})
    both = scorer.score(trained["run_id"], [], [late, empty], as_of=cut)
    assert _bytes(both, "probability", 0) == _bytes(both, "probability", 1)


def test_explanations_of_live_and_inline_entities_add_up(trained):
    store = trained["store"]
    scorer = Scorer(store, OnlineView(store))
    entity = trained["training"]["entity_id"][3].as_py()
    inline = InlineEntity(attributes={"age": 30}, events=[{"timestamp": "2024-01-05T00:00:00Z",
                                                           "event_type": "purchase", "event_value": 3.0}])
    scored = scorer.score(trained["run_id"], [entity], [inline])
    for explanation in explanations(scored, "probability", predictions(scored)):
        change = explanation["f_x"] - explanation["f_baseline"]
        assert abs(change) > 1e-3  # else completeness says nothing
        assert abs(explanation["convergence_delta"]) <= 0.01 * abs(change)

"""`dmas score`: batch scores equal live scoring's bytes, whatever the workers or batch size, in one commit."""

import json
import shutil

import numpy as np
import pytest

from dmas.scoring.answers import explanations, predictions
from dmas.scoring.batch import (
    PinnedTables,
    compute_scores,
    latest_scores,
    ranked_from_scores,
    scores_receipt,
    scores_table,
    select_entities,
)
from dmas.scoring.receipts import verify
from dmas.scoring.scorer import Scorer
from dmas.vocabulary import HEADS
from tests.conftest import build_synthetic_store
from tests.test_cli import dmas


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from dmas.config import load_settings
    from dmas.train.config import TrainConfig
    from dmas.train.runner import train_run

    root = tmp_path_factory.mktemp("batch")
    store = build_synthetic_store(root, 48, seed=11)
    run = train_run(store, load_settings(store_uri=store.uri), TrainConfig(epochs=1), use_ray=False)
    return {"root": root, "store": store, "run_id": run["run_id"]}


@pytest.fixture
def copied(trained, tmp_path):
    """A copy of the trained store that a test may write to."""
    from dmas.store import Store

    shutil.copytree(trained["store"].uri, tmp_path / "store")
    return Store(tmp_path / "store")


def _live(store, run_id, entity_ids, versions):
    scored = Scorer(store).score(run_id, entity_ids, store_version=versions)
    return scored


def test_pinned_tables_cut_the_same_rows_as_the_whole_tables(trained):
    from dmas.inputs import encode, rows_from_tables
    from dmas.scoring.scorer import ScoringRun

    store = trained["store"]
    run = ScoringRun.load(store, trained["run_id"])
    pinned = PinnedTables(store, store.snapshot(), run.feature_version)
    ids = pinned.entity_ids()
    for chosen in (ids[:1], ids[3:10], ids[::5], ids):
        cut, _ = pinned.rows(chosen)
        whole, _ = rows_from_tables(pinned.tables, chosen)
        a, b = (encode(rows, pinned.reference_us, run.encoding).arrays for rows in (cut, whole))
        assert all(np.array_equal(a[key], b[key]) and a[key].dtype == b[key].dtype for key in a)


def test_scores_equal_live_scoring_bytes(trained):
    store, run_id = trained["store"], trained["run_id"]
    versions = store.snapshot()
    ids = select_entities(store, versions).entity_ids
    rows = compute_scores(store, run_id, versions, ids, use_ray=False, batch_size=7)
    scored = _live(store, run_id, ids, versions)
    assert rows["entity_id"].to_pylist() == scored.entity_ids == sorted(ids)
    for head in HEADS:
        assert rows[head].to_numpy().tobytes() == scored.outputs[head].astype(np.float32).tobytes(), head
    embedding = np.stack(rows["embedding"].to_numpy(zero_copy_only=False)).astype(np.float32)
    assert embedding.tobytes() == scored.outputs["embedding"].astype(np.float32).tobytes()
    from dmas.scoring.receipts import receipts

    live = receipts(scored)
    assert rows["input_sha256"].to_pylist() == [receipt["input_sha256"] for receipt in live]
    assert rows["output_sha256"].to_pylist() == [receipt["output_sha256"] for receipt in live]


def test_ray_data_workers_and_batch_sizes_give_identical_bytes(trained, local_ray):
    store, run_id = trained["store"], trained["run_id"]
    versions = store.snapshot()
    ids = select_entities(store, versions).entity_ids
    reference = compute_scores(store, run_id, versions, ids, use_ray=False, batch_size=256)
    for workers, batch_size in ((1, 1), (2, 7), (2, 256), (1, 256)):
        rows = compute_scores(store, run_id, versions, ids, workers=workers, batch_size=batch_size, progress=False)
        assert rows.equals(reference), (workers, batch_size)
        for name in rows.column_names:
            assert rows[name].combine_chunks().to_string() == reference[name].combine_chunks().to_string()


def test_dmas_score_commits_once_and_rescoring_changes_nothing(copied, trained, local_ray):
    store = copied
    code, summary, err = dmas("score", "--store", store.uri, "--workers", "2", "--batch-size", "7")
    assert code == 0, err
    assert summary["run_id"] == trained["run_id"] and summary["rows"] == 48 and summary["inserted"] == 48
    assert summary["store_versions"] == store.snapshot() and "scores" not in store.snapshot()
    assert summary["entities_per_s"] > 0 and summary["scope"] == "all"
    table = scores_table(store)
    assert table.version() == summary["scores_version"] == 1  # created empty (0), one commit (1)
    code, again, err = dmas("score", "--store", store.uri, "--workers", "1", "--batch-size", "256")
    assert code == 0, err
    assert again["inserted"] == again["updated"] == 0 and table.version() == 1
    rows = table.read()
    scored = _live(store, trained["run_id"], rows["entity_id"].to_pylist(), summary["store_versions"])
    assert rows["probability"].to_numpy().tobytes() == scored.outputs["probability"].tobytes()
    # the scores table is not part of what training pins
    assert set(store.snapshot()) == {"artifacts", "entities", "events", "features", "interactions"}


def test_entity_ids_and_files_choose_the_entities(copied, trained):
    store = copied
    code, summary, err = dmas("score", "--store", store.uri, "--no-ray", "--entity-ids",
                              "ent_000003,ent_000001,nobody")
    assert code == 0, err
    assert summary["rows"] == 2 and summary["unknown_entity_ids"] == ["nobody"] and summary["scope"] == "entity_ids"
    path = copied.location.root + "/../ids.txt"
    with open(path, "w") as handle:
        handle.write("ent_000005\n\nent_000002\n")
    code, summary, err = dmas("score", "--store", store.uri, "--no-ray", "--entities-file", path)
    assert code == 0 and summary["rows"] == 2, err
    assert scores_table(store).read()["entity_id"].to_pylist() == ["ent_000001", "ent_000002", "ent_000003",
                                                                    "ent_000005"]


def test_explain_stores_what_post_explain_answers_and_a_rescore_keeps_it(copied, trained):
    store = copied
    code, summary, err = dmas("score", "--store", store.uri, "--no-ray", "--explain", "--entity-ids",
                              "ent_000004,ent_000006")
    assert code == 0 and summary["explained"], err
    rows = scores_table(store).read().to_pylist()
    scored = _live(store, trained["run_id"], [row["entity_id"] for row in rows], summary["store_versions"])
    expected = explanations(scored, "probability", predictions(scored))
    assert [json.loads(row["explanation"]) for row in rows] == json.loads(json.dumps(expected))
    code, again, err = dmas("score", "--store", store.uri, "--no-ray", "--entity-ids", "ent_000004")
    assert code == 0 and again["updated"] == 0, err
    assert scores_table(store).read()["explanation"].null_count == 0


def test_changed_since_scores_only_changed_entities(copied, trained, tmp_path):
    from dmas.ingest.tabular import ingest_table

    store = copied
    before = store.snapshot()
    events = tmp_path / "more_events.csv"
    events.write_text("entity_id,timestamp,event_type,event_value\n"
                      "ent_000004,2031-01-01T00:00:00Z,purchase,3.5\n")
    links = tmp_path / "more_links.csv"
    links.write_text("src_entity_id,dst_entity_id,interaction_type,interaction_value,timestamp\n"
                     "ent_000010,ent_000011,follow,1.0,2031-01-02T00:00:00Z\n")
    assert ingest_table(store, "events", events)["inserted_rows"] == 1
    assert ingest_table(store, "interactions", links)["inserted_rows"] == 1
    code, summary, err = dmas("score", "--store", store.uri, "--no-ray", "--changed-since-version",
                              json.dumps(before))
    assert code == 0, err
    assert summary["scope"] == "changed_since" and summary["changed_since"] == dict(sorted(before.items()))
    assert scores_table(store).read()["entity_id"].to_pylist() == ["ent_000004", "ent_000010", "ent_000011"]
    code, nothing, err = dmas("score", "--store", store.uri, "--no-ray", "--changed-since-version",
                              json.dumps(store.snapshot()))
    assert code == 0 and nothing["rows"] == 0, err
    code, _, err = dmas("score", "--store", store.uri, "--changed-since-version", '{"events": 1}')
    assert code == 2 and "lacks table version" in err


def test_scores_rows_verify_with_their_receipts(copied, trained, tmp_path):
    store = copied
    code, summary, err = dmas("score", "--store", store.uri, "--no-ray", "--entity-ids", "ent_000001,ent_000002")
    assert code == 0, err
    rows = scores_table(store).read().drop_columns(["embedding"]).to_pylist()
    for row in rows:
        assert verify(store, scores_receipt(row))["verified"]
    path = tmp_path / "row.json"
    path.write_text(json.dumps(rows[0]))
    code, verdict, err = dmas("verify", str(path), "--store", store.uri)
    assert code == 0 and verdict["verified"] and verdict["entity_id"] == "ent_000001", err
    tampered = {**scores_receipt(rows[1]), "output_sha256": "0" * 64}
    path.write_text(json.dumps(tampered))
    code, verdict, err = dmas("verify", str(path), "--store", store.uri)
    assert code == 0 and not verdict["verified"] and verdict["differences"][0]["what"] == "code"


def test_query_ranks_from_the_latest_scores_commit(copied, trained):
    store, run_id = copied, trained["run_id"]
    assert latest_scores(store, run_id) is None
    code, summary, err = dmas("score", "--store", store.uri, "--no-ray")
    assert code == 0, err
    ranked, source = ranked_from_scores(store, run_id, "probability", True, 5, [], lambda row: row)
    assert source.startswith(f"scores table version {summary['scores_version']} (dmas score at store versions")
    rows = scores_table(store).read().to_pylist()
    expected = sorted(rows, key=lambda row: (-row["probability"], row["entity_id"]))[:5]
    assert [row["entity_id"] for row in ranked] == [row["entity_id"] for row in expected]
    among, _ = ranked_from_scores(store, run_id, "regression", False, 2, ["ent_000001", "ent_000002", "ent_000003"],
                                  lambda row: row)
    assert len(among) == 2
    assert ranked_from_scores(store, run_id, "regression", False, 2, ["ent_000001", "nobody"], lambda r: r) is None


def test_query_route_ranks_from_scores_with_receipts_that_verify(copied, trained):
    from types import SimpleNamespace

    from dmas.api.query import Ordering
    from serve.routes.scoring import _ranked

    store, run_id = copied, trained["run_id"]
    code, summary, err = dmas("score", "--store", store.uri, "--no-ray")
    assert code == 0, err
    results, source = _ranked(SimpleNamespace(store=store), run_id, Ordering("ranking_score", True, 3), [])
    assert source.startswith(f"scores table version {summary['scores_version']} ")
    assert len(results) == 3 and results[0]["ranking_score"] >= results[-1]["ranking_score"]
    assert {"entity_id", "regression", "probability", "ranking_score", "receipt"} <= set(results[0])
    assert verify(store, results[0]["receipt"])["verified"]


def test_forgetting_an_entity_removes_its_scores(copied):
    from dmas.store.forget import forget_entity

    code, _, err = dmas("score", "--store", copied.uri, "--no-ray", "--entity-ids", "ent_000001,ent_000002")
    assert code == 0, err
    report = forget_entity(copied, "ent_000001")
    assert report["tables"]["scores"]["rows_removed"] == 1
    assert scores_table(copied).read()["entity_id"].to_pylist() == ["ent_000002"]

"""Erasure lineage: which runs' data held an entity that has since been forgotten (they need retraining)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dmas.config import load_settings
from dmas.ingest.tabular import ingest_table
from dmas.store import Store
from dmas.store.forget import forget_entity
from dmas.train.config import TrainConfig
from dmas.train.lineage import ErasureEvidence, run_lineage, runs_needing_retraining
from dmas.train.runner import train_run
from tests.test_cli import dmas

pytestmark = pytest.mark.slow


def _entities_csv(path: Path, ids: range) -> Path:
    path.write_text("entity_id,attributes\n" + "".join(
        f'e{i},"{{""x"": {i}, ""target_regression"": {i * 2}}}"\n' for i in ids))
    return path


@pytest.fixture
def small(tmp_path) -> Store:
    """40 entities with one attribute and a regression target: trains in about a second."""
    store = Store(tmp_path / "store")
    ingest_table(store, "entities", _entities_csv(tmp_path / "e.csv", range(40)))
    return store


def _train(store: Store) -> str:
    return train_run(store, load_settings(store_uri=store.uri), TrainConfig(epochs=1), use_ray=False)["run_id"]


def test_a_run_whose_data_held_a_forgotten_entity_needs_retraining_and_one_trained_after_does_not(small, tmp_path):
    before = _train(small)
    assert run_lineage(small, before)["needs_retraining"] is False and runs_needing_retraining(small) == []
    forget_entity(small, "e1")
    lineage = run_lineage(small, before)
    assert (lineage["forgotten_entities"], lineage["needs_retraining"]) == (["e1"], True)
    assert lineage["erasure_evidence"] == {"e1": ErasureEvidence.PRESENT}
    after = _train(small)
    assert (run_lineage(small, after)["forgotten_entities"], run_lineage(small, after)["needs_retraining"]) == (
        [], False)
    ingest_table(small, "entities", _entities_csv(tmp_path / "again.csv", range(40)))  # e1 comes back
    again = _train(small)
    assert run_lineage(small, again)["needs_retraining"] is False  # data ingested after the forget is not erased
    listed = runs_needing_retraining(small)
    assert [(run["run_id"], run["status"], run["forgotten_entities"]) for run in listed] == [
        (before, "completed", ["e1"])]
    assert listed[0]["created_at"].startswith("20")


def test_an_entity_ingested_after_the_run_then_forgotten_is_not_listed_for_it(small, tmp_path):
    run_id = _train(small)
    ingest_table(small, "entities", _entities_csv(tmp_path / "more.csv", range(40, 42)))
    forget_entity(small, "e40")
    forget_entity(small, "e2")
    assert run_lineage(small, run_id)["forgotten_entities"] == ["e2"]
    assert [run["forgotten_entities"] for run in runs_needing_retraining(small)] == [["e2"]]


def test_after_a_purge_the_audit_alone_decides_and_says_so(small, tmp_path):
    run_id = _train(small)
    ingest_table(small, "entities", _entities_csv(tmp_path / "more.csv", range(40, 41)))
    forget_entity(small, "e40", purge_old_versions=True)  # the run's files are untouched: still readable
    assert run_lineage(small, run_id)["erasure_evidence"] == {}
    forget_entity(small, "e2", purge_old_versions=True)  # rewrites the run's data file and purges the old one
    lineage = run_lineage(small, run_id)
    # e40 came after the run, but with the pinned version unreadable only the forgets' versions are left
    assert lineage["erasure_evidence"] == {"e2": ErasureEvidence.ASSUMED_PURGED, "e40": ErasureEvidence.ASSUMED_PURGED}
    assert lineage["needs_retraining"] is True


def test_forget_records_without_versions_are_decided_by_their_time(small):
    forgets = small.audit("forget")
    forgets.record({"entity_id": "e5", "tables": {"entities": {"rows_removed": 1}}})  # before the run
    run_id = _train(small)
    forgets.record({"entity_id": "e6", "tables": {"entities": 1}})  # after it (an older report's shape)
    forgets.record({"entity_id": "e7", "tables": {"entities": {"rows_removed": 0, "version": 9}}})  # removed none
    lineage = run_lineage(small, run_id)
    assert lineage["erasure_evidence"] == {"e6": ErasureEvidence.PRESENT_FORGOTTEN_LATER}
    assert lineage["needs_retraining"] is True


def test_the_cli_prints_a_runs_erasure_lineage_and_the_runs_to_retrain(small):
    run_id = _train(small)
    forget_entity(small, "e3")
    store = small.uri
    code, lineage, _ = dmas("lineage", run_id, "--store", store)
    assert code == 0 and (lineage["forgotten_entities"], lineage["needs_retraining"]) == (["e3"], True)
    code, listed, _ = dmas("lineage", "--forgotten", "--store", store)
    assert code == 0 and [(run["run_id"], run["forgotten_entities"]) for run in listed] == [(run_id, ["e3"])]
    for argv in ([], [run_id, "--forgotten"]):
        code, printed, err = dmas("lineage", *argv, "--store", store)
        assert (code, printed) == (2, None) and "give either RUN_ID or --forgotten" in err

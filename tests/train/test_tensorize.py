"""Store snapshot -> arrays: pinned, point-in-time correct, ordered, and split stably."""

import numpy as np
import pytest

from dmas.ingest.tabular import ingest_table
from dmas.store import Store
from dmas.train.tensorize import DataManifest, TensorizeConfig, tensorize

ENTITIES = (
    'entity_id,attributes\n'
    'a,"{""x"": 1, ""y"": 10, ""target_regression"": 1.5, ""target_binary"": 1}"\n'
    'b,"{""x"": 3, ""y"": 30, ""target_regression"": 2.5, ""target_binary"": 0}"\n'
    'c,"{""x"": 5, ""target_ranking"": 2}"\n'
)
EVENTS = (
    "entity_id,timestamp,event_type,event_value\n"
    "a,2024-01-01T00:00:00Z,login,1\na,2024-01-02T00:00:00Z,buy,5\na,2024-01-03T00:00:00Z,login,2\n"
    "a,2024-01-04T00:00:00Z,buy,7\nb,2024-01-05T00:00:00Z,login,1\n"
)
INTERACTIONS = (
    "src_entity_id,dst_entity_id,interaction_type,interaction_value,timestamp\n"
    "a,b,msg,1,2024-01-01T00:00:00Z\nc,a,pay,4,2024-01-02T00:00:00Z\na,c,msg,2,2024-01-06T00:00:00Z\n"
)


@pytest.fixture
def store(tmp_path, write):
    store = Store(tmp_path / "store")
    for kind, text in (("entities", ENTITIES), ("events", EVENTS), ("interactions", INTERACTIONS)):
        ingest_table(store, kind, write(f"{kind}.csv", text))
    return store


def _manifest(store, as_of=None):
    return DataManifest(store.snapshot(), "no-features", as_of)


def _tensors(store, **config):
    return tensorize(store, _manifest(store), TensorizeConfig(**config), seed=0)


def test_attributes_targets_and_masks(store):
    tensors = _tensors(store)
    assert list(tensors.entity_ids) == ["a", "b", "c"] and tensors.attribute_names == ("x", "y")
    assert tensors.arrays["target_regression_mask"].tolist() == [True, True, False]
    assert tensors.arrays["target_ranking_mask"].tolist() == [False, False, True]
    assert np.isfinite(tensors.arrays["attributes"]).all()  # c's missing y is imputed, not NaN


def test_last_events_in_time_order_with_gaps_and_ages(store):
    tensors = _tensors(store, max_events=3)
    a = 0
    assert tensors.arrays["event_mask"][a].tolist() == [True, True, True]
    assert [tensors.event_types[i - 1] for i in tensors.arrays["event_type"][a]] == ["buy", "login", "buy"]
    assert np.allclose(tensors.arrays["event_dt_prev"][a], np.log1p(86400))  # one day between each
    ages = tensors.arrays["event_age"][a]
    assert ages[0] > ages[1] > ages[2] > 0  # the reference time is the latest timestamp in the snapshot
    assert tensors.arrays["event_mask"][2].sum() == 0  # c has no events: all padding


def test_neighbours_both_directions_most_recent_kept(store):
    tensors = _tensors(store, max_neighbors=1)
    a = 0
    assert tensors.arrays["neighbor_mask"][a].tolist() == [True]
    c_attributes = tensors.arrays["attributes"][2]
    assert np.array_equal(tensors.arrays["neighbor_attributes"][a, 0], c_attributes)  # a->c on Jan 6 is newest
    assert tensors.interaction_types[tensors.arrays["neighbor_type"][a, 0] - 1] == "msg"


def test_as_of_keeps_the_future_out(store):
    from datetime import UTC, datetime

    cut = datetime(2024, 1, 2, 12, tzinfo=UTC)
    tensors = tensorize(store, _manifest(store, cut.isoformat()), TensorizeConfig(as_of=cut), seed=0)
    assert tensors.arrays["event_mask"][0].sum() == 2  # only Jan 1 and Jan 2 events of a
    assert tensors.arrays["event_mask"][1].sum() == 0  # b's only event is Jan 5
    assert tensors.arrays["neighbor_mask"][0].sum() == 2  # a-b Jan 1 and c->a Jan 2, not a->c Jan 6


def test_pinned_versions_read_the_same_arrays_after_new_data(store, write):
    manifest = _manifest(store)
    before = tensorize(store, manifest, TensorizeConfig(), seed=0)
    ingest_table(store, "events", write("more.csv", "entity_id,timestamp,event_type,event_value\n"
                                                    "c,2024-02-01T00:00:00Z,login,9\n"))
    again = tensorize(store, manifest, TensorizeConfig(), seed=0)
    assert all(np.array_equal(before.arrays[key], again.arrays[key]) for key in before.arrays)


def test_hash_split_is_stable_when_entities_are_added(tmp_path, write):
    store = Store(tmp_path / "s")
    ids = [f"e{i:04d}" for i in range(400)]
    rows = [f"{entity},{{}}" for entity in ids]
    ingest_table(store, "entities", write("e.csv", "entity_id,attributes\n" + "\n".join(rows[:300]) + "\n"))
    first = dict(zip(*(lambda t: (t.entity_ids, t.split))(_tensors(store))))
    ingest_table(store, "entities", write("e2.csv", "entity_id,attributes\n" + "\n".join(rows[300:]) + "\n"))
    second = dict(zip(*(lambda t: (t.entity_ids, t.split))(_tensors(store))))
    assert all(second[entity] == split for entity, split in first.items())
    shares = np.bincount(list(second.values()), minlength=3) / 400
    assert abs(shares[0] - 0.7) < 0.08 and shares[1] > 0.08 and shares[2] > 0.08


def test_time_split_puts_the_latest_entities_in_test(store):
    tensors = _tensors(store, split="time", split_fractions=(0.34, 0.33, 0.33))
    assert tensors.split.tolist() == [1, 2, 0]  # c: no events (earliest) -> train; b: latest event -> test

"""The online view follows commits exactly: after each kind of commit its rows encode to the same bytes
as the tables read at the view's versions, and as a view built from scratch."""

import json

import numpy as np
import pandas as pd
import pytest

from dmas.config import load_settings
from dmas.features.version import feature_version
from dmas.ingest.tabular import ingest_table
from dmas.inputs import encode, rows_from_tables
from dmas.inputs.encode import InputEncoding, InputLimits
from dmas.inputs.rows import read_pinned, reference_time
from dmas.online import OnlineView, ViewDepth
from dmas.online.changes import commit_change
from dmas.store.forget import forget_entity
from dmas.train.tensorize import DataManifest, TensorizeConfig, tensorize


@pytest.fixture(scope="module")
def world(tmp_path_factory, synthetic_store):
    root = tmp_path_factory.mktemp("view")
    store = synthetic_store(root, 80, 5)
    version = feature_version(load_settings(store_uri=store.uri).features.extractor_config())
    tensors = tensorize(store, DataManifest(store.snapshot(), version, None), TensorizeConfig(), 3)
    encoding = InputEncoding(InputLimits(50, 5, 2), tensors.attribute_names, tensors.event_types,
                             tensors.interaction_types, tensors.artifact_dims, tensors.normalisation)
    return {"root": root, "store": store, "feature_version": version, "tensors": tensors, "encoding": encoding}


def _encoded_from_view(view, world, ids):
    rows, unknown, versions, reference = view.rows_for(ids, world["feature_version"])
    return encode(rows, reference, world["encoding"]), unknown, versions


def _encoded_from_tables(world, versions, ids):
    tables = read_pinned(world["store"], versions, world["feature_version"], None)
    rows, unknown = rows_from_tables(tables, ids)
    return encode(rows, reference_time(tables, None), world["encoding"]), unknown


def _same(a, b) -> list[str]:
    differs = [key for key in a.arrays if a.arrays[key].tobytes() != b.arrays[key].tobytes()]
    if not (a.event_keys == b.event_keys).all() or not (a.artifact_ids == b.artifact_ids).all():
        differs.append("slot names")
    return differs


def test_a_fresh_view_gives_the_training_arrays(world):
    tensors = world["tensors"]
    encoded, unknown, _ = _encoded_from_view(OnlineView(world["store"]), world, list(tensors.entity_ids))
    assert unknown == []
    assert [key for key in tensors.arrays if tensors.arrays[key].tobytes() != encoded.arrays[key].tobytes()] == []


def test_each_kind_of_commit_is_absorbed_exactly(world):
    """With the tightest windows a run may use (so deletions inside full windows reload them); the new
    rows have types the run knows: a type it never saw takes a window slot (see dmas.online.view)."""
    store, root = world["store"], world["root"]
    view = OnlineView(store, ViewDepth(events=51, links=5, artifacts=2))
    ids = view.entity_ids()
    event_type, link_type = world["tensors"].event_types[0], world["tensors"].interaction_types[0]
    commits = [
        ("events", pd.DataFrame({"entity_id": [ids[1]] * 3 + [ids[2]],
                                 "timestamp": ["2031-01-01T00:00:00Z", "2031-01-01T00:00:00Z",
                                               "2031-01-02T00:00:00Z", "2031-01-03T00:00:00Z"],
                                 "event_type": [event_type, event_type, "purchase", event_type],
                                 "event_value": [1.0, 2.0, -3.0, 4.0]})),
        ("interactions", pd.DataFrame({"src_entity_id": [ids[1], ids[3]], "dst_entity_id": [ids[4], ids[1]],
                                       "interaction_type": [link_type] * 2, "interaction_value": [1.0, 2.0],
                                       "timestamp": ["2031-02-01T00:00:00Z", "2031-02-01T00:00:00Z"]})),
        ("entities", pd.DataFrame({"entity_id": [ids[5], "brand-new"],
                                   "attributes": [json.dumps({"age": 101, "income": 3.5}), json.dumps({"age": 1})]})),
    ]
    for kind, frame in commits:
        path = root / f"{kind}.csv"
        frame.to_csv(path, index=False)
        report = ingest_table(store, kind, path)
        assert report["failed_rows"] == 0, report["errors"]
        assert view.refresh()
        check = view.entity_ids()
        live, _, versions = _encoded_from_view(view, world, check)
        offline, _ = _encoded_from_tables(world, versions, check)
        assert versions == store.snapshot() and _same(live, offline) == [], kind
    forget_entity(store, ids[1])  # deletes rows inside full windows of its neighbours: they are reloaded
    view.refresh()
    check = view.entity_ids()
    assert ids[1] not in check and view.known([ids[1], ids[2]]) == [ids[2]]
    live, _, versions = _encoded_from_view(view, world, check)
    offline, _ = _encoded_from_tables(world, versions, check)
    rebuilt, _, _ = _encoded_from_view(OnlineView(store, ViewDepth(51, 5, 2)), world, check)
    assert _same(live, offline) == [] and _same(live, rebuilt) == []


def _ingest_one_event(store, folder, entity: str, when: str, event_type: str) -> None:
    path = folder / "one_event.csv"
    pd.DataFrame({"entity_id": [entity], "timestamp": [when], "event_type": [event_type],
                  "event_value": [1.0]}).to_csv(path, index=False)
    assert ingest_table(store, "events", path)["inserted_rows"] == 1


def test_types_the_run_never_saw_are_left_out_and_named(world, tmp_path):
    store = world["store"]
    view = OnlineView(store)
    entity = view.entity_ids()[10]
    _ingest_one_event(store, tmp_path, entity, "2033-01-01T00:00:00Z", "a_new_type")
    view.refresh()
    live, _, versions = _encoded_from_view(view, world, [entity])
    offline, _ = _encoded_from_tables(world, versions, [entity])
    assert live.unseen == [{"event_types": ["a_new_type"]}] and _same(live, offline) == []


def test_a_refresh_without_commits_changes_nothing(world):
    view = OnlineView(world["store"])
    before = view.versions
    assert view.refresh() is False and view.versions == before


def test_one_commit_costs_what_it_touched_not_the_store(world, tmp_path):
    """Absorbing a commit reads its own files: the log entry names them (no table scan, no listing)."""
    store = world["store"]
    view = OnlineView(store)
    _ingest_one_event(store, tmp_path, view.entity_ids()[0], "2032-01-01T00:00:00Z", "purchase")
    change = commit_change(store.location.filesystem, store.location.path("tables", "events"),
                           store.table("events").spec, store.table("events").version(),
                           ["entity_id", "timestamp", "event_type", "event_value"])
    assert change.written.num_rows == 1 and change.deleted.num_rows == 0
    assert np.isclose(change.written["event_value"][0].as_py(), 1.0)

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dmas.errors import StoreError
from dmas.store import Store


def _entities(store, rows):
    schema = store.table("entities").spec.schema
    return pa.table({"entity_id": [r[0] for r in rows], "attributes": [r[1] for r in rows]}, schema=schema)


def test_new_store_has_every_table_at_version_zero(store):
    assert store.snapshot() == {"artifacts": 0, "entities": 0, "events": 0, "features": 0, "interactions": 0}


def test_reopening_a_store_keeps_its_versions(tmp_path):
    first = Store(tmp_path / "s")
    first.table("entities").upsert(_entities(first, [("a", "{}")]), {"source_file": "x"})
    assert Store(tmp_path / "s").snapshot()["entities"] == 1


def test_upsert_updates_changed_rows_and_ignores_identical_ones(store):
    table = store.table("entities")
    first = table.upsert(_entities(store, [("a", '{"x":1}'), ("b", '{"x":2}')]), {})
    same = table.upsert(_entities(store, [("a", '{"x":1}')]), {})
    changed = table.upsert(_entities(store, [("a", '{"x":5}'), ("c", "{}")]), {})
    assert (first.inserted, first.version) == (2, 1)
    assert (same.changed, same.version) == (False, 1)  # nothing changed: no new version
    assert (changed.inserted, changed.updated, changed.version) == (1, 1, 2)
    assert table.read().to_pylist() == [
        {"entity_id": "a", "attributes": '{"x":5}'},
        {"entity_id": "b", "attributes": '{"x":2}'},
        {"entity_id": "c", "attributes": "{}"},
    ]


def test_time_travel_reads_each_version_as_it_was(store):
    table = store.table("entities")
    table.upsert(_entities(store, [("a", '{"x":1}')]), {})
    table.upsert(_entities(store, [("a", '{"x":2}')]), {})
    assert table.read(version=1).column("attributes").to_pylist() == ['{"x":1}']
    assert table.read(version=2).column("attributes").to_pylist() == ['{"x":2}']
    with pytest.raises(StoreError, match="version 7"):
        table.read(version=7)


def test_export_any_version_to_parquet(store, tmp_path):
    table = store.table("entities")
    table.upsert(_entities(store, [("a", "{}")]), {})
    table.upsert(_entities(store, [("b", "{}")]), {})
    out = tmp_path / "v1.parquet"
    assert table.export_parquet(str(out), version=1) == 1
    assert pq.read_table(out).column("entity_id").to_pylist() == ["a"]


def test_lineage_lists_source_files_up_to_a_version(store):
    table = store.table("entities")
    table.upsert(_entities(store, [("a", "{}")]), {"source_file": "one.csv", "source_sha256": "11"})
    table.upsert(_entities(store, [("b", "{}")]), {"source_file": "two.csv", "source_sha256": "22"})
    assert [s["source_file"] for s in store.lineage("entities")] == ["one.csv", "two.csv"]
    assert store.lineage("entities", version=1) == [{"version": 1, "source_file": "one.csv", "source_sha256": "11"}]


def test_unknown_table_is_a_clear_error(store):
    with pytest.raises(StoreError, match="unknown table 'nope'"):
        store.table("nope")


OLD_EVENTS = pa.schema([  # the events table as dmas wrote it before `event_metadata`
    pa.field("entity_id", pa.string(), nullable=False),
    pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("event_type", pa.string(), nullable=False),
    pa.field("event_value", pa.float64(), nullable=False),
])


def test_a_store_written_before_event_metadata_keeps_working(tmp_path, write):
    from datetime import UTC, datetime

    from deltalake import DeltaTable, write_deltalake

    from dmas.ingest.tabular import ingest_table

    events_uri = str(tmp_path / "s" / "tables" / "events")
    DeltaTable.create(events_uri, OLD_EVENTS, name="events")
    old_row = {"entity_id": ["a"], "timestamp": [datetime(2023, 1, 1, tzinfo=UTC)], "event_type": ["old"],
               "event_value": [1.0]}
    write_deltalake(events_uri, pa.table(old_row, schema=OLD_EVENTS), mode="append")
    store = Store(tmp_path / "s")
    ingest_table(store, "entities", write("e.csv", "entity_id,attributes\na,{}\n"))
    events = store.table("events")
    assert events.read().column("event_metadata").to_pylist() == [None]  # read as the current schema

    older_layout = ingest_table(store, "events", write("old.csv", "entity_id,timestamp,event_type,event_value\n"
                                                                  "a,2023-01-01T00:00:00Z,old,1\n"))
    assert (older_layout["inserted_rows"], older_layout["updated_rows"]) == (0, 0)
    assert older_layout["version"] == 2  # the first commit since adds the column, and only that
    new = write("new.csv", "entity_id,timestamp,event_type,event_value,event_metadata\n"
                           'a,2023-01-01T00:00:00Z,old,1,"{""k"": 1}"\na,2024-01-01T00:00:00Z,new,2,"{""k"": 2}"\n')
    report = ingest_table(store, "events", new)
    assert (report["inserted_rows"], report["updated_rows"], report["version"]) == (1, 1, 3)
    latest = events.read()
    assert latest.column("event_type").to_pylist() == ["old", "new"]
    assert latest.column("event_metadata").to_pylist() == ['{"k":1}', '{"k":2}']
    assert events.read(version=1).column("event_metadata").to_pylist() == [None]  # the old version, as it was
    events.export_parquet(str(tmp_path / "v1.parquet"), version=1)
    assert pq.read_table(tmp_path / "v1.parquet").column_names == [f.name for f in events.spec.schema]

"""Table ingestion: every bad-input class reports the exact row and field, and the store is unchanged."""

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dmas.errors import IngestError, UnreadableFileError
from dmas.ingest.tabular import ingest_table
from dmas.limits import LimitSettings

ENTITIES = 'entity_id,attributes\ne1,"{""x"": 1}"\ne2,"{""x"": 2}"\n'


@pytest.fixture
def with_entities(store, write):
    ingest_table(store, "entities", write("entities.csv", ENTITIES))
    return store


def _errors(report):
    return [(e["row"], e["field"]) for e in report["errors"]]


def test_good_file_lands_in_one_commit(with_entities, write):
    path = write("events.csv", "entity_id,timestamp,event_type,event_value\n"
                               "e1,2024-01-01T00:00:00Z,login,1\ne2,2024-01-02T00:00:00Z,buy,2.5\n")
    report = ingest_table(with_entities, "events", path)
    assert (report["total_rows"], report["success_rows"], report["failed_rows"]) == (2, 2, 0)
    assert report["version"] == 1 and with_entities.snapshot()["events"] == 1


@pytest.mark.parametrize(("line", "field", "message"), [
    (",2024-01-01T00:00:00Z,login,1", "entity_id", "missing required field 'entity_id'"),
    ("e1,,login,1", "timestamp", "missing required field 'timestamp'"),
    ("e1,last tuesday,login,1", "timestamp", "not an ISO-8601 timestamp: 'last tuesday'"),
    ("e1,2024-01-01T00:00:00Z,,1", "event_type", "missing required field 'event_type'"),
    ("e1,2024-01-01T00:00:00Z,login,lots", "event_value", "not a finite number: 'lots'"),
    ("e1,2024-01-01T00:00:00Z,login,inf", "event_value", "not a finite number: 'inf'"),
    ("e1,2024-01-01T00:00:00Z,login,", "event_value", "missing required field 'event_value'"),
    ("ghost,2024-01-01T00:00:00Z,login,1", "entity_id", "unknown entity 'ghost'"),
])
def test_each_bad_event_names_row_field_and_value(with_entities, write, line, field, message):
    path = write("events.csv", "entity_id,timestamp,event_type,event_value\n"
                               f"e1,2024-01-01T00:00:00Z,login,7\n{line}\ne2,2024-01-01T00:00:00Z,login,1\n")
    report = ingest_table(with_entities, "events", path)
    assert report["failed_rows"] == 1 and report["success_rows"] == 2
    assert report["errors"][0]["row"] == 3 and report["errors"][0]["field"] == field
    assert message in report["errors"][0]["error"]


def test_timestamps_are_stored_in_utc_honouring_offsets(with_entities, write):
    path = write("events.csv", "entity_id,timestamp,event_type,event_value\n"
                               "e1,2024-03-01T12:00:00+02:00,a,1\ne1,2024-03-01T12:00:00,b,1\n")
    ingest_table(with_entities, "events", path)
    stamps = with_entities.table("events").read().column("timestamp").to_pylist()
    assert sorted(t.isoformat() for t in stamps) == ["2024-03-01T10:00:00+00:00", "2024-03-01T12:00:00+00:00"]


def test_same_instant_in_two_time_zones_is_a_duplicate(with_entities, write):
    path = write("events.csv", "entity_id,timestamp,event_type,event_value\n"
                               "e1,2024-03-01T12:00:00+02:00,a,1\ne1,2024-03-01T10:00:00Z,a,1\n")
    report = ingest_table(with_entities, "events", path)
    assert report["errors"] == [{"row": 3, "field": "entity_id, timestamp, event_type, event_value",
                                 "error": "duplicate of row 2 in this file"}]


def test_reingesting_the_same_events_is_idempotent(with_entities, write):
    path = write("events.csv", "entity_id,timestamp,event_type,event_value\ne1,2024-01-01T00:00:00Z,a,1\n")
    first = ingest_table(with_entities, "events", path)
    again = ingest_table(with_entities, "events", path)
    assert (first["inserted_rows"], again["inserted_rows"], again["unchanged_rows"]) == (1, 0, 1)
    assert again["version"] == first["version"]
    assert with_entities.table("events").read().num_rows == 1


def test_reingesting_an_entity_updates_it_in_a_new_version(with_entities, write):
    report = ingest_table(with_entities, "entities", write("e.csv", 'entity_id,attributes\ne1,"{""x"": 9}"\n'))
    assert (report["updated_rows"], report["version"]) == (1, 2)
    def attributes_of_e1(version=None):
        rows = with_entities.table("entities").read(version=version).to_pylist()
        return json.loads(next(r["attributes"] for r in rows if r["entity_id"] == "e1"))

    assert attributes_of_e1() == {"x": 9}
    assert attributes_of_e1(version=1) == {"x": 1}


@pytest.mark.parametrize(("cell", "message"), [
    ('"{""x"": 1"', "not valid JSON"),
    ('"[1, 2]"', "expected a JSON object, got list"),
    ('"{""x"": NaN}"', "NaN is not valid JSON"),
])
def test_bad_attributes_are_rejected_per_row(store, write, cell, message):
    report = ingest_table(store, "entities", write("e.csv", f'entity_id,attributes\nok,{{}}\nbad,{cell}\n'))
    assert _errors(report) == [(3, "attributes")]
    assert message in report["errors"][0]["error"]
    assert store.table("entities").read().column("entity_id").to_pylist() == ["ok"]


def test_duplicate_entity_in_one_file_names_the_first_row(store, write):
    report = ingest_table(store, "entities", write("e.csv", "entity_id,attributes\na,{}\nb,{}\na,{}\n"))
    assert report["errors"] == [{"row": 4, "field": "entity_id", "error": "duplicate of row 2 in this file"}]


def test_wide_entity_file_turns_columns_into_attributes(store, write):
    ingest_table(store, "entities", write("e.csv", "entity_id,attributes,age,city,score\na,,41,Oslo,0.5\n"
                                                   'b,"{""tier"": 2}",,Rome,\n'))
    rows = {r["entity_id"]: json.loads(r["attributes"]) for r in store.table("entities").read().to_pylist()}
    assert rows == {"a": {"age": 41, "city": "Oslo", "score": 0.5}, "b": {"city": "Rome", "tier": 2}}


@pytest.mark.parametrize("text", ["entity_id\ne1\ne2\ne3\n", "entity_id,age\ne1,4\ne2,5\ne3,6\n"])
def test_entities_file_without_attributes_fails_every_row_as_the_old_api_did(store, write, text):
    report = ingest_table(store, "entities", write("e.csv", text))
    assert (report["total_rows"], report["success_rows"], report["failed_rows"]) == (3, 0, 3)
    assert _errors(report) == [(2, "attributes"), (3, "attributes"), (4, "attributes")]
    assert "no 'attributes' column" in report["errors"][0]["error"]
    assert store.table("entities").read().num_rows == 0 and store.snapshot()["entities"] == 0


def test_json_entities_without_any_attributes_fail_every_row(store, write):
    report = ingest_table(store, "entities", write("entities.jsonl", '{"entity_id": "a"}\n{"entity_id": "b"}\n'))
    assert _errors(report) == [(1, "attributes"), (2, "attributes")]


def test_interactions_check_both_ends_and_default_value(with_entities, write):
    path = write("i.csv", "src_entity_id,dst_entity_id,interaction_type,timestamp\n"
                          "e1,e2,msg,2024-01-01T00:00:00Z\ne1,nobody,msg,2024-01-01T00:00:00Z\n")
    report = ingest_table(with_entities, "interactions", path)
    assert _errors(report) == [(3, "dst_entity_id")]
    assert with_entities.table("interactions").read().column("interaction_value").to_pylist() == [1.0]


def test_strict_mode_rejects_the_whole_file_and_changes_nothing(with_entities, write):
    path = write("events.csv", "entity_id,timestamp,event_type,event_value\n"
                               "e1,2024-01-01T00:00:00Z,a,1\ne1,2024-01-01T00:00:00Z,a,oops\n")
    before = with_entities.snapshot()
    with pytest.raises(IngestError, match=r"events.csv, row 3, field 'event_value': not a finite number: 'oops'"):
        ingest_table(with_entities, "events", path, strict=True)
    assert with_entities.snapshot() == before
    assert with_entities.table("events").read().num_rows == 0


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"),
    ("entity_id,when,event_type,event_value\ne1,x,a,1\n", "missing required column(s) ['timestamp']"),
    ("entity_id,timestamp,event_type,event_value,extra\ne1,2024-01-01,a,1,z\n", "unexpected column(s) ['extra']"),
    ("entity_id,timestamp,event_type,event_value\ne1,2024-01-01,a\x00,1\n", "NUL byte at line 2, column 16"),
])
def test_unusable_file_fails_whole_and_changes_nothing(with_entities, write, text, message):
    before = with_entities.snapshot()
    with pytest.raises(UnreadableFileError, match="events.csv") as caught:
        ingest_table(with_entities, "events", write("events.csv", text))
    assert message in str(caught.value)
    assert with_entities.snapshot() == before


def test_binary_junk_fails_whole(with_entities, tmp_path):
    path = tmp_path / "junk.bin"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(UnreadableFileError, match="junk.bin"):
        ingest_table(with_entities, "events", path)


def test_error_list_is_capped_but_every_failure_counted(with_entities, write):
    lines = "".join(f"e1,2024-01-01T00:00:{i % 60:02d}Z,a,bad{i}\n" for i in range(30))
    path = write("events.csv", "entity_id,timestamp,event_type,event_value\n" + lines)
    report = ingest_table(with_entities, "events", path, limits=LimitSettings(max_reported_errors=5))
    assert (report["failed_rows"], report["error_count"], len(report["errors"])) == (30, 30, 5)
    assert report["errors_truncated"] and [e["row"] for e in report["errors"]] == [2, 3, 4, 5, 6]


def test_rows_in_later_chunks_keep_their_file_row_numbers(with_entities, write):
    lines = [f"e1,2024-01-01T00:{i // 60:02d}:{i % 60:02d}Z,a,{i}" for i in range(2500)]
    lines[2203] = "e1,2024-01-01T00:00:00Z,a,broken"
    path = write("events.csv", "entity_id,timestamp,event_type,event_value\n" + "\n".join(lines) + "\n")
    report = ingest_table(with_entities, "events", path, limits=LimitSettings(ingest_chunk_rows=1000))
    assert _errors(report) == [(2205, "event_value")]
    assert report["success_rows"] == 2499


def test_columnar_sources_keep_native_types(with_entities, tmp_path):
    frame = pd.DataFrame({"entity_id": ["e1", "e2"], "event_type": ["a", "b"], "event_value": [1.5, float("nan")],
                          "timestamp": pd.to_datetime(["2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"])})
    path = tmp_path / "events.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    report = ingest_table(with_entities, "events", path)
    assert _errors(report) == [(2, "event_value")]
    assert with_entities.table("events").read().column("event_value").to_pylist() == [1.5]


def test_jsonl_records_bring_their_own_keys(with_entities, write):
    path = write("events.jsonl", "\n".join([
        '{"entity_id": "e1", "timestamp": "2024-01-01T00:00:00Z", "event_type": "a", "event_value": 1}',
        '{"entity_id": "e1", "timestamp": "2024-01-02T00:00:00Z", "event_type": "a"}',
        "{not json",
    ]) + "\n")
    report = ingest_table(with_entities, "events", path, limits=LimitSettings(ingest_chunk_rows=1))
    assert _errors(report)[:1] == [(2, "event_value")]
    assert [e["row"] for e in report["errors"]] == [2, 3]
    assert report["success_rows"] == 1


def test_json_entities_with_nested_attribute_objects(store, write):
    path = write("entities.json", '[{"entity_id": "a", "attributes": {"b": 2, "a": [1, 2]}}, {"entity_id": "b"}]')
    ingest_table(store, "entities", path)
    assert store.table("entities").read().column("attributes").to_pylist() == ['{"a":[1,2],"b":2}', "{}"]


def test_repeats_across_chunks_are_dropped_and_named(with_entities, write):
    path = write("events.csv", "entity_id,timestamp,event_type,event_value\n"
                               "e1,2024-01-01T00:00:00Z,a,1\ne2,2024-01-01T00:00:00Z,a,1\n"
                               "e1,2024-01-01T00:00:00Z,a,2\ne1,2024-01-01T00:00:00Z,a,1\n"
                               "e2,2024-01-01T02:00:00+02:00,a,1\n")
    report = ingest_table(with_entities, "events", path, limits=LimitSettings(ingest_chunk_rows=2))
    assert [(e["row"], e["error"]) for e in report["errors"]] == [
        (5, "duplicate of row 2 in this file"), (6, "duplicate of row 3 in this file")]
    assert (report["total_rows"], report["success_rows"], report["inserted_rows"]) == (5, 3, 3)
    assert with_entities.table("events").read().num_rows == 3
    assert with_entities.snapshot()["events"] == 1  # the aborted first pass left no version behind


def test_progress_callback_counts_every_row_read(with_entities, write):
    lines = "".join(f"e1,2024-01-01T00:00:{i:02d}Z,a,{'x' if i == 3 else i}\n" for i in range(50))
    counted = []
    ingest_table(with_entities, "events", write("events.csv", "entity_id,timestamp,event_type,event_value\n" + lines),
                 limits=LimitSettings(ingest_chunk_rows=7), on_rows=counted.append)
    assert sum(counted) == 50 and len(counted) >= 7


def test_each_error_also_comes_as_the_line_old_clients_print(store, write):
    report = ingest_table(store, "entities", write("e.csv", 'entity_id,attributes\nok,{}\nbad,{oops\nx,y,z\n'),
                          limits=LimitSettings(max_reported_errors=1))
    assert report["errors"] == [{"row": 3, "field": "attributes", "error": report["errors"][0]["error"]}]
    assert report["error_messages"] == [f"row 3, attributes: {report['errors'][0]['error']}"]
    assert report["error_messages"][0].startswith("row 3, attributes: not valid JSON")
    full = ingest_table(store, "entities", write("f.csv", 'entity_id,attributes\nbad,{oops\nx,y,z\n'))
    assert full["error_messages"][1] == "row 3: expected 2 fields, found 3"


EVENTS_WITH_METADATA = ('entity_id,timestamp,event_type,event_value,event_metadata\n'
                        'e1,2024-01-01T00:00:00Z,login,1,"{""device"": ""ios"", ""app"": 3}"\n'
                        'e2,2024-01-01T00:00:00Z,login,1,\n')


def test_events_keep_the_old_platforms_event_metadata(with_entities, write, tmp_path):
    report = ingest_table(with_entities, "events", write("events.csv", EVENTS_WITH_METADATA))
    assert (report["success_rows"], report["failed_rows"]) == (2, 0)
    events = with_entities.table("events")
    assert events.read().column("event_metadata").to_pylist() == ['{"app":3,"device":"ios"}', None]
    events.export_parquet(str(tmp_path / "out.parquet"))
    assert pq.read_table(tmp_path / "out.parquet").column("event_metadata").to_pylist()[0] == '{"app":3,"device":"ios"}'


@pytest.mark.parametrize(("cell", "message"), [
    ('"{""device"": "', "not valid JSON"),
    ('"[1, 2]"', "expected a JSON object, got list"),
    ("7", "expected a JSON object, got int"),
])
def test_event_metadata_that_is_no_json_object_names_row_and_field(with_entities, write, cell, message):
    path = write("events.csv", "entity_id,timestamp,event_type,event_value,event_metadata\n"
                               "e1,2024-01-01T00:00:00Z,a,1,{}\n"
                               f"e1,2024-01-02T00:00:00Z,a,1,{cell}\n")
    report = ingest_table(with_entities, "events", path)
    assert _errors(report) == [(3, "event_metadata")] and message in report["errors"][0]["error"]
    assert report["error_messages"][0].startswith(f"row 3, event_metadata: {message}")
    assert with_entities.table("events").read().num_rows == 1


def test_interactions_keep_their_metadata_and_check_it(with_entities, write):
    path = write("i.jsonl", "\n".join([
        '{"src_entity_id": "e1", "dst_entity_id": "e2", "interaction_type": "msg", '
        '"timestamp": "2024-01-01T00:00:00Z", "metadata": {"channel": "sms"}}',
        '{"src_entity_id": "e2", "dst_entity_id": "e1", "interaction_type": "msg", '
        '"timestamp": "2024-01-01T00:00:00Z", "metadata": "not json"}',
        '{"src_entity_id": "e2", "dst_entity_id": "e1", "interaction_type": "call", "timestamp": "2024-01-01"}',
    ]) + "\n")
    report = ingest_table(with_entities, "interactions", path)
    assert _errors(report) == [(2, "metadata")] and "not valid JSON" in report["errors"][0]["error"]
    stored = with_entities.table("interactions").read(columns=["interaction_type", "metadata"]).to_pylist()
    assert sorted(stored, key=str) == sorted([{"interaction_type": "msg", "metadata": '{"channel":"sms"}'},
                                              {"interaction_type": "call", "metadata": None}], key=str)


def test_metadata_is_no_part_of_an_events_key(with_entities, write):
    first = ingest_table(with_entities, "events", write("events.csv", EVENTS_WITH_METADATA))
    again = ingest_table(with_entities, "events", write("events.csv", EVENTS_WITH_METADATA))
    assert (again["inserted_rows"], again["updated_rows"], again["version"]) == (0, 0, first["version"])
    fixed = write("fixed.csv", EVENTS_WITH_METADATA.replace("ios", "android"))
    corrected = ingest_table(with_entities, "events", fixed)
    assert (corrected["inserted_rows"], corrected["updated_rows"]) == (0, 1)
    older_layout = write("old.csv", "entity_id,timestamp,event_type,event_value\ne1,2024-01-01T00:00:00Z,login,1\n")
    assert ingest_table(with_entities, "events", older_layout)["version"] == corrected["version"]  # keeps it
    events = with_entities.table("events").read()
    assert events.num_rows == 2
    assert events.column("event_metadata").to_pylist() == ['{"app":3,"device":"android"}', None]


def test_a_missing_file_is_named(store, tmp_path):
    with pytest.raises(UnreadableFileError, match="nothere.csv: cannot be read: no such file"):
        ingest_table(store, "entities", tmp_path / "nothere.csv")


def test_a_writer_that_keeps_losing_the_commit_race_is_told_to_send_again_and_writes_nothing(store, write,
                                                                                            monkeypatch):
    """Each attempt commits against a table version another writer has already moved past."""
    from dmas.api.errors import error_body
    from dmas.errors import ConflictError

    ingest_table(store, "entities", write("a.csv", "entity_id,attributes\na,{}\n"))
    table = store.table("entities")
    stale = table.delta()
    ingest_table(store, "entities", write("b.csv", "entity_id,attributes\nb,{}\n"))
    monkeypatch.setattr(table, "delta", lambda: stale)
    with pytest.raises(ConflictError, match="c.csv.*send the file again") as raised:
        ingest_table(store, "entities", write("c.csv", "entity_id,attributes\nc,{}\n"))
    assert error_body(raised.value)["status"] == 409
    monkeypatch.undo()
    assert sorted(table.read()["entity_id"].to_pylist()) == ["a", "b"]

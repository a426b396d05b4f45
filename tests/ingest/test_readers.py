"""Tests for dmas.ingest.readers: every format, user-visible row numbers, bad rows, sniffing."""

from __future__ import annotations

import json
import random
from pathlib import Path

import h5py
import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pytest

from dmas.errors import UnreadableFileError
from dmas.ingest import readers
from dmas.ingest.readers import TABLE_FORMATS, Chunk, read_table_file, sniff_table_format


def read_all(path: Path, **kwargs) -> tuple[pd.DataFrame, np.ndarray, list]:
    """All chunks of a file joined: records, their row numbers and the bad rows."""
    chunks = list(read_table_file(path, **kwargs))
    assert all(isinstance(chunk, Chunk) for chunk in chunks)
    frame = pd.concat([chunk.frame for chunk in chunks], ignore_index=True)
    rows = np.concatenate([chunk.rows for chunk in chunks])
    assert rows.dtype == np.int64
    return frame, rows, [bad for chunk in chunks for bad in chunk.bad_rows]


def values(frame: pd.DataFrame, column: str) -> list:
    """A column as a list with every missing value as None."""
    return [None if pd.isna(v) else v for v in frame[column]]


def events_frame(n: int = 3) -> pd.DataFrame:
    """A small events table with text, timestamp, float and int columns."""
    return pd.DataFrame(
        {
            "entity_id": [f"e{i}" for i in range(n)],
            "timestamp": pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"),
            "event_value": np.arange(n, dtype=float) + 0.5,
            "count": np.arange(n, dtype=np.int64),
        }
    )


# --- csv / tsv ----------------------------------------------------------------------------------


def test_csv_round_trip_keeps_text_as_strings(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("id,code,value\na,007,1.50\nb,,2024-01-01\n")
    frame, rows, bad = read_all(path)
    assert list(frame.columns) == ["id", "code", "value"]
    assert values(frame, "code") == ["007", None]
    assert values(frame, "value") == ["1.50", "2024-01-01"]
    assert rows.tolist() == [2, 3]
    assert bad == []


def test_csv_wrong_field_count_and_blank_lines_keep_numbering(tmp_path: Path) -> None:
    lines = ["a,b,c,d", "1,2,3,4", "1,2,3,4,5", "", "5,6,7,8", "x,y", "   ", "9,10,11,12"]
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    frame, rows, bad = read_all(path)
    assert rows.tolist() == [2, 5, 8]
    assert values(frame, "a") == ["1", "5", "9"]
    assert [(b.row, b.error) for b in bad] == [(3, "expected 4 fields, found 5"), (6, "expected 4 fields, found 2")]


def test_csv_bad_rows_after_last_record_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n3\n")
    frame, rows, bad = read_all(path)
    assert rows.tolist() == [2]
    assert [b.row for b in bad] == [3]


def test_csv_crlf_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b'a,b\r\n1,2\r\n\r\n3,4,5\r\n6,"x\r\ny"\r\n7,8\r\n')
    frame, rows, bad = read_all(path)
    assert values(frame, "a") == ["1", "6", "7"]
    assert rows.tolist() == [2, 5, 7]
    assert [b.row for b in bad] == [4]


def test_csv_quoted_commas_newlines_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    text = ' name , note\n"Smith, J","a, b"\nx,"two\nlines"\ny,z\n'
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    frame, rows, bad = read_all(path)
    assert list(frame.columns) == ["name", "note"]
    assert values(frame, "name") == ["Smith, J", "x", "y"]
    assert values(frame, "note") == ["a, b", "two\nlines", "z"]
    assert rows.tolist() == [2, 3, 5]
    assert bad == []


def test_semicolon_csv_from_a_decimal_comma_locale(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text('entity_id;name;score\ne1;"Smith; J";700,5\ne2;Zoé;650\n')
    assert sniff_table_format(path) == "csv"
    frame, rows, bad = read_all(path)
    assert list(frame.columns) == ["entity_id", "name", "score"]
    assert values(frame, "name") == ["Smith; J", "Zoé"]
    assert values(frame, "score") == ["700,5", "650"]  # text: validation decides what a value means
    assert (rows.tolist(), bad) == ([2, 3], [])


def test_commas_in_the_header_keep_a_csv_comma_separated(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('id,note\na,"x; y; z"\n')
    frame, _, _ = read_all(path)
    assert values(frame, "note") == ["x; y; z"]


def test_a_latin1_file_is_refused_with_where_it_stops_being_utf8(tmp_path: Path) -> None:
    path = tmp_path / "old_excel.csv"
    path.write_bytes("entity_id,name\ne1,Ana\ne2,Zoé\n".encode("latin-1"))
    expected = "not UTF-8 text: byte 0xe9 at line 3, column 6; save the file as UTF-8"
    with pytest.raises(UnreadableFileError, match=expected):
        list(read_table_file(path))


def test_a_nul_byte_is_named_with_its_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "nul.csv"
    path.write_bytes(b"entity_id,name\ne1,Ana\ne2,Zo\x00e\n")
    with pytest.raises(UnreadableFileError, match="nul.csv: cannot be read: NUL byte at line 3, column 6"):
        list(read_table_file(path))


def test_a_trailing_run_of_nul_bytes_is_named_too(tmp_path: Path) -> None:
    path = tmp_path / "cut.csv"  # what a power cut can leave: zeros after the last line written
    path.write_bytes(b"entity_id,name\ne1,Ana\n" + b"\x00" * 4096)
    with pytest.raises(UnreadableFileError, match="cut.csv: cannot be read: NUL byte at line 3, column 1"):
        list(read_table_file(path))


def test_a_nul_byte_past_the_sniffed_head_names_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    path.write_bytes(b"a,b\n" + b"x,y\n" * 20_000 + b"q,w\x00e\n" + b"x,y\n" * 10)
    with pytest.raises(UnreadableFileError, match="late.csv: cannot be read: NUL byte at line 20002 in field 'b'"):
        list(read_table_file(path, chunk_rows=3000))


def test_utf16_text_is_told_apart_from_binary(tmp_path: Path) -> None:
    path = tmp_path / "unicode.txt"  # Excel's "Unicode Text"
    path.write_bytes("entity_id\tname\ne1\tAna\n".encode("utf-16"))
    with pytest.raises(UnreadableFileError, match="unicode.txt: cannot be read: UTF-16 text, not UTF-8"):
        list(read_table_file(path))


def test_tsv_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    path.write_text("id\tvalue\na\t007\nb\t\n")
    assert sniff_table_format(path) == "tsv"
    frame, rows, _ = read_all(path)
    assert values(frame, "value") == ["007", None]
    assert rows.tolist() == [2, 3]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_csv_line_numbers_across_blocks_and_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, newline: str
) -> None:
    """Random blank, bad and multi-line records; numbering must survive every batch boundary."""
    rng = random.Random(7)
    lines, expected_rows, expected_bad = [f'"k{newline}ey",v'], [], []
    line_no = 3
    for i in range(600):
        kind = rng.choices(["ok", "blank", "bad", "multi", "bad_multi"], weights=[10, 1, 1, 1, 1])[0]
        if kind in ("ok", "multi"):
            expected_rows.append(line_no)
        elif kind != "blank":
            expected_bad.append(line_no)
        value = f'"first{newline}second"' if kind.endswith("multi") else f"v{i}"
        lines.append({"blank": "", "bad": f"{i},v,extra", "bad_multi": f"{i},{value},extra"}.get(kind, f"{i},{value}"))
        line_no += 2 if kind.endswith("multi") else 1
    path = tmp_path / "t.csv"
    path.write_bytes((newline.join(lines) + newline).encode())
    monkeypatch.setattr(readers, "_MIN_CSV_BLOCK_BYTES", 256)
    chunks = list(read_table_file(path, chunk_rows=7))
    assert len(chunks) > 10
    assert all(len(chunk.frame) <= 7 for chunk in chunks)
    assert list(chunks[0].frame.columns) == [f"k{newline}ey", "v"]
    assert np.concatenate([c.rows for c in chunks]).tolist() == expected_rows
    assert [b.row for c in chunks for b in c.bad_rows] == expected_bad


def test_header_only_csv_has_no_chunks(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b")
    assert list(read_table_file(path)) == []


def test_duplicate_column_name_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a, b ,b\n1,2,3\n")
    with pytest.raises(UnreadableFileError, match="duplicate column name 'b'"):
        list(read_table_file(path))


# --- json / jsonl -------------------------------------------------------------------------------


def test_jsonl_broken_lines_are_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    lines = ['{"id": "a", "x": 1.5, "attrs": {"k": 1}}', "", '{"id": "b", "x": ', "[1, 2]", '{"id": "007", "x": null}']
    path.write_text("\n".join(lines) + "\n")
    assert sniff_table_format(path) == "jsonl"
    frame, rows, bad = read_all(path)
    assert rows.tolist() == [1, 5]
    assert values(frame, "id") == ["a", "007"]
    assert values(frame, "x") == ["1.5", None]
    assert json.loads(frame["attrs"][0]) == {"k": 1}
    assert [b.row for b in bad] == [3, 4]
    assert "invalid JSON" in bad[0].error
    assert bad[1].error == "expected a JSON object, found array"


def test_json_array_with_non_object_element(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text('[\n {"id": "a", "n": 7, "ok": true},\n 42,\n {"id": "b", "n": 8, "ok": false}\n]')
    assert sniff_table_format(path) == "json"
    frame, rows, bad = read_all(path)
    assert rows.tolist() == [1, 3]
    assert values(frame, "n") == ["7", "8"]
    assert values(frame, "ok") == ["true", "false"]
    assert [(b.row, b.error) for b in bad] == [(2, "expected a JSON object, found number")]


def test_json_truncated_mid_way_raises(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text('[{"id": "a"}, {"id": ')
    with pytest.raises(UnreadableFileError, match="t.json"):
        list(read_table_file(path))


def test_single_json_object_is_not_a_table(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text('{\n  "id": "a",\n  "x": 1\n}\n')
    with pytest.raises(UnreadableFileError, match="single JSON object"):
        sniff_table_format(path)


# --- columnar formats ---------------------------------------------------------------------------


def assert_native_events(frame: pd.DataFrame, rows: np.ndarray) -> None:
    expected = events_frame()
    assert list(frame.columns) == list(expected.columns)
    assert frame["count"].tolist() == [0, 1, 2]
    assert frame["event_value"].tolist() == [0.5, 1.5, 2.5]
    assert list(frame["timestamp"]) == list(expected["timestamp"])
    assert rows.tolist() == [1, 2, 3]


def test_parquet_keeps_native_types(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    events_frame().to_parquet(path)
    assert sniff_table_format(path) == "parquet"
    assert_native_events(*read_all(path)[:2])


@pytest.mark.parametrize("kind", ["feather", "ipc_stream"])
def test_arrow_file_and_stream(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "t.arrow"
    table = pa.Table.from_pandas(events_frame(), preserve_index=False)
    if kind == "feather":
        feather.write_feather(table, path)
    else:
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=2)
    assert sniff_table_format(path) == "arrow"
    assert_native_events(*read_all(path)[:2])


def test_hdf5_compound_dataset(tmp_path: Path) -> None:
    path = tmp_path / "t.h5"
    records = pd.DataFrame({"id": [b"a", b"caf\xc3\xa9", b"c"], "value": [1.0, 2.0, 3.0]}).to_records(index=False)
    with h5py.File(path, "w") as f:
        f.create_dataset("events", data=records.astype([("id", "S8"), ("value", "f8")]))
    assert sniff_table_format(path) == "hdf5"
    frame, rows, _ = read_all(path, chunk_rows=2)
    assert values(frame, "id") == ["a", "café", "c"]
    assert frame["value"].tolist() == [1.0, 2.0, 3.0]
    assert rows.tolist() == [1, 2, 3]


def test_hdf5_group_of_columns(tmp_path: Path) -> None:
    path = tmp_path / "t.h5"
    with h5py.File(path, "w") as f:
        group = f.create_group("events")
        group.create_dataset("entity_id", data=["a", "b", "c"], dtype=h5py.string_dtype())
        group.create_dataset("event_value", data=np.array([0.5, 1.5, 2.5]))
    frame, rows, _ = read_all(path)
    assert values(frame, "entity_id") == ["a", "b", "c"]
    assert frame["event_value"].tolist() == [0.5, 1.5, 2.5]
    assert rows.tolist() == [1, 2, 3]


def test_hdf5_with_several_tables_names_them(tmp_path: Path) -> None:
    path = tmp_path / "t.h5"
    records = np.array([(1, 2.0)], dtype=[("a", "i8"), ("b", "f8")])
    with h5py.File(path, "w") as f:
        f.create_dataset("one", data=records)
        f.create_dataset("two", data=records)
    with pytest.raises(UnreadableFileError, match="/one, /two"):
        list(read_table_file(path))


def test_excel_rows_are_sheet_rows(tmp_path: Path) -> None:
    path = tmp_path / "t.xlsx"
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append([" id ", "when", "value"])
    sheet.append(["a", pd.Timestamp("2024-01-02 03:04:05").to_pydatetime(), 1.5])
    sheet.append([])
    sheet.append(["b", None, 2])
    sheet.append(["c", None, 3, "extra"])
    workbook.save(path)
    assert sniff_table_format(path) == "excel"
    frame, rows, bad = read_all(path)
    assert list(frame.columns) == ["id", "when", "value"]
    assert values(frame, "id") == ["a", "b"]
    assert frame["when"][0] == pd.Timestamp("2024-01-02 03:04:05")
    assert frame["value"].tolist() == [1.5, 2]
    assert rows.tolist() == [2, 4]
    assert [(b.row, b.error) for b in bad] == [(5, "expected 3 fields, found 4")]


# --- sniffing and unreadable files --------------------------------------------------------------


def test_sniffing_ignores_the_extension(tmp_path: Path) -> None:
    csv_named_parquet = tmp_path / "t.parquet"
    csv_named_parquet.write_text("id,v\na,1\n")
    parquet_named_csv = tmp_path / "t.csv"
    events_frame().to_parquet(parquet_named_csv)
    assert sniff_table_format(csv_named_parquet) == "csv"
    assert sniff_table_format(parquet_named_csv) == "parquet"
    assert values(read_all(csv_named_parquet)[0], "v") == ["1"]
    assert_native_events(*read_all(parquet_named_csv)[:2])


def test_explicit_format_overrides_sniffing(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("a\tb\n1,2\t3\n")
    frame, _, _ = read_all(path, format="tsv")
    assert values(frame, "a") == ["1,2"]
    frame, _, _ = read_all(path, format="csv")
    assert list(frame.columns) == ["a\tb"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b" \n\n", "empty file"),
        (bytes(range(16)), "not a table file \\(starts with bytes 00 01"),
        (b"PK\x03\x04junk", "corrupt zip"),
    ],
)
def test_unreadable_files_name_the_file(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "junk.csv"
    path.write_bytes(content)
    with pytest.raises(UnreadableFileError, match=f"junk.csv: cannot be read: {reason}"):
        list(read_table_file(path))


@pytest.mark.parametrize("fmt", [None, "parquet"])
def test_missing_file_is_unreadable(tmp_path: Path, fmt: str | None) -> None:
    with pytest.raises(UnreadableFileError, match="nothere.csv: cannot be read: no such file"):
        read_table_file(tmp_path / "nothere.csv", format=fmt)


def test_truncated_parquet_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cut.parquet"
    events_frame(1000).to_parquet(path)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(UnreadableFileError, match="cut.parquet"):
        list(read_table_file(path))


# --- chunking -----------------------------------------------------------------------------------


def write_2500(path: Path, fmt: str) -> None:
    """A 2,500-row table with an `n` column holding 0..2499, in format `fmt`."""
    frame = pd.DataFrame({"n": np.arange(2500), "s": [f"x{i}" for i in range(2500)]})
    if fmt in ("csv", "tsv"):
        frame.to_csv(path, index=False, sep="," if fmt == "csv" else "\t")
    elif fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif fmt == "json":
        frame.to_json(path, orient="records")
    elif fmt == "parquet":
        frame.to_parquet(path)
    elif fmt == "arrow":
        feather.write_feather(frame, path)
    elif fmt == "hdf5":
        with h5py.File(path, "w") as f:
            f.create_dataset("t", data=frame.to_records(index=False).astype([("n", "i8"), ("s", "S8")]))
    else:
        workbook = openpyxl.Workbook(write_only=True)
        sheet = workbook.create_sheet()
        sheet.append(list(frame.columns))
        for row in frame.itertuples(index=False):
            sheet.append(list(row))
        workbook.save(path)


@pytest.mark.parametrize("fmt", TABLE_FORMATS)
def test_chunks_are_bounded_contiguous_and_numbered(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "big.data"
    write_2500(path, fmt)
    assert sniff_table_format(path) == fmt
    chunks = list(read_table_file(path, chunk_rows=1000))
    assert len(chunks) >= 3
    assert all(0 < len(chunk.frame) <= 1000 for chunk in chunks)
    first_row = 2 if fmt in ("csv", "tsv", "excel") else 1
    rows = np.concatenate([chunk.rows for chunk in chunks])
    assert rows.tolist() == list(range(first_row, first_row + 2500))
    numbers = pd.concat([chunk.frame["n"] for chunk in chunks]).astype(int)
    assert numbers.tolist() == list(range(2500))

"""Tests for dmas.quality.tables: every reader format, pyarrow URIs, store table refs, bad and unreadable input."""

from __future__ import annotations

import functools
import pickle
from pathlib import Path

import h5py
import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pytest

from dmas.errors import StoreError, UnreadableFileError
from dmas.ingest.readers import TABLE_FORMATS, read_table_file
from dmas.ingest.tabular import ingest_table
from dmas.quality import tables
from dmas.quality.tables import load_table

ROWS = 300


def sample_frame() -> pd.DataFrame:
    """A small table with a whole-number, a float and a text column."""
    return pd.DataFrame({"n": np.arange(ROWS), "x": np.arange(ROWS) / 4, "s": [f"v{i % 7}" for i in range(ROWS)]})


def write_table(path: Path, fmt: str, frame: pd.DataFrame) -> Path:
    """`frame` written in reader format `fmt` (as tests/ingest/test_readers.py writes them)."""
    if fmt in ("csv", "tsv"):
        frame.to_csv(path, index=False, sep="," if fmt == "csv" else "\t")
    elif fmt == "json":
        frame.to_json(path, orient="records")
    elif fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif fmt == "parquet":
        frame.to_parquet(path)
    elif fmt == "arrow":
        feather.write_feather(frame, path)
    elif fmt == "hdf5":
        with h5py.File(path, "w") as f:
            f.create_dataset("t", data=frame.to_records(index=False).astype([("n", "i8"), ("x", "f8"), ("s", "S8")]))
    else:
        workbook = openpyxl.Workbook(write_only=True)
        sheet = workbook.create_sheet()
        sheet.append(list(frame.columns))
        for row in frame.itertuples(index=False):
            sheet.append(list(row))
        workbook.save(path)
    return path


@pytest.mark.parametrize("fmt", TABLE_FORMATS)
def test_every_reader_format_loads_whole(tmp_path: Path, fmt: str) -> None:
    path = write_table(tmp_path / "table.data", fmt, sample_frame())
    loaded = load_table(str(path))
    assert (loaded.format, loaded.rows, loaded.source, loaded.bad_rows) == (fmt, ROWS, str(path), ())
    assert sorted(loaded.table.column_names) == ["n", "s", "x"]
    numbers = pd.to_numeric(pd.Series(loaded.table["x"].to_pylist()))
    assert numbers.tolist() == (np.arange(ROWS) / 4).tolist()
    assert loaded.table["s"].to_pylist() == sample_frame()["s"].tolist()
    if fmt in ("csv", "tsv", "json", "jsonl"):  # text formats deliver strings; kind inference reads them
        assert pa.types.is_string(loaded.table["n"].type) or pa.types.is_large_string(loaded.table["n"].type)


def test_chunks_are_joined_in_file_order(tmp_path: Path) -> None:
    frame = pd.DataFrame({"n": np.arange(250_000)})
    path = write_table(tmp_path / "big.parquet", "parquet", frame)
    assert load_table(str(path)).table["n"].to_pylist() == list(range(250_000))


def test_bad_rows_are_listed_with_file_row_and_field(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n3\n4,5\n6,7,8\n")
    loaded = load_table(str(path))
    assert loaded.table["a"].to_pylist() == ["1", "4"]
    assert loaded.errors() == [
        {"file": str(path), "row": 3, "field": None, "error": "expected 2 fields, found 1"},
        {"file": str(path), "row": 5, "field": None, "error": "expected 2 fields, found 3"},
    ]


@pytest.mark.parametrize("chunk_rows", [None, 1])  # 1: the column is int, text and empty in different chunks
def test_a_spreadsheet_column_of_numbers_and_text_becomes_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               chunk_rows: int | None) -> None:
    if chunk_rows:
        monkeypatch.setattr(tables, "read_table_file", functools.partial(read_table_file, chunk_rows=chunk_rows))
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in (["code", "v"], [7, 1.5], ["x7", 2.5], [None, 3.5]):
        sheet.append(row)
    path = tmp_path / "mixed.xlsx"
    workbook.save(path)
    loaded = load_table(str(path))
    assert loaded.table["code"].to_pylist() == ["7", "x7", None]
    assert loaded.table["v"].to_pylist() == [1.5, 2.5, 3.5]


def test_pickled_hdf5_content_is_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"

    class Touch:
        def __reduce__(self):
            return (marker.touch, ())

    path = tmp_path / "t.h5"
    with h5py.File(path, "w") as f:
        group = f.create_group("t")
        group.create_dataset("blob", data=np.array([np.void(pickle.dumps(Touch()))] * 3))
        group.create_dataset("x", data=np.arange(3.0))
    loaded = load_table(str(path))
    assert pa.types.is_binary(loaded.table["blob"].type)  # raw bytes, left out later as unsupported
    assert not marker.exists()


# --- pyarrow URIs -------------------------------------------------------------------------------


def test_a_file_uri_reads_through_the_table_readers(tmp_path: Path) -> None:
    path = write_table(tmp_path / "t.xlsx", "excel", sample_frame())
    loaded = load_table(path.as_uri())
    assert (loaded.format, loaded.rows, loaded.source) == ("excel", ROWS, path.as_uri())


@pytest.mark.parametrize(("suffix", "fmt", "as_uri"), [(".parquet", "parquet", True), (".feather", "arrow", True),
                                                       (".csv", "csv", True), ("", "parquet", True),
                                                       (".parquet", "parquet", False)])
def test_a_folder_is_one_dataset_in_file_order(tmp_path: Path, suffix: str, fmt: str, as_uri: bool) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    frame = sample_frame()
    for part, rows in enumerate((slice(0, 100), slice(100, 300))):
        writer = "parquet" if suffix == "" else fmt  # no extension: the format is sniffed from the bytes
        write_table(folder / f"part-{part}{suffix}", writer, frame[rows].reset_index(drop=True))
    (folder / "_SUCCESS").write_text("")
    source = folder.as_uri() + "/" if as_uri else str(folder)
    loaded = load_table(source)
    assert (loaded.format, loaded.rows, loaded.source) == (fmt, ROWS, source)
    assert loaded.table["n"].to_pylist() == list(range(ROWS))


def test_a_folder_of_mixed_formats_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    write_table(folder / "a.parquet", "parquet", sample_frame())
    write_table(folder / "b.csv", "csv", sample_frame())
    with pytest.raises(UnreadableFileError, match="several formats"):
        load_table(folder.as_uri())


@pytest.mark.parametrize(("uri", "reason"), [("file:///no/such/place.parquet", "no such file"),
                                             ("nosuchscheme://bucket/t.parquet", "not a readable pyarrow URI")])
def test_an_unreadable_uri_is_named(uri: str, reason: str) -> None:
    with pytest.raises(UnreadableFileError, match=f"{uri}: cannot be read: {reason}"):
        load_table(uri)


# --- store tables -------------------------------------------------------------------------------


def test_store_tables_at_a_version_with_attributes_as_columns(store, write) -> None:
    first = ingest_table(store, "entities", write("e1.csv", 'entity_id,attributes\n'
                                                  'a,"{""x"": 1.5, ""color"": ""red""}"\n'
                                                  'b,"{""x"": 2, ""flag"": true}"\n'))
    second = ingest_table(store, "entities", write("e2.csv", 'entity_id,attributes\na,"{""x"": 9, ""y"": [1]}"\n'))
    old = load_table(f"entities@{first['version']}", store_uri=store.uri)
    assert (old.format, old.version, old.rows) == ("store", first["version"], 2)
    assert old.table.column_names == ["entity_id", "color", "flag", "x"]
    assert old.table["x"].to_pylist() == [1.5, 2.0]
    assert old.table["flag"].type == pa.bool_() and old.table["color"].to_pylist() == ["red", None]
    latest = load_table("entities", store_uri=store.uri)
    assert latest.version == second["version"]
    assert latest.table["x"].to_pylist() == [9.0, 2.0]
    assert latest.table["y"].to_pylist() == ["[1]", None]  # nested values as their JSON text


def test_a_missing_store_version_or_store_is_a_store_error(store, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no readable version 7"):
        load_table("events@7", store_uri=store.uri)
    with pytest.raises(StoreError, match="no store at"):
        load_table("events", store_uri=str(tmp_path / "nowhere"))


def test_an_empty_store_table_has_no_rows_to_check(store) -> None:
    with pytest.raises(UnreadableFileError, match="events@0: cannot be read: no rows to check"):
        load_table("events@0", store_uri=store.uri)


# --- unreadable input ---------------------------------------------------------------------------


def test_unreadable_files_are_named(tmp_path: Path) -> None:
    junk = tmp_path / "junk.csv"
    junk.write_bytes(bytes(range(16)))
    with pytest.raises(UnreadableFileError, match="junk.csv: cannot be read: not a table file"):
        load_table(str(junk))
    header_only = tmp_path / "header.csv"
    header_only.write_text("a,b\n")
    with pytest.raises(UnreadableFileError, match="header.csv: cannot be read: no rows to check"):
        load_table(str(header_only))
    only_bad = tmp_path / "bad.csv"
    only_bad.write_text("a,b\n1\n")
    with pytest.raises(UnreadableFileError, match=r"no rows to check \(1 bad rows skipped\)"):
        load_table(str(only_bad))


def test_a_name_that_is_neither_a_file_nor_a_table_says_so(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError, match="nothere.csv: cannot be read: no such file, and not a store"):
        load_table(str(tmp_path / "nothere.csv"))

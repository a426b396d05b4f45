"""The two inputs of a collapse check as Arrow tables: `load_table` (a file, a pyarrow URI, or a store table).

A source is, in this order: a local file in any format `dmas.ingest.readers` reads (sniffed from its
content); a local folder or a URI with a scheme (`file:///data/part/`, `s3://bucket/t.parquet`: a
Parquet, Arrow IPC or CSV/TSV file, or a folder of such files read as one pyarrow dataset; a local
file URI goes through the readers); or a store table at a version (`events@12`, or `entities` for
the latest). Text formats deliver strings, which stay strings here:
kind inference (`dmas.quality.columns`) decides what they mean. Rows a reader could not parse are
skipped and kept in `LoadedTable.bad_rows` with their row numbers, never dropped silently. Nothing is
unpickled: the readers refuse pickled content, and Arrow's own readers are used for URIs.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.dataset as ds
from pyarrow import fs as pafs

from dmas.config import load_settings
from dmas.errors import RowError, StoreError, UnreadableFileError
from dmas.ingest.readers import read_table_file, sniff_table_format
from dmas.store import Store
from dmas.store.location import StoreLocation
from dmas.store.schemas import TABLES

TABLE_REF = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:@(?P<version>\d+))?$")
_URI_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".arrow": "arrow", ".feather": "arrow", ".ipc": "arrow",
                 ".csv": "csv", ".tsv": "tsv"}
_HEAD_BYTES = 4096


@dataclass(frozen=True)
class LoadedTable:
    """One side of a check as read: the table, where it came from, and the rows that were skipped.

    `format` is the reader's name for the file format (csv, parquet, excel, ...) or "store";
    `version` is the store table version read (resolved when the latest was asked for), else None.
    """

    table: pa.Table
    source: str
    format: str
    bad_rows: tuple[RowError, ...] = ()
    version: int | None = None

    @property
    def rows(self) -> int:
        return self.table.num_rows

    def errors(self) -> list[dict[str, Any]]:
        """The skipped rows as `{file, row, field, error}`, row numbers as the user sees them in the file."""
        return [{"file": self.source, **bad.to_dict()} for bad in self.bad_rows]


def load_table(source: str, *, store_uri: str | None = None) -> LoadedTable:
    """Read `source` (a local file, a pyarrow URI, or a store table ref) into one Arrow table.

    `store_uri` is the store that table refs name (default: the configured `store_uri`). An input that
    cannot be read, or has no rows, raises `UnreadableFileError` naming it.
    """
    if Path(source).is_file():
        loaded = _load_file(Path(source), source)
    elif Path(source).is_dir():
        loaded = _load_dataset(pafs.LocalFileSystem(), str(Path(source).resolve()), source)
    elif "://" in source:
        loaded = _load_uri(source)
    elif (ref := TABLE_REF.match(source)) and ref["name"] in TABLES:
        loaded = _load_store_table(source, ref["name"], ref["version"], store_uri)
    else:
        tables = ", ".join(TABLES)
        raise UnreadableFileError(source, f"no such file, and not a store table ref (NAME or NAME@VERSION, "
                                          f"NAME one of {tables})")
    if loaded.rows == 0:
        raise UnreadableFileError(source, "no rows to check" + (f" ({len(loaded.bad_rows)} bad rows skipped)"
                                                                 if loaded.bad_rows else ""))
    return loaded


# --- local files --------------------------------------------------------------------------------


def _load_file(path: Path, source: str) -> LoadedTable:
    """Every chunk of a file joined into one table; the readers' bad rows are kept."""
    fmt = sniff_table_format(path)
    pieces, bad_rows = [], []
    for chunk in read_table_file(path, format=fmt):
        pieces.append(_arrow_table(chunk.frame))
        bad_rows.extend(chunk.bad_rows)
    return LoadedTable(_concat(pieces), source, fmt, tuple(bad_rows))


def _arrow_table(frame: pd.DataFrame) -> pa.Table:
    """A chunk as Arrow, column by column, with `_mixed_column` for what Arrow cannot type."""
    columns = {}
    for name in frame.columns:
        try:
            columns[name] = pa.array(frame[name], from_pandas=True)
        except pa.ArrowException:
            columns[name] = _mixed_column(frame[name])
    return pa.table(columns)


def _mixed_column(series: pd.Series) -> pa.Array:
    """Raw bytes (an HDF5 opaque column: kept as bytes, never unpickled) as binary; mixed Python types
    (a spreadsheet column holding numbers and text) as text, rather than failing the file."""
    values = [None if _missing(value) else value for value in series]
    if all(isinstance(value, (bytes, np.void)) for value in values if value is not None):
        return pa.array([None if value is None else bytes(value) for value in values], pa.binary())
    return pa.array([None if value is None else str(value) for value in values], pa.string())


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value)


def _concat(pieces: list[pa.Table]) -> pa.Table:
    """Chunks joined; a column whose chunks disagree on a type that cannot be promoted becomes text."""
    if not pieces:
        return pa.table({})
    try:
        return pa.concat_tables(pieces, promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        names = pieces[0].column_names
        mixed = {name for name in names if len({str(piece.schema.field(name).type) for piece in pieces
                                                if not pa.types.is_null(piece.schema.field(name).type)}) > 1}
        texts = [piece.select(names) for piece in pieces]
        texts = [pa.table({name: pc.cast(piece[name], pa.string()) if name in mixed else piece[name]
                           for name in names}) for piece in texts]
        return pa.concat_tables(texts, promote_options="permissive")


# --- pyarrow URIs -------------------------------------------------------------------------------


def _load_uri(source: str) -> LoadedTable:
    """A file or folder on any pyarrow filesystem; a local file goes through the table readers."""
    try:
        filesystem, path = pafs.FileSystem.from_uri(source)
        info = filesystem.get_file_info(path)
    except (pa.ArrowException, OSError, ValueError) as e:
        raise UnreadableFileError(source, f"not a readable pyarrow URI: {e}") from e
    if info.type == pafs.FileType.NotFound:
        raise UnreadableFileError(source, "no such file or folder")
    if info.type == pafs.FileType.File and isinstance(filesystem, pafs.LocalFileSystem):
        return _load_file(Path(path), source)
    return _load_dataset(filesystem, path, source)


def _load_dataset(filesystem: pafs.FileSystem, path: str, source: str) -> LoadedTable:
    """A file or a folder of files of one format, read as one pyarrow dataset (files in sorted order)."""
    is_file = filesystem.get_file_info(path).type == pafs.FileType.File
    files = [path] if is_file else _dataset_files(filesystem, path, source)
    fmt = _uri_format(filesystem, files, source)
    try:
        table = ds.dataset(files, filesystem=filesystem, format=_dataset_format(fmt)).to_table()
    except (pa.ArrowException, OSError) as e:
        raise UnreadableFileError(source, f"unreadable {fmt} data: {e}") from e
    return LoadedTable(table.replace_schema_metadata(None), source, fmt)


def _dataset_files(filesystem: pafs.FileSystem, folder: str, source: str) -> list[str]:
    """The data files under a folder, sorted; hidden and `_`-prefixed files (markers, metadata) skipped."""
    selector = pafs.FileSelector(folder, recursive=True)
    files = sorted(info.path for info in filesystem.get_file_info(selector) if info.type == pafs.FileType.File
                   and not posixpath.basename(info.path).startswith((".", "_")))
    if not files:
        raise UnreadableFileError(source, "a folder without data files")
    return files


def _uri_format(filesystem: pafs.FileSystem, files: list[str], source: str) -> str:
    """The one format of these files: from their extensions, else from the first file's leading bytes."""
    named = {_URI_SUFFIXES.get(posixpath.splitext(name)[1].lower()) for name in files}
    if len(named) > 1:
        raise UnreadableFileError(source, f"files of several formats ({', '.join(sorted(map(str, named)))}); "
                                          "keep one format per folder")
    fmt = named.pop()
    if fmt is not None:
        return fmt
    with filesystem.open_input_stream(files[0]) as stream:
        head = stream.read(_HEAD_BYTES)
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith((b"ARROW1", b"\xff\xff\xff\xff")):
        return "arrow"
    header = head.split(b"\n", 1)[0]
    return "tsv" if header.count(b"\t") > header.count(b",") else "csv"


def _dataset_format(fmt: str) -> ds.FileFormat:
    if fmt == "parquet":
        return ds.ParquetFileFormat()
    if fmt == "arrow":
        return ds.IpcFileFormat()
    return ds.CsvFileFormat(parse_options=pa_csv.ParseOptions(delimiter="\t" if fmt == "tsv" else ","))


# --- store tables -------------------------------------------------------------------------------


def _load_store_table(source: str, name: str, version: str | None, store_uri: str | None) -> LoadedTable:
    """A store table at a version (the latest when none is given), `entities` with one column per attribute."""
    uri = store_uri if store_uri is not None else load_settings().store_uri
    location = StoreLocation.parse(uri)
    if location.is_local and not Path(location.path("tables")).is_dir():
        raise StoreError(f"{source}: no store at {location.uri} (set DMAS_STORE_URI or pass the store's URI)")
    table = Store(uri).table(name)
    number = int(version) if version is not None else table.version()
    read = table.read(version=number)
    if name == "entities":
        read = expand_attributes(read)
    return LoadedTable(read.replace_schema_metadata(None), source, "store", version=number)


def expand_attributes(entities: pa.Table) -> pa.Table:
    """`entity_id` and one column per key of the `attributes` JSON objects (keys sorted).

    A key whose values are all numbers becomes float64, all booleans bool, otherwise text (other
    values as their JSON). A key named like another column is prefixed `attributes.`.
    """
    objects = [json.loads(text) for text in entities["attributes"].to_pylist()]
    keys = sorted({key for attributes in objects for key in attributes})
    others = [name for name in entities.column_names if name != "attributes"]
    columns = {name: entities[name] for name in others}
    for key in keys:
        values = [attributes.get(key) for attributes in objects]
        columns[f"attributes.{key}" if key in others else key] = _attribute_column(values)
    return pa.table(columns)


def _attribute_column(values: list[Any]) -> pa.Array:
    present = [value for value in values if value is not None]
    if present and all(isinstance(value, bool) for value in present):
        return pa.array(values, pa.bool_())
    if all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in present):
        return pa.array(values, pa.float64())
    return pa.array([value if value is None or isinstance(value, str) else json.dumps(value, sort_keys=True)
                     for value in values], pa.string())

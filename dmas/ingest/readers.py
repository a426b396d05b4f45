"""Stream table files of any supported format in bounded chunks, numbered as the user sees them.

A 1,000,000-row file is never held whole in memory: every reader yields `Chunk`s of at most
`chunk_rows` records. Each record carries the row number the user sees in the source file (the
line of a CSV, the element of a JSON array, the spreadsheet row), so validation downstream can
name it. Text formats deliver every value as `str` (a missing or empty value as None/NaN) and
leave conversion to validation; columnar formats keep their native types.
"""

from __future__ import annotations

import codecs
import csv
import json
import logging
import os
import re
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import ijson
import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from dmas.errors import ConfigError, RowError, UnreadableFileError

logger = logging.getLogger(__name__)

TABLE_FORMATS = ("csv", "tsv", "json", "jsonl", "parquet", "arrow", "hdf5", "excel")

_HEAD_BYTES = 64 * 1024
_MIN_CSV_BLOCK_BYTES = 1 << 20
_MAX_CSV_BLOCK_BYTES = 1 << 28  # pyarrow's block size is a 32-bit int; stay well under it
_UTF8_BOM = codecs.BOM_UTF8
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_HDF5_MAGIC_OFFSETS = (0, 512, 1024, 2048)  # HDF5 allows a user block before the superblock
_ARROW_FILE_MAGIC = b"ARROW1"
_ARROW_STREAM_MAGIC = b"\xff\xff\xff\xff"
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")
_LINE_BREAK = r"\r\n|\r|\n"  # the line ends pyarrow's CSV parser accepts
_SAVE_AS_UTF8 = "save the file as UTF-8 (in Excel: 'CSV UTF-8')"


@dataclass(frozen=True, eq=False)
class Chunk:
    """A stretch of a table file: its parsed records and the rows that could not be parsed."""

    frame: pd.DataFrame
    rows: np.ndarray
    bad_rows: tuple[RowError, ...] = ()

    def __post_init__(self) -> None:
        if len(self.rows) != len(self.frame):
            raise ValueError(f"{len(self.rows)} row numbers for {len(self.frame)} records")


def sniff_table_format(path: str | os.PathLike) -> str:
    """Tell the table format of a file from its content, whatever its extension says."""
    head = _read_head(path)
    if not head:
        raise UnreadableFileError(str(path), "empty file")
    return _sniff_binary(path, head) or _sniff_text(path, head)


def read_table_file(path: str | os.PathLike, chunk_rows: int = 100_000, format: str | None = None) -> Iterator[Chunk]:
    """Stream a table file as `Chunk`s of at most `chunk_rows` records.

    The format is sniffed from the content unless `format` names one of `TABLE_FORMATS`; a file
    whose format cannot be told raises `UnreadableFileError` here, and one whose content turns
    out to be unreadable (bad header, corrupt or truncated data) raises it while iterating.
    """
    if chunk_rows < 1:
        raise ConfigError(f"chunk_rows: must be at least 1, got {chunk_rows}")
    if format is not None and format not in TABLE_FORMATS:
        raise ConfigError(f"format: unknown table format '{format}'; expected one of {TABLE_FORMATS}")
    path = Path(path)
    if not path.is_file():
        raise UnreadableFileError(str(path), "no such file")
    fmt = format or sniff_table_format(path)
    logger.debug("reading table file", extra={"file": str(path), "format": fmt})
    return _READERS[fmt](path, chunk_rows)


# --- sniffing -----------------------------------------------------------------------------------


def _read_head(path: str | os.PathLike) -> bytes:
    """The first bytes of a file, with OS errors turned into a message naming the file."""
    try:
        with open(path, "rb") as f:
            return f.read(_HEAD_BYTES)
    except OSError as e:
        raise UnreadableFileError(str(path), e.strerror or str(e)) from e


def _sniff_binary(path: str | os.PathLike, head: bytes) -> str | None:
    """The binary format named by the file's magic bytes, or None for anything else."""
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith((_ARROW_FILE_MAGIC, _ARROW_STREAM_MAGIC)):
        return "arrow"
    if any(head[offset:].startswith(_HDF5_MAGIC) for offset in _HDF5_MAGIC_OFFSETS):
        return "hdf5"
    if head.startswith(b"PK\x03\x04"):
        if _is_xlsx(path):
            return "excel"
        raise UnreadableFileError(str(path), "a zip archive, not an Excel workbook (.xlsx)")
    if head.startswith(_OLE2_MAGIC):
        raise UnreadableFileError(str(path), "a legacy .xls workbook; save it as .xlsx")
    return None


def _is_xlsx(path: str | os.PathLike) -> bool:
    """Whether a zip archive holds an Excel workbook (its parts live under `xl/`)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.startswith("xl/") for name in archive.namelist())
    except zipfile.BadZipFile as e:
        raise UnreadableFileError(str(path), f"corrupt zip archive: {e}") from e


def _sniff_text(path: str | os.PathLike, head: bytes) -> str:
    """json, jsonl, csv or tsv, from the first character and the header line of UTF-8 text."""
    text = _decode_head(path, head)
    start = text.lstrip()
    if not start:
        raise UnreadableFileError(str(path), "empty file (only whitespace)")
    if start[0] == "[":
        return "json"
    if start[0] == "{":
        return _sniff_jsonl(path)
    header = re.split(_LINE_BREAK, text, maxsplit=1)[0]
    return "tsv" if header.count("\t") > header.count(",") else "csv"


def _decode_head(path: str | os.PathLike, head: bytes) -> str:
    """The head of a text file without its BOM; binary junk is refused with its first bytes, text in
    another encoding (UTF-16, or Latin-1 and Windows-1252 from older spreadsheets) with where it
    stops being UTF-8, and text holding a NUL byte (a corrupt or zero-padded file) with where it is."""
    head = head.removeprefix(_UTF8_BOM)
    if _is_utf16(head):
        raise UnreadableFileError(str(path), f"UTF-16 text, not UTF-8; {_SAVE_AS_UTF8}")
    control = _CONTROL_BYTES.search(head)
    if control and control.group() == b"\x00" and control.start() > 0:  # text up to there: a stray NUL
        raise UnreadableFileError(str(path), f"NUL byte at {_line_and_column(head, control.start())}")
    if control:
        shown = " ".join(f"{b:02x}" for b in head[:8])
        raise UnreadableFileError(str(path), f"not a table file (starts with bytes {shown} …)")
    try:
        return codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError as e:
        raise UnreadableFileError(
            str(path), f"not UTF-8 text: byte {head[e.start]:#04x} at {_line_and_column(head, e.start)}; "
                       f"{_SAVE_AS_UTF8}") from None


def _is_utf16(head: bytes) -> bool:
    """A UTF-16 byte order mark, or ASCII text as UTF-16 (every other byte of the first 64 is NUL)."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return True
    start = head[:64]
    return len(start) >= 8 and (not any(start[1::2]) or not any(start[0::2]))


def _line_and_column(head: bytes, position: int) -> str:
    """'line L, column C' of a byte offset, the column counted in characters."""
    before = head[:position]
    line = before.count(b"\n") + 1
    column = len(before[before.rfind(b"\n") + 1:].decode("utf-8", errors="replace")) + 1
    return f"line {line}, column {column}"


def _sniff_jsonl(path: str | os.PathLike) -> str:
    """jsonl when the first non-blank line is a whole JSON object; refuse a lone JSON document."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            is_object = isinstance(json.loads(next(line for line in f if line.strip())), dict)
    except (json.JSONDecodeError, UnicodeDecodeError):
        is_object = False
    if not is_object:
        raise UnreadableFileError(
            str(path),
            "a single JSON object, not a table: give a JSON array of objects or JSON Lines (one object per line)",
        )
    return "jsonl"


# --- shared -------------------------------------------------------------------------------------


def _clean_names(path: Path, names: list[Any]) -> list[str]:
    """Column names stripped of surrounding whitespace; a duplicated name makes the file unusable."""
    cleaned = [str(name).strip() for name in names]
    seen: set[str] = set()
    for name in cleaned:
        if name in seen:
            raise UnreadableFileError(str(path), f"duplicate column name '{name}'")
        seen.add(name)
    return cleaned


def _chunk(path: Path, frame: pd.DataFrame, rows: np.ndarray, bad_rows: Sequence[RowError] = ()) -> Chunk:
    """A Chunk with clean column names and a fresh 0..n-1 index."""
    frame.columns = _clean_names(path, list(frame.columns))
    return Chunk(frame.reset_index(drop=True), np.asarray(rows, dtype=np.int64), tuple(bad_rows))


_Parsed = tuple[int, Any] | RowError  # (row number, record) or the reason a row was skipped


def _group_chunks(
    path: Path, parsed: Iterator[_Parsed], chunk_rows: int, columns: list[str] | None = None
) -> Iterator[Chunk]:
    """Chunks of at most `chunk_rows` parsed records and bad rows, from a record-by-record parser."""
    records: list[Any] = []
    rows: list[int] = []
    bad: list[RowError] = []
    for item in parsed:
        if isinstance(item, RowError):
            bad.append(item)
        else:
            rows.append(item[0])
            records.append(item[1])
        if len(records) + len(bad) >= chunk_rows:
            yield _chunk(path, pd.DataFrame(records, columns=columns), np.array(rows), bad)
            records, rows, bad = [], [], []
    if records or bad:
        yield _chunk(path, pd.DataFrame(records, columns=columns), np.array(rows), bad)


def _record_range(start: int, count: int) -> np.ndarray:
    """1-based record numbers `start + 1 .. start + count` of a columnar chunk."""
    return np.arange(start + 1, start + count + 1, dtype=np.int64)


def _arrow_frame(batch: pa.RecordBatch) -> pd.DataFrame:
    """An Arrow batch as pandas; a named pandas index saved in the file comes back as a column."""
    frame = batch.to_pandas()
    named = any(name is not None for name in frame.index.names)
    return frame.reset_index(drop=not named)


def _text_value(value: Any) -> str | None:
    """A JSON value as the text validation expects: strings as they are, the rest as JSON."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for error messages."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


# --- csv / tsv ----------------------------------------------------------------------------------


class _LineNumbering:
    """Maps records parsed by pyarrow to the file line on which each one starts.

    pyarrow numbers records from 1 (each skipped header line and each blank line counts), not
    physical lines, and reports skipped invalid records only through its handler. This places each
    batch's records among the invalid ones and adds the line breaks inside quoted values of earlier
    records.
    """

    def __init__(self, header_lines: int):
        self.invalid: list[pa_csv.InvalidRow] = []
        self._next_record = header_lines + 1
        self._extra_lines = 0

    def keep_invalid(self, row: pa_csv.InvalidRow) -> str:
        """pyarrow's invalid_row_handler: remember the record and skip it."""
        self.invalid.append(row)
        return "skip"

    def place(self, newlines: np.ndarray, final: bool) -> tuple[np.ndarray, list[RowError]]:
        """Lines of the next `len(newlines)` valid records, and the invalid records among them.

        `newlines` counts the line breaks inside each record's values; `final` also places the
        invalid records after the last valid one.
        """
        pending = self.invalid
        numbers = np.fromiter((row.number for row in pending), np.int64, len(pending))
        valid_count = len(newlines)
        # where each invalid record sits counted among valid records only
        slots = numbers - self._next_record - np.arange(len(pending))
        placed = len(pending) if final else int(np.searchsorted(slots, valid_count - 1, "right"))
        total = valid_count + placed
        invalid_at = numbers[:placed] - self._next_record
        is_valid = np.ones(total, dtype=bool)
        is_valid[invalid_at] = False
        spans = np.ones(total, dtype=np.int64)
        spans[is_valid] += newlines
        spans[invalid_at] += np.fromiter((_line_breaks(row.text) for row in pending[:placed]), np.int64, placed)
        first_lines = self._next_record + self._extra_lines + np.cumsum(spans) - spans
        bad = [
            RowError(int(line), None, f"expected {row.expected_columns} fields, found {row.actual_columns}")
            for row, line in zip(pending[:placed], first_lines[invalid_at])
            if row.text.strip()
        ]
        del self.invalid[:placed]
        self._next_record += total
        self._extra_lines += int(spans.sum()) - total
        return first_lines[is_valid], bad


def _line_breaks(text: str) -> int:
    """Line breaks in a text, each of CRLF, CR and LF counting once."""
    return len(re.findall(_LINE_BREAK, text))


def _read_header(path: Path, delimiter: str) -> tuple[list[str], int, bool]:
    """The column names of a delimited file, the lines its header spans, and whether more follows."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            header = next(csv.reader(iter(f.readline, ""), delimiter=delimiter), None)
            more = f.read(1) != ""
    except (UnicodeDecodeError, csv.Error) as e:
        raise UnreadableFileError(str(path), f"unreadable header line: {e}") from e
    if not header:
        raise UnreadableFileError(str(path), "no header: the first line must name the columns")
    return _clean_names(path, header), 1 + sum(_line_breaks(name) for name in header), more


def _csv_block_bytes(path: Path, chunk_rows: int) -> int:
    """A pyarrow block size expected to hold a little under `chunk_rows` lines of this file.

    Batches over `chunk_rows` are split, so aiming a little under spares most splits.
    """
    head = _read_head(path)
    bytes_per_line = len(head) / max(head.count(b"\n"), head.count(b"\r"), 1)
    return int(np.clip(0.9 * bytes_per_line * chunk_rows, _MIN_CSV_BLOCK_BYTES, _MAX_CSV_BLOCK_BYTES))


def _open_csv(
    path: Path, width: int, header_lines: int, delimiter: str, block_bytes: int, numbering: _LineNumbering
) -> pa_csv.CSVStreamingReader:
    """A streaming pyarrow CSV reader after the header, every column as strings, empty cells null."""
    keys = [str(i) for i in range(width)]
    return pa_csv.open_csv(
        path,
        read_options=pa_csv.ReadOptions(
            use_threads=False,  # serial parsing: only then does pyarrow number invalid rows
            block_size=block_bytes,
            column_names=keys,
            skip_rows=header_lines,  # physical lines, blind to quotes
        ),
        parse_options=pa_csv.ParseOptions(
            delimiter=delimiter,
            newlines_in_values=True,
            ignore_empty_lines=False,  # keeps blank lines in pyarrow's record count
            invalid_row_handler=numbering.keep_invalid,
        ),
        convert_options=pa_csv.ConvertOptions(
            column_types=dict.fromkeys(keys, pa.string()),
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    )


def _embedded_newlines(batch: pa.RecordBatch) -> np.ndarray:
    """Line breaks inside each record's values; a quick byte scan spares the count when none."""
    counts = np.zeros(batch.num_rows, dtype=np.int64)
    for column in batch.columns:
        data = column.buffers()[2]
        raw = b"" if data is None else data.to_pybytes()
        if b"\n" in raw or b"\r" in raw:
            counts += pc.count_substring_regex(column, _LINE_BREAK).fill_null(0).to_numpy()
    return counts


def _blank_records(batch: pa.RecordBatch) -> np.ndarray:
    """Records whose fields are all empty: blank lines, which are skipped."""
    if not all(column.null_count for column in batch.columns):
        return np.zeros(batch.num_rows, dtype=bool)  # a column without nulls: no record is blank
    blank = np.ones(batch.num_rows, dtype=bool)
    for column in batch.columns:
        blank &= column.is_null().to_numpy(zero_copy_only=False)
    return blank


def _csv_chunk(
    path: Path, batch: pa.RecordBatch, newlines: np.ndarray, names: list[str], numbering: _LineNumbering
) -> Chunk:
    """One batch of string columns as a Chunk, blank lines dropped, numbered by file line."""
    lines, bad = numbering.place(newlines, final=False)
    _refuse_nul_bytes(path, batch, lines, names)
    blank = _blank_records(batch)
    if blank.any():
        batch = batch.filter(pa.array(~blank))
        lines = lines[~blank]
    frame = batch.to_pandas()
    frame.columns = names
    return _chunk(path, frame, lines, bad)


def _refuse_nul_bytes(path: Path, batch: pa.RecordBatch, lines: np.ndarray, names: list[str]) -> None:
    """A NUL byte past the sniffed head fails the file like one inside it, naming line and field."""
    for name, column in zip(names, batch.columns):
        data = column.buffers()[2]
        if data is None or (np.frombuffer(data, dtype=np.uint8) != 0).all():  # a slice shares its batch's buffer
            continue
        found = np.flatnonzero(pc.match_substring(column, "\x00").fill_null(False).to_numpy(zero_copy_only=False))
        if len(found):
            raise UnreadableFileError(str(path), f"NUL byte at line {lines[found[0]]} in field '{name}'")


def _read_delimited(path: Path, chunk_rows: int, delimiter: str) -> Iterator[Chunk]:
    """Stream a delimited text file with pyarrow, catching wrong-width records as bad rows."""
    names, header_lines, more = _read_header(path, delimiter)
    if not more:
        return
    numbering = _LineNumbering(header_lines)
    try:
        block_bytes = _csv_block_bytes(path, chunk_rows)
        reader = _open_csv(path, len(names), header_lines, delimiter, block_bytes, numbering)
        for batch in reader:
            newlines = _embedded_newlines(batch)
            for offset in range(0, batch.num_rows, chunk_rows):
                piece = batch.slice(offset, chunk_rows)
                yield _csv_chunk(path, piece, newlines[offset : offset + chunk_rows], names, numbering)
    except pa.ArrowException as e:
        raise UnreadableFileError(str(path), str(e)) from e
    _, bad = numbering.place(np.zeros(0, dtype=np.int64), final=True)
    if bad:
        yield _chunk(path, pd.DataFrame(columns=names), np.zeros(0), bad)


def _read_csv(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    """Comma- or semicolon-separated values; see `_read_delimited`."""
    return _read_delimited(path, chunk_rows, _csv_delimiter(path))


def _csv_delimiter(path: Path) -> str:
    """';' when the header line has more semicolons than commas (spreadsheets in locales with a
    decimal comma write those), else ','. Only the column names decide, never the values."""
    header = re.split(_LINE_BREAK, _decode_head(path, _read_head(path)), maxsplit=1)[0]
    return ";" if header.count(";") > header.count(",") else ","


def _read_tsv(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    """Tab-separated values; see `_read_delimited`."""
    return _read_delimited(path, chunk_rows, "\t")


# --- json / jsonl -------------------------------------------------------------------------------


def _json_record(number: int, value: Any) -> _Parsed:
    """A parsed JSON value as a record of text values, or a bad row when it is not an object."""
    if not isinstance(value, dict):
        return RowError(number, None, f"expected a JSON object, found {_json_type(value)}")
    return number, {key: _text_value(v) for key, v in value.items()}


def _jsonl_records(path: Path) -> Iterator[_Parsed]:
    """The objects of a JSON Lines file by line number; blank lines are skipped but counted."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    yield _json_record(number, json.loads(line))
                except json.JSONDecodeError as e:
                    yield RowError(number, None, f"invalid JSON: {e.msg} (column {e.colno})")
    except UnicodeDecodeError as e:
        raise UnreadableFileError(str(path), f"not UTF-8 text: {e}") from e


def _json_array_records(path: Path) -> Iterator[_Parsed]:
    """The elements of a top-level JSON array, streamed with ijson, by 1-based index."""
    if _decode_head(path, _read_head(path)).lstrip()[:1] != "[":
        raise UnreadableFileError(str(path), "JSON tables must be a top-level array of objects")
    number = 0
    with open(path, "rb") as f:
        if f.read(len(_UTF8_BOM)) != _UTF8_BOM:
            f.seek(0)
        try:
            for number, value in enumerate(ijson.items(f, "item", use_float=True), start=1):
                yield _json_record(number, value)
        except ijson.JSONError as e:
            raise UnreadableFileError(str(path), f"invalid JSON after element {number}: {e}") from e


def _read_jsonl(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    """JSON Lines; rows are line numbers."""
    return _group_chunks(path, _jsonl_records(path), chunk_rows)


def _read_json(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    """A JSON array of objects; rows are 1-based element indexes."""
    return _group_chunks(path, _json_array_records(path), chunk_rows)


# --- parquet / arrow ----------------------------------------------------------------------------


def _read_parquet(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    """Parquet, batch by batch with native types; rows are 1-based record indexes."""
    try:
        parquet = pq.ParquetFile(path)
        start = 0
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            yield _chunk(path, _arrow_frame(batch), _record_range(start, batch.num_rows))
            start += batch.num_rows
    except (pa.ArrowException, OSError) as e:
        raise UnreadableFileError(str(path), f"corrupt or truncated Parquet: {e}") from e


def _ipc_batches(source: pa.MemoryMappedFile) -> Iterator[pa.RecordBatch]:
    """The record batches of an Arrow IPC file (random access) or stream."""
    is_file = source.read(len(_ARROW_FILE_MAGIC)) == _ARROW_FILE_MAGIC
    source.seek(0)
    if not is_file:
        yield from pa.ipc.open_stream(source)
        return
    reader = pa.ipc.open_file(source)
    for index in range(reader.num_record_batches):
        yield reader.get_batch(index)


def _read_arrow(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    """Arrow IPC file (Feather v2) or stream, memory-mapped; rows are 1-based record indexes."""
    try:
        with pa.memory_map(str(path)) as source:
            start = 0
            for batch in _ipc_batches(source):
                for offset in range(0, batch.num_rows, chunk_rows):
                    piece = batch.slice(offset, chunk_rows)
                    yield _chunk(path, _arrow_frame(piece), _record_range(start, piece.num_rows))
                    start += piece.num_rows
    except (pa.ArrowException, OSError) as e:
        raise UnreadableFileError(str(path), f"corrupt or truncated Arrow IPC data: {e}") from e


# --- hdf5 ---------------------------------------------------------------------------------------


def _is_column_group(group: h5py.Group) -> bool:
    """Whether a group holds only equal-length 1-D plain datasets, one per column."""
    members = list(group.values())
    return bool(members) and all(
        isinstance(m, h5py.Dataset) and m.ndim == 1 and m.dtype.names is None and len(m) == len(members[0])
        for m in members
    )


def _hdf5_tables(file: h5py.File) -> list[h5py.Dataset | h5py.Group]:
    """Every table-like object: 1-D compound datasets and groups of column datasets."""
    found = [file] if _is_column_group(file) else []

    def visit(_: str, obj: h5py.Dataset | h5py.Group) -> None:
        is_compound = isinstance(obj, h5py.Dataset) and obj.ndim == 1 and obj.dtype.names is not None
        if is_compound or (isinstance(obj, h5py.Group) and _is_column_group(obj)):
            found.append(obj)

    file.visititems(visit)
    return found


def _hdf5_table(path: Path, file: h5py.File) -> h5py.Dataset | h5py.Group:
    """The single table in an HDF5 file; none or several make the file ambiguous."""
    tables = _hdf5_tables(file)
    if not tables:
        raise UnreadableFileError(
            str(path), "no table found: expected a compound dataset or a group of equal-length 1-D datasets"
        )
    if len(tables) > 1:
        names = ", ".join(table.name for table in tables)
        raise UnreadableFileError(str(path), f"several tables found ({names}); keep one table per file")
    table = tables[0]
    if isinstance(table, h5py.Dataset):
        for name in table.dtype.names:
            if table.dtype[name].shape:
                raise UnreadableFileError(
                    str(path), f"field '{name}' of {table.name} is not a scalar column ({table.dtype[name]})"
                )
    return table


def _hdf5_column(values: np.ndarray, dtype: np.dtype) -> np.ndarray | pd.Series:
    """One column slice, with HDF5 byte strings decoded as UTF-8."""
    if h5py.check_string_dtype(dtype) is None:
        return values
    return pd.Series(values, dtype=object).str.decode("utf-8")


def _hdf5_slice(table: h5py.Dataset | h5py.Group, start: int, stop: int) -> pd.DataFrame:
    """Records `start:stop` of a compound dataset or a column group."""
    if isinstance(table, h5py.Dataset):
        records = table[start:stop]
        return pd.DataFrame({name: _hdf5_column(records[name], table.dtype[name]) for name in table.dtype.names})
    return pd.DataFrame({name: _hdf5_column(ds[start:stop], ds.dtype) for name, ds in table.items()})


def _read_hdf5(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    """HDF5 through h5py, in slices of `chunk_rows`; rows are 1-based record indexes."""
    try:
        with h5py.File(path, "r") as file:
            table = _hdf5_table(path, file)
            length = len(table) if isinstance(table, h5py.Dataset) else len(next(iter(table.values())))
            for start in range(0, length, chunk_rows):
                frame = _hdf5_slice(table, start, min(start + chunk_rows, length))
                yield _chunk(path, frame, _record_range(start, len(frame)))
    except (OSError, UnicodeDecodeError) as e:
        raise UnreadableFileError(str(path), f"unreadable HDF5: {e}") from e


# --- excel --------------------------------------------------------------------------------------


def _trim(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """A spreadsheet row without its trailing empty cells."""
    end = len(values)
    while end and values[end - 1] is None:
        end -= 1
    return values[:end]


def _excel_records(sheet_rows: Iterator[tuple[Any, ...]], width: int) -> Iterator[_Parsed]:
    """Spreadsheet rows 2.. padded to the header's width; empty rows are skipped but counted."""
    for number, values in enumerate(sheet_rows, start=2):
        values = _trim(values)
        if len(values) > width:
            yield RowError(number, None, f"expected {width} fields, found {len(values)}")
        elif values:
            yield number, values + (None,) * (width - len(values))


def _read_excel(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    """The first worksheet of an .xlsx workbook; header in row 1, rows numbered as in the sheet."""
    with open(path, "rb") as f:  # a file object: openpyxl refuses paths without an Excel extension
        try:
            workbook = openpyxl.load_workbook(f, read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
            raise UnreadableFileError(str(path), f"unreadable Excel workbook: {e}") from e
        try:
            sheet_rows = workbook.worksheets[0].iter_rows(values_only=True)
            header = _trim(next(sheet_rows, ()))
            if not header:
                raise UnreadableFileError(str(path), "no header: row 1 of the first sheet must name the columns")
            names = _clean_names(path, ["" if name is None else name for name in header])
            yield from _group_chunks(path, _excel_records(sheet_rows, len(names)), chunk_rows, names)
        finally:
            workbook.close()


_READERS: dict[str, Callable[[Path, int], Iterator[Chunk]]] = {
    "csv": _read_csv,
    "tsv": _read_tsv,
    "json": _read_json,
    "jsonl": _read_jsonl,
    "parquet": _read_parquet,
    "arrow": _read_arrow,
    "hdf5": _read_hdf5,
    "excel": _read_excel,
}

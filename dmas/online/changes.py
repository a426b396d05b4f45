"""What one Delta commit changed, read from its log entry and data files (no change feed needed).

A commit adds and removes whole data files: an upsert rewrites the files holding matched rows, a
delete rewrites the files holding deleted rows. Rows of the added files that the removed files
lack are inserts; rows of the removed files that the added files lack (by key) are deletes; rows
in both under the same key may carry new values. The cost is that of the files the commit touched,
never that of the table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from dmas.store.schemas import TableSpec


class RebuildNeeded(Exception):
    """The view rebuilds instead of absorbing a commit: its log entry or a removed file is gone (log
    cleanup, `forget --purge`), or it is a bulk load."""


@dataclass(frozen=True)
class TableChange:
    """Rows a commit wrote (`written`: inserts and new values of updated rows) and keys it deleted."""

    written: pa.Table
    deleted: pa.Table


def latest_version(filesystem: pafs.FileSystem, table_path: str, known: int) -> int:
    """The newest committed version at or after `known`, probing the log's next entries (cheap: no listing)."""
    version = known
    while filesystem.get_file_info(_log_entry(table_path, version + 1)).type != pafs.FileType.NotFound:
        version += 1
    return version


def commit_change(filesystem: pafs.FileSystem, table_path: str, spec: TableSpec, version: int,
                  columns: list[str]) -> TableChange:
    """What commit `version` of the table did to `columns` (which must include the key)."""
    try:
        with filesystem.open_input_stream(_log_entry(table_path, version)) as stream:
            actions = [json.loads(line) for line in stream.read().decode().splitlines() if line.strip()]
    except FileNotFoundError:
        raise RebuildNeeded(f"{table_path}: log entry {version} is gone") from None
    added = [unquote(action["add"]["path"]) for action in actions if "add" in action]
    removed = [unquote(action["remove"]["path"]) for action in actions if "remove" in action]
    new_rows = _read(filesystem, table_path, added, columns, spec)
    old_rows = _read(filesystem, table_path, removed, columns, spec)
    key = list(spec.key)
    if old_rows.num_rows == 0:
        return TableChange(new_rows, old_rows.select(key))
    deleted = old_rows.select(key).join(new_rows.select(key), key, join_type="left anti")
    comparable = [name for name in columns if not pa.types.is_list(new_rows.schema.field(name).type)]
    numbered = new_rows.select(comparable).append_column("_row", pa.array(range(new_rows.num_rows), pa.int64()))
    fresh = numbered.join(old_rows.select(comparable), comparable, join_type="left anti")["_row"]
    written = new_rows.take(fresh.combine_chunks().sort())  # Arrow joins compare no list columns (vectors)
    return TableChange(written.combine_chunks(), deleted.combine_chunks())


def _log_entry(table_path: str, version: int) -> str:
    return f"{table_path}/_delta_log/{version:020d}.json"


def _read(filesystem: pafs.FileSystem, table_path: str, files: list[str], columns: list[str],
          spec: TableSpec) -> pa.Table:
    schema = pa.schema([spec.schema.field(name) for name in columns])
    parts = []
    for name in files:
        try:
            table = pq.read_table(f"{table_path}/{name}", filesystem=filesystem)
        except (FileNotFoundError, OSError) as exc:
            raise RebuildNeeded(f"{table_path}: data file {name} cannot be read ({exc})") from None
        for field in schema:  # a file older than a column holds nulls there
            if field.name not in table.column_names:
                table = table.append_column(field.name, pa.nulls(table.num_rows, field.type))
        parts.append(table.select(columns).cast(schema))
    return pa.concat_tables(parts) if parts else schema.empty_table()

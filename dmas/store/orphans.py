"""Data files that no version of a Delta table names: what a killed or conflicting writer leaves.

A writer puts its Parquet files in the table folder first (staged as `part-….parquet#1`, then
renamed) and commits them after; killed in between (SIGKILL, out of memory, power) or beaten by a
concurrent commit, its files stay, named by no version, and nothing reads them. They are removed
once older than a grace period: a concurrent writer's files are just as unnamed until it commits,
and the grace period, far above any writer's time from its first file to its commit, is what keeps
them. Files an older version still names are kept, so every version stays readable.
"""

from __future__ import annotations

import json
import logging
import posixpath
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import fs as pafs

log = logging.getLogger(__name__)

ORPHAN_GRACE = timedelta(hours=24)
_DATA_FILE = re.compile(r".*\.parquet(#\d+)?")  # what delta-rs writes, also while staged
_COMMIT = re.compile(r"\d{20}\.json")
_CHECKPOINT = re.compile(r"\d{20}\.checkpoint(\.\d+\.\d+)?\.parquet")
_FILE_ACTIONS = ("add", "remove", "cdc")


@dataclass(frozen=True)
class RemovedFile:
    path: str  # relative to the table folder
    size_bytes: int


def remove_orphans(filesystem: pafs.FileSystem, table_path: str, current: set[str],
                   grace: timedelta = ORPHAN_GRACE) -> list[RemovedFile]:
    """Delete the table's data files that no commit or checkpoint in its log names and that were
    last written more than `grace` ago; returns what was deleted.

    `current`: the files of the latest version (relative paths), spared without reading the log,
    so a table without orphans or replaced files costs one listing.
    """
    cutoff = datetime.now(UTC) - grace
    old = [info for info in _data_files(filesystem, table_path) if info.mtime is not None and info.mtime < cutoff
           and posixpath.relpath(info.path, table_path) not in current]
    if not old:
        return []
    named = named_files(filesystem, table_path)  # read after listing: a commit made meanwhile is seen
    removed = []
    for info in old:
        relative = posixpath.relpath(info.path, table_path)
        if relative in named:
            continue
        try:
            filesystem.delete_file(info.path)
        except FileNotFoundError:  # another cleaner was first
            continue
        removed.append(RemovedFile(relative, info.size))
    if removed:
        log.info("removed %d orphaned data files", len(removed), extra={"table": table_path})
    return removed


def named_files(filesystem: pafs.FileSystem, table_path: str) -> set[str]:
    """Paths, relative to the table folder, that a commit or checkpoint still in the log names."""
    named: set[str] = set()
    log_path = posixpath.join(table_path, "_delta_log")
    for info in filesystem.get_file_info(pafs.FileSelector(log_path)):
        name = posixpath.basename(info.path)
        if _COMMIT.fullmatch(name):
            with filesystem.open_input_stream(info.path) as stream:
                named.update(_commit_paths(stream.read().decode("utf-8")))
        elif _CHECKPOINT.fullmatch(name):
            named.update(_checkpoint_paths(filesystem, info.path))
    return named


def _commit_paths(text: str) -> set[str]:
    """The files a commit's actions add, remove or record as changes (paths are URL-encoded)."""
    paths = set()
    for line in text.splitlines():
        action = json.loads(line) if line.strip() else {}
        for kind in _FILE_ACTIONS:
            if kind in action:
                paths.add(unquote(action[kind]["path"]))
    return paths


def _checkpoint_paths(filesystem: pafs.FileSystem, path: str) -> set[str]:
    """The files a checkpoint's add and remove actions name."""
    with filesystem.open_input_file(path) as handle:
        parquet = pq.ParquetFile(handle)
        kinds = [kind for kind in _FILE_ACTIONS if kind in parquet.schema_arrow.names]
        table = parquet.read(columns=kinds)
    paths = set()
    for kind in kinds:
        paths.update(unquote(value) for value in pc.struct_field(table[kind], "path").drop_null().to_pylist())
    return paths


def _data_files(filesystem: pafs.FileSystem, table_path: str) -> list[pafs.FileInfo]:
    """The table folder's Parquet files (also staged ones), outside `_`- and `.`-folders (the log)."""
    selector = pafs.FileSelector(table_path, recursive=True)
    files = []
    for info in filesystem.get_file_info(selector):
        parts = posixpath.relpath(info.path, table_path).split("/")
        hidden = any(part[:1] in "_." for part in parts)
        if info.type == pafs.FileType.File and not hidden and _DATA_FILE.fullmatch(parts[-1]):
            files.append(info)
    return files

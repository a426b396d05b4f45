"""The versioned store over HTTP: forget an entity, table versions, commit history, lineage, export.

The same store functions the `dmas store` and `dmas forget` commands call. A table name is looked
up among the store's tables, never used as a path; an export is written by the store's own
streaming Parquet writer to a temporary file and sent from it in chunks, so a table never sits
whole in memory.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path
from typing import Annotated, Literal

import pyarrow.compute as pc
from deltalake.exceptions import CommitFailedError
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask

from dmas.errors import NotFoundError
from dmas.store import Store
from dmas.store.forget import forget_entity
from dmas.store.schemas import TABLES
from dmas.store.tables import VersionedTable
from serve.context import Admin, Viewer, current

router = APIRouter(tags=["store"])

TableName = Annotated[str, PathParam(description="one of the store's tables; any other name is 404",
                                     json_schema_extra={"enum": list(TABLES)})]
Version = Annotated[int | None, Query(ge=0, description="a table version (default: the latest)")]

# A forget that loses a race for a table commit is run again: it finishes what an interrupted one left.
# Forgets in this replica take turns, so only writers elsewhere (jobs, other replicas) can race it.
FORGET_ATTEMPTS = 3
_forgetting = threading.Lock()

# Delta's own commit fields that say how a commit was made, not what it did: its predicates name
# forgotten entities, and CREATE TABLE names the server's path to the store.
_COMMIT_INTERNALS = frozenset({"operationParameters", "engineInfo", "clientVersion", "readVersion",
                               "isolationLevel", "isBlindAppend", "userMetadata", "userId", "userName", "txnId"})


class TableChange(BaseModel):
    rows_removed: int
    version: int = Field(description="the table version after the removal")


class ForgetReport(BaseModel):
    """What `DELETE /entities/{entity_id}` removed (also written to the store's `forget` audit trail)."""

    entity_id: str
    tables: dict[str, TableChange]
    blobs_deleted: list[str] = Field(description="sha256 of the media no other entity uses")
    purged_old_versions: bool
    files_purged: dict[str, int] = Field(description="data files of older versions deleted, per table (purge)")


class Commit(BaseModel):
    """One commit of a table: Delta's record of it plus dmas' metadata (source file, its sha256...)."""

    model_config = ConfigDict(extra="allow")

    version: int
    timestamp: int = Field(description="milliseconds since the Unix epoch, UTC")
    operation: str
    operationMetrics: dict | None = Field(None, description="counts Delta recorded (rows, files, time)")


class SourceFile(BaseModel):
    """A file committed to a table: its name as the client sent it and its sha256."""

    version: int
    source_file: str | None = None
    source_sha256: str


@router.delete("/entities/{entity_id}", summary="Forget an entity (right to be forgotten)",
               response_model=ForgetReport, responses={409: {"description": "other writers kept changing the "
                                                                            "tables; the same request finishes"}})
def forget(entity_id: str, request: Request, key: Admin,
           purge: Annotated[bool, Query(description="also delete older versions' data files, so time travel "
                                                    "cannot read the entity any more")] = False) -> dict:
    """Remove every row about the entity from every table, and its unshared media, in new table versions.

    An entity the store does not hold is 404, also when a retry finds it already forgotten.
    """
    request.state.entity_count = 1
    store = current().store
    if not _holds_entity(store, entity_id):
        raise NotFoundError(f"unknown entity '{entity_id}': no entity row or artifact names it")
    for attempt in range(1, FORGET_ATTEMPTS + 1):
        try:
            with _forgetting:
                return forget_entity(store, entity_id, purge_old_versions=purge)
        except CommitFailedError:  # another process committed to the same table first
            if attempt == FORGET_ATTEMPTS:
                raise HTTPException(409, f"entity '{entity_id}' is partly forgotten: other writers kept changing "
                                         "its tables; send the same request again to finish") from None


@router.get("/store/snapshot", summary="Current version of every table", response_model=dict[str, int])
def snapshot(key: Viewer) -> dict[str, int]:
    """The data manifest a training run would pin now."""
    return current().store.snapshot()


@router.get("/store/{table}/history", summary="Commits of a table, newest first", response_model=list[Commit])
def history(table: TableName, key: Viewer) -> list[dict]:
    return [{name: value for name, value in commit.items() if name not in _COMMIT_INTERNALS}
            for commit in _table(current().store, table).history()]


@router.get("/store/{table}/lineage", summary="Source files committed to a table up to a version",
            response_model=list[SourceFile])
def lineage(table: TableName, key: Viewer, version: Version = None) -> list[dict]:
    store = current().store
    return store.lineage(table, _version(_table(store, table), version))


@router.get("/store/{table}/export", summary="Download a table at a version",
            response_class=FileResponse, responses={200: {
                "description": "the table as one Parquet file", "content": {"application/vnd.apache.parquet": {
                    "schema": {"type": "string", "format": "binary"}}}}})
def export(table: TableName, key: Admin, version: Version = None,
           format: Annotated[Literal["parquet"], Query(description="file format")] = "parquet") -> FileResponse:
    """The table's rows at `version` (default: the latest), as the `dmas store export` command writes them."""
    stored = _table(current().store, table)
    version = _version(stored, version)
    folder = Path(tempfile.mkdtemp(prefix="dmas-export-"))
    path = folder / f"{table}-v{version}.{format}"
    try:
        stored.export_parquet(str(path), version)
    except FileNotFoundError as exc:  # the data files of that version were deleted by a forget with purge
        shutil.rmtree(folder, ignore_errors=True)
        raise NotFoundError(f"version {version} of table '{table}' can no longer be read: its data files were "
                            f"purged ({type(exc).__name__})") from None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(path, media_type="application/vnd.apache.parquet", filename=path.name,
                        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True))


def _table(store: Store, name: str) -> VersionedTable:
    if name not in store.tables:
        raise NotFoundError(f"unknown table '{name}'; tables are {', '.join(store.tables)}")
    return store.tables[name]


def _version(table: VersionedTable, version: int | None) -> int:
    """`version`, or the latest when None; a version the table has not reached is 404."""
    latest = table.version()
    if version is None:
        return latest
    if version > latest:
        raise NotFoundError(f"table '{table.spec.name}' has no version {version}; its versions are 0 to {latest}")
    return version


def _holds_entity(store: Store, entity_id: str) -> bool:
    """Whether any entity row or artifact names `entity_id` (what `forget_entity` would find to remove)."""
    return any(store.table(name).read(columns=["entity_id"], filter=pc.field("entity_id") == entity_id).num_rows
               for name in ("entities", "artifacts"))

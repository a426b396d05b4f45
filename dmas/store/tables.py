"""Versioned tables on Delta Lake: every write is one atomic commit, every version stays readable.

A commit carries custom metadata (source file, its sha256, row counts) so the history of a table
is also its lineage. Each commit that changes a table also removes the data files a killed writer
left in it (see `dmas.store.orphans`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError
from deltalake.transaction import CommitProperties

from dmas.errors import StoreError
from dmas.store.location import StoreLocation
from dmas.store.orphans import ORPHAN_GRACE, RemovedFile, remove_orphans
from dmas.store.schemas import TableSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CommitResult:
    """What one write did: the table version it produced and the row counts."""

    version: int
    inserted: int = 0
    updated: int = 0
    deleted: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.inserted or self.updated or self.deleted)


class VersionedTable:
    """One Delta table of the store, described by a `TableSpec`."""

    def __init__(self, location: StoreLocation, spec: TableSpec):
        self.spec = spec
        self.uri = location.uri_of("tables", spec.name)
        self._filesystem = location.filesystem
        self._path = location.path("tables", spec.name)

    def create_if_missing(self) -> None:
        """Create the empty table (version 0); safe to call from several processes."""
        DeltaTable.create(self.uri, self.spec.schema, mode="ignore", name=self.spec.name)

    def delta(self, version: int | None = None) -> DeltaTable:
        try:
            return DeltaTable(self.uri, version=version)
        except TableNotFoundError:
            raise StoreError(f"table '{self.spec.name}' does not exist at {self.uri}") from None
        except Exception as exc:  # deltalake raises a generic error for a version it does not have
            if version is not None:
                raise StoreError(f"table '{self.spec.name}' has no readable version {version}: {exc}") from None
            raise

    def version(self) -> int:
        return self.delta().version()

    def dataset(self, version: int | None = None) -> ds.Dataset:
        return self.delta(version).to_pyarrow_dataset()

    def read(self, columns: list[str] | None = None, version: int | None = None,
             filter: pc.Expression | None = None) -> pa.Table:
        """The table at `version` (latest by default), sorted by its key so the order is reproducible.

        `filter` is applied after reading: delta-rs writes string columns as Arrow string views,
        which pyarrow's scan-time filters cannot compare with plain strings.
        """
        dataset = self.dataset(version)
        stored = [name for name in (columns or dataset.schema.names) if name in dataset.schema.names]
        try:
            table = dataset.to_table(columns=None if filter is not None else stored)
        except OSError as exc:  # a data file of this version is gone: purged by `forget --purge`
            raise StoreError(f"table '{self.spec.name}' version {version} cannot be read: "
                             f"its data files were purged ({exc})") from None
        if filter is not None:
            table = table.filter(filter).select(stored)
        table = self._with_added_columns(table)
        table = table.select(columns) if columns else table
        sort_keys = [(name, "ascending") for name in self.spec.key if name in table.column_names]
        return table.sort_by(sort_keys) if sort_keys else table

    def upsert(self, source: pa.RecordBatchReader | pa.Table, commit_metadata: Mapping[str, object]) -> CommitResult:
        """Insert rows whose key is new; update `updatable` columns of rows whose key exists and changed.

        One atomic commit; identical rows change nothing and produce no new version. A column the
        spec has and the stored table lacks (added in a later dmas) is added by this commit.
        """
        table = self.delta()
        match = " AND ".join(f"t.{name} = s.{name}" for name in self.spec.key)
        merger = table.merge(source, match, source_alias="s", target_alias="t", merge_schema=True,
                             commit_properties=_commit_properties(commit_metadata))
        if self.spec.updatable:
            stored = {field.name for field in table.schema().to_arrow()}
            updates = {name: self._new_value(name, stored) for name in self.spec.updatable}
            changed = " OR ".join(f"({_differs(name, value, stored)})" for name, value in updates.items())
            merger = merger.when_matched_update(updates, predicate=changed)
        metrics = merger.when_not_matched_insert_all().execute()
        return self._committed(CommitResult(
            version=table.version(),  # this commit's version, even if another writer has committed since
            inserted=metrics["num_target_rows_inserted"],
            updated=metrics["num_target_rows_updated"],
        ))

    def _new_value(self, name: str, stored: set[str]) -> str:
        """The SQL value an update gives column `name`: the new row's, or the stored one where
        the column keeps its value on a null (a table without the column holds nulls there)."""
        if name in self.spec.keep_when_null and name in stored:
            return f"COALESCE(s.{name}, t.{name})"
        return f"s.{name}"

    def _with_added_columns(self, table: pa.Table) -> pa.Table:
        """`table` with the spec's columns that its version predates, as nulls."""
        for field in self.spec.schema:
            if field.name not in table.column_names:
                table = table.append_column(field, pa.nulls(table.num_rows, field.type))
        return table

    def update_matching(self, source: pa.Table, on: str, assignments: Mapping[str, str],
                        commit_metadata: Mapping[str, object]) -> CommitResult:
        """Set columns of rows whose `on` value appears in `source`, in one commit.

        `assignments` maps a column to a SQL expression over the target `t` and source `s`
        (e.g. {"error": "s.error"}); rows already equal are left alone.
        """
        table = self.delta()
        changed = " OR ".join(f"(t.{column} IS DISTINCT FROM {value})" for column, value in assignments.items())
        metrics = (table.merge(source, f"t.{on} = s.{on}", source_alias="s", target_alias="t",
                               commit_properties=_commit_properties(commit_metadata))
                   .when_matched_update(dict(assignments), predicate=changed).execute())
        return self._committed(CommitResult(version=table.version(), updated=metrics["num_target_rows_updated"]))

    def delete_where(self, predicate: str, commit_metadata: Mapping[str, object]) -> CommitResult:
        """Delete matching rows in one commit (no commit when nothing matches)."""
        table = self.delta()
        metrics = table.delete(predicate, commit_properties=_commit_properties(commit_metadata))
        return self._committed(CommitResult(version=table.version(), deleted=metrics.get("num_deleted_rows", 0)))

    def remove_orphans(self, grace: timedelta = ORPHAN_GRACE) -> list[RemovedFile]:
        """Delete data files no version names that are older than `grace` (a killed writer's)."""
        current = {unquote(path) for path in pa.table(self.delta().get_add_actions(flatten=True))["path"].to_pylist()}
        return remove_orphans(self._filesystem, self._path, current, grace)

    def _committed(self, result: CommitResult) -> CommitResult:
        """After a commit that changed the table: remove orphans; failing to is only logged."""
        if result.changed:
            try:
                self.remove_orphans()
            except (OSError, ValueError) as exc:  # the commit stands; the next one tries again
                log.warning("could not remove orphaned files of '%s': %s", self.spec.name, exc)
        return result

    def history(self) -> list[dict]:
        """Commits, newest first, with their custom metadata (source file, counts)."""
        return self.delta().history()

    def purge_unreferenced_files(self) -> list[str]:
        """Physically delete data files the latest version no longer uses (older versions become unreadable)."""
        return self.delta().vacuum(retention_hours=0, dry_run=False, enforce_retention_duration=False)

    def export_parquet(self, destination: str, version: int | None = None) -> int:
        """Write the table at `version` to one Parquet file, streaming; returns the row count."""
        dataset = self.dataset(version)
        rows = 0
        schema = self._with_added_columns(dataset.schema.empty_table()).schema
        with pq.ParquetWriter(destination, schema) as writer:
            for batch in dataset.to_batches():
                writer.write_table(self._with_added_columns(pa.Table.from_batches([batch])))
                rows += batch.num_rows
        return rows


def _commit_properties(metadata: Mapping[str, object]) -> CommitProperties:
    """Delta custom metadata values must be strings; non-strings are stored as JSON."""
    as_text = {key: value if isinstance(value, str) else json.dumps(value, sort_keys=True)
               for key, value in metadata.items()}
    return CommitProperties(custom_metadata=as_text)


def _differs(name: str, value: str, stored: set[str]) -> str:
    """SQL: the update would change the stored value (always null where the table lacks the column)."""
    return f"t.{name} IS DISTINCT FROM {value}" if name in stored else f"{value} IS NOT NULL"


def sql_string_list(values: Iterable[str]) -> str:
    """Quote strings for a Delta SQL predicate (`IN (...)`), escaping single quotes."""
    return ", ".join("'" + value.replace("'", "''") + "'" for value in values)

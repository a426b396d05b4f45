"""The store: versioned tables, a blob store and audit trails under one root."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from dmas.errors import StoreError
from dmas.store.audit import AuditTrail
from dmas.store.blobs import BlobStore
from dmas.store.location import StoreLocation
from dmas.store.orphans import ORPHAN_GRACE, RemovedFile
from dmas.store.schemas import TABLES
from dmas.store.tables import VersionedTable


class Store:
    """Open (creating if needed) the store at `uri`: a local folder or a pyarrow filesystem URI."""

    def __init__(self, uri: str | Path):
        self.location = StoreLocation.parse(uri)
        self.location.makedirs("tables")
        self.tables = {name: VersionedTable(self.location, spec) for name, spec in TABLES.items()}
        for table in self.tables.values():
            table.create_if_missing()
        self.blobs = BlobStore(self.location)

    @property
    def uri(self) -> str:
        return self.location.uri

    def table(self, name: str) -> VersionedTable:
        try:
            return self.tables[name]
        except KeyError:
            raise StoreError(f"unknown table '{name}'; tables are {', '.join(self.tables)}") from None

    def snapshot(self) -> dict[str, int]:
        """The current version of every table: the data manifest a training run pins."""
        return {name: table.version() for name, table in sorted(self.tables.items())}

    def remove_orphans(self, grace: timedelta = ORPHAN_GRACE) -> dict[str, list[RemovedFile]]:
        """Every table's data files that no version names and are older than `grace`, deleted."""
        return {name: table.remove_orphans(grace) for name, table in sorted(self.tables.items())}

    def audit(self, kind: str) -> AuditTrail:
        return AuditTrail(self.location, kind)

    def lineage(self, name: str, version: int | None = None) -> list[dict]:
        """The source files (name, sha256, rows) committed to a table up to `version`, oldest first."""
        table = self.table(name)
        last = table.version() if version is None else version
        sources = []
        for commit in reversed(table.history()):
            if commit["version"] > last or "source_sha256" not in commit:
                continue
            sources.append({key: commit[key] for key in ("version", "source_file", "source_sha256") if key in commit})
        return sources

"""Append-only audit records: one JSON file per record, never rewritten.

One file per record (rather than appending to a log) works the same on object stores, where
appending is not possible, and two writers never interleave.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from dmas.store.location import StoreLocation


class AuditTrail:
    def __init__(self, location: StoreLocation, kind: str):
        self.location = location
        self.folder = location.path("audit", kind)

    def record(self, entry: dict) -> str:
        """Write one record with its UTC time; returns the record's path."""
        now = datetime.now(UTC)
        body = {"time": now.isoformat(), **entry}
        self.location.filesystem.create_dir(self.folder, recursive=True)
        path = f"{self.folder}/{now.strftime('%Y%m%dT%H%M%S%fZ')}-{uuid.uuid4().hex[:8]}.json"
        with self.location.filesystem.open_output_stream(path) as out:
            out.write(json.dumps(body, sort_keys=True).encode())
        return path

    def records(self) -> list[dict]:
        """All records, oldest first."""
        from pyarrow import fs as pafs

        selector = pafs.FileSelector(self.folder, allow_not_found=True)
        infos = sorted(self.location.filesystem.get_file_info(selector), key=lambda info: info.path)
        entries = []
        for info in infos:
            with self.location.filesystem.open_input_stream(info.path) as handle:
                entries.append(json.loads(handle.read()))
        return entries

"""The serving audit log: one JSON line per request, appended, never rewritten.

Lines carry the key id (never the key), route, entity count, status, latency, run and job; each write
is a single O_APPEND write, so concurrent replicas on one machine never interleave inside a line.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path


class AuditLog:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, *, request_id: str, key_id: str | None, route: str, status: int, latency_ms: float,
              entity_count: int = 0, run_id: str | None = None, job_id: str | None = None) -> None:
        entry = {"time": datetime.now(UTC).isoformat(), "request_id": request_id, "key_id": key_id, "route": route,
                 "entity_count": entity_count, "status": status, "latency_ms": round(latency_ms, 3),
                 "run_id": run_id, "job_id": job_id}
        line = (json.dumps(entry, sort_keys=True) + "\n").encode()
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(descriptor, line)
        finally:
            os.close(descriptor)

    def entries(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]

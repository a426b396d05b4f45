"""Where a run's data came from: the table versions and feature version it pinned, and the source files."""

from __future__ import annotations

import json

from dmas.store import Store
from dmas.store.runs import RunRegistry


def run_lineage(store: Store, run_id: str) -> dict:
    """The run's data manifest plus, per table, the source files (name, sha256) committed up to its version."""
    manifest = json.loads(RunRegistry(store).read_file(run_id, "data_manifest.json"))
    return {
        "run_id": run_id,
        "data_manifest": manifest,
        "sources": {name: store.lineage(name, version) for name, version in sorted(manifest["tables"].items())},
    }

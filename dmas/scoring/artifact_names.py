"""Which artifact rows fill a run's artifact slots: their artifact_id and type, from the pinned artifacts table.

A run records each slot's blob (sha256) but the old clients name artifacts by id. The lookup is
built once per loaded run, on first use (only explanations need it), so a request costs dict
lookups whatever the size of the store. An entity can hold the same blob more than once; training
fills slots with an entity's most recent artifacts in time order (equal times: larger artifact_id
first), so the k slots holding one blob are the k most recent of that entity's rows with it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from functools import cached_property

import pyarrow as pa
import pyarrow.compute as pc

from dmas.errors import StoreError
from dmas.explain.published import ArtifactName
from dmas.store import Store

log = logging.getLogger(__name__)
_UNNAMED = ArtifactName(None, None)


class ArtifactNames:
    """artifact_id and artifact_type of the blobs in an entity's slots, read at the run's pinned version."""

    def __init__(self, store: Store, version: int | None, as_of: str | None):
        self.store = store
        self.version = version
        self.as_of = as_of

    def of(self, entity_id: str, slot_sha256: Sequence[str]) -> list[ArtifactName]:
        """One name per filled slot (padding "" skipped), in slot order."""
        filled = [sha for sha in slot_sha256 if sha]
        wanted = {sha: filled.count(sha) for sha in filled}
        seen: dict[str, int] = defaultdict(int)
        names = []
        for sha in filled:
            rows = self._rows.get((entity_id, sha), [])
            position = len(rows) - wanted[sha] + seen[sha]
            seen[sha] += 1
            names.append(rows[position] if position >= 0 else _UNNAMED)
        return names

    @cached_property
    def _rows(self) -> dict[tuple[str, str], list[ArtifactName]]:
        """(entity_id, sha256) -> that entity's artifact rows with the blob, oldest first."""
        table = self._read()
        table = table.filter(pc.is_valid(table["entity_id"]))
        if self.as_of is not None:
            cut = pa.scalar(datetime.fromisoformat(self.as_of), pa.timestamp("us", tz="UTC"))
            table = table.filter(pc.or_kleene(pc.is_null(table["timestamp"]), pc.less_equal(table["timestamp"], cut)))
        table = table.append_column("time_us", pc.fill_null(table["timestamp"].cast(pa.int64()), -2**63))
        table = table.sort_by([("time_us", "ascending"), ("artifact_id", "descending")])
        rows: dict[tuple[str, str], list[ArtifactName]] = defaultdict(list)
        for entity_id, sha, artifact_id, kind in zip(*(table[name].to_pylist() for name in (
                "entity_id", "sha256", "artifact_id", "artifact_type"))):
            rows[(entity_id, sha)].append(ArtifactName(artifact_id, kind))
        return dict(rows)

    def _read(self) -> pa.Table:
        """The artifacts table at the pinned version; the latest when that version's files were purged
        (`forget --purge`): artifact ids are derived from content, so the rows still there are the same."""
        columns = ["artifact_id", "sha256", "artifact_type", "entity_id", "timestamp"]
        table = self.store.table("artifacts")
        try:
            return table.read(columns=columns, version=self.version)
        except StoreError as exc:
            log.warning("artifact names of version %s unreadable, using the latest: %s", self.version, exc)
            return table.read(columns=columns)

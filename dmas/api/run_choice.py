"""Which run a request is answered from: the one it names, or the latest completed one.

Reading the registry costs ~4 ms, so a finished run (whose record no longer changes) is remembered,
and the latest completed run is looked up again only after `refresh_s`: a newly completed run is
served within that time.
"""

from __future__ import annotations

import time

from dmas.errors import NotFoundError
from dmas.store.runs import RunRegistry


class RunChoice:
    def __init__(self, registry: RunRegistry, refresh_s: float):
        self.registry = registry
        self.refresh_s = refresh_s
        self._finished: set[str] = set()
        self._latest: tuple[str | None, float] = (None, 0.0)

    def run_id(self, requested: str | None) -> str:
        """`requested` if it exists (NotFoundError otherwise), else the latest completed run."""
        if requested:
            if requested not in self._finished:
                if self.registry.require(requested).status in ("completed", "rejected"):
                    self._finished.add(requested)
            return requested
        run_id, looked_up = self._latest
        if run_id is None or time.monotonic() - looked_up > self.refresh_s:
            latest = self.registry.latest_completed()
            if latest is None:
                raise NotFoundError("unknown run: no completed run yet; train one first")
            self._latest = run_id, _ = latest.run_id, time.monotonic()
        return run_id

"""What an ingress replica holds for its requests, built once per replica process.

The routes are plain functions on FastAPI routers (so each area of the API has its own module);
they reach the replica's store, registry, job book, keys and deployment handles through
`current()`, installed by the ingress deployment when Serve starts the replica.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from ray.util import metrics

from dmas.api.audit_log import AuditLog
from dmas.api.auth import Authenticator, Principal, require_role
from dmas.api.jobs import JobBook
from dmas.api.run_choice import RunChoice
from dmas.config import Settings
from dmas.online import OnlineView, ViewDepth
from dmas.scoring.scorer import Scorer
from dmas.store import Store
from dmas.store.runs import RunRegistry

log = logging.getLogger(__name__)


@dataclass
class ReplicaContext:
    settings: Settings
    store: Store = field(init=False)
    view: OnlineView = field(init=False)
    scorer: Scorer = field(init=False)
    registry: RunRegistry = field(init=False)
    jobs: JobBook = field(init=False)
    runs: RunChoice = field(init=False)
    audit: AuditLog = field(init=False)
    authenticator: Authenticator = field(init=False)
    requests: metrics.Counter = field(init=False)
    latency: metrics.Histogram = field(init=False)

    def __post_init__(self):
        self.store = Store(self.settings.store_uri)
        self.replica_header = (b"x-dmas-replica", _replica_name().encode())
        serve = self.settings.serve
        self.view = OnlineView(self.store, ViewDepth(serve.view_max_events, serve.view_max_neighbors,
                                                     serve.view_max_artifacts))
        self.scorer = Scorer(self.store, self.view, serve.cached_runs)
        self._stopping = threading.Event()
        threading.Thread(target=self._follow_commits, name="dmas-view-refresh", daemon=True).start()
        self.registry = RunRegistry(self.store)
        self.jobs = JobBook(self.store)
        self.runs = RunChoice(self.registry, self.settings.serve.latest_run_refresh_s)
        self.audit = AuditLog(self.settings.serve.audit_log)
        self.authenticator = Authenticator(self.settings.serve)
        # tagged by route template, never by raw path: tags must be ASCII and of bounded number
        self.requests = metrics.Counter("dmas_requests", description="requests by route and status",
                                        tag_keys=("route", "status"))
        self.latency = metrics.Histogram("dmas_request_latency_ms", description="request latency",
                                         boundaries=[1, 5, 10, 25, 50, 100, 250, 1000], tag_keys=("route",))

    def _follow_commits(self) -> None:
        """Absorb new commits into the view every `serve.refresh_s` until the replica stops."""
        while not self._stopping.wait(self.settings.serve.refresh_s):
            try:
                self.view.refresh()
            except Exception:  # the view stays at its last versions (answers say which); the next poll retries
                log.exception("online view refresh failed")

    def close(self) -> None:
        self._stopping.set()

    @property
    def settings_json(self) -> str:
        return self.settings.model_dump_json()

    async def identify(self, headers: Mapping[str, str]) -> Principal:
        """The caller (dmas.api.auth); off the event loop when a JWKS fetch could make it wait."""
        if self.settings.serve.jwt.jwks_url:
            return await run_in_threadpool(self.authenticator.identify, headers)
        return self.authenticator.identify(headers)


def _replica_name() -> str:
    """This replica's Serve id and its node's, for the `x-dmas-replica` response header (which replica answered)."""
    import ray
    from ray import serve

    return f"{serve.get_replica_context().replica_id.unique_id}@{ray.get_runtime_context().get_node_id()[:12]}"


_current: ReplicaContext | None = None


def install(context: ReplicaContext) -> None:
    global _current
    _current = context


def current() -> ReplicaContext:
    if _current is None:
        raise RuntimeError("the dmas ingress has not started in this process")
    return _current


def _require(request: Request, role: str) -> Principal:
    """The request's caller (identified by the middleware), refused with 403 when its role is too low."""
    principal: Principal = request.state.principal
    require_role(principal, role)
    return principal


def viewer(request: Request) -> Principal:
    """Route dependency: any known caller (viewer or admin)."""
    return _require(request, "viewer")


def admin(request: Request) -> Principal:
    """Route dependency: an admin."""
    return _require(request, "admin")


# what a route declares to take its caller: `key: Viewer` or `key: Admin`
Viewer = Annotated[Principal, Depends(viewer)]
Admin = Annotated[Principal, Depends(admin)]

"""What an ingress replica holds for its requests, built once per replica process.

The routes are plain functions on FastAPI routers (so each area of the API has its own module);
they reach the replica's store, registry, job book, keys and deployment handles through
`current()`, installed by the ingress deployment when Serve starts the replica.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from fastapi import HTTPException, Request
from ray.serve.handle import DeploymentHandle
from ray.util import metrics

from dmas.api.audit_log import AuditLog
from dmas.api.jobs import JobBook
from dmas.api.run_choice import RunChoice
from dmas.api.security import ApiKey, allows, authenticate
from dmas.config import Settings
from dmas.store import Store
from dmas.store.runs import RunRegistry


@dataclass
class ReplicaContext:
    settings: Settings
    predictor: DeploymentHandle
    explainer: DeploymentHandle
    store: Store = field(init=False)
    registry: RunRegistry = field(init=False)
    jobs: JobBook = field(init=False)
    runs: RunChoice = field(init=False)
    audit: AuditLog = field(init=False)
    keys: list[ApiKey] = field(init=False)
    requests: metrics.Counter = field(init=False)
    latency: metrics.Histogram = field(init=False)

    def __post_init__(self):
        self.store = Store(self.settings.store_uri)
        self.registry = RunRegistry(self.store)
        self.jobs = JobBook(self.store)
        self.runs = RunChoice(self.registry, self.settings.serve.latest_run_refresh_s)
        self.audit = AuditLog(self.settings.serve.audit_log)
        self.keys = self.settings.serve.keys()
        # tagged by route template, never by raw path: tags must be ASCII and of bounded number
        self.requests = metrics.Counter("dmas_requests", description="requests by route and status",
                                        tag_keys=("route", "status"))
        self.latency = metrics.Histogram("dmas_request_latency_ms", description="request latency",
                                         boundaries=[1, 5, 10, 25, 50, 100, 250, 1000], tag_keys=("route",))

    @property
    def settings_json(self) -> str:
        return self.settings.model_dump_json()

    def identify_headers(self, headers: Mapping[str, str]) -> ApiKey | None:
        """The key a request presents (X-API-Key, or Authorization: Bearer), or None."""
        presented = headers.get("x-api-key")
        authorization = headers.get("authorization", "")
        if not presented and authorization.lower().startswith("bearer "):
            presented = authorization[7:].strip()
        return authenticate(presented, self.keys)


_current: ReplicaContext | None = None


def install(context: ReplicaContext) -> None:
    global _current
    _current = context


def current() -> ReplicaContext:
    if _current is None:
        raise RuntimeError("the dmas ingress has not started in this process")
    return _current


def _require(request: Request, role: str) -> ApiKey:
    """The request's key (identified by the middleware), refused with 403 when its role is too low."""
    key: ApiKey | None = request.state.key
    if key is None:
        raise HTTPException(401, "missing or unknown API key", headers={"WWW-Authenticate": "Bearer"})
    if not allows(key, role):
        raise HTTPException(403, f"the key '{key.key_id}' has role {key.role}; this route needs {role}")
    return key


def viewer(request: Request) -> ApiKey:
    """Route dependency: any known key (viewer or admin)."""
    return _require(request, "viewer")


def admin(request: Request) -> ApiKey:
    """Route dependency: an admin key."""
    return _require(request, "admin")

"""Every request's scope, as plain ASGI around the FastAPI app: who is calling, limits, audit, metrics.

The caller is identified before anything else, so a request refused for its size (411, 413), its
body (400, 422) or its role (403) is audited with the key it presented. Unauthenticated requests
to anything but the public routes get 401 before their body is read. Metrics are tagged by route
template (`/runs/{run_id}`), never by raw path: tags must be ASCII and of bounded number.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dmas.api.errors import error_body, error_headers
from dmas.errors import DmasError
from serve.context import ReplicaContext, current

PUBLIC_PATHS = frozenset({"/health", "/health/", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})


class _BodyStalled(Exception):
    """The client stopped sending a body it declared."""


class RequestScope:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        context = current()
        started = time.perf_counter()
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        principal, unidentified = None, None
        try:
            principal = await context.identify(headers)
        except DmasError as exc:  # 401, 403 (a token whose roles map to none), 503 (the JWKS is down)
            unidentified = exc
        state = scope.setdefault("state", {})
        state.update(request_id=headers.get("x-request-id") or _serve_request_id() or uuid.uuid4().hex,
                     principal=principal, key_id=principal.key_id if principal else None, entity_count=0,
                     run_id=None, job_id=None)
        outcome = {"status": 500, "stalled": False, "replaced": False}

        async def send_noting_status(message: Message) -> None:
            if outcome["replaced"]:
                return
            if message["type"] == "http.response.start":
                if outcome["stalled"]:  # whatever the app made of the broken body, the client hears why
                    outcome["replaced"] = True
                    await _send_json(send, outcome, 400, {"detail": "the request body stopped arriving before "
                                                          "its declared Content-Length"})
                    return
                outcome["status"] = message["status"]
                took = f"app;dur={(time.perf_counter() - started) * 1000:.2f}".encode()  # time in this replica
                message = {**message, "headers": [*message.get("headers", []), context.replica_header,
                                                  (b"server-timing", took)]}
            await send(message)

        try:
            refusal = _refusal(scope["path"], headers, unidentified, context)
            if refusal is not None:
                await _send_json(send, outcome, *refusal)
            else:
                await self.app(scope, _deadline_receive(receive, context.settings.serve.body_idle_timeout_s, outcome),
                               send_noting_status)
        finally:
            _account(context, scope, state, outcome["status"], (time.perf_counter() - started) * 1000)


def _refusal(path: str, headers: dict, unidentified: DmasError | None,
             context: ReplicaContext) -> tuple[int, dict, dict] | None:
    """(status, body, headers) for a request refused before the app sees it, or None."""
    if unidentified is not None and path not in PUBLIC_PATHS:
        body = error_body(unidentified)
        return body.pop("status"), body, error_headers(unidentified)
    settings = context.settings.serve
    uploading = headers.get("content-type", "").startswith("multipart/form-data")
    setting = "max_upload_request_bytes" if uploading else "max_body_bytes"
    limit = getattr(settings, setting)
    declared = headers.get("content-length")
    if declared is None:
        if "transfer-encoding" in headers:  # a body of unknown length could be any size
            return 411, {"detail": "request bodies must declare their Content-Length"}, {}
        return None
    if not declared.isdigit():
        return 400, {"detail": f"Content-Length must be a number of bytes, got {declared!r}"}, {}
    if int(declared) > limit:
        return 413, {"detail": f"request body of {declared} bytes is over the limit of {limit} (serve.{setting}, "
                               f"env DMAS_SERVE__{setting.upper()}); send less per request"}, {}
    return None


def _deadline_receive(receive: Receive, idle_timeout_s: float, outcome: dict) -> Receive:
    """`receive`, but a body that stops arriving for `idle_timeout_s` ends the request (answered 400)."""
    body_done = False

    async def receive_within_deadline() -> Message:
        nonlocal body_done
        if body_done:
            return await receive()  # after the body only a disconnect can come: wait for it as long as it takes
        try:
            message = await asyncio.wait_for(receive(), idle_timeout_s)
        except TimeoutError:
            outcome["stalled"] = True
            raise _BodyStalled() from None
        if message["type"] != "http.request" or not message.get("more_body", False):
            body_done = True
        return message

    return receive_within_deadline


async def _send_json(send: Send, outcome: dict, status: int, body: dict, headers: dict | None = None) -> None:
    outcome["status"] = status
    payload = json.dumps(body).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw_headers += [(name.encode(), value.encode()) for name, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


def _account(context: ReplicaContext, scope: Scope, state: dict, status: int, latency_ms: float) -> None:
    """Metrics by route template and one audit line (every route but /health)."""
    route = getattr(scope.get("route"), "path", None) or "unmatched"
    context.requests.inc(tags={"route": route, "status": str(status)})
    context.latency.observe(latency_ms, tags={"route": route})
    if scope["path"] not in ("/health", "/health/"):
        context.audit.write(request_id=state["request_id"], key_id=state["key_id"], route=scope["path"],
                            status=status, latency_ms=latency_ms, entity_count=state["entity_count"],
                            run_id=state["run_id"], job_id=state["job_id"])


def _serve_request_id() -> str | None:
    from ray.serve.context import _get_serve_request_context

    return _get_serve_request_context().request_id or None

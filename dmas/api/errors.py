"""The one place dmas errors become HTTP status codes and JSON bodies (used by the app and by jobs)."""

from __future__ import annotations

from dmas.errors import DmasError, LimitExceededError, NotFoundError
from dmas.scoring.bundle import IntegrityError, UnknownEntitiesError


def error_body(exc: DmasError) -> dict:
    """{"status": http status, "detail": message, ...} for a dmas error."""
    if isinstance(exc, UnknownEntitiesError):
        return {"status": 404, "detail": str(exc), "unknown_entity_ids": exc.missing}
    if isinstance(exc, NotFoundError):
        return {"status": 404, "detail": str(exc)}
    if isinstance(exc, LimitExceededError):
        return {"status": 413, "detail": str(exc)}
    if isinstance(exc, IntegrityError):
        return {"status": 500, "detail": str(exc)}
    return {"status": 400, "detail": str(exc)}

"""The one place dmas errors become HTTP status codes and JSON bodies (used by the app and by jobs)."""

from __future__ import annotations

from dmas.api.security import AuthenticationError, IdentityProviderUnavailableError, PermissionDeniedError
from dmas.errors import ConflictError, DmasError, LimitExceededError, NotFoundError
from dmas.scoring.bundle import IntegrityError, UnknownEntitiesError


def error_body(exc: DmasError) -> dict:
    """{"status": http status, "detail": message, ...} for a dmas error."""
    if isinstance(exc, AuthenticationError):
        return {"status": 401, "detail": str(exc)}
    if isinstance(exc, PermissionDeniedError):
        return {"status": 403, "detail": str(exc)}
    if isinstance(exc, IdentityProviderUnavailableError):
        return {"status": 503, "detail": str(exc)}
    if isinstance(exc, UnknownEntitiesError):
        return {"status": 404, "detail": str(exc), "unknown_entity_ids": exc.missing}
    if isinstance(exc, NotFoundError):
        return {"status": 404, "detail": str(exc)}
    if isinstance(exc, ConflictError):
        return {"status": 409, "detail": str(exc)}
    if isinstance(exc, LimitExceededError):
        return {"status": 413, "detail": str(exc)}
    if isinstance(exc, IntegrityError):
        return {"status": 500, "detail": str(exc)}
    return {"status": 400, "detail": str(exc)}


def error_headers(exc: DmasError) -> dict[str, str]:
    """Response headers an error calls for: the 401 challenge, the 503 retry hint."""
    if isinstance(exc, AuthenticationError):
        return {"www-authenticate": exc.challenge}
    if isinstance(exc, IdentityProviderUnavailableError):
        return {"retry-after": str(exc.retry_after_s)}
    return {}

"""The one place dmas errors become HTTP status codes and JSON bodies (used by the app and by jobs)."""

from __future__ import annotations

from dmas.api.security import AuthenticationError, IdentityProviderUnavailableError, PermissionDeniedError
from dmas.errors import ConflictError, DmasError, LimitExceededError, NotFoundError
from dmas.scoring.scorer import IntegrityError, UnknownEntitiesError

# the first entry the error is an instance of gives its status; any other dmas error is the client's: 400
STATUS_BY_ERROR: tuple[tuple[type[DmasError], int], ...] = (
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (UnknownEntitiesError, 404),
    (NotFoundError, 404),
    (ConflictError, 409),
    (LimitExceededError, 413),
    (IntegrityError, 500),
    (IdentityProviderUnavailableError, 503),
)


def error_body(exc: DmasError) -> dict:
    """{"status": http status, "detail": message, ...} for a dmas error."""
    status = next((status for kind, status in STATUS_BY_ERROR if isinstance(exc, kind)), 400)
    body = {"status": status, "detail": str(exc)}
    if isinstance(exc, UnknownEntitiesError):
        body["unknown_entity_ids"] = exc.missing
    return body


def error_headers(exc: DmasError) -> dict[str, str]:
    """Response headers an error calls for: the 401 challenge, the 503 retry hint."""
    if isinstance(exc, AuthenticationError):
        return {"www-authenticate": exc.challenge}
    if isinstance(exc, IdentityProviderUnavailableError):
        return {"retry-after": str(exc.retry_after_s)}
    return {}

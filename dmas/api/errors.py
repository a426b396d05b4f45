"""The one place dmas errors become HTTP status codes and JSON bodies (used by the app and by jobs)."""

from __future__ import annotations

from dmas.api.security import AuthenticationError, IdentityProviderUnavailableError, PermissionDeniedError
from dmas.errors import ConflictError, DmasError, LimitExceededError, NotFoundError
from dmas.quality.errors import TOO_LARGE, QualityError
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


# a collapse check's error by category: data and model 422, resource 413 or 503, timeout 504, internal 500
STATUS_BY_QUALITY_CODE = {1: 422, 2: 422, 3: 503, 4: 504, 5: 500}


def error_body(exc: DmasError) -> dict:
    """{"status": http status, "detail": message, ...} for a dmas error (a collapse check's also carries
    {"error": {code, category, message, retryable}})."""
    if isinstance(exc, QualityError):
        status = 413 if exc.code == TOO_LARGE else STATUS_BY_QUALITY_CODE[exc.code // 1000]
        return {"status": status, "detail": str(exc), "error": exc.as_dict()}
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

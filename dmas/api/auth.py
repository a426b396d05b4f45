"""One request's headers -> the `Principal` calling, for every credential kind `ServeSettings` accepts.

Headers, first present wins: `X-API-Key: <key>`, `x-service-token: <token>`, `Authorization: Bearer
<key or JWT>` (a bearer value that matches no key and is shaped like a JWT is verified as one, so old
clients that send keys as Bearer keep working). With `auth: none` no header is read and every request
is `anonymous` (audited as such). Credentials are never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from dmas.api.config import ServeSettings, anonymous_refusal
from dmas.api.security import (
    INVALID_TOKEN_CHALLENGE,
    AuthenticationError,
    PermissionDeniedError,
    Principal,
    Role,
    allows,
    authenticate,
)
from dmas.api.tokens import JwtVerifier, looks_like_jwt
from dmas.errors import ConfigError

__all__ = ["ANONYMOUS", "Authenticator", "Principal", "allows", "require_role"]

log = logging.getLogger(__name__)
ANONYMOUS = Principal(key_id="anonymous", role="admin", method="none")


class Authenticator:
    """Identifies callers under one `ServeSettings`; build it once per replica (it caches the JWKS).

    Raises ConfigError at construction when the settings cannot work (HS256 secret env var unset) or
    are unsafe: `auth: none` off loopback, checked again here because `model_copy` skips validation.
    """

    def __init__(self, settings: ServeSettings):
        self.settings = settings
        self._jwt = JwtVerifier(settings.jwt) if settings.auth == "required" and settings.jwt.enabled else None
        if settings.auth == "none":
            if refusal := anonymous_refusal(settings.host):
                raise ConfigError(refusal)
            log.warning("serve.auth is 'none': every request is served without credentials as 'anonymous' with "
                        "the admin role (allowed because the server listens on %s, a loopback address)",
                        settings.host)

    def identify(self, headers: Mapping[str, str]) -> Principal:
        """The caller named by `headers` (any letter case); AuthenticationError (401),
        PermissionDeniedError (403) or IdentityProviderUnavailableError (503) when there is none."""
        if self.settings.auth == "none":
            return ANONYMOUS
        headers = {name.lower(): value for name, value in headers.items()}
        if "x-api-key" in headers:
            return self._api_key(headers["x-api-key"].strip())
        if "x-service-token" in headers:
            entry = authenticate(headers["x-service-token"].strip(), self.settings.service_tokens)
            if entry is None:
                raise AuthenticationError("unknown service token (x-service-token)", INVALID_TOKEN_CHALLENGE)
            return Principal(entry.key_id, entry.role, "service_token")
        if "authorization" in headers:
            scheme, _, value = headers["authorization"].strip().partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise AuthenticationError(f"the Authorization scheme {scheme!r} is not accepted; send "
                                          "'Bearer <API key or JWT>'")
            return self._bearer(value.strip())
        raise AuthenticationError("no credentials: send X-API-Key: <key>, x-service-token: <token> or "
                                  "Authorization: Bearer <API key or JWT>")

    def _api_key(self, presented: str) -> Principal:
        entry = authenticate(presented, self.settings.api_keys)
        if entry is None:
            raise AuthenticationError("unknown API key", INVALID_TOKEN_CHALLENGE)
        return Principal(entry.key_id, entry.role, "api_key")

    def _bearer(self, value: str) -> Principal:
        entry = authenticate(value, self.settings.api_keys)
        if entry is not None:
            return Principal(entry.key_id, entry.role, "api_key")
        if not looks_like_jwt(value):
            raise AuthenticationError("unknown API key", INVALID_TOKEN_CHALLENGE)
        if self._jwt is None:
            raise AuthenticationError("the bearer token is a JWT, but this server accepts no JWTs (serve.jwt "
                                      "names neither an HS256 secret nor a JWKS URL); send an API key",
                                      INVALID_TOKEN_CHALLENGE)
        return self._jwt.verify(value)


def require_role(principal: Principal, required: Role) -> None:
    """PermissionDeniedError (403) unless `principal`'s role is at least `required`."""
    if not allows(principal, required):
        raise PermissionDeniedError(f"'{principal.key_id}' has the role {principal.role}; this needs {required}")

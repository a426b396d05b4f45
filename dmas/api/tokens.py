"""Bearer JWTs checked with PyJWT: signature (HS256 shared secret or an OIDC JWKS), exp, iss, aud, roles.

Each failure says what the client can fix (expired, wrong audience, unknown key id...), never the token.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from datetime import UTC, datetime

import jwt

from dmas.api.config import JwtSettings
from dmas.api.security import (
    INVALID_TOKEN_CHALLENGE,
    AuthenticationError,
    IdentityProviderUnavailableError,
    PermissionDeniedError,
    Principal,
    Role,
    highest_role,
)
from dmas.errors import ConfigError

log = logging.getLogger(__name__)
_MIN_SECRET_BYTES = 32  # RFC 7518 3.2: an HS256 key at least as long as the hash
_SHOWN_VALUES = 5  # claim values quoted in a 403 (a token may carry hundreds of groups)


def looks_like_jwt(value: str) -> bool:
    """Whether a bearer value is shaped like a JWS compact token (API keys have no dots)."""
    if value.count(".") != 2:
        return False
    try:
        jwt.get_unverified_header(value)
    except jwt.DecodeError:
        return False
    except jwt.InvalidTokenError:  # a JWT with a header PyJWT refuses: verify() says what is wrong
        pass
    return True


class JwtVerifier:
    """Verifies bearer JWTs against one `JwtSettings`; built once per replica (it caches the JWKS)."""

    def __init__(self, settings: JwtSettings):
        self.settings = settings
        self._secret = _hs256_secret(settings.hs256_secret_env) if settings.hs256_secret_env else None
        self._jwks = None
        if settings.jwks_url:
            self._jwks = jwt.PyJWKClient(settings.jwks_url, cache_jwk_set=True, lifespan=settings.jwks_cache_s,
                                         timeout=settings.jwks_timeout_s,
                                         cooldown_duration=settings.jwks_min_refetch_s)

    def verify(self, token: str) -> Principal:
        """The principal a valid token names; AuthenticationError (401), PermissionDeniedError (403) or
        IdentityProviderUnavailableError (503) otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise AuthenticationError(f"the bearer token is not a well-formed JWT: {exc}",
                                      INVALID_TOKEN_CHALLENGE) from None
        algorithm = header.get("alg")
        if algorithm == "HS256" and self._secret is not None:
            key = self._secret
        elif algorithm in self.settings.algorithms and self._jwks is not None:
            key = self._signing_key(header.get("kid"))
        else:
            raise AuthenticationError(f"tokens signed with {algorithm!r} are not accepted here (accepted: "
                                      f"{', '.join(self._accepted())})", INVALID_TOKEN_CHALLENGE)
        claims = self._decode(token, key, algorithm)
        return Principal(key_id=f"jwt:{self._subject(claims)}", role=self._role(claims), method="jwt")

    def _accepted(self) -> list[str]:
        return (["HS256"] if self._secret is not None else []) + (
            list(self.settings.algorithms) if self._jwks is not None else [])

    def _signing_key(self, kid: str | None) -> jwt.PyJWK:
        if not kid:
            raise AuthenticationError("the token has no 'kid' header, which picks its key from the identity "
                                      "provider's key set", INVALID_TOKEN_CHALLENGE)
        try:
            self._jwks.get_signing_keys()
        except jwt.PyJWTError as exc:
            raise self._unavailable(exc) from None
        try:
            return self._jwks.get_signing_key(kid)
        except jwt.PyJWKClientConnectionError as exc:
            raise self._unavailable(exc) from None
        except jwt.PyJWTError:
            raise AuthenticationError(f"the token is signed with key id {kid!r}, which the identity provider "
                                      "does not publish (a revoked key, or a token from another provider)",
                                      INVALID_TOKEN_CHALLENGE) from None

    def _unavailable(self, exc: Exception) -> IdentityProviderUnavailableError:
        log.warning("cannot fetch the JWKS from serve.jwt.jwks_url %s: %s", self.settings.jwks_url, exc)
        return IdentityProviderUnavailableError(
            f"the identity provider's signing keys cannot be fetched (serve.jwt.jwks_url, timeout "
            f"{self.settings.jwks_timeout_s:g} s), so no JWT can be checked now; API keys still work",
            retry_after_s=math.ceil(self.settings.jwks_timeout_s))

    def _decode(self, token: str, key: str | jwt.PyJWK, algorithm: str) -> dict:
        settings = self.settings
        try:
            return jwt.decode(token, key, algorithms=[algorithm], audience=settings.audience,
                              issuer=settings.issuer, leeway=settings.leeway_s,
                              options={"require": ["exp", "iss", "aud"]})
        except jwt.ExpiredSignatureError:
            expired = jwt.decode(token, options={"verify_signature": False})["exp"]
            message = f"the token expired at {datetime.fromtimestamp(expired, UTC).isoformat()}; get a new one"
        except jwt.MissingRequiredClaimError as exc:
            message = f"the token has no '{exc.claim}' claim, which dmas requires"
        except jwt.InvalidAudienceError:
            message = f"the token is not for this service: its audience must be {settings.audience!r}"
        except jwt.InvalidIssuerError:
            message = f"the token is not from the expected issuer: its issuer must be {settings.issuer!r}"
        except jwt.InvalidSignatureError:
            message = "the token's signature does not verify (signed with another key)"
        except jwt.ImmatureSignatureError:
            message = "the token is not valid yet (its nbf or iat is in the future)"
        except jwt.InvalidTokenError as exc:
            message = f"the token is not valid: {exc}"
        raise AuthenticationError(message, INVALID_TOKEN_CHALLENGE)

    def _subject(self, claims: dict) -> str:
        subject = _claim(claims, self.settings.subject_claim)
        if not isinstance(subject, str) or not subject:
            raise AuthenticationError(f"the token has no '{self.settings.subject_claim}' claim, which names the "
                                      "caller in the audit log", INVALID_TOKEN_CHALLENGE)
        return subject

    def _role(self, claims: dict) -> Role:
        name = self.settings.role_claim
        value = _claim(claims, name)
        if value is None:
            raise PermissionDeniedError(f"the token has no '{name}' claim, which is where dmas reads roles")
        if isinstance(value, str):
            values = value.split()
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            values = value
        else:
            raise PermissionDeniedError(f"the token's '{name}' claim is neither a list of strings nor a "
                                        "space-separated string")
        roles = {self.settings.role_map[item] for item in values if item in self.settings.role_map}
        if not roles:
            shown = ", ".join(values[:_SHOWN_VALUES]) + (", ..." if len(values) > _SHOWN_VALUES else "")
            raise PermissionDeniedError(f"none of the values of the token's '{name}' claim ({shown}) grants a "
                                        "dmas role")
        return highest_role(roles)


def _claim(claims: Mapping, path: str):
    """A claim by name, or by dotted path into nested objects when no claim has the whole name."""
    if path in claims:
        return claims[path]
    value = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _hs256_secret(env_name: str) -> str:
    secret = os.environ.get(env_name)
    if not secret:
        raise ConfigError(f"serve.jwt.hs256_secret_env names {env_name}, which is not set in this process; set "
                          "it wherever the service runs (every node, e.g. runtime_env env_vars)")
    if len(secret.encode()) < _MIN_SECRET_BYTES:
        raise ConfigError(f"the HS256 secret in {env_name} is {len(secret.encode())} bytes; it needs at least "
                          f"{_MIN_SECRET_BYTES}")
    return secret

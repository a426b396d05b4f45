"""Who is calling and what they may do: roles, stored keys, the authenticated principal, auth errors.

Roles: `viewer` may predict, explain, query and read runs; `admin` may do everything (ingest,
train, jobs). API keys and service tokens are stored only as sha256 digests and compared in
constant time. How a request's headers become a `Principal` is `dmas/api/auth.py`.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dmas.errors import DmasError

Role = Literal["viewer", "admin"]
Method = Literal["api_key", "service_token", "jwt", "none"]
_RANK = {"viewer": 0, "admin": 1}
CHALLENGE = 'Bearer realm="dmas"'
INVALID_TOKEN_CHALLENGE = 'Bearer realm="dmas", error="invalid_token"'


class ApiKey(BaseModel):
    """One configured key or service token: who it is (never the secret), its role, and the secret's sha256."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key_id: str = Field(min_length=1, description="name written to the audit log")
    role: Role
    sha256: str = Field(description="hex sha256 of the key")

    @field_validator("sha256")
    @classmethod
    def _hex_digest(cls, value: str) -> str:
        if len(value) != 64 or any(ch not in "0123456789abcdef" for ch in value):
            raise ValueError("must be the 64-hex-digit sha256 of the key (see `dmas keys KEY_ID --role ROLE`)")
        return value


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the name the audit log records, its role, and how it proved who it is."""

    key_id: str
    role: Role
    method: Method


class AuthenticationError(DmasError):
    """No credential, or one that does not verify (HTTP 401); `challenge` is the WWW-Authenticate value."""

    def __init__(self, message: str, challenge: str = CHALLENGE):
        super().__init__(message)
        self.challenge = challenge


class PermissionDeniedError(DmasError):
    """The caller is known but its role does not allow the request (HTTP 403)."""


class IdentityProviderUnavailableError(DmasError):
    """The identity provider's signing keys cannot be fetched, so no JWT can be checked now (HTTP 503)."""

    def __init__(self, message: str, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(key_id: str, role: Role) -> tuple[str, ApiKey]:
    """A fresh random key (shown once) and the entry to put in the settings."""
    key = secrets.token_urlsafe(32)
    return key, ApiKey(key_id=key_id, role=role, sha256=digest(key))


def authenticate(presented: str | None, keys: list[ApiKey]) -> ApiKey | None:
    """The key entry matching `presented`, comparing against every entry so timing reveals nothing."""
    if not presented:
        return None
    candidate = digest(presented)
    match = None
    for entry in keys:
        if hmac.compare_digest(candidate, entry.sha256):
            match = entry
    return match


def allows(holder: ApiKey | Principal, required: Role) -> bool:
    """Whether a key's or principal's role is at least `required`."""
    return _RANK[holder.role] >= _RANK[required]


def highest_role(roles: set[Role]) -> Role:
    return max(roles, key=_RANK.__getitem__)


def is_loopback_host(host: str) -> bool:
    """Whether a listen address only accepts connections from this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False

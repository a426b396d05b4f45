"""API keys and roles: keys are stored only as sha256 digests and compared in constant time.

Roles: `viewer` may predict, explain, query and read runs; `admin` may do everything (ingest,
train, jobs). A key is presented in the `X-API-Key` header (or `Authorization: Bearer ...`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Role = Literal["viewer", "admin"]
_RANK = {"viewer": 0, "admin": 1}


class ApiKey(BaseModel):
    """One configured key: who it is (never the key itself), its role, and the key's sha256."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key_id: str = Field(min_length=1, description="name written to the audit log")
    role: Role
    sha256: str = Field(description="hex sha256 of the key")

    @field_validator("sha256")
    @classmethod
    def _hex_digest(cls, value: str) -> str:
        if len(value) != 64 or any(ch not in "0123456789abcdef" for ch in value):
            raise ValueError("must be the 64-hex-digit sha256 of the key (see `dmas keys new`)")
        return value


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


def allows(key: ApiKey, required: Role) -> bool:
    return _RANK[key.role] >= _RANK[required]

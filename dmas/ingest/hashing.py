"""Content hashes of files, streamed."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: str | Path, block: int = 1024 * 1024) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        while data := handle.read(block):
            hasher.update(data)
    return hasher.hexdigest()

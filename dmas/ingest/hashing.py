"""Content hashes of files, streamed."""

from __future__ import annotations

import hashlib
from pathlib import Path

from dmas.errors import UnreadableFileError


def file_sha256(path: str | Path, block: int = 1024 * 1024) -> str:
    """The hex sha256 of a file; a file that cannot be opened is an UnreadableFileError naming it."""
    hasher = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while data := handle.read(block):
                hasher.update(data)
    except FileNotFoundError:
        raise UnreadableFileError(str(path), "no such file") from None
    except OSError as exc:
        raise UnreadableFileError(str(path), exc.strerror or str(exc)) from None
    return hasher.hexdigest()

"""Saving files clients upload into a job's staging folder: size-limited, names confined to the folder.

What a file *is* is decided later by its content (the ingest readers and the media sniffer), never
by the name or the declared content type.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from dmas.errors import LimitExceededError, UnsafePathError
from dmas.ingest.safe_paths import confined_path

_CHUNK = 1024 * 1024
_UNSAFE_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")


def plain_name(filename: str | None, default: str) -> str:
    """The client's file name reduced to a safe base name (no folders, no odd characters)."""
    base = PurePosixPath((filename or "").replace("\\", "/")).name
    cleaned = _UNSAFE_CHARACTERS.sub("_", base).lstrip(".")
    return cleaned or default


def save_upload(stream: BinaryIO, folder: Path, relative_name: str, max_bytes: int) -> Path:
    """Copy `stream` to `folder/relative_name`, refusing names that leave the folder and files over `max_bytes`.

    `relative_name` may hold sub-folders (a manifest's `media/a.jpg`); a partial file is removed
    when the limit is hit.
    """
    target = confined_path(folder, relative_name)
    if target == folder.resolve():
        raise UnsafePathError(f"an uploaded file needs a name, got {relative_name!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with open(target, "wb") as out:
        while chunk := stream.read(_CHUNK):
            written += len(chunk)
            if written > max_bytes:
                out.close()
                target.unlink()
                raise LimitExceededError(f"{relative_name}: upload is over the limit of {max_bytes} bytes")
            out.write(chunk)
    return target

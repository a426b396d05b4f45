"""Resolve user-supplied relative paths without letting them leave their base folder."""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath

from dmas.errors import UnsafePathError


def confined_path(base: str | Path, user_path: str) -> Path:
    """`base/user_path`, refusing absolute paths, `..` escapes and symlinks that point outside `base`."""
    text = str(user_path).strip()
    if not text:
        raise UnsafePathError("empty path")
    if PurePosixPath(text).is_absolute() or PureWindowsPath(text).is_absolute() or PureWindowsPath(text).drive:
        raise UnsafePathError(f"absolute paths are not allowed: {text!r}")
    root = Path(base).resolve()
    target = (root / text).resolve()
    if not target.is_relative_to(root):
        raise UnsafePathError(f"path leaves the manifest's folder: {text!r}")
    return target

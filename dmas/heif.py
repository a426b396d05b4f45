"""HEIC/HEIF photos, the iPhone camera's default format, open in Pillow through pillow-heif."""

from __future__ import annotations

import functools


@functools.cache
def enable_heif_images() -> None:
    """Register pillow-heif's opener with Pillow, once per process (ingest checks and decoders call it)."""
    import pillow_heif

    pillow_heif.register_heif_opener()

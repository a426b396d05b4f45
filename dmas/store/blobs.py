"""Content-addressed blob store: bytes live once under `blobs/ab/cd/<sha256>`.

Writes stream into a temporary name and are renamed into place, so a half-written blob never
becomes visible; a blob already present is not written again.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from pyarrow import fs as pafs

from dmas.errors import LimitExceededError, StoreError
from dmas.store.location import StoreLocation

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_READ_SIZE = 1024 * 1024


@dataclass(frozen=True)
class StagedBlob:
    """A blob written to a temporary name, not yet visible in the store."""

    sha256: str
    size_bytes: int
    head: bytes  # the first bytes, for content sniffing
    already_stored: bool
    filesystem: pafs.FileSystem
    tmp_path: str

    def open(self) -> BinaryIO:
        """A seekable reader of the staged bytes, for validating content before publishing."""
        return self.filesystem.open_input_file(self.tmp_path)


class BlobStore:
    def __init__(self, location: StoreLocation):
        self.location = location
        self.filesystem = location.filesystem

    def path_of(self, sha256: str) -> str:
        if not _SHA256.match(sha256):
            raise StoreError(f"not a sha256 digest: {sha256!r}")
        return self.location.path("blobs", sha256[:2], sha256[2:4], sha256)

    def exists(self, sha256: str) -> bool:
        return self.filesystem.get_file_info(self.path_of(sha256)).type == pafs.FileType.File

    @contextmanager
    def staged(self, stream: BinaryIO, max_bytes: int, head_bytes: int = 4096) -> Iterator[StagedBlob]:
        """Stream `stream` into a temporary blob, hashing as it goes; enforce `max_bytes` while reading.

        Inside the block the caller validates the content (`StagedBlob.open`); leaving the block
        normally publishes the blob under its sha256, raising discards it.
        """
        tmp_dir = self.location.path("blobs", "tmp")
        self.filesystem.create_dir(tmp_dir, recursive=True)
        tmp_path = f"{tmp_dir}/{uuid.uuid4().hex}"
        try:
            digest, size, head = self._copy_hashing(stream, tmp_path, max_bytes, head_bytes)
            info = StagedBlob(digest, size, head, self.exists(digest), self.filesystem, tmp_path)
            yield info
            if not info.already_stored:
                final = self.path_of(digest)
                self.filesystem.create_dir(final.rsplit("/", 1)[0], recursive=True)
                self.filesystem.move(tmp_path, final)
        finally:
            if self.filesystem.get_file_info(tmp_path).type == pafs.FileType.File:
                self.filesystem.delete_file(tmp_path)

    def _copy_hashing(self, stream: BinaryIO, tmp_path: str, max_bytes: int, head_bytes: int):
        hasher = hashlib.sha256()
        size = 0
        head = b""
        with self.filesystem.open_output_stream(tmp_path) as out:
            while chunk := stream.read(_READ_SIZE):
                size += len(chunk)
                if size > max_bytes:
                    raise LimitExceededError(f"larger than the upload limit of {max_bytes} bytes")
                if len(head) < head_bytes:
                    head += chunk[: head_bytes - len(head)]
                hasher.update(chunk)
                out.write(chunk)
        return hasher.hexdigest(), size, head

    def open(self, sha256: str) -> BinaryIO:
        return self.filesystem.open_input_file(self.path_of(sha256))

    def read(self, sha256: str) -> bytes:
        with self.open(sha256) as handle:
            return handle.read()

    def delete(self, sha256: str) -> bool:
        """Remove a blob; returns whether it existed."""
        if not self.exists(sha256):
            return False
        self.filesystem.delete_file(self.path_of(sha256))
        return True

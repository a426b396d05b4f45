"""Where a store lives: a local folder or any pyarrow filesystem URI, addressed the same way."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path

from pyarrow import fs as pafs


@dataclass(frozen=True)
class StoreLocation:
    """The root of a store: a pyarrow filesystem, the root path inside it, and the URI form."""

    filesystem: pafs.FileSystem
    root: str
    uri: str

    @classmethod
    def parse(cls, uri: str | Path) -> StoreLocation:
        """Accept a local path (relative or absolute) or a URI such as `s3://bucket/prefix`."""
        text = str(uri)
        if "://" not in text:
            local = str(Path(text).expanduser().resolve())
            return cls(pafs.LocalFileSystem(), local, local)
        filesystem, root = pafs.FileSystem.from_uri(text)
        return cls(filesystem, root.rstrip("/"), text.rstrip("/"))

    @property
    def is_local(self) -> bool:
        return isinstance(self.filesystem, pafs.LocalFileSystem)

    def path(self, *parts: str) -> str:
        """A path inside the root, for the pyarrow filesystem."""
        return posixpath.join(self.root, *parts)

    def uri_of(self, *parts: str) -> str:
        """A URI inside the root, for libraries that take URIs (deltalake)."""
        return posixpath.join(self.uri, *parts)

    def makedirs(self, *parts: str) -> None:
        self.filesystem.create_dir(self.path(*parts), recursive=True)

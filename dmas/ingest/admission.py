"""Admit media files into the blob store: stream into a staged blob, sniff, decode once, publish.

`admit_files` is one unit of manifest work, run in this process or as a Ray task on the machine
that reads the files (it takes paths, not bytes). A file's outcome depends only on its bytes, its
declared type and the limits, never on which other files share its task, so every split of a
manifest into tasks gives the same report and the same store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

import pyarrow as pa

from dmas.errors import DmasError, LimitExceededError, UnsafePathError
from dmas.ingest.fields import shown
from dmas.ingest.media_check import UnreadableMediaError, check_media
from dmas.ingest.safe_paths import confined_path
from dmas.ingest.sniff import CONTAINER_FORMATS, MediaKind, sniff_media
from dmas.limits import LimitSettings
from dmas.store.blobs import BlobStore, StagedBlob
from dmas.store.location import StoreLocation

# What `admit_files` says about each manifest row: the admitted blob, or the field and error text.
OUTCOMES = pa.schema([("row", pa.int64()), ("sha256", pa.string()), ("size_bytes", pa.int64()),
                      ("artifact_type", pa.string()), ("media_format", pa.string()),
                      ("field", pa.string()), ("error", pa.string())])


class ArtifactRejected(DmasError):
    """One artifact cannot be admitted; `field` names the offending input."""

    def __init__(self, field: str | None, reason: str):
        super().__init__(reason)
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class AdmittedBlob:
    """A published blob and what its content decodes as."""

    sha256: str
    size_bytes: int
    kind: MediaKind
    already_stored: bool


class Admitter:
    """Stages, sniffs, checks and publishes blobs; decodes each distinct content once."""

    def __init__(self, blobs: BlobStore, limits: LimitSettings):
        self.blobs = blobs
        self.limits = limits
        self._decoded: dict[str, MediaKind] = {}

    def admit(self, stream: BinaryIO, declared_type: str | None) -> AdmittedBlob:
        """Publish the blob under its sha256; ArtifactRejected (nothing published) when it may not be stored."""
        try:
            with self.blobs.staged(stream, self.limits.max_upload_bytes) as staged:
                kind = self._kind(staged, declared_type)
        except LimitExceededError as exc:
            raise ArtifactRejected("path", str(exc)) from None
        return AdmittedBlob(staged.sha256, staged.size_bytes, kind, staged.already_stored)

    def _kind(self, staged: StagedBlob, declared_type: str | None) -> MediaKind:
        sniffed = sniff_media(staged.head)
        if sniffed is None:
            raise ArtifactRejected(
                "path", f"not a supported image, audio or video file (starts with {staged.head[:8].hex(' ')})")
        streams_decide = sniffed.media_format in CONTAINER_FORMATS
        if not streams_decide:
            _require_declared(declared_type, sniffed)  # wrong whatever the pixels or samples hold: no decode
        kind = self._decoded.get(staged.sha256)
        if kind is None:
            kind = self._decoded[staged.sha256] = self._decode(staged, sniffed, streams_decide)
        _require_declared(declared_type, kind)
        return kind

    def _decode(self, staged: StagedBlob, sniffed: MediaKind, streams_decide: bool) -> MediaKind:
        try:
            with staged.open() as handle:
                checked = check_media(handle, None if streams_decide else sniffed.artifact_type,
                                      self.limits.max_image_pixels)
        except (UnreadableMediaError, LimitExceededError) as exc:
            raise ArtifactRejected("path", f"{sniffed.media_format}: {exc}") from None
        return MediaKind(checked, sniffed.media_format)


def _require_declared(declared_type: str | None, kind: MediaKind) -> None:
    if declared_type and declared_type != kind.artifact_type:
        raise ArtifactRejected("artifact_type", f"declared '{declared_type}' but the content is "
                                                f"{kind.artifact_type} ({kind.media_format})")


def admit_files(files: pa.Table, *, base: str, store_uri: str, limits: LimitSettings) -> pa.Table:
    """Admit each file of `files` (row, path relative to `base`, declared artifact_type); OUTCOMES, one per row."""
    admitter = Admitter(BlobStore(StoreLocation.parse(store_uri)), limits)
    outcomes: list[tuple] = []
    for row, path, declared in zip(files["row"].to_pylist(), files["path"].to_pylist(),
                                   files["artifact_type"].to_pylist()):
        try:
            with open(confined_path(base, path), "rb") as stream:
                blob = admitter.admit(stream, declared)
        except UnsafePathError as exc:
            outcomes.append((row, None, None, None, None, "path", str(exc)))
        except OSError as exc:
            outcomes.append((row, None, None, None, None, "path", f"cannot open {shown(path)}: {exc.strerror or exc}"))
        except ArtifactRejected as exc:
            outcomes.append((row, None, None, None, None, exc.field, f"{shown(path)}: {exc.reason}"))
        else:
            outcomes.append((row, blob.sha256, blob.size_bytes, blob.kind.artifact_type, blob.kind.media_format,
                             None, None))
    columns = list(zip(*outcomes)) if outcomes else [()] * len(OUTCOMES)
    return pa.Table.from_arrays([pa.array(column, type) for column, type in zip(columns, OUTCOMES.types)],
                                schema=OUTCOMES)

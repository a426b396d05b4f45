import hashlib
import io
from pathlib import Path

import pytest

from dmas.errors import LimitExceededError


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_blob_is_stored_once_under_its_sha256(store):
    data = b"some media bytes"
    digest = hashlib.sha256(data).hexdigest()
    with store.blobs.staged(io.BytesIO(data), max_bytes=100) as first:
        assert not first.already_stored
    with store.blobs.staged(io.BytesIO(data), max_bytes=100) as second:
        assert second.already_stored
    path = Path(store.blobs.path_of(digest))
    assert path.parts[-3:] == (digest[:2], digest[2:4], digest)
    assert store.blobs.read(digest) == data
    assert _files_under(Path(store.uri) / "blobs") == [path]


def test_over_limit_upload_leaves_nothing_behind(store):
    with pytest.raises(LimitExceededError, match="10 bytes"):
        with store.blobs.staged(io.BytesIO(b"x" * 11), max_bytes=10):
            pass
    assert _files_under(Path(store.uri) / "blobs") == []


def test_failure_during_validation_publishes_nothing(store):
    with pytest.raises(ValueError):
        with store.blobs.staged(io.BytesIO(b"bad"), max_bytes=10) as staged:
            assert staged.open().read() == b"bad"
            raise ValueError("content check failed")
    assert not store.blobs.exists(hashlib.sha256(b"bad").hexdigest())
    assert _files_under(Path(store.uri) / "blobs") == []

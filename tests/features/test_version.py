"""Feature version and the package entry points: what changes the version, what does not, and dispatch."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

import dmas.features.version as version
from dmas import synth_media
from dmas.features import (
    ARTIFACT_TYPES,
    FEATURE_NAMES,
    FeatureConfig,
    UndecodableMediaError,
    extract_features,
    feature_names,
    feature_version,
)

CHILD = """
import hashlib, sys
from pathlib import Path
from dmas.features import extract_features, feature_version
digest = hashlib.sha256()
for path in sorted(Path(sys.argv[1]).iterdir()):
    digest.update(extract_features(path.suffix[1:], path.read_bytes()).tobytes())
print(feature_version(), digest.hexdigest())
"""


def test_version_is_a_stable_sha256():
    first = feature_version()
    assert len(first) == 64 and int(first, 16) >= 0
    assert feature_version() == first == feature_version(FeatureConfig())


@pytest.mark.parametrize("change", [{"image_size": 64}, {"image_hist_bins": 16}, {"n_mfcc": 12},
                                    {"resample_type": "polyphase"}, {"video_frames": 4},
                                    {"edge_thresholds": (0.1,)}, {"rolloff_percent": 0.9}])
def test_any_config_change_changes_the_version(change):
    assert feature_version(FeatureConfig(**change)) != feature_version()


@pytest.mark.parametrize("bad", [{"image_hist_bins": 24}, {"image_size": 100, "hog_cells": 3}, {"delta_width": 8},
                                 {"n_mfcc": 50}, {"unknown": 1}, {"hop_length": 4096}])
def test_invalid_configs_are_refused(bad):
    with pytest.raises(ValidationError):
        FeatureConfig(**bad)


def test_config_is_frozen():
    with pytest.raises(ValidationError):
        FeatureConfig().n_mels = 10


def test_any_extractor_source_change_changes_the_manifest(tmp_path):
    here = Path(version.__file__).parent.parent
    for name in version.EXTRACTOR_MODULES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(here / name, tmp_path / name)
    original = version.source_manifest(tmp_path)
    assert original == version.source_manifest(here)  # the folder's path does not count
    for name in version.EXTRACTOR_MODULES:
        path = tmp_path / name
        source = path.read_bytes()
        path.write_bytes(source + b"\n# changed\n")
        assert version.source_manifest(tmp_path) != original, name
        path.write_bytes(source.replace(b"\n", b"\r\n"))
        assert version.source_manifest(tmp_path) == original, name  # line endings do not count
        path.write_bytes(source)


def test_a_library_version_change_changes_the_version(monkeypatch):
    before = feature_version()
    real = version.metadata.version
    monkeypatch.setattr(version.metadata, "version", lambda name: "0.0" if name == "librosa" else real(name))
    version._version.cache_clear()
    try:
        assert feature_version() != before
    finally:
        monkeypatch.undo()
        version._version.cache_clear()
    assert feature_version() == before


def test_same_version_and_bytes_in_another_process_cwd_and_thread_count(tmp_path):
    """The version ignores the working folder; vectors ignore BLAS/OpenMP thread counts (Ray runs 1)."""
    rng = np.random.default_rng(7)
    media = {
        "image": synth_media.encode_image(synth_media.render_image(0.3, rng), "jpeg"),
        "audio": synth_media.encode_wav(synth_media.render_tone(0.6, rng)),
        "video": synth_media.encode_mp4(synth_media.render_video(0.2, rng)),
    }
    (tmp_path / "media").mkdir()
    digest = hashlib.sha256()
    for kind in sorted(media):
        (tmp_path / "media" / f"x.{kind}").write_bytes(media[kind])
    for path in sorted((tmp_path / "media").iterdir()):
        digest.update(extract_features(path.suffix[1:], path.read_bytes()).tobytes())
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": str(Path(version.__file__).parents[2])}
    child = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "media")], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120, check=True)
    assert child.stdout.split() == [feature_version(), digest.hexdigest()]


def test_names_are_unique_across_kinds_and_match_the_vectors():
    every = [name for kind in ARTIFACT_TYPES for name in FEATURE_NAMES[kind]]
    assert len(every) == len(set(every))
    assert {kind: len(names) for kind, names in FEATURE_NAMES.items()} == {"image": 296, "audio": 143, "video": 251}
    assert feature_names("audio", FeatureConfig(n_mfcc=4)) != FEATURE_NAMES["audio"]


def test_dispatch_by_artifact_type():
    rng = np.random.default_rng(8)
    png = synth_media.encode_image(synth_media.render_image(0.1, rng), "png")
    assert extract_features("image", png).shape == (len(FEATURE_NAMES["image"]),)
    with pytest.raises(UndecodableMediaError):
        extract_features("audio", png)
    with pytest.raises(UndecodableMediaError):
        extract_features("video", png)
    with pytest.raises(ValueError, match="unknown artifact type"):
        extract_features("text", png)
    with pytest.raises(ValueError, match="unknown artifact type"):
        feature_names("text")

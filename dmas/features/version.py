"""The extractor settings and the feature version that pins what produced a vector.

`feature_version` is a sha256 over exactly what shapes the numbers: the extractor source, the
`FeatureConfig` values and the versions of the libraries doing the arithmetic and decoding. Nothing
else (time, paths, machine) enters it, so the same code and config give the same version anywhere.
"""

from __future__ import annotations

import functools
import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import Literal

import av
from PIL import features as pil_features
from pydantic import BaseModel, ConfigDict, Field, model_validator

# paths below the dmas package: the extractors, and what the decoders share with ingest (stream choice, HEIF)
EXTRACTOR_MODULES = ("features/decode.py", "features/image.py", "features/audio.py", "features/video.py",
                     "media_streams.py", "heif.py")
VERSIONED_DISTRIBUTIONS = ("numpy", "scipy", "pillow", "pillow-heif", "librosa", "soxr", "av")
_PILLOW_CODECS = ("jpg", "jpg_2000", "libtiff")
_PILLOW_MODULES = ("webp", "avif")
_FORMAT_TAG = "dmas.features/1"
_PACKAGE = Path(__file__).parent.parent


class FeatureConfig(BaseModel):
    """Every setting that changes a feature value; part of `feature_version`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    image_size: int = Field(128, ge=16, le=1024, description="side of the square resize for HOG and edges")
    image_hist_bins: int = Field(32, description="bins per histogram; divides 256")
    hog_cells: int = Field(4, ge=1, description="HOG grid is hog_cells x hog_cells cells")
    hog_orientations: int = Field(9, ge=2, description="unsigned orientation bins over 0-180 degrees")
    edge_thresholds: tuple[float, ...] = Field((0.05, 0.1, 0.2, 0.4), min_length=1,
                                               description="gradient magnitudes counted as edges")
    image_background: tuple[int, int, int] = Field((255, 255, 255), description="RGB under transparent pixels")
    audio_rate_hz: int = Field(22050, ge=1000, description="every clip is resampled to this rate")
    resample_type: Literal["soxr_hq", "soxr_vhq", "polyphase"] = "soxr_hq"
    n_fft: int = Field(2048, ge=64, description="STFT window length in samples")
    hop_length: int = Field(512, ge=1, description="STFT hop in samples")
    n_mels: int = Field(40, ge=2, description="mel bands of the spectrogram the MFCCs are taken from")
    n_mfcc: int = Field(13, ge=1, description="MFCCs kept (and as many deltas)")
    delta_width: int = Field(9, ge=3, description="odd window of the MFCC delta filter")
    rolloff_percent: float = Field(0.85, gt=0, lt=1, description="spectral rolloff energy share")
    video_frames: int = Field(8, ge=1, description="frames sampled uniformly over each video")
    video_hist_bins: int = Field(16, description="bins per RGB channel of each frame; divides 256")
    motion_size: int = Field(64, ge=8, description="side of the grayscale resize for frame differences")

    @model_validator(mode="after")
    def _check_shapes(self) -> FeatureConfig:
        for name in ("image_hist_bins", "video_hist_bins"):
            bins = getattr(self, name)
            if bins < 1 or 256 % bins:
                raise ValueError(f"{name}={bins} must divide 256")
        if self.image_size % self.hog_cells:
            raise ValueError(f"image_size={self.image_size} must be a multiple of hog_cells={self.hog_cells}")
        if self.delta_width % 2 == 0:
            raise ValueError(f"delta_width={self.delta_width} must be odd")
        if self.n_mfcc > self.n_mels:
            raise ValueError(f"n_mfcc={self.n_mfcc} cannot exceed n_mels={self.n_mels}")
        if self.hop_length > self.n_fft:
            raise ValueError(f"hop_length={self.hop_length} cannot exceed n_fft={self.n_fft}")
        return self


DEFAULT_FEATURE_CONFIG = FeatureConfig()


def feature_version(config: FeatureConfig | None = None) -> str:
    """sha256 (hex) of the extractor source, `config` and the number-shaping library versions."""
    return _version(config or DEFAULT_FEATURE_CONFIG)


@functools.lru_cache(maxsize=32)
def _version(config: FeatureConfig) -> str:
    digest = hashlib.sha256()
    for part in (_FORMAT_TAG, source_manifest(_PACKAGE), config.model_dump_json(), library_manifest()):
        encoded = part.encode()
        digest.update(len(encoded).to_bytes(8, "big") + encoded)
    return digest.hexdigest()


def source_manifest(folder: Path) -> str:
    """Path and sha256 of each extractor module below the package `folder`; line endings are normalised,
    so how a checkout stores them does not count, and the folder's own path never enters."""
    hashes = {name: hashlib.sha256((folder / name).read_bytes().replace(b"\r\n", b"\n")).hexdigest()
              for name in EXTRACTOR_MODULES}
    return json.dumps(hashes, sort_keys=True)


def library_manifest() -> str:
    """Versions of the Python packages plus the native libraries behind them (FFmpeg, libjpeg, ...)."""
    versions = {name: metadata.version(name) for name in VERSIONED_DISTRIBUTIONS}
    versions["ffmpeg"] = {name: ".".join(map(str, v)) for name, v in sorted(av.library_versions.items())}
    versions["pillow_codecs"] = {name: pil_features.version_codec(name) for name in _PILLOW_CODECS}
    versions["pillow_modules"] = {name: pil_features.version_module(name) for name in _PILLOW_MODULES}
    return json.dumps(versions, sort_keys=True)

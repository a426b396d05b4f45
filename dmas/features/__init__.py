"""Feature extraction: encoded media bytes -> fixed-length float32 vectors with a name per dimension.

The extractors are pure functions with no Ray inside; `pipeline.py` runs them on Ray Data.
"""

from __future__ import annotations

import numpy as np

from dmas.features.audio import AUDIO_FEATURE_NAMES, audio_feature_names, extract_audio_features
from dmas.features.decode import DEFAULT_MAX_PIXELS, UndecodableMediaError
from dmas.features.image import IMAGE_FEATURE_NAMES, extract_image_features, image_feature_names
from dmas.features.version import DEFAULT_FEATURE_CONFIG, FeatureConfig, feature_version
from dmas.features.video import VIDEO_FEATURE_NAMES, extract_video_features, video_feature_names
from dmas.vocabulary import ARTIFACT_TYPES

FEATURE_NAMES: dict[str, tuple[str, ...]] = {
    "image": IMAGE_FEATURE_NAMES,
    "audio": AUDIO_FEATURE_NAMES,
    "video": VIDEO_FEATURE_NAMES,
}

__all__ = [
    "ARTIFACT_TYPES", "AUDIO_FEATURE_NAMES", "DEFAULT_FEATURE_CONFIG", "FEATURE_NAMES", "IMAGE_FEATURE_NAMES",
    "VIDEO_FEATURE_NAMES", "FeatureConfig", "UndecodableMediaError", "extract_audio_features", "extract_features",
    "extract_image_features", "extract_video_features", "feature_names", "feature_version",
]


def feature_names(artifact_type: str, config: FeatureConfig | None = None) -> tuple[str, ...]:
    """Names of the dimensions `extract_features(artifact_type, ...)` returns under `config`."""
    config = config or DEFAULT_FEATURE_CONFIG
    if artifact_type == "image":
        return image_feature_names(config)
    if artifact_type == "audio":
        return audio_feature_names(config)
    if artifact_type == "video":
        return video_feature_names(config)
    raise ValueError(f"unknown artifact type {artifact_type!r}; expected one of {ARTIFACT_TYPES}")


def extract_features(artifact_type: str, data: bytes, config: FeatureConfig | None = None,
                     max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The feature vector of one artifact's bytes; UndecodableMediaError when they do not decode.

    `max_pixels` bounds image and video frame size (it decides what is refused, not the values).
    """
    if artifact_type == "image":
        return extract_image_features(data, config, max_pixels)
    if artifact_type == "audio":
        return extract_audio_features(data, config)
    if artifact_type == "video":
        return extract_video_features(data, config, max_pixels)
    raise ValueError(f"unknown artifact type {artifact_type!r}; expected one of {ARTIFACT_TYPES}")

"""Video features: colour histograms and motion over frames sampled uniformly, timing, and the audio track.

`decode_video` keeps `video_frames` frames spread evenly over the stream. Each frame gives RGB
histograms and its mean brightness, aggregated by mean and std over the frames; consecutive sampled
frames give motion (mean absolute difference on a small grayscale resize). When the file has an
audio track it goes through the audio extractor (`vid.aud.*`); otherwise those dimensions are 0 and
`vid.has_audio` is 0, so every video has the same vector length.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from dmas.features.audio import audio_feature_names, extract_audio_features, mean_std
from dmas.features.decode import DEFAULT_MAX_PIXELS, VideoClip, decode_video, finite_vector
from dmas.features.version import DEFAULT_FEATURE_CONFIG, FeatureConfig

_STATS = ("mean", "std")
_CHANGED = 0.1  # a pixel whose grayscale value moves more than this (in [0, 1]) counts as changed
_TIMING = ("frame_count", "fps", "duration_s", "width", "height")
_LEVELS = np.arange(256) / 255.0


def video_feature_names(config: FeatureConfig = DEFAULT_FEATURE_CONFIG) -> tuple[str, ...]:
    """Names of the dimensions `extract_video_features` returns under `config`, in order."""
    names = [f"vid.hist.{channel}.b{b:02d}.{stat}" for channel in "rgb" for b in range(config.video_hist_bins)
             for stat in _STATS]
    names += [f"vid.brightness.{stat}" for stat in _STATS]
    names += ["vid.motion.mean", "vid.motion.std", "vid.motion.max", "vid.motion.changed_share"]
    names += [f"vid.{name}" for name in _TIMING]
    names += ["vid.has_audio", *audio_feature_names(config, prefix="vid.aud.")]
    return tuple(names)


VIDEO_FEATURE_NAMES = video_feature_names()


def extract_video_features(data: bytes, config: FeatureConfig | None = None,
                           max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Feature vector (float32, `len(video_feature_names(config))`) of an encoded video.

    Raises UndecodableMediaError for bytes without a decodable video stream, frames above
    `max_pixels`, or a broken audio track.
    """
    config = config or DEFAULT_FEATURE_CONFIG
    clip = decode_video(data, config.video_frames, max_pixels)
    histograms, brightness, grays = _per_frame(clip.frames, config.video_hist_bins, config.motion_size)
    parts = [
        mean_std(histograms),
        mean_std(brightness[:, None]),
        _motion(grays),
        _timing(clip),
        float(clip.has_audio),
        extract_audio_features(data, config) if clip.has_audio else np.zeros(len(audio_feature_names(config))),
    ]
    return finite_vector(parts, "video")


def _per_frame(frames: tuple[np.ndarray, ...], bins: int, motion_size: int,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame: normalised RGB histograms (F, 3 * bins), mean brightness (F,), small grayscale (F, s, s)."""
    histograms, brightness, grays = [], [], []
    for frame in frames:
        image = Image.fromarray(frame, "RGB")
        counts = np.asarray(image.histogram(), dtype=np.float64).reshape(3, bins, 256 // bins).sum(axis=2)
        histograms.append((counts / counts.sum(axis=1, keepdims=True)).ravel())
        gray = image.convert("L")
        brightness.append((np.asarray(gray.histogram()) * _LEVELS).sum() / (gray.width * gray.height))
        small = gray.resize((motion_size, motion_size), Image.Resampling.BILINEAR)
        grays.append(np.asarray(small, dtype=np.float32) / np.float32(255.0))
    return np.array(histograms), np.array(brightness), np.array(grays)


def _motion(grays: np.ndarray) -> list[float]:
    """Mean, std and max over consecutive sampled frames of their mean absolute difference, and the
    mean share of changed pixels; all 0 for a single frame."""
    if len(grays) < 2:
        return [0.0, 0.0, 0.0, 0.0]
    differences = np.abs(np.diff(grays.astype(np.float64), axis=0))  # (F - 1, s, s)
    per_pair = differences.mean(axis=(1, 2))
    return [per_pair.mean(), per_pair.std(), per_pair.max(), (differences > _CHANGED).mean()]


def _timing(clip: VideoClip) -> list[float]:
    return [clip.frame_count, clip.fps, clip.duration_s, clip.width, clip.height]


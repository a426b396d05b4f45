"""Image features: colour histograms and moments, HOG, edge density and size, as one float32 vector.

Every image is first normalised by `decode_image` (upright, 8-bit RGB, transparency flattened).
Histograms and moments use all pixels, so they do not depend on the image size; HOG and edges use a
fixed square grayscale resize, so every image gives the same number of cells.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageChops

from dmas.features.decode import DEFAULT_MAX_PIXELS, decode_image, finite_vector
from dmas.features.version import DEFAULT_FEATURE_CONFIG, FeatureConfig

_CHANNELS = ("r", "g", "b", "gray")  # rows of `_channel_counts`
_FLAT_STD = 1e-6  # below this spread (in [0, 1] units) a channel is flat and its skew is defined as 0
_LEVELS = np.arange(256, dtype=np.float64) / 255.0


def image_feature_names(config: FeatureConfig = DEFAULT_FEATURE_CONFIG) -> tuple[str, ...]:
    """Names of the dimensions `extract_image_features` returns under `config`, in order."""
    bins = config.image_hist_bins
    names = [f"img.hist.{channel}.b{b:02d}" for channel in _CHANNELS for b in range(bins)]
    names += [f"img.{channel}.{stat}" for channel in _CHANNELS for stat in ("mean", "std", "skew")]
    names += [f"img.{channel}.{stat}" for channel in ("val", "chroma") for stat in ("mean", "std")]
    names += [f"img.hog.r{r}c{c}.o{o}" for r in range(config.hog_cells) for c in range(config.hog_cells)
              for o in range(config.hog_orientations)]
    names += ["img.edge.gt" + format(t * 100, "g").replace(".", "p") + "pct" for t in config.edge_thresholds]
    names += ["img.grad.mean", "img.grad.std", "img.log2_width", "img.log2_height"]
    return tuple(names)


IMAGE_FEATURE_NAMES = image_feature_names()


def extract_image_features(data: bytes, config: FeatureConfig | None = None,
                           max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Feature vector (float32, `len(image_feature_names(config))`) of an encoded image.

    Raises UndecodableMediaError for bytes that do not decode or exceed `max_pixels`.
    """
    config = config or DEFAULT_FEATURE_CONFIG
    image = decode_image(data, max_pixels, config.image_background)
    gray = image.convert("L")
    counts = _channel_counts(image, gray)
    small = gray.resize((config.image_size, config.image_size), Image.Resampling.BILINEAR)
    gx, gy = _gradients(np.asarray(small, dtype=np.float32) / np.float32(255.0))
    magnitude = np.hypot(gx, gy)
    parts = [
        _binned(counts, config.image_hist_bins),
        _moments(counts, with_skew=True),
        _moments(_value_chroma_counts(image), with_skew=False),
        _hog(gx, gy, magnitude, config.hog_cells, config.hog_orientations),
        [(magnitude > t).mean() for t in config.edge_thresholds],
        [magnitude.mean(), magnitude.std(), np.log2(image.width), np.log2(image.height)],
    ]
    return finite_vector(parts, "image")


def _channel_counts(image: Image.Image, gray: Image.Image) -> np.ndarray:
    """(4, 256) pixel counts of R, G, B and luma levels, computed by Pillow over every pixel."""
    return np.asarray(image.histogram() + gray.histogram(), dtype=np.float64).reshape(4, 256)


def _value_chroma_counts(image: Image.Image) -> np.ndarray:
    """256-level counts of HSV value (max of R, G, B) and chroma (max - min), over every pixel.

    Chroma rather than saturation (chroma / value): it needs no division, so Pillow's channel
    operations compute it several times faster than an HSV conversion.
    """
    red, green, blue = image.split()
    value = ImageChops.lighter(ImageChops.lighter(red, green), blue)
    chroma = ImageChops.subtract(value, ImageChops.darker(ImageChops.darker(red, green), blue))
    return np.asarray(value.histogram() + chroma.histogram(), dtype=np.float64).reshape(2, 256)


def _binned(counts: np.ndarray, bins: int) -> np.ndarray:
    """Histograms with `bins` equal-width bins, each normalised to sum to 1."""
    merged = counts.reshape(counts.shape[0], bins, 256 // bins).sum(axis=2)
    return merged / merged.sum(axis=1, keepdims=True)


def _moments(counts: np.ndarray, with_skew: bool) -> np.ndarray:
    """Mean, std (and skewness) per channel of values in [0, 1], from exact level counts."""
    p = counts / counts.sum(axis=1, keepdims=True)
    mean = (p * _LEVELS).sum(axis=1)
    centred = _LEVELS[None, :] - mean[:, None]
    std = np.sqrt((p * centred**2).sum(axis=1))
    if not with_skew:
        return np.stack([mean, std], axis=1)
    third = (p * centred**3).sum(axis=1)
    skew = np.where(std > _FLAT_STD, third / np.maximum(std, _FLAT_STD) ** 3, 0.0)
    return np.stack([mean, std, skew], axis=1)


def _gradients(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Central-difference derivatives per pixel (zero on the border), intensity in [0, 1]."""
    gx = np.zeros_like(gray)
    gy = np.zeros_like(gray)
    gx[:, 1:-1] = (gray[:, 2:] - gray[:, :-2]) * np.float32(0.5)
    gy[1:-1, :] = (gray[2:, :] - gray[:-2, :]) * np.float32(0.5)
    return gx, gy


def _hog(gx: np.ndarray, gy: np.ndarray, magnitude: np.ndarray, cells: int, orientations: int) -> np.ndarray:
    """Magnitude-weighted unsigned orientation histograms per cell, L2-normalised over the whole grid.

    Each pixel's vote is split linearly between the two nearest orientation bins (wrapping at 180
    degrees), as in Dalal and Triggs; the global normalisation makes it contrast-invariant.
    """
    angle = np.arctan2(gy, gx)
    angle += np.float32(np.pi) * (angle < 0)  # unsigned orientation in [0, pi]
    position = angle * np.float32(orientations / np.pi) - np.float32(0.5)  # in [-0.5, orientations - 0.5]
    lower = np.floor(position)
    upper_vote = magnitude * (position - lower)
    lower_bin = lower.astype(np.intp)
    lower_bin = np.where(lower_bin < 0, orientations - 1, lower_bin)
    upper_bin = np.where(lower_bin == orientations - 1, 0, lower_bin + 1)
    base = _cell_offsets(gx.shape[0], cells, orientations)
    size = cells * cells * orientations
    hist = (np.bincount((base + lower_bin).ravel(), (magnitude - upper_vote).ravel(), size)
            + np.bincount((base + upper_bin).ravel(), upper_vote.ravel(), size))
    norm = np.sqrt((hist**2).sum())
    return hist / norm if norm > 0 else hist


@functools.lru_cache(maxsize=8)
def _cell_offsets(side: int, cells: int, orientations: int) -> np.ndarray:
    """(side, side) index of each pixel's first histogram slot: cell number x orientations."""
    cell_of_row = np.arange(side) // (side // cells)
    offsets = (cell_of_row[:, None] * cells + cell_of_row[None, :]) * orientations
    offsets.flags.writeable = False
    return offsets

"""Render and encode the synthetic media files of `dmas.synth`, byte-reproducibly.

Each renderer turns one scalar "media signal" (a latent in [0, 1]) into content that a simple
feature extractor can see: image brightness, audio tone pitch, video motion speed. Everything else
(hue, texture, loudness, colours) is nuisance drawn from the caller's generator. Each encoder
returns the file's bytes; no encoder writes a timestamp, a version string or depends on thread
scheduling, so the same arrays always give the same bytes (for fixed library versions).
"""

from __future__ import annotations

import colorsys
import io
import wave

import av
import numpy as np
from PIL import Image

IMAGE_SIZE = 64
AUDIO_RATE_HZ = 8000
AUDIO_SECONDS = 0.5
VIDEO_SIZE = 64
VIDEO_FPS = 10
VIDEO_FRAMES = 10
_SQUARE = 16


def render_image(signal: float, rng: np.random.Generator) -> np.ndarray:
    """An RGB uint8 image (H, W, 3) whose mean brightness rises with `signal`; hue and texture are noise."""
    value = 0.15 + 0.8 * signal
    base = np.array(colorsys.hsv_to_rgb(rng.random(), 0.35 + 0.4 * rng.random(), value)) * 255.0
    blocks = rng.normal(0.0, 12.0 + 10.0 * rng.random(), size=(8, 8, 1))
    texture = np.kron(blocks, np.ones((IMAGE_SIZE // 8, IMAGE_SIZE // 8, 1)))  # (H, W, 1)
    gradient = np.linspace(-10.0, 10.0, IMAGE_SIZE)[:, None, None] * rng.choice([-1.0, 1.0])
    return np.clip(base + texture + gradient, 0, 255).round().astype(np.uint8)


def render_stock_image(index: int) -> np.ndarray:
    """One of a handful of fixed "stock" pictures (stripes or checkerboards), identical every run."""
    y, x = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE]
    period = 4 + 4 * (index % 3)
    mask = ((x // period) % 2 == 0) if index % 2 == 0 else (((x // period) + (y // period)) % 2 == 0)
    palette = np.array([[230, 60, 40], [40, 120, 220], [250, 210, 60], [90, 200, 120]], dtype=np.uint8)
    image = np.empty((IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    image[mask] = palette[index % len(palette)]
    image[~mask] = 255 - palette[index % len(palette)]
    return image


def render_tone(signal: float, rng: np.random.Generator) -> np.ndarray:
    """Mono int16 samples of a tone whose pitch rises with `signal` (110 Hz .. 1760 Hz); loudness is noise."""
    frequency = 110.0 * 2.0 ** (4.0 * signal)
    t = np.arange(int(AUDIO_RATE_HZ * AUDIO_SECONDS)) / AUDIO_RATE_HZ
    amplitude = 0.2 + 0.6 * rng.random()
    wave_ = amplitude * np.sin(2 * np.pi * frequency * t + rng.random() * 2 * np.pi)
    wave_ += rng.normal(0.0, 0.02, size=t.shape)
    return (np.clip(wave_, -1.0, 1.0) * 32767).round().astype(np.int16)


def render_jingle() -> np.ndarray:
    """The shared audio jingle (a fixed three-note chord), identical every run."""
    t = np.arange(int(AUDIO_RATE_HZ * AUDIO_SECONDS)) / AUDIO_RATE_HZ
    chord = sum(np.sin(2 * np.pi * f * t) for f in (523.25, 659.25, 783.99)) / 3.0
    return (0.5 * chord * 32767).round().astype(np.int16)


def render_video(signal: float, rng: np.random.Generator) -> np.ndarray:
    """RGB uint8 frames (T, H, W, 3) of a square moving right at a speed that rises with `signal`."""
    speed = 1.0 + 6.0 * signal  # pixels per frame
    background = rng.integers(0, 120, size=3)
    square = rng.integers(140, 256, size=3)
    top = int(rng.integers(0, VIDEO_SIZE - _SQUARE))
    start = rng.random() * VIDEO_SIZE
    frames = np.empty((VIDEO_FRAMES, VIDEO_SIZE, VIDEO_SIZE, 3), dtype=np.uint8)
    frames[:] = background
    columns = np.arange(VIDEO_SIZE)
    for k in range(VIDEO_FRAMES):
        left = (start + speed * k) % VIDEO_SIZE
        inside = (columns - left) % VIDEO_SIZE < _SQUARE  # wraps around the right edge
        frames[k, top : top + _SQUARE, inside] = square
    return frames


def encode_image(image: np.ndarray, fmt: str) -> bytes:
    """PNG or JPEG bytes of an RGB image; Pillow writes no timestamp into either."""
    buffer = io.BytesIO()
    if fmt == "png":
        Image.fromarray(image, "RGB").save(buffer, format="PNG", compress_level=6)
    else:
        Image.fromarray(image, "RGB").save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def encode_wav(samples: np.ndarray, rate: int = AUDIO_RATE_HZ) -> bytes:
    """16-bit WAV bytes: mono from a 1-D array, one channel per column of a 2-D [frames, channels] array."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1 if samples.ndim == 1 else samples.shape[1])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.astype("<i2").tobytes())
    return buffer.getvalue()


def encode_mp4(frames: np.ndarray) -> bytes:
    """MP4 (MPEG-4 Part 2) bytes of RGB frames, single-threaded and bitexact so no version or time is written."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream("mpeg4", rate=VIDEO_FPS)
        stream.width = frames.shape[2]
        stream.height = frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1
        stream.codec_context.thread_type = "NONE"
        stream.codec_context.options = {"flags": "+bitexact"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()

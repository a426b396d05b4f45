"""Decode media bytes into normalised arrays, the same way every time, for the extractors.

One decoder per kind keeps the numbers reproducible: Pillow for images, PyAV (FFmpeg) for audio and
video, always single-threaded. Anything that does not decode cleanly raises `UndecodableMediaError`
with a one-line reason, so a caller can mark the artifact failed instead of storing garbage.
"""

from __future__ import annotations

import io
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import av
import librosa
import numpy as np
from av.video.reformatter import VideoReformatter
from PIL import Image, ImageOps

from dmas.errors import DmasError
from dmas.heif import enable_heif_images
from dmas.media_streams import moving_video_streams

DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's decompression-bomb threshold
_TRUNCATION_RATIO = 0.9  # fewer than this share of the frames/samples the header promises means truncated
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
_IMAGE_DEMUXERS = ("_pipe", "image2")  # FFmpeg's still-image readers: an image is no video
_CLOCK = re.compile(r"(\d+):(\d{2}):(\d{2}(?:\.\d+)?)")  # HH:MM:SS.fraction
_RIFF_UNKNOWN_SIZE = 0xFFFFFFF0  # streaming writers put ~0xFFFFFFFF when the length is not known
_WAV_PROBE_BYTES = 32  # FFmpeg's minimum probesize
_THREAD_STATE = threading.local()
_MONO_MIX_FRAMES = 256  # decoded audio frames mixed to mono at once (~6 s of 1024-sample frames at 44.1 kHz)
_SAMPLE_SCALE = {"u8": 128.0, "s16": 2.0**15, "s32": 2.0**31, "s64": 2.0**63, "flt": 1.0, "dbl": 1.0}


class UndecodableMediaError(DmasError, ValueError):
    """The bytes are not media this extractor can decode (corrupt, truncated, unsupported, too large)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# ---------------------------------------------------------------- images


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS,
                 background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """The first frame of an image as upright 8-bit RGB, transparency composited over `background`.

    Raises UndecodableMediaError above `max_pixels` (checked before the pixels are decoded).
    """
    enable_heif_images()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                _check_pixels(image.size, max_pixels)
                image.load()
                upright = ImageOps.exif_transpose(image)
                return _to_rgb(upright, background)
    except (UndecodableMediaError, MemoryError):
        raise
    except Image.DecompressionBombError as exc:
        raise UndecodableMediaError(f"image is too large to decode safely: {exc}") from exc
    except Exception as exc:  # Pillow raises many types for broken files
        raise UndecodableMediaError(f"image does not decode: {_describe(exc)}") from exc


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise UndecodableMediaError(
            f"image is {width}x{height} = {width * height} pixels, above the limit of {max_pixels}")
    if width * height == 0:
        raise UndecodableMediaError("image has no pixels")


def _to_rgb(image: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """Any Pillow mode -> RGB: 16-bit scaled to 8 bits, alpha and transparency keys composited."""
    if image.mode in _SIXTEEN_BIT_MODES:
        wide = np.asarray(image).astype(np.int64)
        return Image.fromarray((np.clip(wide, 0, 65535) >> 8).astype(np.uint8), "L").convert("RGB")
    if image.mode == "F":
        values = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0)
        return Image.fromarray(np.clip(values, 0, 255).round().astype(np.uint8), "L").convert("RGB")
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        base = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(base, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


# ---------------------------------------------------------------- audio


def decode_audio(data: bytes, target_rate: int = 22050, res_type: str = "soxr_hq") -> np.ndarray:
    """Mono float32 samples of the first audio stream at `target_rate` Hz.

    Channels are averaged and the rate converted with librosa's `res_type`, so any input rate and
    channel count lands on the same grid; the same bytes always give the same samples.
    """
    with open_media(data) as container:
        if not container.streams.audio:
            raise UndecodableMediaError("no audio stream in the file")
        stream = _single_threaded(container.streams.audio[0])
        rate, chunks = _decode_audio_frames(container, stream)
        declared_seconds = _declared_seconds(stream)
    if not chunks:
        raise UndecodableMediaError("the audio stream has no decodable samples")
    mono = np.concatenate(chunks)
    del chunks  # a long recording's samples, held twice otherwise while they are resampled
    _check_not_truncated(mono.size, round(declared_seconds * rate) if declared_seconds else None, "samples")
    if not np.isfinite(mono).all():
        raise UndecodableMediaError("the audio contains non-finite samples")
    if rate == target_rate:
        return mono
    resampled = librosa.resample(mono, orig_sr=rate, target_sr=target_rate, res_type=res_type)
    return resampled.astype(np.float32, copy=False)


def _decode_audio_frames(container: av.container.InputContainer,
                         stream: av.audio.stream.AudioStream) -> tuple[int, list[np.ndarray]]:
    """Decode every frame into float32 mono chunks; the rate must not change mid-stream.

    Consecutive frames of one sample format and channel count are mixed together, at most
    `_MONO_MIX_FRAMES` at a time: converting frame by frame costs more than decoding them, and
    holding a long recording's channels until the end would cost gigabytes.
    """
    rate = 0
    chunks: list[np.ndarray] = []
    shape: tuple[str, int] | None = None
    pending: list[np.ndarray] = []
    for frame in _decode(container, stream):
        if frame.samples == 0:
            continue
        if rate and frame.sample_rate != rate:
            raise UndecodableMediaError(f"the sample rate changes mid-stream ({rate} -> {frame.sample_rate} Hz)")
        rate = frame.sample_rate
        frame_shape = (frame.format.name, len(frame.layout.channels))
        if pending and (frame_shape != shape or len(pending) == _MONO_MIX_FRAMES):
            chunks.append(_to_mono(pending, *shape))
            pending = []
        shape = frame_shape
        pending.append(frame.to_ndarray())
    if pending:
        chunks.append(_to_mono(pending, *shape))
    return rate, chunks


def _to_mono(arrays: list[np.ndarray], sample_format: str, channels: int) -> np.ndarray:
    """Samples of one FFmpeg sample format scaled to [-1, 1] and averaged over channels (in float64,
    returned as float32)."""
    kind = sample_format.rstrip("p")
    if kind not in _SAMPLE_SCALE:
        raise UndecodableMediaError(f"unsupported audio sample format {sample_format}")
    raw = np.concatenate(arrays, axis=1)  # planar: (channels, n); packed: (1, n * channels)
    planes = raw if sample_format.endswith("p") else raw.reshape(-1, channels).T
    total = planes[0].astype(np.float64)
    for plane in planes[1:]:  # channel by channel: numpy's mean over a short strided axis is ~10x slower
        total += plane
    if kind == "u8":
        total -= 128.0 * channels
    return (total / (channels * _SAMPLE_SCALE[kind])).astype(np.float32)


# ---------------------------------------------------------------- video


@dataclass(frozen=True)
class VideoClip:
    """Frames sampled uniformly from a video (RGB uint8, (H, W, 3)) and what the stream says about itself."""

    frames: tuple[np.ndarray, ...]
    frame_count: int
    fps: float
    duration_s: float
    width: int
    height: int
    has_audio: bool


def decode_video(data: bytes, n_frames: int = 8, max_pixels: int = DEFAULT_MAX_PIXELS) -> VideoClip:
    """Decode the first moving video stream from the start and keep `n_frames` frames spread evenly over it.

    Frames are decoded sequentially (never by seeking), so the chosen frames depend only on the bytes.
    Targets come from the frame count the header declares (or the container's duration); when that
    is absent or wrong, a second pass picks them from the true count.
    """
    with open_media(data) as container:
        stream = _video_stream(container, max_pixels)
        declared = _declared_frames(stream)
        estimate = declared or _frames_from_container(container, stream)
        count, frames = _sample_frames(container, stream, _targets(estimate, n_frames))
        _check_not_truncated(count, declared, "frames")
        if count != estimate:
            frames = _resample_frames(data, _targets(count, n_frames))
        return _clip(container, stream, count, frames)


def _resample_frames(data: bytes, targets: frozenset[int]) -> list[np.ndarray]:
    """A second pass from a freshly opened container, picking targets from the true frame count."""
    with open_media(data) as container:
        stream = _single_threaded(moving_video_streams(container)[0])
        return _sample_frames(container, stream, targets)[1]


def _video_stream(container: av.container.InputContainer, max_pixels: int) -> av.video.stream.VideoStream:
    if container.format.name.endswith(_IMAGE_DEMUXERS):
        raise UndecodableMediaError(f"'{container.format.name}' is an image format, not a video container")
    streams = moving_video_streams(container)
    if not streams:
        raise UndecodableMediaError("no video stream in the file (album art and thumbnails do not count)")
    stream = _single_threaded(streams[0])
    width, height = stream.codec_context.width, stream.codec_context.height
    if width * height > max_pixels:
        raise UndecodableMediaError(f"video frames are {width}x{height}, above the limit of {max_pixels} pixels")
    return stream


def _frame_rate(stream: av.video.stream.VideoStream) -> float:
    return float(stream.average_rate or stream.guessed_rate or 0)


def _declared_frames(stream: av.video.stream.VideoStream) -> int | None:
    """Frame count the stream's own header declares (directly or as duration x rate); None if it does not."""
    if stream.frames > 0:
        return stream.frames
    seconds = _declared_seconds(stream)
    return round(seconds * _frame_rate(stream)) if seconds and _frame_rate(stream) else None


def _frames_from_container(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
                           ) -> int | None:
    """A guess from the whole file's duration, which may include a longer audio track: targets only."""
    rate = _frame_rate(stream)
    return round(container.duration / av.time_base * rate) if container.duration and rate else None


def _targets(count: int | None, n_frames: int) -> frozenset[int]:
    """Indices at the centres of `n_frames` equal slices of `count` frames (fewer when the video is shorter)."""
    if not count:
        return frozenset()
    return frozenset((2 * k + 1) * count // (2 * n_frames) for k in range(n_frames))


def _sample_frames(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
                   targets: frozenset[int]) -> tuple[int, list[np.ndarray]]:
    """Decode all frames in order; convert to RGB only those whose index is a target."""
    reformatter = _reformatter()
    count = 0
    frames = []
    for frame in _decode(container, stream):
        if count in targets:
            frames.append(reformatter.reformat(frame, format="rgb24").to_ndarray())
        count += 1
    if count == 0:
        raise UndecodableMediaError("the video stream has no decodable frame")
    return count, frames


def _reformatter() -> VideoReformatter:
    """This thread's YUV -> RGB converter, reused across frames and videos: setting one up costs more
    than converting eight small frames (a frame's own `to_ndarray` sets up a new one every time)."""
    if not hasattr(_THREAD_STATE, "reformatter"):
        _THREAD_STATE.reformatter = VideoReformatter()
    return _THREAD_STATE.reformatter


def _clip(container: av.container.InputContainer, stream: av.video.stream.VideoStream, count: int,
          frames: list[np.ndarray]) -> VideoClip:
    """Timing from the stream header, else the container, else the count; 0 when nothing says."""
    rate = _frame_rate(stream)
    seconds = _declared_seconds(stream) or (container.duration or 0) / av.time_base or (count / rate if rate else 0.0)
    if not rate and seconds:
        rate = count / seconds
    return VideoClip(frames=tuple(frames), frame_count=count, fps=rate, duration_s=seconds,
                     width=stream.codec_context.width, height=stream.codec_context.height,
                     has_audio=bool(container.streams.audio))


# ---------------------------------------------------------------- shared


@contextmanager
def open_media(data: bytes) -> Iterator[av.container.InputContainer]:
    """Open bytes with FFmpeg, turning its errors into UndecodableMediaError."""
    _check_riff_length(data)
    try:
        container = av.open(io.BytesIO(data), mode="r", options=_probe_options(data))
    except (av.FFmpegError, ValueError, OSError, EOFError) as exc:
        raise UndecodableMediaError(f"not a media file FFmpeg can read: {_describe(exc)}") from exc
    try:
        yield container
    finally:
        container.close()


def _probe_options(data: bytes) -> dict[str, str]:
    """A WAV header describes its stream completely, yet FFmpeg probes up to 5 MB of samples after it
    (about 3 ms per second of CD audio); FFmpeg's minimum probe gives the same stream and samples."""
    return {"probesize": str(_WAV_PROBE_BYTES)} if data[:4] == b"RIFF" and data[8:12] == b"WAVE" else {}


def _check_riff_length(data: bytes) -> None:
    """WAV and AVI declare their length up front; FFmpeg quietly decodes what is left of a cut file."""
    if data[:4] != b"RIFF" or len(data) < 8:
        return
    declared = int.from_bytes(data[4:8], "little") + 8
    if declared < _RIFF_UNKNOWN_SIZE and len(data) + 1 < declared:  # +1: a missing final pad byte is harmless
        raise UndecodableMediaError(f"truncated: {len(data)} of the {declared} bytes the RIFF header declares")


def _decode(container: av.container.InputContainer, stream: av.stream.Stream) -> Iterator:
    """Frames of one stream, with FFmpeg's errors mid-stream reported as UndecodableMediaError."""
    try:
        yield from container.decode(stream)
    except UndecodableMediaError:
        raise
    except (av.FFmpegError, ValueError, OSError, EOFError) as exc:
        raise UndecodableMediaError(f"{stream.type} stream does not decode: {_describe(exc)}") from exc


def _single_threaded(stream: av.stream.Stream) -> av.stream.Stream:
    """One decoding thread, so frame order, numbers and timings do not depend on the machine."""
    stream.codec_context.thread_type = "NONE"
    stream.codec_context.thread_count = 1
    return stream


def _declared_seconds(stream: av.stream.Stream) -> float | None:
    """Duration the stream's header declares, in seconds (Matroska keeps it in a DURATION tag)."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    match = _CLOCK.fullmatch(stream.metadata.get("DURATION", ""))
    if match:
        hours, minutes, seconds = match.groups()
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    return None


def _check_not_truncated(found: int, expected: int | None, unit: str) -> None:
    if expected and found < _TRUNCATION_RATIO * expected:
        raise UndecodableMediaError(f"truncated: decoded {found} of the {expected} {unit} the header declares")


def _describe(exc: BaseException) -> str:
    """One line naming the error, for messages that end up in the artifact's `error` field."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def finite_vector(parts: list[np.ndarray | float], kind: str) -> np.ndarray:
    """Concatenate feature parts into one float32 vector, refusing non-finite values."""
    vector = np.concatenate([np.ravel(np.asarray(part, dtype=np.float64)) for part in parts]).astype(np.float32)
    if not np.isfinite(vector).all():
        raise UndecodableMediaError(f"{kind} features are not finite for this input")
    return vector

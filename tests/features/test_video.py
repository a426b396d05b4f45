"""Video extractor: containers and codecs, motion, uniform sampling, the audio track, failures, determinism."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from dmas import synth_media
from dmas.features.audio import extract_audio_features
from dmas.features.decode import UndecodableMediaError, decode_video
from dmas.features.version import FeatureConfig
from dmas.features.video import VIDEO_FEATURE_NAMES, extract_video_features, video_feature_names

INDEX = {name: i for i, name in enumerate(VIDEO_FEATURE_NAMES)}
AUDIO_RATE = 44100
CASES = [("mp4", "libx264"), ("avi", "mpeg4"), ("matroska", "libx264")]


def encode_video(frames: np.ndarray, container_format: str, codec: str, fps: int = 10,
                 audio: np.ndarray | None = None, lossless: bool = False) -> bytes:
    """Bytes of RGB `frames` (T, H, W, 3), with an optional mono audio track (AAC, or MP3 in AVI)."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container_format, options={"fflags": "+bitexact"}) as container:
        video = container.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        video.codec_context.thread_type = "NONE"
        video.codec_context.options = {"flags": "+bitexact", **({"qp": "0"} if lossless else {})}
        sound = None
        if audio is not None:
            sound = container.add_stream("libmp3lame" if container_format == "avi" else "aac", rate=AUDIO_RATE,
                                         layout="mono")
            sound.codec_context.format = "fltp"
        for frame in frames:
            for packet in video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if sound is not None:
            _encode_audio(container, sound, audio)
    return buffer.getvalue()


def _encode_audio(container: av.container.OutputContainer, stream: av.audio.stream.AudioStream,
                  samples: np.ndarray) -> None:
    size = stream.codec_context.frame_size or 1024
    for start in range(0, samples.size, size):
        frame = av.AudioFrame.from_ndarray(samples[None, start:start + size].astype(np.float32), format="fltp",
                                           layout="mono")
        frame.sample_rate, frame.pts = AUDIO_RATE, start
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def square_frames(count: int = 30, moving: bool = True) -> np.ndarray:
    frames = np.empty((count, 48, 64, 3), np.uint8)
    frames[:] = (30, 60, 90)
    for k in range(count):
        left = (3 * k) % 48 if moving else 8
        frames[k, 10:26, left:left + 16] = (250, 200, 20)
    return frames


def tone(seconds: float) -> np.ndarray:
    return 0.4 * np.sin(2 * np.pi * 440 * np.arange(int(AUDIO_RATE * seconds)) / AUDIO_RATE)


def feature(vector: np.ndarray, name: str) -> float:
    return float(vector[INDEX[name]])


def test_vector_shape_names_and_finiteness():
    vector = extract_video_features(synth_media.encode_mp4(synth_media.render_video(0.5, np.random.default_rng(0))))
    assert vector.dtype == np.float32 and vector.shape == (len(VIDEO_FEATURE_NAMES),)
    assert len(set(VIDEO_FEATURE_NAMES)) == len(VIDEO_FEATURE_NAMES)
    assert all(name.startswith("vid.") for name in VIDEO_FEATURE_NAMES)
    assert np.isfinite(vector).all()
    config = FeatureConfig(video_hist_bins=4, n_mfcc=5, n_mels=8)
    assert extract_video_features(synth_media.encode_mp4(square_frames(10)), config).shape == (
        len(video_feature_names(config)),)


@pytest.mark.parametrize(("container_format", "codec"), CASES)
def test_containers_and_codecs_decode_with_timing(container_format, codec):
    vector = extract_video_features(encode_video(square_frames(), container_format, codec))
    assert feature(vector, "vid.frame_count") == 30 and feature(vector, "vid.fps") == 10
    assert feature(vector, "vid.duration_s") == pytest.approx(3.0)
    assert (feature(vector, "vid.width"), feature(vector, "vid.height")) == (64, 48)
    assert feature(vector, "vid.has_audio") == 0.0
    assert not vector[INDEX["vid.has_audio"] + 1:].any()  # the audio dimensions are zeros


@pytest.mark.parametrize(("container_format", "codec"), CASES)
def test_audio_track_goes_through_the_audio_extractor(container_format, codec):
    data = encode_video(square_frames(), container_format, codec, audio=tone(3.0))
    vector = extract_video_features(data)
    assert feature(vector, "vid.has_audio") == 1.0
    assert feature(vector, "vid.aud.centroid_hz.mean") == pytest.approx(440, rel=0.05)
    audio_part = vector[INDEX["vid.has_audio"] + 1:]
    assert np.array_equal(audio_part, extract_audio_features(data))


@pytest.mark.parametrize(("container_format", "codec"), CASES)
def test_static_video_has_no_motion_and_a_moving_square_has_some(container_format, codec):
    static = extract_video_features(encode_video(square_frames(moving=False), container_format, codec))
    moving = extract_video_features(encode_video(square_frames(), container_format, codec))
    # a lossy encoder refines a still picture over its P-frames, so "static" is near zero, not zero
    assert feature(static, "vid.motion.mean") < 5e-3
    assert feature(moving, "vid.motion.mean") > 0.02
    assert feature(moving, "vid.motion.changed_share") > 0.05
    assert feature(moving, "vid.motion.max") >= feature(moving, "vid.motion.mean")


def test_identical_frames_have_exactly_zero_motion():
    vector = extract_video_features(encode_video(square_frames(moving=False), "mp4", "libx264", lossless=True))
    for name in ("vid.motion.mean", "vid.motion.std", "vid.motion.max", "vid.motion.changed_share"):
        assert feature(vector, name) == 0.0, name
    assert np.abs(vector[[INDEX[f"vid.hist.r.b{b:02d}.std"] for b in range(16)]]).max() < 1e-12


def test_frames_are_sampled_uniformly_from_the_start():
    frames = np.repeat(np.arange(0, 240, 8, dtype=np.uint8)[:, None, None, None], 3, axis=3)
    frames = np.broadcast_to(frames, (30, 32, 32, 3)).copy()  # frame k has brightness 8k
    clip = decode_video(encode_video(frames, "mp4", "libx264"), n_frames=8)
    levels = [round(float(frame.mean()) / 8) for frame in clip.frames]
    assert levels == [1, 5, 9, 13, 16, 20, 24, 28]  # centres of 8 equal slices of 30 frames


def test_short_video_keeps_every_frame_once():
    clip = decode_video(encode_video(square_frames(3), "mp4", "libx264"), n_frames=8)
    assert clip.frame_count == 3 and len(clip.frames) == 3


def test_container_duration_longer_than_the_video_is_not_truncation():
    data = encode_video(square_frames(10), "matroska", "libx264", audio=tone(3.0))
    clip = decode_video(data, n_frames=4)
    assert clip.frame_count == 10 and len(clip.frames) == 4 and clip.has_audio


def test_frame_size_limit():
    data = encode_video(square_frames(5), "mp4", "libx264")
    with pytest.raises(UndecodableMediaError, match="above the limit"):
        extract_video_features(data, max_pixels=64 * 48 - 1)


@pytest.mark.parametrize("damage", ["garbage", "empty", "truncated_mp4", "truncated_avi", "truncated_mkv",
                                    "image", "audio_only"])
def test_broken_video_raises(damage):
    frames = square_frames()
    wav = io.BytesIO()
    with av.open(wav, "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=8000, layout="mono")
        silence = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        silence.sample_rate = 8000
        for packet in [*stream.encode(silence), *stream.encode()]:
            container.mux(packet)
    cut = {name: data[: len(data) * 6 // 10] for name, data in [
        ("truncated_mp4", encode_video(frames, "mp4", "libx264")),
        ("truncated_avi", encode_video(frames, "avi", "mpeg4")),
        ("truncated_mkv", encode_video(frames, "matroska", "libx264")),
    ]}
    data = {
        "garbage": np.random.default_rng(6).integers(0, 256, 5000, dtype=np.uint8).tobytes(),
        "empty": b"",
        "image": synth_media.encode_image(synth_media.render_stock_image(1), "png"),
        "audio_only": wav.getvalue(),
        **cut,
    }[damage]
    with pytest.raises(UndecodableMediaError) as caught:
        extract_video_features(data)
    assert isinstance(caught.value, ValueError) and "\n" not in str(caught.value)


def test_same_bytes_give_identical_vectors_whatever_came_before():
    data = encode_video(square_frames(), "matroska", "libx264", audio=tone(3.0))
    first = extract_video_features(data)
    extract_video_features(encode_video(square_frames(7)[:, :32, :40], "avi", "mpeg4"))  # another size between
    second = extract_video_features(data)
    assert np.array_equal(first, second) and first.tobytes() == second.tobytes()

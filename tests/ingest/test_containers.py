"""Container files are audio or video by the streams inside, whatever their magic bytes suggest.

A browser's voice recording is WebM with only Opus, a phone's is often MP4 with only AAC, and music
files carry album art as a still "video" stream: all of these are audio. Transport streams (.ts,
.mts), AIFF, CAF and AMR are recognised too; every kind below also goes through its extractor.
"""

import io

import av
import numpy as np
import pytest
from PIL import Image

from dmas.errors import IngestError
from dmas.features import extract_features
from dmas.ingest.artifacts import ingest_artifact

RATE = 48000
SECONDS = 1


def _tone(channels: int) -> np.ndarray:
    t = np.arange(RATE * SECONDS) / RATE
    return np.tile(np.sin(2 * np.pi * 440 * t).astype(np.float32) * 0.3, (channels, 1))


def _write_audio(container: av.container.OutputContainer, stream: av.audio.stream.AudioStream) -> None:
    context = stream.codec_context
    samples = _tone(len(context.layout.channels))
    size = context.frame_size or 1024
    for start in range(0, samples.shape[1] - size + 1, size):
        chunk = samples[:, start:start + size]
        if not context.format.is_planar:
            chunk = chunk.T.reshape(1, -1)
        if context.format.name.startswith("s16"):
            chunk = (chunk * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format=context.format.name,
                                           layout=context.layout.name)
        frame.sample_rate, frame.pts = RATE, start
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def _write_video(container: av.container.OutputContainer, stream: av.video.stream.VideoStream) -> None:
    y, x = np.mgrid[0:stream.height, 0:stream.width]
    for i in range(10):
        rgb = np.stack([(x + 4 * i) % 256, y * 4 % 256, np.full_like(x, 90)], -1).astype(np.uint8)
        for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def _write_cover_art(container: av.container.OutputContainer, stream: av.video.stream.VideoStream) -> None:
    """A PNG as an attached picture, the way music files carry album art."""
    png = io.BytesIO()
    Image.new("RGB", (stream.width, stream.height), (200, 10, 10)).save(png, format="PNG")
    packet = av.Packet(png.getvalue())
    packet.stream, packet.pts, packet.dts = stream, 0, 0
    container.mux(packet)


def _video_stream(container: av.container.OutputContainer, codec: str, pix_fmt: str) -> av.video.stream.VideoStream:
    stream = container.add_stream(codec, rate=10)
    stream.width, stream.height, stream.pix_fmt = 64, 48, pix_fmt
    return stream


def _encode(container_format: str, audio: str | None = None, video: str | None = None, cover: bool = False) -> bytes:
    """A file with the streams asked for; every stream is added before the first packet is written."""
    out = io.BytesIO()
    with av.open(out, mode="w", format=container_format) as container:
        cover_stream = _video_stream(container, "png", "rgb24") if cover else None
        if cover_stream:
            cover_stream.disposition = av.stream.Disposition.attached_pic
        video_stream = _video_stream(container, video, "yuv420p") if video else None
        audio_stream = container.add_stream(audio, rate=RATE) if audio else None
        if cover_stream:
            _write_cover_art(container, cover_stream)
        if video_stream:
            _write_video(container, video_stream)
        if audio_stream:
            _write_audio(container, audio_stream)
    return out.getvalue()


def _amr() -> bytes:
    """AMR-NB, 1 s: the file magic and 50 frames of mode 4.75 kbit/s (FFmpeg decodes any payload bits)."""
    rng = np.random.default_rng(0)
    return b"#!AMR\n" + b"".join(b"\x04" + rng.bytes(12) for _ in range(50))


CASES = {
    "voice.webm": (lambda: _encode("webm", audio="libopus"), "audio", "matroska"),
    "voice.mp4": (lambda: _encode("mp4", audio="aac"), "audio", "mp4"),
    "song_with_cover.mp4": (lambda: _encode("mp4", audio="aac", cover=True), "audio", "mp4"),
    "clip.webm": (lambda: _encode("webm", audio="libopus", video="libvpx-vp9"), "video", "matroska"),
    "camera.ts": (lambda: _encode("mpegts", audio="aac", video="libx264"), "video", "mpegts"),
    "radio.ts": (lambda: _encode("mpegts", audio="aac"), "audio", "mpegts"),
    "take.aiff": (lambda: _encode("aiff", audio="pcm_s16be"), "audio", "aiff"),
    "memo.caf": (lambda: _encode("caf", audio="pcm_s16le"), "audio", "caf"),
    "call.amr": (_amr, "audio", "amr"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_kind_comes_from_the_streams_and_the_file_extracts(store, tmp_path, name):
    make, artifact_type, media_format = CASES[name]
    path = tmp_path / name
    path.write_bytes(make())
    result = ingest_artifact(store, path)
    assert (result["artifact_type"], result["media_format"]) == (artifact_type, media_format)
    vector = extract_features(artifact_type, path.read_bytes())
    assert np.isfinite(vector).all()


def test_declaring_an_audio_only_container_video_is_refused_naming_both(store, tmp_path):
    path = tmp_path / "voice.webm"
    path.write_bytes(_encode("webm", audio="libopus"))
    with pytest.raises(IngestError, match="declared 'video' but the content is audio \\(matroska\\)"):
        ingest_artifact(store, path, artifact_type="video")


"""Audio extractor: shape and names, known answers on tones and silence, formats, resampling, failures."""

from __future__ import annotations

import io
import subprocess
import sys

import av
import numpy as np
import pytest

from dmas import synth_media
from dmas.features import audio, decode
from dmas.features.audio import AUDIO_FEATURE_NAMES, audio_feature_names, audio_features, extract_audio_features
from dmas.features.decode import UndecodableMediaError, decode_audio
from dmas.features.version import FeatureConfig

INDEX = {name: i for i, name in enumerate(AUDIO_FEATURE_NAMES)}
# container, encoder, sample format the encoder takes; libopus only runs at 48 kHz (and 8/12/16/24)
FORMATS = {
    "wav": ("wav", "pcm_s16le", "s16"),
    "wav_u8": ("wav", "pcm_u8", "u8"),
    "wav_f32": ("wav", "pcm_f32le", "flt"),
    "flac": ("flac", "flac", "s16"),
    "ogg": ("ogg", "libopus", "s16"),
    "mp3": ("mp3", "libmp3lame", "s16p"),
}


def encode_audio(samples: np.ndarray, rate: int, fmt: str = "wav") -> bytes:
    """Bytes of `samples` (channels, n) in [-1, 1] encoded with PyAV, one frame at a time."""
    container_format, codec, sample_format = FORMATS[fmt]
    layout = "mono" if samples.shape[0] == 1 else "stereo"
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container_format, options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        stream.codec_context.format = sample_format
        frame_size = stream.codec_context.frame_size or 1024
        for start in range(0, samples.shape[1], frame_size):
            frame = _frame(samples[:, start:start + frame_size], sample_format, layout, rate)
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def _frame(chunk: np.ndarray, sample_format: str, layout: str, rate: int) -> av.AudioFrame:
    clipped = np.clip(chunk, -1.0, 1.0)
    if sample_format == "flt":
        values = clipped.astype(np.float32)
    elif sample_format == "u8":
        values = (clipped * 127 + 128).round().astype(np.uint8)
    else:
        values = (clipped * 32767).round().astype(np.int16)
    array = values if sample_format.endswith("p") else values.T.reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(array), format=sample_format, layout=layout)
    frame.sample_rate = rate
    return frame


def tone(rate: int, channels: int = 1, seconds: float = 1.0, freqs: tuple[float, ...] = (440.0,)) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    mono = sum(0.5 / len(freqs) * np.sin(2 * np.pi * f * t) for f in freqs)
    return np.repeat(mono[None, :], channels, axis=0)


def feature(vector: np.ndarray, name: str) -> float:
    return float(vector[INDEX[name]])


def mfcc_means(vector: np.ndarray) -> np.ndarray:
    return np.array([feature(vector, f"aud.mfcc{i}.mean") for i in range(13)])


def test_vector_shape_names_and_finiteness():
    vector = extract_audio_features(synth_media.encode_wav(synth_media.render_tone(0.5, np.random.default_rng(0))))
    assert vector.dtype == np.float32 and vector.shape == (len(AUDIO_FEATURE_NAMES),)
    assert len(set(AUDIO_FEATURE_NAMES)) == len(AUDIO_FEATURE_NAMES)
    assert all(name.startswith("aud.") for name in AUDIO_FEATURE_NAMES)
    assert {"aud.mfcc3.mean", "aud.mfcc12.delta.std", "aud.mel39.db.std", "aud.zcr.mean"} <= set(INDEX)
    assert np.isfinite(vector).all()
    assert feature(vector, "aud.duration_s") == pytest.approx(0.5, abs=1e-3)


def test_names_follow_the_config():
    config = FeatureConfig(n_mfcc=5, n_mels=16)
    vector = extract_audio_features(encode_audio(tone(16000), 16000), config)
    assert vector.shape == (len(audio_feature_names(config)),) == (1 + 10 + 2 * 10 + 32,)


def test_440_hz_tone_centroid_is_near_440_hz():
    vector = extract_audio_features(encode_audio(tone(44100), 44100))
    assert feature(vector, "aud.centroid_hz.mean") == pytest.approx(440, rel=0.05)
    assert feature(vector, "aud.rolloff_hz.mean") == pytest.approx(440, rel=0.1)
    assert feature(vector, "aud.zcr.mean") == pytest.approx(2 * 440 / 22050, rel=0.1)
    assert feature(vector, "aud.rms.mean") == pytest.approx(0.5 / np.sqrt(2), rel=0.05)


def test_silence_gives_finite_zero_spectral_shape():
    vector = extract_audio_features(encode_audio(np.zeros((1, 8000)), 8000))
    assert np.isfinite(vector).all()
    for name in ("aud.centroid_hz.mean", "aud.bandwidth_hz.mean", "aud.rolloff_hz.mean", "aud.rms.mean",
                 "aud.zcr.mean", "aud.mfcc1.delta.std"):
        assert feature(vector, name) == 0.0, name


@pytest.mark.parametrize("length", [1, 10, 700, 2047])
def test_clips_shorter_than_one_window_are_padded(length):
    vector = audio_features(np.full(length, 0.25, np.float32))
    assert vector.shape == (len(AUDIO_FEATURE_NAMES),) and np.isfinite(vector).all()
    assert feature(vector, "aud.duration_s") == pytest.approx(length / 22050)


@pytest.mark.parametrize("fmt", ["wav", "wav_f32", "flac", "ogg", "mp3"])
def test_formats_decode_to_the_same_tone(fmt):
    rate = 48000 if fmt == "ogg" else 44100
    vector = extract_audio_features(encode_audio(tone(rate, channels=2), rate, fmt))
    assert feature(vector, "aud.centroid_hz.mean") == pytest.approx(440, rel=0.05)
    assert feature(vector, "aud.duration_s") == pytest.approx(1.0, abs=0.06)


@pytest.mark.parametrize(("fmt", "step"), [("wav_u8", 1 / 127), ("wav", 1 / 32767), ("wav_f32", 1e-7)])
def test_sample_formats_are_scaled_to_unit_range(fmt, step):
    source = tone(22050)
    samples = decode_audio(encode_audio(source, 22050, fmt))
    assert np.abs(samples - source[0]).max() <= step


def test_any_rate_and_channel_count_gives_close_mfccs():
    freqs = (440.0, 1250.0, 2500.0)
    low_stereo = extract_audio_features(encode_audio(tone(8000, 2, freqs=freqs), 8000))
    high_mono = extract_audio_features(encode_audio(tone(44100, 1, freqs=freqs), 44100))
    assert np.abs(mfcc_means(low_stereo) - mfcc_means(high_mono)).max() < 1.5
    assert feature(low_stereo, "aud.centroid_hz.mean") == pytest.approx(
        feature(high_mono, "aud.centroid_hz.mean"), rel=0.02)


def test_decode_audio_mixes_channels_and_resamples():
    left_only = np.stack([tone(8000)[0], np.zeros(8000)])
    samples = decode_audio(encode_audio(left_only, 8000), target_rate=22050)
    assert samples.dtype == np.float32 and samples.shape == (22050,)
    assert np.abs(samples).max() == pytest.approx(0.25, rel=0.02)  # half of the 0.5 tone: channels averaged


def test_wav_probe_shortcut_gives_the_same_samples(monkeypatch):
    data = encode_audio(tone(44100, 2, seconds=2.0), 44100)
    quick = decode_audio(data)
    monkeypatch.setattr(decode, "_probe_options", lambda data: {})
    assert np.array_equal(quick, decode_audio(data))


def test_a_file_without_an_audio_track_raises():
    mp4 = synth_media.encode_mp4(synth_media.render_video(0.5, np.random.default_rng(4)))
    with pytest.raises(UndecodableMediaError, match="no audio stream"):
        decode_audio(mp4)


@pytest.mark.parametrize("damage", ["garbage", "empty", "truncated_wav", "truncated_flac", "zeroed_header", "image"])
def test_broken_audio_raises(damage):
    wav = encode_audio(tone(22050), 22050)
    flac = encode_audio(tone(22050), 22050, "flac")
    data = {
        "garbage": np.random.default_rng(5).integers(0, 256, 5000, dtype=np.uint8).tobytes(),
        "empty": b"",
        "truncated_wav": wav[: len(wav) // 2],
        "truncated_flac": flac[: len(flac) // 2],
        "zeroed_header": bytes(64) + wav[64:],
        "image": synth_media.encode_image(synth_media.render_stock_image(0), "png"),
    }[damage]
    with pytest.raises(UndecodableMediaError) as caught:
        extract_audio_features(data)
    assert isinstance(caught.value, ValueError) and "\n" not in str(caught.value)


def test_same_bytes_give_identical_vectors():
    data = encode_audio(tone(44100, 2, seconds=2.0, freqs=(300.0, 1700.0)), 44100, "mp3")
    first, second = extract_audio_features(data), extract_audio_features(data)
    assert np.array_equal(first, second) and first.tobytes() == second.tobytes()


def test_analysing_and_mixing_in_pieces_changes_no_bit(monkeypatch):
    """Long clips are mixed to mono and analysed a piece at a time; the piece sizes never show."""
    noise = np.random.default_rng(6).normal(0, 0.2, (2, 44100 * 70))
    data = encode_audio(noise, 44100, "flac")  # 70 s: several analysis blocks and mixing pieces
    reference = extract_audio_features(data)
    monkeypatch.setattr(audio, "_BLOCK_FRAMES", 7)
    monkeypatch.setattr(decode, "_MONO_MIX_FRAMES", 1)
    assert extract_audio_features(data).tobytes() == reference.tobytes()
    monkeypatch.setattr(audio, "_BLOCK_FRAMES", 10**9)
    monkeypatch.setattr(decode, "_MONO_MIX_FRAMES", 10**9)
    assert extract_audio_features(data).tobytes() == reference.tobytes()


_LONG_RECORDING = """
import resource
import numpy as np
from dmas.features import extract_features
from dmas.synth_media import encode_wav

data = encode_wav(np.random.default_rng(0).normal(0, 3000, (16000 * 60 * 20, 2)).astype(np.int16), 16000)
extract_features("audio", encode_wav(np.zeros((1600, 2), np.int16), 16000))  # imports and caches first
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
extract_features("audio", data)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux")
def test_a_twenty_minute_recording_needs_hundreds_of_megabytes_not_gigabytes():
    done = subprocess.run([sys.executable, "-c", _LONG_RECORDING], capture_output=True, text=True, check=True)
    peak_growth_mb = int(done.stdout.split()[-1])
    assert peak_growth_mb < 500  # 214 MB measured; 1255 MB when the whole clip was analysed at once

"""Audio features: MFCCs and their deltas, mel band levels, spectral shape, ZCR, RMS and duration.

Every clip is first decoded to mono samples at one fixed rate (`decode_audio`), then analysed with a
single STFT from which everything spectral derives: the mel spectrogram, its MFCCs (a DCT of the
log-mel, as librosa computes them) and the centroid, bandwidth and rolloff. Per-frame values are
summarised by their mean and standard deviation over time. Silence and clips shorter than one
window are defined, not special-cased away: the STFT is centred with zero padding, and a frame with
no energy has centroid, bandwidth and rolloff 0 Hz.
"""

from __future__ import annotations

import functools

import librosa
import numpy as np
import scipy.fft
import scipy.ndimage
import scipy.signal
import scipy.sparse
from numpy.lib.stride_tricks import sliding_window_view

from dmas.features.decode import decode_audio, finite_vector
from dmas.features.version import DEFAULT_FEATURE_CONFIG, FeatureConfig

_FRAME_FEATURES = ("rms", "zcr", "centroid_hz", "bandwidth_hz", "rolloff_hz")
_STATS = ("mean", "std")
_AMIN = 1e-10  # power floor before the log (-100 dB)
_TOP_DB = 80.0  # log-mel values are clipped to this far below the clip's loudest bin
_ZERO_BAND = 1e-10  # |sample| at or below this counts as zero (non-negative) for zero crossings
_BLOCK_FRAMES = 2048  # STFT frames analysed at once (~48 s at 22.05 kHz): memory stays bounded


def audio_feature_names(config: FeatureConfig = DEFAULT_FEATURE_CONFIG, prefix: str = "aud.") -> tuple[str, ...]:
    """Names of the dimensions `extract_audio_features` returns under `config`, in order."""
    names = ["duration_s"]
    names += [f"{feature}.{stat}" for feature in _FRAME_FEATURES for stat in _STATS]
    names += [f"mfcc{i}.{stat}" for i in range(config.n_mfcc) for stat in _STATS]
    names += [f"mfcc{i}.delta.{stat}" for i in range(config.n_mfcc) for stat in _STATS]
    names += [f"mel{band:02d}.db.{stat}" for band in range(config.n_mels) for stat in _STATS]
    return tuple(prefix + name for name in names)


AUDIO_FEATURE_NAMES = audio_feature_names()


def extract_audio_features(data: bytes, config: FeatureConfig | None = None) -> np.ndarray:
    """Feature vector (float32, `len(audio_feature_names(config))`) of an encoded audio (or video) file.

    Raises UndecodableMediaError when the bytes hold no decodable audio stream.
    """
    config = config or DEFAULT_FEATURE_CONFIG
    return audio_features(decode_audio(data, config.audio_rate_hz, config.resample_type), config)


def audio_features(samples: np.ndarray, config: FeatureConfig | None = None) -> np.ndarray:
    """Feature vector of mono float32 `samples` already at `config.audio_rate_hz`.

    STFT frames are analysed `_BLOCK_FRAMES` at a time and only their per-frame values are kept
    (about 0.5 KB per frame instead of the whole STFT: an hour at 22.05 kHz keeps ~90 MB beside its
    samples); every per-frame value is computed exactly as it would be for all frames at once.
    """
    config = config or DEFAULT_FEATURE_CONFIG
    padded = np.pad(np.asarray(samples, dtype=np.float32), config.n_fft // 2)  # centred frames, as librosa's STFT
    frames = sliding_window_view(padded, config.n_fft)[:: config.hop_length]  # (T, n_fft), a view
    blocks = [_frame_values(frames[start:start + _BLOCK_FRAMES], config)
              for start in range(0, len(frames), _BLOCK_FRAMES)]
    per_frame = np.concatenate([values for values, _ in blocks])  # (T, len(_FRAME_FEATURES))
    mel_power = np.concatenate([mel for _, mel in blocks])  # (T, n_mels)
    # dB against the whole clip's loudest bin, so after every block
    mel_db = librosa.power_to_db(mel_power, ref=1.0, amin=_AMIN, top_db=_TOP_DB)
    mfcc = scipy.fft.dct(mel_db, type=2, norm="ortho", axis=1)[:, : config.n_mfcc]
    delta = scipy.ndimage.correlate1d(mfcc, _delta_weights(config.delta_width), axis=0, mode="nearest")
    parts = [samples.size / config.audio_rate_hz, mean_std(per_frame), mean_std(mfcc), mean_std(delta),
             mean_std(mel_db)]
    return finite_vector(parts, "audio")


def _frame_values(frames: np.ndarray, config: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame RMS, ZCR, centroid, bandwidth and rolloff (B, 5) and mel band power (B, n_mels)."""
    # scipy's FFT, one worker: numpy's float32 FFT is ~8x slower on batches of frames
    magnitude = np.abs(scipy.fft.rfft(frames * _window(config.n_fft), axis=1))  # (B, n_fft // 2 + 1)
    mel_power = (_mel_basis(config.audio_rate_hz, config.n_fft, config.n_mels) @ (magnitude**2).T).T
    values = np.stack([
        np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1)),
        _zero_crossing_rate(frames),
        *_spectral_shape(magnitude, _frequencies(config.audio_rate_hz, config.n_fft), config.rolloff_percent),
    ], axis=1)
    return values, mel_power


def _zero_crossing_rate(frames: np.ndarray) -> np.ndarray:
    """Share of adjacent sample pairs per frame whose signs differ (near-zero samples count as positive)."""
    positive = frames > -_ZERO_BAND
    return np.count_nonzero(positive[:, 1:] != positive[:, :-1], axis=1) / frames.shape[1]


def _spectral_shape(magnitude: np.ndarray, freqs: np.ndarray, roll_percent: float) -> list[np.ndarray]:
    """Per-frame centroid, bandwidth (2nd central moment) and rolloff in Hz of the magnitude spectrum."""
    weights = magnitude.astype(np.float64)
    total = weights.sum(axis=1)
    safe_total = np.where(total > 0, total, 1.0)
    # einsum, not `@`: BLAS products change in the last bits with the BLAS thread count
    centroid = np.einsum("tf,f->t", weights, freqs) / safe_total
    spread = np.einsum("tf,f->t", weights, freqs**2) / safe_total - centroid**2  # E[f^2] - E[f]^2
    bandwidth = np.sqrt(np.maximum(spread, 0.0))
    cumulative = np.cumsum(weights, axis=1)
    rolloff = freqs[np.argmax(cumulative >= roll_percent * cumulative[:, -1:], axis=1)]
    return [centroid, bandwidth, rolloff]


def mean_std(values: np.ndarray) -> np.ndarray:
    """(T, D) per-frame values -> [[d0 mean, d0 std], [d1 mean, d1 std], ...] over axis 0, in float64."""
    values = values.astype(np.float64)
    return np.stack([values.mean(axis=0), values.std(axis=0)], axis=1)


@functools.lru_cache(maxsize=8)
def _window(n_fft: int) -> np.ndarray:
    """Periodic Hann window, librosa's STFT default."""
    window = scipy.signal.get_window("hann", n_fft, fftbins=True).astype(np.float32)
    window.flags.writeable = False
    return window


@functools.lru_cache(maxsize=8)
def _mel_basis(rate: int, n_fft: int, n_mels: int) -> scipy.sparse.csr_array:
    """librosa's Slaney mel filterbank (n_mels, n_fft // 2 + 1) from 0 Hz to Nyquist, as a sparse matrix.

    Sparse on purpose: a dense BLAS product gives different low bits with 1 and with 2+ BLAS threads
    (measured with OpenBLAS), and Ray workers run single-threaded while a plain loop does not.
    """
    return scipy.sparse.csr_array(librosa.filters.mel(sr=rate, n_fft=n_fft, n_mels=n_mels, dtype=np.float32))


@functools.lru_cache(maxsize=8)
def _delta_weights(width: int) -> np.ndarray:
    """Least-squares slope over `width` frames (librosa's first-order delta), without a LAPACK solve."""
    offsets = np.arange(width, dtype=np.float64) - width // 2
    return offsets / (offsets**2).sum()


@functools.lru_cache(maxsize=8)
def _frequencies(rate: int, n_fft: int) -> np.ndarray:
    """Centre frequency in Hz of each STFT bin."""
    freqs = np.fft.rfftfreq(n_fft, d=1.0 / rate)
    freqs.flags.writeable = False
    return freqs

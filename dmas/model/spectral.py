"""FFT token mixing: the "Resonance" layers replace self-attention at O(L log L).

`SpectralMixer` is the event encoder's `event_encoder="spectral"` block (a global filter, GFNet); the
helpers below are the one way every spectral layer convolves: zero padding to n_fft = 2 * seq_len so
convolutions are linear (alignment and padding do not matter) and, when asked, causal. The Resonance
layers (`dmas.model.resonance`) and the Temporal Eigenstate layer (`dmas.model.eigenstate`) use them.
CPU FFTs (pocketfft) are deterministic.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class SpectralMixer(nn.Module):
    """Global-filter token mixing (GFNet) plus a feed-forward layer, each a pre-LayerNorm residual.

    The mixer multiplies the sequence's spectrum by a learned complex filter, one per frequency and
    channel: a learned convolution over the whole sequence in O(L log L). The sequence is zero padded
    to 2 * seq_len before the FFT so the convolution is linear, not circular: the result does not
    depend on where real items sit inside the padding (left- or right-aligned). Padded positions are
    zeroed on the way in and out, so their values never reach a real position. CPU FFTs (pocketfft)
    are deterministic.

    Input x [B, L, d_model] with L <= seq_len and mask [B, L] (True = real); output [B, L, d_model].
    """

    def __init__(self, d_model: int, seq_len: int, dropout: float = 0.0):
        super().__init__()
        self.seq_len = seq_len
        self.n_fft = 2 * seq_len
        self.ln_1 = nn.LayerNorm(d_model)
        # complex filter as (real, imaginary) pairs, one per rfft frequency and channel
        self.filter = nn.Parameter(torch.randn(self.n_fft // 2 + 1, d_model, 2) * 0.02)
        self.ln_2 = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        length = x.shape[1]
        if length > self.seq_len:
            raise ValueError(f"sequence of length {length} is longer than seq_len={self.seq_len}")
        real = mask.unsqueeze(-1)  # [B, L, 1]
        h = torch.where(real, self.ln_1(x), 0.0)
        spectrum = torch.fft.rfft(h, n=self.n_fft, dim=1, norm="ortho")  # [B, n_fft/2 + 1, d_model] complex
        spectrum = spectrum * torch.view_as_complex(self.filter)
        h = torch.fft.irfft(spectrum, n=self.n_fft, dim=1, norm="ortho")[:, :length]  # [B, L, d_model]
        x = x + self.dropout(h)
        x = x + self.dropout(self.ffn(self.ln_2(x)))
        return torch.where(real, x, 0.0)


def check_length(length: int, n_fft: int) -> None:
    """Refuse a sequence longer than the layer's seq_len (= n_fft / 2): its convolution would wrap around."""
    if 2 * length > n_fft:
        raise ValueError(f"sequence of length {length} is longer than seq_len={n_fft // 2}")


def fft_conv(x: Tensor, kernel: Tensor, n_fft: int) -> Tensor:
    """x [B, L, *C] convolved along positions with the taps whose spectrum is kernel [n_fft // 2 + 1, *C].

    With n_fft >= 2 * L the convolution is linear, not circular: an output depends only on its distance
    to each input, never on where the sequence sits inside its padding. O(L log L).
    """
    check_length(x.shape[1], n_fft)
    spectrum = torch.fft.rfft(x, n=n_fft, dim=1) * kernel
    return torch.fft.irfft(spectrum, n=n_fft, dim=1)[:, : x.shape[1]]


def taps_spectrum(past: Tensor, future: Tensor | None, n_fft: int) -> Tensor:
    """Spectrum [n_fft // 2 + 1, *C] of a filter given by its taps: past[k] weighs the input k positions
    earlier (lag k >= 0), future[k] the input k + 1 positions later. future=None is a causal filter."""
    later = past.new_zeros(0, *past.shape[1:]) if future is None else future.flip(0)
    gap = past.new_zeros(n_fft - past.shape[0] - later.shape[0], *past.shape[1:])
    return torch.fft.rfft(torch.cat([past, gap, later]), dim=0)  # lag -k sits at index n_fft - k


def causal_part(spectrum: Tensor, n_fft: int, max_lag: int) -> Tensor:
    """The filter with spectrum [n_fft // 2 + 1, *C] cut to its taps on lags 0 .. max_lag - 1: causal."""
    taps = torch.fft.irfft(spectrum, n=n_fft, dim=0)[:max_lag]
    return taps_spectrum(taps, None, n_fft)

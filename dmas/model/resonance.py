"""Resonance layers: attention-free token mixing by real FFTs, O(L log L) in sequence length.

A `ResonanceBlock` is four pre-LayerNorm residual sublayers over x [B, L, d_model]:

    x -> HierarchicalFFT          multi-scale filters per channel (whole sequence, 1/2, 1/4 … of it)
      -> MultiHeadFrequencyLayer  a learned complex filter per head between two projections
      -> AdvancedSpectralGating   input-dependent gains on the spectrum, and a gate per position
      -> feed-forward (4x)

Every layer zeroes padded positions (mask False) before its FFT, so a padded value never reaches a real
position, and pads to n_fft = 2 * seq_len, so where the real items sit in the padding does not matter.
With causal=True no output depends on a later input (every filter keeps only its taps on lags >= 0).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dmas.model.spectral import causal_part, check_length, fft_conv, taps_spectrum


class HierarchicalFFT(nn.Module):
    """Depthwise token mixing at several scales: the whole sequence, then 1/2, 1/4 … of it.

    Scale s is a learned filter per channel whose taps reach seq_len / 2**s positions back (and forward,
    unless causal); coarse scales carry long-range context, fine ones a local neighbourhood. A softmax
    over scales, per channel, learns how much each counts. The scales are windows of taps rather than
    fixed blocks of the sequence: block boundaries would move with the padding, so a sequence's output
    would depend on where it sits; windows mix the same neighbourhoods at every position. All scales
    run as one FFT convolution. Linear in x.

    x [B, L, d_model] with L <= seq_len, mask [B, L] -> [B, L, d_model].
    """

    def __init__(self, d_model: int, seq_len: int, n_scales: int = 3, causal: bool = False):
        super().__init__()
        self.n_fft = 2 * seq_len
        self.causal = causal
        self.windows = sorted({max(1, seq_len >> s) for s in range(n_scales)}, reverse=True)
        # taps[k] for lags k = 0 .. w-1, then (unless causal) lags -1 .. -(w-1)
        self.taps = nn.ParameterList(
            nn.Parameter(torch.randn(w if causal else 2 * w - 1, d_model) * (0.1 / math.sqrt(w)))
            for w in self.windows)
        self.scale_logits = nn.Parameter(torch.zeros(len(self.windows), d_model))

    def kernel(self) -> Tensor:
        """Spectrum [n_fft // 2 + 1, d_model] of the weighted sum of the scales' filters."""
        weights = self.scale_logits.softmax(dim=0)  # [n_scales, d_model]
        spectra = [taps_spectrum(taps[:w], None if self.causal else taps[w:], self.n_fft)
                   for w, taps in zip(self.windows, self.taps)]
        return (torch.stack(spectra) * weights.unsqueeze(1)).sum(dim=0)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return fft_conv(torch.where(mask.unsqueeze(-1), x, 0.0), self.kernel(), self.n_fft)


class _SpectralHeads(nn.Module):
    """What the per-head spectral layers share: channels split into heads, the zero-padded FFT length,
    the causal switch and the value projection (created first, so parameters initialise in one order)."""

    def __init__(self, d_model: int, seq_len: int, n_heads: int, causal: bool):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be a multiple of n_heads={n_heads}")
        self.n_heads = n_heads
        self.seq_len = seq_len
        self.n_fft = 2 * seq_len
        self.causal = causal
        self.value = nn.Linear(d_model, d_model, bias=False)


class MultiHeadFrequencyLayer(_SpectralHeads):
    """Project, split the channels into heads, filter each head by its own learned complex filter, project.

    The filter is a complex gain per frequency (GFNet's global filter), shared by the head's channels,
    so heads can specialise on different bands while the projections mix channels. Linear in x.

    x [B, L, d_model] with L <= seq_len, mask [B, L] -> [B, L, d_model].
    """

    def __init__(self, d_model: int, seq_len: int, n_heads: int, causal: bool = False):
        super().__init__(d_model, seq_len, n_heads, causal)
        self.filter = nn.Parameter(torch.randn(seq_len + 1, n_heads, 2) * 0.02)  # (real, imag) per frequency, head
        self.proj = nn.Linear(d_model, d_model, bias=False)

    def kernel(self) -> Tensor:
        """Spectrum [n_fft // 2 + 1, n_heads, 1] of the heads' filters."""
        spectrum = torch.view_as_complex(self.filter)
        if self.causal:
            spectrum = causal_part(spectrum, self.n_fft, self.seq_len)
        return spectrum.unsqueeze(-1)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        batch, length, width = x.shape
        v = torch.where(mask.unsqueeze(-1), self.value(x), 0.0).view(batch, length, self.n_heads, -1)
        h = fft_conv(v, self.kernel(), self.n_fft)  # [B, L, H, d_model / H]
        return self.proj(h.reshape(batch, length, width))


class AdvancedSpectralGating(_SpectralHeads):
    """Gains on the spectrum that depend on the input, then a sigmoid gate per position and channel.

    Frequency f of head h passes with gain sigmoid(sharpness[h] * log(1 + power) + bias[f, h]), where
    power is this sequence's mean |spectrum|^2 over the head's channels at f: the layer learns to keep
    or damp a band by how strongly this input carries it (a learned, input-dependent denoiser). Power
    does not change when the sequence shifts inside its padding, so alignment still does not matter.
    With causal=True the power of the whole sequence would carry later inputs into earlier outputs, so
    the gains are the learned bias alone, cut to a causal filter; the position gate stays input-dependent.

    x [B, L, d_model] with L <= seq_len, mask [B, L] -> [B, L, d_model].
    """

    def __init__(self, d_model: int, seq_len: int, n_heads: int, causal: bool = False):
        super().__init__(d_model, seq_len, n_heads, causal)
        self.bias = nn.Parameter(torch.full((seq_len + 1, n_heads), 2.0))  # gains start open (0.88), flat
        if not causal:  # 0: gains start independent of the input
            self.sharpness = nn.Parameter(torch.zeros(n_heads))
        self.gate = nn.Linear(d_model, d_model)
        self.proj = nn.Linear(d_model, d_model, bias=False)

    def gains(self, spectrum: Tensor) -> Tensor:
        """Gains [B or 1, n_fft // 2 + 1, n_heads, 1] for spectrum [B, n_fft // 2 + 1, n_heads, d_model / H]."""
        if self.causal:
            return causal_part(torch.sigmoid(self.bias).to(spectrum.dtype), self.n_fft, self.seq_len)[None, ..., None]
        power = (spectrum.real.square() + spectrum.imag.square()).mean(dim=-1)  # [B, F, H]
        return torch.sigmoid(self.sharpness * torch.log1p(power) + self.bias).unsqueeze(-1)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        batch, length, width = x.shape
        check_length(length, self.n_fft)
        x = torch.where(mask.unsqueeze(-1), x, 0.0)
        v = self.value(x).view(batch, length, self.n_heads, -1)
        spectrum = torch.fft.rfft(v, n=self.n_fft, dim=1, norm="ortho")  # [B, F, H, d_model / H]
        h = torch.fft.irfft(spectrum * self.gains(spectrum), n=self.n_fft, dim=1, norm="ortho")[:, :length]
        return self.proj(torch.sigmoid(self.gate(x)) * h.reshape(batch, length, width))


class ResonanceBlock(nn.Module):
    """HierarchicalFFT, MultiHeadFrequencyLayer, AdvancedSpectralGating and a feed-forward layer, each a
    pre-LayerNorm residual. x [B, L, d_model], mask [B, L] -> [B, L, d_model], zero at padded positions."""

    def __init__(self, d_model: int, seq_len: int, n_heads: int, causal: bool = False, n_scales: int = 3,
                 dropout: float = 0.0):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d_model)
        self.hierarchical = HierarchicalFFT(d_model, seq_len, n_scales, causal)
        self.ln_2 = nn.LayerNorm(d_model)
        self.heads = MultiHeadFrequencyLayer(d_model, seq_len, n_heads, causal)
        self.ln_3 = nn.LayerNorm(d_model)
        self.gating = AdvancedSpectralGating(d_model, seq_len, n_heads, causal)
        self.ln_4 = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = x + self.dropout(self.hierarchical(self.ln_1(x), mask))
        x = x + self.dropout(self.heads(self.ln_2(x), mask))
        x = x + self.dropout(self.gating(self.ln_3(x), mask))
        x = x + self.dropout(self.ffn(self.ln_4(x)))
        return torch.where(mask.unsqueeze(-1), x, 0.0)

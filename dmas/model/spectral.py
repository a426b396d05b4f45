"""The "Resonance" block: an FFT token mixer that replaces self-attention at O(L log L).

Used by the event encoder (`event_encoder="spectral"`) and by the cascade tiers' small proxy models.
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

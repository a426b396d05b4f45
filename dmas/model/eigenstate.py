"""Temporal Eigenstate layers: a linear state-space recurrence with learned complex eigenvalues.

Each channel carries d_state modes. Mode n evolves as h_t = lambda_n * h_{t-1} + x_t with a learned complex
eigenvalue lambda_n = exp(-softplus(a_n) + i theta_n): the magnitude is below 1 for every value of a_n,
so the state decays and the recurrence is stable at any length, and theta_n lets a mode oscillate
(a periodic pattern in the events). The readout is y_t = Re(sum_n w_n h_t[n]) + skip * x_t.

Unrolled, y is x convolved with the kernel K[k] = Re(sum_n w_n lambda_n^k) on lags k >= 0, so the whole
sequence is computed in parallel by one zero-padded FFT convolution, O(L log L), causal by
construction; it equals the step-by-step recurrence up to float rounding.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from dmas.model.spectral import fft_conv, taps_spectrum


class TemporalEigenstateLayer(nn.Module):
    """The diagonal complex recurrence above, per channel. x [B, L, d_model], mask [B, L] -> [B, L, d_model].

    seq_len only sets the initial memories (from ~1 to ~seq_len steps); any length runs.
    """

    def __init__(self, d_model: int, seq_len: int, d_state: int = 16):
        super().__init__()
        rates = torch.logspace(-math.log10(max(seq_len, 2)), 0.0, d_state)  # 1 - |lambda|, roughly
        self.log_rate = nn.Parameter(torch.log(torch.expm1(rates)).repeat(d_model, 1))  # softplus^-1, [d, N]
        self.angle = nn.Parameter(torch.linspace(0.0, math.pi, d_state).repeat(d_model, 1))  # radians per step
        # readout (real, imag) per channel and mode, scaled so a unit input gives a unit-size output
        self.readout = nn.Parameter(torch.randn(d_model, d_state, 2) * torch.sqrt(rates / d_state)[:, None])
        self.skip = nn.Parameter(torch.ones(d_model))

    def eigenvalues(self) -> Tensor:
        """lambda [d_model, d_state] complex, |lambda| < 1."""
        return torch.exp(torch.complex(-F.softplus(self.log_rate), self.angle))

    def kernel(self, length: int) -> Tensor:
        """K [length, d_model]: the response at lag k = 0 .. length-1 to a unit input."""
        log_lambda = torch.complex(-F.softplus(self.log_rate), self.angle)  # [d, N]
        lags = torch.arange(length, dtype=self.log_rate.dtype, device=self.log_rate.device)
        powers = torch.exp(lags[:, None, None] * log_lambda)  # [L, d, N]: lambda^k
        return torch.einsum("kdn,dn->kd", powers, torch.view_as_complex(self.readout)).real

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = torch.where(mask.unsqueeze(-1), x, 0.0)
        length = x.shape[1]
        n_fft = 2 * length
        return fft_conv(x, taps_spectrum(self.kernel(length), None, n_fft), n_fft) + self.skip * x


class EigenstateBlock(nn.Module):
    """A gated Temporal Eigenstate layer and a feed-forward layer, each a pre-LayerNorm residual.

    The mixer is proj(sigmoid(gate(x)) * eigenstate(value(x))): the recurrence mixes positions, the gate
    lets each position choose what it takes from the state. Causal. x [B, L, d_model], mask [B, L]
    -> [B, L, d_model], zero at padded positions.
    """

    def __init__(self, d_model: int, seq_len: int, d_state: int = 16, dropout: float = 0.0):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d_model)
        self.value = nn.Linear(d_model, d_model, bias=False)
        self.eigenstate = TemporalEigenstateLayer(d_model, seq_len, d_state)
        self.gate = nn.Linear(d_model, d_model)
        self.proj = nn.Linear(d_model, d_model, bias=False)
        self.ln_2 = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))
        self.dropout = nn.Dropout(dropout)

    def mix(self, x: Tensor, mask: Tensor) -> Tensor:
        x = torch.where(mask.unsqueeze(-1), x, 0.0)
        return self.proj(torch.sigmoid(self.gate(x)) * self.eigenstate(self.value(x), mask))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = x + self.dropout(self.mix(self.ln_1(x), mask))
        x = x + self.dropout(self.ffn(self.ln_2(x)))
        return torch.where(mask.unsqueeze(-1), x, 0.0)

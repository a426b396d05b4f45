"""One encoder per modality: attributes, event sequence, interaction graph, artifacts.

Each turns its padded, masked inputs into one fixed-width vector per entity. Padded items are
replaced by zeros before any arithmetic, so their contents never change an output (not even NaN),
and an entity with no real items still gets a finite vector.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from dmas.model.config import EventEncoder
from dmas.model.eigenstate import EigenstateBlock
from dmas.model.resonance import ResonanceBlock
from dmas.model.spectral import SpectralMixer

N_FREQUENCIES = 8  # sinusoids per time input in TimeEncoding
_MASKED = -1e9  # attention bias of a padded key: exp() of it is exactly 0 in float32


class AttrEncoder(nn.Module):
    """Numeric attributes [B, A] -> [B, d_out]."""

    def __init__(self, n_attributes: int, d_out: int):
        super().__init__()
        self.linear = nn.Linear(n_attributes, d_out)

    def forward(self, attributes: Tensor) -> Tensor:
        return F.relu(self.linear(attributes))


class TimeEncoding(nn.Module):
    """Log time since the previous event and log age [B, L, 2] -> [B, L, d_out].

    Each time is kept as is and through sines and cosines of learned frequencies (Time2Vec), so the
    model can pick up both trends and periodic patterns in the gaps between events.
    """

    def __init__(self, d_out: int):
        super().__init__()
        self.frequency = nn.Parameter(torch.logspace(-1.0, 0.5, N_FREQUENCIES))  # radians per log1p-second
        self.linear = nn.Linear(2 * (1 + 2 * N_FREQUENCIES), d_out)

    def forward(self, times: Tensor) -> Tensor:
        angles = times.unsqueeze(-1) * self.frequency  # [B, L, 2, F]
        features = torch.cat([times.unsqueeze(-1), angles.sin(), angles.cos()], dim=-1)  # [B, L, 2, 1 + 2F]
        return self.linear(features.flatten(-2))


class SelfAttentionBlock(nn.Module):
    """Multi-head self-attention over real events plus a feed-forward layer, each a pre-LayerNorm residual.

    x [B, L, d_model], mask [B, L] -> [B, L, d_model], zero at padded positions. No positional
    encoding: order reaches the model through the time features only, so alignment does not matter.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0):
        super().__init__()
        self.n_heads = n_heads
        self.ln_1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln_2 = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))
        self.dropout = nn.Dropout(dropout)

    def attention(self, x: Tensor, mask: Tensor) -> Tensor:
        batch, length, width = x.shape
        heads = self.qkv(x).split(width, dim=2)
        q, k, v = (h.view(batch, length, self.n_heads, width // self.n_heads).transpose(1, 2) for h in heads)
        # one fused kernel (no [B, H, L, L] scores kept for backward); a large negative bias gives padded
        # keys weight exactly 0, and an entity with no events finite weights (its output is discarded)
        bias = torch.where(mask, 0.0, _MASKED).to(x.dtype)[:, None, None, :]  # [B, 1, 1, L]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias,
                                             dropout_p=self.dropout.p if self.training else 0.0)
        return self.proj(out.transpose(1, 2).reshape(batch, length, width))  # [B, L, d_model]

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = x + self.dropout(self.attention(self.ln_1(x), mask))
        x = x + self.dropout(self.ffn(self.ln_2(x)))
        return torch.where(mask.unsqueeze(-1), x, 0.0)


class MaskedAttentionPool(nn.Module):
    """Softmax-weighted sum of the real positions, scored against a learned query.

    x [B, L, d], mask [B, L] -> pooled [B, d], weights [B, L]. Weights sum to 1 over real positions
    and are 0 on padding; an entity with no real positions gets all-zero weights and a learned
    "no events" vector. The query starts at zero, i.e. as a plain masked mean.
    """

    def __init__(self, d_model: int):
        super().__init__()
        self.query = nn.Parameter(torch.zeros(d_model))
        self.empty = nn.Parameter(torch.zeros(d_model))

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        scores = x @ self.query / math.sqrt(x.shape[-1])  # [B, L]
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        has_any = mask.any(dim=1, keepdim=True)  # [B, 1]
        weights = torch.where(has_any, scores.softmax(dim=1), 0.0)  # [B, L]
        pooled = (weights.unsqueeze(-1) * x).sum(dim=1)  # [B, d]
        return torch.where(has_any, pooled, self.empty), weights


class EventSequenceEncoder(nn.Module):
    """An entity's events -> [B, d_model] and the pooling weights over its events [B, L].

    Each event becomes a token: type embedding + value projection + time encoding (which is a linear
    map of their concatenation). One mixing block relates the events to each other: self-attention,
    or for long histories an O(L log L) one (the spectral mixer, a Resonance block, or a Temporal
    Eigenstate block, which reads the history in order), or `n_layers` of them one after another;
    masked attention pooling then summarises them.
    """

    def __init__(self, n_event_types: int, d_model: int, n_heads: int, max_events: int,
                 mixer: EventEncoder = "attention", dropout: float = 0.0, n_layers: int = 1):
        super().__init__()
        self.event_type = nn.Embedding(n_event_types + 1, d_model, padding_idx=0)
        self.value = nn.Linear(1, d_model)
        self.time = TimeEncoding(d_model)
        self.block = _mixing_block(mixer, d_model, n_heads, max_events, dropout)
        # blocks after the first (none by default, so a one-block encoder's weights are as before)
        self.more_blocks = nn.ModuleList(_mixing_block(mixer, d_model, n_heads, max_events, dropout)
                                         for _ in range(n_layers - 1))
        self.ln_f = nn.LayerNorm(d_model)
        self.pool = MaskedAttentionPool(d_model)

    def forward(self, event_type: Tensor, value: Tensor, dt_prev: Tensor, age: Tensor,
                mask: Tensor) -> tuple[Tensor, Tensor]:
        event_type = torch.where(mask, event_type, 0)
        value, dt_prev, age = (torch.where(mask, t, 0.0) for t in (value, dt_prev, age))
        tokens = (self.event_type(event_type)
                  + self.value(value.unsqueeze(-1))
                  + self.time(torch.stack([dt_prev, age], dim=-1)))  # [B, L, d_model]
        tokens = torch.where(mask.unsqueeze(-1), tokens, 0.0)
        hidden = self.block(tokens, mask)
        for block in self.more_blocks:
            hidden = block(hidden, mask)
        return self.pool(self.ln_f(hidden), mask)


def _mixing_block(mixer: EventEncoder, d_model: int, n_heads: int, max_events: int, dropout: float) -> nn.Module:
    """One block relating an entity's events to each other: [B, L, d_model] and mask -> [B, L, d_model]."""
    if mixer == "attention":
        return SelfAttentionBlock(d_model, n_heads, dropout)
    if mixer == "spectral":
        return SpectralMixer(d_model, max_events, dropout)
    if mixer == "resonance":
        return ResonanceBlock(d_model, max_events, n_heads, dropout=dropout)
    if mixer == "eigenstate":
        return EigenstateBlock(d_model, max_events, dropout=dropout)
    raise ValueError(f"mixer must be one of {EventEncoder.__args__}, got {mixer!r}")


class GraphEncoder(nn.Module):
    """The entity's attributes and the mean message of its neighbours -> [B, d_out].

    A neighbour's message is ReLU(linear map of [its attributes, interaction type, interaction value]);
    an entity without neighbours gets a zero mean.
    """

    def __init__(self, n_attributes: int, n_interaction_types: int, d_out: int):
        super().__init__()
        self.neighbor = nn.Linear(n_attributes + 1, d_out)
        self.interaction_type = nn.Embedding(n_interaction_types + 1, d_out, padding_idx=0)
        self.out = nn.Linear(n_attributes + d_out, d_out)

    def forward(self, attributes: Tensor, neighbor_attributes: Tensor, neighbor_type: Tensor,
                neighbor_value: Tensor, mask: Tensor) -> Tensor:
        real = mask.unsqueeze(-1)  # [B, K, 1]
        neighbor_attributes = torch.where(real, neighbor_attributes, 0.0)
        neighbor_value = torch.where(mask, neighbor_value, 0.0)
        neighbor_type = torch.where(mask, neighbor_type, 0)
        inputs = torch.cat([neighbor_attributes, neighbor_value.unsqueeze(-1)], dim=-1)  # [B, K, A + 1]
        messages = F.relu(self.neighbor(inputs) + self.interaction_type(neighbor_type))  # [B, K, d_out]
        messages = torch.where(real, messages, 0.0)
        mean = messages.sum(dim=1) / mask.sum(dim=1, keepdim=True).clamp(min=1)  # [B, d_out]
        return F.relu(self.out(torch.cat([attributes, mean], dim=-1)))


class ArtifactEncoder(nn.Module):
    """An entity's artifact feature vectors [B, M, D] -> [B, d_out]; zeros for an entity with none.

    Each artifact type has its own projection of its own vector length (the rest of the row is
    padding and is never read), plus a type embedding. Mean and max over the real artifacts are
    concatenated and mixed, so both "typical" and "most extreme" artifacts can count.
    """

    def __init__(self, artifact_dims: dict[int, int], d_out: int):
        super().__init__()
        self.dims = dict(sorted(artifact_dims.items()))
        self.project = nn.ModuleDict({str(t): nn.Linear(dim, d_out) for t, dim in self.dims.items()})
        self.artifact_type = nn.Embedding(max(self.dims) + 1, d_out, padding_idx=0)
        self.out = nn.Linear(2 * d_out, d_out)

    def forward(self, vector: Tensor, artifact_type: Tensor, mask: Tensor) -> Tensor:
        real = mask.unsqueeze(-1)  # [B, M, 1]
        vector = torch.where(real, vector, 0.0)
        artifact_type = torch.where(mask, artifact_type, 0)
        projected = vector.new_zeros(*vector.shape[:2], self.out.out_features)  # [B, M, d_out]
        for t, dim in self.dims.items():
            of_type = (artifact_type == t).unsqueeze(-1)
            projected = torch.where(of_type, self.project[str(t)](vector[..., :dim]), projected)
        hidden = F.relu(projected + self.artifact_type(artifact_type))
        count = mask.sum(dim=1, keepdim=True)  # [B, 1]
        mean = torch.where(real, hidden, 0.0).sum(dim=1) / count.clamp(min=1)
        peak = torch.where(real, hidden, torch.finfo(hidden.dtype).min).amax(dim=1)
        has_any = count > 0
        pooled = torch.cat([mean, torch.where(has_any, peak, 0.0)], dim=-1)  # [B, 2 * d_out]
        return torch.where(has_any, F.relu(self.out(pooled)), 0.0)

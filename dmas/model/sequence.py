"""SequenceModel: a next-token model over token ids, built from causal Resonance or Temporal Eigenstate blocks.

    tokens [B, L] -> embedding [B, L, d] -> n_layers causal blocks -> LayerNorm -> logits [B, L, vocab_size]

The cascade's sequence case (token-id sequences, or text read as bytes). No positional embedding: the
blocks' filters act on distances between positions. The output layer is the token embedding (tied), as
in GPT-2, initialised as there (std 0.02). Sizes come from `SequenceModelSize` (`SEQUENCE_MODEL_SIZES` names
the standard ones).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from dmas.model.config import SequenceModelSize
from dmas.model.eigenstate import EigenstateBlock
from dmas.model.resonance import ResonanceBlock


class SequenceModel(nn.Module):
    """Logits at position t depend only on tokens 0 .. t (every block is causal)."""

    def __init__(self, size: SequenceModelSize, dropout: float = 0.0, gradient_checkpointing: bool = False):
        super().__init__()
        self.size = size
        self.gradient_checkpointing = gradient_checkpointing  # recompute each block in backward: less memory
        self.token = nn.Embedding(size.vocab_size, size.d_model)
        nn.init.normal_(self.token.weight, std=0.02)  # tied output: unit-variance rows would start at huge logits
        if size.layer == "resonance":
            blocks = (ResonanceBlock(size.d_model, size.seq_len, size.n_heads, causal=True,
                                     n_scales=size.n_scales, dropout=dropout) for _ in range(size.n_layers))
        else:
            blocks = (EigenstateBlock(size.d_model, size.seq_len, size.d_state, dropout)
                      for _ in range(size.n_layers))
        self.blocks = nn.ModuleList(blocks)
        self.ln_f = nn.LayerNorm(size.d_model)

    def forward(self, tokens: Tensor, mask: Tensor | None = None) -> Tensor:
        """tokens [B, L] int64 (L <= seq_len), mask [B, L] (True = real; default all) -> logits [B, L, vocab_size]."""
        mask = torch.ones_like(tokens, dtype=torch.bool) if mask is None else mask
        x = torch.where(mask.unsqueeze(-1), self.token(torch.where(mask, tokens, 0)), 0.0)
        for block in self.blocks:
            if self.gradient_checkpointing and self.training:
                x = checkpoint(block, x, mask, use_reentrant=False)
            else:
                x = block(x, mask)
        return self.ln_f(x) @ self.token.weight.T

"""SpectralMixer: shapes, masking, alignment independence, real mixing across positions, determinism."""

from __future__ import annotations

import pytest
import torch

from dmas.model import SpectralMixer


def sequence(batch: int, length: int, d_model: int, n_real: int, align: str, seed: int = 0):
    """x [batch, length, d_model] with the same n_real real rows placed left or right, zeros elsewhere."""
    real = torch.randn(batch, n_real, d_model, generator=torch.Generator().manual_seed(seed))
    x = torch.zeros(batch, length, d_model)
    mask = torch.zeros(batch, length, dtype=torch.bool)
    where = slice(0, n_real) if align == "left" else slice(length - n_real, length)
    x[:, where] = real
    mask[:, where] = True
    return x, mask, where


def test_shape_and_zero_padding():
    torch.manual_seed(0)
    mixer = SpectralMixer(8, seq_len=16)
    x, mask, where = sequence(3, 10, 8, 6, "left")
    out = mixer(x, mask)
    assert out.shape == (3, 10, 8)
    assert torch.isfinite(out).all()
    assert (out[:, 6:] == 0).all()


def test_padded_values_never_reach_real_positions():
    torch.manual_seed(0)
    mixer = SpectralMixer(8, seq_len=16)
    x, mask, where = sequence(2, 16, 8, 5, "right")
    garbage = x.clone()
    garbage[~mask] = torch.randn(int((~mask).sum()), 8) * 100
    garbage[0, 0, 0] = float("nan")
    assert torch.equal(mixer(x, mask), mixer(garbage, mask))


def test_alignment_does_not_matter():
    torch.manual_seed(0)
    mixer = SpectralMixer(8, seq_len=16)
    left, left_mask, left_where = sequence(2, 16, 8, 7, "left")
    right, right_mask, right_where = sequence(2, 16, 8, 7, "right")
    torch.testing.assert_close(mixer(left, left_mask)[:, left_where], mixer(right, right_mask)[:, right_where])


def test_each_position_sees_the_whole_sequence():
    torch.manual_seed(0)
    mixer = SpectralMixer(8, seq_len=16)
    x, mask, _ = sequence(1, 16, 8, 16, "left")
    x.requires_grad_(True)
    mixer(x, mask)[0, 0].sum().backward()
    assert (x.grad[0].abs().sum(dim=-1) > 0).all()


def test_long_sequences_run_and_are_deterministic():
    torch.manual_seed(0)
    mixer = SpectralMixer(16, seq_len=4096)
    x, mask, _ = sequence(2, 4096, 16, 3000, "right")
    first = mixer(x, mask)
    assert torch.equal(first, mixer(x, mask))
    assert torch.isfinite(first).all()


def test_rejects_sequences_longer_than_seq_len():
    mixer = SpectralMixer(8, seq_len=4)
    x, mask, _ = sequence(1, 5, 8, 5, "left")
    with pytest.raises(ValueError, match="seq_len=4"):
        mixer(x, mask)

"""Resonance and Temporal Eigenstate layers: shapes, causality, the FFT mixing's linearity and shift
properties, agreement with direct convolution and with the recurrence, gradient flow, determinism,
padding invariance, and the named sizes (the GPU ones counted on the meta device, never allocated)."""

from __future__ import annotations

import hashlib

import pytest
import torch
from torch import nn

from dmas.model import (
    SEQUENCE_MODEL_SIZES,
    AdvancedSpectralGating,
    EigenstateBlock,
    HierarchicalFFT,
    MultiHeadFrequencyLayer,
    ResonanceBlock,
    SequenceModel,
    SequenceModelSize,
    TemporalEigenstateLayer,
)

D, H, SEQ = 8, 2, 16
LAYERS = {
    "hierarchical": lambda causal: HierarchicalFFT(D, SEQ, causal=causal),
    "heads": lambda causal: MultiHeadFrequencyLayer(D, SEQ, H, causal=causal),
    "gating": lambda causal: AdvancedSpectralGating(D, SEQ, H, causal=causal),
    "resonance": lambda causal: ResonanceBlock(D, SEQ, H, causal=causal),
    "eigenstate": lambda causal: EigenstateBlock(D, SEQ),  # causal by construction
}
LINEAR = ["hierarchical", "heads"]  # linear in x (the others gate or normalise)


def build(name: str, causal: bool = False, seed: int = 0, dtype=torch.float32) -> nn.Module:
    """A layer with non-trivial weights everywhere: the gates' input dependence switched on."""
    torch.manual_seed(seed)
    layer = LAYERS[name](causal).to(dtype)
    with torch.no_grad():
        for name_, parameter in layer.named_parameters():
            if name_.endswith("sharpness") or name_.endswith("scale_logits"):
                parameter.normal_()
    return layer


def placed(x: torch.Tensor, length: int, start: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x [B, n, d] put at positions start .. start+n-1 of a zero sequence of `length`, with its mask."""
    batch, n, width = x.shape
    out = x.new_zeros(batch, length, width)
    out[:, start:start + n] = x
    mask = torch.zeros(batch, length, dtype=torch.bool)
    mask[:, start:start + n] = True
    return out, mask


def real_input(batch: int = 2, n: int = 10, seed: int = 1, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(batch, n, D, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("name", LAYERS)
def test_shapes_and_padded_outputs(name):
    x, mask = placed(real_input(), 13, 0)
    out = build(name)(x, mask)
    assert out.shape == (2, 13, D) and torch.isfinite(out).all()
    if name in ("resonance", "eigenstate"):  # blocks zero their padded positions
        assert (out[:, 10:] == 0).all()


@pytest.mark.parametrize("name", ["hierarchical", "heads", "gating", "resonance"])
def test_rejects_sequences_longer_than_seq_len(name):
    x, mask = placed(real_input(n=SEQ + 1), SEQ + 1, 0)
    with pytest.raises(ValueError, match=f"seq_len={SEQ}"):
        build(name)(x, mask)


@pytest.mark.parametrize("name", LAYERS)
def test_causal_outputs_before_t_ignore_the_input_at_t(name):
    # FFTs round every output a little whenever any input changes, so "unchanged" is checked in float64:
    # the earlier outputs move by rounding (< 1e-12) while the ones from t on move by O(1)
    layer = build(name, causal=True, dtype=torch.float64)
    x, mask = placed(real_input(n=SEQ, dtype=torch.float64), SEQ, 0)
    base = layer(x, mask)
    for t in (0, 5, SEQ - 1):
        changed = x.clone()
        changed[:, t] += 3.0 * torch.randn(D, dtype=torch.float64)  # not a constant: LayerNorm removes those
        delta = (layer(changed, mask) - base).abs()
        assert delta[:, :t].max().item() < 1e-12 if t else True
        assert delta[:, t:].max().item() > 1e-3


@pytest.mark.parametrize("name", ["hierarchical", "heads", "gating", "resonance"])
def test_non_causal_outputs_see_later_inputs(name):
    layer = build(name, causal=False)
    x, mask = placed(real_input(n=SEQ), SEQ, 0)
    changed = x.clone()
    changed[:, -1] += 3.0 * torch.randn(D)
    assert (layer(changed, mask) - layer(x, mask))[:, 0].abs().max().item() > 1e-5


@pytest.mark.parametrize("causal", [False, True])
def test_hierarchical_fft_is_the_direct_convolution_of_its_scales(causal):
    layer = build("hierarchical", causal=causal, dtype=torch.float64)
    x, mask = placed(real_input(batch=1, n=SEQ, dtype=torch.float64), SEQ, 0)
    weights = layer.scale_logits.softmax(dim=0)
    expected = torch.zeros_like(x)
    with torch.no_grad():
        for scale, (window, taps) in enumerate(zip(layer.windows, layer.taps)):
            lags = list(range(window)) + ([] if causal else [-(k + 1) for k in range(window - 1)])
            for row, lag in enumerate(lags):  # out[t] += w * taps[lag] * x[t - lag]
                for t in range(SEQ):
                    if 0 <= t - lag < SEQ:
                        expected[0, t] += weights[scale] * taps[row] * x[0, t - lag]
        torch.testing.assert_close(layer(x, mask), expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", LINEAR)
def test_fft_mixing_is_linear(name):
    layer = build(name, dtype=torch.float64)
    (x, mask), (y, _) = placed(real_input(n=12, dtype=torch.float64), SEQ, 2), placed(
        real_input(n=12, seed=2, dtype=torch.float64), SEQ, 2)
    torch.testing.assert_close(layer(2.5 * x - 0.5 * y, mask), 2.5 * layer(x, mask) - 0.5 * layer(y, mask))


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("causal", [False, True])
def test_shifting_the_input_shifts_the_output(name, causal):
    # linear convolution: moving the real items inside the padding moves their outputs, nothing else
    layer = build(name, causal=causal)
    x = real_input(n=9)
    outputs = []
    for start in (0, 3, SEQ - 9):
        shifted, mask = placed(x, SEQ, start)
        outputs.append(layer(shifted, mask)[:, start:start + 9])
    for other in outputs[1:]:
        torch.testing.assert_close(other, outputs[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", LAYERS)
def test_padding_never_reaches_real_positions(name):
    layer = build(name)
    x, mask = placed(real_input(n=7), SEQ, 4)
    garbage = x.clone()
    garbage[~mask] = torch.randn(int((~mask).sum()), D, generator=torch.Generator().manual_seed(5)) * 100
    garbage[0, 0, 0] = float("nan")
    assert torch.equal(layer(x, mask)[mask], layer(garbage, mask)[mask])
    # a shorter padded length (here none at all) gives the same real outputs, up to rounding
    tight = layer(x[:, 4:11], mask[:, 4:11])
    torch.testing.assert_close(tight, layer(x, mask)[:, 4:11], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("causal", [False, True])
def test_every_parameter_gets_a_gradient(name, causal):
    layer = build(name, causal=causal)
    x, mask = placed(real_input(n=12), SEQ, 2)
    (layer(x, mask) * torch.randn(2, SEQ, D, generator=torch.Generator().manual_seed(3))).sum().backward()
    for parameter_name, parameter in layer.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, parameter_name
        assert torch.isfinite(parameter.grad).all(), parameter_name


def state_bytes(module: nn.Module) -> str:
    digest = hashlib.sha256()
    for key, value in module.state_dict().items():
        digest.update(key.encode() + value.detach().numpy().tobytes())
    return digest.hexdigest()


@pytest.mark.parametrize("name", LAYERS)
def test_same_seed_same_bytes(name):
    x, mask = placed(real_input(n=12), SEQ, 0)
    runs = []
    for _ in range(2):
        layer = build(name, causal=name != "gating")
        optimizer = torch.optim.Adam(layer.parameters(), lr=1e-2)
        for _ in range(2):
            optimizer.zero_grad()
            layer(x, mask).square().mean().backward()
            optimizer.step()
        runs.append((state_bytes(layer), layer(x, mask).detach().numpy().tobytes()))
    assert runs[0] == runs[1]


def test_spectral_gains_depend_on_the_input():
    layer = build("gating")
    x, mask = placed(real_input(n=12), SEQ, 0)
    # linear layers would scale with x; the input-dependent gains do not
    assert not torch.allclose(layer(3 * x, mask), 3 * layer(x, mask), rtol=1e-3, atol=1e-4)


def test_eigenstate_equals_its_recurrence_and_is_stable():
    torch.manual_seed(0)
    layer = TemporalEigenstateLayer(D, SEQ, d_state=4).double()
    with torch.no_grad():
        layer.log_rate.normal_(std=3.0)  # any value: |lambda| stays below 1
        layer.angle.normal_(std=2.0)
    eigenvalues = layer.eigenvalues()
    assert (eigenvalues.abs() < 1).all()
    x = real_input(batch=1, n=SEQ, dtype=torch.float64)
    mask = torch.ones(1, SEQ, dtype=torch.bool)
    readout = torch.view_as_complex(layer.readout.detach())
    state = torch.zeros(D, 4, dtype=torch.complex128)
    expected = []
    with torch.no_grad():
        for t in range(SEQ):  # h_t = lambda h_{t-1} + x_t ; y_t = Re(w . h_t) + skip x_t
            state = eigenvalues * state + x[0, t][:, None]
            expected.append((readout * state).sum(-1).real + layer.skip * x[0, t])
        torch.testing.assert_close(layer(x, mask)[0], torch.stack(expected), rtol=1e-9, atol=1e-12)


def test_eigenstate_runs_past_its_seq_len():
    torch.manual_seed(0)
    x, mask = placed(real_input(n=4 * SEQ), 4 * SEQ, 0)
    assert torch.isfinite(EigenstateBlock(D, SEQ)(x, mask)).all()


@pytest.mark.parametrize("layer", ["resonance", "eigenstate"])
def test_sequence_model_is_causal_and_trains(layer):
    size = SequenceModelSize(layer=layer, vocab_size=11, d_model=8, n_layers=2, n_heads=2, seq_len=12)
    torch.manual_seed(0)
    model = SequenceModel(size).double()
    tokens = torch.randint(0, 11, (3, 12), generator=torch.Generator().manual_seed(1))
    logits = model(tokens)
    assert logits.shape == (3, 12, 11)
    changed = tokens.clone()
    changed[:, 7] = (changed[:, 7] + 1) % 11
    assert (model(changed) - logits)[:, :7].abs().max().item() < 1e-10
    assert (model(changed) - logits)[:, 7:].abs().max().item() > 1e-6
    loss = nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 11), tokens[:, 1:].reshape(-1))
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize(("name", "target"), [("gpu-76m", 76e6), ("gpu-454m", 454e6), ("gpu-983m", 983e6)])
def test_the_original_engines_gpu_sizes_build(name, target):
    with torch.device("meta"):  # shapes only: nothing is allocated
        model = SequenceModel(SEQUENCE_MODEL_SIZES[name])
    assert all(p.is_meta for p in model.parameters())
    assert abs(sum(p.numel() for p in model.parameters()) - target) < 0.03 * target


def test_cpu_sizes_grow_and_run():
    counts = []
    for name in ("tiny", "small", "base"):
        size = SEQUENCE_MODEL_SIZES[name]
        with torch.device("meta"):
            counts.append(sum(p.numel() for p in SequenceModel(size).parameters()))
    assert counts == sorted(counts) and counts[0] < 1e6
    torch.manual_seed(0)
    tiny = SequenceModel(SEQUENCE_MODEL_SIZES["tiny"])
    assert tiny(torch.zeros(1, 32, dtype=torch.int64)).shape == (1, 32, 256)

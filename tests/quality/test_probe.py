"""The probe behind dimensions 4 and 5: which task it learns, that its gradients are right, that it is
deterministic whatever the thread count, and that a mean shift alone does not change what it sees.

`mixed_frame`, `shrunk`, `few_rows`, `shifted` and `statistics_per_thread_count` are shared with the tests
of the two dimensions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dmas.quality import probe
from dmas.quality.dimension import CheckContext, Dimension
from dmas.quality.frame import QualityFrame
from tests.quality.judging import with_values

CONTEXT = CheckContext(seed=0, target=None, max_rows=20_000)
MERCHANT_SHARES = 1.0 / np.arange(1, 13) ** 1.4 / np.sum(1.0 / np.arange(1, 13) ** 1.4)  # 12 levels, Zipf


def mixed_frame(n: int, seed: int, target: str | None = None) -> QualityFrame:
    """`n` rows of 10 columns: correlated normals, a column made of them, lognormal, bimodal,
    exponential, a Zipf categorical (12 levels: more than the probe's one-hot keeps) and a boolean."""
    rng = np.random.default_rng([seed, 45])
    latent = rng.standard_normal((n, 3)) @ np.linalg.cholesky([[1.0, 0.5, 0.2], [0.5, 1.0, 0.3], [0.2, 0.3, 1.0]]).T
    merchant = rng.choice(12, size=n, p=MERCHANT_SHARES)
    values = {
        "x1": 10.0 + 2.0 * latent[:, 0], "x2": -3.0 + latent[:, 1], "x3": 5.0 * latent[:, 2],
        "hub": latent.sum(axis=1) + rng.normal(0.0, 0.3, n),
        "amount": np.exp(3.0 + 0.5 * latent[:, 0] + rng.normal(0.0, 0.4, n)),
        "bimodal": np.where(rng.random(n) < 0.35, rng.normal(3.0, 0.8, n), rng.normal(-2.0, 0.6, n)),
        "wait": rng.exponential(5.0, n),
        "score": latent[:, 0] - 0.5 * latent[:, 2] + 0.3 * np.sin(merchant) + rng.normal(0.0, 0.5, n),
        "merchant": merchant.astype(np.int32),
        "flag": (latent[:, 1] + rng.normal(0.0, 1.0, n) > 0.5).astype(np.int32),
    }
    kinds = {name: "numeric" for name in values}
    kinds.update(merchant="categorical", flag="boolean")
    levels = {"merchant": tuple(f"m{k:02d}" for k in range(12)), "flag": ("false", "true")}
    return QualityFrame(kinds, values, levels, target)


def shrunk(frame: QualityFrame, factor: float) -> QualityFrame:
    """Every continuous column's variance times `factor` around its mean."""
    return with_values(frame, {name: values.mean() + np.sqrt(factor) * (values - values.mean())
                               for name, values in frame.values.items() if name in frame.continuous()})


def few_rows(frame: QualityFrame, k: int, seed: int) -> QualityFrame:
    """Mode collapse: the same number of rows, all copies of `k` distinct rows of `frame`."""
    rng = np.random.default_rng(seed)
    distinct = rng.choice(frame.n_rows, size=k, replace=False)
    return frame.take(distinct[rng.integers(0, k, frame.n_rows)])


def shifted(frame: QualityFrame, sds: float) -> QualityFrame:
    """Every continuous column moved by `sds` of its standard deviations: drift, the shape intact."""
    return with_values(frame, {name: frame.values[name] + sds * frame.values[name].std()
                               for name in frame.continuous()})


def statistics_per_thread_count(dimension: Dimension, reference: QualityFrame, candidate: QualityFrame,
                                threads: tuple[int, ...], monkeypatch: pytest.MonkeyPatch) -> list[list[tuple]]:
    """(key, value, evidence) of `dimension`'s statistics, trained afresh (not read from the cache) with each of
    these torch thread counts in turn; the caller's thread count is restored."""
    previous, seen = torch.get_num_threads(), []
    try:
        for count in threads:
            monkeypatch.setattr(probe, "_cache", type(probe._cache)())
            torch.set_num_threads(count)
            seen.append([(s.key, s.value, s.evidence) for s in dimension.statistics(reference, candidate, CONTEXT)])
    finally:
        torch.set_num_threads(previous)
    return seen


def test_without_a_target_the_probe_predicts_the_most_correlated_column_and_says_so():
    reference = mixed_frame(3000, 1)
    continuous = reference.continuous()
    correlation = np.abs(np.corrcoef(reference.matrix(continuous).T))
    np.fill_diagonal(correlation, 0.0)
    task = probe.probe_task(reference)
    assert task.column == continuous[int(np.argmax(correlation.sum(axis=0)))] == "hub"
    assert task.self_supervised and task.kind == "regression"
    assert "hub" not in task.inputs and len(task.inputs) == 9
    assert "no target column" in task.note() and "'hub'" in task.note()


def test_a_target_column_sets_the_task_regression_or_classification():
    assert probe.probe_task(mixed_frame(500, 1, target="score")).kind == "regression"
    task = probe.probe_task(mixed_frame(500, 1, target="merchant"))
    assert (task.column, task.kind, task.self_supervised) == ("merchant", "classification", False)
    pair = probe.train_pair(mixed_frame(2000, 1, target="flag"), mixed_frame(2000, 2, target="flag"), CONTEXT)
    assert pair.complete and pair.task.note().startswith("the probe predicts the target 'flag'")
    assert 0.3 < pair.candidate.holdout_loss.mean() < np.log(2)  # learnt something about a binary target


def test_tables_with_little_to_learn_from():
    frame = mixed_frame(500, 1)
    discrete = QualityFrame({"merchant": "categorical", "flag": "boolean"},
                            {name: frame.values[name] for name in ("merchant", "flag")}, frame.levels)
    assert probe.probe_task(discrete).column == "flag"  # first by name with two levels present
    alone = QualityFrame({"x1": "numeric"}, {"x1": frame.values["x1"]})
    assert probe.probe_task(alone) is None and probe.train_pair(alone, alone, CONTEXT) is None
    constant = with_values(frame, {"x2": np.full(500, 7.0)})
    assert "x2" not in probe.probe_task(constant).inputs  # nothing to learn from a column without spread


@pytest.mark.parametrize("kind,classes", [("regression", 1), ("classification", 4)])
def test_written_out_gradients_are_autograd_gradients(kind, classes):
    generator = torch.Generator().manual_seed(3)
    ensemble = probe._Ensemble([5, probe.HIDDEN, probe.HIDDEN, classes], generator)
    for param in ensemble.params[1::2]:
        param.copy_(torch.randn(param.shape, generator=generator) * 0.1)  # nonzero biases too
    inputs = torch.randn(probe.SEEDS, 64, 5, generator=generator)
    if kind == "regression":
        labels = torch.randn(probe.SEEDS, 64, generator=generator)
    else:
        labels = torch.randint(0, classes, (probe.SEEDS, 64), generator=generator)
    activations = ensemble.forward(inputs)
    loss, error = probe._loss_and_error(activations[-1], labels, kind)
    ensemble.backward(activations, error)
    leaves = [param.detach().clone().requires_grad_(True) for param in ensemble.params]
    hidden = inputs
    for layer in range(len(probe.LAYERS)):
        hidden = torch.baddbmm(leaves[2 * layer + 1], hidden, leaves[2 * layer])
        hidden = torch.tanh(hidden) if layer < len(probe.LAYERS) - 1 else hidden
    if kind == "regression":
        reference_loss = (hidden[..., 0] - labels).square().mean(dim=1)
    else:
        reference_loss = torch.nn.functional.cross_entropy(hidden.reshape(-1, classes), labels.reshape(-1),
                                                           reduction="none").reshape(probe.SEEDS, -1).mean(dim=1)
    reference_loss.sum().backward()
    torch.testing.assert_close(loss, reference_loss.detach())
    for grad, leaf in zip(ensemble.grads, leaves):
        torch.testing.assert_close(grad, leaf.grad, rtol=1e-4, atol=1e-6)


def _arrays(pair: probe.ProbePair) -> list[np.ndarray]:
    return [getattr(run, field) for run in (pair.reference, pair.candidate)
            for field in ("losses", "gradient_norms", "final_loss", "holdout_loss")]


def test_training_is_identical_twice_and_with_one_or_two_threads(monkeypatch):
    reference, candidate = mixed_frame(2000, 1), mixed_frame(2000, 2)
    previous = torch.get_num_threads()
    runs = []
    try:
        for threads in (1, 2, 2):
            monkeypatch.setattr(probe, "_cache", type(probe._cache)())  # train again, not read the cache
            torch.set_num_threads(threads)
            runs.append(_arrays(probe.train_pair(reference, candidate, CONTEXT)))
            assert torch.get_num_threads() == threads  # the caller's setting is back
    finally:
        torch.set_num_threads(previous)
    for other in runs[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(runs[0], other))


def test_the_reference_is_trained_once_for_many_candidates():
    reference = mixed_frame(2000, 1)
    first = probe.train_pair(reference, mixed_frame(2000, 2), CONTEXT)
    second = probe.train_pair(reference, mixed_frame(2000, 3), CONTEXT)
    assert second.reference is first.reference
    assert not np.array_equal(second.candidate.losses, first.candidate.losses)


def test_a_mean_shift_alone_leaves_the_probe_where_it_was():
    reference, candidate = mixed_frame(2000, 1), mixed_frame(2000, 2)
    plain = probe.train_pair(reference, candidate, CONTEXT)
    moved = probe.train_pair(reference, shifted(candidate, 1.0), CONTEXT)
    for a, b in zip(_arrays(plain), _arrays(moved)):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-6)


def test_missing_values_are_used_around_and_too_few_rows_give_no_run():
    reference = mixed_frame(2000, 1)
    candidate = mixed_frame(2000, 2)
    rng = np.random.default_rng(0)
    holes = {name: np.where(rng.random(2000) < 0.3, np.nan, candidate.values[name]) for name in candidate.continuous()}
    holes.update({name: np.where(rng.random(2000) < 0.3, -1, candidate.values[name]).astype(np.int32)
                  for name in candidate.discrete()})
    pair = probe.train_pair(reference, with_values(candidate, holes), CONTEXT)
    assert pair.candidate.rows == np.count_nonzero(np.isfinite(holes["hub"]))  # rows without the label left out
    assert all(np.all(np.isfinite(array)) for array in _arrays(pair))
    tiny = probe.train_pair(reference, candidate.take(np.arange(10)), CONTEXT)
    assert tiny.reference is not None and tiny.candidate is None and not tiny.complete

"""multitask_loss: masked tasks, absent tasks skipped (not faked), RankNet on pairs, weights."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from dmas.model import BatchError, LossWeights, ModelOutput, multitask_loss, ranknet_loss

ALL = torch.ones(4, dtype=torch.bool)
NONE = torch.zeros(4, dtype=torch.bool)


def output() -> ModelOutput:
    """Predictions that are leaves, so each test can see which ones receive a gradient."""
    regression, logit, score = (torch.tensor(values, requires_grad=True) for values in
                                ([0.5, 1.0, -1.0, 2.0], [0.0, 2.0, -1.0, 0.5], [0.3, -0.2, 1.0, 0.0]))
    return ModelOutput(regression=regression, logit=logit, probability=torch.sigmoid(logit), ranking_score=score,
                       embedding=torch.zeros(4, 64), event_attention=torch.zeros(4, 3))


def labels(regression=ALL, binary=ALL, ranking=ALL) -> dict:
    return {"target_regression": torch.tensor([1.0, float("nan"), -1.0, 0.0]),
            "target_regression_mask": regression & torch.tensor([True, False, True, True]),
            "target_binary": torch.tensor([0.0, 1.0, 0.0, 1.0]), "target_binary_mask": binary,
            "target_ranking": torch.tensor([2.0, 0.0, 1.0, 1.0]), "target_ranking_mask": ranking}


def test_all_tasks_present():
    out, batch = output(), labels()
    total, parts = multitask_loss(out, batch)
    assert sorted(parts) == ["classification", "ranking", "regression"]
    keep = batch["target_regression_mask"]
    torch.testing.assert_close(parts["regression"], F.mse_loss(out.regression[keep], batch["target_regression"][keep]))
    torch.testing.assert_close(parts["classification"], F.binary_cross_entropy_with_logits(out.logit,
                                                                                           batch["target_binary"]))
    torch.testing.assert_close(total, parts["regression"] + parts["classification"] + parts["ranking"])
    assert torch.isfinite(total)


def test_unlabelled_task_is_absent_not_zero():
    out = output()
    total, parts = multitask_loss(out, labels(ranking=NONE))
    assert sorted(parts) == ["classification", "regression"]
    assert torch.equal(total, parts["regression"] + parts["classification"])
    total.backward()
    assert out.ranking_score.grad is None


def test_missing_label_keys_mean_absent():
    batch = labels()
    del batch["target_binary"], batch["target_binary_mask"]
    _, parts = multitask_loss(output(), batch)
    assert "classification" not in parts


def test_no_labels_at_all_gives_a_constant():
    total, parts = multitask_loss(output(), labels(NONE, NONE, NONE))
    assert parts == {}
    assert total.item() == 0.0 and not total.requires_grad


def test_ranknet_with_equal_labels_has_no_gradient():
    out, batch = output(), labels(binary=NONE)
    batch["target_ranking"] = torch.full((4,), 3.0)
    total, parts = multitask_loss(out, batch)
    assert "ranking" not in parts
    total.backward()
    assert out.ranking_score.grad is None
    assert ranknet_loss(out.ranking_score, batch["target_ranking"], ALL) is None


def test_ranknet_uses_only_ordered_labelled_pairs():
    score = torch.tensor([1.0, 0.0, 5.0])
    label = torch.tensor([1.0, 0.0, 0.0])
    # the third entity is unlabelled: one pair (0 above 1) with difference 1
    loss = ranknet_loss(score, label, torch.tensor([True, True, False]))
    assert loss.item() == pytest.approx(math.log1p(math.exp(-1.0)))


def test_weights_scale_each_task():
    out, batch = output(), labels()
    weighted, parts = multitask_loss(out, batch, LossWeights(regression=0.5, classification=0.0, ranking=2.0))
    torch.testing.assert_close(weighted, 0.5 * parts["regression"] + 2.0 * parts["ranking"])


def test_label_without_mask_is_an_error():
    batch = labels()
    del batch["target_ranking_mask"]
    with pytest.raises(BatchError, match="target_ranking_mask"):
        multitask_loss(output(), batch)

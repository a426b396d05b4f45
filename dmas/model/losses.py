"""Multi-task loss: masked MSE + masked BCE + RankNet over pairs, each only where labels exist.

A task with no labelled rows in a batch (or no label keys at all) is absent: it adds nothing to the
total and no key to the parts, rather than a zero that still links it to the graph.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor
from torch.nn import functional as F

from dmas.model.batch import LABEL_SPEC, BatchError, check_tensors
from dmas.model.full import ModelOutput


class LossWeights(BaseModel):
    """Weight of each task in the total loss."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)  # JSON bodies may say Infinity

    regression: float = Field(1.0, ge=0.0, description="weight of the masked MSE")
    classification: float = Field(1.0, ge=0.0, description="weight of the masked BCE on the logit")
    ranking: float = Field(1.0, ge=0.0, description="weight of the RankNet pairwise loss")


def multitask_loss(output: ModelOutput, batch: dict[str, Tensor],
                   weights: LossWeights | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """(weighted total, {task: unweighted loss}) over the tasks labelled in `batch`.

    With no task labelled the parts are empty and the total is a constant 0 with no gradient:
    there is nothing to learn from the batch, and calling backward on it fails loudly.
    """
    weights = weights or LossWeights()
    size = output.regression.shape[0]
    parts: dict[str, Tensor] = {}
    if (mask := _labelled(batch, "target_regression", size)) is not None:
        parts["regression"] = F.mse_loss(output.regression[mask], batch["target_regression"][mask])
    if (mask := _labelled(batch, "target_binary", size)) is not None:
        parts["classification"] = F.binary_cross_entropy_with_logits(output.logit[mask], batch["target_binary"][mask])
    if (mask := _labelled(batch, "target_ranking", size)) is not None:
        ranking = ranknet_loss(output.ranking_score, batch["target_ranking"], mask)
        if ranking is not None:
            parts["ranking"] = ranking
    if not parts:
        return output.regression.new_zeros(()), parts
    total = sum(getattr(weights, task) * loss for task, loss in parts.items())
    return total, parts


def ranknet_loss(score: Tensor, label: Tensor, mask: Tensor) -> Tensor | None:
    """Mean of -log sigmoid(score_i - score_j) over labelled pairs with label_i > label_j.

    score, label, mask [B]. None when no two labelled entities have different labels.
    """
    better = (label[:, None] > label[None, :]) & mask[:, None] & mask[None, :]  # [B, B]
    if not bool(better.any()):
        return None
    difference = score[:, None] - score[None, :]  # [B, B]
    return F.softplus(-difference[better]).mean()


def _labelled(batch: dict[str, Tensor], key: str, size: int) -> Tensor | None:
    """The mask of rows labelled for `key`, or None when no row is."""
    mask_key = f"{key}_mask"
    if key not in batch and mask_key not in batch:
        return None
    if key not in batch or mask_key not in batch:
        raise BatchError(f"batch has only one of {key!r} and {mask_key!r}; labels need both")
    check_tensors(batch, {name: LABEL_SPEC[name] for name in (key, mask_key)}, {"B": size}, "the model output")
    mask = batch[mask_key]
    return mask if bool(mask.any()) else None

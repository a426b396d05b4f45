"""Dimension 5, loss landscape: does the probe's training curve change when it trains on the candidate?

The probe of `dmas.quality.probe` is trained over `SEEDS` seeds on each side (same initial weights and
batch orders on both). Each statistic is the log ratio candidate / reference of one property of the
curves: roughness (mean |second difference| of the log minibatch loss), convergence stability (how
much the seeds disagree on held-out reference rows once trained), the final training loss, and the
loss on held-out reference rows. A candidate with little variance or a few distinct rows is fitted
too easily (lower final loss), and what the probe learnt from it transfers worse to real data: its
held-out reference loss rises above that of the probe trained on the reference itself.

Convergence stability is measured as the seeds' disagreement over a thousand held-out rows rather
than as the standard deviation of three final losses: with three seeds that has two degrees of
freedom and a heavy left tail (a log chi-square), which a calibrated threshold would misjudge; each
side's final loss per seed is in `describe` for the reader. Values are log ratios rescaled from the
probes' training rows to the tables' sizes (see `dmas.quality.probe`); the raw ones are in the evidence.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dmas.quality.dimension import CheckContext, Dimension, Direction, Statistic, rounded
from dmas.quality.frame import QualityFrame
from dmas.quality.probe import FLOOR, SEEDS, ProbeRun, describe_pair, log_ratio, train_pair

PICTURE_POINTS = 50


def _roughness(run: ProbeRun) -> float:
    return float(np.mean(np.abs(np.diff(np.log(np.maximum(run.losses, FLOOR)), n=2, axis=1))))


def _disagreement(run: ProbeRun) -> float:
    return run.holdout_disagreement


def _final(run: ProbeRun) -> float:
    return float(np.mean(run.final_loss))


def _holdout(run: ProbeRun) -> float:
    return float(np.mean(run.holdout_loss))


MEASURES: tuple[tuple[str, Callable[[ProbeRun], float], Direction, str], ...] = (
    ("loss_roughness_log_ratio", _roughness, "two_sided",
     "mean |second difference| of the log minibatch loss along training, averaged over seeds"),
    ("seed_disagreement_log_ratio", _disagreement, "two_sided",
     "variance over seeds of the prediction for each held-out reference row, mean over rows"),
    ("final_loss_log_ratio", _final, "two_sided", "final loss on the side's own training rows, mean over seeds"),
    ("holdout_loss_log_ratio", _holdout, "higher", "final loss on held-out reference rows, mean over seeds"),
)


class LossLandscape(Dimension):
    """The probe's loss curves on the candidate vs on the reference: roughness, spread, level, transfer."""

    name = "loss_landscape"
    number = 5
    title = "Loss landscape"
    null_sampling = "split"  # see dmas.quality.probe: bootstrap repeats look memorised

    def statistics(self, reference: QualityFrame, candidate: QualityFrame, context: CheckContext) -> list[Statistic]:
        pair = train_pair(reference, candidate, context)
        if pair is None:
            return []
        found = []
        factor = pair.size_factor(candidate.n_rows, reference.n_rows)
        for name, measure, direction, meaning in MEASURES:
            ref = measure(pair.reference) if pair.reference is not None else np.nan
            cand = measure(pair.candidate) if pair.candidate is not None else np.nan
            raw = log_ratio(cand, ref)
            found.append(Statistic(name, (pair.task.column,), raw * factor, 0.0, direction,
                                   evidence={"candidate": rounded(cand), "reference": rounded(ref), "measure": meaning,
                                             "seeds": SEEDS, "log_ratio": rounded(raw)}))
        return found

    def describe(self, reference: QualityFrame, candidate: QualityFrame, context: CheckContext) -> dict[str, Any]:
        """Mean loss curve over seeds on both sides (and each side's held-out loss), for the report."""
        return describe_pair(train_pair(reference, candidate, context), PICTURE_POINTS, _loss_curves)


def _loss_curves(run: ProbeRun, steps: np.ndarray) -> dict[str, Any]:
    return {"loss": [rounded(v) for v in run.losses.mean(axis=0)[steps]],
            "holdout_loss": rounded(float(run.holdout_loss.mean())),
            "final_loss_per_seed": [rounded(v) for v in run.final_loss]}

"""Dimension 4, gradient health: does a model's gradient flow change when it trains on the candidate?

The probe of `dmas.quality.probe` (same initial weights and batch order on both sides) is trained on
the candidate and on the reference. Per layer, the log ratio of the candidate's median gradient norm
to the reference's, over all steps and over the last quarter of them (two-sided: lower = vanishing,
higher = exploding); and the share of norms that vanished (below 1/1000 of the reference's median
for the layer) or exploded (above 1000x), beyond the reference's own share. Lost variance shrinks the
inputs and the errors, so gradients fade; a few distinct rows are memorised within a few steps, so
late gradients fade further; broken scales or outliers make them explode. Inputs are centred on each
side's own means, so a mean shift alone (drift) changes nothing. Values are departures rescaled from
the probes' training rows to the tables' sizes (see `dmas.quality.probe`); the raw ones are in the evidence.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dmas.quality.dimension import CheckContext, Dimension, Statistic, rounded
from dmas.quality.frame import QualityFrame
from dmas.quality.probe import LAYERS, SEEDS, STEPS, ProbePair, ProbeRun, describe_pair, log_ratio, train_pair

# a layer's gradient norm at one step has vanished below VANISHING times, or exploded above EXPLODING times,
# the reference's median norm of that layer (relative, so the bounds do not depend on the data's units)
VANISHING = 1e-3
EXPLODING = 1e3
LATE = slice(STEPS - STEPS // 4, None)  # the last quarter of the steps: the "late" medians
PICTURE_POINTS = 30


class GradientHealth(Dimension):
    """Per-layer gradient norms of the probe trained on the candidate vs trained on the reference."""

    name = "gradient_health"
    number = 4
    title = "Gradient health"
    null_sampling = "split"  # see dmas.quality.probe: bootstrap repeats look memorised

    def statistics(self, reference: QualityFrame, candidate: QualityFrame, context: CheckContext) -> list[Statistic]:
        pair = train_pair(reference, candidate, context)
        if pair is None:
            return []
        columns = (pair.task.column,)
        factor = pair.size_factor(candidate.n_rows, reference.n_rows)
        found = []
        for index, layer in enumerate(LAYERS):
            for name, steps in (("gradient_norm_log_ratio", slice(None)), ("late_gradient_norm_log_ratio", LATE)):
                ref, cand = _median(pair.reference, index, steps), _median(pair.candidate, index, steps)
                raw = log_ratio(cand, ref)
                found.append(Statistic(f"{name}.{layer}", columns, raw * factor, 0.0, "two_sided",
                                       evidence={"layer": layer, "candidate_median_norm": rounded(cand),
                                                 "reference_median_norm": rounded(ref), "log_ratio": rounded(raw)}))
        for name, limit in (("vanishing_gradient_share", VANISHING), ("exploding_gradient_share", EXPLODING)):
            ref, cand = _share(pair, "reference", limit), _share(pair, "candidate", limit)
            found.append(Statistic(name, columns, (cand - ref) * factor, 0.0, "higher",
                                   evidence={"candidate_share": rounded(cand), "reference_share": rounded(ref),
                                             "limit_times_reference_median": limit,
                                             "norms_per_side": SEEDS * STEPS * len(LAYERS)}))
        return found

    def describe(self, reference: QualityFrame, candidate: QualityFrame, context: CheckContext) -> dict[str, Any]:
        """Median gradient norm over seeds per layer along training (both sides), and what the probe was."""
        return describe_pair(train_pair(reference, candidate, context), PICTURE_POINTS, _norm_curves)


def _norm_curves(run: ProbeRun, steps: np.ndarray) -> dict[str, Any]:
    norms = np.median(run.gradient_norms, axis=0)[steps]  # [points, layers]
    return {"gradient_norms": {layer: [rounded(v) for v in norms[:, i]] for i, layer in enumerate(LAYERS)}}


def _median(run: ProbeRun | None, layer: int, steps: slice) -> float:
    return float(np.median(run.gradient_norms[:, steps, layer])) if run is not None else np.nan


def _share(pair: ProbePair, side: str, limit: float) -> float:
    """Share of one side's (seed, step, layer) norms beyond `limit` x the reference's median norm of the
    layer: below it for a limit under 1 (vanished), above it otherwise (exploded)."""
    if not pair.complete:
        return np.nan
    bound = limit * np.median(pair.reference.gradient_norms, axis=(0, 1))  # [layers]
    norms = getattr(pair, side).gradient_norms
    return float(np.mean(norms < bound if limit < 1 else norms > bound))

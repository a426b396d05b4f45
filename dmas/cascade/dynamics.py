"""Training-dynamics flags of the cascade's proxy runs, and one 0-100 risk score over all of them.

Each run gives its loss curve (one value per recorded step or epoch, in order) and its per-layer
gradient norms (layer name -> the norms at each record). `assess_run` raises these flags, each with a
severity in (0, 1] and the evidence behind it:

- `non_finite_loss`: a NaN or inf in the curve; severity 1. The loss tests below read the finite
  part before it.
- `divergence`: the final loss (median of the last `TAIL_SHARE` of the records) above the first
  record by more than the noise could explain (`DIVERGENCE_MARGIN` of the first loss, and
  `NOISE_MARGIN` times the curve's per-record noise, 1.4826 MAD of its step-to-step changes / sqrt 2);
  severity 0.5 + the relative increase, at most 1 (ending above the start is a failure in itself).
- `loss_spikes`: step-to-step increases whose robust z, (increase - median) / (1.4826 MAD) over all
  step-to-step changes, exceeds `SPIKE_Z`; severity sum(min(1, z / (2 SPIKE_Z))) / 2, at most 1 (one
  spike at the threshold 0.25, two large ones 1).
- `exploding_gradients`: a layer with a non-finite norm (severity 1), a norm above `EXPLODING_NORM`,
  a median norm above `LAYER_RATIO` times the median of the other layers' medians, or a median over
  the last quarter of records above `GROWTH_RATIO` times the first quarter's.
- `vanishing_gradients`: a layer whose median norm is below `VANISHING_NORM` or below the other
  layers' median divided by `LAYER_RATIO` (with two layers far apart, one reads as exploding and the
  other as vanishing: the ratio alone cannot say which is at fault).
  A gradient flag's severity is min(1, (1 + d) / 3), d the decades the worst layer is beyond its
  bound: just past it 1/3, two decades past 1.
- `non_convergence`: the loss still moving at the end, the Theil-Sen slope of the last `TAIL_SHARE`
  of the records projecting a change over that window of more than `CONVERGED_CHANGE` of its level
  (falling: more training would still help; rising: it is going off); severity min(1, change / 0.25).

The risk of one run combines its flags as a noisy-or of weights, in points out of 100:

    run_risk = 100 * (1 - prod_flags (1 - WEIGHTS[flag] / 100 * severity))

so a flag alone at full severity contributes its weight (non_finite_loss 60, divergence 45,
exploding_gradients 35, vanishing_gradients 30, loss_spikes 20, non_convergence 10), flags together
never pass 100, and the risk grows with every flag and every severity. Over all runs:

    risk_score = 0.5 * max(run_risk) + 0.5 * mean(run_risk)

so one bad run weighs at least half its risk however many runs are clean, and every further flag
anywhere adds. `unstable` is whether any run has a flag other than `non_convergence`.
Pure numpy; floats in `to_dict()` at 6 significant digits (stable report bytes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dmas.errors import DmasError
from dmas.numbers import rounded

TAIL_SHARE = 0.25  # the "final" part of a curve: its last quarter (at least MIN_TAIL records)
MIN_TAIL = 3
MIN_RECORDS = 5  # fewer records: spike and convergence tests are skipped (said in `skipped`)
DIVERGENCE_MARGIN = 0.01
NOISE_MARGIN = 3.0
SPIKE_Z = 6.0
MAD_TO_SIGMA = 1.4826
EXPLODING_NORM = 1e3  # a layer's gradient norm above this at any record (clipped training stays near 1)
VANISHING_NORM = 1e-7  # a layer's median norm below this: float32 updates at usual learning rates are ~0
LAYER_RATIO = 1e3  # a layer's median this many times above (below) the other layers' median
GROWTH_RATIO = 1e2  # a layer's late median this many times its early median
CONVERGED_CHANGE = 0.05
WEIGHTS = {"non_finite_loss": 60.0, "divergence": 45.0, "exploding_gradients": 35.0,
           "vanishing_gradients": 30.0, "loss_spikes": 20.0, "non_convergence": 10.0}
INSTABILITY = frozenset(WEIGHTS) - {"non_convergence"}


class DynamicsError(DmasError):
    """A run's dynamics cannot be read (no loss curve, a layer without norms)."""


@dataclass(frozen=True)
class DynamicsFlag:
    """One sign of unhealthy training: its name (a key of WEIGHTS), severity in (0, 1] and evidence."""

    name: str
    severity: float
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "severity": rounded(self.severity), "evidence": _json(self.evidence)}


@dataclass(frozen=True)
class RunDynamics:
    """The flags of one run, its risk (0-100), and the tests that could not run on its records."""

    run: str
    records: int
    flags: tuple[DynamicsFlag, ...]
    skipped: tuple[str, ...]

    @property
    def risk(self) -> float:
        return run_risk(self.flags)

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "records": self.records, "risk": rounded(self.risk),
                "flags": [f.to_dict() for f in self.flags], "skipped": list(self.skipped)}


@dataclass(frozen=True)
class DynamicsReport:
    """All runs' dynamics, the risk score over them and whether training looks unstable."""

    runs: tuple[RunDynamics, ...]
    risk_score: float
    unstable: bool

    def flag_counts(self) -> dict[str, int]:
        return {name: sum(any(f.name == name for f in r.flags) for r in self.runs) for name in WEIGHTS}

    def to_dict(self) -> dict[str, Any]:
        return {"risk_score": rounded(self.risk_score), "unstable": self.unstable, "flag_counts": self.flag_counts(),
                "formula": "run_risk = 100*(1 - prod(1 - weight/100*severity)); "
                           "risk_score = 0.5*max(run_risk) + 0.5*mean(run_risk)",
                "weights": dict(WEIGHTS), "runs": [r.to_dict() for r in self.runs]}


def assess_run(run: str, loss: Sequence[float], gradient_norms: Mapping[str, Sequence[float]] | None = None
               ) -> RunDynamics:
    """The flags of one run from its loss curve and per-layer gradient norms (see the module's docstring)."""
    curve = np.asarray(loss, dtype=np.float64).ravel()
    if curve.size == 0:
        raise DynamicsError(f"run {run}: the loss curve is empty")
    flags: list[DynamicsFlag] = []
    skipped: list[str] = []
    bad = np.flatnonzero(~np.isfinite(curve))
    if bad.size:
        flags.append(DynamicsFlag("non_finite_loss", 1.0, {"first_record": int(bad[0]),
                                                           "non_finite_records": int(bad.size)}))
        curve = curve[: bad[0]]
    if curve.size >= 2:
        flags += _divergence(curve)
    else:
        skipped.append("divergence: fewer than 2 finite loss records")
    if curve.size >= MIN_RECORDS:
        flags += _spikes(curve) + _convergence(curve)
    else:
        skipped.append(f"loss_spikes, non_convergence: fewer than {MIN_RECORDS} finite loss records")
    if gradient_norms:
        flags += _gradients(run, gradient_norms)
    else:
        skipped.append("exploding_gradients, vanishing_gradients: no gradient norms")
    order = list(WEIGHTS)
    flags.sort(key=lambda f: order.index(f.name))
    return RunDynamics(run=run, records=int(np.asarray(loss).size), flags=tuple(flags), skipped=tuple(skipped))


def run_risk(flags: Sequence[DynamicsFlag]) -> float:
    """One run's risk, 0-100: the noisy-or of its flags' weights times severities."""
    keep = 1.0
    for flag in flags:
        keep *= 1.0 - WEIGHTS[flag.name] / 100.0 * flag.severity
    return 100.0 * (1.0 - keep)


def dynamics_report(runs: Sequence[RunDynamics]) -> DynamicsReport:
    """The risk score over all runs (0.5 max + 0.5 mean of run risks) and the instability flag."""
    if not runs:
        raise DynamicsError("no runs to score")
    ordered = tuple(sorted(runs, key=lambda r: r.run))
    risks = [r.risk for r in ordered]
    score = 0.5 * max(risks) + 0.5 * float(np.mean(risks))
    unstable = any(f.name in INSTABILITY for r in ordered for f in r.flags)
    return DynamicsReport(runs=ordered, risk_score=score, unstable=unstable)


def _tail(curve: np.ndarray) -> np.ndarray:
    return curve[-max(MIN_TAIL, int(math.ceil(TAIL_SHARE * curve.size))):]


def _divergence(curve: np.ndarray) -> list[DynamicsFlag]:
    start, final = float(curve[0]), float(np.median(_tail(curve)))
    steps = np.diff(curve)
    noise = MAD_TO_SIGMA * float(np.median(np.abs(steps - np.median(steps)))) / math.sqrt(2.0)
    margin = max(DIVERGENCE_MARGIN * abs(start), NOISE_MARGIN * noise)
    if final - start <= margin:
        return []
    increase = (final - start) / max(abs(start), 1e-12)
    return [DynamicsFlag("divergence", min(1.0, 0.5 + increase),
                         {"first_loss": rounded(start), "final_loss": rounded(final),
                          "relative_increase": rounded(increase), "margin": rounded(margin)})]


def _spikes(curve: np.ndarray) -> list[DynamicsFlag]:
    steps = np.diff(curve)
    centre = float(np.median(steps))
    # floor the spread so a perfectly smooth curve (MAD 0) does not make every tiny wiggle infinite
    scale = max(MAD_TO_SIGMA * float(np.median(np.abs(steps - centre))), 1e-9 * float(np.median(np.abs(curve))),
                1e-300)
    z = (steps - centre) / scale
    at = np.flatnonzero((steps > 0) & (z > SPIKE_Z))
    if not at.size:
        return []
    severity = min(1.0, float(np.minimum(1.0, z[at] / (2 * SPIKE_Z)).sum()) / 2.0)
    worst = int(at[np.argmax(z[at])])
    return [DynamicsFlag("loss_spikes", severity,
                         {"spikes": int(at.size), "records": [int(i) + 1 for i in at[:10]],
                          "largest_z": rounded(float(z[worst])),
                          "largest_relative_jump": rounded(float(steps[worst] / max(abs(curve[worst]), 1e-12)))})]


def _theil_sen_slope(values: np.ndarray) -> float:
    """Median of pairwise slopes (robust to a spike in the window); at most 200 evenly spaced records."""
    index = np.unique(np.linspace(0, values.size - 1, min(values.size, 200)).round().astype(int))
    x, y = index.astype(np.float64), values[index]
    i, j = np.triu_indices(x.size, k=1)
    return float(np.median((y[j] - y[i]) / (x[j] - x[i])))


def _convergence(curve: np.ndarray) -> list[DynamicsFlag]:
    tail = _tail(curve)
    level = max(abs(float(np.median(tail))), 1e-12)
    change = _theil_sen_slope(tail) * (tail.size - 1) / level
    if abs(change) <= CONVERGED_CHANGE:
        return []
    return [DynamicsFlag("non_convergence", min(1.0, abs(change) / 0.25),
                         {"direction": "falling" if change < 0 else "rising",
                          "relative_change_over_tail": rounded(change), "tail_records": int(tail.size)})]


def _severity(decades: float) -> float:
    return min(1.0, (1.0 + max(decades, 0.0)) / 3.0)


def _gradients(run: str, gradient_norms: Mapping[str, Sequence[float]]) -> list[DynamicsFlag]:
    norms = {}
    for layer in sorted(gradient_norms):
        values = np.asarray(gradient_norms[layer], dtype=np.float64).ravel()
        if values.size == 0:
            raise DynamicsError(f"run {run}: layer {layer} has no gradient norms")
        norms[layer] = values
    exploding: list[tuple[float, dict]] = []  # (severity, evidence) per finding
    vanishing: list[tuple[float, dict]] = []
    medians = {}
    for layer, values in norms.items():
        finite = values[np.isfinite(values)]
        if finite.size < values.size:
            exploding.append((1.0, {"layer": layer, "reason": "non-finite norm",
                                    "non_finite_records": int(values.size - finite.size)}))
        if not finite.size:
            continue
        medians[layer] = float(np.median(finite))
        peak = float(finite.max())
        if peak > EXPLODING_NORM:
            exploding.append((_severity(math.log10(peak / EXPLODING_NORM)),
                              {"layer": layer, "reason": "norm above bound", "max_norm": rounded(peak),
                               "bound": EXPLODING_NORM}))
        if medians[layer] < VANISHING_NORM:
            decades = math.log10(VANISHING_NORM / max(medians[layer], 1e-300))
            vanishing.append((_severity(decades), {"layer": layer, "reason": "median norm below bound",
                                                   "median_norm": rounded(medians[layer]), "bound": VANISHING_NORM}))
        quarter = max(1, finite.size // 4)
        early, late = float(np.median(finite[:quarter])), float(np.median(finite[-quarter:]))
        if finite.size >= 4 and early > 0 and late > GROWTH_RATIO * early:
            exploding.append((_severity(math.log10(late / (GROWTH_RATIO * early))),
                              {"layer": layer, "reason": "norm grew over training", "early_median": rounded(early),
                               "late_median": rounded(late), "ratio_bound": GROWTH_RATIO}))
    for layer, median in medians.items():
        others = [m for name, m in medians.items() if name != layer]
        if not others:
            continue
        reference = float(np.median(others))
        if reference <= 0:
            continue
        ratio = median / reference
        evidence = {"layer": layer, "median_norm": rounded(median), "other_layers_median": rounded(reference),
                    "ratio": rounded(ratio), "ratio_bound": LAYER_RATIO}
        if ratio > LAYER_RATIO:
            exploding.append((_severity(math.log10(ratio / LAYER_RATIO)), {**evidence, "reason": "above other layers"}))
        elif ratio < 1.0 / LAYER_RATIO:
            # a zero median (ratio 0) counts as 300 decades below
            vanishing.append((_severity(math.log10(1.0 / max(ratio * LAYER_RATIO, 1e-300))),
                              {**evidence, "reason": "below other layers"}))
    flags = []
    for name, found in (("exploding_gradients", exploding), ("vanishing_gradients", vanishing)):
        if found:
            flags.append(DynamicsFlag(name, max(s for s, _ in found),
                                      {"findings": [e for _, e in found[:10]], "count": len(found),
                                       "layers": sorted({e["layer"] for _, e in found})}))
    return flags


def _json(value: Any) -> Any:
    """Evidence as canonical JSON values: floats rounded, mappings with sorted keys, tuples as lists."""
    if isinstance(value, Mapping):
        return {str(k): _json(value[k]) for k in sorted(value)}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, float):
        return rounded(value)
    return value

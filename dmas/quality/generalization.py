"""Dimension 7, generalization gap: do models learn from the candidate what they learn from the reference?

Two statistics, both from small seeded scikit-learn HistGradientBoosting models on subsamples:

- `generalization_gap` (train on candidate, test on reference): the reference is split into a
  training and a test half; one model is trained on the reference half, one on as many candidate
  rows, and both are scored on the reference test half (accuracy for a discrete target, R² for a
  continuous one). The gap (reference-trained score minus candidate-trained score) is 0 when the
  candidate teaches what the reference does and grows when it has lost what the target depends on.
  Without a target the task is self-supervised: predict the first continuous column (or the first
  column) from the others.
- `c2st_auc` (classifier two-sample test): a tree model tells reference rows from candidate rows;
  the out-of-fold AUC is 0.5 when they are indistinguishable, above it when the candidate lost
  variance, tails, modes or correlations, below it when candidate rows are copies of reference rows
  the model saw labelled "reference". A linear discriminator would be blind to all but mean shifts.

A pure mean shift is drift, judged by the location statistics of other dimensions, and must not
read as collapse here. So before the models see them, a candidate column whose location differs
from the reference's beyond noise (`GATE`, as a Mann-Whitney z) is moved onto it (`aligned`). A
column within noise is compared exactly as it is. `describe` shows the raw (unaligned) AUC beside
it, not calibrated.

The models see at most `ROWS` rows per side, so their noise is that of the subsample, while
calibration scales null departures to the noise of the full tables. Each statistic's departure from
its ideal is therefore rescaled by `full_size_factor`, and the raw score kept in the evidence.
Discrete columns enter as their codes (a tree isolates a code in two splits; the models' categorical
mode would add a preprocessing pass to every fit). Models run on one OpenMP thread (scoped), so
results do not depend on the number of CPUs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as scipy_stats
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import r2_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from dmas.quality.dimension import CheckContext, Dimension, Statistic, rounded
from dmas.quality.frame import DISCRETE_KINDS, QualityFrame

ROWS = 4000  # rows per side the models see (or context.max_rows when smaller); the gap's: half train, half test
FOLDS = 3
GATE = 3.0  # |Mann-Whitney z| beyond which the candidate's column counts as moved (and is aligned)
QUANTILES = np.linspace(0.05, 0.95, 19)  # whose differences estimate a column's move
MIN_ROWS = 10  # fewer rows (per side, per class) than this and a statistic is NaN: nothing to learn from
MODEL = {"max_iter": 15, "max_leaf_nodes": 6, "learning_rate": 0.4, "early_stopping": False}


class GeneralizationGap(Dimension):
    """Train-on-candidate/test-on-reference gap and a classifier two-sample test (seeded tree models)."""

    name = "generalization_gap"
    number = 7
    title = "Generalization gap"
    null_sampling = "split"  # bootstrap duplicates would let the classifier recognise repeated rows

    def statistics(self, reference: QualityFrame, candidate: QualityFrame, context: CheckContext) -> list[Statistic]:
        with threadpool_limits(1, user_api="openmp"):
            return [self._gap(reference, candidate, context), self._c2st(reference, candidate, context)]

    def describe(self, reference: QualityFrame, candidate: QualityFrame, context: CheckContext) -> dict[str, Any]:
        target, task = prediction_task(reference)
        rows = min(ROWS, context.max_rows)
        notes = [f"models see at most {rows} rows per side (seeded subsample); their scores' departures are "
                 "rescaled to the full tables' noise for calibration, raw scores are in the evidence",
                 f"candidate columns whose location differs from the reference's beyond noise (|Mann-Whitney z| > "
                 f"{GATE:g}) are moved onto it before the models see them: a mean shift is drift, judged by the "
                 "location statistics; the raw two-sample AUC below is not calibrated"]
        if target is not None and target != reference.target:
            notes.insert(0, f"no target column: used a self-supervised task predicting {target!r} "
                            f"({task}) from the other columns")
        with threadpool_limits(1, user_api="openmp"):
            raw = _two_sample_data(reference, candidate, context, align=False)
            shape = _two_sample_data(reference, candidate, context, align=True)
            columns = _discriminating_columns(shape, reference.names, context.rng(self.name, "columns"))
            raw_auc = _out_of_fold_auc(raw)
        return {"notes": notes, "target": target, "task": task, "raw_c2st_auc": rounded(raw_auc),
                "discriminating_columns": columns}

    def _gap(self, reference: QualityFrame, candidate: QualityFrame, context: CheckContext) -> Statistic:
        target, task = prediction_task(reference)
        if target is None:
            return Statistic("generalization_gap", (), float("nan"), 0.0, "higher")
        names = [*reference.features(exclude=(target,)), target]  # the target last
        rng = context.rng(self.name, "gap")
        rows = min(ROWS, context.max_rows)
        ref_rows = _labelled(reference, target, sample_rows(reference.n_rows, rows, rng))
        cand_rows = _labelled(candidate, target, sample_rows(candidate.n_rows, rows, rng))
        half = len(ref_rows) // 2
        size = min(half, len(cand_rows))
        if size < MIN_ROWS or len(ref_rows) - half < MIN_ROWS:
            return Statistic("generalization_gap", (target,), float("nan"), 0.0, "higher")
        ref_train = reference.take(ref_rows[:size]).matrix(names)
        ref_test = reference.take(ref_rows[half:]).matrix(names)
        cand_train, moved = aligned(candidate.take(cand_rows[:size]).matrix(names), ref_train,
                                    _continuous(reference, names))
        scores = [_fit_score(train, ref_test, task) for train in (ref_train, cand_train)]
        gap = scores[0] - scores[1]
        factor = full_size_factor(candidate.n_rows, reference.n_rows, size, size)
        return Statistic("generalization_gap", (target,), gap * factor, 0.0, "higher", "collapse", {
            "task": task, "metric": "accuracy" if task == "classification" else "r2",
            "reference_trained_score": rounded(scores[0]), "candidate_trained_score": rounded(scores[1]),
            "raw_gap": rounded(gap), "train_rows": size, "test_rows": len(ref_test),
            "aligned_columns": [names[index] for index in moved]})

    def _c2st(self, reference: QualityFrame, candidate: QualityFrame, context: CheckContext) -> Statistic:
        data = _two_sample_data(reference, candidate, context, align=True)
        auc, ref_used, cand_used = _out_of_fold_auc(data), int(np.sum(data.y == 0)), int(np.sum(data.y == 1))
        if not np.isfinite(auc):
            return Statistic("c2st_auc", tuple(reference.names), auc, 0.5, "two_sided")
        value = 0.5 + (auc - 0.5) * full_size_factor(candidate.n_rows, reference.n_rows, cand_used, ref_used)
        return Statistic("c2st_auc", tuple(reference.names), value, 0.5, "two_sided", "collapse", {
            "auc": rounded(auc), "reference_rows": ref_used, "candidate_rows": cand_used, "folds": FOLDS,
            "aligned_columns": data.moved})


def prediction_task(frame: QualityFrame) -> tuple[str | None, str]:
    """The column to predict and the task: the target, else the first continuous column, else the first."""
    target = frame.target if frame.target in frame.kinds else None
    if target is None:
        choices = frame.continuous() or frame.names
        target = choices[0] if len(frame.names) > 1 else None
    if target is None:
        return None, "none"
    return target, "classification" if frame.kinds[target] in DISCRETE_KINDS else "regression"


def sample_rows(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """`size` distinct row numbers in random order (all rows, shuffled, when n <= size)."""
    return rng.permutation(n)[:size]


def full_size_factor(n: int, big_n: int, n_used: int, big_n_used: int) -> float:
    """How much smaller the full tables' two-sample noise is than that of the rows a model used.

    Calibration scales null departures by sqrt((1/n + 1/N) / draw noise), assuming a statistic's noise
    follows the tables' sizes; a statistic computed on capped subsamples has the subsample's noise, so
    its departure is multiplied by this factor to follow the tables' sizes again.
    """
    return float(np.sqrt((1.0 / n + 1.0 / big_n) / (1.0 / n_used + 1.0 / big_n_used)))


def aligned(moving: np.ndarray, fixed: np.ndarray, continuous: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """`moving` [n, k] with each continuous column whose location differs from `fixed`'s [m, k] beyond
    noise (a Mann-Whitney z beyond `GATE`) moved onto it, and the indices of the moved columns.

    The move is the median difference of the two sides' quantiles (5%..95%): a pure shift moves every
    quantile by the same amount, and unlike a difference of means it is not swayed by a heavy tail
    or by the share of each mode. On a grid (integers, rounded values) it is a whole number of
    steps, so moved values land on values the reference has. A column within noise stays exactly as
    it is: a move by noise would leave its modes, an edge of its range or its repeated values just off
    the reference's, which a tree model tells apart at once.
    """
    out, moved = moving.copy(), []
    for index in np.flatnonzero(continuous):
        mobile, still = moving[:, index], fixed[:, index]
        mobile, still = mobile[~np.isnan(mobile)], still[~np.isnan(still)]
        if min(len(mobile), len(still)) < MIN_ROWS or abs(_rank_z(still, mobile)) <= GATE:
            continue
        delta = float(np.median(np.quantile(still, QUANTILES) - np.quantile(mobile, QUANTILES)))
        distinct = np.unique(still)
        if len(distinct) <= len(still) // 2:  # most values repeat: a grid, moved by whole steps of it
            step = float(np.min(np.diff(distinct)))
            delta = round(delta / step) * step
        out[:, index] += delta
        moved.append(int(index))
    return out, moved


def _rank_z(first: np.ndarray, second: np.ndarray) -> float:
    """Mann-Whitney z of `second` against `first` (normal approximation, ties corrected; 0 if all tie)."""
    both = np.concatenate([first, second])
    n1, n2 = len(first), len(second)
    u = scipy_stats.rankdata(both)[n1:].sum() - n2 * (n2 + 1) / 2.0
    counts = np.unique(both, return_counts=True)[1].astype(np.float64)
    total = n1 + n2
    variance = n1 * n2 / 12.0 * ((total + 1) - np.sum(counts**3 - counts) / (total * (total - 1)))
    return float((u - n1 * n2 / 2.0) / np.sqrt(variance)) if variance > 0 else 0.0


@dataclass(frozen=True)
class _TwoSample:
    """Subsampled rows of both sides (reference first), labels (candidate = 1), the folds' seed, moved columns."""

    x: np.ndarray
    y: np.ndarray
    seed: int
    moved: list[str]

    @property
    def usable(self) -> bool:
        return self.x.shape[1] > 0 and min(np.sum(self.y == 0), np.sum(self.y == 1)) >= MIN_ROWS


def _two_sample_data(reference: QualityFrame, candidate: QualityFrame, context: CheckContext,
                     align: bool) -> _TwoSample:
    """Seeded subsamples of both sides (the candidate's columns `aligned` when `align`), continuous columns
    in units of the reference's spread, rounded to 1e-9 so that a move's float error tells nothing apart."""
    names = reference.names
    rng = context.rng("generalization_gap", "c2st")
    rows = min(ROWS, context.max_rows)
    ref_rows, cand_rows = sample_rows(reference.n_rows, rows, rng), sample_rows(candidate.n_rows, rows, rng)
    ref_x, cand_x = reference.take(ref_rows).matrix(names), candidate.take(cand_rows).matrix(names)
    continuous = _continuous(reference, names)
    moved: list[int] = []
    if align:
        cand_x, moved = aligned(cand_x, ref_x, continuous)
    x = np.vstack([ref_x, cand_x])
    if continuous.any() and len(ref_x):  # rounded to 1e-9 of the reference's spread: a move's float error is gone
        x[:, continuous] = np.round(x[:, continuous] / _spreads(ref_x[:, continuous]), 9)
    return _TwoSample(x, np.r_[np.zeros(len(ref_rows)), np.ones(len(cand_rows))], int(rng.integers(2**31)),
                      [names[index] for index in moved])


def _out_of_fold_auc(data: _TwoSample) -> float:
    """AUC of the out-of-fold scores of seeded tree models telling candidate rows from reference rows."""
    if not data.usable:
        return float("nan")
    scores = np.empty(len(data.y))
    for train, test in StratifiedKFold(FOLDS, shuffle=True, random_state=data.seed).split(data.x, data.y):
        model = HistGradientBoostingClassifier(**MODEL, random_state=0)
        scores[test] = model.fit(_filled(data.x[train]), data.y[train]).predict_proba(data.x[test])[:, 1]
    return float(roc_auc_score(data.y, scores))


def _discriminating_columns(data: _TwoSample, names: list[str], rng: np.random.Generator) -> dict[str, float | None]:
    """Per column, how much the first fold's held-out AUC falls when that column is shuffled (largest first)."""
    if not data.usable:
        return {}
    train, test = next(StratifiedKFold(FOLDS, shuffle=True, random_state=data.seed).split(data.x, data.y))
    model = HistGradientBoostingClassifier(**MODEL, random_state=0).fit(_filled(data.x[train]), data.y[train])
    held_out, labels = data.x[test], data.y[test]
    auc = roc_auc_score(labels, model.predict_proba(held_out)[:, 1])
    drops = {}
    for index, name in enumerate(names):
        shuffled = held_out.copy()
        shuffled[:, index] = rng.permutation(shuffled[:, index])
        drops[name] = float(auc - roc_auc_score(labels, model.predict_proba(shuffled)[:, 1]))
    return {name: rounded(drop) for name, drop in sorted(drops.items(), key=lambda item: (-item[1], item[0]))}


def _filled(x: np.ndarray) -> np.ndarray:
    """Training features with an all-missing column set to 0 (the models cannot bin a column without values)."""
    empty = np.all(np.isnan(x), axis=0)
    if not empty.any():
        return x
    x = x.copy()
    x[:, empty] = 0.0
    return x


def _spreads(matrix: np.ndarray) -> np.ndarray:
    """Each column's standard deviation, ignoring NaN; 1 for a constant or empty column."""
    spread = np.ones(matrix.shape[1])
    present = ~np.all(np.isnan(matrix), axis=0)
    if present.any():
        values = np.nanstd(matrix[:, present], axis=0)
        spread[present] = np.where(values > 0, values, 1.0)
    return spread


def _continuous(frame: QualityFrame, names: list[str]) -> np.ndarray:
    return np.array([frame.kinds[name] not in DISCRETE_KINDS for name in names], dtype=bool)


def _labelled(frame: QualityFrame, target: str, rows: np.ndarray) -> np.ndarray:
    """The rows whose target is present."""
    values = frame.values[target][rows]
    present = values >= 0 if frame.kinds[target] in DISCRETE_KINDS else ~np.isnan(values)
    return rows[present]


def _fit_score(train: np.ndarray, test: np.ndarray, task: str) -> float:
    """Test score of a seeded model trained on `train` (features, then the target in the last column):
    accuracy or R²; a training set with one class predicts it."""
    x, y, test_x, test_y = train[:, :-1], train[:, -1], test[:, :-1], test[:, -1]
    if x.shape[1] == 0:
        x, test_x = np.zeros((len(x), 1)), np.zeros((len(test_x), 1))
    if task == "classification":
        if len(np.unique(y)) < 2:
            return float(np.mean(test_y == y[0]))
        model = HistGradientBoostingClassifier(**MODEL, random_state=0)
        return float(np.mean(model.fit(_filled(x), y).predict(test_x) == test_y))
    model = HistGradientBoostingRegressor(**MODEL, random_state=0)
    return float(r2_score(test_y, model.fit(_filled(x), y).predict(test_x)))

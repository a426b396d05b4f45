"""Held-out test metrics for the three tasks, computed with scikit-learn and scipy.

Results are data first: every metric is a plain Python float at full precision, or None when it
is undefined on the given rows (the reason is then in the task's `notes`), so reports are
JSON-serialisable and quality gates never mistake "undefined" for a number. Deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn import metrics as skm

from dmas.errors import DmasError

ECE_BINS = 10
LOG_LOSS_EPS = 1e-15  # log loss of a 0/1 probability that is wrong is -log(1e-15) ~ 34.5, not inf

# Direction of every scored metric; descriptive values such as `positive_rate` have none.
HIGHER_IS_BETTER: dict[str, bool] = {
    "mae": False,
    "rmse": False,
    "r2": True,
    "f1": True,
    "precision": True,
    "recall": True,
    "auc_roc": True,
    "log_loss": False,
    "ece": False,
    "ndcg_at_10": True,
    "spearman": True,
}


@dataclass(frozen=True)
class Task:
    """One supervised task: its report name, prediction key, target key and mask key."""

    name: str
    prediction: str
    target: str

    @property
    def mask(self) -> str:
        """Key of the labelled-rows mask, as `dmas.train.tensorize` names it."""
        return f"{self.target}_mask"


TASKS: tuple[Task, ...] = (
    Task("regression", "regression", "target_regression"),
    Task("classification", "probability", "target_binary"),
    Task("ranking", "ranking_score", "target_ranking"),
)


class MetricInputError(DmasError, ValueError):
    """Predictions or targets cannot be scored (wrong shape, non-finite, out of range)."""


def higher_is_better(metric: str) -> bool | None:
    """Direction of `metric` (any `ndcg_at_<k>` included); None for metrics without one."""
    if metric.startswith("ndcg_at_"):
        return True
    return HIGHER_IS_BETTER.get(metric)


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """MAE, RMSE and R²; R² is None when y_true is constant (it has no variance to explain)."""
    y_true, y_pred = _paired("y_true", y_true, "y_pred", y_pred)
    notes: dict[str, str] = {}
    r2 = None
    if np.ptp(y_true) == 0:
        notes["r2"] = "undefined: y_true is constant (fewer than 2 distinct values)"
    else:
        r2 = float(skm.r2_score(y_true, y_pred))
    return {
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
        "rmse": float(skm.root_mean_squared_error(y_true, y_pred)),
        "r2": r2,
        "notes": notes,
    }


def classification_metrics(y_true: np.ndarray, probability: np.ndarray, threshold: float = 0.5) -> dict:
    """F1, precision, recall (at `threshold`), AUC-ROC, log loss, ECE and the positive rate of y_true.

    Precision, recall and F1 with a zero denominator are 0.0 (scikit-learn's `zero_division=0`),
    noted as such; AUC-ROC is None when y_true holds a single class.
    """
    y_true, probability = _paired("y_true", y_true, "probability", probability)
    _check_binary(y_true)
    if probability.min() < 0 or probability.max() > 1:
        raise MetricInputError("probability must lie in [0, 1]")
    y_true = y_true.astype(np.int64)
    y_pred = (probability >= threshold).astype(np.int64)
    notes = _zero_division_notes(y_true, y_pred)
    auc = None
    if np.unique(y_true).size < 2:
        notes["auc_roc"] = f"undefined: y_true holds a single class ({int(y_true[0])})"
    else:
        auc = float(skm.roc_auc_score(y_true, probability))
    clipped = np.clip(probability, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
    return {
        "f1": float(skm.f1_score(y_true, y_pred, zero_division=0.0)),
        "precision": float(skm.precision_score(y_true, y_pred, zero_division=0.0)),
        "recall": float(skm.recall_score(y_true, y_pred, zero_division=0.0)),
        "auc_roc": auc,
        "log_loss": float(skm.log_loss(y_true, clipped, labels=[0, 1])),
        "ece": expected_calibration_error(y_true, probability),
        "positive_rate": float(y_true.mean()),
        "notes": notes,
    }


def expected_calibration_error(y_true: np.ndarray, probability: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """Weighted mean over bins of |fraction of positives - mean probability|, weights = bin share.

    Bins are `n_bins` equal-width intervals of the positive-class probability, [0, 1/n), [1/n, 2/n),
    ..., [(n-1)/n, 1] (the last one closed, so p = 1 is counted); empty bins contribute nothing.
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    probability = np.asarray(probability, dtype=np.float64)
    bins = np.minimum((probability * n_bins).astype(np.int64), n_bins - 1)
    positives = np.bincount(bins, weights=y_true, minlength=n_bins)
    confidence = np.bincount(bins, weights=probability, minlength=n_bins)
    # sum_b (n_b / N) * |positives_b / n_b - confidence_b / n_b| simplifies to the line below.
    return float(np.abs(positives - confidence).sum() / probability.size)


def ranking_metrics(
    y_true_relevance: np.ndarray, score: np.ndarray, k: int = 10, groups: np.ndarray | None = None
) -> dict:
    """NDCG@k (one query, or the mean over `groups`) and Spearman's rho between relevance and score.

    Queries with fewer than 2 items or no relevant item have no meaningful NDCG and are left out
    of the mean. Spearman is computed over all rows; it is None when either side is constant.
    Tied scores are averaged over their orderings by scikit-learn, so constant scores are not
    rewarded for a lucky order.
    """
    relevance, score = _paired("y_true_relevance", y_true_relevance, "score", score)
    if relevance.min() < 0:
        raise MetricInputError("y_true_relevance must be non-negative grades")
    notes: dict[str, str] = {}
    ndcg = _ndcg(relevance, score, k, groups, notes)
    rho = None
    if np.ptp(relevance) == 0 or np.ptp(score) == 0:
        notes["spearman"] = "undefined: relevance or score is constant"
    else:
        rho = float(stats.spearmanr(relevance, score).statistic)
    return {f"ndcg_at_{k}": ndcg, "spearman": rho, "notes": notes}


def evaluate(
    predictions: dict[str, np.ndarray], targets: dict[str, np.ndarray], masks: dict[str, np.ndarray]
) -> dict:
    """Metrics of every task over the rows its mask marks as labelled.

    `masks` holds `target_regression_mask`, ... as tensorize writes them (so one dict of arrays may
    serve as both `targets` and `masks`). A task without labelled rows, or without predictions, is
    reported as `{"available": False, "reason": ...}`.
    """
    return {task.name: _evaluate_task(task, predictions, targets, masks) for task in TASKS}


# The original stack's metric names: (task, its name there, dmas' name, flat key on its runs).
ORIGINAL_METRICS: tuple[tuple[str, str, str, str], ...] = (
    ("regression", "mae", "mae", "reg_mae"),
    ("regression", "rmse", "rmse", "reg_rmse"),
    ("regression", "r2", "r2", "reg_r2"),
    ("classification", "f1", "f1", "cls_f1"),
    ("classification", "precision", "precision", "cls_precision"),
    ("classification", "recall", "recall", "cls_recall"),
    ("ranking", "ndcg", "ndcg_at_10", "rank_ndcg@10"),
    ("ranking", "spearman", "spearman", "rank_spearman"),
)


def original_shapes(test_metrics: dict) -> dict:
    """`evaluate()` results as the original stack reported them, nested and flat, for its clients.

    {"regression": {"mae", "rmse", "r2"}, "classification": {"f1", "precision", "recall"},
    "ranking": {"ndcg", "spearman"}, "reg_mae": ..., "cls_f1": ..., "rank_ndcg@10": ...}: the same
    numbers under both names; None where a task is unavailable or a metric undefined.
    """
    shapes: dict = {task.name: {} for task in TASKS}
    for task, name, ours, flat in ORIGINAL_METRICS:
        value = test_metrics.get(task, {}).get(ours)
        shapes[task][name] = value
        shapes[flat] = value
    return shapes


_METRICS = {
    "regression": regression_metrics,
    "classification": classification_metrics,
    "ranking": ranking_metrics,
}


def _evaluate_task(task: Task, predictions: dict, targets: dict, masks: dict) -> dict:
    """One task's metrics, or why it has none."""
    if task.target not in targets or task.mask not in masks:
        return {"available": False, "reason": f"no {task.target} in the data"}
    mask = np.asarray(masks[task.mask], dtype=bool)
    if not mask.any():
        return {"available": False, "reason": f"no labelled rows for {task.target}"}
    if task.prediction not in predictions:
        return {"available": False, "reason": f"no '{task.prediction}' predictions"}
    target, prediction = np.asarray(targets[task.target]), np.asarray(predictions[task.prediction])
    if not target.shape == prediction.shape == mask.shape:
        raise MetricInputError(
            f"{task.name}: shapes differ: {task.target} {target.shape}, "
            f"{task.prediction} {prediction.shape}, mask {mask.shape}"
        )
    scores = _METRICS[task.name](target[mask], prediction[mask])
    return {"available": True, "n": int(mask.sum()), **scores}


def _ndcg(relevance: np.ndarray, score: np.ndarray, k: int, groups: np.ndarray | None, notes: dict) -> float | None:
    """NDCG@k of one query or the mean over the scorable groups (see `ranking_metrics`)."""
    if groups is None:
        queries = [np.arange(relevance.size)]
    else:
        groups = np.asarray(groups)
        if groups.shape != relevance.shape:
            raise MetricInputError(f"groups has shape {groups.shape}, relevance {relevance.shape}")
        queries = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    scorable = [q for q in queries if q.size >= 2 and relevance[q].max() > 0]
    if not scorable:
        notes[f"ndcg_at_{k}"] = "undefined: no query with at least 2 items and a relevant one"
        return None
    values = [skm.ndcg_score(relevance[None, q], score[None, q], k=k) for q in scorable]
    return float(np.mean(values))


def _paired(true_name: str, y_true: np.ndarray, pred_name: str, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays as finite, non-empty 1-D float64 arrays of equal length."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    for name, values in ((true_name, y_true), (pred_name, y_pred)):
        if values.ndim != 1 or values.size == 0:
            raise MetricInputError(f"{name} must be a non-empty 1-D array, got shape {values.shape}")
        if not np.isfinite(values).all():
            raise MetricInputError(f"{name} holds NaN or infinite values; mask unlabelled rows out")
    if y_true.size != y_pred.size:
        raise MetricInputError(f"{true_name} has {y_true.size} rows, {pred_name} {y_pred.size}")
    return y_true, y_pred


def _check_binary(y_true: np.ndarray) -> None:
    """Refuse labels other than 0 and 1."""
    if not np.isin(y_true, (0.0, 1.0)).all():
        raise MetricInputError("y_true of a classification task must hold only 0 and 1")


def _zero_division_notes(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, str]:
    """Which of precision, recall and F1 were set to 0.0 because their denominator is zero."""
    notes = {}
    if not y_pred.any():
        notes["precision"] = "set to 0.0: no row is predicted positive"
    if not y_true.any():
        notes["recall"] = "set to 0.0: y_true has no positive row"
    if not y_true.any() and not y_pred.any():
        notes["f1"] = "set to 0.0: no positive row, true or predicted"
    return notes

"""Simple baselines fitted on the training split and scored like the model, so its lift is visible.

- `mean`: the training mean (regression, ranking) or positive rate (classification), a constant.
- `majority`: the training median (regression, ranking) or the majority class as a 0/1
  probability (classification; ties go to 0, as scikit-learn's `most_frequent` does).
- `attributes_linear`: scikit-learn Ridge (regression; ranking regresses the relevance grade) or
  LogisticRegression (classification) on the standardised attribute matrix alone.

Constant ranking scores tie every item, so their NDCG is the average over tied orders (see
`dmas.train.metrics.ranking_metrics`) and their Spearman is None.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from dmas.train.metrics import TASKS, MetricInputError, Task, higher_is_better

BASELINES = ("mean", "majority", "attributes_linear")


def baseline_predictions(
    train_attributes: np.ndarray,
    train_targets: dict[str, np.ndarray],
    train_masks: dict[str, np.ndarray],
    test_attributes: np.ndarray,
    seed: int,
) -> dict[str, dict[str, np.ndarray]]:
    """Test-row predictions of every baseline, each a dict that `evaluate()` accepts.

    Targets and masks are keyed as for `evaluate()`. A task without training labels is skipped:
    its prediction key is absent, and `evaluate()` then reports the task as unavailable.
    """
    train_attributes = _matrix("train_attributes", train_attributes)
    test_attributes = _matrix("test_attributes", test_attributes)
    n_test = test_attributes.shape[0]
    predictions: dict[str, dict[str, np.ndarray]] = {name: {} for name in BASELINES}
    for task in TASKS:
        labelled = _labelled_rows(task, train_targets, train_masks, train_attributes.shape[0])
        if labelled is None:
            continue
        y = np.asarray(train_targets[task.target], dtype=np.float64)[labelled]
        predictions["mean"][task.prediction] = np.full(n_test, y.mean())
        predictions["majority"][task.prediction] = np.full(n_test, _majority(task, y))
        predictions["attributes_linear"][task.prediction] = _linear(task, train_attributes[labelled], y,
                                                                    test_attributes, seed)
    return predictions


def lift(model_metrics: dict, baseline_metrics: dict) -> dict:
    """Per task and metric, model minus baseline signed so that positive means the model is better.

    Both arguments are `evaluate()` results. A task unavailable on either side is
    `{"available": False}`; a metric undefined on either side (None) has lift None.
    """
    result = {}
    for task, model in model_metrics.items():
        baseline = baseline_metrics.get(task, {})
        if not (model.get("available") and baseline.get("available")):
            result[task] = {"available": False}
            continue
        result[task] = {
            metric: _signed_difference(metric, value, baseline[metric])
            for metric, value in model.items()
            if higher_is_better(metric) is not None and metric in baseline
        }
    return result


def _labelled_rows(task: Task, targets: dict, masks: dict, n_rows: int) -> np.ndarray | None:
    """Boolean mask of the training rows labelled for `task`, or None when there are none."""
    if task.target not in targets or task.mask not in masks:
        return None
    mask = np.asarray(masks[task.mask], dtype=bool)
    if mask.shape != (n_rows,):
        raise MetricInputError(f"{task.mask} has shape {mask.shape}, train_attributes has {n_rows} rows")
    return mask if mask.any() else None


def _majority(task: Task, y: np.ndarray) -> float:
    """Majority class as a 0/1 probability (classification) or the median (the other tasks)."""
    if task.name == "classification":
        return float(y.mean() > 0.5)
    return float(np.median(y))


def _linear(task: Task, x_train: np.ndarray, y: np.ndarray, x_test: np.ndarray, seed: int) -> np.ndarray:
    """Ridge or logistic regression on the standardised attributes, predicted on the test rows.

    With a single class among the training labels there is nothing to separate, so the
    classifier degenerates to that class's rate (what `mean` predicts). A tiny store can leave the
    test split empty; then there is nothing to predict (scikit-learn refuses zero rows).
    """
    if x_test.shape[0] == 0:
        return np.zeros(0)
    if task.name != "classification":
        return _pipeline(Ridge(random_state=seed)).fit(x_train, y).predict(x_test)
    if np.unique(y).size < 2:
        return np.full(x_test.shape[0], y.mean())
    model = _pipeline(LogisticRegression(max_iter=1000, random_state=seed)).fit(x_train, y.astype(np.int64))
    return model.predict_proba(x_test)[:, 1]


def _pipeline(estimator) -> Pipeline:
    """`estimator` behind a StandardScaler fitted on the training rows only."""
    return make_pipeline(StandardScaler(), estimator)


def _signed_difference(metric: str, model: float | None, baseline: float | None) -> float | None:
    """model - baseline for higher-is-better metrics, baseline - model otherwise; None if undefined."""
    if model is None or baseline is None:
        return None
    difference = model - baseline if higher_is_better(metric) else baseline - model
    return float(difference)


def _matrix(name: str, values: np.ndarray) -> np.ndarray:
    """A finite 2-D float64 attribute matrix with at least one column."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] == 0:
        raise MetricInputError(f"{name} must be a 2-D [rows, attributes] array, got shape {values.shape}")
    if not np.isfinite(values).all():
        raise MetricInputError(f"{name} holds NaN or infinite values; impute them before fitting baselines")
    return values

"""Baselines fit on the training rows only and give a visible, correctly signed lift."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dmas.train.baselines import BASELINES, baseline_predictions, lift
from dmas.train.metrics import MetricInputError, evaluate


def _split(n: int = 400, seed: int = 0) -> tuple[dict, dict]:
    """Train and test halves where every target is a linear function of the attributes plus noise."""
    rng = np.random.default_rng(seed)
    attributes = rng.normal(size=(n, 4))
    signal = attributes @ np.array([1.0, -0.8, 0.5, 0.0])
    regression = signal + rng.normal(scale=0.3, size=n)
    targets = {
        "target_regression": regression,
        "target_binary": (signal + rng.normal(scale=0.3, size=n) > 0.3).astype(np.float32),
        "target_ranking": np.digitize(signal, np.quantile(signal, [0.3, 0.55, 0.75, 0.9])).astype(np.float32),
    }
    arrays = {"attributes": attributes, **targets, **{f"{k}_mask": np.ones(n, bool) for k in targets}}
    half = n // 2
    return ({k: v[:half] for k, v in arrays.items()}, {k: v[half:] for k, v in arrays.items()})


def _fit(train: dict, test: dict, seed: int = 0) -> dict:
    return baseline_predictions(train["attributes"], train, train, test["attributes"], seed)


def test_linear_baseline_beats_mean_on_linear_data():
    train, test = _split()
    reports = {name: evaluate(p, test, test) for name, p in _fit(train, test).items()}
    assert set(reports) == set(BASELINES)
    assert reports["attributes_linear"]["regression"]["r2"] > 0.9
    assert reports["mean"]["regression"]["r2"] < 0.05
    assert reports["attributes_linear"]["classification"]["auc_roc"] > 0.9
    assert reports["attributes_linear"]["ranking"]["spearman"] > 0.8
    assert reports["mean"]["ranking"]["spearman"] is None  # a constant score ranks nothing


def test_constant_baselines_have_the_training_values():
    train, test = _split()
    predictions = _fit(train, test)
    n_test = len(test["attributes"])
    assert np.array_equal(predictions["mean"]["regression"], np.full(n_test, train["target_regression"].mean()))
    assert np.all(predictions["mean"]["probability"] == train["target_binary"].astype(np.float64).mean())
    assert np.all(predictions["majority"]["regression"] == np.median(train["target_regression"]))
    majority = float(train["target_binary"].mean() > 0.5)
    assert np.all(predictions["majority"]["probability"] == majority)


def test_only_labelled_training_rows_are_used():
    train, test = _split()
    train["target_regression"][:50] = 1e6
    train["target_regression_mask"][:50] = False
    expected = train["target_regression"][50:].mean()
    assert _fit(train, test)["mean"]["regression"][0] == pytest.approx(expected)


def test_task_without_training_labels_is_skipped():
    train, test = _split()
    train["target_ranking_mask"][:] = False
    for predictions in _fit(train, test).values():
        assert "ranking_score" not in predictions and "regression" in predictions
        assert evaluate(predictions, test, test)["ranking"]["available"] is False


def test_single_training_class_falls_back_to_its_rate():
    train, test = _split()
    train["target_binary"][:] = 1.0
    assert np.all(_fit(train, test)["attributes_linear"]["probability"] == 1.0)


def test_deterministic_and_json_serialisable():
    train, test = _split()
    first, second = _fit(train, test, seed=3), _fit(train, test, seed=3)
    for name in BASELINES:
        for key in first[name]:
            assert np.array_equal(first[name][key], second[name][key])
    reports = {name: evaluate(p, test, test) for name, p in first.items()}
    json.dumps(reports)


def test_lift_is_positive_when_the_model_is_better():
    train, test = _split()
    predictions = _fit(train, test)
    model, mean = evaluate(predictions["attributes_linear"], test, test), evaluate(predictions["mean"], test, test)
    gain = lift(model, mean)
    assert gain["regression"]["mae"] > 0 and gain["regression"]["rmse"] > 0 and gain["regression"]["r2"] > 0.8
    assert gain["classification"]["auc_roc"] > 0 and gain["classification"]["log_loss"] > 0
    assert gain["ranking"]["spearman"] is None  # undefined for the constant baseline
    assert "positive_rate" not in gain["classification"] and "n" not in gain["regression"]
    assert lift(mean, model)["regression"]["mae"] == pytest.approx(-gain["regression"]["mae"])
    json.dumps(gain)


def test_lift_marks_tasks_missing_on_either_side():
    train, test = _split()
    model = evaluate(_fit(train, test)["mean"], test, test)
    assert lift(model, {"regression": {"available": False}})["regression"] == {"available": False}
    assert lift(model, {})["ranking"] == {"available": False}


def test_non_finite_attributes_are_refused():
    train, test = _split()
    train["attributes"][0, 0] = np.nan
    with pytest.raises(MetricInputError, match="NaN"):
        _fit(train, test)


def test_an_empty_test_split_gives_empty_predictions_not_an_error():
    train, test = _split()
    predictions = baseline_predictions(train["attributes"], train, train, test["attributes"][:0], 0)
    assert all(len(values) == 0 for baseline in predictions.values() for values in baseline.values())
    assert evaluate(predictions["attributes_linear"], {k: v[:0] for k, v in test.items()},
                    {k: v[:0] for k, v in test.items()})["regression"]["available"] is False

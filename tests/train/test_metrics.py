"""Known answers, degenerate cases and report shape of `dmas.train.metrics`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dmas.train.metrics import (
    HIGHER_IS_BETTER,
    MetricInputError,
    classification_metrics,
    evaluate,
    expected_calibration_error,
    higher_is_better,
    ranking_metrics,
    regression_metrics,
)


def _data(n: int = 40, seed: int = 0) -> tuple[dict, dict, dict]:
    """Predictions, targets and masks of all three tasks, every row labelled."""
    rng = np.random.default_rng(seed)
    regression = rng.normal(size=n)
    binary = (rng.random(n) < 0.4).astype(np.float32)
    grade = rng.integers(0, 5, size=n).astype(np.float32)
    targets = {"target_regression": regression, "target_binary": binary, "target_ranking": grade}
    masks = {f"{key}_mask": np.ones(n, bool) for key in targets}
    predictions = {
        "regression": regression + rng.normal(scale=0.3, size=n),
        "probability": np.clip(0.5 * binary + 0.5 * rng.random(n), 0, 1),
        "ranking_score": grade + rng.normal(scale=0.5, size=n),
    }
    return predictions, targets, masks


def test_perfect_predictions_give_best_values():
    y = np.array([0.5, 1.0, 2.0, 3.5])
    assert regression_metrics(y, y) == {"mae": 0.0, "rmse": 0.0, "r2": 1.0, "notes": {}}
    labels = np.array([0, 0, 1, 1, 1])
    scores = classification_metrics(labels, labels.astype(float))
    assert scores["auc_roc"] == 1.0 and scores["f1"] == 1.0 and scores["ece"] == 0.0
    assert scores["log_loss"] < 1e-12 and scores["positive_rate"] == 0.6
    grade = np.array([0, 1, 2, 3, 4, 2])
    ranking = ranking_metrics(grade, grade.astype(float))
    assert ranking["ndcg_at_10"] == pytest.approx(1.0) and ranking["spearman"] == pytest.approx(1.0)


def test_regression_known_values():
    scores = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 2.0]))
    assert scores["mae"] == pytest.approx(2 / 3)
    assert scores["rmse"] == pytest.approx(np.sqrt(2 / 3))
    assert scores["r2"] == pytest.approx(0.0)


def test_ece_hand_computed():
    # Bin [0.2, 0.3): p 0.2, 0.25 and one positive of two -> |0.5 - 0.225| weighted 2/3.
    # Bin [0.9, 1.0]: p 0.9, positive -> |1 - 0.9| weighted 1/3.  ECE = 0.275 * 2/3 + 0.1 / 3.
    ece = expected_calibration_error(np.array([0, 1, 1]), np.array([0.2, 0.25, 0.9]))
    assert ece == pytest.approx(0.275 * 2 / 3 + 0.1 / 3)
    assert expected_calibration_error(np.array([1, 1]), np.array([1.0, 1.0])) == 0.0  # p = 1 is in the last bin


def test_single_class_gives_no_auc_with_a_reason():
    scores = classification_metrics(np.array([1, 1, 1]), np.array([0.2, 0.7, 0.9]))
    assert scores["auc_roc"] is None
    assert "single class" in scores["notes"]["auc_roc"]
    assert np.isfinite(scores["log_loss"])


def test_zero_division_is_zero_and_noted():
    scores = classification_metrics(np.array([0, 1, 0]), np.array([0.1, 0.2, 0.3]))
    assert scores["precision"] == 0.0 and scores["recall"] == 0.0 and scores["f1"] == 0.0
    assert "precision" in scores["notes"]


def test_hard_zero_one_probabilities_have_finite_log_loss():
    scores = classification_metrics(np.array([0, 1]), np.array([1.0, 0.0]))
    assert np.isfinite(scores["log_loss"]) and scores["log_loss"] > 30


def test_threshold_moves_predicted_class():
    y, p = np.array([0, 1, 1]), np.array([0.2, 0.4, 0.8])
    assert classification_metrics(y, p)["recall"] == 0.5
    assert classification_metrics(y, p, threshold=0.3)["recall"] == 1.0


def test_constant_scores_give_no_spearman():
    scores = ranking_metrics(np.array([0, 1, 2, 3]), np.zeros(4))
    assert scores["spearman"] is None and "constant" in scores["notes"]["spearman"]
    assert 0.0 < scores["ndcg_at_10"] < 1.0  # ties averaged, not an accidental perfect order


def test_constant_relevance_gives_no_r2_and_no_ndcg():
    assert regression_metrics(np.ones(3), np.array([1.0, 2.0, 3.0]))["r2"] is None
    assert ranking_metrics(np.zeros(3), np.array([1.0, 2.0, 3.0]))["ndcg_at_10"] is None


def test_groups_average_over_scorable_queries():
    relevance = np.array([2, 0, 0, 1, 3, 1])
    score = np.array([1.0, 0.0, 1.0, 0.0, 5.0, 0.0])
    groups = np.array(["a", "a", "b", "b", "c", "d"])  # a perfect, b reversed, c and d single items
    ndcg_b = ranking_metrics(relevance[2:4], score[2:4])["ndcg_at_10"]
    scores = ranking_metrics(relevance, score, groups=groups)
    assert scores["ndcg_at_10"] == pytest.approx((1.0 + ndcg_b) / 2)
    assert ndcg_b < 1.0


def test_ndcg_key_follows_k():
    scores = ranking_metrics(np.array([3, 2, 1, 0]), np.array([0.0, 1.0, 2.0, 3.0]), k=2)
    assert "ndcg_at_2" in scores and higher_is_better("ndcg_at_2") is True


def test_bad_inputs_are_refused():
    with pytest.raises(MetricInputError, match="rows"):
        regression_metrics(np.ones(3), np.ones(2))
    with pytest.raises(MetricInputError, match="NaN"):
        regression_metrics(np.array([1.0, np.nan]), np.ones(2))
    with pytest.raises(MetricInputError, match="0 and 1"):
        classification_metrics(np.array([0, 2]), np.array([0.1, 0.2]))
    with pytest.raises(MetricInputError, match=r"\[0, 1\]"):
        classification_metrics(np.array([0, 1]), np.array([0.1, 1.2]))


def test_evaluate_respects_masks():
    predictions, targets, masks = _data()
    masks["target_regression_mask"][:10] = False
    predictions["regression"][:10] = 1e6  # garbage on unlabelled rows must not count
    report = evaluate(predictions, targets, masks)
    expected = regression_metrics(targets["target_regression"][10:], predictions["regression"][10:])
    assert report["regression"] == {"available": True, "n": 30, **expected}


def test_evaluate_skips_unlabelled_and_unpredicted_tasks():
    predictions, targets, masks = _data()
    masks["target_binary_mask"][:] = False
    del predictions["ranking_score"]
    report = evaluate(predictions, targets, masks)
    assert report["classification"]["available"] is False
    assert report["ranking"]["available"] is False
    assert report["regression"]["available"] is True


def test_evaluate_is_deterministic_json_and_plain_floats():
    report = evaluate(*_data())
    assert report == evaluate(*_data())
    assert json.loads(json.dumps(report)) == report
    for task in report.values():
        for metric, value in task.items():
            if higher_is_better(metric) is not None:
                assert type(value) is float, (metric, value)


def test_every_reported_metric_has_a_direction():
    report = evaluate(*_data())
    reported = {m for task in report.values() for m in task} - {"available", "n", "notes", "positive_rate"}
    assert reported == set(HIGHER_IS_BETTER)

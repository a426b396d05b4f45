"""Dimension 5: a collapsed candidate is fitted too easily and transfers worse to held-out reference
rows, flagged at the calibrated threshold; clean samples and a mean shift are not; same floats every time."""

from __future__ import annotations

import pytest

from dmas.quality import probe
from dmas.quality.loss_landscape import LossLandscape
from tests.quality import judging
from tests.quality.test_probe import CONTEXT, few_rows, mixed_frame, shifted, shrunk, statistics_per_thread_count

ROWS = 4000
NAMES = {"loss_roughness_log_ratio", "seed_disagreement_log_ratio", "final_loss_log_ratio", "holdout_loss_log_ratio"}


reference, calibration = judging.calibrated_fixtures(LossLandscape, lambda: mixed_frame(ROWS, 1), ROWS, CONTEXT)


def _judged(calibration, reference, candidate):
    return judging.by_name(judging.judged(LossLandscape(), calibration, reference, candidate, CONTEXT))


def test_statistics_are_keyed_like_their_null(reference, calibration):
    judged = _judged(calibration, reference, mixed_frame(ROWS, 2))
    assert set(judged) == NAMES
    assert {j.statistic.key for j in judged.values()} == set(calibration.nulls_["loss_landscape"])
    assert judged["holdout_loss_log_ratio"].statistic.direction == "higher"


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_clean_independent_samples_are_not_flagged(reference, calibration, seed):
    judged = _judged(calibration, reference, mixed_frame(ROWS, seed))
    assert not judging.flagged_names(judged)


def test_a_mean_shift_is_not_flagged(reference, calibration):
    judged = _judged(calibration, reference, shifted(mixed_frame(ROWS, 5), 1.0))
    assert not judging.flagged_names(judged)


@pytest.mark.parametrize("collapse", ["variance shrunk to 0.3", "twenty distinct rows"])
def test_a_collapsed_candidate_fits_too_easily_and_transfers_worse(reference, calibration, collapse):
    clean = mixed_frame(ROWS, 6)
    candidate = shrunk(clean, 0.3) if collapse.startswith("variance") else few_rows(clean, 20, seed=0)
    judged = _judged(calibration, reference, candidate)
    final, holdout = judged["final_loss_log_ratio"], judged["holdout_loss_log_ratio"]
    assert final.flagged and final.statistic.value < 0
    assert holdout.flagged and holdout.statistic.value > 0
    assert holdout.statistic.evidence["candidate"] > holdout.statistic.evidence["reference"]


def test_values_identical_twice_and_with_one_or_two_threads(reference, monkeypatch):
    seen = statistics_per_thread_count(LossLandscape(), reference, mixed_frame(ROWS, 9), (2, 1, 2), monkeypatch)
    assert seen[0] == seen[1] == seen[2]


def test_describe_gives_both_loss_curves_and_what_the_probe_predicted(reference):
    target = mixed_frame(ROWS, 1, target="flag")
    details = LossLandscape().describe(target, mixed_frame(ROWS, 2, target="flag"), CONTEXT)
    assert details["probe"]["task"] == "flag" and details["probe"]["task_kind"] == "classification"
    assert details["notes"] == ["the probe predicts the target 'flag' (classification) from 9 column(s)"]
    assert len(details["steps"]) == len(details["reference_loss"]) == len(details["candidate_loss"])
    assert len(details["candidate_final_loss_per_seed"]) == probe.SEEDS


def test_a_table_without_anything_to_predict_from_has_no_statistics():
    alone = mixed_frame(500, 1)
    alone = type(alone)({"x1": "numeric"}, {"x1": alone.values["x1"]})
    assert LossLandscape().statistics(alone, alone, CONTEXT) == []
    assert "no probe" in LossLandscape().describe(alone, alone, CONTEXT)["notes"][0]

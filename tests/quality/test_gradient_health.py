"""Dimension 4: a variance shrink or a collapse to a few rows makes the probe's gradients fade, flagged
at the calibrated threshold; clean samples and a mean shift are not flagged; same floats every time."""

from __future__ import annotations

import numpy as np
import pytest

from dmas.quality import probe
from dmas.quality.gradient_health import GradientHealth
from dmas.quality.probe import LAYERS
from tests.quality import judging
from tests.quality.test_probe import CONTEXT, few_rows, mixed_frame, shifted, shrunk, statistics_per_thread_count

ROWS = 4000


reference, calibration = judging.calibrated_fixtures(GradientHealth, lambda: mixed_frame(ROWS, 1), ROWS, CONTEXT)


def _judged(calibration, reference, candidate):
    return judging.by_name(judging.judged(GradientHealth(), calibration, reference, candidate, CONTEXT))


def test_statistics_are_per_layer_and_keyed_like_their_null(reference, calibration):
    judged = _judged(calibration, reference, mixed_frame(ROWS, 2))
    expected = {f"{name}.{layer}" for name in ("gradient_norm_log_ratio", "late_gradient_norm_log_ratio")
                for layer in LAYERS} | {"vanishing_gradient_share", "exploding_gradient_share"}
    assert set(judged) == expected
    assert {j.statistic.key for j in judged.values()} == set(calibration.nulls_["gradient_health"])
    assert all(j.statistic.columns == ("hub",) and j.statistic.finding == "collapse" for j in judged.values())


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_clean_independent_samples_are_not_flagged(reference, calibration, seed):
    judged = _judged(calibration, reference, mixed_frame(ROWS, seed))
    assert not judging.flagged_names(judged)


def test_a_mean_shift_is_not_flagged(reference, calibration):
    judged = _judged(calibration, reference, shifted(mixed_frame(ROWS, 5), 1.0))
    assert not judging.flagged_names(judged)


def test_variance_shrunk_to_a_third_makes_gradients_vanish(reference, calibration):
    judged = _judged(calibration, reference, shrunk(mixed_frame(ROWS, 6), 0.3))
    for layer in LAYERS:
        overall = judged[f"gradient_norm_log_ratio.{layer}"]
        assert overall.flagged and overall.statistic.value < 0, layer  # fading, not exploding


def test_mode_collapse_to_twenty_rows_fades_late_gradients(reference, calibration):
    judged = _judged(calibration, reference, few_rows(mixed_frame(ROWS, 7), 20, seed=0))
    late = [judged[f"late_gradient_norm_log_ratio.{layer}"] for layer in LAYERS]
    assert all(j.flagged and j.statistic.value < np.log(0.5) for j in late)  # half or less


def test_a_dead_candidate_has_vanished_gradients(reference, calibration):
    judged = _judged(calibration, reference, few_rows(mixed_frame(ROWS, 8), 1, seed=0))  # one row repeated
    vanished = judged["vanishing_gradient_share"]
    assert vanished.flagged and vanished.statistic.evidence["candidate_share"] > 0


def test_absurd_values_explode_the_gradients_instead_of_turning_nan(reference, calibration):
    candidate = mixed_frame(ROWS, 10)
    broken = candidate.values["hub"].copy()
    broken[::100] = 1e40  # the probe's task column, wildly out of scale on 1% of the rows
    judged = _judged(calibration, reference, judging.with_values(candidate, {"hub": broken}))
    assert all(np.isfinite(j.statistic.value) for j in judged.values())
    exploded = judged["exploding_gradient_share"]
    assert exploded.flagged and exploded.statistic.evidence["candidate_share"] > 0.5


def test_values_identical_twice_and_with_one_or_two_threads(reference, monkeypatch):
    seen = statistics_per_thread_count(GradientHealth(), reference, mixed_frame(ROWS, 9), (1, 2, 1), monkeypatch)
    assert seen[0] == seen[1] == seen[2]


def test_describe_gives_the_curves_and_says_what_the_probe_predicted(reference):
    details = GradientHealth().describe(reference, shrunk(mixed_frame(ROWS, 6), 0.3), CONTEXT)
    assert details["probe"]["task"] == "hub" and "no target column" in details["notes"][0]
    assert details["probe"]["candidate_rows"] == details["probe"]["reference_rows"] == probe.PROBE_ROWS  # subsampled
    assert set(details["candidate_gradient_norms"]) == set(LAYERS)
    assert len(details["steps"]) == len(details["reference_gradient_norms"]["layer1"])

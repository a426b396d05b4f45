"""Statistical consistency: its tests are scipy's, its effect sizes find planted collapse and drift on the
right column under the real calibration at 20,000 rows, and clean samples are left alone."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from dmas.quality.consistency import StatisticalConsistency, anderson_darling, chi_square, holm, mann_whitney
from dmas.quality.distribution import centred_pair
from tests.quality import judging
from tests.quality.test_distribution import CONTEXT, LEVELS, REPORT_STATISTICS, SHARES, N, frame
from tests.quality.test_distribution import sample as distribution_sample


def sample(seed: int, n: int = N, shares: tuple[float, ...] = SHARES) -> dict[str, np.ndarray]:
    """The columns of test_distribution's sample but the bimodal one: normal, lognormal, counts, level, flag."""
    return distribution_sample(seed, n, shares, bimodal=False)


reference, calibration = judging.calibrated_fixtures(StatisticalConsistency, lambda: frame(sample(0)), N, CONTEXT)


def flagged(reference, calibration, candidate, n_statistics=REPORT_STATISTICS) -> set[tuple[str, ...]]:
    """(statistic, column, finding) of every flagged statistic."""
    found = judging.judged(StatisticalConsistency(), calibration, reference, candidate, CONTEXT, n_statistics)
    return judging.flagged_keys(found, with_finding=True)


def test_anderson_darling_is_scipys_midrank_test_on_centred_samples():
    rng = np.random.default_rng(1)
    for ref, cand in [(rng.normal(size=3000), rng.normal(0.5, 1.2, 2000)),
                      (rng.poisson(4.0, 700).astype(float), rng.poisson(4.5, 500).astype(float))]:
        ref, cand = np.sort(ref), np.sort(cand)
        statistic, p_value = anderson_darling("x", ref, cand)
        expected = stats.anderson_ksamp(list(centred_pair(ref, cand)), variant="midrank")
        assert statistic.evidence["a2_standardised"] == pytest.approx(expected.statistic, rel=1e-9)
        assert p_value == pytest.approx(expected.pvalue, rel=1e-9)
        assert statistic.value == pytest.approx(np.sqrt(statistic.evidence["a2"] * (len(ref) + len(cand))
                                                        / (len(ref) * len(cand))))


def test_mann_whitney_is_scipys_with_ties_and_its_auc():
    rng = np.random.default_rng(2)
    for ref, cand in [(rng.normal(size=3000), rng.normal(0.1, 1.0, 2000)),
                      (rng.integers(0, 6, 900).astype(float), rng.integers(0, 7, 400).astype(float))]:
        ref, cand = np.sort(ref), np.sort(cand)
        statistic, p_value = mann_whitney("x", ref, cand)
        expected = stats.mannwhitneyu(cand, ref, method="asymptotic")
        assert statistic.value == pytest.approx(expected.statistic / (len(ref) * len(cand)), rel=1e-12)
        assert p_value == pytest.approx(expected.pvalue, rel=1e-9)


def test_chi_square_is_scipys_and_reports_cramers_v():
    rng = np.random.default_rng(3)
    ref, cand = rng.integers(0, 5, 4000).astype(np.int32), rng.integers(0, 4, 3000).astype(np.int32)
    statistic, p_value = chi_square("x", ref, cand)
    table = np.array([np.bincount(ref, minlength=5), np.bincount(cand, minlength=5)])
    expected = stats.chi2_contingency(table, correction=False)
    assert p_value == pytest.approx(expected.pvalue)
    assert statistic.value == pytest.approx(np.sqrt(expected.statistic / table.sum()))


def test_holm_adjusts_step_down_and_keeps_nan():
    assert holm([0.01, 0.04, float("nan"), 0.03, 0.5]) == pytest.approx([0.04, 0.09, np.nan, 0.09, 0.5],
                                                                         nan_ok=True)


def test_evidence_carries_raw_and_holm_adjusted_p_values(reference):
    statistics = StatisticalConsistency().statistics(reference, frame(sample(4)), CONTEXT)
    assert [s.key for s in statistics] == [
        "anderson_darling:counts", "mann_whitney:counts", "anderson_darling:lognormal", "mann_whitney:lognormal",
        "anderson_darling:normal", "mann_whitney:normal", "chi_square:flag", "chi_square:level"]
    for s in statistics:
        assert 0.0 < s.evidence["p_value"] <= s.evidence["p_holm"] <= 1.0


def test_variance_shrink_flags_anderson_darling_on_that_column(reference, calibration):
    values = sample(5)
    x = values["normal"]
    values["normal"] = x.mean() + np.sqrt(0.9) * (x - x.mean())
    assert flagged(reference, calibration, frame(values)) == {("anderson_darling", "normal", "collapse")}


def test_dropping_a_three_percent_level_flags_chi_square(reference, calibration):
    shares = tuple(0.0 if level == "f" else share for level, share in zip(LEVELS, SHARES, strict=True))
    assert flagged(reference, calibration, frame(sample(6, shares=shares))) == {("chi_square", "level", "collapse")}


@pytest.mark.parametrize("column", ["normal", "lognormal", "counts"])
def test_a_mean_shift_is_drift_on_mann_whitney_and_never_collapse(reference, calibration, column):
    values = sample(7)
    values[column] = values[column] + 0.2 * values[column].std()
    assert flagged(reference, calibration, frame(values)) == {("mann_whitney", column, "drift")}


@pytest.mark.parametrize("seed", [11, 12, 13, 14, 15])
def test_clean_independent_samples_flag_nothing(reference, calibration, seed):
    candidate = frame(sample(seed))
    n_statistics = len(StatisticalConsistency().statistics(reference, candidate, CONTEXT))  # the loosest bar
    assert flagged(reference, calibration, candidate, n_statistics) == set()


def test_two_runs_give_identical_statistics(reference):
    candidate = frame(sample(8))

    def run() -> str:
        statistics = StatisticalConsistency().statistics(reference, candidate, CONTEXT)
        return json.dumps([(s.key, repr(s.value), s.evidence) for s in statistics], sort_keys=True)

    assert run() == run()


def test_missing_values_tiny_columns_and_single_levels_give_nan_not_errors(reference):
    values = sample(9)
    values["normal"][::3] = np.nan
    values["level"][::4] = -1
    keys = [s.key for s in StatisticalConsistency().statistics(reference, frame(sample(9)), CONTEXT)]
    with_missing = StatisticalConsistency().statistics(reference, frame(values), CONTEXT)
    assert [s.key for s in with_missing] == keys and all(np.isfinite(s.value) for s in with_missing)
    tiny = StatisticalConsistency().statistics(reference, frame(sample(9, n=5)), CONTEXT)
    assert [s.key for s in tiny] == keys
    assert all(np.isnan(s.value) for s in tiny if s.name != "chi_square")
    single = frame({"level": np.zeros(50, dtype=np.int32)})
    (only,) = StatisticalConsistency().statistics(single, single, CONTEXT)
    assert np.isnan(only.value) and only.evidence["p_holm"] is None

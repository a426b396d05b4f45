"""Distribution fidelity finds planted single-column collapse on the right column, calls a shift drift,
and leaves clean samples alone, judged by the real calibration at 20,000 rows."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from dmas.quality.dimension import CheckContext
from dmas.quality.distribution import (
    DistributionFidelity,
    centre,
    centred_pair,
    l_moment_ratios,
    pooled_counts,
    present_sorted,
    resample_counts,
)
from dmas.quality.frame import QualityFrame
from tests.quality import judging

N = 20_000
REPORT_STATISTICS = 300  # about a full report's count at 10 columns: thresholds as strict as in a real check
LEVELS = tuple("abcdefgh")
SHARES = (0.4, 0.25, 0.15, 0.1, 0.05, 0.03, 0.015, 0.005)  # "f" is the 3% level
KINDS = {"normal": "numeric", "lognormal": "numeric", "bimodal": "numeric", "counts": "numeric",
         "level": "categorical", "flag": "boolean"}
CONTEXT = CheckContext(seed=0, target=None, max_rows=20_000)


def sample(seed: int, n: int = N, shares: tuple[float, ...] = SHARES, bimodal: bool = True) -> dict[str, np.ndarray]:
    """Normal, lognormal, bimodal (unless `bimodal` is False), counts, a categorical with `shares` and a flag."""
    rng = np.random.default_rng(seed)
    values = {"normal": rng.normal(10.0, 2.0, n), "lognormal": rng.lognormal(3.0, 0.8, n)}
    if bimodal:
        values["bimodal"] = np.where(rng.random(n) < 0.35, rng.normal(3.0, 0.8, n), rng.normal(-2.0, 0.6, n))
    return {**values, "counts": rng.poisson(3.0, n).astype(np.float64),
            "level": rng.choice(len(LEVELS), size=n, p=np.asarray(shares) / sum(shares)).astype(np.int32),
            "flag": (rng.random(n) < 0.3).astype(np.int32)}


def frame(values: dict[str, np.ndarray]) -> QualityFrame:
    return judging.frame_of(values, KINDS, {"level": LEVELS, "flag": ("False", "True")})


reference, calibration = judging.calibrated_fixtures(DistributionFidelity, lambda: frame(sample(0)), N, CONTEXT)


def flagged(reference, calibration, candidate, n_statistics=REPORT_STATISTICS) -> set[tuple[str, ...]]:
    """(statistic, column, finding) of every flagged statistic."""
    found = judging.judged(DistributionFidelity(), calibration, reference, candidate, CONTEXT, n_statistics)
    return judging.flagged_keys(found, with_finding=True)


def test_variance_shrink_of_a_normal_column_flags_its_variance_ratio(reference, calibration):
    values = sample(1)
    x = values["normal"]
    values["normal"] = x.mean() + np.sqrt(0.9) * (x - x.mean())
    found = flagged(reference, calibration, frame(values))
    assert ("variance_ratio", "normal", "collapse") in found
    assert {column for _, column, _ in found} == {"normal"}


@pytest.mark.parametrize("column", ["normal", "lognormal"])
def test_tail_truncation_flags_a_tail_statistic_of_that_column(reference, calibration, column):
    values = sample(2)
    x = values[column].copy()
    low, high = np.quantile(x, [0.005, 0.995])  # the 1% most extreme rows, half from each tail...
    extreme = (x < low) | (x > high)
    x[extreme] = np.random.default_rng(7).choice(x[~extreme], extreme.sum())  # ...resampled from the interior
    values[column] = x
    found = flagged(reference, calibration, frame(values))
    assert {name for name, col, _ in found if col == column} & {"tail_low", "tail_high", "far_tail_low",
                                                                 "far_tail_high"}
    assert {col for _, col, _ in found} == {column}


def test_dropping_a_three_percent_level_flags_coverage_and_rare_mass(reference, calibration):
    shares = tuple(0.0 if level == "f" else share for level, share in zip(LEVELS, SHARES, strict=True))
    found = flagged(reference, calibration, frame(sample(3, shares=shares)))
    assert {("category_coverage", "level", "collapse"), ("rare_mass_ratio", "level", "collapse")} <= found
    assert {col for _, col, _ in found} == {"level"}
    statistic = next(s for s in DistributionFidelity().statistics(reference, frame(sample(3, shares=shares)), CONTEXT)
                     if s.key == "category_coverage:level")
    assert statistic.evidence["lost"] == ["f"]


@pytest.mark.parametrize("column", ["normal", "lognormal", "counts"])
def test_a_mean_shift_is_drift_and_never_collapse(reference, calibration, column):
    values = sample(4)
    values[column] = values[column] + 0.2 * values[column].std()
    found = flagged(reference, calibration, frame(values))
    assert {("std_mean_diff", column, "drift"), ("median_shift", column, "drift")} <= found
    assert not {item for item in found if item[2] == "collapse"}


@pytest.mark.parametrize("seed", [11, 12, 13, 14, 15])
def test_clean_independent_samples_flag_nothing(reference, calibration, seed):
    candidate = frame(sample(seed))
    n_statistics = len(DistributionFidelity().statistics(reference, candidate, CONTEXT))  # the loosest bar
    assert flagged(reference, calibration, candidate, n_statistics) == set()


def test_two_runs_give_identical_statistics_and_pictures(reference):
    candidate = frame(sample(5))

    def run() -> str:
        dimension = DistributionFidelity()
        statistics = [(s.key, repr(s.value), s.evidence) for s in dimension.statistics(reference, candidate, CONTEXT)]
        return json.dumps([statistics, dimension.describe(reference, candidate, CONTEXT)], sort_keys=True)

    assert run() == run()


def test_statistics_have_declared_ideals_directions_and_findings(reference):
    statistics = DistributionFidelity().statistics(reference, frame(sample(6)), CONTEXT)
    by_name = {s.name: s for s in statistics}
    assert len(statistics) == 4 * 13 + 2 * 3
    assert (by_name["variance_ratio"].ideal, by_name["variance_ratio"].direction) == (1.0, "two_sided")
    assert (by_name["tail_low"].ideal, by_name["tail_low"].direction) == (1.0, "lower")
    assert (by_name["ks"].ideal, by_name["ks"].direction) == (0.0, "higher")
    assert (by_name["category_coverage"].direction, by_name["rare_mass_ratio"].direction) == ("lower", "lower")
    assert {s.name for s in statistics if s.finding == "drift"} == {"std_mean_diff", "median_shift"}
    variance = by_name["variance_ratio"].evidence
    assert variance["reference_variance"] > 0 and variance["candidate_variance"] > 0


def test_ks_and_wasserstein_are_scipys_on_centred_samples(reference):
    """(The Wasserstein distance on values clipped to the reference's 0.1%-99.9% range, as the dimension has it.)"""
    candidate = frame(sample(7))
    ref, cand = present_sorted(reference.values["bimodal"]), present_sorted(candidate.values["bimodal"])
    centred_r, centred_c = centred_pair(ref, cand)
    found = {s.name: s for s in DistributionFidelity().statistics(reference, candidate, CONTEXT)
             if s.columns == ("bimodal",)}
    assert found["ks"].value == pytest.approx(stats.ks_2samp(centred_r, centred_c).statistic, abs=1e-12)
    spread = found["wasserstein"].evidence["reference_spread"]
    clip = np.quantile(centred_r, [0.001, 0.999])
    expected = stats.wasserstein_distance(np.clip(centred_r, *clip), np.clip(centred_c, *clip)) / spread
    assert found["wasserstein"].value == pytest.approx(expected, rel=1e-5)


def test_centre_moves_exactly_with_a_shift_and_stays_on_an_integer_lattice():
    rng = np.random.default_rng(8)
    x = np.sort(rng.normal(size=1001))
    assert centre(x + 3.25) == pytest.approx(centre(x) + 3.25, abs=1e-12)
    counts = np.sort(rng.poisson(3.0, 1000).astype(np.float64))
    assert centre(counts) == np.round(centre(counts))


def test_l_moment_ratios_of_a_normal_sample_are_the_normals():
    tau3, tau4 = l_moment_ratios(np.sort(np.random.default_rng(9).normal(size=200_000)))
    assert tau3 == pytest.approx(0.0, abs=0.005)
    assert tau4 == pytest.approx(0.1226, abs=0.005)


def test_missing_values_are_left_out_and_tiny_columns_give_nan_with_the_same_keys(reference):
    values = sample(10)
    values["normal"][::3] = np.nan
    values["level"][::4] = -1
    with_missing = DistributionFidelity().statistics(reference, frame(values), CONTEXT)
    clean = DistributionFidelity().statistics(reference, frame(sample(10)), CONTEXT)
    assert [s.key for s in with_missing] == [s.key for s in clean]
    assert all(np.isfinite(s.value) for s in with_missing if s.columns == ("normal",))
    tiny = frame({name: array[:5] for name, array in sample(10, n=5).items()})
    few = DistributionFidelity().statistics(reference, tiny, CONTEXT)
    assert [s.key for s in few] == [s.key for s in clean]
    assert all(np.isnan(s.value) for s in few if s.columns[0] in {"normal", "lognormal", "bimodal", "counts"})


def test_frames_with_only_one_kind_of_column():
    values = sample(11, n=500)
    numeric = frame({"normal": values["normal"]})
    discrete = frame({"level": values["level"]})
    assert {s.columns for s in DistributionFidelity().statistics(numeric, numeric, CONTEXT)} == {("normal",)}
    assert {s.columns for s in DistributionFidelity().statistics(discrete, discrete, CONTEXT)} == {("level",)}
    described = DistributionFidelity().describe(discrete, discrete, CONTEXT)
    assert described["histograms"] == {} and set(described["categories"]) == {"level"}


def test_describe_draws_shared_histograms_and_level_shares(reference):
    shares = tuple(0.0 if level == "f" else share for level, share in zip(LEVELS, SHARES, strict=True))
    picture = DistributionFidelity().describe(reference, frame(sample(12, shares=shares)), CONTEXT)
    assert set(picture) == {"histograms", "categories"}
    assert set(picture["histograms"]) == {"normal", "lognormal", "bimodal", "counts"}
    histogram = picture["histograms"]["normal"]
    assert len(histogram["edges"]) == 31 and len(histogram["reference"]) == len(histogram["candidate"]) == 30
    assert histogram["edges"] == sorted(histogram["edges"])
    width = histogram["edges"][1] - histogram["edges"][0]
    assert sum(histogram["reference"]) * width == pytest.approx(0.99, abs=0.01)  # between the 0.5% and 99.5% quantiles
    assert all(len(f"{abs(v):.15g}".replace(".", "").lstrip("0")) <= 6 for v in histogram["candidate"])
    levels = picture["categories"]["level"]
    assert levels["levels"] == list(LEVELS)  # reference shares descending
    assert levels["candidate"][LEVELS.index("f")] == 0.0
    assert levels["reference"] == sorted(levels["reference"], reverse=True)
    assert json.loads(json.dumps(picture)) == picture


def test_a_bootstrap_draws_tally_is_the_merge_of_both_sorted_samples():
    """`resample_counts` (a candidate made of reference rows) gives `pooled_counts`' counts exactly:
    ties, missing and infinite values, and both zeros included."""
    rng = np.random.default_rng(11)
    values = np.round(rng.normal(0, 2, 3000), 1)
    values[rng.integers(0, 3000, 40)] = np.nan
    values[:3] = [np.inf, -np.inf, -0.0]
    reference = QualityFrame({"x": "numeric"}, {"x": values})
    candidate = reference.take(rng.integers(0, 3000, 2000))
    assert candidate.resampled_from(reference) and not reference.resampled_from(candidate)
    expected = pooled_counts(present_sorted(values), present_sorted(candidate.values["x"]))[1:]
    for got, want in zip(resample_counts(reference, candidate, "x"), expected, strict=True):
        assert got.dtype == want.dtype and np.array_equal(got, want)
    assert np.array_equal(reference.present_sorted("x"), present_sorted(values))


def test_a_tally_of_distinct_values_is_the_merge_too():
    """A column of distinct values keeps no reference counts (they are 1, 2, ...) and tallies as the merge."""
    rng = np.random.default_rng(12)
    values = rng.normal(0, 1, 2_000)
    values[5] = np.nan
    reference = QualityFrame({"x": "numeric"}, {"x": values})
    candidate = reference.take(rng.integers(0, 2_000, 1_500))
    expected = pooled_counts(present_sorted(values), present_sorted(candidate.values["x"]))[1:]
    for got, want in zip(resample_counts(reference, candidate, "x"), expected, strict=True):
        assert got.dtype == want.dtype and np.array_equal(got, want)

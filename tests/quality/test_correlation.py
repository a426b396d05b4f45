"""Correlation preservation finds a moved correlation on its pair (either way), a lost categorical
association on its pair, leaves clean samples and shifted columns alone, judged by the real
calibration; and its heat-map data is what the report draws."""

from __future__ import annotations

import numpy as np
import pytest

from dmas.quality.correlation import (
    CorrelationPreservation,
    association_change,
    contingency,
    cramers_v,
    pearson_matrix,
    spearman_matrix,
)
from dmas.quality.dimension import CheckContext
from dmas.quality.frame import QualityFrame
from tests.quality import judging

N = 20_000
REPORT_STATISTICS = 300  # about a full report's count: thresholds as strict as in a real check
CONTEXT = CheckContext(seed=0, target=None, max_rows=20_000)
KINDS = {"a": "numeric", "b": "numeric", "c": "numeric", "d": "numeric", "t": "datetime",
         "g": "categorical", "h": "categorical", "flag": "boolean"}
LEVELS = {"g": ("g0", "g1", "g2", "g3"), "h": ("h0", "h1", "h2"), "flag": ("False", "True")}


def sample(seed: int, n: int = N, rho: float = 0.6, associated: bool = True) -> dict[str, np.ndarray]:
    """corr(a, b) = rho, c lognormal and d independent of both, h depends on g unless `associated` is False."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(n)
    b = rho * a + np.sqrt(1.0 - rho**2) * rng.standard_normal(n)
    g = rng.choice(4, size=n, p=(0.4, 0.3, 0.2, 0.1))
    h = np.where(rng.random(n) < 0.5, g % 3, rng.integers(0, 3, n)) if associated else rng.integers(0, 3, n)
    return {"a": 10.0 + 2.0 * a, "b": b, "c": rng.lognormal(0.0, 0.8, n), "d": rng.standard_normal(n),
            "t": np.arange(n, dtype=np.float64), "g": g.astype(np.int32), "h": h.astype(np.int32),
            "flag": (rng.random(n) < 0.3).astype(np.int32)}


def frame(values: dict[str, np.ndarray]) -> QualityFrame:
    return judging.frame_of(values, KINDS, LEVELS, order="t")


reference, calibration = judging.calibrated_fixtures(CorrelationPreservation, lambda: frame(sample(0)), N, CONTEXT)


def flagged(reference, calibration, candidate) -> set[tuple[str, ...]]:
    """(statistic, *columns) of every flagged statistic."""
    return judging.flagged_keys(judging.judged(CorrelationPreservation(), calibration, reference, candidate, CONTEXT,
                                               REPORT_STATISTICS))


@pytest.mark.parametrize("rho", [0.3, 0.9])
def test_a_correlation_moved_by_0_3_flags_that_pair_only(reference, calibration, rho):
    found = flagged(reference, calibration, frame(sample(1, rho=rho)))
    assert {("pearson_difference", "a", "b"), ("spearman_difference", "a", "b")} <= found
    assert {tuple(columns) for _, *columns in found} <= {("a", "b"), ()}  # () = the whole-matrix summaries


def test_a_lost_categorical_association_flags_that_pair(reference, calibration):
    found = flagged(reference, calibration, frame(sample(2, associated=False)))
    assert ("association_change", "g", "h") in found
    assert {tuple(columns) for _, *columns in found} == {("g", "h")}


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_clean_independent_samples_flag_nothing(reference, calibration, seed):
    assert flagged(reference, calibration, frame(sample(seed))) == set()


def test_a_mean_shift_flags_nothing(reference, calibration):
    values = sample(6)
    for name in ("a", "b", "c", "d"):
        values[name] = values[name] + 3.0 * values[name].std()
    assert flagged(reference, calibration, frame(values)) == set()


def test_statistic_keys_depend_on_the_columns_only(reference):
    dimension = CorrelationPreservation()
    changed = sample(7, rho=0.0, associated=False)
    changed["c"][::3] = np.nan
    changed["g"][::5] = -1
    keys = [s.key for s in dimension.statistics(reference, reference, CONTEXT)]
    assert keys == [s.key for s in dimension.statistics(reference, frame(changed), CONTEXT)]
    assert "pearson_difference:a,b" in keys and not any("t" in key.split(":")[1].split(",") for key in keys)


def test_identical_inputs_give_identical_values_and_ideal_statistics(reference):
    dimension = CorrelationPreservation()
    candidate = frame(sample(8))
    first, second = (dimension.statistics(reference, candidate, CONTEXT) for _ in range(2))
    assert [(s.key, repr(s.value), s.evidence) for s in first] == [(s.key, repr(s.value), s.evidence) for s in second]
    same = {s.key: s.value for s in dimension.statistics(reference, reference, CONTEXT)}
    assert same["pearson_frobenius:"] == 0.0 and same["association_change:g,h"] == 0.0
    assert same["correlation_of_correlations:"] == pytest.approx(1.0)
    assert all(value == 0.0 for key, value in same.items() if key.startswith(("pearson_diff", "spearman_diff")))


def test_missing_values_and_missing_kinds_never_crash():
    values = sample(9, n=600)
    values["a"][::4] = np.nan
    values["b"][:] = np.nan
    values["g"][::3] = -1
    dimension = CorrelationPreservation()
    statistics = {s.key: s.value for s in dimension.statistics(frame(values), frame(sample(10, n=600)), CONTEXT)}
    assert np.isnan(statistics["pearson_difference:a,b"]) and np.isfinite(statistics["pearson_difference:a,c"])
    only_levels = {name: values[name] for name in ("g", "h")}
    assert [s.key for s in dimension.statistics(frame(only_levels), frame(only_levels), CONTEXT)] == \
        ["association_change:g,h"]
    one_column = {"a": values["a"]}
    assert dimension.statistics(frame(one_column), frame(one_column), CONTEXT) == []
    assert dimension.describe(frame(one_column), frame(one_column), CONTEXT)["columns"] == ["a"]


def test_describe_gives_the_heat_map_data(reference):
    values = sample(11, n=2_000)
    values["d"] = np.ones(2_000)  # constant: no correlation (null in the report)
    candidate = frame(values)
    details = CorrelationPreservation().describe(reference, candidate, CONTEXT)
    assert set(details) == {"columns", "reference", "candidate", "difference"}
    assert details["columns"] == ["a", "b", "c", "d"]  # the order column is left out
    before, after = pearson_matrix(reference.matrix(["a", "b", "c", "d"])), pearson_matrix(candidate.matrix(
        ["a", "b", "c", "d"]))
    assert details["reference"][0][1] == float(f"{before[0, 1]:.6g}")
    assert details["difference"][0][1] == float(f"{after[0, 1] - before[0, 1]:.6g}")
    assert details["candidate"][3] == [None, None, None, None] and details["difference"][0][3] is None


def test_matrices_match_pandas_and_the_association_distance_reads_as_cramers_v():
    import pandas as pd

    rng = np.random.default_rng(12)
    x = rng.standard_normal((3_000, 3))
    x[:, 1] += np.exp(x[:, 0])
    x[rng.random(x.shape) < 0.1] = np.nan
    table = pd.DataFrame(x)
    assert np.allclose(pearson_matrix(x), table.corr().to_numpy(), atol=1e-12)
    assert np.allclose(spearman_matrix(x), table.corr("spearman").to_numpy(), atol=1e-3)  # ranks over each column
    g, h = sample(13, n=5_000)["g"], sample(13, n=5_000)["h"]
    before = contingency(g, h, 4, 3)
    independent = contingency(g, rng.permutation(h), 4, 3)
    assert association_change(before, before) == 0.0
    assert association_change(before, independent) == pytest.approx(cramers_v(before), abs=0.03)


def test_correlations_summed_over_blocks_of_rows_match_one_pass():
    """Pearson over blocks of rows (with and without missing values) equals the one-pass matrix up to the
    order of float sums, and one block is the one pass's bytes; Spearman from columns equals it from [n, p]."""
    from dmas.quality.correlation import pearson_matrix, spearman_matrix

    rng = np.random.default_rng(5)
    values = rng.standard_normal((3_000, 4))
    values[:, 1] += 0.6 * values[:, 0]
    gappy = values.copy()
    gappy[rng.random(gappy.shape) < 0.05] = np.nan
    for matrix in (values, gappy):
        whole = pearson_matrix(matrix)
        blocks = pearson_matrix(lambda m=matrix: (m[start:start + 700] for start in range(0, len(m), 700)))
        assert np.allclose(blocks, whole, rtol=0, atol=1e-12, equal_nan=True)
        assert np.array_equal(pearson_matrix(lambda m=matrix: [m]), whole, equal_nan=True)
        columns = [matrix[:, index].copy() for index in range(matrix.shape[1])]
        assert np.array_equal(spearman_matrix(columns), spearman_matrix(matrix), equal_nan=True)

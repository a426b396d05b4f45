"""Small real-looking tables split in halves are clean: what bench_collapse_real found flagged at small n.

Each case is one a user would notice: a table with one natural duplicate row, strongly correlated
columns, an integer grid of a few values. The clean halves must pass, and the corruption the check
is for must still be found at the same size.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from dmas.quality.calibration import NullCalibration
from dmas.quality.check import run_check
from dmas.quality.columns import encode_pair
from dmas.quality.config import CollapseCheckConfig
from dmas.quality.correlation import CorrelationPreservation
from dmas.quality.dimension import CheckContext
from dmas.quality.frame import QualityFrame
from dmas.quality.memorization import Memorization
from tests.quality import judging

CONTEXT = CheckContext(seed=0, target=None, max_rows=20_000)


def measured(n: int, seed: int) -> QualityFrame:
    """Four correlated measurements rounded to one decimal, like iris: a repeat is rare but possible."""
    rng = np.random.default_rng([seed, 31])
    latent = rng.multivariate_normal(np.zeros(4), 0.6 * np.ones((4, 4)) + 0.4 * np.eye(4), n)
    values = {f"m{k}": np.round(5.0 + latent[:, k], 1) for k in range(4)}
    return QualityFrame(dict.fromkeys(values, "numeric"), values)


def judged(dimension, reference: QualityFrame, candidate: QualityFrame) -> dict:
    calibration = NullCalibration().fit(reference, candidate.n_rows, [dimension], CONTEXT)
    return judging.by_name(judging.judged(dimension, calibration, reference, candidate, CONTEXT))


def test_one_natural_duplicate_row_is_not_a_memorization_finding():
    reference, candidate = measured(75, 0), measured(75, 1)
    assert len(np.unique(np.column_stack(list(reference.values.values())), axis=0)) == 75  # no repeat inside
    candidate = judging.with_values(candidate, {name: np.r_[reference.values[name][:1], values[1:]]
                                                for name, values in candidate.values.items()})
    found = judged(Memorization(), reference, candidate)
    exact = found["exact_copy_rate"]
    assert exact.statistic.evidence["copied_rows"] == 1 and exact.null_center == 0.0  # the null never copied
    assert judging.flagged_names(found) == []


def test_copied_rows_are_still_found_in_a_small_table():
    reference, candidate = measured(300, 0), measured(300, 1)
    copies = {name: np.r_[reference.values[name][:30], values[30:]] for name, values in candidate.values.items()}
    found = judged(Memorization(), reference, judging.with_values(candidate, copies))
    assert "exact_copy_rate" in judging.flagged_names(found)


def correlated(n: int, seed: int, rho: float = 0.85) -> QualityFrame:
    """Skewed columns with strong correlations (0.85 and 0.6), where r's sampling noise is far from even."""
    rng = np.random.default_rng([seed, 32])
    latent = rng.multivariate_normal(np.zeros(3), [[1.0, rho, 0.6], [rho, 1.0, 0.5], [0.6, 0.5, 1.0]], n)
    values = {"a": np.exp(0.4 * latent[:, 0]), "b": latent[:, 1], "c": latent[:, 2] ** 3 + latent[:, 2]}
    return QualityFrame(dict.fromkeys(values, "numeric"), values)


def test_strongly_correlated_clean_halves_are_not_flagged_for_correlation():
    reference = correlated(200, 0)
    calibration = NullCalibration().fit(reference, 200, [CorrelationPreservation()], CONTEXT)
    for seed in (1, 2, 3, 4):
        found = judging.judged(CorrelationPreservation(), calibration, reference, correlated(200, seed), CONTEXT)
        assert judging.flagged_keys(found) == set()
    pair = {j.statistic.key: j.statistic for j in found}["pearson_difference:a,b"]
    fisher = np.arctanh(pair.evidence["candidate"]) - np.arctanh(pair.evidence["reference"])  # evidence: 6 digits
    assert abs(pair.value - fisher) < 1e-4


def test_a_strong_correlation_that_weakens_is_still_found():
    reference = correlated(200, 0)
    calibration = NullCalibration().fit(reference, 200, [CorrelationPreservation()], CONTEXT)
    found = judging.judged(CorrelationPreservation(), calibration, reference, correlated(200, 1, rho=0.45), CONTEXT)
    assert ("pearson_difference", "a", "b") in judging.flagged_keys(found)


def grid_table(n: int, seed: int) -> pa.Table:
    """Pixel-like integer columns 0..16 (many zeros, saturated at 16) driven by a class label."""
    rng = np.random.default_rng([seed, 33])
    label = rng.integers(0, 3, n)
    columns = {}
    for k in range(5):
        level = np.clip(np.round(rng.normal(4.0 * ((label + k) % 3), 4.0, n)), 0, 16)
        columns[f"p{k}"] = level
    columns["label"] = np.array([f"class{v}" for v in label])
    return pa.table(columns)


def test_an_integer_grid_tables_clean_halves_are_not_flagged():
    pair = encode_pair(grid_table(600, 0), grid_table(600, 1), target="label")
    assert pair.inputs["kinds"]["p0"] == "categorical"  # a small whole-number scale compares as levels
    report = run_check(pair.reference, pair.candidate, CollapseCheckConfig()).report()
    assert not report["collapse_detected"] and not report["drift_detected"], report["flags"]


def test_an_integer_grid_column_moved_off_its_grid_is_compared_as_numbers():
    candidate = grid_table(600, 1)
    shifted = candidate.set_column(0, "p0", pa.array(candidate["p0"].to_numpy() * 0.7 + 0.35))
    pair = encode_pair(grid_table(600, 0), shifted, target="label")
    assert pair.inputs["kinds"]["p0"] == "numeric" and pair.schema.matches  # not every level "lost"
    assert pair.reference.kinds["p0"] == pair.candidate.kinds["p0"] == "numeric"

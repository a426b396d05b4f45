"""Memorization evidence: copied rows are found, lost variance shows as lost recall, clean samples pass."""

from __future__ import annotations

import numpy as np
import pytest

from dmas.quality.calibration import NullCalibration
from dmas.quality.dimension import CheckContext
from dmas.quality.frame import QualityFrame
from dmas.quality.memorization import Memorization, row_hashes
from tests.quality import judging

ROWS = 3000
LEVELS = tuple(f"level{k:02d}" for k in range(24))
CONTEXT = CheckContext(seed=0, target=None, max_rows=20_000)


def table(n: int, seed: int) -> QualityFrame:
    """Correlated normals, lognormal, bimodal, exponential and a Zipf categorical with rare levels."""
    rng = np.random.default_rng([seed, 11])
    latent = rng.multivariate_normal(np.zeros(3), [[1.0, 0.6, 0.3], [0.6, 1.0, 0.0], [0.3, 0.0, 1.0]], n)
    values = {"a": latent[:, 0], "b": latent[:, 1], "c": 5.0 + 2.0 * latent[:, 2],
              "d": rng.lognormal(0.0, 0.5, n), "e": np.where(rng.random(n) < 0.4, rng.normal(3, 0.8, n),
                                                             rng.normal(-2, 0.6, n)), "f": rng.exponential(2.0, n)}
    kinds = dict.fromkeys(values, "numeric")
    shares = 1.0 / np.arange(1, 25) ** 1.3
    values["g"] = rng.choice(24, n, p=shares / shares.sum()).astype(np.int32)
    kinds["g"] = "categorical"
    return QualityFrame(kinds, values, {"g": LEVELS})


def copied(candidate: QualityFrame, reference: QualityFrame, share: float) -> QualityFrame:
    """`share` of the candidate's rows replaced by copies of random reference rows."""
    rng = np.random.default_rng(3)
    rows = rng.choice(candidate.n_rows, round(share * candidate.n_rows), replace=False)
    sources = rng.choice(reference.n_rows, len(rows), replace=False)
    values = {name: array.copy() for name, array in candidate.values.items()}
    for name, array in values.items():
        array[rows] = reference.values[name][sources]
    return judging.with_values(candidate, values)


reference, calibration = judging.calibrated_fixtures(Memorization, lambda: table(ROWS, 1), ROWS, CONTEXT)


def judged(calibration: NullCalibration, reference: QualityFrame, candidate: QualityFrame) -> dict:
    return judging.by_name(judging.judged(Memorization(), calibration, reference, candidate, CONTEXT))


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_a_clean_sample_is_not_flagged(calibration, reference, seed):
    found = judged(calibration, reference, table(ROWS, seed))
    assert set(found) == {"exact_copy_rate", "near_copy_rate", "precision_diff", "recall_diff", "coverage_diff"}
    assert judging.flagged_names(found) == []
    assert found["exact_copy_rate"].statistic.value == 0.0


@pytest.mark.parametrize("share", [0.05, 0.1])
def test_copied_rows_are_found(calibration, reference, share):
    found = judged(calibration, reference, copied(table(ROWS, 5), reference, share))
    exact = found["exact_copy_rate"].statistic
    assert exact.value == pytest.approx(share) and exact.evidence["copied_rows"] == round(share * ROWS)
    flagged = judging.flagged_names(found)
    assert "exact_copy_rate" in flagged and "near_copy_rate" in flagged
    assert all(found[name].statistic.finding == "collapse" for name in flagged)


def test_lost_variance_shows_as_lost_recall_while_precision_stays(calibration, reference):
    candidate = table(ROWS, 6)
    candidate = judging.with_values(candidate, {name: candidate.values[name].mean()
                                                + 0.7 * (candidate.values[name] - candidate.values[name].mean())
                                                for name in candidate.continuous()})
    found = judged(calibration, reference, candidate)
    assert "recall_diff" in judging.flagged_names(found) and found["recall_diff"].statistic.value < 0
    precision = found["precision_diff"].statistic.evidence
    assert precision["candidate"] >= precision["reference"]  # the candidate still lies where the reference does


def test_a_mean_shift_does_not_read_as_lost_coverage(calibration, reference):
    candidate = table(ROWS, 7)
    found = judged(calibration, reference, judging.with_values(candidate, {"a": candidate.values["a"] + 1.0}))
    assert judging.flagged_names(found) == []


def test_rows_hash_equal_exactly_when_they_are_equal():
    frame = QualityFrame({"x": "numeric", "k": "categorical"},
                         {"x": np.array([1.5, 1.5, -0.0, 0.0, np.nan, np.nan, 1.5]),
                          "k": np.array([1, 1, 0, 0, -1, -1, 2], dtype=np.int32)}, {"k": ("p", "q", "r")})
    hashes = row_hashes(frame, ["k", "x"])
    assert hashes[0] == hashes[1] and hashes[2] == hashes[3] and hashes[4] == hashes[5]
    assert len(set(hashes[[0, 2, 4, 6]].tolist())) == 4


def test_coarse_data_with_natural_repeats_is_not_called_copied():
    def coarse(n: int, seed: int) -> QualityFrame:
        rng = np.random.default_rng(seed)
        values = {"k": rng.integers(0, 4, n).astype(np.int32), "m": rng.integers(0, 2, n).astype(np.int32),
                  "x": rng.integers(0, 5, n).astype(np.float64)}
        return QualityFrame({"k": "categorical", "m": "boolean", "x": "numeric"}, values,
                            {"k": ("a", "b", "c", "d"), "m": ("0", "1")})
    reference, dimension = coarse(2000, 1), Memorization()
    calibration = NullCalibration(draws=30, seed=0).fit(reference, 2000, [dimension], CONTEXT)
    found = judging.by_name(judging.judged(dimension, calibration, reference, coarse(2000, 2), CONTEXT))
    assert found["exact_copy_rate"].statistic.ideal == 1.0  # every combination repeats: copying means nothing here
    assert judging.flagged_names(found) == []


def test_missing_values_and_tiny_tables_do_not_break_it(reference):
    candidate = table(ROWS, 8)
    rng = np.random.default_rng(0)
    a, g = candidate.values["a"].copy(), candidate.values["g"].copy()
    a[rng.random(ROWS) < 0.1], g[rng.random(ROWS) < 0.1] = np.nan, -1
    statistics = Memorization().statistics(reference, judging.with_values(candidate, {"a": a, "g": g}), CONTEXT)
    assert all(np.isfinite(s.value) for s in statistics)
    tiny = Memorization().statistics(reference, candidate.take(np.arange(4)), CONTEXT)
    assert [s.key for s in tiny] == [s.key for s in statistics]
    assert all(np.isnan(s.value) for s in tiny if s.name != "exact_copy_rate")


def test_the_same_inputs_give_the_same_numbers_twice(reference):
    candidate = copied(table(ROWS, 9), reference, 0.1)
    runs = [(Memorization().statistics(reference, candidate, CONTEXT),
             Memorization().describe(reference, candidate, CONTEXT)) for _ in range(2)]
    assert repr(runs[0]) == repr(runs[1])


def test_column_means_and_spreads_are_numpys_in_one_block_and_close_in_many(monkeypatch):
    """The encoder's standardisation streams over blocks of rows: one block gives np.nanmean's and
    np.nanstd's bytes (an empty column gets 0), many blocks the same up to the order of float sums."""
    from dmas.quality.frame import QualityFrame
    from dmas.quality.memorization import column_mean_and_sd

    rng = np.random.default_rng(9)
    values = {"a": rng.normal(3.0, 2.0, 4_000), "b": rng.lognormal(0.0, 1.0, 4_000), "empty": np.full(4_000, np.nan)}
    values["a"][rng.random(4_000) < 0.1] = np.nan
    frame = QualityFrame({name: "numeric" for name in values}, values)
    for names in (["a", "b", "empty"], ["a"], ["empty", "b"]):
        matrix = frame.matrix(names)
        present = ~np.all(np.isnan(matrix), axis=0)
        mean, spread = column_mean_and_sd(frame, names)
        assert np.array_equal(mean[present], np.nanmean(matrix[:, present], axis=0))
        assert np.array_equal(spread[present], np.nanstd(matrix[:, present], axis=0))
        assert not mean[~present].any() and not spread[~present].any()
        monkeypatch.setattr(QualityFrame.row_blocks, "__defaults__", (333,))
        blocked = column_mean_and_sd(frame, names)
        monkeypatch.undo()
        assert np.allclose(blocked[0], mean, rtol=1e-12) and np.allclose(blocked[1], spread, rtol=1e-12)

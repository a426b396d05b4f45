"""Dimension 7: the classifier two-sample test finds lost variance, not a mean shift; results are reproducible."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dmas.quality.calibration import NullCalibration
from dmas.quality.dimension import CheckContext
from dmas.quality.frame import QualityFrame
from dmas.quality.generalization import GeneralizationGap
from tests.quality import judging

ROWS = 3000
LEVELS = tuple(f"level{k:02d}" for k in range(12))
CONTEXT = CheckContext(seed=0, target="y", max_rows=20_000)


def table(n: int, seed: int, target: bool = True) -> QualityFrame:
    """Correlated normals, lognormal, bimodal, exponential, counts, a Zipf categorical and a binary target."""
    rng = np.random.default_rng([seed, 7])
    latent = rng.multivariate_normal(np.zeros(3), [[1.0, 0.6, 0.3], [0.6, 1.0, 0.0], [0.3, 0.0, 1.0]], n)
    values = {"a": latent[:, 0], "b": latent[:, 1], "c": 5.0 + 2.0 * latent[:, 2],
              "d": rng.lognormal(0.0, 0.5, n), "e": np.where(rng.random(n) < 0.4, rng.normal(3, 0.8, n),
                                                             rng.normal(-2, 0.6, n)), "f": rng.exponential(2.0, n),
              "k": rng.poisson(3.0, n).astype(np.float64)}
    kinds = dict.fromkeys(values, "numeric")
    shares = 1.0 / np.arange(1, 13) ** 1.3
    values["g"] = rng.choice(12, n, p=shares / shares.sum()).astype(np.int32)
    kinds["g"], levels = "categorical", {"g": LEVELS}
    if target:
        logit = latent[:, 0] + 0.4 * values["e"] - 0.8 * (values["g"] == 0)
        values["y"] = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int32)
        kinds["y"], levels["y"] = "boolean", ("false", "true")
    return QualityFrame(kinds, values, levels, target="y" if target else None)


def shrunk(frame: QualityFrame, factor: float) -> QualityFrame:
    """Every continuous column's spread times `factor` around its mean."""
    return judging.with_values(frame, {name: frame.values[name].mean()
                                       + factor * (frame.values[name] - frame.values[name].mean())
                                       for name in frame.continuous()})


reference, calibration = judging.calibrated_fixtures(GeneralizationGap, lambda: table(ROWS, 1), ROWS, CONTEXT)


def judged(calibration: NullCalibration, reference: QualityFrame, candidate: QualityFrame) -> dict:
    return judging.by_name(judging.judged(GeneralizationGap(), calibration, reference, candidate, CONTEXT))


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_a_clean_sample_is_not_flagged(calibration, reference, seed):
    found = judged(calibration, reference, table(ROWS, seed))
    assert set(found) == {"generalization_gap", "c2st_auc"}
    assert not judging.flagged_names(found)
    assert abs(found["c2st_auc"].statistic.evidence["auc"] - 0.5) < 0.05


def test_lost_variance_is_told_apart_by_the_two_sample_test(calibration, reference):
    found = judged(calibration, reference, shrunk(table(ROWS, 5), 0.7))
    c2st = found["c2st_auc"]
    assert c2st.flagged and c2st.statistic.finding == "collapse"
    assert c2st.statistic.value > c2st.threshold and c2st.statistic.evidence["auc"] > 0.7


def test_a_mean_shift_is_drift_not_collapse(calibration, reference):
    candidate = table(ROWS, 6)
    candidate = judging.with_values(candidate, {"a": candidate.values["a"] + 1.0, "d": candidate.values["d"] + 0.5,
                                                "e": candidate.values["e"] + 0.3, "k": candidate.values["k"] + 2.0})
    found = judged(calibration, reference, candidate)
    assert not judging.flagged_names(found)
    assert found["c2st_auc"].statistic.evidence["aligned_columns"] == ["a", "d", "e", "k"]
    details = GeneralizationGap().describe(reference, candidate, CONTEXT)
    assert details["raw_c2st_auc"] > 0.7  # the unaligned test sees the shift; it is not what is calibrated


def test_a_shift_too_small_to_move_is_not_collapse_either(calibration, reference):
    candidate = table(ROWS, 10)
    candidate = judging.with_values(candidate, {"a": candidate.values["a"] + 0.05, "e": candidate.values["e"] + 0.05})
    found = judged(calibration, reference, candidate)
    assert found["c2st_auc"].statistic.evidence["aligned_columns"] == []  # within noise: compared as it is
    assert not judging.flagged_names(found)


def test_the_report_names_the_column_that_gives_the_candidate_away(reference):
    candidate = table(ROWS, 7)
    candidate = judging.with_values(candidate, {"e": 0.5 * candidate.values["e"]})
    columns = GeneralizationGap().describe(reference, candidate, CONTEXT)["discriminating_columns"]
    assert next(iter(columns)) == "e"


def test_without_a_target_the_task_is_self_supervised_and_says_so():
    reference, candidate = table(1500, 1, target=False), table(1500, 2, target=False)
    dimension = GeneralizationGap()
    gap = {s.name: s for s in dimension.statistics(reference, candidate, CONTEXT)}["generalization_gap"]
    assert gap.columns == ("a",) and gap.evidence["metric"] == "r2" and np.isfinite(gap.value)
    notes = dimension.describe(reference, candidate, CONTEXT)["notes"]
    assert any("self-supervised" in note and "'a'" in note for note in notes)


def test_missing_values_and_tiny_tables_do_not_break_it(reference):
    candidate = table(ROWS, 8)
    rng = np.random.default_rng(0)
    a, g = candidate.values["a"].copy(), candidate.values["g"].copy()
    a[rng.random(ROWS) < 0.1], g[rng.random(ROWS) < 0.1] = np.nan, -1
    statistics = GeneralizationGap().statistics(reference, judging.with_values(candidate, {"a": a, "g": g}), CONTEXT)
    assert all(np.isfinite(s.value) for s in statistics)
    tiny = GeneralizationGap().statistics(reference, candidate.take(np.arange(5)), CONTEXT)
    assert [s.key for s in tiny] == [s.key for s in statistics] and all(np.isnan(s.value) for s in tiny)


def test_the_same_inputs_give_the_same_numbers_twice(reference):
    candidate = shrunk(table(ROWS, 9), 0.9)
    runs = [(GeneralizationGap().statistics(reference, candidate, CONTEXT),
             GeneralizationGap().describe(reference, candidate, CONTEXT)) for _ in range(2)]
    assert repr(runs[0]) == repr(runs[1])


def test_one_or_two_cpus_give_the_same_numbers():
    script = ("import sys; sys.path.insert(0, sys.argv[1]); from test_generalization import *;"
              "s = GeneralizationGap().statistics(table(1500, 1), shrunk(table(1500, 2), 0.9), CONTEXT);"
              "print([x.value.hex() for x in s])")
    outputs = []
    for threads in ("1", "2"):
        env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads}
        done = subprocess.run([sys.executable, "-c", script, str(Path(__file__).parent)], env=env, check=True,
                              capture_output=True, text=True, cwd=Path(__file__).parents[2])
        outputs.append(json.loads(done.stdout.strip().replace("'", '"')))
    assert outputs[0] == outputs[1]

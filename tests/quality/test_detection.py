"""The whole collapse check on planted collapse at the issue's goal: 20,000 rows, each main-goal
severity found and attributed to the right dimension and column, a mean shift reported as drift
only, and clean resamples not flagged. (The bench runs the full ladders and 100 clean resamples.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from dmas.quality.check import run_check
from dmas.quality.columns import encode_pair
from dmas.quality.config import CollapseCheckConfig
from dmas.quality.planted import LADDERS, attributed, reference_table
from dmas.quality.registry import DIMENSION_NAMES, MEMORIZATION

N = 20_000
REFERENCE_SEED = 0
CANDIDATE_SEED = 1
CLEAN_SEEDS = (101, 102, 103, 104, 105)
COLLAPSE_GOALS = sorted(name for name, ladder in LADDERS.items() if ladder.goal is not None
                        and ladder.finding == "collapse")


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return reference_table(N, REFERENCE_SEED)


@pytest.fixture(scope="module")
def null_cache(tmp_path_factory) -> Path:
    """One calibration for the module: every candidate has the reference's row count."""
    return tmp_path_factory.mktemp("nulls")


def check(reference: pd.DataFrame, candidate: pd.DataFrame, null_cache: Path) -> dict[str, Any]:
    """The JSON report of a check of `candidate` against `reference`, as the CLI would produce it."""
    pair = encode_pair(pa.Table.from_pandas(reference, preserve_index=False),
                       pa.Table.from_pandas(candidate, preserve_index=False), target="target", order="t")
    return run_check(pair.reference, pair.candidate, CollapseCheckConfig(cache_dir=str(null_cache))).report()


def flagged(report: dict[str, Any]) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """The report's flags in short, for assertion messages."""
    return [(flag["dimension"], flag["finding"], flag["evidence"]["statistic"], tuple(flag["columns"]))
            for flag in report["flags"]]


def test_ladders_name_dimensions_the_check_has():
    known = {*DIMENSION_NAMES, MEMORIZATION.name}
    for name, ladder in LADDERS.items():
        assert set(ladder.dimensions) <= known, name


@pytest.mark.slow
@pytest.mark.parametrize("name", COLLAPSE_GOALS)
def test_main_goal_collapse_is_found_on_the_right_dimension_and_column(reference, null_cache, name):
    ladder = LADDERS[name]
    report = check(reference, ladder.corrupt(reference, ladder.goal, CANDIDATE_SEED), null_cache)
    assert report["collapse_detected"], flagged(report)
    assert attributed(report, ladder), (ladder.dimensions, ladder.columns, flagged(report))


@pytest.mark.slow
def test_mean_shift_is_drift_and_not_collapse(reference, null_cache):
    ladder = LADDERS["mean_shift"]
    report = check(reference, ladder.corrupt(reference, ladder.goal, CANDIDATE_SEED), null_cache)
    assert report["drift_detected"] and not report["collapse_detected"], flagged(report)
    assert attributed(report, ladder), flagged(report)


@pytest.mark.slow
@pytest.mark.parametrize("seed", CLEAN_SEEDS)
def test_a_clean_resample_is_not_flagged(reference, null_cache, seed):
    report = check(reference, reference_table(N, seed), null_cache)
    assert not report["collapse_detected"] and not report["drift_detected"], flagged(report)

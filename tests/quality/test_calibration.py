"""`NullCalibration`'s draws: the same values whether they run in this process or on worker processes."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from dmas.quality import calibration, planted
from dmas.quality.columns import encode_pair
from dmas.quality.config import CollapseCheckConfig
from dmas.quality.dimension import CheckContext
from dmas.quality.frame import QualityFrame, RowsOf
from dmas.quality.registry import MEMORIZATION, dimensions

ROWS = 800
CONTEXT = CheckContext(seed=0, target="target", max_rows=20_000)
# one dimension of each null sampling, and the ones that fit models (HGB's OpenMP, the torch probe)
CHOSEN = ["distribution_fidelity", "gradient_health", "spectral_coherence", "generalization_gap"]


@pytest.fixture(scope="module")
def reference() -> QualityFrame:
    table = pa.Table.from_pandas(planted.reference_table(ROWS, 0), preserve_index=False)
    return encode_pair(table, table, target="target", order="t").reference


@pytest.mark.slow
def test_null_draws_are_the_same_on_one_process_and_on_two(reference, monkeypatch):
    monkeypatch.setattr(calibration, "PARALLEL_MIN_WORK", 0)  # a small table would stay in this process
    chosen = [*dimensions(CHOSEN), MEMORIZATION()]
    here = calibration.null_departures(reference, ROWS // 2, chosen, CONTEXT, 30, 0, workers=1)
    spread = calibration.null_departures(reference, ROWS // 2, chosen, CONTEXT, 30, 0, workers=2)
    assert [sorted(found) for found in here] == [sorted(found) for found in spread]
    assert all(len(values) == 30 for found in here for values in found.values() if values)
    assert here == spread  # the floats themselves, in draw order


def test_a_small_table_draws_in_this_process_and_workers_bound_the_rest():
    assert calibration.draw_processes(1500, 1500, workers=2) == 1
    assert calibration.draw_processes(20_000, 20_000, workers=2) == 2
    assert calibration.draw_processes(20_000, 20_000, workers=1) == 1
    assert calibration.draw_processes(20_000, 20_000) == calibration.default_workers()
    with pytest.raises(ValueError):
        CollapseCheckConfig(workers=0)


def test_a_take_reads_the_rows_it_names_and_a_take_of_it_the_original_rows(reference):
    rng = np.random.default_rng(3)
    first, second = rng.permutation(ROWS)[:500], rng.integers(0, 500, 300)
    taken = reference.take(first).take(second)
    assert isinstance(taken.values, RowsOf) and taken.values.base is reference.values
    assert taken.n_rows == 300 and taken.names == reference.names
    for name in reference.names:
        expected = reference.values[name][first][second]
        assert taken.values[name].dtype == expected.dtype
        assert np.array_equal(taken.values[name], expected, equal_nan=True)
    assert reference.take(np.arange(0)).n_rows == 0


def test_a_check_reports_the_same_with_its_draws_on_workers_while_it_measures_the_candidate():
    from dmas.quality.check import run_check

    frame = planted.reference_table(2500, 0)
    pair = encode_pair(pa.Table.from_pandas(frame, preserve_index=False),
                       pa.Table.from_pandas(planted.variance_shrink(frame, 0.5, 1), preserve_index=False),
                       target="target", order="t")
    fast = ["distribution_fidelity", "correlation_preservation", "statistical_consistency"]
    reports = [run_check(pair.reference, pair.candidate, CollapseCheckConfig(dimensions=fast, workers=workers))
               .report() for workers in (1, 2)]
    assert reports[0] == reports[1] and reports[0]["flags"]


def test_a_frame_travels_to_a_worker_without_what_it_derived(reference):
    import pickle

    reference.present_sorted("x1")
    taken = reference.take(np.arange(10))
    taken.values["x1"]
    back, back_taken = pickle.loads(pickle.dumps(reference)), pickle.loads(pickle.dumps(taken))
    assert back.kinds == reference.kinds and back.levels == reference.levels and back.order == reference.order
    assert all(np.array_equal(back.values[name], reference.values[name], equal_nan=True) for name in reference.names)
    assert not back._derived and not back_taken.values._gathered
    assert np.array_equal(back_taken.values["x1"], taken.values["x1"])


def test_a_big_take_keeps_no_sorts_and_reads_the_same_values(monkeypatch):
    """A null draw's take of more than CHUNK_ROWS rows does not keep its sorts (a million-row draw would hold
    a sorted copy of every column), and a column read once is not kept; a small take keeps its sorts."""
    from dmas.quality import frame as frame_module

    rng = np.random.default_rng(2)
    whole = QualityFrame({"x": "numeric"}, {"x": rng.standard_normal(3_000)})
    rows = rng.integers(0, 3_000, 2_000)
    small = whole.take(rows)
    small.present_sorted("x")
    assert "x" in small.values._gathered and small._derived
    monkeypatch.setattr(frame_module, "CHUNK_ROWS", 1_000)
    big = whole.take(rows)
    assert np.array_equal(big.read_once("x"), small.values["x"]) and not big.values._gathered
    assert np.array_equal(big.present_sorted("x"), small.present_sorted("x")) and not big._derived

"""Spectral coherence finds a low-pass filter on the ordered column in its high bands, reads rows in
time order whatever the file order, leaves clean samples, shifts and rescalings alone, judged by the
real calibration."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage, signal

from dmas.quality.calibration import NullCalibration
from dmas.quality.dimension import CheckContext
from dmas.quality.frame import QualityFrame
from dmas.quality.spectral import BANDS, FREQUENCIES, SEGMENT, SpectralCoherence, power_spectrum
from tests.quality import judging

N = 20_000
REPORT_STATISTICS = 300  # about a full report's count: thresholds as strict as in a real check
CONTEXT = CheckContext(seed=0, target=None, max_rows=20_000)
KINDS = {"signal": "numeric", "noise": "numeric", "t": "datetime", "level": "categorical"}


def sample(seed: int, n: int = N) -> dict[str, np.ndarray]:
    """`signal`: sinusoids at 0.02 and 0.075 cycles per row (random phases) plus white noise, in time order."""
    rng = np.random.default_rng(seed)
    rows = np.arange(n)
    phases = rng.uniform(0.0, 2.0 * np.pi, 2)
    periodic = np.sin(2 * np.pi * 0.02 * rows + phases[0]) + 0.6 * np.sin(2 * np.pi * 0.075 * rows + phases[1])
    return {"signal": periodic + rng.normal(0.0, 0.7, n), "noise": rng.standard_normal(n),
            "t": 1.7e9 + 0.1 * rows, "level": rng.integers(0, 3, n).astype(np.int32)}


def frame(values: dict[str, np.ndarray], order: str | None = "t", shuffle: int | None = None) -> QualityFrame:
    """The rows as a file would hold them: in time order, or shuffled with seed `shuffle`."""
    if shuffle is not None:
        rows = np.random.default_rng(shuffle).permutation(len(values["signal"]))
        values = {name: array[rows] for name, array in values.items()}
    return judging.frame_of(values, KINDS, {"level": ("a", "b", "c")}, order=order)


def low_pass(values: dict[str, np.ndarray], window: int) -> dict[str, np.ndarray]:
    return {**values, "signal": ndimage.uniform_filter1d(values["signal"], size=window, mode="nearest")}


reference, calibration = judging.calibrated_fixtures(SpectralCoherence, lambda: frame(sample(0), shuffle=1), N, CONTEXT)


def flagged(reference, calibration, candidate) -> set[tuple[str, ...]]:
    """(statistic, *columns) of every flagged statistic."""
    return judging.flagged_keys(judging.judged(SpectralCoherence(), calibration, reference, candidate, CONTEXT,
                                               REPORT_STATISTICS))


@pytest.mark.parametrize("window", [3, 5])
def test_a_low_pass_on_the_ordered_column_flags_its_high_bands(reference, calibration, window):
    found = flagged(reference, calibration, frame(low_pass(sample(2), window), shuffle=3))
    assert {(f"log_power_ratio_band{BANDS}", "signal"), ("spectral_distance", "signal")} <= found
    assert {tuple(columns) for _, *columns in found} == {("signal",)}


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_clean_independent_samples_flag_nothing(reference, calibration, seed):
    assert flagged(reference, calibration, frame(sample(seed), shuffle=seed)) == set()


def test_a_shift_and_a_rescaling_flag_nothing(reference, calibration):
    values = sample(7)
    values = {**values, "signal": 3.0 * values["signal"] + 40.0, "noise": values["noise"] - 5.0}
    assert flagged(reference, calibration, frame(values, shuffle=8)) == set()


def test_rows_are_read_in_time_order_whatever_the_file_order(reference):
    dimension = SpectralCoherence()
    values = low_pass(sample(9), 5)
    in_order = dimension.statistics(reference, frame(values), CONTEXT)
    shuffled = dimension.statistics(reference, frame(values, shuffle=10), CONTEXT)
    assert [(s.key, s.value) for s in in_order] == [(s.key, s.value) for s in shuffled]
    assert "t" not in dimension.describe(reference, frame(values), CONTEXT)["spectra"]


def test_without_an_order_column_the_file_order_is_compared_and_a_note_says_so():
    reference = frame(sample(11), order=None)
    dimension = SpectralCoherence()
    calibration = NullCalibration().fit(reference, N, [dimension], CONTEXT)
    shuffled = frame(sample(12), order=None, shuffle=13)  # the same rows, but in no time order: white spectra
    found = flagged(reference, calibration, shuffled)
    assert ("spectral_distance", "signal") in found and ("spectral_distance", "noise") not in found
    assert dimension.describe(reference, shuffled, CONTEXT)["notes"] == [
        "no order column declared: spectra of the rows in file order"]


def test_identical_inputs_give_identical_values_and_ideal_statistics(reference):
    dimension = SpectralCoherence()
    candidate = frame(sample(14), shuffle=15)
    first, second = (dimension.statistics(reference, candidate, CONTEXT) for _ in range(2))
    assert [(s.key, repr(s.value), s.evidence) for s in first] == [(s.key, repr(s.value), s.evidence) for s in second]
    keys = [s.key for s in first]
    assert keys == [s.key for s in dimension.statistics(reference, reference, CONTEXT)]
    assert len(keys) == 2 * (BANDS + 1)  # signal and noise: the order column and the categorical have none
    assert all(s.value == 0.0 for s in dimension.statistics(reference, reference, CONTEXT))


def test_short_constant_and_missing_series_never_crash():
    dimension = SpectralCoherence()
    short = frame(sample(16, n=SEGMENT - 1))
    assert all(np.isnan(s.value) for s in dimension.statistics(short, short, CONTEXT))
    values = sample(17, n=2_000)
    values["noise"] = np.full(2_000, 4.0)
    values["signal"][::7] = np.nan
    statistics = {s.key: s.value for s in dimension.statistics(frame(values), frame(sample(18, n=2_000)), CONTEXT)}
    assert np.isnan(statistics["spectral_distance:noise"]) and np.isfinite(statistics["spectral_distance:signal"])
    levels_only = QualityFrame({"level": "categorical"}, {"level": values["level"]}, {"level": ("a", "b", "c")})
    assert dimension.statistics(levels_only, levels_only, CONTEXT) == []


def test_describe_gives_both_normalised_spectra_per_column(reference):
    details = SpectralCoherence().describe(reference, frame(low_pass(sample(19), 5)), CONTEXT)
    assert set(details) == {"spectra", "notes"} and details["notes"] == ["rows in time order of column 't'"]
    assert sorted(details["spectra"]) == ["noise", "signal"]
    curve = details["spectra"]["signal"]
    assert set(curve) == {"frequencies", "reference", "candidate"}
    assert len(curve["frequencies"]) == len(curve["reference"]) == len(curve["candidate"]) == SEGMENT // 2
    assert sum(curve["reference"]) == pytest.approx(1.0, abs=1e-4)
    peak = curve["frequencies"][int(np.argmax(curve["reference"]))]
    assert peak == pytest.approx(0.02, abs=1.0 / SEGMENT)
    high = [i for i, f in enumerate(curve["frequencies"]) if f > 0.3]
    assert sum(curve["candidate"][i] for i in high) < 0.1 * sum(curve["reference"][i] for i in high)


def test_power_spectrum_is_welchs_normalised():
    x = np.cumsum(np.random.default_rng(20).standard_normal(5_003))
    _, welch = signal.welch(x, nperseg=SEGMENT, noverlap=SEGMENT // 2, window="hann", detrend="linear")
    assert np.allclose(power_spectrum(x), welch[1:] / welch[1:].sum(), rtol=1e-9)
    assert len(FREQUENCIES) == SEGMENT // 2 and np.isnan(power_spectrum(np.arange(1_000.0))).all()

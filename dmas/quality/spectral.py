"""Dimension 6, spectral coherence: does each ordered column still vary over time as it did?

A generator can match every marginal and correlation and still smooth a series (a low-pass) or
replace its rhythm with noise. With the rows in time order (sorted by the declared order column,
else as the file has them), each continuous column's power spectrum is estimated Welch-style:
SEGMENT-row segments, half overlapping, Hann window, linear trend removed per segment, the periodogram
averaged, normalised to unit total power (a change of scale or level belongs to other dimensions),
and summed into BANDS log-spaced frequency bands. Statistics per column: the log power ratio in
each band (0 when unchanged, either sign a finding) and the root mean square of those ratios.

Null draws are made of whole blocks of consecutive rows of the reference in time order (`block`):
each part is a stretch of the series, so the null spreads like two independent stretches would. Row
by row splits interleave one realisation (both halves share its noise and see each frequency at
twice its rate) and flagged clean candidates on any non-white series (measured at 20,000 rows, 300
statistics in the report: 2 in 30 on the planted `signal`, 7 in 40 on two sinusoids in noise, 5 in
20 on an AR(1) of 0.9; with blocks 0 in 30, 1 in 40, 0 in 20). Bootstrap draws are worse: sorted,
their repeated rows smooth every series. Without an order column the rows are compared in file order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import signal

from dmas.quality.dimension import CheckContext, Dimension, Statistic, rounded
from dmas.quality.frame import QualityFrame

SEGMENT = 256  # rows per Welch segment: the lowest band is one cycle per segment
BANDS = 8
NO_POWER = 1e-12  # power left after detrending, relative to before, below which a series has no spectrum
FREQUENCIES = np.fft.rfftfreq(SEGMENT)[1:]  # cycles per row, DC left out (removed by the detrend)
EDGES = np.geomspace(1.0 / SEGMENT, 0.5, BANDS + 1)
BAND = np.minimum(np.searchsorted(EDGES, FREQUENCIES, side="right") - 1, BANDS - 1)  # band of each frequency
_WINDOW = signal.get_window("hann", SEGMENT)
_RAMP = (np.arange(SEGMENT) - (SEGMENT - 1) / 2) / np.sqrt(np.sum((np.arange(SEGMENT) - (SEGMENT - 1) / 2) ** 2))


class SpectralCoherence(Dimension):
    """Per column, band-by-band log power ratios of the normalised Welch spectrum, and their RMS."""

    name = "spectral_coherence"
    number = 6
    title = "Spectral coherence"
    null_sampling = "block"  # whole runs of consecutive rows: a split row by row interleaves one series

    def statistics(self, reference: QualityFrame, candidate: QualityFrame, context: CheckContext) -> list[Statistic]:
        found = []
        for name, spectra in _spectra(reference, candidate).items():
            before, after = (_bands(spectrum) for spectrum in spectra)
            ratios = np.log(after / before)
            for band, ratio in enumerate(ratios):
                evidence = {"low_frequency": rounded(EDGES[band]), "high_frequency": rounded(EDGES[band + 1]),
                            "reference": rounded(before[band]), "candidate": rounded(after[band])}
                found.append(Statistic(f"log_power_ratio_band{band + 1}", (name,), float(ratio), 0.0, "two_sided",
                                       evidence=evidence))
            worst = int(np.argmax(np.abs(ratios))) + 1 if np.isfinite(ratios).all() else None
            found.append(Statistic("spectral_distance", (name,), float(np.sqrt(np.mean(ratios ** 2))), 0.0, "higher",
                                   evidence={"worst_band": worst}))
        return found

    def describe(self, reference: QualityFrame, candidate: QualityFrame, context: CheckContext) -> dict[str, Any]:
        """Both sides' normalised spectra per column (frequencies in cycles per row)."""
        frequencies = [rounded(f) for f in FREQUENCIES]
        spectra = {name: {"frequencies": frequencies, "reference": [rounded(v) for v in before],
                          "candidate": [rounded(v) for v in after]}
                   for name, (before, after) in _spectra(reference, candidate).items()}
        if reference.order is None:
            notes = ["no order column declared: spectra of the rows in file order"]
        else:
            notes = [f"rows in time order of column {reference.order!r}"]
        return {"spectra": spectra, "notes": notes}


def power_spectrum(values: np.ndarray) -> np.ndarray:
    """Welch power at FREQUENCIES of a series (NaN rows left out), normalised to unit total power;
    NaN when the series is shorter than one segment or has no power.

    Same as scipy.signal.welch(nperseg=SEGMENT, detrend="linear") up to its constant factor, in numpy
    reductions (a fifth of its time here, and no BLAS, so thread counts cannot change a bit)."""
    values = values[~np.isnan(values)]
    if len(values) < SEGMENT:
        return np.full(len(FREQUENCIES), np.nan)
    segments = np.lib.stride_tricks.sliding_window_view(values, SEGMENT)[::SEGMENT // 2]
    segments = segments - segments.mean(axis=1, keepdims=True)
    spread = np.sum(segments ** 2)
    segments = segments - np.einsum("ks,s->k", segments, _RAMP)[:, None] * _RAMP  # linear trend removed
    if not np.sum(segments ** 2) > NO_POWER * spread:  # constant, or a straight line (a time stamp)
        return np.full(len(FREQUENCIES), np.nan)
    power = np.mean(np.abs(np.fft.rfft(segments * _WINDOW, axis=1)) ** 2, axis=0)[1:]
    power[:-1] *= 2.0  # one-sided: every frequency but Nyquist stands for its negative twin too
    return power / power.sum()


def _spectra(reference: QualityFrame, candidate: QualityFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{column: (reference spectrum, candidate spectrum)} for every continuous column but the order column."""
    reference, candidate = reference.ordered(), candidate.ordered()
    return {name: (power_spectrum(reference.read_once(name)), power_spectrum(candidate.read_once(name)))
            for name in reference.continuous() if name != reference.order}


def _bands(spectrum: np.ndarray) -> np.ndarray:
    """Share of the total power in each band (NaN where a share is zero: no log ratio)."""
    shares = np.bincount(BAND, weights=spectrum, minlength=BANDS)
    return np.where(shares > 0, shares, np.nan)

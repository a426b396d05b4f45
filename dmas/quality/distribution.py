"""Dimension 1, distribution fidelity: does each column, on its own, keep the reference's distribution?

Collapse shows first in single columns: variance shrinks, tails thin out, rare categories vanish.
Every continuous column gets shape statistics that a shift of location cannot move (KS, Wasserstein
and tail mass beyond the reference's 1%/99% and 0.5%/99.5% quantiles, each side first centred on
its own `centre`; variance and IQR ratios; L-skewness and L-kurtosis; the share of the most frequent
value, which finds a column stuck at one value), so a pure shift never reads as collapse; the shift
itself is measured by two drift statistics (standardised mean difference, median shift). Every
discrete column gets the total variation distance, the coverage of the reference's levels and the
mass kept on its rare levels, so one dropped level of a few percent is found.

Skewness and kurtosis are L-moment ratios (Hosking 1990): they estimate the same shape as the
classical third and fourth moments (both are in the evidence) but are root-n noisy for every
distribution with a finite variance, where the classical kurtosis of a lognormal column swings by
whole units between clean samples and would make its threshold meaningless.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dmas.quality.dimension import CheckContext, Dimension, Statistic, rounded
from dmas.quality.frame import QualityFrame

MIN_VALUES = 8  # fewer non-missing values on a side: the column's statistics are NaN
CLIP = 0.001  # variance and Wasserstein distance only see the reference's 0.1%-99.9% range
TAILS = {"tail": 0.01, "far_tail": 0.005}  # tail mass beyond the reference's 1%/99% and 0.5%/99.5% quantiles
IQR_TO_SD = 1.349  # the IQR of a normal distribution in standard deviations
RARE_SHARE = 0.05  # a level under 5% of the reference is rare
MIN_LEVEL_COUNT = 5  # coverage checks levels seen at least this often in the reference...
MIN_EXPECTED = 20  # ...and expected at least this often in the candidate (absent by chance: e^-20)
BINS, HISTOGRAM_RANGE, MAX_LEVELS = 30, (0.005, 0.995), 30  # picture data for the report


class DistributionFidelity(Dimension):
    """Per-column shape (collapse) and location (drift) statistics, continuous and discrete."""

    name = "distribution_fidelity"
    number = 1
    title = "Distribution fidelity"

    def statistics(self, reference: QualityFrame, candidate: QualityFrame, context: CheckContext) -> list[Statistic]:
        found: list[Statistic] = []
        for column in shared_columns(reference, candidate, reference.continuous()):
            found += continuous_statistics(column, reference.present_sorted(column), candidate.present_sorted(column))
        for column in shared_columns(reference, candidate, reference.discrete()):
            found += discrete_statistics(column, reference.levels.get(column, ()), reference.values[column],
                                         candidate.values[column])
        return found

    def describe(self, reference: QualityFrame, candidate: QualityFrame, context: CheckContext) -> dict[str, Any]:
        """Histograms of continuous columns on 30 shared bins, level shares of discrete ones."""
        histograms = {column: histogram(reference.present_sorted(column), candidate.present_sorted(column))
                      for column in shared_columns(reference, candidate, reference.continuous())}
        categories = {column: category_shares(reference.levels.get(column, ()), reference.values[column],
                                              candidate.values[column])
                      for column in shared_columns(reference, candidate, reference.discrete())}
        return {"histograms": {k: v for k, v in histograms.items() if v is not None},
                "categories": {k: v for k, v in categories.items() if v is not None}}


def shared_columns(reference: QualityFrame, candidate: QualityFrame, names: list[str]) -> list[str]:
    """The reference's columns among `names` that the candidate has with the same kind."""
    return [name for name in names if candidate.kinds.get(name) == reference.kinds[name]]


def present_sorted(values: np.ndarray) -> np.ndarray:
    """The non-missing values, sorted ascending (float64); infinities count as missing."""
    values = np.asarray(values, dtype=np.float64)
    return np.sort(values[np.isfinite(values)])


def centre(sorted_values: np.ndarray) -> float:
    """Where a side is centred before shapes are compared: the sample value nearest its interquartile mean.

    The interquartile (25%-trimmed) mean is as robust as the median for heavy tails and far less noisy
    where the median falls between two modes (noise in the centre is noise in KS and the tails);
    snapping it to a sample value keeps integer-valued columns on their lattice, where an off-lattice
    centre would misalign the two sides' atoms. A pure shift moves it by exactly the shift.
    """
    n = len(sorted_values)
    trimmed = float(np.mean(sorted_values[n // 4:n - n // 4]))
    at = int(np.clip(np.searchsorted(sorted_values, trimmed), 1, n - 1))
    below, above = sorted_values[at - 1], sorted_values[at]
    return float(below if trimmed - below <= above - trimmed else above)


def centred_pair(reference: np.ndarray, candidate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both sorted samples minus their own `centre`, on one grid of 10 significant digits.

    The grid makes atoms that a shift moved coincide again: (k + s) - (c + s) is k - c only up to a
    rounding error, and an atom split by one ulp between the sides would read as its whole mass in KS.
    """
    shifted = reference - centre(reference), candidate - centre(candidate)
    size = max(float(np.max(np.abs(side[[0, -1]]))) for side in shifted)
    if not size > 0:
        return shifted
    decimals = 9 - int(np.floor(np.log10(size)))
    return np.round(shifted[0], decimals), np.round(shifted[1], decimals)


def quantile(sorted_values: np.ndarray, q: float) -> float:
    """The q-quantile of sorted values (linear interpolation, numpy's default), without re-sorting."""
    position = q * (len(sorted_values) - 1)
    low = int(np.floor(position))
    high = min(low + 1, len(sorted_values) - 1)
    return float(sorted_values[low] + (position - low) * (sorted_values[high] - sorted_values[low]))


def pooled_counts(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both samples' ECDF counts at their pooled distinct values: (values [U], #a <= value, #b <= value).

    One stable argsort of the two (already sorted) samples is a linear merge; tied values, which every
    bootstrap null draw is full of, collapse to one entry so the counts are exact at every step.
    """
    pooled = np.concatenate([a, b])
    order = np.argsort(pooled, kind="stable")
    pooled = pooled[order]
    from_a = np.cumsum(order < len(a))
    ends = np.append(np.flatnonzero(pooled[1:] != pooled[:-1]), len(pooled) - 1)  # last index of each value
    count_a = from_a[ends]
    return pooled[ends], count_a, ends + 1 - count_a


def resample_counts(reference: QualityFrame, candidate: QualityFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """`pooled_counts(reference sorted, candidate sorted)[1:]` for a candidate whose rows are the reference's
    (a bootstrap null draw): every candidate value is a reference value, so the pooled distinct values are
    the reference's and the candidate's counts are a tally of its rows' values, O(n), no merge."""
    n_distinct, below_r, value_of_row = _distinct_values(reference, column)
    rows = value_of_row[candidate.values.rows]
    below_r = np.arange(1, n_distinct + 1) if below_r is None else below_r
    return below_r, np.cumsum(np.bincount(rows[rows >= 0], minlength=n_distinct))


def _distinct_values(reference: QualityFrame, column: str) -> tuple[int, np.ndarray | None, np.ndarray]:
    """(how many distinct finite values, #values <= each or None when every value is distinct (then they
    are 1, 2, ...: not kept), index of each row's value or -1), once per frame.

    A worker holds these for every continuous column of the reference: the row indices are int32 when
    they fit (a reference below 2**31 rows), and a column of distinct values keeps no counts."""
    def compute() -> tuple[int, np.ndarray | None, np.ndarray]:
        ordered = reference.present_sorted(column)
        ends = np.flatnonzero(ordered[1:] != ordered[:-1])
        ends = np.append(ends, len(ordered) - 1) if len(ordered) else ends
        distinct = ordered[ends]
        values = np.asarray(reference.values[column], dtype=np.float64)
        index = np.int32 if len(distinct) < np.iinfo(np.int32).max else np.int64
        value_of_row = np.where(np.isfinite(values), np.searchsorted(distinct, values), -1).astype(index)
        return len(distinct), None if len(distinct) == len(ordered) else ends + 1, value_of_row

    return reference.derived(f"distinct:{column}", compute)


def l_moment_ratios(sorted_values: np.ndarray) -> tuple[float, float]:
    """L-skewness and L-kurtosis (tau3, tau4) from sorted values: unbiased probability-weighted moments."""
    n = len(sorted_values)
    x = sorted_values - sorted_values[n // 2]  # L-moments beyond the first ignore location: centre for precision
    i = np.arange(n, dtype=np.float64)
    w1 = i / (n - 1)
    w2 = w1 * (i - 1) / (n - 2)
    w3 = w2 * (i - 2) / (n - 3)
    b0, b1, b2, b3 = (float(np.sum(w * x)) / n for w in (1.0, w1, w2, w3))
    l2 = 2 * b1 - b0
    if l2 <= 0:
        return float("nan"), float("nan")
    return (6 * b2 - 6 * b1 + b0) / l2, (20 * b3 - 30 * b2 + 12 * b1 - b0) / l2


def moments(values: np.ndarray) -> tuple[float, float, float, float]:
    """Mean, variance (ddof=1), classical skewness and excess kurtosis (for evidence)."""
    mean = float(np.mean(values))
    centred = values - mean
    squared = centred * centred
    m2 = float(np.sum(squared)) / len(values)
    if m2 <= 0:
        return mean, 0.0, float("nan"), float("nan")
    m3, m4 = float(np.sum(squared * centred)) / len(values), float(np.sum(squared * squared)) / len(values)
    return mean, m2 * len(values) / (len(values) - 1), m3 / m2**1.5, m4 / m2**2 - 3.0


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 and np.isfinite(numerator) else float("nan")


def rounded_evidence(evidence: dict[str, Any]) -> dict[str, Any]:
    """Evidence with floats at 6 significant digits (stable report bytes), NaN as None."""
    return {key: rounded(value) if isinstance(value, float) else value for key, value in evidence.items()}


LOG_SCALE = frozenset({"ks", "wasserstein", "total_variation"})  # distances >= 0: calibrated on their log
CONTINUOUS_STATISTICS = (  # name, ideal, direction, finding
    ("ks", 0.0, "higher", "collapse"),
    ("wasserstein", 0.0, "higher", "collapse"),
    ("variance_ratio", 1.0, "two_sided", "collapse"),
    ("iqr_ratio", 1.0, "two_sided", "collapse"),
    ("tail_low", 1.0, "lower", "collapse"),
    ("tail_high", 1.0, "lower", "collapse"),
    ("far_tail_low", 1.0, "lower", "collapse"),
    ("far_tail_high", 1.0, "lower", "collapse"),
    ("skewness_diff", 0.0, "two_sided", "collapse"),
    ("kurtosis_diff", 0.0, "two_sided", "collapse"),
    ("top_value_share", 0.0, "higher", "collapse"),
    ("std_mean_diff", 0.0, "two_sided", "drift"),
    ("median_shift", 0.0, "two_sided", "drift"),
)


def continuous_statistics(column: str, reference: np.ndarray, candidate: np.ndarray) -> list[Statistic]:
    """The thirteen statistics of one continuous column from both sides' sorted non-missing values."""
    counts = {"reference_values": len(reference), "candidate_values": len(candidate)}
    if min(len(reference), len(candidate)) < MIN_VALUES:
        return [Statistic(name, (column,), float("nan"), ideal, direction, finding, counts, _scale(name))
                for name, ideal, direction, finding in CONTINUOUS_STATISTICS]
    values, evidence = _continuous_values(reference, candidate)
    return [Statistic(name, (column,), float(values[name]), ideal, direction, finding,
                      rounded_evidence({**counts, **evidence[name]}), _scale(name))
            for name, ideal, direction, finding in CONTINUOUS_STATISTICS]


def _scale(name: str) -> str:
    return "log" if name in LOG_SCALE else "linear"


def _continuous_values(ref: np.ndarray, cand: np.ndarray) -> tuple[dict[str, float], dict[str, dict[str, Any]]]:
    levels = sorted({0.25, 0.5, 0.75, *TAILS.values(), *(1 - p for p in TAILS.values())})
    q = {side: {p: quantile(x, p) for p in levels} for side, x in (("r", ref), ("c", cand))}
    (mean_r, var_r, skew_r, kurt_r), (mean_c, var_c, skew_c, kurt_c) = moments(ref), moments(cand)
    iqr_r, iqr_c = q["r"][0.75] - q["r"][0.25], q["c"][0.75] - q["c"][0.25]
    sd_r = float(np.sqrt(var_r))
    scale = iqr_r / IQR_TO_SD if iqr_r > 0 else sd_r  # the reference's spread, robust where it can be
    scale = scale if scale > 0 else float("nan")
    centre_r, centre_c = centre(ref), centre(cand)
    centred_r, centred_c = centred_pair(ref, cand)  # shape only: each side on its own centre
    pooled, below_r, below_c = pooled_counts(centred_r, centred_c)
    clip = quantile(centred_r, CLIP), quantile(centred_r, 1 - CLIP)
    gap = below_r / len(ref) - below_c / len(cand)
    wasserstein = float(np.sum(np.abs(gap[:-1]) * np.diff(np.clip(pooled, *clip))))
    (l_skew_r, l_kurt_r), (l_skew_c, l_kurt_c) = l_moment_ratios(ref), l_moment_ratios(cand)
    top_r, top_c = top_value(ref), top_value(cand)
    values = {
        "ks": float(np.max(np.abs(gap))),
        "wasserstein": wasserstein / scale,
        "variance_ratio": _ratio(*(float(np.var(np.clip(x, *clip), ddof=1)) for x in (centred_c, centred_r))),
        "iqr_ratio": _ratio(iqr_c, iqr_r),
        "skewness_diff": l_skew_c - l_skew_r,
        "kurtosis_diff": l_kurt_c - l_kurt_r,
        "top_value_share": top_c[1] - top_r[1],
        "std_mean_diff": _ratio(mean_c - mean_r, sd_r),
        "median_shift": (q["c"][0.5] - q["r"][0.5]) / scale,
    }
    evidence: dict[str, dict[str, Any]] = {
        "ks": {"reference_centre": centre_r, "candidate_centre": centre_c,
               "note": "each side centred on its own centre (sample value nearest the interquartile mean)"},
        "wasserstein": {"distance": wasserstein, "reference_spread": scale,
                        "note": "each side centred, over the reference's 0.1%-99.9% range, in reference "
                                "spreads (IQR / 1.349)"},
        "variance_ratio": {"reference_variance": var_r, "candidate_variance": var_c,
                           "note": "ratio of the variances of values clipped to the reference's 0.1%-99.9% range "
                                   "(centres aligned), so a few extreme values cannot decide it"},
        "iqr_ratio": {"reference_iqr": iqr_r, "candidate_iqr": iqr_c},
        "skewness_diff": {"reference_l_skewness": l_skew_r, "candidate_l_skewness": l_skew_c,
                          "reference_skewness": skew_r, "candidate_skewness": skew_c},
        "kurtosis_diff": {"reference_l_kurtosis": l_kurt_r, "candidate_l_kurtosis": l_kurt_c,
                          "reference_excess_kurtosis": kurt_r, "candidate_excess_kurtosis": kurt_c},
        "top_value_share": {"reference_value": top_r[0], "reference_share": top_r[1], "candidate_value": top_c[0],
                            "candidate_share": top_c[1], "note": "share of the most frequent value (a spike)"},
        "std_mean_diff": {"reference_mean": mean_r, "candidate_mean": mean_c, "reference_sd": sd_r},
        "median_shift": {"reference_median": q["r"][0.5], "candidate_median": q["c"][0.5], "reference_spread": scale},
    }
    for name, p in TAILS.items():
        for side, level in (("low", p), ("high", 1 - p)):
            cut = quantile(centred_r, level)  # the reference's quantile, relative to its centre
            share_r, share_c = (_beyond(x, cut, side) for x in (centred_r, centred_c))
            values[f"{name}_{side}"] = _ratio(share_c, share_r)
            evidence[f"{name}_{side}"] = {
                "reference_quantile": q["r"][level], "reference_share": share_r, "candidate_share": share_c,
                "note": f"share at or {'below' if side == 'low' else 'above'} the reference's {level:.1%} "
                        "quantile, centres aligned"}
    return values, evidence


def top_value(sorted_values: np.ndarray) -> tuple[float, float]:
    """The most frequent value (the smallest of equals) and its share: a column stuck at one value spikes."""
    starts = np.flatnonzero(np.concatenate([[True], sorted_values[1:] != sorted_values[:-1]]))
    runs = np.diff(np.append(starts, len(sorted_values)))
    longest = int(np.argmax(runs))
    return float(sorted_values[starts[longest]]), float(runs[longest]) / len(sorted_values)


def _beyond(sorted_values: np.ndarray, cut: float, side: str) -> float:
    """Share of sorted values at or below (side "low") or at or above ("high") `cut`: inclusive, so an
    integer column whose 1% quantile is its smallest value still has a tail."""
    if side == "low":
        return float(np.searchsorted(sorted_values, cut, "right")) / len(sorted_values)
    return float(len(sorted_values) - np.searchsorted(sorted_values, cut, "left")) / len(sorted_values)


def level_counts(codes: np.ndarray, n_levels: int) -> np.ndarray:
    """Rows per level code (missing codes -1 left out), at least `n_levels` long."""
    codes = np.asarray(codes)
    present = codes[codes >= 0]
    return np.bincount(present, minlength=n_levels) if len(present) else np.zeros(n_levels, dtype=np.int64)


def both_counts(levels: tuple[str, ...], reference: np.ndarray, candidate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows per level code on each side, over every code either side uses."""
    n_levels = max(len(levels), int(np.max(reference, initial=-1)) + 1, int(np.max(candidate, initial=-1)) + 1)
    return level_counts(reference, n_levels), level_counts(candidate, n_levels)


def level_name(levels: tuple[str, ...], code: int) -> str:
    return levels[code] if code < len(levels) else str(code)


def discrete_statistics(column: str, levels: tuple[str, ...], reference: np.ndarray,
                        candidate: np.ndarray) -> list[Statistic]:
    """Total variation distance, coverage of the reference's levels, mass kept on its rare levels."""
    count_r, count_c = both_counts(levels, reference, candidate)
    rows_r, rows_c = int(count_r.sum()), int(count_c.sum())
    counts = {"reference_values": rows_r, "candidate_values": rows_c}
    if min(rows_r, rows_c) == 0:
        return [Statistic(name, (column,), float("nan"), ideal, direction, "collapse", counts)
                for name, ideal, direction in (("total_variation", 0.0, "higher"),
                                               ("category_coverage", 1.0, "lower"),
                                               ("rare_mass_ratio", 1.0, "lower"))]
    share_r, share_c = count_r / rows_r, count_c / rows_c
    moved = int(np.argmax(np.abs(share_c - share_r)))
    checked = (count_r >= MIN_LEVEL_COUNT) & (share_r * rows_c >= MIN_EXPECTED)
    lost = checked & (count_c == 0)
    rare = (count_r > 0) & (share_r < RARE_SHARE)
    coverage = float(1.0 - lost.sum() / checked.sum()) if checked.any() else float("nan")
    rare_r, rare_c = float(share_r[rare].sum()), float(share_c[rare].sum())
    return [
        Statistic("total_variation", (column,), float(0.5 * np.abs(share_r - share_c).sum()), 0.0, "higher",
                  "collapse", rounded_evidence({**counts, "most_changed_level": level_name(levels, moved),
                                                "reference_share": float(share_r[moved]),
                                                "candidate_share": float(share_c[moved])}), "log"),
        Statistic("category_coverage", (column,), coverage, 1.0, "lower", "collapse",
                  {**counts, "levels_checked": int(checked.sum()), "levels_lost": int(lost.sum()),
                   "lost": [level_name(levels, code) for code in np.flatnonzero(lost)[:10]],
                   "min_reference_count": MIN_LEVEL_COUNT, "min_expected_candidate_count": MIN_EXPECTED}),
        Statistic("rare_mass_ratio", (column,), _ratio(rare_c, rare_r), 1.0, "lower", "collapse",
                  rounded_evidence({**counts, "rare_levels": int(rare.sum()), "reference_share": rare_r,
                                    "candidate_share": rare_c, "rare_below": RARE_SHARE})),
    ]


def histogram(reference: np.ndarray, candidate: np.ndarray) -> dict[str, list] | None:
    """Densities of both sides on 30 bins shared between the pooled 0.5% and 99.5% quantiles (each side's
    density is per unit of the column over all its values, so the few beyond the bins are left out)."""
    if not len(reference) or not len(candidate):
        return None
    pooled = np.sort(np.concatenate([reference, candidate]), kind="stable")
    low, high = quantile(pooled, HISTOGRAM_RANGE[0]), quantile(pooled, HISTOGRAM_RANGE[1])
    if not high > low:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, BINS + 1)
    width = (high - low) / BINS

    def density(values: np.ndarray) -> list:
        return [rounded(v) for v in np.histogram(values, edges)[0] / (len(values) * width)]

    return {"edges": [rounded(edge) for edge in edges], "reference": density(reference),
            "candidate": density(candidate)}


def category_shares(levels: tuple[str, ...], reference: np.ndarray, candidate: np.ndarray) -> dict[str, list] | None:
    """Both sides' shares of the (at most 30) levels most common in the reference, most common first."""
    count_r, count_c = both_counts(levels, reference, candidate)
    if not count_r.sum() or not count_c.sum():
        return None
    share_r, share_c = count_r / count_r.sum(), count_c / count_c.sum()
    shown = np.argsort(-share_r, kind="stable")[:MAX_LEVELS]
    return {"levels": [level_name(levels, int(code)) for code in shown],
            "reference": [rounded(share_r[code]) for code in shown],
            "candidate": [rounded(share_c[code]) for code in shown]}

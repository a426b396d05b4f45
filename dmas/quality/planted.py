"""Planted collapse: a mixed reference table with known properties, and corruptions of a fresh sample of it.

The collapse check's tests, its benchmark and the main job (`dmas demo`) plant each kind of collapse
at a known severity and see whether the check finds it on the right dimension and column (and that
a clean resample is not flagged); a user can corrupt their own table the same way (`candidate=`) to
see what the check would catch on their data. Everything is deterministic from its seed.

`reference_table(n, seed)` draws the table. Every corruption is called as
`corrupt(reference, severity, seed)`: it draws an independent clean candidate of the same size from
the same generator with `seed` (which must differ from the reference's seed, or the candidate is the
reference), or corrupts the `candidate=` given instead (a real table split in halves), and returns it
corrupted. Corruptions that replace rows keep the time-ordered columns `t` and `signal` in place:
they are where a row sits in time, not what the row says. `LADDERS` lists each corruption's
severities as the issue gives them and what a correct check should attribute it to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import ndimage, signal, special, stats

ROW_SECONDS = 0.1  # `t` advances this much per row
SIGNAL_FREQUENCIES = (0.02, 0.075)  # cycles per row of the two sinusoids in `signal` (0.2 Hz and 0.75 Hz)
SIGNAL_AMPLITUDES = (1.0, 0.6)
SIGNAL_AR = 0.5  # AR(1) coefficient of the noise in `signal`
TIME_COLUMNS = ("t", "signal")  # kept in place when a corruption replaces rows
MERCHANTS = tuple(f"m{k:02d}" for k in range(1, 31))
MERCHANT_SHARES = 1.0 / np.arange(1, 31) ** 1.6 / np.sum(1.0 / np.arange(1, 31) ** 1.6)  # Zipf: 48% ... 2.75% ... 0.21%
BIMODAL_MINOR_SHARE = 0.35  # share of the N(3, 0.8) mode; the rest is N(-2, 0.6)
# x1, x2, x3 and log(amount) are one Gaussian: corr(x1, x2) = 0.6, corr(x2, x3) = -0.4, corr(x1, log amount) = 0.3
LATENT_CORRELATION = np.array([[1.0, 0.6, 0.0, 0.3], [0.6, 1.0, -0.4, 0.0],
                               [0.0, -0.4, 1.0, 0.0], [0.3, 0.0, 0.0, 1.0]])
COLUMNS = ("t", "x1", "x2", "x3", "amount", "bimodal", "wait", "merchant", "flag", "signal", "target")


def reference_table(n: int, seed: int) -> pd.DataFrame:
    """`n` rows in time order: correlated normals, lognormal, bimodal, exponential, Zipf categorical,
    binary, an ordered signal with two known frequencies, and a binary target of x1, amount and merchant."""
    rng = np.random.default_rng([seed, 12])
    latent = rng.standard_normal((n, 4)) @ np.linalg.cholesky(LATENT_CORRELATION).T
    x1, x2, x3 = 10.0 + 2.0 * latent[:, 0], -3.0 + latent[:, 1], 5.0 * latent[:, 2]
    log_amount = 3.0 + 0.8 * latent[:, 3]
    minor = rng.random(n) < BIMODAL_MINOR_SHARE
    bimodal = np.where(minor, rng.normal(3.0, 0.8, n), rng.normal(-2.0, 0.6, n))
    wait = rng.exponential(5.0, n)
    merchant = rng.choice(len(MERCHANTS), size=n, p=MERCHANT_SHARES)
    flag = rng.random(n) < 0.3
    rows = np.arange(n)
    periodic = sum(a * np.sin(2 * np.pi * f * rows + phase)
                   for a, f, phase in zip(SIGNAL_AMPLITUDES, SIGNAL_FREQUENCIES, (0.0, 1.0)))
    noise = signal.lfilter([1.0], [1.0, -SIGNAL_AR], rng.normal(0.0, 0.5, n))
    merchant_effect = 0.8 * np.sin(1.7 * np.arange(1, 31))  # fixed: part of the generator, not of the draw
    logit = -0.5 + 0.9 * latent[:, 0] + 0.6 * latent[:, 3] + merchant_effect[merchant]
    target = rng.random(n) < special.expit(logit)
    return pd.DataFrame({
        "t": rows * ROW_SECONDS, "x1": x1, "x2": x2, "x3": x3, "amount": np.exp(log_amount), "bimodal": bimodal,
        "wait": wait, "merchant": np.array(MERCHANTS)[merchant], "flag": flag,
        "signal": periodic + noise, "target": target})


def variance_shrink(reference: pd.DataFrame, factor: float, seed: int, *, candidate: pd.DataFrame | None = None,
                    column: str = "x1") -> pd.DataFrame:
    """`column`'s variance times `factor` around its mean (the mean and every correlation unchanged)."""
    out = _clean(reference, seed, candidate)
    values = out[column].to_numpy()
    out[column] = values.mean() + np.sqrt(factor) * (values - values.mean())
    return out


def tail_truncation(reference: pd.DataFrame, share: float, seed: int, *, candidate: pd.DataFrame | None = None,
                    column: str = "amount") -> pd.DataFrame:
    """The `share` of rows most extreme in `column` (half from each tail, by rank) replaced by rows
    resampled from the rest: the tails beyond the share/2 and 1 - share/2 quantiles are gone."""
    out = _clean(reference, seed, candidate)
    ranks = stats.rankdata(out[column].to_numpy(), method="ordinal") - 1.0
    extremeness = np.abs(ranks - (len(out) - 1) / 2)
    k = round(share * len(out))
    order = np.argsort(-extremeness, kind="stable")
    return _replace_rows(out, order[:k], order[k:], np.random.default_rng([seed, 1]))


def rare_category_drop(reference: pd.DataFrame, share: float, seed: int, *, candidate: pd.DataFrame | None = None,
                       column: str = "merchant") -> pd.DataFrame:
    """Every level of `column` whose reference share is below `share` never occurs: its rows are
    replaced by rows resampled from the levels that remain."""
    out = _clean(reference, seed, candidate)
    kept = rare_levels(reference, share, column=column, rare=False)
    has_kept = out[column].isin(kept).to_numpy()
    return _replace_rows(out, np.flatnonzero(~has_kept), np.flatnonzero(has_kept), np.random.default_rng([seed, 2]))


def rare_levels(reference: pd.DataFrame, share: float, *, column: str = "merchant", rare: bool = True) -> list[str]:
    """The levels of `column` whose reference share is below `share` (or, with rare=False, the others), sorted."""
    shares = reference[column].value_counts(normalize=True)
    return sorted(level for level, value in shares.items() if (value < share) == rare)


def mode_collapse(reference: pd.DataFrame, severity: float, seed: int, *, candidate: pd.DataFrame | None = None,
                  column: str = "bimodal") -> pd.DataFrame:
    """`severity` of the rows in the smaller mode of `column` replaced by rows of the larger one (1 = one mode)."""
    out = _clean(reference, seed, candidate)
    minor_side = minor_mode(reference, column)
    in_minor = minor_side(out[column].to_numpy())
    rng = np.random.default_rng([seed, 3])
    minor_rows = np.flatnonzero(in_minor)
    chosen = np.sort(rng.choice(minor_rows, size=round(severity * len(minor_rows)), replace=False))
    return _replace_rows(out, chosen, np.flatnonzero(~in_minor), rng)


def minor_mode(reference: pd.DataFrame, column: str = "bimodal") -> Callable[[np.ndarray], np.ndarray]:
    """A test `values -> in the smaller mode`: Otsu's split of the reference's values into two modes."""
    values = np.sort(reference[column].to_numpy())
    n = len(values)
    left = np.arange(1, n)
    sums = np.cumsum(values)[:-1]
    between = (sums / left - (values.sum() - sums) / (n - left)) ** 2 * left * (n - left)  # between-class variance
    cut = int(np.argmax(between)) + 1
    split = (values[cut - 1] + values[cut]) / 2
    if cut >= n - cut:
        return lambda x: x > split
    return lambda x: x <= split


def memorization(reference: pd.DataFrame, share: float, seed: int, *,
                 candidate: pd.DataFrame | None = None) -> pd.DataFrame:
    """`share` of the candidate's rows replaced by exact copies of reference rows, each copied into its
    own row number (so a planted table's copies keep their time slot and the rows stay in time order).
    The copies bring their own `signal` noise, so the series is spliced and its spectrum changes too."""
    out = _clean(reference, seed, candidate)
    if len(reference) < len(out):
        raise ValueError(f"the reference has {len(reference)} rows, fewer than the candidate's {len(out)}")
    rng = np.random.default_rng([seed, 4])
    rows = np.sort(rng.choice(len(out), size=round(share * len(out)), replace=False))
    for name in out.columns:
        values = out[name].to_numpy(copy=True)
        values[rows] = reference[name].to_numpy()[rows]
        out[name] = values
    return out


def correlation_change(reference: pd.DataFrame, delta: float, seed: int, *, candidate: pd.DataFrame | None = None,
                       columns: tuple[str, str] = ("x1", "x2")) -> pd.DataFrame:
    """The correlation of the two columns moved by `delta` (normal-score correlation, kept in (-0.99, 0.99)),
    both marginals exactly unchanged: the second column's values are only reordered."""
    out = _clean(reference, seed, candidate)
    first, second = (out[name].to_numpy() for name in columns)
    z1, z2 = _normal_scores(first), _normal_scores(second)
    rho = float(np.corrcoef(z1, z2)[0, 1])
    goal = float(np.clip(rho + delta, -0.99, 0.99))
    residual = (z2 - rho * z1) / np.sqrt(1.0 - rho**2)
    moved = goal * z1 + np.sqrt(1.0 - goal**2) * residual
    reordered = np.empty_like(second)
    reordered[np.argsort(moved, kind="stable")] = np.sort(second)
    out[columns[1]] = reordered
    return out


def localized_bad_rows(reference: pd.DataFrame, share: float, seed: int, *, candidate: pd.DataFrame | None = None,
                       columns: tuple[str, ...] = ("x3", "wait")) -> pd.DataFrame:
    """One block of consecutive rows (`share` of them, in time order) where `columns` are stuck at a
    constant: each column's median, a plausible value, so only the block gives it away."""
    out = _clean(reference, seed, candidate)
    k = round(share * len(out))
    start = int(np.random.default_rng([seed, 5]).integers(0, len(out) - k + 1))
    for name in columns:
        values = out[name].to_numpy(copy=True)
        values[start:start + k] = np.median(values)
        out[name] = values
    return out


def recursive_refit(reference: pd.DataFrame, generations: float, seed: int, *,
                    candidate: pd.DataFrame | None = None) -> pd.DataFrame:
    """`generations` rounds of: fit a Gaussian copula (empirical marginals, normal-score correlation) to
    the table, replace it by a sample of the fit. Tails erode (a sample never leaves the previous
    range), rare levels die out, correlations wander. The time-ordered columns are kept as they were."""
    out = _clean(reference, seed, candidate)
    rng = np.random.default_rng([seed, 6])
    for _ in range(int(generations)):
        out = _copula_sample(out, rng)
    return out


def low_pass(reference: pd.DataFrame, window: float, seed: int, *, candidate: pd.DataFrame | None = None,
             column: str = "signal", order: str = "t") -> pd.DataFrame:
    """`column` smoothed by a centred moving average of `window` rows along `order`: its high
    frequencies are lost, the slow ones kept."""
    out = _clean(reference, seed, candidate)
    rows = np.argsort(out[order].to_numpy(), kind="stable")
    values = out[column].to_numpy(copy=True)
    values[rows] = ndimage.uniform_filter1d(values[rows], size=int(window), mode="nearest")
    out[column] = values
    return out


def mean_shift(reference: pd.DataFrame, shift: float, seed: int, *, candidate: pd.DataFrame | None = None,
               columns: tuple[str, ...] = ("x1", "amount")) -> pd.DataFrame:
    """Drift, not collapse: `shift` reference standard deviations added to `columns`. The joint
    distribution is only translated, so anything computed on centred columns is unchanged."""
    out = _clean(reference, seed, candidate)
    for name in columns:
        out[name] = out[name].to_numpy() + shift * float(reference[name].std())
    return out


@dataclass(frozen=True)
class Ladder:
    """One corruption at the severities the issue lists, and what a correct check should say about it.

    A check attributes it correctly when a flag of `finding` comes from one of `dimensions` and names
    exactly one of `columns` (as a set); empty `columns` accepts any (row-level findings such as copies).
    `goal` is the severity the issue's detection goal is stated at (the drift ladder's is the tests' choice).
    """

    corrupt: Callable[..., pd.DataFrame]
    severities: tuple[float, ...]
    dimensions: tuple[str, ...]
    columns: tuple[tuple[str, ...], ...]
    finding: Literal["collapse", "drift"] = "collapse"
    goal: float | None = None


_SHAPE = ("distribution_fidelity", "entropy_stability", "statistical_consistency")
_CORRELATION = ("correlation_preservation", "entropy_stability")

LADDERS: dict[str, Ladder] = {
    "variance_shrink": Ladder(variance_shrink, (0.95, 0.9, 0.8, 0.7), _SHAPE, (("x1",),), goal=0.9),
    "tail_truncation": Ladder(tail_truncation, (0.005, 0.01, 0.025, 0.05), _SHAPE, (("amount",),), goal=0.01),
    "rare_category_drop": Ladder(rare_category_drop, (0.005, 0.01, 0.03), _SHAPE, (("merchant",),), goal=0.03),
    "mode_collapse": Ladder(mode_collapse, (0.25, 0.5, 1.0), _SHAPE, (("bimodal",),)),
    "memorization": Ladder(memorization, (0.05, 0.1, 0.3), ("memorization", "generalization_gap"), (), goal=0.1),
    "correlation_inflation": Ladder(correlation_change, (0.1, 0.2, 0.3), _CORRELATION, (("x1", "x2"),), goal=0.3),
    "correlation_break": Ladder(correlation_change, (-0.15, -0.3, -0.6), _CORRELATION, (("x1", "x2"),)),
    "localized_bad_rows": Ladder(localized_bad_rows, (0.01, 0.05), _SHAPE, (("x3",), ("wait",))),
    "recursive_refit": Ladder(recursive_refit, (1, 5, 20), ("distribution_fidelity", "correlation_preservation",
                                                            "entropy_stability", "generalization_gap",
                                                            "statistical_consistency"), ()),
    "low_pass": Ladder(low_pass, (3, 5, 9), ("spectral_coherence",), (("signal",),)),
    "mean_shift": Ladder(mean_shift, (0.05, 0.1, 0.25, 0.5), ("distribution_fidelity", "statistical_consistency"),
                         (("x1",), ("amount",)), finding="drift", goal=0.25),
}


def attributed(report: dict[str, Any], ladder: Ladder) -> bool:
    """Whether a collapse-check report (the JSON contract) has a flag that attributes `ladder` correctly."""
    accepted = [set(columns) for columns in ladder.columns]
    return any(flag["finding"] == ladder.finding and flag["dimension"] in ladder.dimensions
               and (not accepted or set(flag["columns"]) in accepted) for flag in report["flags"])


def _clean(reference: pd.DataFrame, seed: int, candidate: pd.DataFrame | None) -> pd.DataFrame:
    """The candidate to corrupt: a copy of the one given, or a fresh draw as large as the reference."""
    return candidate.copy() if candidate is not None else reference_table(len(reference), seed)


def _replace_rows(frame: pd.DataFrame, rows: np.ndarray, donors: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Rows `rows` become copies of rows drawn with replacement from `donors`, except the time columns."""
    chosen = rng.choice(donors, size=len(rows), replace=True)
    for name in frame.columns:
        if name not in TIME_COLUMNS:
            values = frame[name].to_numpy(copy=True)
            values[rows] = values[chosen]
            frame[name] = values
    return frame


def _normal_scores(values: np.ndarray) -> np.ndarray:
    """Ranks mapped to standard normal quantiles (ties share their average rank)."""
    return stats.norm.ppf((stats.rankdata(values) - 0.5) / len(values))


def _copula_sample(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """A sample of a Gaussian copula fitted to `frame`'s non-time columns, as many rows as `frame`.

    Float columns are sampled through their interpolated empirical quantiles; every other column
    (categorical, boolean, integer) enters as codes of its sorted values, sampled through the inverse
    empirical CDF, so it only takes values the data had, at about their frequencies."""
    out = frame.copy()
    names = [name for name in frame.columns if name not in TIME_COLUMNS]
    columns = {}
    for name in names:
        values = frame[name].to_numpy()
        if values.dtype.kind == "f":
            columns[name] = (values.astype(np.float64), None)
        else:
            levels, codes = np.unique(values, return_inverse=True)
            columns[name] = (codes.astype(np.float64), levels)
    scores = np.column_stack([_normal_scores(values) for values, _ in columns.values()])
    correlation = np.corrcoef(scores, rowvar=False) + 1e-9 * np.eye(len(names))
    drawn = stats.norm.cdf(rng.standard_normal((len(frame), len(names))) @ np.linalg.cholesky(correlation).T)
    for j, (name, (values, levels)) in enumerate(columns.items()):
        if levels is None:
            out[name] = np.quantile(values, drawn[:, j], method="linear")
        else:
            out[name] = levels[np.quantile(values, drawn[:, j], method="inverted_cdf").astype(np.int64)]
    return out


WIDE_REGIONS = tuple(f"r{k}" for k in range(1, 9))
WIDE_CHANNELS = ("web", "store", "phone", "partner")
WIDE_CHANNEL_SHARES = (0.55, 0.3, 0.1, 0.05)
WIDE_SKUS = tuple(f"sku{k:03d}" for k in range(1, 201))
WIDE_SKU_SHARES = 1.0 / np.arange(1, 201) ** 1.1 / np.sum(1.0 / np.arange(1, 201) ** 1.1)
WIDE_SIGNUP_START = pd.Timestamp("2020-01-01", tz="UTC")
WIDE_SIGNUP_DAYS = 4 * 365
WIDE_COLUMNS = (*COLUMNS, "score", "x4", "ratio", "uniform", "heavy", "region", "channel", "sku", "visits",
                "active", "signup")


def wide_table(n: int, seed: int) -> pd.DataFrame:
    """`reference_table(n, seed)` and eleven more columns of mixed kinds: 20 value columns besides `t` and
    `target` (the benchmark's wide case). Added: a correlated numeric (`score`, of x1 and amount), a normal
    correlated with x3 (`x4`), gamma, uniform and Student-t (df 3, heavy tails) numerics, three text
    categoricals (8 even regions, 4 skewed channels, 200 Zipf SKUs), a Poisson count (levels), a boolean,
    and a datetime (`signup`, UTC, 2020-2023). The first eleven columns are `reference_table`'s exactly."""
    frame = reference_table(n, seed)
    rng = np.random.default_rng([seed, 13])
    x1, x3, log_amount = frame["x1"].to_numpy(), frame["x3"].to_numpy(), np.log(frame["amount"].to_numpy())
    frame["score"] = 0.5 * (x1 - 10.0) + 0.8 * (log_amount - 3.0) + rng.normal(0.0, 1.0, n)
    frame["x4"] = 0.1 * x3 + rng.normal(0.0, 0.7, n)
    frame["ratio"] = rng.gamma(2.0, 1.5, n)
    frame["uniform"] = rng.random(n)
    frame["heavy"] = rng.standard_t(3.0, n)
    frame["region"] = np.array(WIDE_REGIONS)[rng.integers(0, len(WIDE_REGIONS), n)]
    frame["channel"] = np.array(WIDE_CHANNELS)[rng.choice(len(WIDE_CHANNELS), size=n, p=WIDE_CHANNEL_SHARES)]
    frame["sku"] = np.array(WIDE_SKUS)[rng.choice(len(WIDE_SKUS), size=n, p=WIDE_SKU_SHARES)]
    frame["visits"] = rng.poisson(2.0, n).astype(np.int64)
    frame["active"] = rng.random(n) < 0.6
    seconds = rng.integers(0, WIDE_SIGNUP_DAYS * 86400, n)
    frame["signup"] = WIDE_SIGNUP_START + pd.to_timedelta(seconds, unit="s")
    return frame

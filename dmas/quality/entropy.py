"""Dimension 3, entropy stability: has the candidate lost information the reference carries?

Variance shrinkage, lost modes and columns that stopped depending on each other are the classic
collapse signatures; this dimension measures each as information:

- per column, the candidate's entropy over the reference's: level shares for categorical columns;
  for continuous ones a histogram on bins of one width fixed by the reference (its 0.5%-99.5% range
  over HISTOGRAM_BINS), the same bins on both sides, so the histogram entropy tracks differential
  entropy (a spread shrunk by 0.9 loses log(1/0.9) nats) and a shifted column (drift) keeps it;
- per pair of columns with at least one continuous column, how far the candidate's dependence
  pattern moved from the reference's, continuous columns cut at each side's own quantiles (a copula:
  dependence only, whatever happened to the marginals, which the per-column entropies cover); the
  mutual information of both sides is the evidence. Pairs of categorical columns are dimension 2's;
- the PCA spectrum of the continuous columns, both sides winsorised at their own 0.5%/99.5%
  quantiles, centred on their own means and scaled by the reference's standard deviations, so lost
  variance shows as a lower total and lower eigenvalues and a shift shows nothing.

The order column (time) is left out: it indexes the rows, and its relations to other columns are
trends of one realisation that no resample of the reference can calibrate.

Null draws are disjoint splits of the reference: sample eigenvalues of nearly equal components and
the dependence distance of independent columns sit above the truth by amounts that depend on n,
which two independent halves reproduce and a bootstrap resample does not. Two kinds of statistic
cannot be calibrated from one reference and are avoided: a difference of two mutual informations
near independence (both sit at the corner MI >= 0, and the two halves of a split fall either side
of the reference, so their difference looks still when the reference happens to be closer to
independence than usual), and the entropy ratio of a column whose shares are as even as its noise
(entropy is at its maximum there and moves only at second order): NaN, and a note says which.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from itertools import combinations
from typing import Any

import numpy as np

from dmas.quality.correlation import association_change, code_count, contingency
from dmas.quality.dimension import CheckContext, Dimension, Statistic, rounded, seed_word
from dmas.quality.frame import CHUNK_ROWS, DISCRETE_KINDS, QualityFrame, summed

HISTOGRAM_BINS = 32  # equal-width bins between the reference's TAIL and 1 - TAIL quantiles
TAIL = 0.005
SPAN = 64  # the grid reaches this many reference ranges beyond them: drift that far still bins alike
PAIR_BINS = 8  # quantile bins per continuous column for the dependence tables
QUANTILES = np.r_[TAIL, np.arange(1, PAIR_BINS) / PAIR_BINS, 1.0 - TAIL]  # each continuous column's, found once
MAX_PAIRS = 45  # dependence pairs at most (all pairs of 10 columns); a fixed choice beyond
MAX_COMPONENTS = 10  # leading PCA components with their own statistic
LINEAR_GUARD = 150.0  # n (m - 1) Var(log p) an entropy ratio needs (see `first_order`)


class EntropyStability(Dimension):
    """Per-column entropy ratios, pairwise dependence changes, the PCA spectrum."""

    name = "entropy_stability"
    number = 3
    title = "Entropy stability"
    null_sampling = "split"

    def statistics(self, reference: QualityFrame, candidate: QualityFrame, context: CheckContext) -> list[Statistic]:
        found = []
        quantiles = _quantiles(reference), _quantiles(candidate)
        for name, (before, after) in column_counts(reference, candidate, *quantiles).items():
            ratio = entropy(after) / entropy(before) if first_order(before, after) else float("nan")
            found.append(Statistic("entropy_ratio", (name,), ratio, 1.0, "lower",
                                   evidence={"reference_nats": rounded(entropy(before)),
                                             "candidate_nats": rounded(entropy(after))}))
        sizes = {name: code_count(reference, candidate, name) if reference.kinds[name] in DISCRETE_KINDS
                 else PAIR_BINS for name in _columns(reference)}
        pairs = dependence_pairs(reference)
        tables = (pair_tables(reference, quantiles[0], pairs, sizes),
                  pair_tables(candidate, quantiles[1], pairs, sizes))
        for name_a, name_b in pairs:
            before, after = (side[(name_a, name_b)] for side in tables)
            evidence = {"reference_mutual_information": rounded(mutual_information(before)),
                        "candidate_mutual_information": rounded(mutual_information(after))}
            found.append(Statistic("dependence_change", (name_a, name_b), association_change(before, after), 0.0,
                                   "higher", evidence=evidence))
        names = _continuous(reference)
        if names:
            limits = _limits(quantiles[0], names), _limits(quantiles[1], names)
            before, after = pca_spectra(_blocks(reference, names), _blocks(candidate, names), limits)
            total = float(after.sum() / before.sum()) if before.sum() > 0 else float("nan")
            found.append(Statistic("pca_total_variance_ratio", (), total, 1.0, "lower",
                                   evidence={"reference": rounded(before.sum()), "candidate": rounded(after.sum()),
                                             "columns": len(names)}))
            floor = 1e-12 * before.sum()
            for k in range(min(len(names), MAX_COMPONENTS)):
                ratio = float(after[k] / before[k]) if before[k] > floor else float("nan")
                found.append(Statistic(f"pca_eigenvalue_ratio_pc{k + 1}", (), ratio, 1.0, "two_sided",
                                       evidence={"reference": rounded(before[k]), "candidate": rounded(after[k])}))
        return found

    def describe(self, reference: QualityFrame, candidate: QualityFrame, context: CheckContext) -> dict[str, Any]:
        """The two PCA spectra and each column's entropy (nats) on both sides."""
        names = _continuous(reference)
        quantiles = _quantiles(reference), _quantiles(candidate)
        limits = _limits(quantiles[0], names), _limits(quantiles[1], names)
        before, after = (pca_spectra(_blocks(reference, names), _blocks(candidate, names), limits) if names
                         else ([], []))
        counts = column_counts(reference, candidate, *quantiles)
        notes = []
        even = [name for name, (b, a) in counts.items() if b.sum() and a.sum() and not first_order(b, a)]
        if even:
            notes.append(f"no entropy ratio for {', '.join(even)}: the reference's shares are as even as their "
                         "noise, where entropy is at its maximum and moves only at second order")
        if len(_eligible_pairs(reference)) > MAX_PAIRS:
            notes.append(f"dependence compared on a fixed choice of {MAX_PAIRS} of the "
                         f"{len(_eligible_pairs(reference))} column pairs")
        if reference.order is not None:
            notes.append(f"order column {reference.order!r} left out")
        return {"pca_spectrum": {"reference": [rounded(v) for v in before], "candidate": [rounded(v) for v in after]},
                "entropy": {name: {"reference": rounded(entropy(b)), "candidate": rounded(entropy(a))}
                            for name, (b, a) in counts.items()},
                "notes": notes}


def entropy(counts: np.ndarray) -> float:
    """Plug-in entropy (nats) of counts with the Miller-Madow correction (m - 1) / 2n; NaN if empty."""
    total = counts.sum()
    return plugin_entropy(counts) + (np.count_nonzero(counts) - 1) / (2.0 * total) if total else float("nan")


def plugin_entropy(counts: np.ndarray) -> float:
    """-sum p log p (nats) of the shares of `counts`; NaN if empty."""
    counts = counts[counts > 0].astype(np.float64)
    total = counts.sum()
    if total == 0:
        return float("nan")
    shares = counts / total
    return float(-np.sum(shares * np.log(shares)))


def first_order(before: np.ndarray, after: np.ndarray) -> bool:
    """Whether an entropy ratio of counts like these can be calibrated: n (m - 1) Var_p(log p) at least
    LINEAR_GUARD, p the m nonzero shares of both sides pooled, n the smaller side's count.

    Entropy moves at first order with sd(log p) / sqrt(n) and at second order with a chi-square on
    m - 1 degrees of freedom that no null split reproduces; the second is harmless when many bins
    average it (a histogram of a uniform column passes) and ruins a few even levels (a 48/52 binary
    column was flagged 28 times too often at the 0.1% level without this guard). Pooled shares and
    sizes are the same in every null split of one reference, so the null's draws all pass or all fail
    together: a guard that let some draws through would keep only the draws that lean one way."""
    n = min(before.sum(), after.sum())
    pooled = (before + after)[(before + after) > 0].astype(np.float64)
    if n == 0 or len(pooled) < 2:
        return False
    shares = pooled / pooled.sum()
    spread = float(np.sum(shares * np.log(shares) ** 2) - np.sum(shares * np.log(shares)) ** 2)
    return bool(n * (len(pooled) - 1) * spread >= LINEAR_GUARD)


def mutual_information(table: np.ndarray) -> float:
    """Plug-in mutual information (nats, >= 0) of a contingency table; NaN when it is empty."""
    if table.sum() == 0:
        return float("nan")
    flat = table.ravel()
    return max(plugin_entropy(table.sum(axis=1)) + plugin_entropy(table.sum(axis=0)) - plugin_entropy(flat), 0.0)


def _quantiles(frame: QualityFrame) -> dict[str, np.ndarray | None]:
    """{continuous column: its QUANTILES over present values, None when none is present}."""
    found: dict[str, np.ndarray | None] = {}
    for name in _continuous(frame):
        values = frame.values[name]
        present = values[~np.isnan(values)]
        found[name] = np.quantile(present, QUANTILES) if len(present) else None
    return found


def column_counts(reference: QualityFrame, candidate: QualityFrame, reference_quantiles: dict[str, np.ndarray | None],
                  candidate_quantiles: dict[str, np.ndarray | None]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{column: (reference counts, candidate counts)}: level counts of categorical columns, histogram
    counts of continuous ones (empty when a side has no values or the reference no spread)."""
    found = {}
    for name in _columns(reference):
        if reference.kinds[name] in DISCRETE_KINDS:
            size = code_count(reference, candidate, name)
            found[name] = tuple(np.bincount(codes[codes >= 0], minlength=size)
                                for codes in (reference.values[name], candidate.values[name]))
        else:
            found[name] = histogram_counts(reference.values[name], reference_quantiles[name],
                                           candidate.values[name], candidate_quantiles[name])
    return found


def histogram_counts(reference: np.ndarray, reference_quantiles: np.ndarray | None, candidate: np.ndarray,
                     candidate_quantiles: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Both sides' counts in bins of one width, (high - low) / HISTOGRAM_BINS between the reference's
    TAIL quantiles, on a grid anchored at `low` and reaching SPAN times that range either way (open bins
    beyond); empty counts when a side has no values or the reference has no spread.

    The grid is not recentred on either side: the entropy of equal-width bins barely moves when a
    column shifts (drift), and a centre (median, mean) would itself jump between the modes of a
    bimodal column or follow one outlier."""
    if reference_quantiles is None or candidate_quantiles is None:
        return np.zeros(0), np.zeros(0)
    low, high = reference_quantiles[[0, -1]]
    if not high > low:
        return np.zeros(0), np.zeros(0)
    width, reach = (high - low) / HISTOGRAM_BINS, SPAN * HISTOGRAM_BINS
    counts = []
    for values in (reference, candidate):
        bins = np.clip(np.floor((values[~np.isnan(values)] - low) / width), -reach, reach + HISTOGRAM_BINS)
        counts.append(np.bincount((bins + reach).astype(np.int64), minlength=2 * reach + HISTOGRAM_BINS + 1))
    return counts[0], counts[1]


def dependence_pairs(frame: QualityFrame) -> list[tuple[str, str]]:
    """Column pairs with a dependence statistic (not both categorical): all of them up to MAX_PAIRS, else
    a fixed choice that depends on the column names only, so null draws and the candidate share keys."""
    pairs = _eligible_pairs(frame)
    if len(pairs) > MAX_PAIRS:
        pairs = sorted(sorted(pairs, key=lambda pair: seed_word(",".join(pair)))[:MAX_PAIRS])
    return pairs


def _eligible_pairs(frame: QualityFrame) -> list[tuple[str, str]]:
    return [pair for pair in combinations(_columns(frame), 2)
            if not all(frame.kinds[name] in DISCRETE_KINDS for name in pair)]


def pair_tables(frame: QualityFrame, quantiles: dict[str, np.ndarray | None], pairs: list[tuple[str, str]],
                sizes: dict[str, int]) -> dict[tuple[str, str], np.ndarray]:
    """{pair: float64 [size_a, size_b] contingency counts} over the frame's rows, counted in blocks of
    CHUNK_ROWS rows (integer counts: the same numbers whatever the block size), so only one block's
    codes are held at a time."""
    tables = {pair: np.zeros((sizes[pair[0]], sizes[pair[1]])) for pair in pairs}
    names = sorted({name for pair in pairs for name in pair})
    for start in range(0, frame.n_rows, CHUNK_ROWS):
        codes = _pair_codes(frame, quantiles, names, slice(start, min(start + CHUNK_ROWS, frame.n_rows)))
        for name_a, name_b in pairs:
            tables[(name_a, name_b)] += contingency(codes[name_a], codes[name_b], sizes[name_a], sizes[name_b])
    return tables


def _pair_codes(frame: QualityFrame, quantiles: dict[str, np.ndarray | None], names: list[str],
                rows: slice) -> dict[str, np.ndarray]:
    """{column: int64 codes of these rows}: categorical codes as they are, continuous values cut at this
    frame's own PAIR_BINS quantiles; -1 = missing."""
    found = {}
    for name in names:
        values = frame.column_rows(name, rows)
        if frame.kinds[name] in DISCRETE_KINDS:
            found[name] = values.astype(np.int64)
            continue
        codes = np.full(len(values), -1, dtype=np.int64)
        if quantiles[name] is not None:
            present = ~np.isnan(values)
            codes[present] = np.searchsorted(quantiles[name][1:-1], values[present], side="right")
        found[name] = codes
    return found


def _columns(frame: QualityFrame) -> list[str]:
    """Every column but the order column, sorted."""
    return [name for name in frame.names if name != frame.order]


def _continuous(frame: QualityFrame) -> list[str]:
    return [name for name in frame.continuous() if name != frame.order]


Blocks = Callable[[], Iterable[np.ndarray]]  # a fresh pass over a side's rows, [rows, columns] per block


def pca_spectra(reference: Blocks, candidate: Blocks,
                limits: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) of both sides' covariance over rows complete in every column, each side
    winsorised at its own limits ([2, columns]: each column's TAIL quantiles) and centred on its own
    means, both scaled by the reference's standard deviations.

    Winsorising keeps one heavy-tailed column (a lognormal's sample variance swings far more than a
    normal's) from making the spectrum noisier than 30 null draws can tell; at each side's own
    quantiles it follows a shift, and a shrunk spread shrinks its quantiles with it.

    Each side is read in blocks of rows (`reference()` and `candidate()` start a pass), over which the
    sums, squared deviations and cross-products accumulate: memory is one block and a [k, k] matrix,
    and a side of one block gives the bytes of numpy's mean, std and einsum over the whole matrix."""
    sides = [functools.partial(_winsorised, blocks, low, high) for blocks, (low, high)
             in zip((reference, candidate), limits)]
    counts = [sum(len(block) for block in side()) for side in sides]
    width = limits[0].shape[1]
    if min(counts) < 2:
        return np.full(width, np.nan), np.full(width, np.nan)
    means = [summed(block.sum(axis=0) for block in side()) / count for side, count in zip(sides, counts)]
    squares = summed(((block - means[0]) * (block - means[0])).sum(axis=0) for block in sides[0]())
    scale = np.sqrt(squares / (counts[0] - 1))
    scale = np.where(scale > 0, scale, 1.0)
    spectra = []
    for side, mean, count in zip(sides, means, counts):
        cross = summed(np.einsum("ni,nj->ij", z, z) for z in ((block - mean) / scale for block in side()))
        covariance = cross / (count - 1)  # numpy sums, not BLAS: thread-count proof
        spectra.append(np.clip(np.linalg.eigvalsh(covariance)[::-1], 0.0, None))
    return spectra[0], spectra[1]


def _winsorised(blocks: Blocks, low: np.ndarray, high: np.ndarray) -> Iterator[np.ndarray]:
    """The blocks' rows complete in every column, clipped to [low, high]."""
    for block in blocks():
        yield np.clip(block[~np.isnan(block).any(axis=1)], low, high)


def _blocks(frame: QualityFrame, names: list[str]) -> Blocks:
    return functools.partial(frame.row_blocks, names)


def _limits(quantiles: dict[str, np.ndarray | None], names: list[str]) -> np.ndarray:
    """[2, len(names)]: each column's TAIL and 1 - TAIL quantiles (NaN for an empty column: no clipping)."""
    return np.array([[np.nan, np.nan] if quantiles[name] is None else quantiles[name][[0, -1]]
                     for name in names]).T.reshape(2, len(names))

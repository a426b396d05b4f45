"""Dimension 2, correlation preservation: do the columns still move together as they did?

A collapsed generator often keeps every column's own distribution and loses (or exaggerates) how
columns relate. This dimension compares the Pearson and Spearman matrices of the continuous
columns (pairwise complete rows) pair by pair, both ways: a broken correlation (0.6 -> 0.3) and an
inflated one (0.6 -> 0.9) are both findings. Whole-matrix summaries (Frobenius norm of the
difference, correlation of the two matrices' entries) catch many small changes at once. Pairs of
categorical columns get the distance between their two association patterns, in Cramér's V units.
Pairs are compared as differences of Fisher z = atanh(r): a correlation's sampling noise shrinks
like (1 - rho^2) as it nears +-1, so on the r scale a null calibrated on a reference whose strong
correlation came out a little stronger than it is would be too narrow for the candidate, whose
correlation came out weaker; on the z scale the noise is the same wherever the correlation is
(1/sqrt(n - 3) for normal data), and so is the Frobenius norm built from those differences.
Every statistic is invariant to a shift of location, so drift never shows here. The order column
(time) is left out: its correlations are trends of one realisation that no resample of the
reference can calibrate.

Null draws are disjoint splits of the reference: the distances sit above zero by an amount that
depends on the sample size, and two independent halves reproduce that, where a bootstrap resample
compared with its own source would not.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from dmas.quality.dimension import CheckContext, Dimension, Statistic, rounded
from dmas.quality.frame import CHUNK_ROWS, QualityFrame, summed

MIN_PAIR_ROWS = 3  # a correlation over fewer complete rows is undefined (NaN)
MIN_SIGNAL_TO_NOISE = 10.0  # correlation of correlations needs the entries' variance this many times their
# sampling noise; with no structure to preserve it is noise itself (NaN then)


class CorrelationPreservation(Dimension):
    """Per-pair Pearson/Spearman differences, categorical association changes, two whole-matrix summaries."""

    name = "correlation_preservation"
    number = 2
    title = "Correlation preservation"
    null_sampling = "split"

    def statistics(self, reference: QualityFrame, candidate: QualityFrame, context: CheckContext) -> list[Statistic]:
        names = _continuous(reference)
        found: list[Statistic] = []
        pearson = (pearson_matrix(_blocks(reference, names)), pearson_matrix(_blocks(candidate, names)))
        spearman = (spearman_matrix(_columns_of(reference, names)), spearman_matrix(_columns_of(candidate, names)))
        for kind, (before, after) in (("pearson", pearson), ("spearman", spearman)):
            found.extend(_pair_differences(f"{kind}_difference", names, before, after))
        if len(names) >= 2:
            found.append(_frobenius(*pearson))
            found.append(_correlation_of_correlations(*pearson, reference.n_rows, candidate.n_rows))
        discrete = reference.discrete()
        for first, name_a in enumerate(discrete):
            for name_b in discrete[first + 1:]:
                sizes = code_count(reference, candidate, name_a), code_count(reference, candidate, name_b)
                before = contingency(reference.values[name_a], reference.values[name_b], *sizes)
                after = contingency(candidate.values[name_a], candidate.values[name_b], *sizes)
                found.append(Statistic("association_change", (name_a, name_b), association_change(before, after),
                                       0.0, "higher", evidence={"reference_cramers_v": rounded(cramers_v(before)),
                                                                "candidate_cramers_v": rounded(cramers_v(after))}))
        return found

    def describe(self, reference: QualityFrame, candidate: QualityFrame, context: CheckContext) -> dict[str, Any]:
        """The two Pearson matrices and their difference, for the report's heat map."""
        names = _continuous(reference)
        before, after = pearson_matrix(_blocks(reference, names)), pearson_matrix(_blocks(candidate, names))
        return {"columns": names, "reference": _rounded(before), "candidate": _rounded(after),
                "difference": _rounded(after - before)}


def pearson_matrix(values: np.ndarray | Blocks) -> np.ndarray:
    """float64 [p, p] Pearson correlations of the columns of `values` [n, p], each pair over the rows
    where both are present; NaN where a pair has fewer than MIN_PAIR_ROWS rows or a constant column.

    `values` may also be a pass over blocks of rows (a callable that starts one, as `QualityFrame.row_blocks`):
    means, counts and cross-products accumulate over the blocks, so memory is one block and [p, p]
    matrices, and one block gives the bytes of the whole matrix. Sums are numpy reductions (einsum, no
    BLAS), so the result does not depend on the thread count.
    """
    blocks = values if callable(values) else (lambda: [values])
    rows, complete = 0, True
    for block in blocks():
        rows, complete = rows + len(block), complete and not np.isnan(block).any()
    if complete and rows >= MIN_PAIR_ROWS:
        mean = summed(np.sum(block, axis=0) for block in blocks()) / rows
        cross = summed(np.einsum("ni,nj->ij", centred, centred) for centred in (block - mean for block in blocks()))
        with np.errstate(invalid="ignore", divide="ignore"):
            correlation = cross / np.sqrt(np.outer(cross.diagonal(), cross.diagonal()))
        correlation[~(np.outer(cross.diagonal(), cross.diagonal()) > 0)] = np.nan
        return np.clip(correlation, -1.0, 1.0)
    count = summed(np.einsum("ni,nj->ij", weight, weight)
                    for weight in ((~np.isnan(block)).astype(np.float64) for block in blocks()))
    totals = summed(np.sum(np.where(np.isnan(block), 0.0, block), axis=0) for block in blocks())
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = totals / np.maximum(count.diagonal(), 1.0)
        sums, squares, cross = (summed(parts) for parts in zip(*(_centred_sums(block, shift) for block in blocks()),
                                                                 strict=True)) if rows else (count, count, count)
        mean = sums / count
        covariance = cross / count - mean * mean.T
        variance = squares / count - mean * mean
        correlation = covariance / np.sqrt(variance * variance.T)
    correlation[(count < MIN_PAIR_ROWS) | ~(variance * variance.T > 0)] = np.nan
    return np.clip(correlation, -1.0, 1.0)


Blocks = Callable[[], Iterable[np.ndarray]]  # a fresh pass over rows, float64 [rows, columns] per block


def _centred_sums(block: np.ndarray, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One block's pairwise sums for `pearson_matrix` with missing values: [i, j] column i summed over rows
    where j is present, the same of its squares, and the cross-products (values centred on `shift` first,
    so the sums cancel little)."""
    present = ~np.isnan(block)
    weight = present.astype(np.float64)
    centred = np.where(present, block - shift, 0.0)
    return (np.einsum("ni,nj->ij", centred, weight), np.einsum("ni,nj->ij", centred * centred, weight),
            np.einsum("ni,nj->ij", centred, centred))


def spearman_matrix(values: np.ndarray | list[np.ndarray]) -> np.ndarray:
    """Spearman correlations: Pearson of each column's average ranks (ranked over its present values).

    `values` is [n, p], or its p columns as arrays (then no [n, p] copy of the values is made: only the
    ranks are held whole, as float32 where that is exact, and their correlations are summed over blocks
    of CHUNK_ROWS rows in float64)."""
    columns = [values[:, index] for index in range(values.shape[1])] if isinstance(values, np.ndarray) else values
    n = len(columns[0]) if columns else len(values)
    exact = np.float32 if n < 2**23 else np.float64  # ranks are multiples of 1/2 up to n: exact in float32 below 2**23
    ranks = np.full((n, len(columns)), np.nan, dtype=exact)
    for index, column in enumerate(columns):
        present = np.flatnonzero(~np.isnan(column))
        ranks[present, index] = average_ranks(column[present])
    return pearson_matrix(lambda: (ranks[start:start + CHUNK_ROWS].astype(np.float64)
                                   for start in range(0, max(n, 1), CHUNK_ROWS)))


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average (scipy.stats.rankdata's default, at a third of its cost)."""
    order = np.argsort(values)
    ordered = values[order]
    starts_run = np.r_[True, ordered[1:] != ordered[:-1]]
    starts = np.flatnonzero(starts_run)
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values))
    ranks[order] = ((starts + ends + 1) / 2.0)[np.cumsum(starts_run) - 1]
    return ranks


def code_count(reference: QualityFrame, candidate: QualityFrame, name: str) -> int:
    """How many codes a discrete column can take on either side (its shared levels, or the largest code seen)."""
    seen = max(int(reference.values[name].max(initial=-1)), int(candidate.values[name].max(initial=-1))) + 1
    return max(len(reference.levels.get(name, ())), seen)


def contingency(codes_a: np.ndarray, codes_b: np.ndarray, size_a: int, size_b: int) -> np.ndarray:
    """float64 [size_a, size_b] counts of code pairs over the rows where both codes are present."""
    present = (codes_a >= 0) & (codes_b >= 0)
    joint = codes_a[present].astype(np.int64) * size_b + codes_b[present]
    return np.bincount(joint, minlength=size_a * size_b).reshape(size_a, size_b).astype(np.float64)


def cramers_v(table: np.ndarray) -> float:
    """Cramér's V of a contingency table over the levels it has; NaN with fewer than two of either."""
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    if min(table.shape) < 2:
        return float("nan")
    total = table.sum()
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / total
    return float(np.sqrt(np.sum((table - expected) ** 2 / expected) / total / (min(table.shape) - 1)))


def association_change(before: np.ndarray, after: np.ndarray) -> float:
    """How far the association pattern of `after` is from that of `before`, in Cramér's V units:
    sqrt(sum (r_after - r_before)^2 / (p_i p_j) / (min(rows, columns) - 1)), r = a table's shares minus
    the product of its own marginal shares, p = both tables' pooled marginal shares. It is V_before when
    the association is lost and V_before * |k - 1| when scaled by k; NaN with fewer than two levels.

    One two-sample distance rather than the difference of the two V's: near independence V sits at a
    corner (V >= 0), and a null split of one reference, whose halves fall either side of it, would say
    the difference never moves when the reference happens to be closer to independence than usual."""
    if before.sum() == 0 or after.sum() == 0:
        return float("nan")
    residuals = [shares - np.outer(shares.sum(axis=1), shares.sum(axis=0))
                 for shares in (before / before.sum(), after / after.sum())]
    pooled = (before + after) / (before.sum() + after.sum())
    rows, columns = pooled.sum(axis=1) > 0, pooled.sum(axis=0) > 0
    if min(rows.sum(), columns.sum()) < 2:
        return float("nan")
    weight = np.outer(pooled.sum(axis=1)[rows], pooled.sum(axis=0)[columns])
    difference = (residuals[1] - residuals[0])[rows][:, columns]
    return float(np.sqrt(np.sum(difference ** 2 / weight) / (min(rows.sum(), columns.sum()) - 1)))


def fisher_z(correlation: np.ndarray) -> np.ndarray:
    """atanh of correlations, kept finite (|r| at most 1 - 1e-9: z at most about 10.7)."""
    return np.arctanh(np.clip(correlation, -Z_LIMIT, Z_LIMIT))


Z_LIMIT = 1.0 - 1e-9


def _pair_differences(name: str, names: list[str], before: np.ndarray, after: np.ndarray) -> list[Statistic]:
    found = []
    difference = fisher_z(after) - fisher_z(before)
    for i, name_a in enumerate(names):
        for j in range(i + 1, len(names)):
            found.append(Statistic(name, (name_a, names[j]), float(difference[i, j]), 0.0, "two_sided",
                                   evidence={"reference": rounded(before[i, j]), "candidate": rounded(after[i, j]),
                                             "difference": rounded(after[i, j] - before[i, j]),
                                             "note": "value: difference of Fisher z = atanh(r)"}))
    return found


def _blocks(frame: QualityFrame, names: list[str]) -> Blocks:
    return functools.partial(frame.row_blocks, names)


def _columns_of(frame: QualityFrame, names: list[str]) -> list[np.ndarray]:
    """The columns as `matrix` holds them (continuous: float64 as they are), without stacking them."""
    return [np.asarray(frame.values[name], dtype=np.float64) for name in names]


def _continuous(frame: QualityFrame) -> list[str]:
    """The continuous columns but the order column, sorted."""
    return [name for name in frame.continuous() if name != frame.order]


def _upper(matrix: np.ndarray) -> np.ndarray:
    return matrix[np.triu_indices(matrix.shape[0], k=1)]


def _frobenius(before: np.ndarray, after: np.ndarray) -> Statistic:
    """Frobenius norm of the off-diagonal difference of the Fisher z matrices (each pair counted twice, as
    in the full matrix)."""
    difference = _upper(fisher_z(after) - fisher_z(before))
    finite = difference[np.isfinite(difference)]
    value = float(np.sqrt(2.0 * np.sum(finite ** 2))) if len(finite) else float("nan")
    return Statistic("pearson_frobenius", (), value, 0.0, "higher", scale="log",
                     evidence={"pairs": len(finite), "worst_pair_z_difference": rounded(
                         float(finite[np.argmax(np.abs(finite))]) if len(finite) else float("nan"))})


def _correlation_of_correlations(before: np.ndarray, after: np.ndarray, n_before: int, n_after: int) -> Statistic:
    """Pearson correlation of the two matrices' entries: 1 when the pattern of correlations is kept.

    NaN with fewer than three pairs, or when the correlations (both sides averaged, so every null split
    of one reference decides alike) spread too little above their sampling noise for the pattern to
    mean anything (independent columns)."""
    a, b = _upper(before), _upper(after)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    noise = 1.0 / max(n_before, 1) + 1.0 / max(n_after, 1)
    value = float("nan")
    if len(a) >= 3 and np.var((a + b) / 2) >= MIN_SIGNAL_TO_NOISE * noise and np.var(a) > 0 and np.var(b) > 0:
        value = float(np.corrcoef(a, b)[0, 1])
    return Statistic("correlation_of_correlations", (), value, 1.0, "lower",
                     evidence={"pairs": len(a), "reference_spread": rounded(float(np.std(a)) if len(a) else np.nan)})


def _rounded(matrix: np.ndarray) -> list[list[float | None]]:
    return [[rounded(value) for value in row] for row in matrix]

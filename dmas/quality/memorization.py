"""Memorization evidence every report carries: copied rows, near copies, precision/recall/coverage.

- `exact_copy_rate`: share of candidate rows identical to some reference row on every column
  (rows hashed, all rows of both tables). Its ideal is the reference's own rate, the share of its
  rows that another reference row repeats: 0 for continuous data, more where values are coarse.
  It is a count: its noise is at least the two-proportion test's pooled binomial standard error
  (`Statistic.noise`), so the one natural duplicate a small table may hold, split between the two
  halves, is one copy that a clean candidate can show, not a finding.
- `near_copy_rate`: share of candidate rows whose nearest reference row is at most as far as the
  reference's own 1st-percentile nearest-neighbour distance (a held-out part of the reference
  searched against the rest). Its ideal is the held-out rows' own share: 0.01, or more where many
  rows are tied at that distance (coarse data, natural repeats). Distances are Euclidean on columns
  standardised by the reference's standard deviations; a discrete column is one-hot, weighted so a
  mismatch counts as one standard deviation (its `SLOTS - 1` commonest reference levels get their own
  slot, rarer ones share one).
- `precision_diff`, `recall_diff`, `coverage_diff`: k-NN-ball precision and recall (Kynkäänniemi et
  al. 2019) and coverage (Naeem et al. 2020) of the candidate against the reference, minus the same
  for a held-out part of the reference, so 0 when nothing changed. Collapse: recall and coverage fall
  (the candidate misses regions of the reference) while precision stays. A candidate (or held-out)
  column whose location moved beyond noise is moved back onto the reference's first
  (`dmas.quality.generalization.aligned`), so a mean shift (drift) does not read as lost coverage.
  Each is a share of `PRC_ROWS` rows, so its noise is at least the binomial standard error of a
  difference of two such shares (at small n the sets are a few dozen rows, and a null split of
  the reference, at half its size, is smaller still).

The neighbour searches are exact and brute force (one float32 matrix product on one BLAS thread,
scoped, so the result does not depend on the number of CPUs; faiss is only an optional extra and
gains nothing at these sizes) on seeded subsamples: `QUERY_ROWS` queries per side, `BASE_ROWS`
reference rows searched, `PRC_ROWS` rows per set. Their departures are rescaled to the full tables'
noise as in `dmas.quality.generalization`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from dmas.quality.dimension import CheckContext, Dimension, Statistic, rounded
from dmas.quality.frame import DISCRETE_KINDS, QualityFrame, summed
from dmas.quality.generalization import aligned, full_size_factor, sample_rows

QUERY_ROWS = 1000  # candidate rows and held-out reference rows whose nearest neighbours are searched
BASE_ROWS = 8000  # reference rows searched for them
PRC_ROWS = 1000  # rows per set (reference, held-out reference, candidate) for precision/recall/coverage
NEAREST = 5  # k of the k-NN balls
NEAR_QUANTILE = 0.01
SLOTS = 16  # one-hot width per discrete column
NEIGHBOUR_STATISTICS = (("near_copy_rate", NEAR_QUANTILE, "higher"), ("precision_diff", 0.0, "two_sided"),
                        ("recall_diff", 0.0, "lower"), ("coverage_diff", 0.0, "lower"))  # name, ideal, direction


class Memorization(Dimension):
    """Exact and near copies of reference rows, and k-NN precision/recall/coverage of the candidate."""

    name = "memorization"
    number = 0
    title = "Memorization"
    null_sampling = "split"  # a bootstrap draw repeats rows: every draw would look copied

    def statistics(self, reference: QualityFrame, candidate: QualityFrame, context: CheckContext) -> list[Statistic]:
        columns = tuple(reference.names)
        with threadpool_limits(1, user_api="blas"):
            return [self._exact(reference, candidate, columns), *self._neighbours(reference, candidate, context)]

    def describe(self, reference: QualityFrame, candidate: QualityFrame, context: CheckContext) -> dict[str, Any]:
        query, base, prc = _sizes(reference.n_rows, candidate.n_rows)
        notes = [f"nearest neighbours searched exactly on seeded subsamples: {query} candidate and {query} held-out "
                 f"reference rows against {base} other reference rows; precision/recall/coverage on {prc} rows "
                 f"per set (k={NEAREST}), after moving columns whose location moved beyond noise back onto the "
                 "reference's; exact copies counted on all rows"]
        if not reference.names or prc <= NEAREST:
            return {"notes": notes}
        with threadpool_limits(1, user_api="blas"):
            own, found = self._nearest_distances(reference, candidate, context)[:2]
        quantiles = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95)
        return {"notes": notes, "nearest_distance_quantiles": {
            "quantiles": list(quantiles), "candidate": [rounded(v) for v in np.quantile(found, quantiles)],
            "reference": [rounded(v) for v in np.quantile(own, quantiles)]}}

    def _exact(self, reference: QualityFrame, candidate: QualityFrame, columns: tuple[str, ...]) -> Statistic:
        if not columns or not reference.n_rows or not candidate.n_rows:
            return Statistic("exact_copy_rate", columns, float("nan"), 0.0, "higher")
        ref_hash, cand_hash = row_hashes(reference, list(columns)), row_hashes(candidate, list(columns))
        copied = np.isin(cand_hash, ref_hash)
        _, inverse, counts = np.unique(ref_hash, return_inverse=True, return_counts=True)
        repeated = int(np.count_nonzero(counts[inverse] > 1))
        own = repeated / reference.n_rows
        noise = binomial_noise((int(copied.sum()) + repeated) / (candidate.n_rows + reference.n_rows),
                               candidate.n_rows, reference.n_rows)
        return Statistic("exact_copy_rate", columns, float(np.mean(copied)), own, "higher", "collapse", {
            "copied_rows": int(copied.sum()), "candidate_rows": candidate.n_rows,
            "reference_repeated_share": rounded(own), "count_noise": rounded(noise)}, noise=noise)

    def _neighbours(self, reference: QualityFrame, candidate: QualityFrame,
                    context: CheckContext) -> list[Statistic]:
        columns = tuple(reference.names)
        query, base, prc = _sizes(reference.n_rows, candidate.n_rows)
        if not columns or prc <= NEAREST:
            return [Statistic(name, columns, float("nan"), ideal, direction)
                    for name, ideal, direction in NEIGHBOUR_STATISTICS]
        own, found, sets = self._nearest_distances(reference, candidate, context)
        limit = float(np.quantile(own, NEAR_QUANTILE, method="lower"))
        rate, own_rate = float(np.mean(found <= limit)), float(np.mean(own <= limit))  # own: 0.01 unless tied
        factor = full_size_factor(candidate.n_rows, reference.n_rows, query, query)
        near = own_rate + (rate - own_rate) * factor
        found_statistics = [Statistic("near_copy_rate", columns, near, own_rate, "higher", "collapse", {
            "rate": rounded(rate), "distance_limit": rounded(limit), "candidate_rows": query,
            "reference_rows": base})]

        cand_x, held_x, ref_x = sets
        ref_radius = _kth(_squared(ref_x, ref_x))
        cand_prc = _precision_recall_coverage(cand_x, ref_x, ref_radius)
        own_prc = _precision_recall_coverage(held_x, ref_x, ref_radius)
        factor = full_size_factor(candidate.n_rows, reference.n_rows, prc, prc)
        for (name, ideal, direction), cand_value, own_value in zip(NEIGHBOUR_STATISTICS[1:], cand_prc, own_prc):
            noise = binomial_noise((cand_value + own_value) / 2, prc, prc) * factor
            found_statistics.append(Statistic(
                name, columns, (cand_value - own_value) * factor, ideal, direction, "collapse", {
                    "candidate": rounded(cand_value), "reference": rounded(own_value),
                    "raw_diff": rounded(cand_value - own_value), "rows_per_set": prc, "k": NEAREST,
                    "count_noise": rounded(noise)}, noise=noise))
        return found_statistics

    def _nearest_distances(self, reference: QualityFrame, candidate: QualityFrame, context: CheckContext
                           ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Nearest-neighbour distances of held-out reference rows and of candidate rows to the searched
        reference rows, and the three sets for precision/recall/coverage (candidate and held-out rows aligned
        to the reference set's means)."""
        query, base, prc = _sizes(reference.n_rows, candidate.n_rows)
        rng = context.rng(self.name, "neighbours")
        ref_rows, cand_rows = rng.permutation(reference.n_rows), sample_rows(candidate.n_rows, query, rng)
        held_out, searched = ref_rows[:query], ref_rows[query:query + base]
        encode = _Encoder(reference, reference.names)
        base_x = _points(encode(reference, searched))
        own = _nearest(_points(encode(reference, held_out)), base_x)
        found = _nearest(_points(encode(candidate, cand_rows)), base_x)
        ref_x = encode(reference, searched[:prc])
        continuous = np.arange(ref_x.shape[1]) < len(encode.continuous)
        sets = tuple(_points(aligned(encode(frame, rows[:prc]), ref_x, continuous)[0])
                     for frame, rows in ((candidate, cand_rows), (reference, held_out)))
        return own, found, (*sets, _points(ref_x))


def binomial_noise(share: float, n_a: int, n_b: int) -> float:
    """Standard error of the difference of two shares over `n_a` and `n_b` rows when both are `share`
    (the pooled estimate of the two-proportion test)."""
    return float(np.sqrt(share * (1.0 - share) * (1.0 / n_a + 1.0 / n_b)))


def row_hashes(frame: QualityFrame, names: list[str]) -> np.ndarray:
    """uint64 [n]: one hash per row over these columns (equal rows, equal hashes; NaN equals NaN)."""
    hashes = np.zeros(frame.n_rows, dtype=np.uint64)
    for name in names:
        values = frame.values[name]
        if frame.kinds[name] in DISCRETE_KINDS:
            bits = values.astype(np.int64).view(np.uint64)
        else:
            canonical = np.where(np.isnan(values), np.nan, values + 0.0)  # one NaN, and -0.0 == 0.0
            bits = canonical.view(np.uint64)
        hashes = _mix(hashes * np.uint64(0x100000001B3) ^ _mix(bits))
    return hashes


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit moves every output bit."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class _Encoder:
    """Rows -> points for distances: continuous columns standardised by the reference, discrete one-hot."""

    def __init__(self, reference: QualityFrame, names: list[str]):
        self.continuous = [name for name in names if reference.kinds[name] not in DISCRETE_KINDS]
        self.discrete = [name for name in names if reference.kinds[name] in DISCRETE_KINDS]
        self.mean, spread = column_mean_and_sd(reference, self.continuous)
        self.scale = np.where(spread > 0, spread, 1.0)
        self.slots: dict[str, np.ndarray] = {}  # code -> one-hot slot
        for name in self.discrete:
            codes = reference.values[name]
            counts = np.bincount(codes[codes >= 0], minlength=len(reference.levels.get(name, ())))
            if len(counts) <= SLOTS:
                self.slots[name] = np.arange(len(counts))
            else:  # the commonest levels keep a slot each, the rest share the last one
                slot = np.full(len(counts), SLOTS - 1)
                slot[np.argsort(-counts, kind="stable")[:SLOTS - 1]] = np.arange(SLOTS - 1)
                self.slots[name] = slot

    def __call__(self, frame: QualityFrame, rows: np.ndarray) -> np.ndarray:
        """float64 [len(rows), dims]: standardised continuous columns (NaN kept), then the one-hot blocks."""
        blocks = [(frame.take(rows).matrix(self.continuous) - self.mean) / self.scale]
        for name in self.discrete:
            codes = frame.values[name][rows]
            hot = np.zeros((len(rows), min(max(len(self.slots[name]), 1), SLOTS)))
            known = (codes >= 0) & (codes < len(self.slots[name]))
            hot[np.flatnonzero(known), self.slots[name][codes[known]]] = np.sqrt(0.5)  # a mismatch adds 1
            blocks.append(hot)
        return np.hstack(blocks)


def column_mean_and_sd(frame: QualityFrame, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each column's mean and standard deviation (ddof 0) over its present values, 0 for an empty column:
    np.nanmean and np.nanstd over the columns that have values, summed over blocks of rows
    (`QualityFrame.row_blocks`) so no [n, columns] copy is made; one block gives their bytes."""
    blocks = functools.partial(frame.row_blocks, names)
    count = summed(np.sum(~np.isnan(block), axis=0, dtype=np.intp) for block in blocks())
    present = count > 0
    mean, spread = np.zeros(len(names)), np.zeros(len(names))
    if not present.any():
        return mean, spread
    count = count[present]
    found = summed(np.sum(np.where(np.isnan(block), 0.0, block), axis=0) for block in _present(blocks, present))
    mean[present] = found / count
    squares = summed(_squared_deviations(block, mean[present]) for block in _present(blocks, present))
    spread[present] = np.sqrt(squares / count)
    return mean, spread


def _present(blocks: Callable[[], Iterator[np.ndarray]], columns: np.ndarray) -> Iterator[np.ndarray]:
    """The blocks' columns that have values anywhere (the shape np.nanmean and np.nanstd were given)."""
    for block in blocks():
        yield block[:, columns]


def _squared_deviations(block: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Per column, the sum of squared deviations from `mean` over present values (np.nanvar's steps)."""
    missing = np.isnan(block)
    deviations = np.where(missing, 0.0, block)
    np.subtract(deviations, mean[None, :], out=deviations)
    np.copyto(deviations, 0.0, where=missing)
    return np.sum(np.multiply(deviations, deviations, out=deviations), axis=0)


def _points(encoded: np.ndarray) -> np.ndarray:
    """Encoded rows ready for distances: a missing value sits at the reference's mean; float32, since the
    searches' cost is memory traffic."""
    return np.nan_to_num(encoded, nan=0.0).astype(np.float32)


def _squared(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances [len(a), len(b)]."""
    squared = a @ b.T
    squared *= -2.0
    squared += (b * b).sum(axis=1)[None, :]
    squared += (a * a).sum(axis=1)[:, None]
    return np.maximum(squared, 0.0, out=squared)


def _nearest(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Each row of `a`'s Euclidean distance to its nearest row of `b`."""
    partial = a @ b.T
    partial *= -2.0
    partial += (b * b).sum(axis=1)[None, :]
    return np.sqrt(np.maximum(partial.min(axis=1) + (a * a).sum(axis=1), 0.0))


def _precision_recall_coverage(sample: np.ndarray, reference: np.ndarray,
                               ref_radius: np.ndarray) -> tuple[float, float, float]:
    """k-NN-ball precision, recall and coverage of `sample` against `reference` (squared radii given)."""
    across = _squared(sample, reference)  # [sample, reference]
    sample_radius = _kth(_squared(sample, sample))
    precision = np.mean(np.any(across <= ref_radius[None, :], axis=1))
    recall = np.mean(np.any(across <= sample_radius[:, None], axis=0))
    coverage = np.mean(across.min(axis=0) <= ref_radius)
    return float(precision), float(recall), float(coverage)


def _kth(within: np.ndarray) -> np.ndarray:
    """Each point's squared distance to its k-th nearest other point (column 0 is itself)."""
    return np.partition(within, NEAREST, axis=1)[:, NEAREST]


def _sizes(n_reference: int, n_candidate: int) -> tuple[int, int, int]:
    """Rows per part: queries per side, reference rows searched, rows per precision/recall set."""
    query = min(QUERY_ROWS, n_candidate, n_reference // 4)
    base = min(BASE_ROWS, n_reference - query)
    prc = min(PRC_ROWS, query)
    return query, base, prc

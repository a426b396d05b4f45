"""Thresholds from null resamples of the reference: a clean candidate is flagged at a known rate.

`NullCalibration(draws, false_positive_rate, seed).fit(reference, n_candidate, dimensions, context)`
computes every dimension's statistics on `draws` seeded null draws made from the reference at the
candidate's row count (scikit-learn's contract: learned state ends in `_`). `judge` then places a
candidate's statistics against them:

- A null draw compares a resample of the reference with the reference, which has less noise than an
  independent sample would: a bootstrap draw of n rows against the whole reference varies like 1/n,
  an independent candidate like 1/n + 1/N. Each draw's departure from the statistic's ideal value is
  scaled by sqrt((1/n + 1/N) / (variance of the draw)), so thresholds match the real comparison and
  shrink as n grows, never fixed constants.
- The threshold is the upper end of a Student-t prediction interval for one more draw, at the
  false-positive rate divided by the number of statistics in the report (Bonferroni): the rate holds
  for the whole report, however many columns it has.
- Distances that cannot go below 0 (KS, Wasserstein, Anderson-Darling) have right-skewed nulls, and a
  t bound on 30 draws of them was passed 2-3x too often at a 1% rate (more further out). They declare
  `scale="log"` and are calibrated on log(value), where the null is close to normal and the size
  scaling is the additive log(factor).
- A count is discrete: at small n its null draws often never move (a table with no repeated row
  gives 0 copies in every draw), and a spread of 0 would make one natural repeat a finding. A count
  statistic declares its binomial standard error (`Statistic.noise`, pooled over both sides as in the
  two-proportion test), and the allowance is never below its normal bound at the same rate (normal,
  not Student-t: this spread is a model's, not estimated from the draws).
- The draws are independent and each seeds its own generator, so they run on worker processes
  (`workers`, default every CPU the process may use; `null_departures`) and give the same bytes on any
  number of them. Workers of a reference of more than CHUNK_ROWS rows exit as soon as its draws are
  done (each holds the reference's pages and its own sorts of them); smaller ones wait for the next check.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats as scipy_stats

from dmas.quality.dimension import CheckContext, Dimension, Judged, Statistic, seed_word
from dmas.quality.frame import CHUNK_ROWS, QualityFrame


@dataclass(frozen=True)
class NullDistribution:
    """One statistic over the null draws, on its calibration scale and already scaled to the real sizes."""

    departures: np.ndarray  # [draws]: value - ideal (linear scale) or log(value) (log scale)

    @property
    def center(self) -> float:
        return float(np.mean(self.departures))

    @property
    def scale(self) -> float:
        return float(np.std(self.departures, ddof=1)) if len(self.departures) > 1 else 0.0


class NullCalibration:
    """Null distributions of every statistic of the given dimensions, for one reference and one n."""

    def __init__(self, draws: int = 30, false_positive_rate: float = 0.01, seed: int = 0,
                 cache_dir: str | Path | None = None, workers: int | None = None):
        if draws < 30:
            raise ValueError(f"draws must be at least 30 (calibration needs a null sample), got {draws}")
        if not 0.0 < false_positive_rate < 1.0:
            raise ValueError(f"false_positive_rate must be in (0, 1), got {false_positive_rate}")
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.draws = draws
        self.false_positive_rate = false_positive_rate
        self.seed = seed
        self.cache_dir = cache_dir
        self.workers = workers

    def fit(self, reference: QualityFrame, n_candidate: int, dimensions: list[Dimension],
            context: CheckContext) -> NullCalibration:
        """Compute (or load from the cache) each dimension's null distributions at `n_candidate` rows."""
        self.n_candidate_, self.n_reference_ = n_candidate, reference.n_rows
        self.nulls_: dict[str, dict[str, NullDistribution]] = {}
        self.cached_: dict[str, bool] = {}
        keys = {dimension.name: self._cache_key(reference, n_candidate, dimension) for dimension in dimensions}
        found = {dimension.name: self._load(keys[dimension.name]) for dimension in dimensions}
        missing = [dimension for dimension in dimensions if found[dimension.name] is None]
        computed = null_departures(reference, n_candidate, missing, context, self.draws, self.seed,
                                   self.workers)
        for dimension, departures in zip(missing, computed, strict=True):
            self._save(keys[dimension.name], departures)
            found[dimension.name] = departures
        for dimension in dimensions:
            self.cached_[dimension.name] = dimension not in missing
            self.nulls_[dimension.name] = {k: NullDistribution(np.asarray(v, np.float64))
                                           for k, v in found[dimension.name].items()}
        return self

    def draws_in_workers(self, reference: QualityFrame, n_candidate: int) -> bool:
        """Whether `fit` computes its draws in worker processes (then this process is free meanwhile)."""
        return draw_processes(reference.n_rows, n_candidate, self.workers) > 1

    def judge(self, dimension: Dimension, statistics: list[Statistic], n_statistics: int) -> list[Judged]:
        """The statistics against their nulls; `n_statistics` is the report's total (for the correction)."""
        if not hasattr(self, "nulls_"):
            raise RuntimeError("NullCalibration is not fitted: call fit(reference, n_candidate, ...) first")
        nulls = self.nulls_.get(dimension.name, {})
        per_test = self.false_positive_rate / max(n_statistics, 1)
        return [self._judge_one(statistic, nulls.get(statistic.key), per_test) for statistic in statistics]

    def _judge_one(self, statistic: Statistic, null: NullDistribution | None, per_test: float) -> Judged:
        departure = _on_scale(statistic, statistic.value)
        if null is None or not np.isfinite(statistic.value):
            # no null for it (a column only the candidate has its level, say): reported, never flagged
            return Judged(statistic, float("nan"), float("nan"), None, float("nan"), float("nan"), False)
        draws = len(null.departures)
        tail = per_test / 2 if statistic.direction == "two_sided" else per_test
        allowance = scipy_stats.t.ppf(1.0 - tail, df=draws - 1) * null.scale * np.sqrt(1.0 + 1.0 / draws)
        if np.isfinite(statistic.noise) and statistic.noise > 0:  # a known spread: the normal bound, not t's
            allowance = max(allowance, scipy_stats.norm.ppf(1.0 - tail) * statistic.noise)
        allowance = max(allowance, _resolution(null.departures))
        center = null.center
        if statistic.direction == "higher":
            excess, below = (departure - center) / allowance, null.departures <= departure
            upper, lower = center + allowance, None
        elif statistic.direction == "lower":
            excess, below = (center - departure) / allowance, null.departures >= departure
            upper, lower = center - allowance, None
        else:
            excess = abs(departure - center) / allowance
            below = np.abs(null.departures - center) <= abs(departure - center)
            upper, lower = center + allowance, center - allowance
        back = functools.partial(_off_scale, statistic)
        return Judged(statistic, back(center), back(upper), None if lower is None else back(lower),
                      float(np.mean(below)), float(excess), bool(excess >= 1.0))

    def _cache_key(self, reference: QualityFrame, n: int, dimension: Dimension) -> str:
        digest = hashlib.sha256()
        digest.update(json.dumps({"kinds": reference.kinds, "levels": reference.levels, "target": reference.target,
                                  "order": reference.order, "n": n, "draws": self.draws, "seed": self.seed,
                                  "dimension": dimension.name, "code": _engine_code()},
                                 sort_keys=True).encode())
        for name in reference.names:
            digest.update(np.ascontiguousarray(reference.values[name]).tobytes())
        return digest.hexdigest()

    def _load(self, key: str) -> dict[str, list[float]] | None:
        if self.cache_dir is None:
            return None
        path = Path(self.cache_dir) / f"{key}.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def _save(self, key: str, departures: dict[str, list[float]]) -> None:
        if self.cache_dir is None:
            return
        folder = Path(self.cache_dir)
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{key}.partial"
        partial.write_text(json.dumps(departures, sort_keys=True))
        partial.replace(folder / f"{key}.json")  # whole or absent, never half-written


def null_departures(reference: QualityFrame, n: int, dimensions: list[Dimension], context: CheckContext,
                    draws: int, seed: int, workers: int | None = None) -> list[dict[str, list[float]]]:
    """Each dimension's statistics over `draws` null draws at n rows, as departures scaled to the real
    sizes: {statistic key: [one value per draw, in draw order]} per dimension (keys sorted, and only
    statistics finite in at least two draws).

    Draws are independent (each seeds its own generator from (seed, draw, dimension)), so they run on
    `workers` processes (default: the CPUs this process may use) and the result is the same bytes
    whatever the count: a draw computes the same floats in any process (one BLAS/OpenMP thread in
    the workers, one torch thread in the probes), and the values are put back in draw order.
    """
    tasks = [(index, draw) for index in range(len(dimensions)) for draw in range(draws)]
    workers = min(draw_processes(reference.n_rows, n, workers), len(tasks))
    if workers > 1:
        from joblib import Parallel, delayed, parallel_config

        # several chunks per worker (so a slow one does not hold the end), each a mix of dimensions
        chunks = [tasks[start::workers * CHUNKS_PER_WORKER] for start in range(workers * CHUNKS_PER_WORKER)]
        chunks = [chunk for chunk in chunks if chunk]
        # a big reference's workers hold it and their sorts of it: they exit as soon as the draws are done
        idle_s = RELEASE_IDLE_S if reference.n_rows > CHUNK_ROWS else KEEP_IDLE_S
        with parallel_config(backend="loky", inner_max_num_threads=1, idle_worker_timeout=idle_s):
            parts = Parallel(n_jobs=workers)(delayed(_draws_in_worker)(reference, n, dimensions, context, seed, chunk)
                                             for chunk in chunks)
        done = {task: values for chunk, part in zip(chunks, parts, strict=True)
                for task, values in zip(chunk, part, strict=True)}
    else:
        done = dict(zip(tasks, _draws(reference, n, dimensions, context, seed, tasks), strict=True))
    results = []
    for index in range(len(dimensions)):
        found: dict[str, list[float]] = {}
        for draw in range(draws):
            for key, value in done[(index, draw)]:
                found.setdefault(key, []).append(value)
        results.append({key: values for key, values in sorted(found.items()) if len(values) >= 2})
    return results


def draw_processes(n_reference: int, n: int, workers: int | None = None) -> int:
    """How many processes the null draws of this size run on: `workers` (default: the CPUs this process
    may use), or 1 (this process) for a small table, where starting workers costs more than its draws."""
    wanted = default_workers() if workers is None else workers
    return wanted if n_reference * n >= PARALLEL_MIN_WORK else 1


def default_workers() -> int:
    """The CPUs this process may run on (its affinity, which taskset and containers set)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no affinity on this platform
        return max(1, os.cpu_count() or 1)


PARALLEL_MIN_WORK = 5_000_000  # reference rows x candidate rows below which the draws run in this process
CHUNKS_PER_WORKER = 3
KEEP_IDLE_S = 300  # seconds an idle draw worker waits for the next check (joblib's default): small references
RELEASE_IDLE_S = 1  # ...and for a reference of more than CHUNK_ROWS rows, whose copies would stay resident


def _draws_in_worker(reference: QualityFrame, n: int, dimensions: list[Dimension], context: CheckContext,
                     seed: int, tasks: list[tuple[int, int]]) -> list[list[tuple[str, float]]]:
    """`_draws` in a worker process, on one BLAS/OpenMP thread (the workers already fill the CPUs)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _draws(reference, n, dimensions, context, seed, tasks)


def _draws(reference: QualityFrame, n: int, dimensions: list[Dimension], context: CheckContext, seed: int,
           tasks: list[tuple[int, int]]) -> list[list[tuple[str, float]]]:
    """Each (dimension index, draw) task's finite statistics: [(key, scaled departure)] in statistic order."""
    ordered: QualityFrame | None = None  # the rows in time order, for block draws (sorted once)
    out = []
    for index, draw in tasks:
        dimension = dimensions[index]
        if dimension.null_sampling == "block" and ordered is None:
            ordered = reference.ordered()
        out.append(_one_draw(reference, ordered, n, dimension, context, seed, draw))
    return out


def _one_draw(reference: QualityFrame, ordered: QualityFrame | None, n: int, dimension: Dimension,
              context: CheckContext, seed: int, draw: int) -> list[tuple[str, float]]:
    """One null draw of one dimension: pseudo-candidate and pseudo-reference from the reference, its statistics."""
    big_n = reference.n_rows
    rng = np.random.default_rng([seed, draw, seed_word(dimension.name)])
    if dimension.null_sampling == "bootstrap":
        pseudo_reference, pseudo_candidate = reference, reference.take(rng.integers(0, big_n, n))
        draw_variance = 1.0 / n
    elif dimension.null_sampling == "split":
        order = rng.permutation(big_n)
        size = max(1, min(n, big_n // 2))
        pseudo_candidate, pseudo_reference = reference.take(order[:size]), reference.take(order[size:])
        draw_variance = 1.0 / size + 1.0 / (big_n - size)
    else:
        pseudo_candidate, pseudo_reference, size = _block_split(ordered, n, rng)
        draw_variance = 1.0 / size + 1.0 / (big_n - size)
    factor = np.sqrt((1.0 / n + 1.0 / big_n) / draw_variance)
    return [(statistic.key, _scaled(statistic, factor))
            for statistic in dimension.statistics(pseudo_reference, pseudo_candidate, context)
            if np.isfinite(statistic.value)]


def _block_split(ordered: QualityFrame, n: int, rng: np.random.Generator) -> tuple[QualityFrame, QualityFrame, int]:
    """(pseudo-candidate, pseudo-reference, its size): whole blocks of BLOCK_ROWS consecutive rows (in time
    order) dealt at random, about min(n, N/2) rows to the candidate, each side's rows kept in order.

    For statistics of a series (spectra), rows split one by one would interleave one realisation, so
    both halves share its noise and see frequencies at twice their rate; blocks keep each part a series.
    A short table still gets MIN_BLOCKS blocks (shorter ones): with two blocks of 449 rows there would
    be only two distinct draws, and thirty copies of two values are no null spread.
    """
    big_n = ordered.n_rows
    blocks = np.array_split(np.arange(big_n), max(2, -(-big_n // BLOCK_ROWS), min(MIN_BLOCKS, big_n)))
    wanted, chosen, size = max(1, min(n, big_n // 2)), [], 0
    for block in rng.permutation(len(blocks)):
        if size >= wanted or len(chosen) == len(blocks) - 1:
            break
        chosen.append(block)
        size += len(blocks[block])
    mask = np.zeros(big_n, bool)
    mask[np.concatenate([blocks[block] for block in chosen])] = True
    return ordered.take(np.flatnonzero(mask)), ordered.take(np.flatnonzero(~mask)), size


BLOCK_ROWS = 1024
MIN_BLOCKS = 16  # a null split deals at least this many blocks (C(16, 8) = 12,870 distinct splits)


def _on_scale(statistic: Statistic, value: float) -> float:
    """The value where calibration compares it: its departure from ideal, or its log."""
    if statistic.scale == "log":
        return float(np.log(max(value, _LOG_FLOOR)))
    return value - statistic.ideal


def _off_scale(statistic: Statistic, position: float) -> float:
    """A position on the calibration scale back in the statistic's own units (thresholds, null centre)."""
    return float(np.exp(position)) if statistic.scale == "log" else statistic.ideal + position


def _scaled(statistic: Statistic, factor: float) -> float:
    """A null draw's value on the calibration scale, its noise scaled from the draw's sizes to the real ones."""
    if statistic.scale == "log":
        return _on_scale(statistic, statistic.value) + float(np.log(factor))
    return _on_scale(statistic, statistic.value) * factor


_LOG_FLOOR = 1e-12  # a distance of exactly 0 (identical samples) sits far below any null, not at -inf


def _resolution(departures: np.ndarray) -> float:
    """The smallest allowance: a statistic that never moved under the null (a level always present)
    still allows the smallest step its draws showed, or a tiny absolute margin."""
    steps = np.diff(np.unique(departures))
    return float(steps.min()) if len(steps) else 1e-9


@functools.cache
def _engine_code() -> str:
    """sha256 of the collapse engine's sources (a dimension's module and what dimensions share, such as
    the probe): a changed statistic never reuses an old null from the cache."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()

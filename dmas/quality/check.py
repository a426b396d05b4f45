"""Run a collapse check: calibrate on the reference, score every dimension, decide both verdicts.

`run_check(reference, candidate, config)` is the one function the CLI, the job and the HTTP route
call (after loading the two frames). The result is data (`CheckResult.report()`, the JSON contract);
the HTML report is rendered from that data.
"""

from __future__ import annotations

import functools
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dmas.quality import errors
from dmas.quality.calibration import NullCalibration
from dmas.quality.config import CollapseCheckConfig
from dmas.quality.dimension import CheckContext, DimensionResult, rounded
from dmas.quality.errors import QualityError
from dmas.quality.frame import QualityFrame
from dmas.quality.registry import MEMORIZATION, dimensions

REPORT_VERSION = 1


@dataclass
class CheckResult:
    """Every dimension's result, the memorization evidence, and what the check was run on."""

    dimensions: list[DimensionResult]
    memorization: DimensionResult
    calibration: dict[str, Any]
    inputs: dict[str, Any] = field(default_factory=dict)  # sources, row counts, kinds, left-out columns
    schema: dict[str, Any] = field(default_factory=dict)  # the schema comparison (missing/extra/retyped)
    timings: dict[str, Any] = field(default_factory=dict)  # seconds per step, which nulls came from the cache

    @property
    def flags(self) -> list[dict[str, Any]]:
        """Every finding that made a verdict true, by dimension number then severity."""
        found = []
        for result in [*self.dimensions, self.memorization]:
            for judged in result.evidence:
                if judged.flagged:
                    found.append((result.number if result.number else 99, -judged.excess, judged.statistic.key, {
                        "dimension": result.name, "finding": judged.statistic.finding,
                        "columns": list(judged.statistic.columns), "evidence": judged.as_dict(),
                        "null_quantile": rounded(round(judged.null_quantile, 4))}))
        return [flag for *_, flag in sorted(found, key=lambda item: item[:3])]

    def report(self) -> dict[str, Any]:
        """The JSON report (without timings: `timings` is kept apart so the bytes are reproducible)."""
        flags = self.flags
        scores = [result.score for result in self.dimensions]
        return {
            "report_version": REPORT_VERSION,
            "collapse_detected": any(flag["finding"] == "collapse" for flag in flags),
            "drift_detected": any(flag["finding"] == "drift" for flag in flags),
            "overall_score": rounded(float(np.mean(scores))) if scores else None,
            "flags": flags,
            "dimensions": [result.as_dict() for result in self.dimensions],
            "memorization": self.memorization.as_dict(),
            "calibration": self.calibration,
            "inputs": self.inputs,
            "schema": self.schema,
        }


def _within_time(config: CollapseCheckConfig, started: float, next_step: str) -> None:
    if config.timeout_s is not None and time.perf_counter() - started > config.timeout_s:
        raise QualityError(errors.TIMED_OUT, f"the check took longer than timeout_s={config.timeout_s} s before "
                                             f"{next_step}; raise quality.timeout_s or lower quality.max_rows",
                           retryable=True)


def _timed(function: Any, *arguments: Any) -> float:
    """Seconds `function(*arguments)` took."""
    begun = time.perf_counter()
    function(*arguments)
    return time.perf_counter() - begun


def _measured(chosen: list, reference: QualityFrame, candidate: QualityFrame, context: CheckContext,
              config: CollapseCheckConfig, started: float) -> list[tuple[Any, list, dict[str, Any], float]]:
    """Each dimension's statistics and picture data of the candidate, with its seconds."""
    measured = []
    for dimension in chosen:
        _within_time(config, started, dimension.name)
        begun = time.perf_counter()
        statistics = dimension.statistics(reference, candidate, context)
        details = dimension.describe(reference, candidate, context)
        measured.append((dimension, statistics, details, time.perf_counter() - begun))
    return measured


def run_check(reference: QualityFrame, candidate: QualityFrame, config: CollapseCheckConfig | None = None,
              inputs: dict[str, Any] | None = None, schema: dict[str, Any] | None = None) -> CheckResult:
    """Compare `candidate` with `reference` on every configured dimension plus memorization."""
    config = config or CollapseCheckConfig()
    started = time.perf_counter()
    context = CheckContext(seed=config.seed, target=reference.target, max_rows=config.max_rows)
    chosen = [*dimensions(config.dimensions), MEMORIZATION()]
    calibration = NullCalibration(config.null_draws, config.false_positive_rate, config.seed,
                                  config.cache_dir, config.workers)
    fit = functools.partial(_timed, calibration.fit, reference, candidate.n_rows, chosen, context)
    if calibration.draws_in_workers(reference, candidate.n_rows):
        # the draws run in worker processes: this one computes the check's own statistics meanwhile
        with ThreadPoolExecutor(1, thread_name_prefix="dmas-null-draws") as pool:
            fitting = pool.submit(fit)
            measured = _measured(chosen, reference, candidate, context, config, started)
            calibrated_s = fitting.result()
    else:
        calibrated_s = fit()
        measured = _measured(chosen, reference, candidate, context, config, started)
    _within_time(config, started, "judging the statistics")
    timings = {"calibration_s": round(calibrated_s, 3)}
    n_statistics = sum(len(statistics) for _, statistics, _, _ in measured)
    results = []
    for dimension, statistics, details, seconds in measured:
        notes = list(details.pop("notes", []))
        judged = calibration.judge(dimension, statistics, n_statistics)
        results.append(DimensionResult.of(dimension, judged, notes, details, seconds))
        timings[f"{dimension.name}_s"] = round(seconds, 3)
    timings["total_s"] = round(time.perf_counter() - started, 3)
    summary = {"null_draws": config.null_draws, "false_positive_rate": config.false_positive_rate,
               "seed": config.seed, "statistics": n_statistics,
               "per_statistic_rate": rounded(config.false_positive_rate / max(n_statistics, 1)),
               "reference_rows": reference.n_rows, "candidate_rows": candidate.n_rows,
               "method": "bootstrap or split null draws at the candidate's row count, departures scaled to "
                         "two-sample noise, Student-t prediction bound, Bonferroni over the report's statistics"}
    timings["cached_nulls"] = sorted(name for name, hit in calibration.cached_.items() if hit)
    return CheckResult(results[:-1], results[-1], summary, inputs or {}, schema or {}, timings)

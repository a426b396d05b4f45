"""What every collapse dimension declares and returns: `Statistic`, `Dimension`, `DimensionResult`.

A dimension only computes named statistics of (reference, candidate), each with the value it would
have if nothing had changed (`ideal`) and the direction that means collapse. It never sets its own
thresholds: `dmas.quality.calibration.NullCalibration` computes the same statistics on null
resamples of the reference at the candidate's row count and decides which values are surprising,
so every dimension is judged at the same false-positive rate (Captum's uniform signature,
SDMetrics' declared range and direction).
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from dmas.numbers import rounded
from dmas.quality.frame import QualityFrame

Direction = Literal["higher", "lower", "two_sided"]  # which departure from `ideal` is a finding
Finding = Literal["collapse", "drift"]
NullSampling = Literal["bootstrap", "split", "block"]


@dataclass(frozen=True)
class Statistic:
    """One calibrated number: `name` over `columns`, with its no-change value and bad direction.

    `finding` says which verdict a surprising value supports: "collapse" (lost variance, tails, modes,
    correlation, copies) or "drift" (a shift with the shape intact). `evidence` holds what a person
    reading the report needs beside the number (the two sides' values, counts); it is not calibrated.
    A non-negative distance (KS, Wasserstein) declares `scale="log"`: see dmas.quality.calibration.
    A count (copied rows, rows inside k-NN balls) declares `noise`, its binomial standard error at the
    real sizes on the calibration scale: null draws of a rare count are often all equal, and their
    allowance is never below its normal bound (one natural repeat in a small table is not a finding).
    """

    name: str
    columns: tuple[str, ...]
    value: float
    ideal: float
    direction: Direction
    finding: Finding = "collapse"
    evidence: dict[str, Any] = field(default_factory=dict)
    scale: Literal["linear", "log"] = "linear"  # "log" for distances >= 0 whose null is right-skewed
    noise: float = 0.0  # a count's standard error from its sampling model (0: the null draws alone decide)

    @property
    def key(self) -> str:
        """Stable identity of this statistic inside its dimension: "name:col1,col2"."""
        return f"{self.name}:{','.join(self.columns)}"


@dataclass(frozen=True)
class CheckContext:
    """What a dimension may need besides the two frames: the seed, and whether a target was given."""

    seed: int
    target: str | None
    max_rows: int  # dimensions that fit models subsample both sides to this many rows (seeded)

    def rng(self, *salt: int | str) -> np.random.Generator:
        """A generator seeded from the check's seed and `salt` (a dimension's name, a draw number)."""
        return np.random.default_rng([self.seed, *(seed_word(part) for part in salt)])


class Dimension(ABC):
    """Base of the eight dimensions. Subclasses set the class attributes and implement `statistics`.

    `null_sampling` is how null draws are made for this dimension: "bootstrap" (n rows drawn with
    replacement from the reference, compared with the whole reference) or "split" (disjoint parts of
    the reference as pseudo-reference and pseudo-candidate), for statistics that shared or repeated
    rows would bias (copies, classifiers), or "block" (split in blocks of consecutive rows in time
    order), for statistics of the rows as a series (spectra).
    """

    name: ClassVar[str]
    number: ClassVar[int]  # 1..8 as the issue lists them; 0 for memorization
    title: ClassVar[str]
    null_sampling: ClassVar[NullSampling] = "bootstrap"

    @abstractmethod
    def statistics(self, reference: QualityFrame, candidate: QualityFrame, context: CheckContext) -> list[Statistic]:
        """The dimension's statistics of `candidate` against `reference` (keys depend on columns only)."""

    def describe(self, reference: QualityFrame, candidate: QualityFrame, context: CheckContext) -> dict[str, Any]:
        """Extra data for the report's pictures (not calibrated, not flagged); none by default."""
        return {}


@dataclass(frozen=True)
class Judged:
    """A statistic next to its null: calibrated threshold, where it falls among null draws, verdict."""

    statistic: Statistic
    null_center: float
    threshold: float  # the value at which it becomes a finding (upper bound, or lower for "lower")
    lower_threshold: float | None  # two-sided statistics also have a lower bound
    null_quantile: float  # share of null draws at or below the value's departure (0..1)
    excess: float  # departure / calibrated allowance: >= 1 is a finding
    flagged: bool

    def as_dict(self) -> dict[str, Any]:
        s = self.statistic
        return {"statistic": s.name, "columns": list(s.columns), "value": rounded(s.value), "ideal": s.ideal,
                "direction": s.direction, "finding": s.finding, "null_center": rounded(self.null_center),
                "threshold": rounded(self.threshold),
                "lower_threshold": None if self.lower_threshold is None else rounded(self.lower_threshold),
                "null_quantile": rounded(round(self.null_quantile, 4)), "excess": rounded(self.excess),
                "flagged": self.flagged, "evidence": s.evidence}


@dataclass(frozen=True)
class DimensionResult:
    """A dimension's outcome: score 0-100 (100 = indistinguishable from the null), pass/fail, evidence.

    score = 100 * clip(1 - worst_excess / 2, 0, 1): 100 when every statistic sits at its null centre,
    `threshold` (50) when the worst one is exactly at its calibrated threshold, 0 at twice the allowance.
    """

    name: str
    number: int
    title: str
    score: float
    threshold: float
    passed: bool
    evidence: list[Judged]
    notes: list[str]
    details: dict[str, Any]
    seconds: float

    SCORE_THRESHOLD: ClassVar[float] = 50.0

    @classmethod
    def of(cls, dimension: Dimension, judged: list[Judged], notes: list[str], details: dict[str, Any],
           seconds: float) -> DimensionResult:
        worst = max((j.excess for j in judged if np.isfinite(j.excess)), default=0.0)
        score = round(100.0 * float(np.clip(1.0 - worst / 2.0, 0.0, 1.0)), 2)
        return cls(dimension.name, dimension.number, dimension.title, score, cls.SCORE_THRESHOLD,
                   not any(j.flagged for j in judged), judged, notes, details, seconds)

    def as_dict(self) -> dict[str, Any]:
        """The report's form (without `seconds`: timings live apart so report bytes are reproducible)."""
        ordered = sorted(self.evidence, key=lambda j: (not j.flagged, -_finite(j.excess), j.statistic.key))
        return {"name": self.name, "number": self.number, "title": self.title, "score": self.score,
                "threshold": self.threshold, "passed": self.passed, "notes": self.notes,
                "evidence": [j.as_dict() for j in ordered], "details": self.details}


def seed_word(part: int | str) -> int:
    """A 64-bit seed word from a name or number (stable across processes, unlike `hash`)."""
    return int.from_bytes(hashlib.sha256(str(part).encode()).digest()[:8], "little")


def _finite(value: float) -> float:
    return value if np.isfinite(value) else 1e300



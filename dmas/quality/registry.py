"""The dimensions a collapse check runs, in the order reports list them (the issue's 1-8, then memorization)."""

from __future__ import annotations

from dmas.quality.consistency import StatisticalConsistency
from dmas.quality.correlation import CorrelationPreservation
from dmas.quality.dimension import Dimension
from dmas.quality.distribution import DistributionFidelity
from dmas.quality.entropy import EntropyStability
from dmas.quality.generalization import GeneralizationGap
from dmas.quality.gradient_health import GradientHealth
from dmas.quality.loss_landscape import LossLandscape
from dmas.quality.memorization import Memorization
from dmas.quality.spectral import SpectralCoherence

DIMENSIONS: tuple[type[Dimension], ...] = (
    DistributionFidelity, CorrelationPreservation, EntropyStability, GradientHealth, LossLandscape,
    SpectralCoherence, GeneralizationGap, StatisticalConsistency,
)
MEMORIZATION = Memorization
DIMENSION_NAMES = tuple(dimension.name for dimension in DIMENSIONS)


def dimensions(names: list[str] | None = None) -> list[Dimension]:
    """Instances of the named dimensions (default: all eight) in registry order."""
    if names is None:
        return [dimension() for dimension in DIMENSIONS]
    unknown = sorted(set(names) - set(DIMENSION_NAMES))
    if unknown:
        raise ValueError(f"unknown dimension(s) {unknown}; expected some of {list(DIMENSION_NAMES)}")
    return [dimension() for dimension in DIMENSIONS if dimension.name in names]

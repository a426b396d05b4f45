"""What the tests of the collapse dimensions share: the module's reference and its fitted `NullCalibration`
(`calibrated_fixtures`), a candidate judged against it (`judged`, `by_name`, `flagged_keys`, `flagged_names`),
and frames built from a dict of columns (`frame_of`) or with some columns replaced (`with_values`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from dmas.quality.calibration import NullCalibration
from dmas.quality.dimension import CheckContext, Dimension, Judged
from dmas.quality.frame import ColumnKind, QualityFrame


def calibrated_fixtures(dimension: type[Dimension], build_reference: Callable[[], QualityFrame], n_candidate: int,
                        context: CheckContext) -> tuple[Callable[[], QualityFrame], Callable[..., NullCalibration]]:
    """Module-scoped fixtures for a test module to bind as `reference, calibration = calibrated_fixtures(...)`:
    the frame `build_reference()` and a default `NullCalibration` of `dimension` fitted on it at `n_candidate` rows."""

    @pytest.fixture(scope="module", name="reference")
    def reference() -> QualityFrame:
        return build_reference()

    @pytest.fixture(scope="module", name="calibration")
    def calibration(reference: QualityFrame) -> NullCalibration:
        return NullCalibration().fit(reference, n_candidate, [dimension()], context)

    return reference, calibration


def judged(dimension: Dimension, calibration: NullCalibration, reference: QualityFrame, candidate: QualityFrame,
           context: CheckContext, n_statistics: int | None = None) -> list[Judged]:
    """`dimension`'s statistics of (reference, candidate) against `calibration`'s nulls. `n_statistics` is the
    report's statistic count the false-positive rate is shared over (default: the dimension's own, the loosest bar)."""
    statistics = dimension.statistics(reference, candidate, context)
    return calibration.judge(dimension, statistics, len(statistics) if n_statistics is None else n_statistics)


def by_name(found: list[Judged]) -> dict[str, Judged]:
    """The judged statistics by statistic name (for dimensions whose names are unique)."""
    return {j.statistic.name: j for j in found}


def flagged_keys(found: list[Judged], with_finding: bool = False) -> set[tuple[str, ...]]:
    """(statistic, *columns) of every flagged statistic, with its finding ("collapse", "drift") last if asked."""
    return {(j.statistic.name, *j.statistic.columns, *((j.statistic.finding,) if with_finding else ()))
            for j in found if j.flagged}


def flagged_names(found: dict[str, Judged]) -> list[str]:
    """The names of the flagged statistics in `by_name`'s dict, sorted."""
    return sorted(name for name, j in found.items() if j.flagged)


def frame_of(values: dict[str, np.ndarray], kinds: dict[str, ColumnKind], levels: dict[str, tuple[str, ...]],
             order: str | None = None) -> QualityFrame:
    """A frame of these columns, their kinds and levels looked up by name; `order` when it is one of them."""
    return QualityFrame({name: kinds[name] for name in values}, values,
                        {name: levels[name] for name in values if name in levels},
                        order=order if order in values else None)


def with_values(frame: QualityFrame, values: dict[str, np.ndarray]) -> QualityFrame:
    """`frame` with these columns' values replaced."""
    return QualityFrame(frame.kinds, {**frame.values, **values}, frame.levels, frame.target, frame.order)

"""Floats for reports: one rounding rule, so every report that prints a number has stable bytes."""

from __future__ import annotations

import math


def rounded(value: float | None) -> float | None:
    """A float for JSON: 6 significant digits (stable bytes, no false precision), None for NaN/inf/None."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{float(value):.6g}")

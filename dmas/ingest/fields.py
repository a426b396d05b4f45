"""Vectorised field parsing for one chunk of rows: values out, and the rows that failed with why.

Parsing works column-wise with pandas/pyarrow kernels; Python runs per row only to word the
message of a row that failed, so a clean million-row file costs a few passes over its columns.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dmas.errors import RowError


class ChunkChecks:
    """Collects the row errors of one chunk and which rows are bad."""

    def __init__(self, rows: np.ndarray):
        self.rows = rows
        self.bad = np.zeros(len(rows), dtype=bool)
        self.errors: list[RowError] = []

    def reject(self, mask: np.ndarray, field: str | None, describe: Callable[[int], str]) -> None:
        """Mark rows where `mask` is true as bad, with `describe(position)` as the message."""
        mask = np.asarray(mask, dtype=bool)
        for position in np.flatnonzero(mask):
            self.errors.append(RowError(int(self.rows[position]), field, describe(int(position))))
        self.bad |= mask

    def sorted_errors(self) -> list[RowError]:
        return sorted(self.errors, key=lambda error: error.row)


def shown(value: object, limit: int = 80) -> str:
    """A value as it should appear in an error message: repr, shortened."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def text_values(column: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Strings with surrounding whitespace removed, and the mask of missing/empty values."""
    values = column.astype("str").str.strip()
    missing = (column.isna() | (values == "")).to_numpy()
    return values, missing


def require_text(checks: ChunkChecks, frame: pd.DataFrame, field: str) -> pd.Series:
    values, missing = text_values(frame[field])
    checks.reject(missing, field, lambda _: f"missing required field '{field}'")
    return values


def parse_timestamps(checks: ChunkChecks, frame: pd.DataFrame, field: str, required: bool = True) -> pd.Series:
    """UTC timestamps (µs) from ISO-8601 text (offsets honoured, no offset means UTC) or native times."""
    column = frame[field]
    missing = column.isna().to_numpy()
    if pd.api.types.is_datetime64_any_dtype(column):
        parsed = column.dt.tz_localize("UTC") if column.dt.tz is None else column.dt.tz_convert("UTC")
    elif pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        parsed = pd.Series(pd.NaT, index=column.index, dtype="datetime64[us, UTC]")
    else:
        text = column.astype("str").str.strip()
        missing = missing | (text == "").to_numpy()
        parsed = pd.to_datetime(text.where(~missing), utc=True, format="ISO8601", errors="coerce")
    parsed = parsed.dt.as_unit("us")
    unparsed = parsed.isna().to_numpy() & ~missing
    checks.reject(unparsed, field, lambda i: f"not an ISO-8601 timestamp: {shown(column.iloc[i])}")
    if required:
        checks.reject(missing, field, lambda _: f"missing required field '{field}'")
    return parsed


def parse_floats(checks: ChunkChecks, frame: pd.DataFrame, field: str, default: float | None = None) -> pd.Series:
    """Finite float64 values; a missing value takes `default` or is an error when there is none."""
    column = frame[field]
    if pd.api.types.is_bool_dtype(column):
        numbers = pd.Series(np.nan, index=column.index)
        missing = column.isna().to_numpy()
    elif pd.api.types.is_numeric_dtype(column):
        numbers = column.astype("float64")
        missing = column.isna().to_numpy()
    else:
        text = column.astype("str").str.strip()
        missing = (column.isna() | (text == "")).to_numpy()
        numbers = pd.to_numeric(text.where(~missing), errors="coerce").astype("float64")
    values = numbers.to_numpy(dtype="float64", na_value=np.nan)
    not_finite = ~np.isfinite(values) & ~missing
    checks.reject(not_finite, field, lambda i: f"not a finite number: {shown(column.iloc[i])}")
    if default is None:
        checks.reject(missing, field, lambda _: f"missing required field '{field}'")
    else:
        values = np.where(missing, default, values)
    return pd.Series(values, index=column.index)


def require_known(checks: ChunkChecks, values: pd.Series, field: str, known_ids: pa.Array) -> None:
    """Reject ids that are not in `known_ids` (entities must be ingested before what refers to them)."""
    found = pc.is_in(pa.array(values.to_numpy(dtype=object), type=pa.string(), from_pandas=True), value_set=known_ids)
    unknown = ~np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool) & ~checks.bad
    checks.reject(unknown, field, lambda i: f"unknown entity {shown(values.iloc[i])}; ingest it as an entity first")


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def canonical_json_object(value: object) -> str:
    """Parse a JSON object (text or already-decoded dict) and return canonical text (sorted keys).

    Raises ValueError with the reason when it is not a JSON object of finite values.
    """
    obj = json.loads(value, parse_constant=_no_constants) if isinstance(value, str) else value
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def scalar_from_text(value: object) -> object:
    """A wide-format attribute cell as a JSON scalar: numbers become numbers, the rest stays text."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            raise ValueError(f"not a finite number: {value!r}")
        return int(value) if float(value).is_integer() and abs(value) < 2**53 else float(value)
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    if not math.isfinite(number):
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number

"""Vectorised field parsing for one chunk of rows: typed Arrow arrays out, and the rows that failed.

Parsing runs on Arrow kernels (a clean column costs one pass); only when a column holds a value
Arrow cannot cast does pandas' lenient parser take over for that chunk, to find which rows are bad.
Python runs per row only to word the message of a row that failed.
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

UTC_MICROS = pa.timestamp("us", tz="UTC")


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
        self.bad = self.bad | mask

    def sorted_errors(self) -> list[RowError]:
        return sorted(self.errors, key=lambda error: error.row)


def shown(value: object, limit: int = 80) -> str:
    """A value as it should appear in an error message: repr, shortened."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_text(column: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_datetime64_any_dtype(column)
                or pd.api.types.is_bool_dtype(column))


def _trimmed_text(column: pd.Series) -> pa.Array:
    """The column as Arrow strings, whitespace trimmed, empty strings as nulls."""
    values = pa.array(column.astype("str") if not _is_text(column) else column, from_pandas=True)
    values = pc.utf8_trim_whitespace(pc.cast(values, pa.large_string()))
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.large_string()), values)


def _strict_cast(column: pd.Series, arrow_type: pa.DataType) -> pa.Array | None:
    """The text column cast by Arrow's strict parser, or None when any value does not parse as it is."""
    try:
        return pc.cast(pa.array(column, from_pandas=True), arrow_type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None


def _null_mask(values: pa.Array) -> np.ndarray:
    return np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def optional_text(column: pd.Series) -> pa.Array:
    """Trimmed strings, with missing or blank values as nulls."""
    return pc.cast(_trimmed_text(column), pa.string())


def require_text(checks: ChunkChecks, frame: pd.DataFrame, field: str) -> pa.Array:
    """Trimmed strings; a missing or blank value is an error."""
    values = _trimmed_text(frame[field])
    checks.reject(_null_mask(values), field, lambda _: f"missing required field '{field}'")
    return pc.cast(values, pa.string())


def parse_timestamps(checks: ChunkChecks, frame: pd.DataFrame, field: str, required: bool = True) -> pa.Array:
    """UTC timestamps (µs) from ISO-8601 text (offsets honoured, no offset means UTC) or native times."""
    column = frame[field]
    if pd.api.types.is_datetime64_any_dtype(column):
        parsed = column.dt.tz_localize("UTC") if column.dt.tz is None else column.dt.tz_convert("UTC")
        values = pa.Array.from_pandas(parsed.dt.as_unit("us"), type=UTC_MICROS)
        missing = _null_mask(values)
        unparsed = np.zeros(len(column), dtype=bool)
    elif not _is_text(column):
        values = pa.nulls(len(column), UTC_MICROS)
        missing = column.isna().to_numpy()
        unparsed = ~missing
    else:
        values = _strict_cast(column, UTC_MICROS)
        if values is not None:
            missing = _null_mask(values)
            unparsed = np.zeros(len(column), dtype=bool)
        else:  # some value is padded, has no offset or is no timestamp: parse leniently to find which
            text = _trimmed_text(column)
            missing = _null_mask(text)
            lenient = pd.to_datetime(pd.Series(text.to_pandas()), utc=True, format="ISO8601", errors="coerce")
            values = pa.Array.from_pandas(lenient.dt.as_unit("us"), type=UTC_MICROS)
            unparsed = _null_mask(values) & ~missing
    checks.reject(unparsed, field, lambda i: f"not an ISO-8601 timestamp: {shown(column.iloc[i])}")
    if required:
        checks.reject(missing, field, lambda _: f"missing required field '{field}'")
    return values


def parse_floats(checks: ChunkChecks, frame: pd.DataFrame, field: str, default: float | None = None) -> pa.Array:
    """Finite float64 values; a missing value takes `default` or is an error when there is none."""
    column = frame[field]
    if pd.api.types.is_bool_dtype(column):
        numbers = np.full(len(column), np.nan)
        missing = column.isna().to_numpy()
    elif pd.api.types.is_numeric_dtype(column):
        numbers = column.to_numpy(dtype="float64", na_value=np.nan)
        missing = column.isna().to_numpy()
    else:
        cast = _strict_cast(column, pa.float64())
        if cast is not None:
            missing = _null_mask(cast)
            numbers = cast.to_numpy(zero_copy_only=False)
        else:  # some value is padded or no number: parse leniently to find which
            text = _trimmed_text(column)
            missing = _null_mask(text)
            numbers = pd.to_numeric(pd.Series(text.to_pandas()), errors="coerce").to_numpy(dtype="float64",
                                                                                          na_value=np.nan)
        numbers = np.where(missing, np.nan, numbers)
    not_finite = ~np.isfinite(numbers) & ~missing
    checks.reject(not_finite, field, lambda i: f"not a finite number: {shown(column.iloc[i])}")
    if default is None:
        checks.reject(missing, field, lambda _: f"missing required field '{field}'")
    else:
        numbers = np.where(missing, default, numbers)
    return pa.array(numbers, type=pa.float64())


def require_known(checks: ChunkChecks, values: pa.Array, field: str, known_ids: pa.Array) -> None:
    """Reject ids that are not in `known_ids` (entities must be ingested before what refers to them).

    Null ids are left alone: a required id was already reported missing, an optional one may be absent.
    """
    found = np.asarray(pc.is_in(values, value_set=known_ids).to_numpy(zero_copy_only=False), dtype=bool)
    unknown = ~found & ~checks.bad & ~_null_mask(values)
    checks.reject(unknown, field, lambda i: f"unknown entity {shown(values[i].as_py())}; ingest it as an entity first")


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


def is_blank(value: object) -> bool:
    """Whether a cell holds nothing: missing, NaN, or only whitespace."""
    return value is None or (isinstance(value, str) and value.strip() == "") or (
        not isinstance(value, (str, dict, list)) and bool(pd.isna(value)))


def json_object_text(value: object) -> str:
    """`canonical_json_object`, with a message that says what is wrong and shows the value."""
    try:
        return canonical_json_object(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at char {exc.pos}): {shown(value)}") from None
    except ValueError as exc:
        raise ValueError(f"{exc}: {shown(value)}") from None


def optional_json_objects(checks: ChunkChecks, frame: pd.DataFrame, field: str) -> pa.Array:
    """Canonical JSON object text per row, null where blank; anything else than a JSON object is an error."""
    cells = frame[field].to_numpy(dtype=object)
    texts = np.full(len(cells), None, dtype=object)
    failures: dict[int, str] = {}
    for position in np.flatnonzero(~frame[field].isna().to_numpy()):
        if is_blank(cells[position]):
            continue
        try:
            texts[position] = json_object_text(cells[position])
        except ValueError as exc:
            failures[position] = str(exc)
    checks.reject(np.isin(np.arange(len(cells)), list(failures)), field, lambda i: failures[i])
    return pa.array(texts, type=pa.string())


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

"""Column kinds, left-out columns and the schema comparison of a check's two tables: `encode_pair`.

Kinds are decided on the reference and the candidate is read the reference's way, so a candidate
that lost levels or values (collapse) is still compared on the same column, never "retyped":

- Arrow types first: booleans are boolean, timestamps and dates datetime, numbers numeric.
- Text is parsed: all values in true/false/yes/no/0/1 (any case) -> boolean; at least 99% of the
  present values plain numbers (`-1.5e3`; no thousands separators or decimal commas) -> numeric;
  at least 99% ISO-8601 or one common date format (`%Y/%m/%d`, `%m/%d/%Y`, `%d/%m/%Y`, `%d.%m.%Y`,
  with optional `%H:%M[:%S]`) -> datetime; else categorical. `NA`, `N/A`, `NaN`, `null`, `none`
  count as missing when text is parsed; values that still do not parse are missing and counted
  in `inputs["unparsed"]`, as are infinities.
- Whole numbers (Arrow integers, integral floats, integer text) holding only 0 and 1 are boolean; with
  at most 20 distinct values, and fewer than 5% of the present values, categorical: codes, counts and
  small ordinal scales compare as levels, not as a continuous distribution. A candidate whose numbers
  in such a column are not all whole left the reference's grid (a shifted or rescaled scale), which
  levels cannot compare: the column is then numeric on both sides, so a shift reads as drift and a
  shrunk scale as lost variance rather than as every level lost.
- `kinds={"col": "categorical"}` overrides win over inference and over the left-out rules below
  (not over unsupported types).

Encoded as `dmas.quality.frame.QualityFrame` describes: datetimes as seconds since the epoch in UTC
(naive times taken as UTC), discrete columns as codes into levels both sides share (booleans
("false", "true"); other levels sorted, as numbers when all are numbers).

Left out of the statistics, and listed (`excluded`): keys (text more than 98% distinct; whole numbers
forming one run of distinct values such as row numbers; any text or whole-number column named like
an id: `id`, `*_id`, `*Id`, `uuid`, `guid`, more than half distinct), free text (mean length of 30
characters or more, more than half distinct), high-cardinality text (1,000 or more distinct values,
more than half distinct: nothing to compare level by level), empty columns (no value in the
reference) and unsupported types (lists, structs, binary). The target and the order column are kept.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, get_args

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dmas.errors import ConfigError
from dmas.quality.frame import CONTINUOUS_KINDS, DISCRETE_KINDS, ColumnKind, QualityFrame
from dmas.quality.tables import LoadedTable, load_table

KINDS: tuple[str, ...] = get_args(ColumnKind)
EXCLUSION_REASONS = ("keys", "text", "high_cardinality", "empty", "unsupported")
BOOLEAN_LEVELS = ("false", "true")
PARSE_SHARE = 0.99  # share of present text values that must parse for a numeric or datetime kind
FEW_LEVELS, FEW_LEVELS_SHARE = 20, 0.05  # whole numbers this sparse are categorical
KEY_DISTINCT_RATIO = 0.98
ID_DISTINCT_RATIO = 0.5
MIN_KEY_VALUES = 10  # fewer present values than this never make a key
TEXT_MEAN_LENGTH = 30
HIGH_CARDINALITY = 1000
ERRORS_LISTED = 100  # bad rows listed per side in `inputs` (all are counted)

_BOOLEAN_TOKENS = {"true": 1, "false": 0, "yes": 1, "no": 0, "1": 1, "0": 0}
_MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none"})
_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_DATETIME_FORMATS = (("ISO8601",), *((day, f"{day} %H:%M", f"{day} %H:%M:%S")  # a day order, time optional
                                      for day in ("%Y/%m/%d", "%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y")))
_DATE_PART = r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}"  # what every accepted format starts with
_ID_NAME = re.compile(r"(?:^|[_\-. ])(?:id|uuid|guid)$", re.IGNORECASE)
_CAMEL_ID_NAME = re.compile(r"[a-z0-9](?:Id|ID|Uuid|UUID|Guid|GUID)$")
_SECONDS_PER_UNIT = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}
_EPOCH = pd.Timestamp(0, tz="UTC")


@dataclass(frozen=True)
class SchemaComparison:
    """How the two tables' columns line up: compared (in both frames), missing, extra, retyped.

    `retyped[name]` gives each side's kind for a shared column the candidate cannot be read as the
    reference's kind. Columns left out of the statistics are listed apart (`EncodedPair.excluded`).
    """

    compared: tuple[str, ...]
    missing: tuple[str, ...]  # in the reference, not in the candidate
    extra: tuple[str, ...]  # in the candidate, not in the reference
    retyped: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def matches(self) -> bool:
        return not (self.missing or self.extra or self.retyped)

    def as_dict(self) -> dict[str, Any]:
        return {"matches": self.matches, "compared": list(self.compared), "missing": list(self.missing),
                "extra": list(self.extra), "retyped": {name: self.retyped[name] for name in sorted(self.retyped)}}


@dataclass(frozen=True)
class EncodedPair:
    """Both sides encoded the same way, the schema comparison, the left-out columns and what was read."""

    reference: QualityFrame
    candidate: QualityFrame
    schema: SchemaComparison
    excluded: dict[str, list[str]]  # reason -> sorted column names, every reason present
    inputs: dict[str, Any]


def load_pair(candidate_source: str, reference_source: str, *, target: str | None = None, order: str | None = None,
              kinds: dict[str, str] | None = None, store_uri: str | None = None) -> EncodedPair:
    """Read both sources (`dmas.quality.tables.load_table`) and encode them as `encode_pair` does.

    The tables read are handed over whole to the encoding, which frees each column's Arrow memory once
    both sides of it are encoded: the peak is about one copy of the data (Arrow's or the frames'), not both.
    """
    records, columns, rows = {}, {}, {}
    for side, source in (("reference", reference_source), ("candidate", candidate_source)):
        loaded = load_table(source, store_uri=store_uri)
        records[side], rows[side] = _source_record(loaded), loaded.rows
        columns[side] = dict(zip(loaded.table.column_names, loaded.table.columns))
        del loaded  # the only other reference to the table: its columns now live in `columns` alone
    pair = _encode(columns.pop("reference"), columns.pop("candidate"), rows["reference"], rows["candidate"],
                   target=target, order=order, kinds=kinds)
    for side, record in records.items():
        pair.inputs[side] = {**record, **pair.inputs[side]}
    return pair


def encode_pair(reference: pa.Table, candidate: pa.Table, *, target: str | None = None, order: str | None = None,
                kinds: dict[str, str] | None = None) -> EncodedPair:
    """Decide every column's kind on the reference, compare the schemas, and encode both sides.

    Mismatched columns are a result (`schema`), never an error; a `target` or `order` column that is
    missing, empty or unreadable on either side raises `ConfigError` naming it.
    """
    return _encode(dict(zip(reference.column_names, reference.columns)),
                   dict(zip(candidate.column_names, candidate.columns)), reference.num_rows, candidate.num_rows,
                   target=target, order=order, kinds=kinds)


def _encode(reference: dict[str, pa.ChunkedArray], candidate: dict[str, pa.ChunkedArray], reference_rows: int,
            candidate_rows: int, *, target: str | None, order: str | None,
            kinds: dict[str, str] | None) -> EncodedPair:
    """`encode_pair` of two tables' columns by name, consuming them: each is dropped from its dict once
    encoded, so when these dicts hold the only references its memory is freed before the next column."""
    reference_names, candidate_names = list(reference), list(candidate)
    overrides = _checked_overrides(kinds or {}, reference_names, candidate_names)
    kept = {name for name in (target, order) if name is not None}
    excluded: dict[str, list[str]] = {reason: [] for reason in EXCLUSION_REASONS}
    chosen: dict[str, ColumnKind] = {}
    retyped: dict[str, dict[str, str]] = {}
    levels: dict[str, tuple[str, ...]] = {}
    values: dict[str, dict[str, np.ndarray]] = {"reference": {}, "candidate": {}}
    unparsed: dict[str, dict[str, int]] = {}
    for name in sorted(reference_names):
        verdict, outcome = _encode_column(name, reference.pop(name), candidate.pop(name, None), overrides, kept)
        if verdict == "excluded":
            excluded[outcome].append(name)
        elif verdict == "retyped":
            retyped[name] = outcome
        elif verdict == "chosen":
            chosen[name] = outcome.kind
            if outcome.levels is not None:
                levels[name] = outcome.levels
            for side in values:
                values[side][name] = outcome.values[side]
                if outcome.unparsed[side]:
                    unparsed.setdefault(name, {"reference": 0, "candidate": 0})[side] = outcome.unparsed[side]
        pa.default_memory_pool().release_unused()  # hand the freed column back, for the frames' next arrays
    for role, name in (("target", target), ("order", order)):
        if name is not None:
            _check_role(role, name, chosen, reference_names, candidate_names, retyped)
    shared = set(candidate_names)
    schema = SchemaComparison(tuple(sorted(chosen)), tuple(sorted(set(reference_names) - shared)),
                              tuple(sorted(shared - set(reference_names))), retyped)
    frames = {side: QualityFrame(dict(chosen), values[side], dict(levels), target, order) for side in values}
    inputs = {
        "kinds": {name: chosen[name] for name in sorted(chosen)},
        "overridden": sorted(overrides),
        "excluded": {reason: list(names) for reason, names in excluded.items()},
        "target": target,
        "order": order,
        "unparsed": {name: unparsed[name] for name in sorted(unparsed)},
        "reference": {"rows": reference_rows, "sha256": fingerprint(frames["reference"])},
        "candidate": {"rows": candidate_rows, "sha256": fingerprint(frames["candidate"])},
    }
    return EncodedPair(frames["reference"], frames["candidate"], schema, excluded, inputs)


@dataclass(frozen=True)
class _Encoded:
    """One column chosen for the statistics: its kind, shared levels, and both sides' values and unread counts."""

    kind: ColumnKind
    levels: tuple[str, ...] | None
    values: dict[str, np.ndarray]
    unparsed: dict[str, int]


def _encode_column(name: str, reference: pa.ChunkedArray, candidate: pa.ChunkedArray | None,
                   overrides: dict[str, ColumnKind], kept: set[str]) -> tuple[str, Any]:
    """One reference column and the candidate's of that name (None: the candidate lacks it) read once, as
    ("chosen", `_Encoded`), ("excluded", reason), ("retyped", each side's kind) or ("missing", None) when
    only the reference has it. Its parses and copies are freed on return."""
    column = _Column(reference)
    other = _Column(candidate) if candidate is not None else None
    kind = overrides.get(name) or column.kind
    if name not in overrides and column.discrete_numbers and other is not None and other.off_grid:
        kind = "numeric"
    if column.family == "other":
        reason = "unsupported"
    else:
        reason = None if name in overrides or name in kept else column.left_out(name, kind)
    if reason is not None:
        return "excluded", reason
    if other is None:
        return "missing", None
    if not (name in overrides or other.fits(kind)):
        return "retyped", {"reference": kind, "candidate": other.kind or "unsupported"}
    levels = _levels(kind, column, other) if kind in DISCRETE_KINDS else None
    values, unparsed = {}, {}
    for side, read in (("reference", column), ("candidate", other)):
        values[side], unparsed[side] = read.encode(kind, levels, column.reads_as_numbers)
    return "chosen", _Encoded(kind, levels, values, unparsed)


def infer_kind(column: pa.ChunkedArray | pa.Array) -> ColumnKind | None:
    """A column's kind by the rules of this module's docstring; None when it has no values or an unsupported type."""
    return _Column(column).kind


def fingerprint(frame: QualityFrame) -> str:
    """sha256 of a frame's encoded content (names, kinds, levels, target, order, values): same data, same hash."""
    digest = hashlib.sha256()
    header = {"kinds": frame.kinds, "levels": {name: list(levels) for name, levels in frame.levels.items()},
              "target": frame.target, "order": frame.order}
    digest.update(json.dumps(header, sort_keys=True).encode())
    for name in frame.names:
        values = frame.values[name]
        if values.dtype.kind == "f":
            values = np.where(np.isnan(values), np.nan, values)  # one NaN bit pattern
        digest.update(name.encode() + b"\0")
        digest.update(memoryview(np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<"))).cast("B"))
    return digest.hexdigest()


# --- one column of one side ---------------------------------------------------------------------


class _Column:
    """One column of one side, read once: its type family and, for text, its distinct values; every parse is cached.

    Text that reads whole as numbers is taken as those numbers. Other text is parsed per distinct value
    (a column of 20 levels parses 20 strings, whatever its length).
    """

    def __init__(self, column: pa.ChunkedArray | pa.Array):
        array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        if pa.types.is_dictionary(array.type):
            array = array.dictionary_decode()
        family = _family(array.type)
        if family == "text":
            array = array.cast(pa.string())
            numbers = _all_numbers(array)
            if numbers is not None:
                array, family = numbers, "number"
        self.family, self.array = family, array
        if family == "text":
            encoded = pc.dictionary_encode(array)
            self.distinct = encoded.dictionary  # non-null distinct values, first seen first
            self._index = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)  # row -> distinct (-1: null)
            self.counts = np.bincount(self._index[self._index >= 0], minlength=len(self.distinct)).astype(np.int64)

    # -- kinds --

    @cached_property
    def kind(self) -> ColumnKind | None:
        if self.family in ("null", "other") or not self._row_present().any():
            return None
        if self.family in ("boolean", "time"):
            return "boolean" if self.family == "boolean" else "datetime"
        if self.family == "number":
            return self._number_kind()
        if (self._tokens[self._present] >= 0).all():
            return "boolean"
        if self._share(~np.isnan(self._numbers)) >= PARSE_SHARE:
            return self._number_kind()
        if self._share(~np.isnan(self._datetimes)) >= PARSE_SHARE:
            return "datetime"
        return "categorical"

    def _number_kind(self) -> ColumnKind:
        """numeric, or boolean/categorical for sparse whole numbers (see the module docstring)."""
        if self._whole_counts is None:
            return "numeric"
        values, counts = self._whole_counts
        if np.isin(values, (0.0, 1.0)).all():
            return "boolean"
        if len(values) <= FEW_LEVELS and len(values) < FEW_LEVELS_SHARE * counts.sum():
            return "categorical"
        return "numeric"

    @cached_property
    def discrete_numbers(self) -> bool:
        """Whether the column is numbers read as boolean or categorical because all are whole."""
        return self.family == "number" and self.kind in DISCRETE_KINDS

    @cached_property
    def off_grid(self) -> bool:
        """Whether the column holds numbers that are not all whole (off an integer grid)."""
        return self.family == "number" and bool(np.isfinite(self._rows).any()) and self._whole_counts is None

    def fits(self, kind: ColumnKind) -> bool:
        """Whether this column can be read as `kind` (the reference's): its type family, or 99% of its text."""
        if self.family == "null":
            return True
        if self.family == "other":
            return False
        if kind == "categorical":
            return True
        if self.family == "text":
            if not self._present.any():
                return True
            if kind == "boolean":
                return self._share(self._tokens >= 0) >= PARSE_SHARE
            return self._share(~np.isnan(self._numbers if kind == "numeric" else self._datetimes)) >= PARSE_SHARE
        if self.family == "number" and kind == "boolean":
            finite = np.isfinite(self._rows)
            return bool(np.isin(self._rows[finite], (0.0, 1.0)).all())
        return {"number": "numeric", "boolean": "boolean", "time": "datetime"}[self.family] == kind

    def left_out(self, name: str, kind: ColumnKind | None) -> str | None:
        """Why the statistics leave this reference column out (a key of EXCLUSION_REASONS), or None."""
        if self.family == "other":
            return "unsupported"
        if kind is None:
            return "empty"
        if self.family == "text" and kind == "categorical":
            return self._text_reason(name)
        if self.family in ("text", "number") and kind in ("numeric", "categorical"):
            return self._whole_number_reason(name)
        return None

    def _text_reason(self, name: str) -> str | None:
        present = int(self.counts.sum())
        distinct = len(self.counts)
        ratio = distinct / max(present, 1)
        mean_length = float(np.dot(pc.utf8_length(self.distinct).to_numpy(), self.counts)) / max(present, 1)
        if mean_length >= TEXT_MEAN_LENGTH and ratio > ID_DISTINCT_RATIO:
            return "text"
        id_like = _id_named(name) and ratio > ID_DISTINCT_RATIO
        if present >= MIN_KEY_VALUES and (ratio > KEY_DISTINCT_RATIO or id_like):
            return "keys"
        if distinct >= HIGH_CARDINALITY and ratio > ID_DISTINCT_RATIO:
            return "high_cardinality"
        return None

    def _whole_number_reason(self, name: str) -> str | None:
        if self._whole_counts is None:
            return None
        values, counts = self._whole_counts
        present = int(counts.sum())
        if present < MIN_KEY_VALUES:
            return None
        is_run = len(values) == present and values[-1] - values[0] + 1 == present
        return "keys" if is_run or (_id_named(name) and len(values) / present > ID_DISTINCT_RATIO) else None

    @cached_property
    def _whole_counts(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The distinct finite numbers (sorted) and their row counts when all are whole numbers, else None."""
        if self.family == "number":
            finite = self._rows[np.isfinite(self._rows)]
            if not finite.size or not _whole(finite):
                return None
            return np.unique(finite, return_counts=True)
        usable = np.isfinite(self._numbers) & self._present
        if not usable.any() or not _whole(self._numbers[usable]):
            return None
        values, inverse = np.unique(self._numbers[usable], return_inverse=True)
        return values, np.bincount(inverse, weights=self.counts[usable]).astype(np.int64)

    # -- parses of text (per distinct value) --

    @cached_property
    def _stripped(self) -> pa.Array:
        return pc.utf8_lower(pc.utf8_trim_whitespace(self.distinct))

    @cached_property
    def _present(self) -> np.ndarray:
        """Distinct text values that are not a missing-value token."""
        return ~pc.is_in(self._stripped, value_set=pa.array(sorted(_MISSING_TOKENS))).to_numpy(zero_copy_only=False)

    def _share(self, parsed: np.ndarray) -> float:
        """Share of the present text values (counted by row) that `parsed` marks as read."""
        present = self._present
        return float(self.counts[parsed & present].sum() / max(self.counts[present].sum(), 1))

    @cached_property
    def _tokens(self) -> np.ndarray:
        """Per distinct text value: 1 true, 0 false, -1 not a boolean token (or missing)."""
        found = pc.index_in(self._stripped, value_set=pa.array(list(_BOOLEAN_TOKENS)))
        values = np.append(np.array(list(_BOOLEAN_TOKENS.values()), np.int32), -1)
        return np.where(self._present, values[found.fill_null(-1).to_numpy(zero_copy_only=False)], -1).astype(np.int32)

    @cached_property
    def _numbers(self) -> np.ndarray:
        """Per distinct text value: float64, NaN for text that is not a plain finite number (or missing)."""
        stripped = pc.utf8_trim_whitespace(self.distinct)
        is_number = pc.match_substring_regex(stripped, _NUMBER).to_numpy(zero_copy_only=False) & self._present
        numbers = np.full(len(stripped), np.nan)
        if is_number.any():
            numbers[is_number] = pc.cast(stripped.filter(pa.array(is_number)), pa.float64()).to_numpy()
        return np.where(np.isfinite(numbers), numbers, np.nan)

    @cached_property
    def _datetimes(self) -> np.ndarray:
        """Per distinct text value: seconds since the epoch by the day order that reads the most present
        values (ISO-8601 first), NaN where it does not read."""
        stripped = pc.utf8_trim_whitespace(self.distinct)
        dated = pc.match_substring_regex(stripped, _DATE_PART).to_numpy(zero_copy_only=False) & self._present
        texts = pd.Series(stripped.filter(pa.array(dated)).to_pylist(), dtype=object)
        best, best_share = np.full(len(stripped), np.nan), 0.0
        for formats in _DATETIME_FORMATS if len(texts) else ():
            read = np.full(len(texts), np.nan)
            for fmt in formats:
                parsed = pd.to_datetime(texts, format=fmt, utc=True, errors="coerce")
                read = np.where(np.isnan(read), ((parsed - _EPOCH) / pd.Timedelta(seconds=1)).to_numpy(float), read)
            seconds = np.full(len(stripped), np.nan)
            seconds[dated] = read
            share = self._share(~np.isnan(seconds))
            if share > best_share:
                best, best_share = seconds, share
            if share >= PARSE_SHARE:
                break
        return best

    # -- encoding --

    def encode(self, kind: ColumnKind, levels: tuple[str, ...] | None, as_numbers: bool) -> tuple[np.ndarray, int]:
        """float64 values (numeric, datetime) or int32 codes into `levels` (see `level_texts` for `as_numbers`),
        and how many present values did not read."""
        if kind == "categorical":
            codes = pc.index_in(self.level_texts(as_numbers), value_set=pa.array(levels, pa.string()))
            return codes.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32), 0
        if kind == "boolean":
            codes = self._boolean_codes()
            return codes, int(((codes < 0) & self._row_present()).sum())
        values = self._continuous(kind)
        return values, int((np.isnan(values) & self._row_present()).sum())

    def _boolean_codes(self) -> np.ndarray:
        if self.family == "text":
            return self._spread(self._tokens, -1).astype(np.int32)
        return np.select([self._rows == 1.0, self._rows == 0.0], [1, 0], -1).astype(np.int32)

    def _continuous(self, kind: ColumnKind) -> np.ndarray:
        """float64 per row: numbers, or seconds since the epoch (naive times taken as UTC)."""
        if self.family == "text":
            return self._spread(self._numbers if kind == "numeric" else self._datetimes, np.nan)
        return np.where(np.isfinite(self._rows), self._rows, np.nan)

    @cached_property
    def _rows(self) -> np.ndarray:
        """float64 per row of a non-text column: numbers, booleans as 0/1, times in seconds; NaN where none."""
        if self.family == "time":
            return _seconds(self.array)
        if self.family in ("null", "other"):
            return np.full(len(self.array), np.nan)
        return _float64(self.array.cast(pa.int8()) if self.family == "boolean" else self.array)

    def _row_present(self) -> np.ndarray:
        """Rows holding a value (text: not a missing-value token; others: not null or NaN)."""
        if self.family == "text":
            return self._spread(self._present, False)
        return ~np.isnan(self._rows)

    def _spread(self, per_distinct: np.ndarray, fill: Any) -> np.ndarray:
        """Per-distinct-value results laid out per row (`fill` for missing rows)."""
        extended = np.append(per_distinct, np.array([fill], dtype=per_distinct.dtype))
        return extended[self._index]  # index -1 picks `fill`

    @cached_property
    def reads_as_numbers(self) -> bool:
        """Whether this column holds numbers: a number type, or text of which 99% reads as numbers."""
        if self.family == "text":
            return bool(self._present.any() and self._share(~np.isnan(self._numbers)) >= PARSE_SHARE)
        return self.family == "number"

    def level_texts(self, as_numbers: bool) -> pa.Array:
        """The column as level strings per row: with `as_numbers` (the reference holds numbers), numbers in
        one spelling (`3`, `1.5`) and missing-value tokens missing; else text as it is, booleans false/true."""
        if self.family == "null":
            return pa.nulls(len(self.array), pa.string())
        if self.family == "number":
            if pa.types.is_integer(self.array.type):
                return self.array.cast(pa.string())
            return _spelled(self._rows)
        if self.family != "text":
            return self.array.cast(pa.string())
        if not as_numbers:
            return self.array
        numbers = ~np.isnan(self._numbers)
        kept = pc.if_else(pa.array(self._present), self.distinct, pa.scalar(None, pa.string()))
        per_distinct = pc.if_else(pa.array(numbers), _spelled(self._numbers), kept)
        return per_distinct.take(pa.array(self._index, mask=self._index < 0))


def _spelled(numbers: np.ndarray) -> pa.Array:
    """float64 values as text, Arrow's shortest spelling (3.0 -> "3"); NaN and infinities missing."""
    return pa.array(numbers, mask=~np.isfinite(numbers)).cast(pa.string())


def _all_numbers(texts: pa.Array) -> pa.Array | None:
    """float64 of a text column when every value reads as a number (the common numeric CSV column), else None."""
    try:
        pc.cast(pc.utf8_trim_whitespace(texts.slice(0, 1000)), pa.float64())  # most text columns fail here, cheaply
        return pc.cast(pc.utf8_trim_whitespace(texts), pa.float64())
    except pa.ArrowInvalid:
        return None


def _family(kind: pa.DataType) -> str:
    """null, boolean, number, time, text or other (types no kind reads: lists, structs, binary)."""
    if pa.types.is_null(kind):
        return "null"
    if pa.types.is_boolean(kind):
        return "boolean"
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "number"
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        return "time"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return "text"
    return "other"


def _float64(array: pa.Array) -> np.ndarray:
    """float64 per row, NaN for nulls (read-only when it is a view of Arrow's buffer: every use only reads)."""
    return pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)


def _seconds(array: pa.Array) -> np.ndarray:
    """Seconds since the epoch of timestamps (their stored UTC value) or dates; NaN for nulls."""
    if pa.types.is_date32(array.type):
        return _float64(array.cast(pa.int32())) * 86400.0
    if pa.types.is_date64(array.type):
        return _float64(array.cast(pa.int64())) / 1e3
    return _float64(array.cast(pa.int64())) / _SECONDS_PER_UNIT[array.type.unit]


def _whole(values: np.ndarray) -> bool:
    """Whether finite values are all whole numbers that float64 holds exactly (a measured column usually
    fails in its first values, so those are tried first: same answer, without rounding a million values)."""
    def whole(part: np.ndarray) -> bool:
        return bool(np.all((part == np.round(part)) & (np.abs(part) < 2.0**53)))

    return whole(values[:_WHOLE_PROBE]) and whole(values[_WHOLE_PROBE:])


_WHOLE_PROBE = 1000


def _id_named(name: str) -> bool:
    return bool(_ID_NAME.search(name) or _CAMEL_ID_NAME.search(name))


# --- the pair -----------------------------------------------------------------------------------


def _checked_overrides(kinds: dict[str, str], reference_names: list[str],
                       candidate_names: list[str]) -> dict[str, ColumnKind]:
    known = set(reference_names) | set(candidate_names)
    for name, kind in sorted(kinds.items()):
        if kind not in KINDS:
            raise ConfigError(f"kinds: '{kind}' for column '{name}' is not a column kind; expected one of {KINDS}")
        if name not in known:
            raise ConfigError(f"kinds: column '{name}' is in neither table")
    return {name: kinds[name] for name in sorted(kinds)}


def _check_role(role: str, name: str, chosen: dict[str, ColumnKind], reference_names: list[str],
                candidate_names: list[str], retyped: dict[str, dict[str, str]]) -> None:
    """A declared target or order column must be readable the same way on both sides."""
    for side, columns in (("reference", reference_names), ("candidate", candidate_names)):
        if name not in columns:
            raise ConfigError(f"{role}: column '{name}' is not in the {side} "
                              f"(its columns: {', '.join(sorted(columns))})")
    if name in retyped:
        kinds = retyped[name]
        raise ConfigError(f"{role}: column '{name}' is {kinds['reference']} in the reference but reads as "
                          f"{kinds['candidate']} in the candidate; give its kind with `kinds`")
    if name not in chosen:
        raise ConfigError(f"{role}: column '{name}' has no values of a supported type in the reference")
    if role == "order" and chosen[name] not in CONTINUOUS_KINDS:
        raise ConfigError(f"order: column '{name}' is {chosen[name]}; an order column must be numeric or datetime")


def _levels(kind: ColumnKind, reference: _Column, candidate: _Column) -> tuple[str, ...]:
    """The levels both sides share codes for: booleans false/true; else every level text of either side,
    sorted by number when all are numbers, else as text."""
    if kind == "boolean":
        return BOOLEAN_LEVELS
    as_numbers = reference.reads_as_numbers
    texts = pa.chunked_array([reference.level_texts(as_numbers), candidate.level_texts(as_numbers)], pa.string())
    levels = [text for text in pc.unique(texts).to_pylist() if text is not None]
    if all(re.fullmatch(_NUMBER, text) for text in levels):
        return tuple(sorted(levels, key=lambda text: (float(text), text)))
    return tuple(sorted(levels))


def _source_record(loaded: LoadedTable) -> dict[str, Any]:
    """Where one side came from, as given (no path made absolute), and the rows its reader skipped."""
    record: dict[str, Any] = {"source": loaded.source, "format": loaded.format}
    if loaded.version is not None:
        record["version"] = loaded.version
    errors = loaded.errors()
    record["bad_rows"] = len(errors)
    record["errors"] = errors[:ERRORS_LISTED]
    return record

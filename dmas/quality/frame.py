"""The two tables a collapse check compares, encoded the same way: `QualityFrame`.

Every dimension reads the same representation, so none re-parses a file or guesses a column's kind:
numeric and datetime columns are float64 (datetime as seconds since the epoch, NaN when missing);
categorical and boolean columns are int32 codes into levels shared by the reference and the
candidate (-1 when missing), so a code means the same level on both sides. Rows keep the file's
order; `order` names the column that sorts them in time when one is declared (spectral coherence).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

ColumnKind = Literal["numeric", "categorical", "boolean", "datetime"]
CONTINUOUS_KINDS = ("numeric", "datetime")
DISCRETE_KINDS = ("categorical", "boolean")
CHUNK_ROWS = 65_536  # rows per block of the statistics that stream over a table (`QualityFrame.row_blocks`)


@dataclass(frozen=True)
class QualityFrame:
    """One side of a check: column kinds, values per column, shared levels, and row count.

    `values[name]` is float64 [n] for numeric/datetime columns and int32 [n] codes for
    categorical/boolean ones (`levels[name][code]`, -1 = missing). Columns are in a fixed (sorted) order.
    """

    kinds: dict[str, ColumnKind]
    values: Mapping[str, np.ndarray]
    levels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    target: str | None = None
    order: str | None = None
    _derived: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.values, RowsOf):
            lengths = {self.values.n_rows} if self.values else set()
        else:
            lengths = {len(array) for array in self.values.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of one frame differ in length: {sorted(lengths)}")
        if set(self.values) != set(self.kinds):
            raise ValueError("values and kinds must name the same columns")

    def __reduce__(self) -> tuple:
        """Pickled without what it derived (worker processes get the columns; the main thread may be
        adding to the cache while a frame is sent)."""
        return QualityFrame, (self.kinds, self.values, self.levels, self.target, self.order)

    @property
    def n_rows(self) -> int:
        if isinstance(self.values, RowsOf):
            return self.values.n_rows if self.values else 0
        return len(next(iter(self.values.values()))) if self.values else 0

    @property
    def names(self) -> list[str]:
        return sorted(self.kinds)

    def of_kind(self, *kinds: ColumnKind) -> list[str]:
        """Column names of these kinds, sorted."""
        return [name for name in self.names if self.kinds[name] in kinds]

    def continuous(self) -> list[str]:
        """Numeric and datetime columns (float64 values)."""
        return self.of_kind(*CONTINUOUS_KINDS)

    def discrete(self) -> list[str]:
        """Categorical and boolean columns (int32 codes)."""
        return self.of_kind(*DISCRETE_KINDS)

    def features(self, exclude: tuple[str, ...] = ()) -> list[str]:
        """Every column except the target, the order column and `exclude`, sorted."""
        return [name for name in self.names if name not in (self.target, self.order) and name not in exclude]

    def take(self, rows: np.ndarray) -> QualityFrame:
        """The frame of these row numbers (a resample or a subset), same kinds and levels.

        Columns are gathered when first read (`RowsOf`): a null draw's frame whose dimension reads a
        few columns, or only a subsample of it, copies only what is read. A take of more than CHUNK_ROWS
        rows does not keep its sorts (`present_sorted`): a dimension sorts each column of a null draw
        once, and a million-row draw would otherwise hold a sorted copy of every column beside it."""
        return QualityFrame(self.kinds, RowsOf.of(self.values, rows), self.levels, self.target, self.order)

    def present_sorted(self, name: str) -> np.ndarray:
        """The column's finite values sorted ascending (float64), computed once per frame: the reference
        of every bootstrap null draw is the same frame, so its sorts are not repeated per draw."""
        def finite_sorted() -> np.ndarray:
            values = np.asarray(self.values[name], dtype=np.float64)
            found = np.sort(values[np.isfinite(values)])
            found.setflags(write=False)
            return found

        if isinstance(self.values, RowsOf) and self.values.n_rows > CHUNK_ROWS:
            return finite_sorted()
        return self.derived(f"sorted:{name}", finite_sorted)

    def derived(self, key: str, compute: Callable[[], Any]) -> Any:
        """`compute()`, once per frame under `key`: what the statistics derive from a column and every null
        draw would otherwise derive again from the same reference (sorts, tallies). Treat it as read-only."""
        if key not in self._derived:
            self._derived[key] = compute()
        return self._derived[key]

    def resampled_from(self, other: QualityFrame) -> bool:
        """Whether this frame's rows are rows of `other` (a take of it), so its values are among other's."""
        return isinstance(self.values, RowsOf) and self.values.base is other.values

    def matrix(self, names: list[str]) -> np.ndarray:
        """float64 [n, len(names)]: continuous values as they are, codes as floats (missing code -> NaN)."""
        if not names:
            return np.zeros((self.n_rows, 0))
        return np.column_stack([self._as_floats(name, self.values[name]) for name in names])

    def column_rows(self, name: str, rows: slice) -> np.ndarray:
        """`values[name][rows]` (a take gathers the column once and slices it on every later pass)."""
        return self.values[name][rows]

    def read_once(self, name: str) -> np.ndarray:
        """`values[name]` for a statistic that reads the column once: a take gathers it without keeping it."""
        if isinstance(self.values, RowsOf):
            return self.values.gather(name)
        return self.values[name]

    def row_blocks(self, names: list[str], size: int = CHUNK_ROWS) -> Iterator[np.ndarray]:
        """`matrix(names)` in blocks of `size` consecutive rows, each stacked when reached: statistics that
        accumulate over rows (co-moments, contingency counts) hold one block at a time, never [n, k] (a
        take's columns are gathered once, as any read of them is). A table of at most `size` rows (none
        included) is one block, the very array `matrix(names)` gives."""
        for start in range(0, max(self.n_rows, 1), size):
            rows = slice(start, min(start + size, self.n_rows))
            if not names:
                yield np.zeros((rows.stop - rows.start, 0))
                continue
            yield np.column_stack([self._as_floats(name, self.column_rows(name, rows)) for name in names])

    def _as_floats(self, name: str, array: np.ndarray) -> np.ndarray:
        """A column's values as `matrix` holds them: continuous as they are, codes as floats (-1 -> NaN)."""
        if self.kinds[name] in DISCRETE_KINDS:
            return np.where(array < 0, np.nan, array.astype(np.float64))
        return array

    def ordered(self) -> QualityFrame:
        """The rows sorted by `order` (stable; missing last), or as they are when no order is declared."""
        if self.order is None:
            return self
        key = self.values[self.order]
        return self.take(np.argsort(np.where(np.isnan(key), np.inf, key), kind="stable"))


def summed(parts: Iterable[np.ndarray]) -> np.ndarray:
    """Per-block partial sums (of `QualityFrame.row_blocks`) added in order, the first as it is: a table of
    one block gets the bytes of the same reduction over all its rows, a bigger one the same bytes every
    time (the blocks are fixed by the row count, never by the CPUs)."""
    total = None
    for part in parts:
        total = part if total is None else total + part
    return total


class RowsOf(Mapping):
    """Columns of `base` at `rows`, each gathered on first access and kept (read-only mapping).

    A take of a take composes the row numbers on the original columns, so a subsample of a null draw
    gathers its rows once; the values are those `base[name][rows]` would give, whichever path.
    """

    def __init__(self, base: Mapping[str, np.ndarray], rows: np.ndarray):
        self.base, self.rows = base, np.asarray(rows, dtype=np.int64)
        self._gathered: dict[str, np.ndarray] = {}

    @classmethod
    def of(cls, values: Mapping[str, np.ndarray], rows: np.ndarray) -> RowsOf:
        rows = np.asarray(rows, dtype=np.int64)
        if isinstance(values, RowsOf):
            return cls(values.base, values.rows[rows])
        return cls(values, rows)

    def __reduce__(self) -> tuple:
        return RowsOf, (self.base, self.rows)  # without the gathered columns

    @property
    def n_rows(self) -> int:
        return len(self.rows)

    def __getitem__(self, name: str) -> np.ndarray:
        gathered = self._gathered.get(name)
        if gathered is None:
            gathered = self._gathered[name] = self.base[name][self.rows]
        return gathered

    def gather(self, name: str) -> np.ndarray:
        """`self[name]` without keeping it (the gathered column when there is one)."""
        gathered = self._gathered.get(name)
        return gathered if gathered is not None else self.base[name][self.rows]

    def __iter__(self) -> Iterator[str]:
        return iter(self.base)

    def __len__(self) -> int:
        return len(self.base)

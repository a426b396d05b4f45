"""Finds rows whose key repeats an earlier row of the same file, across chunks, in O(16 bytes) per row.

Rows are compared by a 64-bit hash of their normalised key columns, so memory stays small for
files of many millions of rows; a false "duplicate" needs a 64-bit collision (about 3e-8 for a
million-row file). Idempotency against rows already stored is exact: it is the store's merge on
the key columns themselves.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from dmas.errors import RowError


class DuplicateTracker:
    def __init__(self, key: tuple[str, ...]):
        self.key = key
        self._seen_hashes = np.empty(0, dtype=np.uint64)  # sorted
        self._seen_rows = np.empty(0, dtype=np.int64)  # row number of each seen hash

    def check(self, table: pa.Table, rows: np.ndarray) -> tuple[np.ndarray, list[RowError]]:
        """Mask of rows to keep, and an error for each row that repeats an earlier one."""
        hashes = pd.util.hash_pandas_object(
            table.select(list(self.key)).to_pandas(), index=False).to_numpy(dtype=np.uint64)
        first_of = self._earlier_row(hashes, rows)
        duplicate = first_of >= 0
        errors = [
            RowError(int(rows[i]), ", ".join(self.key), f"duplicate of row {int(first_of[i])} in this file")
            for i in np.flatnonzero(duplicate)
        ]
        self._remember(hashes[~duplicate], rows[~duplicate])
        return ~duplicate, errors

    def _earlier_row(self, hashes: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """For each row, the row number of an earlier row with the same hash, or -1."""
        earlier = np.full(len(hashes), -1, dtype=np.int64)
        if len(self._seen_hashes):
            at = np.searchsorted(self._seen_hashes, hashes).clip(max=len(self._seen_hashes) - 1)
            hit = self._seen_hashes[at] == hashes
            earlier[hit] = self._seen_rows[at[hit]]
        order = np.argsort(hashes, kind="stable")
        ordered = hashes[order]
        repeats = np.flatnonzero(ordered[1:] == ordered[:-1]) + 1
        for position in repeats:
            if earlier[order[position]] < 0:
                first = position
                while first > 0 and ordered[first - 1] == ordered[position]:
                    first -= 1
                earlier[order[position]] = rows[order[first]]
        return earlier

    def _remember(self, hashes: np.ndarray, rows: np.ndarray) -> None:
        merged_hashes = np.concatenate([self._seen_hashes, hashes])
        merged_rows = np.concatenate([self._seen_rows, rows])
        order = np.argsort(merged_hashes, kind="stable")
        self._seen_hashes = merged_hashes[order]
        self._seen_rows = merged_rows[order]

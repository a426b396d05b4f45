"""Rows whose key repeats an earlier row of the same file.

Rows are compared by a 64-bit hash of their normalised key columns, so a file of many millions of
rows costs 16 bytes per row; a false "duplicate" needs a 64-bit collision (about 3e-8 for a
million-row file). Idempotency against rows already stored is exact: it is the store's merge on
the key columns themselves.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa


def key_hashes(table: pa.Table, key: tuple[str, ...]) -> np.ndarray:
    """A uint64 hash per row of the key columns (stable across chunks of one process)."""
    return pd.util.hash_pandas_object(table.select(list(key)).to_pandas(), index=False).to_numpy(dtype=np.uint64)


def repeated_rows(hashes: np.ndarray, rows: np.ndarray) -> dict[int, int]:
    """For each row that repeats an earlier row's key: {row: first row with that key}."""
    ordered = np.sort(hashes)  # a plain sort first: most files have no repeats, and it is 2x faster
    if not (ordered[1:] == ordered[:-1]).any():
        return {}
    order = np.argsort(hashes, kind="stable")  # equal hashes keep file order: the first is the earliest
    ordered = hashes[order]
    run_start = np.ones(len(ordered), dtype=bool)
    run_start[1:] = ordered[1:] != ordered[:-1]
    first_of_run = np.maximum.accumulate(np.where(run_start, np.arange(len(ordered)), 0))
    repeats = np.flatnonzero(~run_start)
    return {int(rows[order[i]]): int(rows[order[first_of_run[i]]]) for i in repeats}

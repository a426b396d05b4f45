"""Benchmark: the collapse check on real tables that ship inside scikit-learn, split in halves and corrupted.

Each dataset is shuffled (seeded) and cut in two: one half is the reference, the other the clean
candidate, which is also corrupted with `dmas.quality.planted` (variance shrink 0.7 and tail
truncation 5% on the column with the most spread relative to its mean, 10% copied rows, a mean
shift of 0.5 sd on that column, a correlation change of +0.3 on its most correlated pair). Prints
one JSON line: per dataset and corruption, whether collapse / drift was detected and by which
dimensions, and whether the clean half was flagged. Loaded from the installed package, never downloaded:

    flock /tmp/dmas-cpu.lock .venv/bin/python tests/bench/bench_collapse_real.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

DATASETS = ("breast_cancer", "wine", "diabetes", "digits", "iris")


def _frame(name: str) -> tuple[pd.DataFrame, str]:
    from sklearn import datasets

    loaded = getattr(datasets, f"load_{name}")(as_frame=True)
    frame = loaded.frame.copy()
    frame.columns = [str(column) for column in frame.columns]
    if name == "digits":  # 64 pixel columns: keep the 12 with the most variance, so the table stays readable
        pixels = [c for c in frame.columns if c != "target"]
        frame = frame[sorted(pixels, key=lambda c: -frame[c].var())[:12] + ["target"]]
    target = "target"
    if name != "diabetes":
        frame[target] = frame[target].astype(str)  # a class label, not a number
    return frame, target


def _corruptions(reference: pd.DataFrame, clean: pd.DataFrame, target: str) -> dict[str, pd.DataFrame]:
    from dmas.quality import planted

    numeric = [c for c in reference.columns if c != target and pd.api.types.is_numeric_dtype(reference[c])]
    spread = {c: reference[c].std() / (abs(reference[c].mean()) + reference[c].std()) for c in numeric}
    column = max(sorted(spread), key=spread.get)
    correlations = reference[numeric].corr().abs().where(~np.eye(len(numeric), dtype=bool)).stack()
    pair = tuple(sorted(correlations.idxmax()))
    return {"clean": clean,
            f"variance_0.7({column})": planted.variance_shrink(reference, 0.7, 1, candidate=clean, column=column),
            f"tail_5%({column})": planted.tail_truncation(reference, 0.05, 1, candidate=clean, column=column),
            "copies_10%": planted.memorization(reference, 0.1, 1, candidate=clean),
            f"correlation_+0.3{pair}": planted.correlation_change(reference, 0.3, 1, candidate=clean, columns=pair),
            f"mean_shift_0.5({column})": planted.mean_shift(reference, 0.5, 1, candidate=clean, columns=(column,))}


def main() -> None:
    from dmas.quality.check import run_check
    from dmas.quality.columns import encode_pair
    from dmas.quality.config import CollapseCheckConfig

    config = CollapseCheckConfig(cache_dir=tempfile.mkdtemp(prefix="dmas-bench-real-"))
    results = {}
    for name in DATASETS:
        frame, target = _frame(name)
        order = np.random.default_rng(0).permutation(len(frame))
        half = len(frame) // 2
        reference = frame.iloc[order[:half]].reset_index(drop=True)
        clean = frame.iloc[order[half:2 * half]].reset_index(drop=True)
        rows = {}
        for corruption, candidate in _corruptions(reference, clean, target).items():
            pair = encode_pair(pa.Table.from_pandas(reference, preserve_index=False),
                               pa.Table.from_pandas(candidate, preserve_index=False), target=target)
            report = run_check(pair.reference, pair.candidate, config).report()
            rows[corruption] = {"collapse": report["collapse_detected"], "drift": report["drift_detected"],
                                "by": sorted({flag["dimension"] for flag in report["flags"]})}
        results[name] = {"rows_per_half": half, "columns": len(frame.columns), "checks": rows}
    print(json.dumps({"bench": "collapse_real_data", "datasets": results}), flush=True)


if __name__ == "__main__":
    main()

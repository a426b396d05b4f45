"""What the cascade benches share: one cascade, its full model trained too, on documents a bench made.

The documents are written to `<folder>/<name>.parquet` (a `text` column, one document per row) and
read back the way `dmas cascade --data FILE --train-full` reads them.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd


def cascade_with_truth(name: str, documents: list[str], folder: Path, *, profile: str | None,
                       executor: str | None, overrides: dict | None = None,
                       keep: Path | None = None) -> tuple[dict, dict, float]:
    """(report, summary, seconds) of the cascade of `configs/cascade.yaml` (`profile`, then `overrides`);
    with `keep`, its report and timings are also written to `keep/<name>/` (to refit the runs later
    without training them again)."""
    from dmas.cascade.config import load_cascade_config, merged
    from dmas.cascade.run import run_cascade, summary, write_outcome
    from dmas.runtime import RaySettings

    path = folder / f"{name}.parquet"
    pd.DataFrame({"text": documents}).to_parquet(path, index=False)
    changes = merged({"data": {"path": str(path)}, "full": {"train": True}}, overrides or {})
    if executor:
        changes = merged(changes, {"execution": {"executor": executor}})
    config = load_cascade_config(profile=profile, overrides=changes)
    started = time.perf_counter()
    outcome = run_cascade(config, ray_settings=RaySettings(include_dashboard=False))
    seconds = time.perf_counter() - started
    if keep is not None:
        write_outcome(outcome, keep / name)
    return outcome.report, summary(outcome), seconds

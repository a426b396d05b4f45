"""`collapse_report`: load a candidate and a reference, run the check, write the JSON and HTML reports.

The one function behind `dmas collapse-check`, `jobs/collapse_check.py` and `POST /collapse-check`.
Whatever goes wrong comes out as a `QualityError` with its category code and retry flag.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dmas.errors import ConfigError, DmasError
from dmas.quality import errors
from dmas.quality.check import run_check
from dmas.quality.config import CollapseCheckConfig
from dmas.quality.errors import QualityError
from dmas.quality.registry import dimensions

log = logging.getLogger(__name__)


@dataclass
class CollapseOutcome:
    """The JSON report, the timings kept apart from it, and where both reports were written (if anywhere)."""

    report: dict[str, Any]
    timings: dict[str, Any]
    json_path: Path | None = None
    html_path: Path | None = None

    def summary(self) -> dict[str, Any]:
        """What the CLI prints: the report plus where it was written and how long it took."""
        return {**self.report, "timings": self.timings,
                "written": {"json": _text(self.json_path), "html": _text(self.html_path)}}


def collapse_report(candidate: str, reference: str, *, target: str | None = None, order: str | None = None,
                    kinds: dict[str, str] | None = None, config: CollapseCheckConfig | None = None,
                    out_dir: str | Path | None = None, store_uri: str | None = None) -> CollapseOutcome:
    """Check `candidate` against `reference` (files, pyarrow URIs or store tables like `events@12`)."""
    from dmas.quality.columns import load_pair

    config = config or CollapseCheckConfig()
    try:
        dimensions(config.dimensions)
    except ValueError as exc:
        raise QualityError(errors.BAD_SETTING, str(exc)) from None
    started = time.perf_counter()
    try:
        pair = load_pair(candidate, reference, target=target, order=order, kinds=kinds, store_uri=store_uri)
    except QualityError:
        raise
    except MemoryError:
        raise QualityError(errors.OUT_OF_MEMORY, "not enough memory to load both tables; sample them first",
                           retryable=True) from None
    except ConfigError as exc:  # the target, order or a kind override names a column that does not fit
        raise QualityError(errors.BAD_COLUMN, str(exc)) from None
    except DmasError as exc:
        raise QualityError(errors.UNREADABLE_INPUT, str(exc)) from None
    loaded_s = time.perf_counter() - started
    if not pair.reference.names or pair.reference.n_rows == 0 or pair.candidate.n_rows == 0:
        raise QualityError(errors.NOTHING_TO_COMPARE, _nothing_to_compare(pair))
    try:
        result = run_check(pair.reference, pair.candidate, config, inputs=pair.inputs, schema=pair.schema.as_dict())
    except QualityError:
        raise
    except MemoryError:
        raise QualityError(errors.OUT_OF_MEMORY, "out of memory during the check; lower max_rows",
                           retryable=True) from None
    except Exception as exc:  # a bug in a dimension: category 5, with what failed
        log.exception("collapse check failed")
        raise QualityError(errors.INTERNAL, f"the check failed unexpectedly ({type(exc).__name__}: {exc})") from exc
    timings = {"load_s": round(loaded_s, 3), **result.timings}
    outcome = CollapseOutcome(result.report(), timings)
    if out_dir is not None:
        from dmas.quality.report import write_report

        outcome.json_path, outcome.html_path = write_report(outcome.report, timings, out_dir)
    return outcome


def _nothing_to_compare(pair) -> str:
    if pair.reference.n_rows == 0 or pair.candidate.n_rows == 0:
        empty = "the reference" if pair.reference.n_rows == 0 else "the candidate"
        return f"{empty} has no rows"
    return f"no column is shared with the same kind: {pair.schema.as_dict()}"


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)

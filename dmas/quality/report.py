"""Write a collapse check's report files: the JSON contract, the HTML page beside it, timings apart.

The three files are written each atomically (a temporary file in the same folder, then `os.replace`),
so a reader never sees half a report. Timings are a separate file because they change from run to
run while the report's bytes must not.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from dmas.quality.report_html import render_html

JSON_NAME = "collapse_report.json"
HTML_NAME = "collapse_report.html"
TIMINGS_NAME = "collapse_timings.json"


def report_json(data: dict[str, Any]) -> str:
    """Canonical JSON text of a report (sorted keys, no NaN): the bytes the determinism contract is about."""
    return json.dumps(data, sort_keys=True, indent=2, allow_nan=False) + "\n"


def write_report(report: dict[str, Any], timings: dict[str, Any], out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write the JSON report, its HTML rendering and the timings into `out_dir` (created if missing)."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    text = report_json(report)  # before any write: a report that cannot be JSON leaves no files behind
    page = render_html(json.loads(text))  # the page shows exactly what the JSON file says
    json_path, html_path = folder / JSON_NAME, folder / HTML_NAME
    _write_atomic(json_path, text)
    _write_atomic(html_path, page)
    _write_atomic(folder / TIMINGS_NAME, report_json(timings))
    return json_path, html_path


def _write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` in one step: a crash leaves the old file or the new one, never half."""
    handle, staging = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        os.fchmod(handle, 0o644)  # mkstemp's 0600 would hide the report from the user's other tools
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise

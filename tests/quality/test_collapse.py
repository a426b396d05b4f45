"""`dmas collapse-check` and `jobs/collapse_check.py`: the printed report, the files beside it, exit codes."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dmas.cli import main
from dmas.quality import planted
from dmas.quality.report import HTML_NAME, JSON_NAME, TIMINGS_NAME

REPO = Path(__file__).resolve().parents[2]
ROWS = 1500
FAST = "distribution_fidelity,correlation_preservation,statistical_consistency"


def dmas(*argv: str) -> tuple[int, dict | None, str]:
    """`dmas ARGV` in this process: (exit code, the JSON it printed or None, its stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, json.loads(out.getvalue()) if out.getvalue() else None, err.getvalue()


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tables")
    reference = planted.reference_table(ROWS, 0)
    paths = {"reference": folder / "reference.parquet", "clean": folder / "clean.csv",
             "collapsed": folder / "collapsed.feather"}
    reference.to_parquet(paths["reference"], index=False)
    planted.reference_table(ROWS, 1).to_csv(paths["clean"], index=False)
    planted.variance_shrink(reference, 0.5, 2).to_feather(paths["collapsed"])
    return paths


def test_the_report_is_printed_and_written_beside_its_html(tables, tmp_path):
    code, printed, err = dmas("collapse-check", str(tables["collapsed"]), "--reference", str(tables["reference"]),
                              "--target", "target", "--order", "t", "--dimensions", FAST, "--out", str(tmp_path))
    assert code == 0, err
    assert printed["collapse_detected"] and not printed["drift_detected"]
    assert any(flag["dimension"] == "distribution_fidelity" and flag["columns"] == ["x1"] for flag in printed["flags"])
    assert "collapse DETECTED" in err and str(tmp_path / HTML_NAME) in err
    written = json.loads((tmp_path / JSON_NAME).read_text())
    assert written == {key: value for key, value in printed.items() if key not in ("timings", "written")}
    assert "total_s" in json.loads((tmp_path / TIMINGS_NAME).read_text())
    assert (tmp_path / HTML_NAME).read_text().count("<svg") >= 3


def test_same_inputs_same_report_bytes_whether_nulls_are_cached_or_not(tables, tmp_path):
    arguments = [str(tables["clean"]), "--reference", str(tables["reference"]), "--target", "target", "--order", "t",
                 "--dimensions", FAST]
    cache = tmp_path / "cache"
    os.environ["DMAS_QUALITY__CACHE_DIR"] = str(cache)
    try:
        for run in ("cold", "warm"):
            code, printed, err = dmas("collapse-check", *arguments, "--out", str(tmp_path / run), "--quiet")
            assert code == 0, err
    finally:
        del os.environ["DMAS_QUALITY__CACHE_DIR"]
    code, _, err = dmas("collapse-check", *arguments, "--out", str(tmp_path / "uncached"), "--quiet")
    assert code == 0, err
    assert printed["timings"]["cached_nulls"] == sorted([*FAST.split(","), "memorization"])
    first = (tmp_path / "cold" / JSON_NAME).read_bytes()
    assert first == (tmp_path / "warm" / JSON_NAME).read_bytes() == (tmp_path / "uncached" / JSON_NAME).read_bytes()
    assert (tmp_path / "cold" / HTML_NAME).read_bytes() == (tmp_path / "warm" / HTML_NAME).read_bytes()
    assert not json.loads(first)["collapse_detected"]


def test_fail_on_collapse_exits_1_and_still_prints_the_report(tables, tmp_path):
    code, printed, _ = dmas("collapse-check", str(tables["collapsed"]), "--reference", str(tables["reference"]),
                            "--dimensions", FAST, "--out", str(tmp_path), "--fail-on-collapse", "--quiet")
    assert code == 1 and printed["collapse_detected"]
    code, printed, _ = dmas("collapse-check", str(tables["clean"]), "--reference", str(tables["reference"]),
                            "--dimensions", FAST, "--out", str(tmp_path), "--fail-on-collapse", "--quiet")
    assert code == 0 and not printed["collapse_detected"]


@pytest.mark.parametrize(("arguments", "code", "says"), [
    (["missing.csv"], 11, "[1001 data]"),
    (["{clean}", "--target", "no_such_column"], 11, "[1003 data]"),
    (["{clean}", "--dimensions", "vibes"], 11, "[1004 data]"),
])
def test_errors_exit_with_their_category_and_say_what_to_fix(tables, tmp_path, arguments, code, says):
    arguments = [argument.format(clean=tables["clean"]) for argument in arguments]
    exit_code, printed, err = dmas("collapse-check", *arguments, "--reference", str(tables["reference"]),
                                   "--out", str(tmp_path), "--quiet")
    assert (exit_code, printed) == (code, None)
    assert says in err and not list(tmp_path.iterdir()), "a failed check must leave no report behind"


def test_the_job_script_runs_the_same_check(tables, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, str(REPO / "jobs" / "collapse_check.py"), str(tables["collapsed"]),
                           "--reference", str(tables["reference"]), "--dimensions", "distribution_fidelity",
                           "--out", str(tmp_path), "--quiet"], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["collapse_detected"] and (tmp_path / HTML_NAME).is_file()


@pytest.mark.slow
def test_report_bytes_are_the_same_on_one_cpu_and_on_two(tables, tmp_path):
    """All eight dimensions, run by the job script pinned to one CPU and free on both: same report bytes."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("this machine has one CPU")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for name, pinned in (("one", ["taskset", "-c", "0"]), ("two", [])):
        done = subprocess.run([*pinned, sys.executable, str(REPO / "jobs" / "collapse_check.py"),
                               str(tables["clean"]), "--reference", str(tables["reference"]), "--target", "target",
                               "--order", "t", "--out", str(tmp_path / name), "--quiet"],
                              capture_output=True, text=True, timeout=300, env=env)
        assert done.returncode == 0, done.stderr
    assert (tmp_path / "one" / JSON_NAME).read_bytes() == (tmp_path / "two" / JSON_NAME).read_bytes()

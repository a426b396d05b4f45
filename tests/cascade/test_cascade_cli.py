"""`dmas cascade` and `jobs/cascade.py`: the real output a user sees (JSON summary, report files, progress)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from dmas.cli import main
from tests.cascade.test_cascade import SMALL

ROOT = Path(__file__).resolve().parents[2]


def small_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "cascade.yaml"
    path.write_text(yaml.safe_dump({**SMALL, "execution": {"executor": "in_process"}}))
    return path


def test_cascade_prints_the_prediction_and_writes_the_report(tmp_path, capsys):
    code = main(["cascade", "--cascade-config", str(small_yaml(tmp_path)), "--out", str(tmp_path / "out"),
                 "--progress-interval", "0.05", "--train-full"])
    captured = capsys.readouterr()
    assert code == 0
    summary = json.loads(captured.out)
    assert summary["runs"] == 11 and summary["executor"] == "in_process"
    assert summary["interval"]["lower"] <= summary["predicted_validation_loss"] <= summary["interval"]["upper"]
    assert isinstance(summary["truth"]["inside_interval"], bool)
    report = json.loads(Path(summary["report"]).read_text())
    assert report["config_sha256"] == summary["config_sha256"] and len(report["runs"]) == 11
    assert json.loads((tmp_path / "out" / "cascade_timings.json").read_text())["runs_s"]
    lines = [line for line in captured.err.splitlines() if line.startswith("cascade: ")]
    assert lines and lines[-1].startswith("cascade: 12/12 runs, 100.0% of the work")


def test_a_bad_cascade_config_exits_2_naming_the_field(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**SMALL, "schedule": {"epochs": 0}}))
    assert main(["cascade", "--cascade-config", str(path)]) == 2
    assert "schedule.epochs" in capsys.readouterr().err


def test_the_job_script_runs_as_plain_python(tmp_path):
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(ROOT / "jobs" / "cascade.py"), "--cascade-config",
                           str(small_yaml(tmp_path)), "--out", str(tmp_path), "--quiet"],
                          capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["runs"] == 11
    assert (tmp_path / "cascade_report.json").is_file()

"""The `dmas` command and the jobs/ scripts, run as a user runs them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dmas.cli import main

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DMAS_RAY__INCLUDE_DASHBOARD": "false", "DMAS_RAY__NUM_CPUS": "2"}
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.parametrize("argv", [
    ["--help"], ["synth", "--help"], ["ingest", "--help"], ["ingest", "events", "--help"],
    ["ingest", "artifacts", "--help"], ["ingest", "artifact", "--help"], ["store", "--help"],
    ["store", "export", "--help"], ["forget", "--help"], ["demo", "--help"], ["features", "--help"],
    ["train", "--help"], ["reproduce", "--help"], ["runs", "--help"], ["lineage", "--help"],
])
def test_every_command_has_help(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 0 and "usage: dmas" in capsys.readouterr().out


def test_bad_input_exits_2_with_the_file_row_and_field(tmp_path, capsys):
    (tmp_path / "e.csv").write_text("entity_id,attributes\ne1,{oops\n")
    code = main(["ingest", "entities", str(tmp_path / "e.csv"), "--strict", "--store", str(tmp_path / "s"), "--quiet"])
    assert code == 2
    assert "e.csv, row 2, field 'attributes': not valid JSON" in capsys.readouterr().err


def test_invalid_setting_exits_2_naming_the_field(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DMAS_SEED", "-4")
    assert main(["store", "snapshot", "--store", str(tmp_path / "s")]) == 2
    assert "seed" in capsys.readouterr().err


def test_export_and_history_commands(tmp_path, capsys):
    store = str(tmp_path / "s")
    (tmp_path / "e.csv").write_text("entity_id\na\nb\n")
    assert main(["ingest", "entities", str(tmp_path / "e.csv"), "--store", store, "--quiet"]) == 0
    capsys.readouterr()
    assert main(["store", "export", "entities", str(tmp_path / "out.parquet"), "--store", store, "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 2
    assert main(["store", "lineage", "entities", "--store", store, "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["source_file"] == "e.csv"


@pytest.mark.slow
def test_main_job_runs_end_to_end_as_a_plain_script(tmp_path):
    result = _run(str(REPO / "jobs" / "demo.py"), "--entities", "60", "--workdir", "demo",
                  "--store", "store", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["ingest"]["events"]["failed_rows"] == 0
    assert summary["ingest"]["artifacts"]["unique_blobs"] < summary["ingest"]["artifacts"]["success_rows"]
    assert summary["reingest_events_inserted"] == 0
    assert summary["features"]["extracted"] == summary["ingest"]["artifacts"]["unique_blobs"]
    assert summary["train"]["status"] == "completed" and summary["train"]["identical_on_reproduce"]
    assert summary["serve"]["predicted"] == 2 and summary["serve"]["narrative"]
    assert summary["serve"]["upload_job"]["status"] == "succeeded"
    assert "ingest events:" in result.stderr and "forget" in result.stderr


def test_jobs_ingest_script_works_as_plain_python(tmp_path):
    (tmp_path / "e.csv").write_text("entity_id\na\n")
    result = _run(str(REPO / "jobs" / "ingest.py"), "entities", "e.csv", "--store", "s", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["inserted_rows"] == 1


def test_synth_prints_where_it_wrote_and_how_much(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "data"), "--entities", "12", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_entities"] == 12 and summary["entities_path"] == str(tmp_path / "data" / "entities.csv")
    assert sum(summary["artifacts_by_type"].values()) > 0

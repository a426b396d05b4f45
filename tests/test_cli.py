"""The `dmas` command and the jobs/ scripts, run as a user runs them: every command's real output."""

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dmas.api.network import free_loopback_port
from dmas.cli import main
from tests.listening import is_loopback, listening_sockets
from tests.processes import process_tree

REPO = Path(__file__).resolve().parents[1]
SERVE_REPLICA = "ray::ServeRepli"  # a replica's process name as /proc shows it (15 characters)


def _run(*args: str, cwd: Path, timeout_s: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "DMAS_RAY__INCLUDE_DASHBOARD": "false", "DMAS_RAY__NUM_CPUS": "2"}
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout_s,
                          env=env)


def dmas(*argv: str) -> tuple[int, object, str]:
    """Run `dmas ARGV` in this process: (exit code, the JSON it printed or None, what it wrote to stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*argv, "--quiet"])
    return code, json.loads(out.getvalue()) if out.getvalue() else None, err.getvalue()


@pytest.fixture(scope="module")
def small(tmp_path_factory, local_ray):
    """24 synthetic entities ingested with the CLI, kind by kind; local Ray shared with the session."""
    root = tmp_path_factory.mktemp("cli")
    store = str(root / "store")
    code, synth, _ = dmas("synth", "--out", str(root / "data"), "--entities", "24")
    assert code == 0
    reports = {}
    for kind in ("entities", "events", "interactions"):
        code, reports[kind], err = dmas("ingest", kind, synth[f"{kind}_path"], "--store", store)
        assert code == 0, err
    code, reports["artifacts"], err = dmas("ingest", "artifacts", synth["artifacts_path"], "--store", store)
    assert code == 0, err
    return {"root": root, "store": store, "synth": synth, "reports": reports}


@pytest.fixture(scope="module")
def trained(small):
    """Features for every blob, then a 2-epoch run trained in this process."""
    code, features, err = dmas("features", "--store", small["store"])
    assert code == 0, err
    code, run, err = dmas("train", "--no-ray", "--epochs", "2", "--store", small["store"])
    assert code == 0, err
    return {**small, "features": features, "run": run}


@pytest.mark.parametrize("argv", [
    ["--help"], ["synth", "--help"], ["ingest", "--help"], ["ingest", "events", "--help"],
    ["ingest", "artifacts", "--help"], ["ingest", "artifact", "--help"], ["store", "--help"],
    ["store", "export", "--help"], ["forget", "--help"], ["demo", "--help"], ["features", "--help"],
    ["train", "--help"], ["reproduce", "--help"], ["runs", "--help"], ["lineage", "--help"],
    ["serve", "--help"], ["keys", "--help"], ["score", "--help"], ["verify", "--help"],
])
def test_every_command_has_help(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 0 and "usage: dmas" in capsys.readouterr().out


def test_synth_prints_where_it_wrote_and_how_much(small):
    synth = small["synth"]
    assert synth["n_entities"] == 24 and synth["entities_path"] == str(small["root"] / "data" / "entities.csv")
    assert sum(synth["artifacts_by_type"].values()) > 0


def test_each_table_ingest_reports_its_rows(small):
    reports, synth = small["reports"], small["synth"]
    for kind, expected in (("entities", synth["n_entities"]), ("events", synth["n_events"]),
                           ("interactions", synth["n_interactions"])):
        report = reports[kind]
        assert (report["total_rows"], report["success_rows"], report["failed_rows"]) == (expected, expected, 0), kind
        assert report["errors"] == [] and report["inserted_rows"] == expected
    media = reports["artifacts"]
    assert media["success_rows"] == sum(synth["artifacts_by_type"].values()) and media["failed_rows"] == 0


def test_one_artifact_is_ingested_and_its_bytes_stored_once(small, tmp_path):
    store = str(tmp_path / "store")
    shutil.copytree(small["store"], store)
    image = small["root"] / "data" / "media" / "img_000000.png"
    code, report, err = dmas("ingest", "artifact", str(image), "--entity-id", "ent_000005", "--type", "image",
                             "--store", store)
    assert code == 0, err
    assert report["artifact_type"] == "image" and report["entity_id"] == "ent_000005"
    assert report["inserted"] and report["blob_was_stored"]  # the manifest brought the same bytes
    code, _, err = dmas("ingest", "artifact", str(image), "--type", "audio", "--store", store)
    assert code == 2 and err.startswith("dmas: error: ") and err.count("\n") == 1, err


def test_store_snapshot_history_lineage_and_export(small):
    store = small["store"]
    code, snapshot, _ = dmas("store", "snapshot", "--store", store)
    assert code == 0 and {"entities", "events", "interactions", "artifacts"} <= set(snapshot)
    code, history, _ = dmas("store", "history", "events", "--store", store)
    assert code == 0 and history[0]["version"] == snapshot["events"] and history[0]["source_file"] == "events.csv"
    code, lineage, _ = dmas("store", "lineage", "events", "--store", store)
    assert code == 0 and [source["source_file"] for source in lineage] == ["events.csv"]
    assert len(lineage[0]["source_sha256"]) == 64
    out = small["root"] / "events.parquet"
    code, export, _ = dmas("store", "export", "events", str(out), "--version", str(snapshot["events"]),
                           "--store", store)
    assert code == 0 and export["rows"] == small["synth"]["n_events"] and out.stat().st_size > 0


def test_features_extract_each_blob_once(trained):
    features = trained["features"]
    assert features["extracted"] == trained["reports"]["artifacts"]["unique_blobs"] and features["failed"] == 0
    code, again, _ = dmas("features", "--store", trained["store"])
    assert code == 0 and again["pending"] == 0


def test_train_runs_and_lineage_name_the_same_run(trained):
    run, store = trained["run"], trained["store"]
    assert run["status"] == "completed" and len(run["model_sha256"]) == 64
    code, runs, _ = dmas("runs", "--store", store)
    assert code == 0 and [record["run_id"] for record in runs] == [run["run_id"]]
    code, record, _ = dmas("runs", run["run_id"], "--store", store)
    assert code == 0 and record["model_sha256"] == run["model_sha256"] and record["status"] == "completed"
    code, lineage, err = dmas("lineage", run["run_id"], "--store", store)
    assert code == 0, err
    assert lineage["run_id"] == run["run_id"]
    assert lineage["data_manifest"]["tables"]["events"] == dmas("store", "snapshot", "--store", store)[1]["events"]
    assert [source["source_file"] for source in lineage["sources"]["events"]] == ["events.csv"]


def test_reproduce_gives_the_same_bytes(trained):
    code, check, err = dmas("reproduce", trained["run"]["run_id"], "--no-ray", "--store", trained["store"])
    assert code == 0, err
    assert check["identical_model"] and check["identical_test_predictions"]
    assert check["reproduced_model_sha256"] == trained["run"]["model_sha256"]


def test_forget_removes_the_entity_everywhere(small, tmp_path):
    store = str(tmp_path / "store")
    shutil.copytree(small["store"], store)
    code, report, err = dmas("forget", "ent_000003", "--store", store)
    assert code == 0, err
    assert report["tables"]["entities"]["rows_removed"] == 1 and report["tables"]["events"]["rows_removed"] > 0
    out = tmp_path / "entities.parquet"
    assert dmas("store", "export", "entities", str(out), "--store", store)[0] == 0
    remaining = pq.read_table(out, columns=["entity_id"])["entity_id"].to_pylist()
    assert len(remaining) == small["synth"]["n_entities"] - 1 and "ent_000003" not in remaining


def test_keys_prints_the_key_once_and_its_settings_entry():
    import hashlib

    code, created, _ = dmas("keys", "ops", "--role", "admin")
    assert code == 0 and created["settings_entry"]["key_id"] == "ops" and created["settings_entry"]["role"] == "admin"
    assert created["settings_entry"]["sha256"] == hashlib.sha256(created["api_key"].encode()).hexdigest()


@pytest.mark.parametrize("argv", [
    ["runs", "no-such-run"], ["lineage", "no-such-run"], ["reproduce", "no-such-run", "--no-ray"],
    ["store", "history", "no_such_table"], ["ingest", "events", "/no/such/file.csv"],
])
def test_bad_input_exits_2_with_one_line(argv, small):
    code, printed, err = dmas(*argv, "--store", small["store"])
    assert (code, printed) == (2, None)
    assert err.startswith("dmas: error: ") and err.count("\n") == 1, err


def test_bad_input_exits_2_with_the_file_row_and_field(tmp_path, capsys):
    (tmp_path / "e.csv").write_text("entity_id,attributes\ne1,{oops\n")
    code = main(["ingest", "entities", str(tmp_path / "e.csv"), "--strict", "--store", str(tmp_path / "s"), "--quiet"])
    assert code == 2
    assert "e.csv, row 2, field 'attributes': not valid JSON" in capsys.readouterr().err


def test_invalid_setting_exits_2_naming_the_field(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DMAS_SEED", "-4")
    assert main(["store", "snapshot", "--store", str(tmp_path / "s")]) == 2
    assert "seed" in capsys.readouterr().err


@pytest.mark.slow
def test_serve_stops_cleanly_on_sigterm(tmp_path):
    port = free_loopback_port()
    scratch = tempfile.mkdtemp(prefix="dmasserve", dir="/tmp")  # short: Ray's socket paths must stay < 108 chars
    env = {key: value for key, value in os.environ.items()  # as a user's shell has it
           if key not in ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_ADDRESS")}
    env.update(RAY_AUTH_MODE="disabled", RAY_TMPDIR=scratch, DMAS_RAY__NUM_CPUS="2",
               DMAS_RAY__INCLUDE_DASHBOARD="false")
    server = subprocess.Popen([sys.executable, "-m", "dmas.cli", "serve", "--port", str(port), "--store", "store"],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        _wait_for_health(port, server, timeout_s=180)
        started = {pid: _cmdline(pid) for pid in process_tree(server.pid) if pid != server.pid}
        sockets = listening_sockets(server.pid)
        server.send_signal(signal.SIGTERM)
        out, _ = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
    assert server.returncode == 0 and json.loads(out) == {"stopped": True}
    assert len(started) >= 3  # GCS, raylet, the Serve controller and proxy at least
    assert ("127.0.0.1", port) in {(address, listening) for address, listening, _ in sockets}
    # the one socket Ray 2.60 cannot put on loopback: each Serve replica's inter-deployment gRPC server,
    # bound to [::]:0 in ray/serve/_private/replica.py (token auth guards it outside tests; README)
    exposed = [entry for entry in sockets if not is_loopback(entry[0])]
    assert {(address, name) for address, _, name in exposed} <= {("::", SERVE_REPLICA)}, exposed
    assert _survivors(started, wait_s=15) == {}


def _wait_for_health(port: int, server: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert server.poll() is None, "dmas serve exited before it was ready"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                if json.load(response) == {"status": "ok"}:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"no /health on port {port} within {timeout_s} s")


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _survivors(started: dict[int, bytes], wait_s: float) -> dict[int, bytes]:
    """The processes of `started` still running (same pid, same command line) after up to `wait_s`."""
    deadline = time.monotonic() + wait_s
    while True:
        alive = {pid: cmd for pid, cmd in started.items() if cmd and _cmdline(pid) == cmd}
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.5)


# README command 1 installs no test extra: the main job runs here with those packages made unimportable
WITHOUT_TEST_EXTRA = ("import runpy, sys; sys.modules.update(dict.fromkeys(['httpx', 'pytest', 'schemathesis'])); "
                      "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")


@pytest.mark.slow
def test_main_job_runs_end_to_end_as_a_plain_script(tmp_path):
    result = _run("-c", WITHOUT_TEST_EXTRA, str(REPO / "jobs" / "demo.py"), "--entities", "60", "--workdir", "demo",
                  "--store", "store", cwd=tmp_path, timeout_s=900)  # the whole product, the 18-run cascade included
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["ingest"]["events"]["failed_rows"] == 0
    assert summary["ingest"]["artifacts"]["unique_blobs"] < summary["ingest"]["artifacts"]["success_rows"]
    assert summary["reingest_events_inserted"] == 0
    assert summary["features"]["extracted"] == summary["ingest"]["artifacts"]["unique_blobs"]
    assert summary["train"]["status"] == "completed" and summary["train"]["identical_on_reproduce"]
    assert summary["serve"]["predicted"] == 2 and summary["serve"]["narrative"]
    assert summary["serve"]["upload_job"]["status"] == "succeeded"
    live = summary["serve"]["live"]  # new events after training change the live score; receipts verify
    assert live["probability_after"] != live["probability_before"] and live["receipt"] == "verified"
    assert 0 <= live["inline_probability"] <= 1
    assert summary["score"]["rows"] == 60 and summary["score"]["receipt"] == "verified"
    cascade = summary["serve"]["cascade"]  # the default 18-run cascade as an HTTP job, its progress streamed
    assert cascade["runs"] == 18 and cascade["progress_events"] >= 1
    assert cascade["interval"]["lower"] <= cascade["predicted_validation_loss"] <= cascade["interval"]["upper"]
    assert "POST /cascade?async=true" in result.stderr and "event 1: cascade:" in result.stderr
    checks = summary["collapse_check"]  # a clean and a collapsed candidate, both verdicts printed
    assert not checks["clean"]["collapse_detected"] and checks["collapsed"]["collapse_detected"]
    assert (tmp_path / checks["collapsed"]["html"]).is_file()
    assert "collapse-check: clean candidate" in result.stderr and "collapse DETECTED" in result.stderr
    assert "ingest events:" in result.stderr and "forget" in result.stderr
    assert "rank_ndcg@10" in result.stderr and "GET /health/queues" in result.stderr  # the original API's reads


def test_jobs_ingest_script_works_as_plain_python(tmp_path):
    (tmp_path / "e.csv").write_text("entity_id,attributes\na,{}\n")
    result = _run(str(REPO / "jobs" / "ingest.py"), "entities", "e.csv", "--store", "s", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["inserted_rows"] == 1

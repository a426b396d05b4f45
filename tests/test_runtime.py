"""The embedded Ray that `ensure_ray` starts: every server it opens listens on loopback only."""

import os
import subprocess
import sys
import tempfile

import pytest

from tests.listening import is_loopback, listening_sockets

# Imports ray first, as `dmas serve` does, then starts the embedded default and runs one task (which
# starts a worker and its gRPC server); says "ready" and holds Ray until its stdin closes.
EMBEDDED = """
import sys
import ray
from dmas.runtime import RaySettings, ensure_ray
ensure_ray(RaySettings())
ray.get(ray.remote(lambda: 1).remote())
print("ready", flush=True)
sys.stdin.read()
ray.shutdown()
"""


@pytest.mark.slow
def test_the_embedded_ray_listens_on_loopback_only():
    env = {key: value for key, value in os.environ.items()
           if key not in ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_ADDRESS")}  # as a user's shell has it
    scratch = tempfile.mkdtemp(prefix="dmasrt", dir="/tmp")  # short: Ray's socket paths must stay < 108 chars
    env.update(RAY_AUTH_MODE="disabled", RAY_TMPDIR=scratch)
    child = subprocess.Popen([sys.executable, "-c", EMBEDDED], cwd=scratch, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        assert child.stdout.readline().strip() == "ready"
        sockets = listening_sockets(child.pid)
    finally:
        child.communicate(timeout=120)
    names = {name for _, _, name in sockets}
    # GCS, raylet, the dashboard and its agent, the runtime-env agent and a worker all listen somewhere
    assert {"gcs_server", "raylet", "ray::DashboardA", "ray::RuntimeEnv"} <= names, sockets
    assert [entry for entry in sockets if not is_loopback(entry[0])] == []
    assert child.returncode == 0

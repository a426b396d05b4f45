"""Replicas on different nodes answer from the same committed data, and losing a node loses no request.

A real two-node Ray cluster on this machine (ray.cluster_utils.Cluster), in its own process: the
test session already runs its local Ray.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_two_nodes_same_bytes_and_no_lost_request(tmp_path):
    script = Path(__file__).with_name("two_nodes.py")
    done = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=600,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print(report)
    assert report["replicas_on_nodes"] == 2
    assert report["same_bytes_before_commit"] and report["same_bytes_after_commit"] and report["changed_by_commit"]
    assert report["requests_during_node_loss"] > 5
    assert report["lost"] == 0 and report["wrong"] == 0

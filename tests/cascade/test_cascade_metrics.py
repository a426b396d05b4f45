"""The cascade's progress as Ray metrics: each snapshot sets the gauges under its cascade's tag, and Ray
serves them where Prometheus (and the dashboard's Grafana) scrape."""

import time
import urllib.request

import pytest

from dmas.cascade import metrics


class _Recording:
    def __init__(self):
        self.values = []

    def set(self, value, tags):
        self.values.append((value, tags))


def test_each_snapshot_sets_the_gauges_tagged_by_cascade_and_still_reaches_the_sink(monkeypatch):
    gauges = {name: _Recording() for name in ("completed", "total", "percent", "current_loss", "eta_s", "gpu")}
    monkeypatch.setattr(metrics, "_gauges", lambda: gauges)
    seen = []
    sink = metrics.exported_progress("job-7", seen.append)
    snapshot = {"completed": 3, "total": 18, "percent": 12.5, "current_loss": None, "eta_s": 40.0,
                "gpus": [{"gpu": 0, "utilisation_percent": 87}, {"gpu": 1, "utilisation_percent": 91}]}
    sink(snapshot)
    assert seen == [snapshot]
    assert gauges["completed"].values == [(3.0, {"cascade": "job-7"})]
    assert gauges["total"].values == [(18.0, {"cascade": "job-7"})]
    assert gauges["current_loss"].values == [], "no loss yet: the gauge keeps its value"
    assert gauges["gpu"].values == [(87.0, {"cascade": "job-7", "gpu": "0"}), (91.0, {"cascade": "job-7", "gpu": "1"})]


def test_the_real_gauges_accept_a_snapshot_outside_ray():
    metrics.export_progress("cli", {"completed": 0, "total": 2, "percent": 0.0, "current_loss": 5.5, "eta_s": None})


@pytest.mark.slow
def test_a_cascade_job_s_progress_reaches_rays_prometheus_endpoint(local_ray):
    """What the dashboard's Grafana scrapes: the node's metrics port serves the gauges Ray prefixes `ray_`."""
    @local_ray.remote(num_cpus=0)
    def report_progress() -> None:
        from dmas.cascade.metrics import export_progress

        export_progress("scrape-test", {"completed": 7, "total": 18, "percent": 42.5, "current_loss": 1.25,
                                        "eta_s": 30.0})

    local_ray.get(report_progress.remote())
    port = next(node["MetricsExportPort"] for node in local_ray.nodes() if node["Alive"])
    deadline, found = time.monotonic() + 90, {}
    while time.monotonic() < deadline and len(found) < 3:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        for line in text.splitlines():
            if 'cascade="scrape-test"' in line and not line.startswith("#"):
                found[line.split("{", 1)[0]] = float(line.rsplit(" ", 1)[1])
        time.sleep(2)
    assert found.get("ray_dmas_cascade_percent") == 42.5, found
    assert found.get("ray_dmas_cascade_runs_completed") == 7.0 and found.get("ray_dmas_cascade_runs_total") == 18.0

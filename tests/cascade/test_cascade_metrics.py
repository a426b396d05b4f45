"""The cascade's progress as Ray metrics: each snapshot sets the gauges under its cascade's tag."""

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

"""A cascade's progress as Ray metrics, for the Ray dashboard's Grafana panels (and any Prometheus).

    on_progress = exported_progress(cascade_id, on_progress)

Each progress report sets gauges tagged with the cascade's id: runs completed, runs in all, percent
of the work done, the latest training loss and the ETA in seconds (and each GPU's
utilisation where there are GPUs). Outside a Ray process the gauges are kept but go nowhere, so the
same sink serves the CLI, a `ray job submit` and an HTTP job.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from ray.util import metrics

ProgressSink = Callable[[dict], None]


@functools.cache
def _gauges() -> dict[str, metrics.Gauge]:
    """One set of gauges per process (Ray refuses a second metric of the same name with other tags)."""
    tags = ("cascade",)
    return {"completed": metrics.Gauge("dmas_cascade_runs_completed", "proxy runs finished", tags),
            "total": metrics.Gauge("dmas_cascade_runs_total", "proxy runs planned", tags),
            "percent": metrics.Gauge("dmas_cascade_percent", "percent of the cascade's work done", tags),
            "current_loss": metrics.Gauge("dmas_cascade_loss", "mean latest training loss of the running runs", tags),
            "eta_s": metrics.Gauge("dmas_cascade_eta_seconds", "estimated seconds to the cascade's end", tags),
            "gpu": metrics.Gauge("dmas_cascade_gpu_utilisation_percent", "utilisation of each GPU",
                                 ("cascade", "gpu"))}


def export_progress(cascade_id: str, snapshot: dict) -> None:
    """Set the gauges from one progress snapshot (a value the snapshot lacks leaves its gauge as it was)."""
    gauges, tags = _gauges(), {"cascade": cascade_id}
    for key in ("completed", "total", "percent", "current_loss", "eta_s"):
        if snapshot.get(key) is not None:
            gauges[key].set(float(snapshot[key]), tags=tags)
    for gpu in snapshot.get("gpus", []):
        gauges["gpu"].set(float(gpu["utilisation_percent"]), tags={**tags, "gpu": str(gpu["gpu"])})


def exported_progress(cascade_id: str, on_progress: ProgressSink) -> ProgressSink:
    """`on_progress`, with each snapshot also exported as Ray metrics under `cascade_id`."""

    def report(snapshot: dict) -> None:
        export_progress(cascade_id, snapshot)
        on_progress(snapshot)

    return report

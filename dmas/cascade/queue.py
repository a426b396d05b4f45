"""The cascade's run queue: hands runs to whoever trains them, collects results, tells progress.

One plain class serves both executors: the in-process executor calls it directly, and under Ray
Train it is a Ray actor that every worker claims runs from (so a worker that finishes early takes
the next run; which worker trains a run never changes its bytes). Runs are handed out in plan order
(tier by tier, the costliest of a tier first so the tier's tail is short).

Progress is measured in work, `steps x (parameters + STEP_OVERHEAD_PARAMETERS)`: a step's cost
grows with the model, plus a fixed part (the FFTs, the output layer, Python) that on this CPU weighs
about as much as 100,000 parameters (measured: 16x1, 45k parameters: 23 ms/step; 64x2, 141k:
51 ms/step, one thread).
"""

from __future__ import annotations

import time

STEP_OVERHEAD_PARAMETERS = 100_000


class RunQueue:
    """`plan`: one dict per run, in hand-out order: {"name", "spec": {...}, "steps", "parameters"}."""

    def __init__(self, plan: list[dict]):
        self.plan = {run["name"]: run for run in plan}
        self.waiting = [run["name"] for run in plan]
        self.running: dict[str, dict] = {}
        self.results: dict[str, dict] = {}
        self.failures: dict[str, str] = {}
        self.started = time.monotonic()

    def claim(self, worker: int) -> dict | None:
        """The next run for `worker`, or None when none is left (or a run failed: the cascade stops)."""
        if not self.waiting or self.failures:
            return None
        name = self.waiting.pop(0)
        self.running[name] = {"worker": worker, "step": 0, "loss": None}
        return self.plan[name]["spec"]

    def update(self, name: str, step: int, loss: float) -> None:
        if name in self.running:
            self.running[name].update(step=step, loss=loss)

    def finish(self, name: str, result: dict) -> None:
        self.running.pop(name, None)
        self.results[name] = result

    def fail(self, name: str, error: str) -> None:
        self.running.pop(name, None)
        self.failures[name] = error

    def collected(self) -> tuple[dict[str, dict], dict[str, str]]:
        return self.results, self.failures

    def snapshot(self) -> dict:
        """Where the cascade stands: completed / total runs, percent of work, the running runs, an ETA."""
        work = {name: run["steps"] * (run["parameters"] + STEP_OVERHEAD_PARAMETERS) for name, run in self.plan.items()}
        done = sum(work[name] for name in self.results)
        done += sum(work[name] * state["step"] / max(1, self.plan[name]["steps"])
                    for name, state in self.running.items())
        share = done / max(1, sum(work.values()))
        elapsed = time.monotonic() - self.started
        running = [{"run": name, "worker": state["worker"], "step": state["step"], "steps": self.plan[name]["steps"],
                    "loss": state["loss"]} for name, state in sorted(self.running.items())]
        latest = [state["loss"] for state in self.running.values() if state["loss"] is not None]
        return {"completed": len(self.results), "total": len(self.plan), "failed": len(self.failures),
                "percent": round(100.0 * share, 1),
                "current_loss": round(sum(latest) / len(latest), 4) if latest else None,
                "elapsed_s": round(elapsed, 1),
                "eta_s": round(elapsed * (1 - share) / share, 1) if share > 0 else None,
                "running": running}


def progress_line(snapshot: dict) -> str:
    """One human line of a snapshot, e.g. `cascade: 8/18 runs, 17.5% of the work, loss 5.24, ETA 70 s`."""
    parts = [f"cascade: {snapshot['completed']}/{snapshot['total']} runs", f"{snapshot['percent']}% of the work"]
    if snapshot.get("current_loss") is not None:
        parts.append(f"loss {snapshot['current_loss']:.4g}")
    if snapshot.get("eta_s") is not None:
        parts.append(f"ETA {snapshot['eta_s']:.0f} s")
    running = ", ".join(f"{run['run']} step {run['step']}/{run['steps']}" for run in snapshot.get("running", []))
    gpus = ", ".join(f"GPU{gpu['gpu']} {gpu['utilisation_percent']}%" for gpu in snapshot.get("gpus", []))
    return ", ".join(parts) + (f" [{running}]" if running else "") + (f" ({gpus})" if gpus else "")

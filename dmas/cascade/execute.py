"""Where a cascade's runs train: one Ray Train run whose workers share them, or this process.

Ray Train costs ~16 s to start, so the cascade starts it once: its workers (one per concurrent run:
a fraction of the CPUs each, or one GPU each) claim runs from the `RunQueue` actor until none is
left, tier by tier. The driver wakes every `progress_interval_s` to hand the queue's snapshot (and
each GPU's utilisation, where there are GPUs) to `on_progress`. A run that raises fails the cascade
with its name and error; nothing is retried (`max_failures=0`: a retried worker would train its runs
again).
"""

from __future__ import annotations

import concurrent.futures
import math
import tempfile
import time
import uuid
from collections.abc import Callable

import torch

from dmas.cascade.config import CascadeConfig
from dmas.cascade.gpus import gpu_utilisation
from dmas.cascade.kinds import CascadeData
from dmas.cascade.proxy import ProxyResult, ProxySpec
from dmas.cascade.queue import RunQueue
from dmas.errors import ConfigError, DmasError
from dmas.runtime import RaySettings, ensure_ray
from dmas.train.determinism import torch_state_restored

UPDATE_EVERY_S = 1.0  # a worker tells the queue its step at most this often


class CascadeRunError(DmasError):
    """A proxy run failed; names the run and its error."""


ProgressSink = Callable[[dict], None]


def execute(plan: list[dict], config: CascadeConfig, data: CascadeData, on_progress: ProgressSink,
            ray_settings: RaySettings | None = None) -> tuple[dict[str, ProxyResult], dict]:
    """Train every planned run on `data` (either kind); returns the results by run name and how the
    execution went."""
    started = time.perf_counter()

    def report(snapshot: dict) -> None:
        gpus = gpu_utilisation()
        on_progress({**snapshot, "gpus": gpus} if gpus else snapshot)

    if config.execution.executor == "in_process":
        results, details = _in_process(plan, config, data, report)
    else:
        results, details = _with_ray_train(plan, config, data, report, ray_settings or RaySettings())
    wall = time.perf_counter() - started
    busy = sum(result.seconds for result in results.values())
    details.update(total_s=round(wall, 2), run_seconds=round(busy, 2),
                   overhead_share=round(max(0.0, 1 - busy / (details["workers"] * wall)), 3) if wall else 0.0)
    return results, details


def _in_process(plan: list[dict], config: CascadeConfig, data: CascadeData,
                on_progress: ProgressSink) -> tuple[dict[str, ProxyResult], dict]:
    queue = RunQueue(plan)
    last = [time.monotonic()]

    with torch_state_restored():  # the caller keeps its torch threads
        while (claimed := queue.claim(0)) is not None:
            spec = ProxySpec(**claimed)

            def tell(step: int, steps: int, loss: float, name: str = spec.name) -> None:
                queue.update(name, step, loss)
                if time.monotonic() - last[0] >= config.progress_interval_s:
                    last[0] = time.monotonic()
                    on_progress(queue.snapshot())

            queue.finish(spec.name, data.train(spec, config, on_step=tell).to_dict())
    on_progress(queue.snapshot())
    return {name: ProxyResult.from_dict(value) for name, value in queue.results.items()}, \
        {"executor": "in_process", "workers": 1}


def worker_count(config: CascadeConfig, runs: int, free: dict[str, float]) -> int:
    """Concurrent runs: `execution.workers`, else what the cluster has free now (GPUs, or CPUs / cpus_per_run).

    Ray Train waits forever for workers it cannot place, so a cascade that cannot place even one says so
    at once (a Serve replica or another job may hold part of a small machine's CPUs).
    """
    execution = config.execution
    if execution.use_gpu:
        gpus = int(free.get("GPU", 0))
        wanted = execution.workers or gpus
        if gpus < max(1, wanted):
            raise ConfigError(f"execution.use_gpu: the cascade asks for {max(1, wanted)} GPU(s), the cluster has "
                              f"{gpus} free; use the CPU profile (--profile cpu) or a machine with GPUs")
        return max(1, min(wanted, runs))
    fit = math.floor(free.get("CPU", 0) / execution.cpus_per_run)
    if fit < 1 or (execution.workers or 0) > fit:
        raise ConfigError(f"execution: {execution.workers or 1} run(s) of cpus_per_run {execution.cpus_per_run} need "
                          f"{(execution.workers or 1) * execution.cpus_per_run:g} CPUs, the cluster has "
                          f"{free.get('CPU', 0):g} free; lower execution.cpus_per_run or workers, or use "
                          "executor: in_process")
    return min(execution.workers or fit, runs)


def _with_ray_train(plan: list[dict], config: CascadeConfig, data: CascadeData, on_progress: ProgressSink,
                    ray_settings: RaySettings) -> tuple[dict[str, ProxyResult], dict]:
    import ray
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    ensure_ray(ray_settings)
    workers = worker_count(config, len(plan), ray.available_resources())
    queue = ray.remote(num_cpus=0)(RunQueue).remote(plan)
    resources = {"CPU": config.execution.cpus_per_run, **({"GPU": 1} if config.execution.use_gpu else {})}
    with tempfile.TemporaryDirectory(prefix="dmas-cascade-") as storage:
        trainer = TorchTrainer(
            cascade_worker_loop,
            train_loop_config={"config": config.model_dump_json(), "queue": queue, "data": ray.put(data)},
            scaling_config=ScalingConfig(num_workers=workers, use_gpu=config.execution.use_gpu,
                                         resources_per_worker=resources),
            run_config=RunConfig(name=f"cascade-{uuid.uuid4().hex[:12]}", storage_path=storage,
                                 failure_config=FailureConfig(max_failures=0)),
        )
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            fitting = pool.submit(trainer.fit)
            while True:
                try:
                    fitting.result(timeout=config.progress_interval_s)
                    break
                except concurrent.futures.TimeoutError:
                    on_progress(ray.get(queue.snapshot.remote()))
                except Exception:  # a worker raised: the queue knows which run and why
                    break
    results, failures = ray.get(queue.collected.remote())
    on_progress(ray.get(queue.snapshot.remote()))
    ray.kill(queue)
    if failures:
        name, error = sorted(failures.items())[0]
        raise CascadeRunError(f"proxy run {name} failed: {error}")
    missing = [run["name"] for run in plan if run["name"] not in results]
    if missing:
        error = fitting.exception()
        raise CascadeRunError(f"Ray Train ended without training {', '.join(missing)}: {error}")
    return {name: ProxyResult.from_dict(value) for name, value in results.items()}, \
        {"executor": "ray_train", "workers": workers}


def cascade_worker_loop(loop_config: dict) -> None:
    """Runs in each Ray Train worker: claim runs from the queue and train them until none is left."""
    import ray
    import ray.train
    import ray.train.torch

    config = CascadeConfig.model_validate_json(loop_config["config"])
    queue, data = loop_config["queue"], ray.get(loop_config["data"])
    rank = ray.train.get_context().get_world_rank()
    device = ray.train.torch.get_device() if config.execution.use_gpu else torch.device("cpu")
    while (claimed := ray.get(queue.claim.remote(rank))) is not None:
        spec = ProxySpec(**claimed)
        last = [0.0]

        def tell(step: int, steps: int, loss: float, name: str = spec.name, last: list[float] = last) -> None:
            if time.monotonic() - last[0] >= UPDATE_EVERY_S or step == steps:
                last[0] = time.monotonic()
                queue.update.remote(name, step, loss)

        try:
            result = data.train(spec, config, device=device, on_step=tell)
        except Exception as exc:
            ray.get(queue.fail.remote(spec.name, f"{type(exc).__name__}: {exc}"))
            raise
        ray.get(queue.finish.remote(spec.name, result.to_dict()))

"""Connecting to Ray: an existing cluster when one is configured, else an embedded local Ray.

The only place that calls `ray.init`, so jobs, the CLI and tests start Ray the same way.
"""

from __future__ import annotations

import logging
import os

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)

# Ray Train collects workers' per-epoch reports on its health-check tick (2 s by default), which
# made every epoch of a small model cost ~2.5 s; measured 47 s -> 25 s for 10 epochs at 0.1 s.
TRAIN_REPORT_INTERVAL_S = "0.2"


class RaySettings(BaseModel):
    """How dmas reaches Ray: an existing cluster (`address`) or an embedded local one."""

    model_config = ConfigDict(extra="forbid")

    address: str | None = Field(None, description="cluster address; None uses RAY_ADDRESS or starts a local Ray")
    num_cpus: int | None = Field(None, gt=0, description="CPUs of the embedded local Ray (None: all)")
    object_store_memory: int = Field(200 * 1024**2, gt=0, description="object store of the embedded local Ray")
    include_dashboard: bool = Field(True, description="start the dashboard with the embedded local Ray")


def ensure_ray(settings: RaySettings) -> None:
    """Attach to `settings.address` / RAY_ADDRESS if given, else start a small local Ray on loopback.

    Does nothing when Ray is already initialised in this process (a job inside a cluster, a test
    session, a caller that chose its own options).
    """
    import ray

    if ray.is_initialized():
        return
    address = settings.address or os.environ.get("RAY_ADDRESS")
    if address:
        log.info("connecting to Ray at %s", address)
        ray.init(address=address, log_to_driver=True)
        return
    _listen_on_loopback_only()
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", TRAIN_REPORT_INTERVAL_S)
    # workers' own log lines stay in the session logs and the dashboard: forwarded, they land on this
    # process's stdout, where the CLI prints its JSON result
    ray.init(num_cpus=settings.num_cpus, include_dashboard=settings.include_dashboard, dashboard_host="127.0.0.1",
             object_store_memory=settings.object_store_memory, log_to_driver=False)
    log.info("started a local Ray with %s CPUs", ray.cluster_resources().get("CPU"))


def _listen_on_loopback_only() -> None:
    """Put every server of the embedded single-node Ray on 127.0.0.1, so nothing off this machine reaches it.

    Ray 2.60 turns a node address of 127.0.0.1 into the machine's address, and its gRPC servers bind all
    interfaces unless the node address is loopback. Its single-node mode (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0)
    keeps loopback: the processes Ray starts read the variable from the environment, while this process
    read it once when `ray` was first imported, so the constant is set here too.
    """
    from ray._private import ray_constants

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False

"""Check the files of a manifest in parallel on Ray tasks, or in this process for small manifests.

Each task runs `admit_files` on the machine that reads the files (on a cluster: manifest paths on a
shared filesystem, the store on shared storage), and gets paths, not bytes. Rows are dealt to tasks
by the shared planner; the outcomes come back sorted by row, so the report and the single commit
built from them are the same whichever way and in however many tasks the files were checked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from dmas.ingest.admission import admit_files
from dmas.limits import LimitSettings
from dmas.runtime import RaySettings
from dmas.task_plan import plan_tasks

log = logging.getLogger(__name__)

_IN_MANIFEST_ORDER = (("row", "ascending"),)  # snake-dealt rows: every task samples every stretch of the file


class MediaCheckSettings(BaseModel):
    """How the files of a manifest are checked (never what is checked: that is `LimitSettings`)."""

    model_config = ConfigDict(extra="forbid")

    # Measured on 2 CPUs (tests/bench/bench_ingest.py --media, 32k synthetic files): the loop checked
    # 1.9k files/s, Ray tasks 3.3k files/s once running, and starting a local Ray plus its workers'
    # first imports cost ~3.6 s, so a manifest breaks even at ~15k files. On a running cluster (Ray
    # already up) a lower threshold pays; set it there.
    ray_min_files: int = Field(15_000, gt=0, description="fewest files to check for starting Ray to pay off")
    files_per_task: int = Field(2_000, gt=0, description="most files per check task")
    tasks_per_cpu: int = Field(2, gt=0, description="fewest check tasks per CPU; rows are dealt evenly")
    max_retries: int = Field(3, ge=0, description="retries of a crashed check task")


class ManifestChecker:
    """Checks manifest chunks' files with `admit_files`: on Ray from `ray_min_files` on, else here.

    `use_ray` True or False forces the choice (tests, small stores). Once one chunk of a manifest
    went to Ray, later chunks do too: Ray is already paid for.
    """

    def __init__(self, base: str, store_uri: str, limits: LimitSettings, settings: MediaCheckSettings,
                 ray_settings: RaySettings, use_ray: bool | None):
        self.task_args = {"base": base, "store_uri": store_uri, "limits": limits}
        self.settings = settings
        self.ray_settings = ray_settings
        self.use_ray = use_ray

    def check(self, files: pa.Table, on_files: Callable[[int], None]) -> pa.Table:
        """Outcomes (`admission.OUTCOMES`) of `files` (row, path, artifact_type), sorted by row."""
        if files.num_rows == 0:
            return admit_files(files, **self.task_args)
        if self.use_ray is None and files.num_rows >= self.settings.ray_min_files:
            self.use_ray = True
        outcomes = self._on_ray(files, on_files) if self.use_ray else self._here(files, on_files)
        return pa.concat_tables(outcomes).sort_by("row")

    def _here(self, files: pa.Table, on_files: Callable[[int], None]) -> list[pa.Table]:
        outcomes = []
        for task in plan_tasks(files, self.settings.files_per_task, 1, 1, _IN_MANIFEST_ORDER):
            outcomes.append(admit_files(task, **self.task_args))
            on_files(task.num_rows)
        return outcomes

    def _on_ray(self, files: pa.Table, on_files: Callable[[int], None]) -> list[pa.Table]:
        import ray

        from dmas.runtime import ensure_ray

        ensure_ray(self.ray_settings)
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        tasks = plan_tasks(files, self.settings.files_per_task, cpus, self.settings.tasks_per_cpu, _IN_MANIFEST_ORDER)
        log.info("checking %d files in %d Ray tasks", files.num_rows, len(tasks))
        remote = ray.remote(admit_files).options(num_cpus=1, max_retries=self.settings.max_retries)
        pending = [remote.remote(task, **self.task_args) for task in tasks]
        outcomes = []
        for ref in pending:
            outcomes.append(ray.get(ref))
            on_files(outcomes[-1].num_rows)
        return outcomes

"""Starting a job as a Ray task and answering for it: at its end (the original stack's way) or at once.

A job orchestrates: the Ray Data and Ray Train work it starts reserves its own CPUs, so the job
itself reserves none (reserving one would leave a 2-CPU machine too little to run that work).
A crashed job is not retried: it is recorded as failed and the client starts it again.

Job tasks are submitted by a `JobLauncher` actor, never by the request itself: Ray Serve cancels
the request of a client that hangs up, and `ray.cancel` is recursive, so a task the request had
submitted would be cancelled with it (a sync `POST /train` left its run failed). A job started is
a job that runs to its end, whoever stops waiting for it.
"""

from __future__ import annotations

import asyncio
import functools
import shutil
from pathlib import Path

import ray
from fastapi import Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from dmas.api.errors import error_body
from dmas.api.jobs import JobBook, JobRecord, run_job
from dmas.api.uploads import save_upload
from dmas.config import Settings
from dmas.errors import DmasError
from dmas.store import Store
from serve.context import ReplicaContext


@ray.remote(num_cpus=0, max_retries=0)
def job_task(job_id: str, operation: str, params: dict, settings_json: str) -> dict:
    """Run one job in a Ray worker and record how it ended (see dmas.api.jobs.run_job)."""
    settings = Settings.model_validate_json(settings_json)
    return run_job(JobBook(Store(settings.store_uri)), job_id, operation, params, settings).to_dict()


@ray.remote(num_cpus=0, max_restarts=-1)
class JobLauncher:
    """Owns the job tasks of one ingress replica, and records a job whose worker died."""

    def __init__(self, settings_json: str):
        self.settings_json = settings_json
        self.jobs = JobBook(Store(Settings.model_validate_json(settings_json).store_uri))
        self.watching: set[asyncio.Task] = set()

    async def start(self, job_id: str, operation: str, params: dict) -> list[ray.ObjectRef]:
        """Submit the job's task and return its ref (in a list, so the caller gets the ref, not the result)."""
        ref = job_task.options(name=f"dmas-{operation}-{job_id}").remote(job_id, operation, params,
                                                                         self.settings_json)
        watcher = asyncio.get_running_loop().create_task(self._watch(job_id, ref))
        self.watching.add(watcher)
        watcher.add_done_callback(self.watching.discard)
        return [ref]

    async def _watch(self, job_id: str, ref: ray.ObjectRef) -> None:
        try:
            await ref
        except Exception as exc:
            record_crash(self.jobs, job_id, exc)


@functools.cache
def _launcher(settings_json: str) -> ray.actor.ActorHandle:
    """This replica's launcher, started on its first job (owned by the replica, so it ends with it)."""
    return JobLauncher.remote(settings_json)


def new_job(context: ReplicaContext, request: Request, operation: str) -> JobRecord:
    """A queued job record for this request (its id goes to the audit log)."""
    record = context.jobs.create(operation, request.state.request_id, request.state.key_id)
    request.state.job_id = record.job_id
    return record


async def stage_uploads(context: ReplicaContext, record: JobRecord, uploads: list[tuple[UploadFile, str]]) -> Path:
    """Save the uploads under the job's staging folder (each as its relative name); returns the folder."""
    folder = context.jobs.staging_folder(record.job_id)
    try:
        for upload, name in uploads:
            await run_in_threadpool(save_upload, upload.file, folder, name, context.settings.limits.max_upload_bytes)
    except Exception as exc:  # the job never starts: its record says why, the client gets the error
        shutil.rmtree(folder, ignore_errors=True)
        error = error_body(exc) if isinstance(exc, DmasError) else {"status": 500, "detail": "upload failed"}
        context.jobs.fail(record.job_id, error)
        raise
    return folder


async def launch(context: ReplicaContext, record: JobRecord, params: dict) -> ray.ObjectRef:
    """Start the job; the ref resolves when it ends (awaiting it is only waiting: cancelling stops nothing)."""
    try:
        [ref] = await _launcher(context.settings_json).start.remote(record.job_id, record.operation, params)
    except Exception as exc:  # never started: no queued record may wait forever
        context.jobs.fail(record.job_id, {"status": 500, "detail": f"the job could not be started: {exc}"})
        raise
    return ref


async def run_as_job(context: ReplicaContext, record: JobRecord, params: dict, run_async: bool) -> JSONResponse:
    """Start the job as a Ray task; answer when it ends, or at once with its id when `run_async`."""
    ref = await launch(context, record, params)
    if run_async:
        return JSONResponse({"job_id": record.job_id, "status": "queued", "status_url": f"/jobs/{record.job_id}",
                             "request_id": record.request_id}, status_code=202)
    try:
        await ref
    except Exception as exc:  # the launcher records it too; whichever is first writes the record
        record_crash(context.jobs, record.job_id, exc)
    return job_answer(context.jobs.get(record.job_id))


def job_answer(record: JobRecord) -> JSONResponse:
    """A finished job as the original stack answered: its result, or its error with the error's status."""
    headers = {"x-job-id": record.job_id}
    if record.status == "succeeded":
        return JSONResponse(record.result, headers=headers)
    error = record.error or {"status": 500, "detail": f"job ended as {record.status}"}
    body = {key: value for key, value in error.items() if key != "status"}
    return JSONResponse({**body, "job_id": record.job_id}, status_code=error["status"], headers=headers)


def record_crash(jobs: JobBook, job_id: str, error: BaseException) -> None:
    """A job whose worker died never wrote its end: record it as failed (once)."""
    jobs.fail_unfinished(job_id, {"status": 500, "detail": f"the job's worker failed: {error}"})

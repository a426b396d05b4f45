"""Starting a job as a Ray task and answering for it: at its end (the original stack's way) or at once.

A job orchestrates: the Ray Data and Ray Train work it starts reserves its own CPUs, so the job
itself reserves none (reserving one would leave a 2-CPU machine too little to run that work).
A crashed job is not retried: it is recorded as failed and the client starts it again.
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


async def run_as_job(context: ReplicaContext, record: JobRecord, params: dict, run_async: bool) -> JSONResponse:
    """Start the job as a Ray task; answer when it ends, or at once with its id when `run_async`."""
    ref = job_task.options(name=f"dmas-{record.operation}-{record.job_id}").remote(
        record.job_id, record.operation, params, context.settings_json)
    ended = asyncio.wrap_future(ref.future())
    ended.add_done_callback(functools.partial(_record_crash, context.jobs, record.job_id))
    if run_async:
        return JSONResponse({"job_id": record.job_id, "status": "queued", "status_url": f"/jobs/{record.job_id}",
                             "request_id": record.request_id}, status_code=202)
    await asyncio.wait([ended])
    _record_crash(context.jobs, record.job_id, ended)
    return job_answer(context.jobs.get(record.job_id))


def job_answer(record: JobRecord) -> JSONResponse:
    """A finished job as the original stack answered: its result, or its error with the error's status."""
    headers = {"x-job-id": record.job_id}
    if record.status == "succeeded":
        return JSONResponse(record.result, headers=headers)
    error = record.error or {"status": 500, "detail": f"job ended as {record.status}"}
    body = {key: value for key, value in error.items() if key != "status"}
    return JSONResponse({**body, "job_id": record.job_id}, status_code=error["status"], headers=headers)


def _record_crash(jobs: JobBook, job_id: str, ended: asyncio.Future) -> None:
    """A job whose worker died never wrote its end: record it as failed (once)."""
    if ended.cancelled() or ended.exception() is None:
        return
    if jobs.get(job_id).status in ("queued", "running"):
        jobs.fail(job_id, {"status": 500, "detail": f"the job's worker failed: {ended.exception()}"})

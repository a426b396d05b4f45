"""The original stack's async routes: thin aliases over the jobs (`POST .../async` starts one, GET reads it).

A task is a job under its original name: `task_id` is the job id, statuses are the original ones
(pending, running, completed, failed) and `error` is the message the original clients print. An
`idempotency_key` (in the body or the Idempotency-Key header) answers a repeated request with the
task the first one started, on any replica (see `JobBook.create_once`).
"""

from typing import Annotated

from fastapi import APIRouter, Header, Request

from dmas.api.jobs import ORIGINAL_STATUS, JobRecord
from dmas.errors import NotFoundError
from serve.context import Admin, Viewer, current
from serve.job_launch import launch
from serve.schemas import AsyncRequest, PredictAsyncRequest, TrainBody, invalid, train_params

router = APIRouter(tags=["tasks"])
IdempotencyHeader = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)]


def task_view(record: JobRecord, route: str) -> dict:
    """A job as the original task shape (plus its dmas record's times and status URL)."""
    error = record.error or {}
    return {"task_id": record.job_id, "status": ORIGINAL_STATUS[record.status], "result": record.result,
            "error": error.get("detail"), "error_status": error.get("status"), "operation": record.operation,
            "created_at": record.created_at, "started_at": record.started_at, "finished_at": record.finished_at,
            "status_url": f"{route}/{record.job_id}"}


async def _start(request: Request, route: str, operation: str, params: dict, body_key: str | None,
                 header_key: str | None) -> dict:
    """Start `operation` as a job, or answer with the job an earlier request with the same key started."""
    if body_key and header_key and body_key != header_key:
        raise invalid("idempotency_key", "the body and the Idempotency-Key header name different keys")
    context = current()
    idempotency_key = body_key or header_key
    if idempotency_key is None:
        record, created = context.jobs.create(operation, request.state.request_id, request.state.key_id), True
    else:
        record, created = context.jobs.create_once(operation, request.state.request_id, request.state.key_id,
                                                   idempotency_key)
    request.state.job_id = record.job_id
    if created:
        await launch(context, record, params)
    return task_view(record, route)


def _task(request: Request, task_id: str, route: str, operation: str) -> dict:
    """The task `task_id` if it is a job of `operation` (a task of another route is not found here)."""
    request.state.job_id = task_id
    record = current().jobs.get(task_id)
    if record.operation != operation:
        raise NotFoundError(f"unknown task '{task_id}' at {route}")
    return task_view(record, route)


@router.post("/train/async", status_code=202)
async def train_async(request: Request, key: Admin, body: TrainBody = None,
                      idempotency_header: IdempotencyHeader = None) -> dict:
    """A training job: the /train body (any of its forms) plus an optional `idempotency_key`."""
    body = dict(body or {})
    body_key = body.pop("idempotency_key", None)
    if body_key is not None and not (isinstance(body_key, str) and 0 < len(body_key) <= 200):
        raise invalid("idempotency_key", "must be a string of 1 to 200 characters")
    return await _start(request, "/train/async", "train", train_params(body), body_key, idempotency_header)


@router.get("/train/async/{task_id}")
def train_task(task_id: str, request: Request, key: Admin) -> dict:
    return _task(request, task_id, "/train/async", "train")


@router.post("/features/extract/async", status_code=202)
async def extract_async(request: Request, key: Admin, body: AsyncRequest | None = None,
                        idempotency_header: IdempotencyHeader = None) -> dict:
    """Feature extraction of every pending blob, as a job."""
    body_key = body.idempotency_key if body else None
    return await _start(request, "/features/extract/async", "extract_features", {}, body_key, idempotency_header)


@router.get("/features/extract/async/{task_id}")
def extract_task(task_id: str, request: Request, key: Admin) -> dict:
    return _task(request, task_id, "/features/extract/async", "extract_features")


@router.post("/predict/async", status_code=202)
async def predict_async(body: PredictAsyncRequest, request: Request, key: Viewer,
                        idempotency_header: IdempotencyHeader = None) -> dict:
    """Predictions (no explanations) of the ids by the run, as a job; its result is {run_id, predictions}."""
    request.state.entity_count = len(body.entity_ids)
    run_id = request.state.run_id = current().runs.run_id(body.run_id)  # pinned now: the task's answer is fixed
    return await _start(request, "/predict/async", "predict", {"run_id": run_id, "entity_ids": body.entity_ids},
                        body.idempotency_key, idempotency_header)


@router.get("/predict/async/{task_id}")
def predict_task(task_id: str, request: Request, key: Viewer) -> dict:
    return _task(request, task_id, "/predict/async", "predict")

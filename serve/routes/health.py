"""Liveness (the one route that needs no key) and the job queues by operation."""


from fastapi import APIRouter

from dmas.api.jobs import ORIGINAL_STATUS
from dmas.operations import OPERATION_NAMES
from serve.context import Viewer, current

router = APIRouter(tags=["health"])


@router.get("/health")
@router.get("/health/", include_in_schema=False)
def health() -> dict:
    return {"status": "ok"}


@router.get("/health/queues")
def queues(key: Viewer) -> dict:
    """Jobs per operation by the original statuses (pending, running, completed, failed), from the job records.

    Counts only: no job ids, errors or addresses. It needs a key (unlike /health): the counts say
    what the service is doing.
    """
    counts = current().jobs.status_counts()
    return {"status": "ok", "queues": {
        operation: {original: counts.get(operation, {}).get(status, 0) for status, original in ORIGINAL_STATUS.items()}
        for operation in sorted(set(OPERATION_NAMES) | set(counts))}}

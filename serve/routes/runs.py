"""The run registry over HTTP: list runs, read one."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from dmas.api.security import ApiKey
from serve.context import current, viewer

router = APIRouter(tags=["runs"])


@router.get("/runs")
def runs(key: Annotated[ApiKey, Depends(viewer)]) -> list[dict]:
    return [record.to_dict() for record in current().registry.list()]


@router.get("/runs/{run_id}")
def run(run_id: str, request: Request, key: Annotated[ApiKey, Depends(viewer)]) -> dict:
    request.state.run_id = run_id
    return current().registry.require(run_id).to_dict()

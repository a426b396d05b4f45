"""The run registry over HTTP: list runs, read one, where its data came from, and reproduce it."""


from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from dmas.train.lineage import run_lineage
from serve.context import Admin, Viewer, current
from serve.job_launch import new_job, run_as_job
from serve.routes.jobs import RunAsync
from serve.routes.store import SourceFile

router = APIRouter(tags=["runs"])



class RunLineage(BaseModel):
    run_id: str
    data_manifest: dict = Field(description="the table versions and feature version the run pinned")
    sources: dict[str, list[SourceFile]] = Field(description="per table, the files committed up to its version")
    forgotten_entities: list[str] = Field(description="entities in the run's data that were forgotten since")
    erasure_evidence: dict[str, str] = Field(description="per forgotten entity, how its presence was decided")
    needs_retraining: bool = Field(description="the model still holds forgotten entities: retrain to honour erasure")


class ReproduceReport(BaseModel):
    """Whether retraining a run from its pinned data gave the same bytes, and if not, what changed."""

    run_id: str
    identical_model: bool
    identical_test_predictions: bool
    original_model_sha256: str
    reproduced_model_sha256: str
    trained_with: str
    differences: dict = Field(description="code, library versions or data that differ from the run's")


@router.get("/runs")
def runs(key: Viewer) -> list[dict]:
    return [record.to_dict() for record in current().registry.list()]


@router.get("/runs/{run_id}")
def run(run_id: str, request: Request, key: Viewer) -> dict:
    request.state.run_id = run_id
    return current().registry.require(run_id).to_dict()


@router.get("/runs/{run_id}/lineage", summary="Table versions, feature version and source files a run used",
            response_model=RunLineage)
def lineage(run_id: str, request: Request, key: Viewer) -> dict:
    request.state.run_id = run_id
    context = current()
    context.registry.require(run_id)  # an unknown run is 404, and never a path under runs/
    return run_lineage(context.store, run_id)


@router.post("/runs/{run_id}/reproduce", summary="Retrain a run from its pinned data and compare the bytes",
             responses={200: {"model": ReproduceReport}})
async def reproduce(run_id: str, request: Request, key: Admin,
                    run_async: RunAsync = False) -> JSONResponse:
    """A job (like training): the report when it ends, or at once its id with `?async=true`."""
    request.state.run_id = run_id
    context = current()
    context.registry.require(run_id)
    return await run_as_job(context, new_job(context, request, "reproduce"), {"run_id": run_id}, run_async)

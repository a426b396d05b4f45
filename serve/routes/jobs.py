"""The original stack's long routes, each run as a Ray job: ingest, extract, train, preload; job status.

The original async aliases (`/train/async`, ...) are in `serve.routes.tasks`, included here.
"""

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Header, Query, Request, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse

from dmas.api.uploads import plain_name
from dmas.vocabulary import ArtifactType
from serve.context import Admin, current
from serve.job_events import job_event_stream, resume_after
from serve.job_launch import new_job, run_as_job, stage_uploads
from serve.routes import tasks
from serve.schemas import PreloadRequest, TrainBody, invalid, train_params

router = APIRouter(tags=["jobs"])
router.include_router(tasks.router)

# `?async=true` on a job route: answer 202 with the job id and status URL at once instead of the result
RunAsync = Annotated[bool, Query(alias="async", description="answer at once with the job id and its status URL")]


@router.post("/ingest/artifact")
async def ingest_artifact(request: Request, key: Admin,
                          file: Annotated[UploadFile, File(description="one media file")],
                          artifact_type: Annotated[ArtifactType | None, Form(
                              description="checked against the content; sniffed when omitted")] = None,
                          entity_id: Annotated[str | None, Form()] = None,
                          timestamp: Annotated[str | None, Form()] = None,
                          metadata: Annotated[str | None, Form(description="a JSON object")] = None,
                          run_async: RunAsync = False) -> JSONResponse:
    context = current()
    record = new_job(context, request, "ingest_artifact")
    name = plain_name(file.filename, "artifact")
    folder = await stage_uploads(context, record, [(file, name)])
    params = {"path": str(folder / name), "source_name": name, "artifact_type": artifact_type,
              "entity_id": entity_id, "timestamp": timestamp, "metadata": metadata}
    return await run_as_job(context, record, params, run_async)


@router.post("/ingest/artifacts")
async def ingest_artifacts(request: Request, key: Admin,
                           manifest: Annotated[UploadFile | None, File(
                               description="CSV/JSON/... with a path column")] = None,
                           file: Annotated[UploadFile | None, File(
                               description="the manifest under the original UI's field name (instead of manifest)")
                           ] = None,
                           files: Annotated[list[UploadFile], File(description=(
                               "the media; each file's name is its path in the manifest (e.g. media/a.jpg)"))] = (),
                           strict: Annotated[bool, Form()] = False,
                           run_async: RunAsync = False) -> JSONResponse:
    if (manifest is None) == (file is None):
        raise invalid("manifest", "send the manifest once: in the field 'manifest' or (the original UI's name) "
                                  f"'file'; this request has {'both' if manifest else 'neither'}")
    manifest = manifest or file
    context = current()
    record = new_job(context, request, "ingest_manifest")
    name = plain_name(manifest.filename, "manifest")
    folder = await stage_uploads(context, record, [(manifest, name)] + [(item, item.filename or "") for item in files])
    return await run_as_job(context, record, {"path": str(folder / name), "strict": strict}, run_async)


@router.post("/ingest/{kind}")
async def ingest_table(kind: Literal["entities", "events", "interactions"], request: Request, key: Admin,
                       file: Annotated[UploadFile, File(description="CSV, TSV, JSON, JSONL, Parquet, Arrow, HDF5")],
                       strict: Annotated[bool, Form(description="refuse the file at its first bad row")] = False,
                       run_async: RunAsync = False) -> JSONResponse:
    context = current()
    record = new_job(context, request, "ingest_table")
    name = plain_name(file.filename, f"{kind}.upload")
    folder = await stage_uploads(context, record, [(file, name)])
    return await run_as_job(context, record, {"kind": kind, "path": str(folder / name), "strict": strict}, run_async)


@router.post("/features/extract")
async def extract_features(request: Request, key: Admin, run_async: RunAsync = False) -> JSONResponse:
    context = current()
    return await run_as_job(context, new_job(context, request, "extract_features"), {}, run_async)


@router.post("/train")
async def train(request: Request, key: Admin, body: TrainBody = None, run_async: RunAsync = False) -> JSONResponse:
    params = train_params(body)
    context = current()
    return await run_as_job(context, new_job(context, request, "train"), params, run_async)


@router.post("/demo/preload")
async def preload(request: Request, key: Admin, body: PreloadRequest | None = None,
                  run_async: RunAsync = False) -> JSONResponse:
    context = current()
    record = new_job(context, request, "preload_demo")
    folder = context.jobs.staging_folder(record.job_id)  # the synthetic files live there until the job ends
    body = body or PreloadRequest()
    return await run_as_job(context, record, {**body.model_dump(), "workdir": str(folder)}, run_async)


@router.get("/jobs/{job_id}")
def job(job_id: str, request: Request, key: Admin) -> dict:
    request.state.job_id = job_id
    return current().jobs.get(job_id).to_dict()


@router.get("/jobs/{job_id}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "server-sent events: status, progress (with ids), end"}})
async def job_events(job_id: str, request: Request, key: Admin,
                     last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None) -> StreamingResponse:
    """The job's progress as server-sent events until it ends (see serve/job_events.py); 404 for an unknown job."""
    request.state.job_id = job_id
    jobs = current().jobs
    jobs.get(job_id)  # an unknown job is a 404 before the stream starts
    return StreamingResponse(job_event_stream(jobs, job_id, resume_after(last_event_id), request.is_disconnected),
                             media_type="text/event-stream", headers={"cache-control": "no-cache"})

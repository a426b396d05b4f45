"""POST /collapse-check: a candidate dataset against a reference, as a job; its HTML report on demand.

Each side is an uploaded file (size-limited, its format sniffed from the content) or a reference
to data the server may read: a store table (`events@12`) or a remote object store URI (`s3://...`).
Local paths and `file://` URIs are refused: a client never names files on the server. Errors carry
the collapse engine's category code and retry flag (`dmas.quality.errors`).
"""

import json
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse

from dmas.api.uploads import plain_name
from dmas.errors import NotFoundError
from dmas.quality import errors
from dmas.quality.errors import QualityError
from dmas.quality.tables import TABLE_REF, TABLES
from serve.context import Viewer, current
from serve.job_launch import new_job, run_as_job, stage_uploads
from serve.routes.jobs import RunAsync

router = APIRouter(tags=["quality"])
OPERATION = "collapse_check"
REMOTE_SCHEMES = ("s3", "gs", "gcs", "hdfs", "abfs", "abfss", "az")  # object stores, never the server's disk
KINDS = ("numeric", "categorical", "boolean", "datetime")


def _side(role: str, upload: UploadFile | None, ref: str | None) -> str | None:
    """The side's source when it is a reference (None when it is an upload); refuses both, neither, local paths."""
    if (upload is None) == (ref is None):
        raise QualityError(errors.NOTHING_TO_COMPARE, f"send the {role} once: as a file in the field '{role}' or "
                                                      f"as a store table or URI in '{role}_ref'")
    if ref is None:
        return None
    scheme = ref.split("://", 1)[0].lower() if "://" in ref else None
    table = TABLE_REF.match(ref)
    if scheme in REMOTE_SCHEMES or (scheme is None and table and table["name"] in TABLES):
        return ref
    raise QualityError(errors.UNREADABLE_INPUT, f"{role}_ref {ref!r}: give a store table (NAME or NAME@VERSION, NAME "
                                                f"one of {', '.join(TABLES)}) or a URI of {', '.join(REMOTE_SCHEMES)}; "
                                                "files on the server cannot be named, upload them instead")


def _kinds(text: str | None) -> dict[str, str] | None:
    if text is None:
        return None
    try:
        kinds = json.loads(text)
    except ValueError:
        kinds = None
    if not isinstance(kinds, dict) or not all(isinstance(k, str) and v in KINDS for k, v in kinds.items()):
        raise QualityError(errors.BAD_COLUMN, f"kinds must be a JSON object of column name to one of {list(KINDS)}, "
                                              f"got {text[:200]!r}")
    return kinds


@router.post("/collapse-check")
async def collapse_check(request: Request, key: Viewer,
                         candidate: Annotated[UploadFile | None, File(description="the candidate table file")] = None,
                         reference: Annotated[UploadFile | None, File(description="the reference table file")] = None,
                         candidate_ref: Annotated[str | None, Form(description="store table (events@12) or "
                                                                               "s3://... URI")] = None,
                         reference_ref: Annotated[str | None, Form()] = None,
                         target: Annotated[str | None, Form(description="the label column")] = None,
                         order: Annotated[str | None, Form(description="the column ordering rows in time")] = None,
                         kinds: Annotated[str | None, Form(description='JSON, e.g. {"zip": "categorical"}')] = None,
                         dimensions: Annotated[str | None, Form(description="comma-separated names")] = None,
                         seed: Annotated[int | None, Form(ge=0)] = None,
                         run_async: RunAsync = False) -> JSONResponse:
    """Check the candidate against the reference on eight calibrated dimensions plus memorization (a job)."""
    sources = {"candidate": _side("candidate", candidate, candidate_ref),
               "reference": _side("reference", reference, reference_ref)}
    params = {"target": target, "order": order, "kinds": _kinds(kinds), "seed": seed,
              "dimensions": [name.strip() for name in dimensions.split(",") if name.strip()] if dimensions else None}
    context = current()
    record = new_job(context, request, OPERATION)
    uploads = {role: upload for role, upload in (("candidate", candidate), ("reference", reference)) if upload}
    if uploads:
        named = {role: f"{role}-{plain_name(upload.filename, 'table')}" for role, upload in uploads.items()}
        folder = await stage_uploads(context, record, [(uploads[role], named[role]) for role in uploads])
        sources.update({role: str(folder / name) for role, name in named.items()})
    return await run_as_job(context, record, {**params, **sources}, run_async)


@router.get("/collapse-check/{job_id}/report.html", response_class=HTMLResponse)
def collapse_report_page(job_id: str, request: Request, key: Viewer) -> HTMLResponse:
    """The HTML report of a finished collapse check (rendered from its JSON report; self-contained)."""
    request.state.job_id = job_id
    record = current().jobs.get(job_id)
    if record.operation != OPERATION:
        raise NotFoundError(f"job '{job_id}' is not a collapse check")
    if record.status != "succeeded":
        raise NotFoundError(f"collapse check '{job_id}' has no report: it is {record.status}")
    from dmas.quality.report_html import render_html  # matplotlib: loaded when a page is asked for, not at start

    report = {key: value for key, value in record.result.items() if key != "timings"}
    return HTMLResponse(render_html(report))

"""POST /cascade: train the cascade's proxy tiers and predict the full model's loss, as a job.

The sequence data is an uploaded table file (one document per row) or, without one, the embedded
synthetic corpus; `{"data": {"kind": "entities"}}` in the overrides runs it on the served store's
entities instead; the config is the server's `configs/cascade.yaml`, a profile of it, and the
client's `overrides` (any field but the data's file paths: a client never names files on the server). The config is
checked before the job starts, so a bad field is a 422 at once, not a failed job. With `?async=true`
the answer is the job id; `GET /jobs/{id}/events` streams its progress as server-sent events.
"""

import json
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse

from dmas.api.uploads import plain_name
from dmas.cascade.config import DEFAULT_CONFIG, load_cascade_config, merged
from dmas.errors import ConfigError
from serve.context import Admin, current
from serve.job_launch import new_job, run_as_job, stage_uploads
from serve.routes.jobs import RunAsync
from serve.schemas import invalid

router = APIRouter(tags=["cascade"])
# data fields that name files or stores on the server: paths come from uploads only, and the entity
# kind ({"data": {"kind": "entities"}}) reads the server's own store
SERVER_FILES = frozenset({"path", "validation_path", "store"})


def _overrides(text: str | None, train_full: bool) -> dict:
    """The client's config changes as a mapping; the data's file paths are refused (files come as uploads)."""
    try:
        overrides = json.loads(text) if text else {}
    except ValueError as exc:
        raise invalid("overrides", f"not JSON: {exc}") from None
    if not isinstance(overrides, dict):
        raise invalid("overrides", f"expected a JSON object of config fields, got {type(overrides).__name__}")
    data = overrides.get("data")
    if isinstance(data, dict) and (named := sorted(SERVER_FILES & set(data))):
        raise invalid("overrides", f"data.{named[0]} names a file on the server, which clients cannot do: "
                                   "upload the documents as 'data' (and 'validation') instead")
    return merged(overrides, {"full": {"train": True}}) if train_full else overrides


@router.post("/cascade")
async def cascade(request: Request, key: Admin,
                  data: Annotated[UploadFile | None, File(description=(
                      "a table file, one document per row (default: the embedded synthetic corpus)"))] = None,
                  validation: Annotated[UploadFile | None, File(description="a held-out file, same column")] = None,
                  column: Annotated[str | None, Form(description="the documents' column (default text)")] = None,
                  encoding: Annotated[Literal["bytes", "token_ids"] | None, Form()] = None,
                  profile: Annotated[str | None, Form(description="a profile of configs/cascade.yaml: gpu")] = None,
                  overrides: Annotated[str | None, Form(description=(
                      'config fields as JSON, e.g. {"schedule": {"epochs": 1}, "full": {"fraction": 0.5}}'))] = None,
                  train_full: Annotated[bool, Form(description="also train the full model (the truth)")] = False,
                  run_async: RunAsync = False) -> JSONResponse:
    """Train tiers of small spectral proxy models, fit a scaling law, predict the full model's validation loss."""
    if validation is not None and data is None:
        raise invalid("validation", "a validation file needs the documents it holds out from: upload 'data' too")
    changes = _overrides(overrides, train_full)
    fields = {key: value for key, value in (("column", column), ("encoding", encoding)) if value is not None}
    try:
        load_cascade_config(profile=profile, overrides=merged(changes, {"data": fields}))
    except ConfigError as exc:
        raise invalid("overrides", str(exc).replace(str(DEFAULT_CONFIG), "configs/cascade.yaml")) from None
    context = current()
    record = new_job(context, request, "cascade")
    uploads = {role: upload for role, upload in (("data", data), ("validation", validation)) if upload is not None}
    if uploads:
        named = {role: f"{role}-{plain_name(upload.filename, 'documents')}" for role, upload in uploads.items()}
        folder = await stage_uploads(context, record, [(uploads[role], named[role]) for role in uploads])
        fields["path"] = str(folder / named["data"])
        if "validation" in named:
            fields["validation_path"] = str(folder / named["validation"])
    params = {"profile": profile, "overrides": merged(changes, {"data": fields}), "cascade_id": record.job_id}
    return await run_as_job(context, record, params, run_async)

"""The published OpenAPI document: how to present credentials, and the error bodies dmas really sends.

FastAPI's generated document knows neither: the middleware checks credentials and sizes before any
route runs, and dmas answers a 422 as `{"detail", "problems": [{"field", "error"}]}`, not FastAPI's
`HTTPValidationError`. This module rewrites the generated document to say what the service does, so
clients and fuzzers see the same contract as the code; it never changes what is sent.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

SECURITY_SCHEMES = {
    "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "a dmas API key"},
    "Bearer": {"type": "http", "scheme": "bearer", "description": "an API key, or a JWT when JWTs are configured"},
    "ServiceToken": {"type": "apiKey", "in": "header", "name": "x-service-token",
                     "description": "a service token (the original platform's header)"},
}
PUBLIC_OPERATIONS = frozenset({"/health"})

# What the middleware and the error handlers can answer on any route, before or around its own work
_SIZE_REFUSALS = {
    400: "bad request: a Content-Length that is not a number, a body that stopped arriving, or a dmas error "
         "about the input",
    411: "a body sent without a Content-Length",
    413: "a body (or a number of entity ids) over the configured limit",
}
_CALLER_REFUSALS = {
    401: "no credentials, or unknown ones",
    403: "the credentials' role may not use this route",
    503: "the identity provider (JWKS) could not be reached to check a JWT; retry after `Retry-After` seconds",
}
_NOT_FOUND = {404: "a run, entity, job, table or version the request names does not exist"}


class Problem(BaseModel):
    field: str = Field(description="where in the request, dotted (e.g. `entity_ids.0`, `query.version`)")
    error: str


class ErrorBody(BaseModel):
    """Every error dmas answers: a message, and whatever else the error names."""

    detail: str = Field(description="what went wrong, in words a user can act on")
    problems: list[Problem] | None = Field(None, description="422: each invalid part of the request and why")
    unknown_entity_ids: list[str] | None = Field(None, description="404 from scoring: the ids the run does not know")
    job_id: str | None = Field(None, description="a job's error: the job it ended")


class JobStarted(BaseModel):
    """`?async=true`: the job was queued; follow `status_url` (GET /jobs/{job_id})."""

    job_id: str
    status: str = Field(description="`queued`")
    status_url: str
    request_id: str | None = None


def install(app: FastAPI) -> None:
    """Serve `published(...)` of the app's generated document as its /openapi.json."""

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = published(get_openapi(title=app.title, version=app.version,
                                                       description=app.description, routes=app.routes))
        return app.openapi_schema

    app.openapi = openapi


def published(document: dict) -> dict:
    """The generated `document` with security schemes and requirements and dmas' own error bodies."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for generated in ("HTTPValidationError", "ValidationError"):
        schemas.pop(generated, None)
    for model in (ErrorBody, Problem, JobStarted):
        schemas.update(_schemas_of(model))
    document["components"]["securitySchemes"] = SECURITY_SCHEMES
    for path, operations in document["paths"].items():
        for operation in operations.values():
            _form_fields_not_nullable(operation, schemas)
            _publish_operation(operation, public=path in PUBLIC_OPERATIONS, names_something=_names_something(
                path, operation))
    return document


def _publish_operation(operation: dict, *, public: bool, names_something: bool) -> None:
    responses = operation.setdefault("responses", {})
    refusals = dict(_SIZE_REFUSALS)
    if not public:
        operation["security"] = [{name: []} for name in SECURITY_SCHEMES]
        refusals |= _CALLER_REFUSALS | (_NOT_FOUND if names_something else {})
    for status, description in refusals.items():
        responses.setdefault(str(status), {"description": description})
    for status, response in responses.items():
        if status.startswith(("4", "5")):
            response["content"] = {"application/json": {"schema": _ref(ErrorBody)}}
            if status == "422":
                response["description"] = "the request does not match its schema; `problems` says where"
    if any(parameter["name"] == "async" for parameter in operation.get("parameters", ())):
        responses["202"] = {"description": "with `?async=true`: the job was queued",
                            "content": {"application/json": {"schema": _ref(JobStarted)}}}
    operation["responses"] = dict(sorted(responses.items()))


def _form_fields_not_nullable(operation: dict, schemas: dict) -> None:
    """A multipart field is sent or left out: none can carry JSON's null, so none is published as nullable.

    FastAPI publishes `str | None = None` form fields as `anyOf: [string, null]`, and a client (or
    a fuzzer) that believes it sends the text "null", which is then refused as the wrong value.
    """
    form = operation.get("requestBody", {}).get("content", {}).get("multipart/form-data")
    if form is None or "$ref" not in form["schema"]:
        return
    body = schemas[form["schema"]["$ref"].rsplit("/", 1)[1]]
    for name, field in body.get("properties", {}).items():
        branches = [branch for branch in field.get("anyOf", ()) if branch.get("type") != "null"]
        if "anyOf" in field and len(branches) == 1:
            field.pop("anyOf")
            body["properties"][name] = {**branches[0], **field}


def _names_something(path: str, operation: dict) -> bool:
    """Whether the request names a thing that may not exist: in its path, its body, or a job it starts."""
    return "{" in path or "requestBody" in operation or any(
        parameter["name"] == "async" for parameter in operation.get("parameters", ()))


def _schemas_of(model: type[BaseModel]) -> dict:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    nested = schema.pop("$defs", {})
    return {**nested, model.__name__: schema}


def _ref(model: type[BaseModel]) -> dict:
    return {"$ref": f"#/components/schemas/{model.__name__}"}

"""The FastAPI application behind the dmas ingress: routers, the request scope, and errors as status codes.

Errors become status codes in one place (`dmas.api.errors.error_body`); an error raised in another
Serve deployment arrives wrapped in Ray's RayTaskError and is answered as its cause.
"""

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from ray.exceptions import RayTaskError

from dmas.api.errors import error_body, error_headers
from dmas.errors import DmasError
from serve.middleware import RequestScope
from serve.openapi import install as publish_openapi
from serve.routes import ROUTERS

api = FastAPI(title="dmas", description="Deterministic Multimodal Analytics Stack: predictions, explanations, "
                                        "queries over trained runs; ingestion, feature extraction and training "
                                        "as Ray jobs (add ?async=true to get the job id at once).")
for router in ROUTERS:
    api.include_router(router)
api.add_middleware(RequestScope)
publish_openapi(api)


def _error_response(exc: DmasError) -> JSONResponse:
    body = error_body(exc)
    status = body.pop("status")
    return JSONResponse(body, status_code=status, headers=error_headers(exc))


@api.exception_handler(DmasError)
async def dmas_error(request: Request, exc: DmasError) -> JSONResponse:
    return _error_response(exc)


@api.exception_handler(RayTaskError)
async def deployment_error(request: Request, exc: RayTaskError) -> JSONResponse:
    if isinstance(exc.cause, DmasError):
        return _error_response(exc.cause)
    raise exc


@api.exception_handler(RequestValidationError)
async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = [{"field": ".".join(str(part) for part in error["loc"] if part != "body"), "error": error["msg"]}
                for error in exc.errors()]
    return JSONResponse({"detail": "invalid request", "problems": problems}, status_code=422)

"""The dmas HTTP service on Ray Serve: a FastAPI ingress in front of a Predictor and an Explainer.

    serve run configs/serve.yaml          (or `dmas serve`)

Every route but /health needs an API key (X-API-Key or Authorization: Bearer); every response
carries an x-request-id that also lands in the audit log. Errors become status codes in one place
(`error_body`).
"""

import asyncio
import functools
import os
import shutil
import time
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Annotated, Literal

import ray
from fastapi import FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from ray import serve
from ray.serve.handle import DeploymentHandle
from ray.util import metrics

from dmas.api.audit_log import AuditLog
from dmas.api.errors import error_body
from dmas.api.jobs import JobBook, JobRecord, run_job
from dmas.api.query import interpret
from dmas.api.security import ApiKey, allows, authenticate
from dmas.api.uploads import plain_name, save_upload
from dmas.config import Settings, load_settings
from dmas.errors import DmasError, NotFoundError
from dmas.scoring.bundle import RunBundle
from dmas.store import Store
from dmas.store.runs import RunRegistry
from dmas.train.config import TrainConfig
from serve.schemas import ExplainRequest, PredictRequest, PreloadRequest, QueryRequest

api = FastAPI(title="dmas", description="Deterministic Multimodal Analytics Stack: predictions, explanations, "
                                        "queries over trained runs; ingestion, feature extraction and training "
                                        "as Ray jobs (add ?async=true to get the job id at once).")


# `?async=true` on a job route: answer 202 with the job id and status URL at once instead of the result
RunAsync = Annotated[bool, Query(alias="async", description="answer at once with the job id and its status URL")]

SETTINGS_ENV = "DMAS_SERVE_SETTINGS_JSON"  # the ingress replica's settings, set through its runtime env


class _Runtime:
    """Per-replica request bookkeeping, built on first use from the settings in the replica's env.

    The middleware runs inside Serve's copy of the FastAPI app and cannot reach objects the ingress
    instance creates, so it builds its own from the same settings, once per process.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self.audit = AuditLog(settings.serve.audit_log)
        self.requests = metrics.Counter("dmas_requests", description="requests by route and status",
                                        tag_keys=("route", "status"))
        self.latency = metrics.Histogram("dmas_request_latency_ms", description="request latency",
                                         boundaries=[1, 5, 10, 25, 50, 100, 250, 1000], tag_keys=("route",))


@functools.cache
def _runtime() -> _Runtime:
    return _Runtime(Settings.model_validate_json(os.environ[SETTINGS_ENV]))


class DeploymentError(Exception):
    """A Predictor/Explainer answered with an error body (errors travel between replicas as data)."""

    def __init__(self, body: dict):
        super().__init__(body["detail"])
        self.body = body


def unwrap(answer: dict, key: str):
    if "error" in answer:
        raise DeploymentError(answer["error"])
    return answer[key]


def error_response(body: dict) -> JSONResponse:
    return JSONResponse({key: value for key, value in body.items() if key != "status"}, status_code=body["status"])


@api.middleware("http")
async def request_scope(request: Request, call_next):
    """Request id in and out, body size limit, audit line and metrics for every request."""
    runtime = _runtime()
    # Serve's proxy takes x-request-id from the request (or makes one) and returns it on the response
    request_id = request.headers.get("x-request-id") or _serve_request_id() or uuid.uuid4().hex
    request.state.request_id = request_id
    request.state.key_id, request.state.entity_count, request.state.run_id = None, 0, None
    request.state.job_id = None
    started = time.perf_counter()
    refusal = _body_refusal(request, runtime.settings)
    response = refusal if refusal is not None else await call_next(request)
    latency_ms = (time.perf_counter() - started) * 1000
    route = request.url.path
    runtime.requests.inc(tags={"route": route, "status": str(response.status_code)})
    runtime.latency.observe(latency_ms, tags={"route": route})
    if route != "/health":
        runtime.audit.write(request_id=request_id, key_id=request.state.key_id, route=route,
                            status=response.status_code, latency_ms=latency_ms,
                            entity_count=request.state.entity_count, run_id=request.state.run_id,
                            job_id=request.state.job_id)
    return response


def _body_refusal(request: Request, settings: Settings) -> JSONResponse | None:
    """413 for a body over its limit (uploads have their own), 411 for an upload of undeclared length."""
    uploading = request.headers.get("content-type", "").startswith("multipart/form-data")
    limit = settings.serve.max_upload_request_bytes if uploading else settings.serve.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is None:
        if "transfer-encoding" in request.headers:  # a body of unknown length could be any size
            return JSONResponse({"detail": "request bodies must declare their Content-Length"}, status_code=411)
        return None
    if int(declared) > limit:
        return JSONResponse({"detail": f"request body of {declared} bytes is over the limit of {limit}"},
                            status_code=413)
    return None


def _serve_request_id() -> str | None:
    from ray.serve.context import _get_serve_request_context

    return _get_serve_request_context().request_id or None


@api.exception_handler(DmasError)
async def dmas_error(request: Request, exc: DmasError) -> JSONResponse:
    return error_response(error_body(exc))


@api.exception_handler(DeploymentError)
async def deployment_error(request: Request, exc: DeploymentError) -> JSONResponse:
    return error_response(exc.body)


@api.exception_handler(RequestValidationError)
async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = [{"field": ".".join(str(part) for part in error["loc"] if part != "body"), "error": error["msg"]}
                for error in exc.errors()]
    return JSONResponse({"detail": "invalid request", "problems": problems}, status_code=422)


def _bundle_cache(store: Store, size: int):
    """Load runs on demand and keep the `size` most recently used (weights verified on every load)."""
    cache: OrderedDict[str, RunBundle] = OrderedDict()

    def get(run_id: str) -> RunBundle:
        if run_id in cache:
            cache.move_to_end(run_id)
            return cache[run_id]
        bundle = RunBundle.load(store, run_id)
        cache[run_id] = bundle
        while len(cache) > size:
            cache.popitem(last=False)
        return bundle

    return get


# CPU shares: the ingress only routes, lookups are cheap, explanations compute; so the whole
# application fits beside the training and data work on a 2-CPU machine.
@serve.deployment(ray_actor_options={"num_cpus": 0.25})
class Predictor:
    """Answers predictions from the run's precomputed scores; concurrent requests are batched."""

    def __init__(self, settings_json: str):
        self.settings = Settings.model_validate_json(settings_json)
        self.bundle = _bundle_cache(Store(self.settings.store_uri), self.settings.serve.cached_runs)
        self.batch_sizes = metrics.Histogram("dmas_predict_batch_size", description="requests per predict batch",
                                             boundaries=[1, 2, 4, 8, 16, 32, 64])
        self.predict_batch.set_max_batch_size(self.settings.serve.batch_max_size)
        self.predict_batch.set_batch_wait_timeout_s(self.settings.serve.batch_wait_s)

    @serve.batch
    async def predict_batch(self, requests: list[tuple[str, list[str]]]) -> list[dict]:
        self.batch_sizes.observe(len(requests))
        answers = []
        for run_id, entity_ids in requests:
            try:
                answers.append({"predictions": self.bundle(run_id).predictions_for(entity_ids)})
            except DmasError as exc:  # travels back as data: exceptions with extra fields do not unpickle
                answers.append({"error": error_body(exc)})
        return answers

    async def predict(self, run_id: str, entity_ids: list[str]) -> dict:
        return await self.predict_batch((run_id, entity_ids))

    def query(self, run_id: str, order_by: str, descending: bool, limit: int, entity_filter: list[str]) -> dict:
        try:
            return {"results": self.bundle(run_id).top(order_by, descending, limit, entity_filter or None)}
        except DmasError as exc:
            return {"error": error_body(exc)}

    def known_ids(self, run_id: str) -> set[str]:
        return set(self.bundle(run_id).predictions["entity_id"].to_pylist())


@serve.deployment(ray_actor_options={"num_cpus": 0.5})
class Explainer:
    """Integrated gradients, event attention and artifact contributions for single entities."""

    def __init__(self, settings_json: str):
        import torch

        torch.set_num_threads(1)  # measured: 2 threads on 2 shared cores made explanations slower and spikier
        self.settings = Settings.model_validate_json(settings_json)
        self.bundle = _bundle_cache(Store(self.settings.store_uri), self.settings.serve.cached_runs)

    def explain(self, run_id: str, entity_ids: list[str], target: str) -> dict:
        from dmas.scoring.explaining import explain_entities

        try:
            return {"explanations": explain_entities(self.bundle(run_id), entity_ids, target)}
        except DmasError as exc:
            return {"error": error_body(exc)}


def _job_answer(record: JobRecord) -> JSONResponse:
    """A finished job as the original stack answered: its result, or its error with the error's status."""
    headers = {"x-job-id": record.job_id}
    if record.status == "succeeded":
        return JSONResponse(record.result, headers=headers)
    error = record.error or {"status": 500, "detail": f"job ended as {record.status}"}
    body = {key: value for key, value in error.items() if key != "status"}
    return JSONResponse({**body, "job_id": record.job_id}, status_code=error["status"], headers=headers)


# A job orchestrates: the Ray Data and Ray Train work it starts reserve their own CPUs, so the job
# itself reserves none (reserving one would leave a 2-CPU machine too little to run that work).
# A crashed job is not retried: it is recorded as failed and the client starts it again.
@ray.remote(num_cpus=0, max_retries=0)
def job_task(job_id: str, operation: str, params: dict, settings_json: str) -> dict:
    """Run one job in a Ray worker and record how it ended (see dmas.api.jobs.run_job)."""
    settings = Settings.model_validate_json(settings_json)
    return run_job(JobBook(Store(settings.store_uri)), job_id, operation, params, settings).to_dict()


@serve.deployment(ray_actor_options={"num_cpus": 0})
@serve.ingress(api)
class DmasApi:
    def __init__(self, predictor: DeploymentHandle, explainer: DeploymentHandle, settings_json: str):
        self.settings = Settings.model_validate_json(settings_json)
        self.predictor, self.explainer = predictor, explainer
        self.settings_json = settings_json
        store = Store(self.settings.store_uri)
        self.registry = RunRegistry(store)
        self.jobs = JobBook(store)
        self.keys = self.settings.serve.keys()
        self.finished_runs: set[str] = set()
        self.latest_run: tuple[str | None, float] = (None, 0.0)

    def _key(self, request: Request, role: str) -> ApiKey:
        presented = request.headers.get("x-api-key")
        authorization = request.headers.get("authorization", "")
        if not presented and authorization.lower().startswith("bearer "):
            presented = authorization[7:].strip()
        key = authenticate(presented, self.keys)
        if key is None:
            raise HTTPException(401, "missing or unknown API key", headers={"WWW-Authenticate": "Bearer"})
        request.state.key_id = key.key_id
        if not allows(key, role):
            raise HTTPException(403, f"the key '{key.key_id}' has role {key.role}; this route needs {role}")
        return key

    def viewer(self, request: Request) -> ApiKey:
        return self._key(request, "viewer")

    def admin(self, request: Request) -> ApiKey:
        return self._key(request, "admin")

    def _run_id(self, requested: str | None) -> str:
        """The run to answer from. Reading the registry costs ~4 ms, so a finished run (whose record no
        longer changes) is remembered, and the latest completed run is looked up again only after
        `serve.latest_run_refresh_s`: a newly completed run is served within that time."""
        if requested:
            if requested not in self.finished_runs:
                if self.registry.require(requested).status in ("completed", "rejected"):
                    self.finished_runs.add(requested)
            return requested
        run_id, looked_up = self.latest_run
        if run_id is None or time.monotonic() - looked_up > self.settings.serve.latest_run_refresh_s:
            latest = self.registry.latest_completed()
            if latest is None:
                raise NotFoundError("unknown run: no completed run yet; train one first")
            self.latest_run = run_id, looked_up = latest.run_id, time.monotonic()
        return run_id

    def _limit(self, request: Request, entity_ids: list[str]) -> None:
        request.state.entity_count = len(entity_ids)
        if len(entity_ids) > self.settings.serve.max_entities_per_request:
            raise HTTPException(413, f"{len(entity_ids)} entity ids is over the limit of "
                                     f"{self.settings.serve.max_entities_per_request} per request")

    @api.get("/health")
    def health(self) -> dict:
        return {"status": "ok"}

    @api.get("/runs")
    def runs(self, request: Request) -> list[dict]:
        self.viewer(request)
        return [record.to_dict() for record in self.registry.list()]

    @api.get("/runs/{run_id}")
    def run(self, run_id: str, request: Request) -> dict:
        self.viewer(request)
        request.state.run_id = run_id
        return self.registry.require(run_id).to_dict()

    async def _predicted(self, run_id: str, entity_ids: list[str], explain_target: str | None) -> list[dict]:
        """The run's predictions for the ids, each with its explanation of `explain_target` when given."""
        predictions = unwrap(await self.predictor.predict.remote(run_id, entity_ids), "predictions")
        if explain_target is None:
            return predictions
        explained = unwrap(await self.explainer.explain.remote(run_id, entity_ids, explain_target), "explanations")
        return [{**prediction, "explanation": explanation} for prediction, explanation in zip(predictions, explained)]

    @api.post("/predict")
    async def predict(self, body: PredictRequest, request: Request) -> dict:
        self.viewer(request)
        self._limit(request, body.entity_ids)
        run_id = request.state.run_id = self._run_id(body.run_id)
        target = "probability" if body.explanations else None
        return {"run_id": run_id, "predictions": await self._predicted(run_id, body.entity_ids, target)}

    @api.post("/explain")
    async def explain(self, body: ExplainRequest, request: Request) -> dict:
        self.viewer(request)
        self._limit(request, body.entity_ids)
        run_id = request.state.run_id = self._run_id(body.run_id)
        return {"run_id": run_id, "predictions": await self._predicted(run_id, body.entity_ids, body.target)}

    @api.post("/query")
    async def query(self, body: QueryRequest, request: Request) -> dict:
        self.viewer(request)
        run_id = request.state.run_id = self._run_id(body.run_id)
        if body.query is not None:
            ordering = interpret(body.query, body.limit, await self.predictor.known_ids.remote(run_id))
            if ordering.entity_ids:
                results = await self._predicted(run_id, list(ordering.entity_ids), None)
            else:
                results = unwrap(await self.predictor.query.remote(run_id, ordering.order_by, ordering.descending,
                                                                   ordering.limit, []), "results")
            return {"run_id": run_id, "interpreted_as": ordering.to_dict(), "results": results}
        results = unwrap(await self.predictor.query.remote(run_id, body.order_by, body.descending, body.limit,
                                                           body.filter.entity_ids if body.filter else []), "results")
        return {"run_id": run_id, "interpreted_as": {"order_by": body.order_by, "descending": body.descending,
                                                     "limit": body.limit}, "results": results}

    # ---- jobs: the original stack's ingest / extract / train / preload routes ----

    def _new_job(self, request: Request, operation: str) -> JobRecord:
        self.admin(request)
        record = self.jobs.create(operation, request.state.request_id, request.state.key_id)
        request.state.job_id = record.job_id
        return record

    async def _stage(self, record: JobRecord, uploads: list[tuple[UploadFile, str]]) -> Path:
        """Save the uploads under the job's staging folder (each as its relative name); returns the folder."""
        folder = self.jobs.staging_folder(record.job_id)
        try:
            for upload, name in uploads:
                await run_in_threadpool(save_upload, upload.file, folder, name, self.settings.limits.max_upload_bytes)
        except Exception as exc:  # the job never starts: its record says why, the client gets the error
            shutil.rmtree(folder, ignore_errors=True)
            error = error_body(exc) if isinstance(exc, DmasError) else {"status": 500, "detail": "upload failed"}
            self.jobs.fail(record.job_id, error)
            raise
        return folder

    async def _run(self, request: Request, record: JobRecord, params: dict, run_async: bool) -> JSONResponse:
        """Start the job as a Ray task; answer when it ends, or at once with its id when `run_async`."""
        ref = job_task.options(name=f"dmas-{record.operation}-{record.job_id}").remote(
            record.job_id, record.operation, params, self.settings_json)
        ended = asyncio.wrap_future(ref.future())
        ended.add_done_callback(functools.partial(self._record_crash, record.job_id))
        if run_async:
            return JSONResponse({"job_id": record.job_id, "status": "queued", "status_url": f"/jobs/{record.job_id}",
                                 "request_id": record.request_id}, status_code=202)
        await asyncio.wait([ended])
        self._record_crash(record.job_id, ended)
        return _job_answer(self.jobs.get(record.job_id))

    def _record_crash(self, job_id: str, ended: asyncio.Future) -> None:
        """A job whose worker died never wrote its end: record it as failed (once)."""
        if ended.cancelled() or ended.exception() is None:
            return
        if self.jobs.get(job_id).status in ("queued", "running"):
            self.jobs.fail(job_id, {"status": 500, "detail": f"the job's worker failed: {ended.exception()}"})

    @api.post("/ingest/artifact")
    async def ingest_artifact(self, request: Request, file: Annotated[UploadFile, File(description="one media file")],
                              artifact_type: Annotated[Literal["image", "audio", "video"] | None, Form(
                                  description="checked against the content; sniffed when omitted")] = None,
                              entity_id: Annotated[str | None, Form()] = None,
                              timestamp: Annotated[str | None, Form()] = None,
                              metadata: Annotated[str | None, Form(description="a JSON object")] = None,
                              run_async: RunAsync = False) -> JSONResponse:
        record = self._new_job(request, "ingest_artifact")
        name = plain_name(file.filename, "artifact")
        folder = await self._stage(record, [(file, name)])
        params = {"path": str(folder / name), "source_name": name, "artifact_type": artifact_type,
                  "entity_id": entity_id, "timestamp": timestamp, "metadata": metadata}
        return await self._run(request, record, params, run_async)

    @api.post("/ingest/artifacts")
    async def ingest_artifacts(self, request: Request,
                               manifest: Annotated[UploadFile, File(description="CSV/JSON/... with a path column")],
                               files: Annotated[list[UploadFile], File(description=(
                                   "the media; each file's name is its path in the manifest (e.g. media/a.jpg)"))] = (),
                               strict: Annotated[bool, Form()] = False,
                               run_async: RunAsync = False) -> JSONResponse:
        record = self._new_job(request, "ingest_manifest")
        name = plain_name(manifest.filename, "manifest")
        folder = await self._stage(record, [(manifest, name)] + [(item, item.filename or "") for item in files])
        return await self._run(request, record, {"path": str(folder / name), "strict": strict}, run_async)

    @api.post("/ingest/{kind}")
    async def ingest_table(self, kind: Literal["entities", "events", "interactions"], request: Request,
                           file: Annotated[UploadFile, File(description="CSV, TSV, JSON, JSONL, Parquet, Arrow, HDF5")],
                           strict: Annotated[bool, Form(description="refuse the file at its first bad row")] = False,
                           run_async: RunAsync = False) -> JSONResponse:
        record = self._new_job(request, "ingest_table")
        name = plain_name(file.filename, f"{kind}.upload")
        folder = await self._stage(record, [(file, name)])
        return await self._run(request, record, {"kind": kind, "path": str(folder / name), "strict": strict},
                               run_async)

    @api.post("/features/extract")
    async def extract_features(self, request: Request, run_async: RunAsync = False) -> JSONResponse:
        record = self._new_job(request, "extract_features")
        return await self._run(request, record, {}, run_async)

    @api.post("/train")
    async def train(self, request: Request, config: TrainConfig | None = None,
                    run_async: RunAsync = False) -> JSONResponse:
        record = self._new_job(request, "train")
        config = config or TrainConfig()
        return await self._run(request, record, {"config": config.model_dump(mode="json")}, run_async)

    @api.post("/demo/preload")
    async def preload(self, request: Request, body: PreloadRequest | None = None,
                      run_async: RunAsync = False) -> JSONResponse:
        record = self._new_job(request, "preload_demo")
        folder = self.jobs.staging_folder(record.job_id)  # the synthetic files live there until the job ends
        body = body or PreloadRequest()
        return await self._run(request, record, {**body.model_dump(), "workdir": str(folder)}, run_async)

    @api.get("/jobs/{job_id}")
    def job(self, job_id: str, request: Request) -> dict:
        self.admin(request)
        request.state.job_id = job_id
        return self.jobs.get(job_id).to_dict()


def build_app(settings: Settings | None = None):
    """The Serve application graph, configured from settings (env DMAS_* / YAML)."""
    settings = settings or load_settings()
    settings_json = settings.model_dump_json()
    predictor = Predictor.options(num_replicas=settings.serve.predictor_replicas,
                                  max_ongoing_requests=settings.serve.max_ongoing_requests).bind(settings_json)
    explainer = Explainer.options(num_replicas=settings.serve.explainer_replicas,
                                  max_ongoing_requests=settings.serve.max_ongoing_requests).bind(settings_json)
    ingress_options = {"num_cpus": 0, "runtime_env": {"env_vars": {SETTINGS_ENV: settings_json}}}
    return DmasApi.options(max_ongoing_requests=settings.serve.max_ongoing_requests,
                           ray_actor_options=ingress_options).bind(
        predictor, explainer, settings_json)


def app_builder(args: dict):
    """Entry for `serve run` / `serve deploy` (import_path serve.app:app_builder)."""
    return build_app(load_settings(args.get("config")) if args else None)


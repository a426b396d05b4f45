"""The dmas HTTP service on Ray Serve: the application graph, configured from settings.

    serve run configs/serve.yaml          (or `dmas serve`)

Layout: `serve.api` (the FastAPI app), `serve.routes` (one module per area of the API),
`serve.middleware` (keys, limits, audit, metrics for every request), `serve.deployments`
(the ingress, which scores), `serve.job_launch` (long routes as Ray jobs).
"""

from dmas.config import Settings, load_settings
from serve.deployments import DmasApi


def build_app(settings: Settings | None = None):
    """The Serve application graph, configured from settings (env DMAS_* / YAML)."""
    settings = settings or load_settings()
    spread = {"max_replicas_per_node": settings.serve.max_replicas_per_node} \
        if settings.serve.max_replicas_per_node else {}
    return DmasApi.options(num_replicas=settings.serve.api_replicas, **spread,
                           max_ongoing_requests=settings.serve.max_ongoing_requests).bind(settings.model_dump_json())


def app_builder(args: dict):
    """Entry for `serve run` / `serve deploy` (import_path serve.app:app_builder)."""
    return build_app(load_settings(args.get("config")) if args else None)

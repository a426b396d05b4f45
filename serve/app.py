"""The dmas HTTP service on Ray Serve: the application graph, configured from settings.

    serve run configs/serve.yaml          (or `dmas serve`)

Layout: `serve.api` (the FastAPI app), `serve.routes` (one module per area of the API),
`serve.middleware` (keys, limits, audit, metrics for every request), `serve.deployments`
(ingress, Predictor, Explainer), `serve.job_launch` (long routes as Ray jobs).
"""

from dmas.config import Settings, load_settings
from serve.deployments import DmasApi, Explainer, Predictor


def build_app(settings: Settings | None = None):
    """The Serve application graph, configured from settings (env DMAS_* / YAML)."""
    settings = settings or load_settings()
    settings_json = settings.model_dump_json()
    predictor = Predictor.options(num_replicas=settings.serve.predictor_replicas,
                                  max_ongoing_requests=settings.serve.max_ongoing_requests).bind(settings_json)
    explainer = Explainer.options(num_replicas=settings.serve.explainer_replicas,
                                  max_ongoing_requests=settings.serve.max_ongoing_requests).bind(settings_json)
    return DmasApi.options(max_ongoing_requests=settings.serve.max_ongoing_requests).bind(
        predictor, explainer, settings_json)


def app_builder(args: dict):
    """Entry for `serve run` / `serve deploy` (import_path serve.app:app_builder)."""
    return build_app(load_settings(args.get("config")) if args else None)

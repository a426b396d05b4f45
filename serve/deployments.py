"""The Serve deployments: the HTTP ingress, a Predictor and an Explainer.

Errors raised in the Predictor or Explainer travel to the ingress as exceptions (dmas errors
pickle whole), where the app's error handlers turn them into status codes.
"""

from __future__ import annotations

from collections import OrderedDict

from ray import serve
from ray.serve.handle import DeploymentHandle
from ray.util import metrics

from dmas.api.config import anonymous_refusal
from dmas.config import Settings
from dmas.errors import ConfigError, DmasError
from dmas.scoring.bundle import RunBundle
from dmas.store import Store
from serve.api import api
from serve.context import ReplicaContext, install


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
    async def predict_batch(self, requests: list[tuple[str, list[str]]]) -> list[list[dict] | DmasError]:
        self.batch_sizes.observe(len(requests))
        answers = []
        for run_id, entity_ids in requests:
            try:
                answers.append(self.bundle(run_id).predictions_for(entity_ids))
            except DmasError as exc:  # one request's error is that request's answer, not the batch's
                answers.append(exc)
        return answers

    async def predict(self, run_id: str, entity_ids: list[str]) -> list[dict]:
        answer = await self.predict_batch((run_id, entity_ids))
        if isinstance(answer, DmasError):
            raise answer
        return answer

    def query(self, run_id: str, order_by: str, descending: bool, limit: int, entity_filter: list[str]) -> list[dict]:
        return self.bundle(run_id).top(order_by, descending, limit, entity_filter or None)

    def known(self, run_id: str, entity_ids: list[str]) -> list[str]:
        return self.bundle(run_id).known(entity_ids)


@serve.deployment(ray_actor_options={"num_cpus": 0.5})
class Explainer:
    """Integrated gradients, event attention and artifact contributions for single entities."""

    def __init__(self, settings_json: str):
        import torch

        torch.set_num_threads(1)  # measured: 2 threads on 2 shared cores made explanations slower and spikier
        self.settings = Settings.model_validate_json(settings_json)
        self.bundle = _bundle_cache(Store(self.settings.store_uri), self.settings.serve.cached_runs)

    def explain(self, run_id: str, entity_ids: list[str], target: str) -> list[dict]:
        from dmas.scoring.explaining import explain_entities

        return explain_entities(self.bundle(run_id), entity_ids, target)


@serve.deployment(ray_actor_options={"num_cpus": 0})
@serve.ingress(api)
class DmasApi:
    """The ingress: its replica's routes (serve/routes/) reach the store and the deployments via serve.context."""

    def __init__(self, predictor: DeploymentHandle, explainer: DeploymentHandle, settings_json: str):
        settings = Settings.model_validate_json(settings_json)
        if settings.serve.auth == "none":
            _refuse_anonymous_off_loopback()
        install(ReplicaContext(settings, predictor, explainer))


def _refuse_anonymous_off_loopback() -> None:
    """`auth: none` where Serve's proxy listens off loopback fails the deployment, saying why.

    The settings only know `serve.host`; `serve run config.yaml` binds its own `http_options.host`,
    which only the Serve controller knows.
    """
    from ray.serve.context import _get_global_client

    host = _get_global_client().http_config.host
    if refusal := anonymous_refusal(host):
        raise ConfigError(refusal)

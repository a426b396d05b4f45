"""The Serve deployment: the HTTP ingress, which also scores.

Each replica holds an online view of the shared store and the runs it serves, so a prediction is
one process's work: the hop to a second deployment cost ~9 ms per request on 2 cores (measured),
more than scoring itself. Replicas scale with `serve.api_replicas`; on a multi-node cluster each
builds its view from the same store and follows the same commits.
"""

from __future__ import annotations

from ray import serve

from dmas.api.config import anonymous_refusal
from dmas.config import Settings
from dmas.errors import ConfigError
from serve.api import api
from serve.context import ReplicaContext, install


@serve.deployment(ray_actor_options={"num_cpus": 0.25})
@serve.ingress(api)
class DmasApi:
    """The ingress: its replica's routes (serve/routes/) reach the store, the view and the runs via serve.context."""

    def __init__(self, settings_json: str):
        import torch

        torch.set_num_threads(1)  # measured: 2 threads on 2 shared cores made explanations slower and spikier
        settings = Settings.model_validate_json(settings_json)
        if settings.serve.auth == "none":
            _refuse_anonymous_off_loopback()
        self.context = ReplicaContext(settings)
        install(self.context)

    def __del__(self):
        self.context.close()


def _refuse_anonymous_off_loopback() -> None:
    """`auth: none` where Serve's proxy listens off loopback fails the deployment, saying why.

    The settings only know `serve.host`; `serve run config.yaml` binds its own `http_options.host`,
    which only the Serve controller knows.
    """
    from ray.serve.context import _get_global_client

    host = _get_global_client().http_config.host
    if refusal := anonymous_refusal(host):
        raise ConfigError(refusal)

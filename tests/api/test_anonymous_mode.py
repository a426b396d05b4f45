"""`serve.auth: none`, for a laptop: served without credentials on loopback, still audited; refused elsewhere."""

import pytest

from dmas.api.audit_log import AuditLog
from dmas.api.network import free_loopback_port
from dmas.config import load_settings
from tests.served import served_app

pytestmark = pytest.mark.slow


def _settings(root, port):
    return load_settings(store_uri=str(root / "store"), serve={
        "auth": "none", "host": "127.0.0.1", "port": port, "audit_log": str(root / "audit.jsonl")})


def test_on_loopback_old_clients_need_no_key_and_are_audited_as_anonymous(local_ray, tmp_path):
    with served_app(_settings(tmp_path, free_loopback_port()), timeout=30) as client:
        response = client.get("/runs", headers={"x-request-id": "laptop"})
        assert response.status_code == 200 and response.json() == []
    (entry,) = [entry for entry in AuditLog(tmp_path / "audit.jsonl").entries() if entry["request_id"] == "laptop"]
    assert entry["key_id"] == "anonymous" and entry["status"] == 200


def test_a_proxy_bound_off_loopback_refuses_to_deploy_without_auth(local_ray, tmp_path):
    """`serve run` binds its own http_options.host, which the settings cannot see: the ingress checks it."""
    from ray import serve

    from serve.app import build_app

    port = free_loopback_port()
    serve.start(http_options={"host": "0.0.0.0", "port": port})
    try:
        with pytest.raises(RuntimeError, match="DmasApi"):
            serve.run(build_app(_settings(tmp_path, port)), name="dmas", route_prefix="/")
    finally:
        serve.shutdown()

"""JWTs from an OIDC provider, through the real application: the old platform's UI sends `Bearer <JWT>`."""

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from dmas.api.audit_log import AuditLog
from dmas.api.network import free_loopback_port
from dmas.config import load_settings
from tests.jwks import JwksServer
from tests.served import served_app

pytestmark = pytest.mark.slow
ISSUER, AUDIENCE = "https://idp.example", "dmas"


@pytest.fixture(scope="module")
def service(local_ray, tmp_path_factory):
    root = tmp_path_factory.mktemp("jwt")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    provider = JwksServer()
    provider.publish("idp-1", key)
    settings = load_settings(store_uri=str(root / "store"), serve={
        "host": "127.0.0.1", "port": free_loopback_port(), "audit_log": str(root / "audit.jsonl"),
        "jwt": {"jwks_url": provider.url, "issuer": ISSUER, "audience": AUDIENCE,
                "role_map": {"dmas-admin": "admin", "analyst": "viewer"}}})
    try:
        with served_app(settings, timeout=60) as client:
            yield {"client": client, "key": key, "audit": AuditLog(root / "audit.jsonl")}
    finally:
        provider.close()


def _token(key, **overrides) -> str:
    now = int(time.time())
    claims = {"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300, "roles": ["analyst"]}
    return jwt.encode({**claims, **overrides}, key, algorithm="RS256", headers={"kid": "idp-1"})


def _get(service, path, token, request_id=None):
    headers = {"authorization": f"Bearer {token}", **({"x-request-id": request_id} if request_id else {})}
    return service["client"].get(path, headers=headers)


def test_a_providers_token_is_a_caller_with_its_mapped_role(service):
    response = _get(service, "/runs", _token(service["key"]), request_id="jwt-viewer")
    assert response.status_code == 200, response.text
    (entry,) = [entry for entry in service["audit"].entries() if entry["request_id"] == "jwt-viewer"]
    assert entry["key_id"] == "jwt:alice"
    token = _token(service["key"])
    admin_only = service["client"].post("/features/extract", headers={"authorization": f"Bearer {token}"})
    assert admin_only.status_code == 403


def test_expired_foreign_and_unmapped_tokens_are_refused_saying_why(service):
    expired = _get(service, "/runs", _token(service["key"], exp=int(time.time()) - 3600))
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    assert 'error="invalid_token"' in expired.headers["www-authenticate"]
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = _get(service, "/runs", _token(stranger))
    assert forged.status_code == 401
    wrong_audience = _get(service, "/runs", _token(service["key"], aud="another-service"))
    assert wrong_audience.status_code == 401 and "audience" in wrong_audience.json()["detail"]
    unmapped = _get(service, "/runs", _token(service["key"], roles=["intern"]))
    assert unmapped.status_code == 403 and "roles" in unmapped.json()["detail"]

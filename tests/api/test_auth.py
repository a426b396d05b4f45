"""Authentication with real credentials: API keys, service tokens, HS256 and JWKS-signed JWTs, auth none."""

from __future__ import annotations

import base64
import json
import logging
import pickle
import socket
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import ValidationError

from dmas.api.auth import ANONYMOUS, Authenticator, require_role
from dmas.api.config import ServeSettings
from dmas.api.security import (
    INVALID_TOKEN_CHALLENGE,
    AuthenticationError,
    IdentityProviderUnavailableError,
    PermissionDeniedError,
    Principal,
    allows,
    new_key,
)
from dmas.config import load_settings
from dmas.errors import ConfigError
from tests.jwks import JwksServer

SECRET_ENV = "DMAS_TEST_JWT_SECRET"
SECRET = "s3cret-shared-with-the-old-platform-0123456789"
ISSUER, AUDIENCE = "https://idp.example", "dmas"
ROLE_MAP = {"dmas-admin": "admin", "analyst": "viewer"}
VIEWER_KEY, VIEWER_ENTRY = new_key("ui", "viewer")
SERVICE_TOKEN, SERVICE_ENTRY = new_key("airflow", "admin")


def claims(**overrides) -> dict:
    now = int(time.time())
    base = {"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300, "roles": ["analyst"]}
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def hs256(secret: str = SECRET, **overrides) -> str:
    return jwt.encode(claims(**overrides), secret, algorithm="HS256")


def jwt_settings(**overrides) -> dict:
    return {"issuer": ISSUER, "audience": AUDIENCE, "role_map": ROLE_MAP, **overrides}


def authenticator(monkeypatch, jwt_options: dict | None = None, **serve) -> Authenticator:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    settings = ServeSettings(api_keys=[VIEWER_ENTRY], service_tokens=[SERVICE_ENTRY],
                             jwt=jwt_settings(**(jwt_options or {"hs256_secret_env": SECRET_ENV})), **serve)
    return Authenticator(settings)


def refused(auth: Authenticator, headers: dict, error=AuthenticationError) -> str:
    with pytest.raises(error) as caught:
        auth.identify(headers)
    return str(caught.value)


# --- API keys and service tokens ---------------------------------------------------------------

def test_api_key_in_either_header(monkeypatch):
    auth = authenticator(monkeypatch)
    expected = Principal("ui", "viewer", "api_key")
    assert auth.identify({"X-API-Key": VIEWER_KEY}) == expected
    assert auth.identify({"authorization": f"Bearer {VIEWER_KEY}"}) == expected


def test_unknown_key_and_missing_credentials_say_what_to_send(monkeypatch):
    auth = authenticator(monkeypatch)
    with pytest.raises(AuthenticationError, match="unknown API key") as caught:
        auth.identify({"x-api-key": "not-a-key"})
    assert caught.value.challenge == INVALID_TOKEN_CHALLENGE
    assert "unknown API key" in refused(auth, {"Authorization": "Bearer not-a-key"})
    with pytest.raises(AuthenticationError, match="X-API-Key.*x-service-token.*Bearer") as caught:
        auth.identify({"accept": "application/json"})
    assert caught.value.challenge == 'Bearer realm="dmas"'
    assert "'Basic' is not accepted" in refused(auth, {"Authorization": "Basic dXNlcjpwdw=="})


def test_service_token(monkeypatch):
    auth = authenticator(monkeypatch)
    assert auth.identify({"X-Service-Token": SERVICE_TOKEN}) == Principal("airflow", "admin", "service_token")
    assert "unknown service token" in refused(auth, {"x-service-token": VIEWER_KEY})


# --- HS256 JWTs ----------------------------------------------------------------------------------

def test_hs256_token_maps_its_roles(monkeypatch):
    auth = authenticator(monkeypatch)
    assert auth.identify({"Authorization": f"Bearer {hs256()}"}) == Principal("jwt:alice", "viewer", "jwt")
    both = hs256(roles=["analyst", "dmas-admin", "unmapped"])
    assert auth.identify({"Authorization": f"Bearer {both}"}).role == "admin"


@pytest.mark.parametrize(("overrides", "message"), [
    ({"exp": int(time.time()) - 120}, "expired at"),
    ({"aud": "another-service"}, "audience must be 'dmas'"),
    ({"iss": "https://evil.example"}, "issuer must be 'https://idp.example'"),
    ({"exp": None}, "no 'exp' claim"),
    ({"sub": None}, "no 'sub' claim"),
])
def test_hs256_token_refused_with_the_reason(monkeypatch, overrides, message):
    auth = authenticator(monkeypatch)
    assert message in refused(auth, {"Authorization": f"Bearer {hs256(**overrides)}"})


@pytest.mark.parametrize(("headers", "message"), [
    ({"kid": 5}, "Key ID header parameter must be a string"),
    ({"crit": ["x-unknown"]}, "Unsupported critical extension"),
])
def test_malformed_jwt_headers_are_a_401_not_a_crash(monkeypatch, headers, message):
    auth = authenticator(monkeypatch)
    segments = ({"alg": "HS256", **headers}, claims())  # jwt.encode refuses to write such headers
    token = ".".join(base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=") for part in segments)
    token += ".c2lnbmF0dXJl"
    assert message in refused(auth, {"Authorization": f"Bearer {token}"})


def test_hs256_token_signed_with_another_key(monkeypatch):
    auth = authenticator(monkeypatch)
    forged = hs256(secret="another-secret-that-is-long-enough-000000")
    assert "signature does not verify" in refused(auth, {"Authorization": f"Bearer {forged}"})


def test_leeway_tolerates_small_clock_skew(monkeypatch):
    auth = authenticator(monkeypatch, {"hs256_secret_env": SECRET_ENV, "leeway_s": 60})
    token = hs256(exp=int(time.time()) - 20)
    assert auth.identify({"Authorization": f"Bearer {token}"}).key_id == "jwt:alice"


def test_role_claim_missing_or_unmapped_is_403_naming_the_claim(monkeypatch):
    auth = authenticator(monkeypatch)
    message = refused(auth, {"Authorization": f"Bearer {hs256(roles=None)}"}, PermissionDeniedError)
    assert "no 'roles' claim" in message
    message = refused(auth, {"Authorization": f"Bearer {hs256(roles=['intern'])}"}, PermissionDeniedError)
    assert "'roles' claim (intern) grants" in message
    groups = [f"group-{index}" for index in range(100)]
    message = refused(auth, {"Authorization": f"Bearer {hs256(roles=groups)}"}, PermissionDeniedError)
    assert "(group-0, group-1, group-2, group-3, group-4, ...)" in message


def test_roles_from_a_scope_string_or_a_nested_claim(monkeypatch):
    scope = authenticator(monkeypatch, {"hs256_secret_env": SECRET_ENV, "role_claim": "scope"})
    token = hs256(roles=None, scope="openid dmas-admin")
    assert scope.identify({"Authorization": f"Bearer {token}"}).role == "admin"
    nested = authenticator(monkeypatch, {"hs256_secret_env": SECRET_ENV, "role_claim": "realm_access.roles"})
    token = hs256(roles=None, realm_access={"roles": ["analyst"]})
    assert nested.identify({"Authorization": f"Bearer {token}"}).role == "viewer"


def test_a_jwt_where_none_are_configured_or_with_an_algorithm_not_accepted(monkeypatch):
    keys_only = Authenticator(ServeSettings(api_keys=[VIEWER_ENTRY]))
    assert "accepts no JWTs" in refused(keys_only, {"Authorization": f"Bearer {hs256()}"})
    auth = authenticator(monkeypatch)
    unsigned = jwt.encode(claims(), None, algorithm="none")
    assert "'none' are not accepted" in refused(auth, {"Authorization": f"Bearer {unsigned}"})


def test_hs256_secret_must_be_set_and_long(monkeypatch):
    settings = ServeSettings(jwt=jwt_settings(hs256_secret_env=SECRET_ENV))
    monkeypatch.delenv(SECRET_ENV, raising=False)
    with pytest.raises(ConfigError, match=f"{SECRET_ENV}, which is not set"):
        Authenticator(settings)
    monkeypatch.setenv(SECRET_ENV, "short")
    with pytest.raises(ConfigError, match="5 bytes; it needs at least 32"):
        Authenticator(settings)


def test_jwt_settings_need_issuer_audience_and_a_role_map():
    with pytest.raises(ValidationError, match="issuer and audience must be set"):
        ServeSettings(jwt={"jwks_url": "https://idp.example/jwks", "role_map": ROLE_MAP})
    with pytest.raises(ValidationError, match="role_map must map"):
        ServeSettings(jwt={"hs256_secret_env": SECRET_ENV, "issuer": ISSUER, "audience": AUDIENCE})


def test_jwt_settings_from_env(monkeypatch):
    monkeypatch.setenv("DMAS_SERVE__JWT__HS256_SECRET_ENV", SECRET_ENV)
    monkeypatch.setenv("DMAS_SERVE__JWT__ISSUER", ISSUER)
    monkeypatch.setenv("DMAS_SERVE__JWT__AUDIENCE", AUDIENCE)
    monkeypatch.setenv("DMAS_SERVE__JWT__ROLE_MAP", json.dumps(ROLE_MAP))
    monkeypatch.setenv("DMAS_SERVE__SERVICE_TOKENS", json.dumps([SERVICE_ENTRY.model_dump()]))
    monkeypatch.setenv(SECRET_ENV, SECRET)
    auth = Authenticator(load_settings().serve)
    assert auth.identify({"Authorization": f"Bearer {hs256(roles=['dmas-admin'])}"}).role == "admin"
    assert auth.identify({"x-service-token": SERVICE_TOKEN}).key_id == "airflow"


def test_one_name_for_two_credentials_is_refused():
    _, twin = new_key("ui", "admin")
    with pytest.raises(ValidationError, match="key_id ui names more than one"):
        ServeSettings(api_keys=[VIEWER_ENTRY], service_tokens=[twin])


# --- JWKS (RS256 / ES256) from a real loopback server --------------------------------------------

@pytest.fixture
def jwks_server():
    server = JwksServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def rsa_keys():
    return [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2)]


def signed(private_key, kid: str, **overrides) -> str:
    algorithm = "RS256" if isinstance(private_key, rsa.RSAPrivateKey) else "ES256"
    return jwt.encode(claims(**overrides), private_key, algorithm=algorithm, headers={"kid": kid})


def jwks_authenticator(monkeypatch, url: str, **options) -> Authenticator:
    return authenticator(monkeypatch, {"jwks_url": url, "jwks_timeout_s": 0.5, **options})


def test_rs256_and_es256_tokens_from_the_jwks(monkeypatch, jwks_server, rsa_keys):
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jwks_server.publish("rsa-1", rsa_keys[0])
    jwks_server.publish("ec-1", ec_key)
    auth = jwks_authenticator(monkeypatch, jwks_server.url)
    assert auth.identify({"Authorization": f"Bearer {signed(rsa_keys[0], 'rsa-1')}"}) == Principal(
        "jwt:alice", "viewer", "jwt")
    admin = signed(ec_key, "ec-1", sub="ci", roles=["dmas-admin"])
    assert auth.identify({"Authorization": f"Bearer {admin}"}) == Principal("jwt:ci", "admin", "jwt")
    assert jwks_server.fetches == 1, "the key set is cached"
    forged = signed(rsa_keys[1], "rsa-1")
    assert "signature does not verify" in refused(auth, {"Authorization": f"Bearer {forged}"})
    hs_token = hs256()
    assert "'HS256' are not accepted" in refused(auth, {"Authorization": f"Bearer {hs_token}"})


def test_key_rotation_refetches_the_key_set_for_an_unknown_kid(monkeypatch, jwks_server, rsa_keys):
    jwks_server.publish("old", rsa_keys[0])
    auth = jwks_authenticator(monkeypatch, jwks_server.url, jwks_min_refetch_s=0)
    assert auth.identify({"Authorization": f"Bearer {signed(rsa_keys[0], 'old')}"}).role == "viewer"
    jwks_server.publish("new", rsa_keys[1])
    assert auth.identify({"Authorization": f"Bearer {signed(rsa_keys[1], 'new')}"}).role == "viewer"
    assert jwks_server.fetches == 2
    message = refused(auth, {"Authorization": f"Bearer {signed(rsa_keys[1], 'revoked')}"})
    assert "key id 'revoked', which the identity provider does not publish" in message


def test_unknown_kids_refetch_at_most_once_per_interval(monkeypatch, jwks_server, rsa_keys):
    jwks_server.publish("old", rsa_keys[0])
    auth = jwks_authenticator(monkeypatch, jwks_server.url, jwks_min_refetch_s=300)
    auth.identify({"Authorization": f"Bearer {signed(rsa_keys[0], 'old')}"})
    for kid in ("a", "b", "c"):
        refused(auth, {"Authorization": f"Bearer {signed(rsa_keys[1], kid)}"})
    assert jwks_server.fetches == 1


def test_jwks_down_is_a_quick_503_not_a_hang(monkeypatch, caplog):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        closed_port = closed.getsockname()[1]
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        for port in (closed_port, silent.getsockname()[1]):
            auth = jwks_authenticator(monkeypatch, f"http://127.0.0.1:{port}/jwks")
            token = signed(rsa.generate_private_key(public_exponent=65537, key_size=2048), "k1")
            started = time.monotonic()
            with caplog.at_level(logging.WARNING), pytest.raises(IdentityProviderUnavailableError) as caught:
                auth.identify({"Authorization": f"Bearer {token}"})
            assert time.monotonic() - started < 3
            assert "signing keys cannot be fetched" in str(caught.value) and caught.value.retry_after_s == 1
            assert token not in caplog.text
    assert auth.identify({"X-API-Key": VIEWER_KEY}).key_id == "ui", "API keys work while the IdP is down"


# --- auth none -----------------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_auth_none_on_loopback_serves_anonymous_and_warns(host, caplog):
    with caplog.at_level(logging.WARNING, logger="dmas.api.auth"):
        auth = Authenticator(load_settings(serve={"auth": "none", "host": host}).serve)
    assert "serve.auth is 'none'" in caplog.text
    assert auth.identify({}) == ANONYMOUS == Principal("anonymous", "admin", "none")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "dmas.internal"])
def test_auth_none_refused_off_loopback_saying_why(host, monkeypatch):
    monkeypatch.setenv("DMAS_SERVE__AUTH", "none")
    monkeypatch.setenv("DMAS_SERVE__HOST", host)
    with pytest.raises(ConfigError, match=r"serve\.auth is 'none'.* only on a loopback address") as caught:
        load_settings()
    assert repr(host) in str(caught.value)


def test_auth_none_refused_even_when_validation_was_skipped():
    unchecked = ServeSettings(auth="none").model_copy(update={"host": "0.0.0.0"})  # as `dmas serve --host` does
    with pytest.raises(ConfigError, match="only on a loopback address"):
        Authenticator(unchecked)


# --- roles and errors ----------------------------------------------------------------------------

def test_roles_rank_viewer_below_admin():
    viewer, admin = Principal("v", "viewer", "api_key"), Principal("a", "admin", "jwt")
    assert allows(admin, "viewer") and allows(admin, "admin") and allows(viewer, "viewer")
    assert not allows(viewer, "admin")
    require_role(admin, "admin")
    with pytest.raises(PermissionDeniedError, match="'v' has the role viewer; this needs admin"):
        require_role(viewer, "admin")


@pytest.mark.parametrize("error", [
    AuthenticationError("the token expired", INVALID_TOKEN_CHALLENGE),
    PermissionDeniedError("needs admin"),
    IdentityProviderUnavailableError("JWKS down", retry_after_s=5),
])
def test_errors_survive_pickling_across_processes(error):
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), str(copy), vars(copy)) == (type(error), str(error), vars(error))

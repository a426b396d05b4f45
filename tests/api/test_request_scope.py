"""What every request goes through before and after its route: the caller first, then limits, audit, metrics.

Each test here is a fault found by trying the service as a client would: a non-ASCII path was a
500 missing from the audit log, refusals were audited without the key that was sent, and a body
shorter than its Content-Length hung the connection.
"""

import socket
import time

import pytest

from dmas.api.audit_log import AuditLog
from dmas.api.network import free_loopback_port
from dmas.api.security import new_key
from dmas.config import load_settings
from tests.served import served_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service(local_ray, tmp_path_factory):
    """The application over an empty store (no run is needed to test what happens around routes)."""
    root = tmp_path_factory.mktemp("scope")
    key, entry = new_key("ops", "admin")
    token, token_entry = new_key("nightly-etl", "viewer")
    port = free_loopback_port()
    settings = load_settings(store_uri=str(root / "store"), serve={
        "host": "127.0.0.1", "port": port, "api_keys": [entry.model_dump()],
        "service_tokens": [token_entry.model_dump()], "max_body_bytes": 2_000,
        "audit_log": str(root / "audit.jsonl"), "body_idle_timeout_s": 1.0})
    with served_app(settings, timeout=60) as client:
        yield {"client": client, "key": key, "token": token, "port": port, "audit": AuditLog(root / "audit.jsonl")}


def _audited(service, request_id: str) -> dict:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        entries = [entry for entry in service["audit"].entries() if entry["request_id"] == request_id]
        if entries:
            return entries[0]
        time.sleep(0.05)
    raise AssertionError(f"request {request_id} is not in the audit log")


def _read_response(connection: socket.socket) -> str:
    """One whole HTTP response (headers and the Content-Length bytes of body) from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length"))
    while len(body) < length:
        body += connection.recv(65536)
    return (head + b"\r\n\r\n" + body).decode("latin-1")


def test_a_non_ascii_path_is_a_404_and_is_audited(service):
    response = service["client"].get("/runs/caf\u00e9-\u65e5\u672c", headers={"x-api-key": service["key"],
                                                                             "x-request-id": "non-ascii"})
    assert response.status_code == 404, response.text
    entry = _audited(service, "non-ascii")
    assert entry["status"] == 404 and entry["key_id"] == "ops" and entry["route"] == "/runs/café-日本"
    unmatched = service["client"].get("/n\u00f6where", headers={"x-api-key": service["key"]})
    assert unmatched.status_code == 404


@pytest.mark.parametrize("case", ["too_large", "undeclared_length", "invalid_body"])
def test_refused_requests_are_audited_with_the_key_that_was_sent(service, case):
    headers = {"x-api-key": service["key"], "x-request-id": f"refused-{case}", "content-type": "application/json"}
    client = service["client"]
    if case == "too_large":
        response = client.post("/predict", json={"entity_ids": ["x" * 5_000]}, headers=headers)
        expected = 413
    elif case == "undeclared_length":
        response = client.post("/predict", content=iter([b'{"entity_ids": ["e1"]}']), headers=headers)
        expected = 411
    else:
        response = client.post("/predict", content=b'{"entity_ids": "not a list"}', headers=headers)
        expected = 422
    assert response.status_code == expected, response.text
    if case == "too_large":  # says which setting to raise
        assert "DMAS_SERVE__MAX_BODY_BYTES" in response.json()["detail"]
    entry = _audited(service, f"refused-{case}")
    assert entry["status"] == expected and entry["key_id"] == "ops"


def test_unauthenticated_requests_get_401_before_their_body_is_judged(service):
    response = service["client"].post("/predict", json={"entity_ids": ["x" * 5_000]})
    assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
    assert service["client"].get("/health").status_code == 200
    assert service["client"].get("/openapi.json").status_code == 200


def test_a_body_shorter_than_its_content_length_is_answered_400_not_left_hanging(service):
    request = (b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n"
               b"x-api-key: " + service["key"].encode() + b"\r\nx-request-id: stalled\r\n"
               b"content-length: 100\r\n\r\n" + b'{"entity_ids": ')
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", service["port"]), timeout=20) as connection:
        connection.sendall(request)
        answer = _read_response(connection)
    assert answer.startswith("HTTP/1.1 400"), answer[:200]
    assert "declared Content-Length" in answer
    assert time.monotonic() - started < 15
    assert _audited(service, "stalled")["status"] == 400


def test_the_old_platforms_service_token_is_a_caller_with_its_role(service):
    client = service["client"]
    runs = client.get("/runs", headers={"x-service-token": service["token"], "x-request-id": "service-token"})
    assert runs.status_code == 200, runs.text
    assert _audited(service, "service-token")["key_id"] == "nightly-etl"
    refused = client.post("/features/extract", headers={"x-service-token": service["token"]})
    assert refused.status_code == 403 and "admin" in refused.json()["detail"]
    wrong = client.get("/runs", headers={"x-service-token": "not-a-token"})
    assert wrong.status_code == 401 and "service token" in wrong.json()["detail"]

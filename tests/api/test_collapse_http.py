"""POST /collapse-check over HTTP on 127.0.0.1: uploads, store tables, the async form, the HTML page,
and errors with the engine's category codes (never a 5xx for bad input)."""

import io
import time

import pytest

from dmas.api.network import free_loopback_port
from dmas.api.security import new_key
from dmas.config import load_settings
from dmas.ingest.tabular import ingest_table
from dmas.quality import planted
from dmas.store import Store
from dmas.synth import generate
from tests.served import served_app

pytestmark = pytest.mark.slow
ROWS = 1500
FAST = "distribution_fidelity,correlation_preservation,statistical_consistency"  # the dimensions these tests run


def _parquet(frame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def service(local_ray, tmp_path_factory):
    """The application over a store holding synthetic entities, with a viewer key, and three tables."""
    root = tmp_path_factory.mktemp("collapse")
    data = generate(root / "input", n_entities=120, seed=5)
    store = Store(root / "store")
    ingest_table(store, "entities", data.entities_path)
    viewer_key, viewer = new_key("analyst", "viewer")
    admin_key, admin = new_key("ops", "admin")
    settings = load_settings(store_uri=str(root / "store"), serve={
        "host": "127.0.0.1", "port": free_loopback_port(), "api_keys": [viewer.model_dump(), admin.model_dump()],
        "audit_log": str(root / "audit.jsonl")})
    reference = planted.reference_table(ROWS, 0)
    tables = {"reference": _parquet(reference), "clean": planted.reference_table(ROWS, 1).to_csv(index=False).encode(),
              "collapsed": _parquet(planted.variance_shrink(reference, 0.5, 2))}
    with served_app(settings, timeout=300) as client:
        yield {"client": client, "viewer": {"x-api-key": viewer_key}, "admin": {"x-api-key": admin_key},
               "tables": tables}


def _check(service, candidate=("collapsed.parquet", "collapsed"), reference=("reference.parquet", "reference"),
           data=None, params=None):
    files = {}
    for role, chosen in (("candidate", candidate), ("reference", reference)):
        if chosen is not None:
            files[role] = (chosen[0], service["tables"][chosen[1]])
    return service["client"].post("/collapse-check", files=files, data={"dimensions": FAST, **(data or {})},
                                  headers=service["viewer"], params=params)


def test_an_uploaded_collapsed_candidate_is_found_and_a_clean_one_is_not(service):
    collapsed = _check(service)
    assert collapsed.status_code == 200, collapsed.text
    report = collapsed.json()
    assert report["collapse_detected"] and any(flag["columns"] == ["x1"] for flag in report["flags"])
    assert [dimension["name"] for dimension in report["dimensions"]] == FAST.split(",")
    clean = _check(service, candidate=("clean.csv", "clean"))
    assert clean.status_code == 200, clean.text
    assert not clean.json()["collapse_detected"], clean.json()["flags"]
    assert "uploads" not in clean.text, "the server's staging path leaked into the report"


def test_the_async_form_and_the_html_report(service):
    started = _check(service, params={"async": "true"})
    assert started.status_code == 202, started.text
    job_id = started.json()["job_id"]
    deadline = time.monotonic() + 120
    while (record := service["client"].get(f"/jobs/{job_id}", headers=service["admin"]).json())["status"] in (
            "queued", "running") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert record["status"] == "succeeded", record
    assert record["result"]["collapse_detected"]
    page = service["client"].get(f"/collapse-check/{job_id}/report.html", headers=service["viewer"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<svg" in page.text and "x1" in page.text
    missing = service["client"].get("/collapse-check/nope/report.html", headers=service["viewer"])
    assert missing.status_code == 404


def test_a_store_table_can_be_either_side(service):
    response = service["client"].post("/collapse-check", data={"candidate_ref": "entities@1", "reference_ref":
                                                               "entities", "dimensions": FAST},
                                      headers=service["viewer"])
    assert response.status_code == 200, response.text
    report = response.json()
    # the same version against itself: every row is a copy, and nothing else moved
    assert report["collapse_detected"] and {flag["dimension"] for flag in report["flags"]} == {"memorization"}
    assert report["memorization"]["evidence"][0]["statistic"] in ("exact_copy_rate", "near_copy_rate")
    assert report["inputs"]["candidate"]["rows"] == 120


@pytest.mark.parametrize(("data", "files", "code"), [
    ({"candidate_ref": "/etc/passwd"}, {"reference": ("r.parquet", "reference")}, 1001),  # a server path
    ({"candidate_ref": "file:///etc/passwd"}, {"reference": ("r.parquet", "reference")}, 1001),
    ({"candidate_ref": "entities"}, {"candidate": ("c.csv", "clean"), "reference": ("r.parquet", "reference")}, 1002),
    ({}, {"reference": ("r.parquet", "reference")}, 1002),  # no candidate at all
    ({"kinds": "not json"}, {"candidate": ("c.csv", "clean"), "reference": ("r.parquet", "reference")}, 1003),
    ({"target": "no_such_column"}, {"candidate": ("c.csv", "clean"), "reference": ("r.parquet", "reference")}, 1003),
])
def test_bad_requests_get_a_category_code_and_no_5xx(service, data, files, code):
    uploads = {role: (name, service["tables"][table]) for role, (name, table) in files.items()}
    response = service["client"].post("/collapse-check", files=uploads or None, data={"dimensions": FAST, **data},
                                      headers=service["viewer"])
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["retryable"] is False and error["message"]


def test_an_unreadable_upload_fails_its_job_with_a_data_error(service):
    files = {"candidate": ("junk.csv", b"\x00\x01\x02 not a table \xff" * 50),
             "reference": ("reference.parquet", service["tables"]["reference"])}
    response = service["client"].post("/collapse-check", files=files, data={"dimensions": FAST},
                                      headers=service["viewer"])
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"]["code"] == 1001 and "junk.csv" in body["error"]["message"] and body["job_id"]
    record = service["client"].get(f"/jobs/{body['job_id']}", headers=service["admin"]).json()
    assert record["status"] == "failed" and record["error"]["error"]["code"] == 1001

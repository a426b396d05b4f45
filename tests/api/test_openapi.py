"""The published OpenAPI document says how to authenticate and what error bodies look like (no Ray needed)."""

import pytest

from serve.api import api
from serve.openapi import SECURITY_SCHEMES


@pytest.fixture(scope="module")
def document():
    return api.openapi()


def _operations(document):
    return [(path, method, operation) for path, operations in document["paths"].items()
            for method, operation in operations.items()]


def test_security_schemes_cover_every_credential_kind(document):
    schemes = document["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {**schemes["ApiKey"], "type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schemes["ServiceToken"]["name"] == "x-service-token" and schemes["ServiceToken"]["in"] == "header"
    assert schemes["Bearer"]["type"] == "http" and schemes["Bearer"]["scheme"] == "bearer"


def test_every_operation_but_health_requires_credentials(document):
    for path, method, operation in _operations(document):
        if path == "/health":
            assert "security" not in operation
            continue
        assert operation["security"] == [{name: []} for name in SECURITY_SCHEMES], (method, path)
        assert {"401", "403", "411", "413"} <= set(operation["responses"]), (method, path)


def test_error_bodies_are_published_as_dmas_sends_them(document):
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert schemas["ErrorBody"]["required"] == ["detail"]
    assert set(schemas["ErrorBody"]["properties"]) >= {"detail", "problems", "unknown_entity_ids", "job_id"}
    predict = document["paths"]["/predict"]["post"]["responses"]
    assert predict["422"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
    for path, method, operation in _operations(document):
        for status, response in operation["responses"].items():
            if status[0] in "45":
                assert response["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody"), \
                    (method, path, status)


def test_job_routes_publish_their_async_answer(document):
    for path in ("/train", "/features/extract", "/runs/{run_id}/reproduce"):
        responses = document["paths"][path]["post"]["responses"]
        assert responses["202"]["content"]["application/json"]["schema"]["$ref"].endswith("/JobStarted"), path


def test_store_routes_have_summaries_parameters_and_shapes(document):
    paths = document["paths"]
    for path, method in (("/entities/{entity_id}", "delete"), ("/store/snapshot", "get"),
                         ("/store/{table}/history", "get"), ("/store/{table}/lineage", "get"),
                         ("/store/{table}/export", "get"), ("/runs/{run_id}/lineage", "get"),
                         ("/runs/{run_id}/reproduce", "post")):
        operation = paths[path][method]
        assert operation["summary"] and operation["responses"]["200"]["content"], (method, path)
        assert "404" in operation["responses"] or "{" not in path, (method, path)
    export = paths["/store/{table}/export"]["get"]
    assert {parameter["name"] for parameter in export["parameters"]} == {"table", "version", "format"}
    assert "application/vnd.apache.parquet" in export["responses"]["200"]["content"]
    forget = paths["/entities/{entity_id}"]["delete"]
    assert forget["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ForgetReport")


def test_optional_form_fields_are_published_as_optional_not_as_nullable(document):
    """schemathesis believed `artifact_type: null` and sent the text "null", which is rightly refused."""
    schemas = document["components"]["schemas"]
    forms = [name for name in schemas if name.startswith("Body_ingest_artifact")]
    assert len(forms) == 2
    for name in forms:
        for field, schema in schemas[name]["properties"].items():
            assert "null" not in str(schema.get("anyOf", "")), (name, field)
    assert schemas["Body_ingest_artifact_ingest_artifact_post"]["properties"]["artifact_type"]["enum"] == [
        "image", "audio", "video"]


def test_the_query_text_says_it_may_not_be_blank(document):
    (text,) = [branch for branch in document["components"]["schemas"]["QueryRequest"]["properties"]["query"]["anyOf"]
               if branch.get("type") == "string"]
    assert text["minLength"] == 1 and text["pattern"] == r"\S"

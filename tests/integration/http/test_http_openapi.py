"""The OpenAPI document: valid OpenAPI 3.1, and the live server's answers conform to it.

Schemathesis generates requests for every operation from the document (valid and
invalid ones) and checks each answer: no server error, a documented status, the
documented content type and a body that validates against the documented schema.
The two event streams never end, so they are checked by the SSE tests instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from http_support import ORDER, http_client
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from server_harness import ServerProcess

pytestmark = pytest.mark.slow  # Schemathesis runs against a live server

EXAMPLES = 10  # per operation and mode: the whole run stays well under a minute
STREAMS = r"^/v1/(events|instances/\{instance_id\}/events/stream)$"
ROUTES = {
    ("GET", "/v1/machines"),
    ("PUT", "/v1/machines/{machine}/versions/{version}"),
    ("GET", "/v1/machines/{machine}/versions/{version}"),
    ("GET", "/v1/machines/{machine}/versions/{version}/diagram"),
    ("POST", "/v1/instances"),
    ("GET", "/v1/instances"),
    ("GET", "/v1/instances/{instance_id}"),
    ("DELETE", "/v1/instances/{instance_id}"),
    ("POST", "/v1/instances/{instance_id}/events"),
    ("GET", "/v1/instances/{instance_id}/history"),
    ("POST", "/v1/instances/{instance_id}/snapshot"),
    ("POST", "/v1/batch"),
    ("GET", "/v1/wal"),
    ("GET", "/v1/wal/stats"),
    ("POST", "/v1/admin/compact"),
    ("GET", "/v1/events"),
    ("GET", "/v1/instances/{instance_id}/events/stream"),
    ("GET", "/health"),
    # the web console's reads
    ("GET", "/v1/console/machines/{machine}/versions/{version}/layout"),
    ("GET", "/v1/console/machines/{machine}/versions/{version}/counts"),
    ("GET", "/v1/console/instances"),
}


@pytest.fixture(scope="module")
def live(rstmdb_module_server: Callable[..., ServerProcess]) -> Iterator[ServerProcess]:
    server = rstmdb_module_server(env={"RSTMDB_LOG_FORMAT": "text"})
    with http_client(server) as client:
        assert client.put("/v1/machines/order/versions/1", json=ORDER).status_code == 201
        body = {"machine": "order", "version": 1, "instance_id": "o-1"}
        assert client.post("/v1/instances", json=body).status_code == 201
    yield server


@pytest.fixture(scope="module")
def document(live: ServerProcess) -> dict[str, Any]:
    with http_client(live) as client:
        doc: dict[str, Any] = client.get("/openapi.json").json()
    return doc


def test_document_is_valid_openapi_31(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1.")
    validate(document)
    found = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert found == ROUTES


def test_documented_errors_and_stream_types(document: dict[str, Any]) -> None:
    apply = document["paths"]["/v1/instances/{instance_id}/events"]["post"]
    assert {"200", "400", "404", "409", "422"} <= set(apply["responses"])
    error = apply["responses"]["409"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/ErrorBody"}
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
    }
    assert document["security"] == [{}, {"bearer": []}]
    stream = document["paths"]["/v1/events"]["get"]["responses"]["200"]["content"]
    assert list(stream) == ["text/event-stream"]
    body = document["components"]["schemas"]["CreateInstanceBody"]
    assert body["additionalProperties"] is False


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_answers_conform_to_the_document(
    live: ServerProcess, document: dict[str, Any], mode: GenerationMode
) -> None:
    assert live.http_url is not None
    api = schemathesis.openapi.from_url(f"{live.http_url}openapi.json").exclude(path_regex=STREAMS)
    checked = []
    for found in api.get_all_operations():
        operation = found.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            phases=[Phase.generate],
        )
        def conforms(case: Any) -> None:
            case.call_and_validate(checks=CHECKS, timeout=30)

        spec = document["paths"][operation.path][operation.method.lower()]
        has_input = "parameters" in spec or "requestBody" in spec
        if mode is GenerationMode.NEGATIVE and not has_input:
            continue  # nothing to get wrong: no parameters, no body
        try:
            conforms()
        except Unsatisfiable:
            # Every input of some operations is a string accepted as is (an id, a name):
            # then no invalid request exists for it.
            assert mode is GenerationMode.NEGATIVE, operation.path
            continue
        checked.append(f"{operation.method.upper()} {operation.path}")
    if mode is GenerationMode.POSITIVE:
        assert len(checked) == len(ROUTES) - 2, checked
    else:
        assert len(checked) >= 8, checked


def test_conformance_run_reached_the_server(live: ServerProcess) -> None:
    with http_client(live) as client:
        assert isinstance(client.get("/v1/wal/stats").json()["entry_count"], int)
        response = client.get("/v1/instances/o-1")
    assert response.status_code in (200, 404)  # generated requests may have deleted it
    assert isinstance(response, httpx.Response)

"""Bad input over HTTP: always the right status and the JSON error object, never HTML."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import httpx
import pytest

MIB = 1024 * 1024


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code and isinstance(error["message"], str)
    assert isinstance(error["retryable"], bool)
    assert "Traceback" not in response.text and "<html" not in response.text.lower()
    return dict(error)


@pytest.mark.parametrize(
    "body",
    [
        b'{"machine": "order", "version": 1',  # truncated
        b"not json at all",
        b'{"machine": "order", "version": 1}}',
        b"\xff\xfe",
        b"",
    ],
)
def test_malformed_json_is_400(api: httpx.Client, body: bytes) -> None:
    response = api.post("/v1/instances", content=body, headers={"content-type": "application/json"})
    assert_error(response, 400, "BAD_REQUEST")


@pytest.mark.parametrize(
    "body",
    [
        {"machine": "order", "version": "1"},  # strings are not coerced
        {"machine": "order", "version": 1.0},
        {"machine": "order", "version": True},
        {"machine": "order", "version": -1},
        {"machine": 7, "version": 1},
        {"machine": "order", "version": 1, "initial_ctx": [1]},
        {"machine": "order"},
        {"machine": "order", "version": 1, "colour": "red"},  # unknown field
        [1, 2],
    ],
)
def test_wrong_types_and_unknown_fields_are_400(api: httpx.Client, body: object) -> None:
    error = assert_error(api.post("/v1/instances", json=body), 400, "BAD_REQUEST")
    assert error["details"]


def test_wrong_types_on_events_machines_and_queries(api: httpx.Client) -> None:
    api.post("/v1/instances", json={"machine": "order", "version": 1, "instance_id": "x"})
    assert_error(api.post("/v1/instances/x/events", json={"event": 1}), 400, "BAD_REQUEST")
    bad_offset = {"event": "PAY", "expected_wal_offset": "5"}
    assert_error(api.post("/v1/instances/x/events", json=bad_offset), 400, "BAD_REQUEST")
    extra = {"event": "PAY", "instance_id": "y"}
    assert_error(api.post("/v1/instances/x/events", json=extra), 400, "BAD_REQUEST")
    bad_definition = {"states": "a", "initial": "a", "transitions": []}
    response = api.put("/v1/machines/m/versions/1", json=bad_definition)
    assert_error(response, 400, "BAD_REQUEST")
    invalid_definition = {"states": ["a"], "initial": "b", "transitions": []}
    assert_error(api.put("/v1/machines/m/versions/1", json=invalid_definition), 400, "BAD_REQUEST")
    assert_error(api.get("/v1/machines/order/versions/x"), 400, "BAD_REQUEST")
    assert_error(api.get("/v1/instances", params={"limit": "many"}), 400, "BAD_REQUEST")
    assert_error(api.get("/v1/wal", params={"from_offset": -1}), 400, "BAD_REQUEST")
    assert_error(api.post("/v1/batch", json={"mode": "sometimes", "ops": []}), 400, "BAD_REQUEST")


def test_not_json_content_type_says_so(api: httpx.Client) -> None:
    response = api.post("/v1/instances", content=b'{"machine":"order","version":1}')
    error = assert_error(response, 400, "BAD_REQUEST")
    assert "application/json" in str(error["message"])


def test_unknown_routes_are_json_404(api: httpx.Client) -> None:
    for path in ("/v1/nothing", "/v1/instances/a/b/c", "/v1", "/v2/machines"):
        assert_error(api.get(path), 404, "NOT_FOUND")
    assert_error(api.post("/v1/nothing", json={}), 404, "NOT_FOUND")


def test_wrong_method_is_405_with_allow(api: httpx.Client) -> None:
    response = api.delete("/v1/machines")
    assert_error(response, 405, "BAD_REQUEST")
    assert response.headers["allow"] == "GET"
    put = api.put("/v1/instances/x/history", json={})
    assert_error(put, 405, "BAD_REQUEST")
    assert put.headers["allow"] == "GET"
    both = api.patch("/v1/instances/x")
    assert_error(both, 405, "BAD_REQUEST")
    assert set(both.headers["allow"].replace(" ", "").split(",")) == {"GET", "DELETE"}


def test_body_over_the_frame_limit_is_413(api: httpx.Client) -> None:
    huge = b'{"machine": "order", "version": 1, "initial_ctx": {"x": "' + b"a" * (17 * MIB) + b'"}}'
    response = api.post("/v1/instances", content=huge, headers={"content-type": "application/json"})
    error = assert_error(response, 413, "BAD_REQUEST")
    assert error["details"] == {"size": len(huge), "limit": 16 * MIB}
    assert api.get("/health").status_code == 200  # the server is fine


def test_chunked_body_over_the_limit_is_413(api: httpx.Client) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"machine": "order", "version": 1, "initial_ctx": {"x": "'
        for _ in range(17):
            yield b"a" * MIB
        yield b'"}}'

    response = api.post(
        "/v1/instances", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_error(response, 413, "BAD_REQUEST")


def test_garbage_on_the_socket_gets_no_traceback(api: httpx.Client) -> None:
    url = urlsplit(str(api.base_url))
    assert url.hostname is not None and url.port is not None
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
        answer = sock.recv(65536)
    assert b"Traceback" not in answer
    assert api.get("/health").status_code == 200

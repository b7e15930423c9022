"""Fuzzed input never crashes the server or disturbs another open connection.

Each example opens a fresh connection, writes the bytes, half-closes it and
requires the server to close it promptly (after answering whatever was
valid); a bystander connection opened once must still answer PING, and the
process must still be running.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_harness import RawClient, ServerProcess

from pyrstmdb.protocol import encode_frame, request_message

SEEDS = [
    encode_frame(orjson.dumps(request_message("1", "PING", {}))),
    encode_frame(orjson.dumps(request_message("2", "GET_INSTANCE", {"instance_id": "x"}))),
    encode_frame(orjson.dumps(request_message("3", "WAL_READ", {"from_offset": 0, "limit": 2}))),
    encode_frame(
        orjson.dumps(
            request_message("4", "HELLO", {"protocol_version": 1, "wire_modes": ["jsonl"]})
        )
    ),
    orjson.dumps(request_message("5", "INFO", {})) + b"\n",
    encode_frame(orjson.dumps(request_message("6", "BYE", {}))),
]

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def server(rstmdb_module_server: Callable[..., ServerProcess]) -> ServerProcess:
    return rstmdb_module_server()


@pytest.fixture(scope="module")
def bystander(server: ServerProcess) -> Iterator[RawClient]:
    with server.raw() as client:
        yield client


@st.composite
def mutated_frames(draw: st.DrawFn) -> bytes:
    frames = draw(st.lists(st.sampled_from(SEEDS), min_size=1, max_size=4))
    data = bytearray(b"".join(frames))
    for _ in range(draw(st.integers(0, 4))):
        position = draw(st.integers(0, len(data) - 1))
        data[position] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    if draw(st.booleans()):
        data[draw(st.integers(0, len(data))) : 0] = draw(st.binary(max_size=20))
    return bytes(data)


def exercise(server: ServerProcess, bystander: RawClient, data: bytes) -> None:
    with server.raw(timeout=5) as client:
        client.send_raw(data)
        client.sock.shutdown(socket.SHUT_WR)
        assert client.closed_by_server(timeout=5)
    bystander.send("PING")
    response = bystander.response()
    assert response.result == {"pong": True}
    assert server.running()


@FUZZ
@given(data=st.binary(max_size=256))
def test_random_bytes(server: ServerProcess, bystander: RawClient, data: bytes) -> None:
    exercise(server, bystander, data)


@FUZZ
@given(data=mutated_frames())
def test_mutated_valid_frames(server: ServerProcess, bystander: RawClient, data: bytes) -> None:
    exercise(server, bystander, data)


def test_server_log_has_no_traceback_after_fuzzing(
    server: ServerProcess, bystander: RawClient
) -> None:
    exercise(server, bystander, SEEDS[0][:10] + b"\xff" * 30)
    assert "Traceback" not in server.log()

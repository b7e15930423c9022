"""Raw-socket tests of the wire rules: close vs. error, JSONL, pipelining, many connections."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from server_harness import RawClient, ServerProcess

from pyrstmdb.protocol import HEADER, MAGIC, crc32c, encode_frame, request_message

ORDER = {
    "states": ["created", "paid"],
    "initial": "created",
    "transitions": [
        {"from": "created", "event": "PAY", "to": "paid"},
        {"from": "paid", "event": "REFUND", "to": "created"},
    ],
}


@pytest.fixture(scope="module")
def server(rstmdb_module_server: Callable[..., ServerProcess]) -> ServerProcess:
    server = rstmdb_module_server()
    with server.raw() as client:
        assert client.call("PUT_MACHINE", {"machine": "w", "version": 1, "definition": ORDER}).ok
    return server


def frame(
    payload: bytes,
    *,
    version: int = 1,
    flags: int = 1,
    ext: bytes = b"",
    crc: int | None = None,
    length: int | None = None,
) -> bytes:
    checksum = crc32c(payload) if crc is None else crc
    size = len(payload) if length is None else length
    return HEADER.pack(MAGIC, version, flags, len(ext), size, checksum) + ext + payload


def request(op: str, params: Any = None, id: Any = "1", **extra: Any) -> bytes:
    body: dict[str, Any] = {"type": "request", "op": op, **extra}
    if id is not ...:
        body["id"] = id
    if params is not ...:
        body["params"] = params
    return orjson.dumps(body)


def ping_frame(id: str = "p") -> bytes:
    return encode_frame(request("PING", {}, id))


def assert_still_open(client: RawClient) -> None:
    client.send_raw(ping_frame("alive"))
    response = client.response()
    assert (response.id, response.result) == ("alive", {"pong": True})


# -- connection-fatal faults: closed, nothing sent -------------------------------------------

FATAL = {
    "bad magic": b"XXXX" + ping_frame()[4:],
    "bad magic prefix": b"RCPY",
    "version 2": frame(request("PING", {}), version=2),
    "unknown flag bit": frame(request("PING", {}), flags=0x0011),
    "crc mismatch": frame(request("PING", {}), crc=12345),
    "payload over 16 MiB (header only)": frame(b"", length=16 * 1024 * 1024 + 1),
    "version 2 (header only)": frame(b"", version=2, length=1000),
    "unknown flag bit (header only)": frame(b"", flags=0x0100, length=1000),
    "garbage byte": b"\x00\x01\x02",
}


@pytest.mark.parametrize("data", FATAL.values(), ids=FATAL.keys())
def test_framing_faults_close_without_reply(server: ServerProcess, data: bytes) -> None:
    with server.raw(timeout=5) as client:
        client.send_raw(data)
        client.sock.settimeout(5)
        assert client.sock.recv(65536) == b""


def test_requests_before_a_fault_are_answered_then_closed(server: ServerProcess) -> None:
    with server.raw() as client:
        client.send_raw(ping_frame("before") + b"XXXX")
        response = client.response()
        assert (response.id, response.ok) == ("before", True)
        assert client.closed_by_server()


def test_fault_does_not_affect_other_connections(server: ServerProcess) -> None:
    with server.raw() as good, server.raw() as bad:
        assert_still_open(good)
        bad.send_raw(b"NOPE")
        assert bad.closed_by_server()
        assert_still_open(good)


# -- envelope problems: BAD_REQUEST, connection stays open -------------------------------------

ENVELOPE = {
    "not json": (b"{not json", None),
    "not utf-8": (b'{"id":"\xff"}', None),
    "array": (b"[1,2]", None),
    "missing id": (request("PING", {}, id=...), None),
    "numeric id": (request("PING", {}, id=7), None),
    "unknown op": (request("NOPE", {}, id="u1"), "u1"),
    "missing op": (orjson.dumps({"type": "request", "id": "m1", "params": {}}), "m1"),
    "missing type": (orjson.dumps({"id": "t1", "op": "PING"}), "t1"),
    "params not an object": (request("PING", [1], id="p1"), "p1"),
}


@pytest.mark.parametrize("payload,expected_id", ENVELOPE.values(), ids=ENVELOPE.keys())
def test_envelope_errors_keep_connection(
    server: ServerProcess, payload: bytes, expected_id: str | None
) -> None:
    with server.raw() as client:
        client.send_raw(encode_frame(payload))
        response = client.response()
        assert response.id == expected_id
        assert response.error is not None and response.error["code"] == "BAD_REQUEST"
        assert response.error["retryable"] is False
        assert_still_open(client)


PARAM_ERRORS = {
    "missing instance_id": ("GET_INSTANCE", {}, "instance_id"),
    "version as string": ("GET_MACHINE", {"machine": "w", "version": "1"}, "version"),
    "negative version": ("GET_MACHINE", {"machine": "w", "version": -1}, "version"),
    "fractional limit": ("LIST_INSTANCES", {"limit": 1.5}, "limit"),
    "payload not object": (
        "APPLY_EVENT",
        {"instance_id": "i", "event": "E", "payload": 3},
        "payload",
    ),
    "missing from_offset": ("WAL_READ", {}, "from_offset"),
    "wire_modes not list": ("HELLO", {"protocol_version": 1, "wire_modes": "jsonl"}, "wire_modes"),
    "include_ctx not bool": ("WATCH_ALL", {"include_ctx": "yes"}, "include_ctx"),
}


@pytest.mark.parametrize("op,params,field", PARAM_ERRORS.values(), ids=PARAM_ERRORS.keys())
def test_bad_params_name_the_field(server: ServerProcess, op: str, params: Any, field: str) -> None:
    with server.raw() as client:
        response = client.call(op, params)
        assert response.error is not None and response.error["code"] == "BAD_REQUEST"
        assert field in response.error["message"]
        assert_still_open(client)


def test_null_or_absent_params_read_as_empty(server: ServerProcess) -> None:
    with server.raw() as client:
        client.send_raw(encode_frame(request("PING", None, "n1")))
        client.send_raw(encode_frame(request("INFO", ..., "n2")))
        client.send_raw(encode_frame(request("GET_INSTANCE", None, "n3")))
        first, second, third = client.response(), client.response(), client.response()
        assert first.result == {"pong": True} and second.ok
        assert third.error is not None and "instance_id" in third.error["message"]


def test_hello_negotiation_and_unsupported_version(server: ServerProcess) -> None:
    with server.raw() as client:
        bad = client.call("HELLO", {"protocol_version": 2})
        assert bad.error is not None and bad.error["code"] == "UNSUPPORTED_PROTOCOL"
        hello = client.call(
            "HELLO",
            {
                "protocol_version": 1,
                "client_name": "t",
                "wire_modes": ["binary_json"],
                "features": ["batch", "zzz", "wal_read"],
            },
        )
        assert hello.result is not None
        assert hello.result["wire_mode"] == "binary_json" and hello.result["protocol_version"] == 1
        assert hello.result["server_name"] == "rstmdb"
        assert sorted(hello.result["features"]) == ["batch", "wal_read"]


def test_frames_without_crc_and_with_extension(server: ServerProcess) -> None:
    with server.raw() as client:
        client.send_raw(frame(request("PING", {}, "nc"), flags=0, crc=0))
        client.send_raw(frame(request("PING", {}, "ext"), ext=b"\x00" * 7, flags=0x000F))
        assert [client.response().id, client.response().id] == ["nc", "ext"]


def test_bye_answers_then_closes(server: ServerProcess) -> None:
    with server.raw() as client:
        client.send_raw(encode_frame(request("BYE", {}, "b")) + ping_frame("after"))
        response = client.response()
        assert (response.id, response.result) == ("b", {"goodbye": True})
        assert client.closed_by_server()


# -- JSONL ---------------------------------------------------------------------------------------


def read_line(sock: socket.socket, buffer: bytearray) -> dict[str, Any]:
    while b"\n" not in buffer:
        data = sock.recv(65536)
        assert data, "connection closed"
        buffer += data
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    assert line.startswith(b"{")
    parsed: dict[str, Any] = orjson.loads(line)
    return parsed


def test_jsonl_negotiated_both_directions_and_mixed_input(server: ServerProcess) -> None:
    with server.raw() as client:
        sock = client.sock
        hello = request(
            "HELLO", {"protocol_version": 1, "wire_modes": ["jsonl", "binary_json"]}, "h"
        )
        sock.sendall(encode_frame(hello))
        buffer = bytearray()
        assert read_line(sock, buffer)["result"]["wire_mode"] == "jsonl"
        sock.sendall(request("PING", {}, "l1") + b"\n" + request("INFO", {}, "l2") + b"\r\n")
        assert read_line(sock, buffer)["id"] == "l1"
        assert read_line(sock, buffer)["result"]["max_batch_ops"] == 100
        sock.sendall(ping_frame("bin") + b"\n  " + request("GET_INSTANCE", {}, "l3") + b"\n")
        assert read_line(sock, buffer) == {
            "type": "response",
            "id": "bin",
            "status": "ok",
            "result": {"pong": True},
        }
        assert read_line(sock, buffer)["error"]["code"] == "BAD_REQUEST"
        sock.sendall(b"not json\n")
        assert client.closed_by_server()


def test_jsonl_line_with_bad_json_is_answered(server: ServerProcess) -> None:
    with server.raw() as client:
        sock = client.sock
        sock.sendall(
            request("HELLO", {"protocol_version": 1, "wire_modes": ["jsonl"]}, "h") + b"\n"
        )
        buffer = bytearray()
        assert read_line(sock, buffer)["result"]["wire_mode"] == "jsonl"
        sock.sendall(b'{"id": oops}\n')
        answer = read_line(sock, buffer)
        assert answer["id"] is None and answer["error"]["code"] == "BAD_REQUEST"
        sock.sendall(
            request("HELLO", {"protocol_version": 1, "wire_modes": ["binary_json", "jsonl"]}, "b")
            + b"\n"
        )
        back = client.response()
        assert back.result is not None and back.result["wire_mode"] == "binary_json"
        assert_still_open(client)


# -- pipelining and concurrency ------------------------------------------------------------------


def test_pipelining_thousand_requests_in_order(server: ServerProcess) -> None:
    with server.raw(timeout=30) as client:
        client.call("CREATE_INSTANCE", {"machine": "w", "version": 1, "instance_id": "pipe"})
        events = ["PAY", "REFUND"]
        data = bytearray()
        ids = []
        for n in range(1000):
            kind = n % 4
            if kind == 0:
                body = request_message(
                    str(n), "APPLY_EVENT", {"instance_id": "pipe", "event": events[(n // 4) % 2]}
                )
            elif kind == 1:
                body = request_message(str(n), "GET_INSTANCE", {"instance_id": "pipe"})
            elif kind == 2:
                body = request_message(str(n), "PING", {})
            else:
                body = request_message(str(n), "GET_INSTANCE", {"instance_id": "missing"})
            data += encode_frame(orjson.dumps(body))
            ids.append(str(n))
        client.send_raw(bytes(data))
        responses = [client.response() for _ in ids]
        assert [r.id for r in responses] == ids
        states = [r.result["state"] for r in responses[1::4] if r.result]
        assert states == ["paid", "created"] * 125
        assert all(r.error and r.error["code"] == "INSTANCE_NOT_FOUND" for r in responses[3::4])


def test_hundred_concurrent_connections(server: ServerProcess) -> None:
    failures: list[str] = []

    def worker(n: int) -> None:
        try:
            with server.raw(timeout=30) as client:
                iid = f"conc-{n}"
                created = client.call(
                    "CREATE_INSTANCE", {"machine": "w", "version": 1, "instance_id": iid}
                )
                applied = client.call("APPLY_EVENT", {"instance_id": iid, "event": "PAY"})
                got = client.call("GET_INSTANCE", {"instance_id": iid})
                if not (created.ok and applied.ok and got.result and got.result["state"] == "paid"):
                    failures.append(f"{n}: {created} {applied} {got}")
        except Exception as exc:
            failures.append(f"{n}: {exc!r}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    with server.raw() as client:
        listed = client.call("LIST_INSTANCES", {"machine": "w", "limit": 1000})
        assert listed.result is not None
        assert {f"conc-{n}" for n in range(100)} <= {i["id"] for i in listed.result["instances"]}


def test_client_that_never_reads_does_not_stall_others(server: ServerProcess) -> None:
    with server.raw() as greedy, server.raw() as other:
        greedy.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        burst = b"".join(ping_frame(str(n)) for n in range(2000))
        greedy.sock.settimeout(0.5)
        try:
            for _ in range(50):
                greedy.sock.sendall(burst)
        except TimeoutError:
            pass  # the server stopped reading from it: backpressure
        assert_still_open(other)


def _oversize_ctx(n: int) -> dict[str, Any]:
    return {"blob": f"{n}-" + "x" * (1024 * 1024)}


def test_wal_read_stops_at_the_frame_limit(rstmdb_server: Callable[..., ServerProcess]) -> None:
    server = rstmdb_server()
    with server.raw(timeout=60) as client:
        client.call("PUT_MACHINE", {"machine": "w", "version": 1, "definition": ORDER})
        for n in range(20):
            params = {
                "machine": "w",
                "version": 1,
                "instance_id": f"big-{n}",
                "initial_ctx": _oversize_ctx(n),
            }
            assert client.call("CREATE_INSTANCE", params).ok
        first = client.call("WAL_READ", {"from_offset": 0})
        assert first.result is not None
        records = first.result["records"]
        assert 1 < len(records) < 21
        rest = client.call("WAL_READ", {"from_offset": first.result["next_offset"]})
        assert rest.result is not None
        total = records + rest.result["records"]
        assert [r["entry"]["type"] for r in total].count("create_instance") == 20
        assert_still_open(client)

"""What one client can make the real server spend: memory, event-loop time, connection slots.

Memory is the server process's resident set (``VmRSS`` of ``/proc/<pid>/status``).
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import trustme
from server_harness import RawClient, ServerProcess, closed_by_server

from pyrstmdb.protocol import ClientCodec, request_message
from pyrstmdb.protocol.frame import HEADER, MAGIC, encode_frame

MB = 1024 * 1024
TOKEN = "resource-token"
TOKEN_HASH = hashlib.sha256(TOKEN.encode()).hexdigest()
ORDER = {
    "states": ["a", "b"],
    "initial": "a",
    "transitions": [
        {"from": "a", "event": "GO", "to": "b"},
        {"from": "b", "event": "BACK", "to": "a"},
    ],
}


def rss(server: ServerProcess) -> int:
    assert server.proc is not None
    with open(f"/proc/{server.proc.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def unfinished_frame(sock: socket.socket, announced: int, sent: int) -> None:
    """A frame header announcing ``announced`` payload bytes, then ``sent`` of them."""
    chunk = b"x" * (256 * 1024)
    try:
        sock.sendall(HEADER.pack(MAGIC, 1, 0, 0, announced, 0))
        for _ in range(sent // len(chunk)):
            sock.sendall(chunk)
    except OSError:
        pass  # the server closed it: what we want


@contextmanager
def sockets(server: ServerProcess, count: int) -> Iterator[list[socket.socket]]:
    with ExitStack() as stack:
        socks = []
        for _ in range(count):
            sock = socket.create_connection((server.host, server.port), timeout=10)
            stack.callback(sock.close)
            socks.append(sock)
        yield socks


def fill_concurrently(socks: list[socket.socket], announced: int, sent: int) -> None:
    threads = [
        threading.Thread(target=unfinished_frame, args=(sock, announced, sent)) for sock in socks
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)


@contextmanager
def filled(server: ServerProcess, count: int) -> Iterator[tuple[list[socket.socket], int]]:
    """``count`` connections each holding 3 MiB of an announced 16 MiB message; yields
    them with how much the server's RSS has grown since before they connected."""
    before = rss(server)
    with sockets(server, count) as socks:
        fill_concurrently(socks, 16 * MB, 3 * MB)
        time.sleep(0.5)
        grown = rss(server) - before
        print(f"RSS {before / MB:.1f} MB -> {(before + grown) / MB:.1f} MB")
        yield socks, grown


# -- unfinished messages: before authentication, and all connections together ----------------


@pytest.mark.slow
def test_unauthenticated_connections_cannot_hold_large_messages(
    rstmdb_server: Callable[..., ServerProcess],
) -> None:
    server = rstmdb_server(
        env={"RSTMDB_AUTH_REQUIRED": "true", "RSTMDB_AUTH_TOKEN_HASH": TOKEN_HASH}
    )
    with filled(server, 40) as (socks, grown):
        assert grown < 40 * MB, f"RSS grew by {grown / MB:.1f} MB"
        assert all(closed_by_server(sock, 5) for sock in socks)
    with server.raw() as line_client:  # a JSON line is bounded the same way
        line_client.send_raw(b'{"type":"request","id":"1","op":"HELLO","params":{"pad":"')
        line_client.send_raw(b"x" * (128 * 1024))
        assert line_client.closed_by_server(timeout=5)
    assert "before authentication (limit 65536 bytes)" in server.log()
    with (
        server.raw() as client
    ):  # HELLO and AUTH are unaffected; afterwards large messages are fine
        assert client.call("HELLO", {"protocol_version": 1}).ok
        assert client.call("AUTH", {"method": "bearer", "token": TOKEN}).ok
        big = {"states": ["a"], "initial": "a", "transitions": [], "meta": {"x": "y" * (MB // 2)}}
        put = client.call("PUT_MACHINE", {"machine": "m", "version": 1, "definition": big})
        assert put.ok, put.error


@pytest.mark.slow
def test_unfinished_messages_of_all_connections_share_one_budget(
    rstmdb_server: Callable[..., ServerProcess],
) -> None:
    server = rstmdb_server(env={"RSTMDB_FRAME_BUFFER_MB": "40"})
    with filled(server, 40) as (socks, grown):
        assert grown < 60 * MB, f"RSS grew by {grown / MB:.1f} MB"
        closed = sum(closed_by_server(sock, 1) for sock in socks)
        assert closed >= 38  # at most two 16 MiB messages fit 40 MiB
        with server.raw() as other:  # small requests of other clients go on
            assert other.call("PING").result == {"pong": True}
    assert "over network.frame_buffer_mb" in server.log()


# -- TLS handshakes ----------------------------------------------------------------------------


@pytest.fixture
def tls_env(tmp_path: Path) -> tuple[dict[str, str], ssl.SSLContext]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_path, key_path = tmp_path / "server.pem", tmp_path / "server.key"
    cert_path.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key_path))
    client = ssl.create_default_context()
    ca.configure_trust(client)
    env = {
        "RSTMDB_TLS_ENABLED": "true",
        "RSTMDB_TLS_CERT": str(cert_path),
        "RSTMDB_TLS_KEY": str(key_path),
    }
    return env, client


def tls_client(server: ServerProcess, context: ssl.SSLContext) -> RawClient:
    sock = socket.create_connection((server.host, server.port), timeout=10)
    return RawClient(
        server.host, server.port, sock=context.wrap_socket(sock, server_hostname="127.0.0.1")
    )


@pytest.mark.slow
def test_tls_handshakes_count_against_the_limit_and_time_out(
    rstmdb_server: Callable[..., ServerProcess], tls_env: tuple[dict[str, str], ssl.SSLContext]
) -> None:
    env, context = tls_env
    server = rstmdb_server(
        env={**env, "RSTMDB_MAX_CONNECTIONS": "4", "RSTMDB_IDLE_TIMEOUT": "2"}, wait_ping=False
    )
    with tls_client(server, context) as client:
        assert client.call("PING").ok
    with sockets(server, 4) as idle:  # TCP connections that never start a handshake
        time.sleep(0.3)
        with pytest.raises((OSError, ssl.SSLError)):
            tls_client(server, context).call("PING")  # the fifth: refused
        started = time.monotonic()
        assert all(closed_by_server(sock, 10) for sock in idle)
        waited = time.monotonic() - started
        print(f"idle handshakes closed after {waited:.1f} s")
        assert waited < 6
    time.sleep(0.3)
    with tls_client(server, context) as client:
        assert client.call("PING").ok


def test_a_request_sent_with_the_end_of_the_handshake_is_answered(
    rstmdb_server: Callable[..., ServerProcess], tls_env: tuple[dict[str, str], ssl.SSLContext]
) -> None:
    env, context = tls_env
    server = rstmdb_server(env=env, wait_ping=False)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                sock.sendall(outgoing.read())
                incoming.write(sock.recv(65536))
        # The client's last handshake bytes and its first request leave in one write.
        tls.write(encode_frame(orjson.dumps(request_message("1", "PING", {}))))
        sock.sendall(outgoing.read())
        codec = ClientCodec()
        answers: list[Any] = []
        while not answers:
            data = sock.recv(65536)
            assert data, "closed without an answer"
            incoming.write(data)
            try:
                answers = codec.feed(tls.read(65536))
            except ssl.SSLWantReadError:
                continue
    assert answers[0].result == {"pong": True}


# -- refused connections are logged with a count -----------------------------------------------


def test_refused_connections_are_logged_once_with_a_count(
    rstmdb_server: Callable[..., ServerProcess],
) -> None:
    server = rstmdb_server(env={"RSTMDB_MAX_CONNECTIONS": "2"})
    with server.raw() as first, server.raw() as second:
        assert first.call("PING").ok and second.call("PING").ok
        for _ in range(50):
            with socket.create_connection((server.host, server.port), timeout=5) as extra:
                assert closed_by_server(extra, 5)
    # Only the refusal lines: the data directory's path (named after this test) shows up in
    # other lines too.
    lines = [line for line in server.log().splitlines() if "refused: limit" in line]
    assert 1 <= len(lines) <= 2, lines


# -- large definitions: bounded, and compiled without stalling other clients --------------------


def maximal_definition(limit: int = MB, guard_chars: int = 4096) -> dict[str, Any]:
    terms, size = [], 0
    while size + 24 < guard_chars:
        term = f"ctx.f{len(terms) % 100} == {len(terms)}"
        terms.append(term)
        size += len(term) + 4
    guard = " && ".join(terms)
    transitions: list[dict[str, Any]] = []
    definition = {"states": ["a", "b"], "initial": "a", "transitions": transitions}
    while len(orjson.dumps(definition)) + len(guard) + 64 < limit:
        transitions.append(
            {"from": "a", "event": f"e{len(transitions)}", "to": "b", "guard": guard}
        )
    return definition


@pytest.mark.slow
def test_a_maximal_definition_does_not_stall_other_clients(
    rstmdb_server: Callable[..., ServerProcess],
) -> None:
    server = rstmdb_server()
    definition = maximal_definition()
    done = threading.Event()
    latencies: list[float] = []

    def ping_meanwhile() -> None:
        with server.raw() as other:
            while not done.is_set():
                started = time.monotonic()
                assert other.call("PING").ok
                latencies.append(time.monotonic() - started)
                time.sleep(0.01)

    pinger = threading.Thread(target=ping_meanwhile)
    before = rss(server)
    with server.raw(timeout=60) as client:
        pinger.start()
        time.sleep(0.2)
        started = time.monotonic()
        put = client.call("PUT_MACHINE", {"machine": "max", "version": 1, "definition": definition})
        took = time.monotonic() - started
        done.set()
    pinger.join(10)
    assert put.ok, put.error
    grown = rss(server) - before
    size = len(orjson.dumps(definition)) / MB
    print(f"RSS grew {grown / MB:.0f} MB for a {size:.1f} MiB definition")
    assert grown < 150 * MB
    print(
        f"PUT_MACHINE {took:.2f} s; PING max {max(latencies) * 1000:.0f} ms over {len(latencies)}"
    )
    # Before, a PING waited for the whole compile; now only for a share of the CPU.
    assert max(latencies) < min(1.0, took / 3)
    started = time.monotonic()
    restarted = server.restart()
    print(
        f"restart with it took {time.monotonic() - started:.1f} s, RSS {rss(restarted) / MB:.0f} MB"
    )
    with restarted.raw() as client:
        got = client.call("GET_MACHINE", {"machine": "max", "version": 1})
        assert got.ok and len(got.result["definition"]["transitions"]) == len(
            definition["transitions"]
        )


def huge_guard_definition(terms: int) -> dict[str, Any]:
    guard = " || ".join(f"ctx.x == {n}" for n in range(terms))
    return {
        "states": ["a", "b"],
        "initial": "a",
        "transitions": [{"from": "a", "event": "GO", "to": "b", "guard": guard}],
    }


@pytest.mark.parametrize(
    ("definition", "named"),
    [
        (huge_guard_definition(850_000), "definition size in bytes"),
        (huge_guard_definition(400), "guard length in characters"),
        (
            {"states": [f"s{n}" for n in range(10_001)], "initial": "s0", "transitions": []},
            "number of states",
        ),
        (
            {
                "states": ["a"],
                "initial": "a",
                "transitions": [{"from": "a", "event": f"e{n}", "to": "a"} for n in range(10_001)],
            },
            "number of transitions",
        ),
    ],
    ids=["15MiB-guard", "long-guard", "states", "transitions"],
)
def test_definitions_over_the_limits_are_refused_quickly(
    rstmdb_server: Callable[..., ServerProcess], definition: dict[str, Any], named: str
) -> None:
    server = rstmdb_server()
    before = rss(server)
    with server.raw(timeout=60) as client:
        started = time.monotonic()
        put = client.call("PUT_MACHINE", {"machine": "m", "version": 1, "definition": definition})
        took = time.monotonic() - started
        assert client.call("LIST_MACHINES").result == {"items": []}
    grown = rss(server) - before
    print(f"refused in {took:.2f} s, RSS grew {grown / MB:.1f} MB")
    assert put.error is not None and put.error["code"] == "BAD_REQUEST"
    assert named in put.error["message"] and "limit" in put.error["message"]
    assert took < 3
    assert grown < 200 * MB


# -- values the server could not send back -----------------------------------------------------


def nested(depth: int) -> dict[str, Any]:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value  # type: ignore[no-any-return]


def test_contexts_deeper_than_the_limit_are_refused_and_accepted_ones_stay_readable(
    rstmdb_server: Callable[..., ServerProcess],
) -> None:
    server = rstmdb_server()
    with server.raw(timeout=60) as client:
        assert client.call("PUT_MACHINE", {"machine": "m", "version": 1, "definition": ORDER}).ok
        deep = client.call(
            "CREATE_INSTANCE",
            {"machine": "m", "version": 1, "instance_id": "deep", "initial_ctx": nested(252)},
        )
        assert deep.error is not None and deep.error["code"] == "BAD_REQUEST"
        assert deep.error["details"] == {"field": "initial_ctx", "limit": 128}
        ok = client.call(
            "CREATE_INSTANCE",
            {"machine": "m", "version": 1, "instance_id": "ok", "initial_ctx": nested(128)},
        )
        assert ok.ok, ok.error
        deep_payload = client.call(
            "APPLY_EVENT", {"instance_id": "ok", "event": "GO", "payload": {"p": nested(200)}}
        )
        assert deep_payload.error is not None and deep_payload.error["code"] == "BAD_REQUEST"
        assert deep_payload.error["details"]["field"] == "payload"
        applied = client.call(
            "APPLY_EVENT", {"instance_id": "ok", "event": "GO", "payload": {"p": nested(127)}}
        )
        assert applied.ok, applied.error
        assert client.call("GET_INSTANCE", {"instance_id": "ok"}).ok
        read = client.call("WAL_READ", {"from_offset": 0})
        assert read.ok and len(read.result["records"]) == 3
        entries = client.call("WAL_STATS").result["entry_count"]
        assert entries == 3


def test_a_context_too_large_to_send_back_is_refused(
    rstmdb_server: Callable[..., ServerProcess],
) -> None:
    server = rstmdb_server()
    with server.raw(timeout=60) as client:
        assert client.call("PUT_MACHINE", {"machine": "m", "version": 1, "definition": ORDER}).ok
        params = {
            "machine": "m",
            "version": 1,
            "instance_id": "i",
            "initial_ctx": {"a": "x" * (5 * MB)},
        }
        assert client.call("CREATE_INSTANCE", params).ok
        grow = client.call(
            "APPLY_EVENT", {"instance_id": "i", "event": "GO", "payload": {"b": "y" * (5 * MB)}}
        )
        assert grow.error is not None and grow.error["code"] == "BAD_REQUEST"
        assert grow.error["details"]["limit"] == 7 * MB
        assert "after merging payload" in grow.error["message"]
        assert client.call("WAL_STATS").result["entry_count"] == 2
        assert client.call("WAL_READ", {"from_offset": 0}).ok
        assert client.call("APPLY_EVENT", {"instance_id": "i", "event": "GO"}).ok


# -- what a fast JSON parser would let through --------------------------------------------------


def raw_request(client: RawClient, text: bytes) -> Any:
    client.send_raw(HEADER.pack(MAGIC, 1, 0, 0, len(text), 0) + text)
    return client.response()


def test_duplicate_keys_and_inexact_integers_are_refused(
    rstmdb_server: Callable[..., ServerProcess],
) -> None:
    server = rstmdb_server()
    with server.raw() as client:
        dup = raw_request(client, b'{"type":"request","id":"d1","op":"PING","op":"INFO"}')
        assert dup.id == "d1" and dup.error is not None
        assert dup.error["code"] == "BAD_REQUEST" and "duplicate key 'op'" in dup.error["message"]
        assert client.call("PUT_MACHINE", {"machine": "m", "version": 1, "definition": ORDER}).ok
        big = raw_request(
            client,
            b'{"type":"request","id":"b1","op":"CREATE_INSTANCE","params":{"machine":"m",'
            b'"version":1,"instance_id":"i","initial_ctx":{"n":99999999999999999999999}}}',
        )
        assert big.id == "b1" and big.error is not None and big.error["code"] == "BAD_REQUEST"
        assert "params.initial_ctx.n" in big.error["message"]
        nested_dup = raw_request(
            client,
            b'{"type": "request", "id": "d2", "op": "CREATE_INSTANCE", "params": {"machine": "m",'
            b' "version": 1, "instance_id": "i", "initial_ctx": {"t": "12:00", "t": "13:00"}}}',
        )
        assert nested_dup.error is not None and "duplicate key 't'" in nested_dup.error["message"]
        exact = raw_request(
            client,
            b'{"type": "request", "id": "e1", "op": "CREATE_INSTANCE", "params": {"machine": "m",'
            b' "version": 1, "instance_id": "i", "initial_ctx": {"n": 18446744073709551615,'
            b' "m": -9223372036854775808, "t": "12:00"}}}',
        )
        assert exact.ok, exact.error
        got = client.call("GET_INSTANCE", {"instance_id": "i"})
        assert got.result["ctx"] == {"n": 2**64 - 1, "m": -(2**63), "t": "12:00"}
        assert client.call("WAL_STATS").result["entry_count"] == 2

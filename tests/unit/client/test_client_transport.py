"""Both clients against a scripted frame-speaking server: handshake, pipelining, errors,
notices, timeouts, resume parameters."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from client_drivers import KINDS, open_client
from client_stub import StubConnection, StubServer, default_handler

from pyrstmdb.client import (
    ClientConnectionError,
    Event,
    HistoryLostWarning,
    Notice,
    ProtocolViolation,
    RequestTimeout,
    SubscriptionWarning,
)
from pyrstmdb.errors import AuthFailed, Conflict, InstanceNotFound
from pyrstmdb.protocol import Request
from pyrstmdb.results import GetInstanceResult

INSTANCE = {"machine": "m", "version": 1, "state": "s", "ctx": {}, "last_wal_offset": 7}


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def stub() -> Iterator[StubServer]:
    server = StubServer().start()
    yield server
    server.stop()


def test_hello_then_auth_with_the_library_name(kind: str, stub: StubServer) -> None:
    client = open_client(kind, stub.address, token="s3cret")
    try:
        assert client.ping() is True
    finally:
        client.close()
    assert stub.ops() == ["HELLO", "AUTH", "PING"]
    hello = stub.requests[0][1]
    assert hello["protocol_version"] == 1
    assert hello["client_name"] == "pyrstmdb-py"
    assert hello["wire_modes"] == ["binary_json"]
    assert stub.requests[1][1] == {"method": "bearer", "token": "s3cret"}


def test_failed_auth_raises_the_typed_error(kind: str, stub: StubServer) -> None:
    def handler(conn: StubConnection, request: Request) -> None:
        if request.op == "AUTH":
            conn.fail(request, "AUTH_FAILED", "authentication failed: bad token")
        else:
            default_handler(conn, request)

    stub.handler = handler
    with pytest.raises(AuthFailed) as caught:
        open_client(kind, stub.address, token="wrong")
    assert caught.value.message == "authentication failed: bad token"
    assert caught.value.retryable is False


def test_responses_are_matched_by_id_while_many_are_in_flight(kind: str, stub: StubServer) -> None:
    held: list[Request] = []

    def handler(conn: StubConnection, request: Request) -> None:
        if request.op != "GET_INSTANCE":
            default_handler(conn, request)
            return
        held.append(request)
        if len(held) == 20:  # all twenty are in flight: answer them backwards
            for item in reversed(held):
                state = item.params["instance_id"]
                conn.reply(item, {**INSTANCE, "state": state})

    stub.handler = handler
    client = open_client(kind, stub.address)
    try:
        pipeline = client.pipeline()
        for n in range(20):
            pipeline.get_instance(f"i-{n}")
        results = pipeline.execute()
    finally:
        client.close()
    assert all(isinstance(r, GetInstanceResult) for r in results)
    assert [r.state for r in results] == [f"i-{n}" for n in range(20)]


def test_threads_share_one_blocking_client(stub: StubServer) -> None:
    client = open_client("sync", stub.address)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(50):
                assert client.ping() is True
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.close()
    assert errors == []
    assert stub.ops().count("PING") == 200
    assert len(stub.connections) == 1


def test_error_responses_become_the_embedded_exception_classes(kind: str, stub: StubServer) -> None:
    def handler(conn: StubConnection, request: Request) -> None:
        if request.op == "GET_INSTANCE":
            conn.fail(request, "INSTANCE_NOT_FOUND", "instance not found: x", instance_id="x")
        elif request.op == "APPLY_EVENT":
            conn.fail(request, "CONFLICT", "state conflict", expected_state="a")
        else:
            default_handler(conn, request)

    stub.handler = handler
    client = open_client(kind, stub.address)
    try:
        with pytest.raises(InstanceNotFound) as missing:
            client.get_instance("x")
        assert missing.value.code == "INSTANCE_NOT_FOUND"
        assert missing.value.details == {"instance_id": "x"}
        with pytest.raises(Conflict):
            client.apply_event("x", "GO", expected_state="a")
        assert client.ping() is True  # the connection is still fine
    finally:
        client.close()


def test_unreachable_address_names_address_and_reason(kind: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ClientConnectionError) as caught:
        open_client(kind, f"127.0.0.1:{port}")
    assert str(caught.value) == f"127.0.0.1:{port}: Connection refused"


def test_server_that_never_greets_times_out_the_connect(kind: str, stub: StubServer) -> None:
    stub.handler = lambda conn, request: None
    started = time.monotonic()
    with pytest.raises(ClientConnectionError) as caught:
        open_client(kind, stub.address, connect_timeout=0.3)
    assert time.monotonic() - started < 3
    assert str(caught.value) == f"{stub.address}: timed out after 0.3 s"


def test_silent_server_times_out_the_request(kind: str, stub: StubServer) -> None:
    def handler(conn: StubConnection, request: Request) -> None:
        if request.op != "PING":
            default_handler(conn, request)

    stub.handler = handler
    client = open_client(kind, stub.address, request_timeout=0.2)
    try:
        started = time.monotonic()
        with pytest.raises(RequestTimeout) as caught:
            client.ping()
        assert time.monotonic() - started < 2
        assert "no response to PING" in str(caught.value)
        assert isinstance(caught.value, TimeoutError)
    finally:
        client.close()


def test_connection_lost_mid_request(kind: str, stub: StubServer) -> None:
    def handler(conn: StubConnection, request: Request) -> None:
        if request.op == "GET_INSTANCE":
            conn.close()
        else:
            default_handler(conn, request)

    stub.handler = handler
    client = open_client(kind, stub.address)
    try:
        with pytest.raises(ClientConnectionError, match="connection lost"):
            client.get_instance("x")
        with pytest.raises(ClientConnectionError, match="call reconnect"):
            client.ping()
        client.reconnect()
        assert client.ping() is True
    finally:
        client.close()


def test_garbage_from_the_server_ends_the_connection(kind: str, stub: StubServer) -> None:
    def handler(conn: StubConnection, request: Request) -> None:
        if request.op == "PING":
            conn.push({"type": "surprise"})
        else:
            default_handler(conn, request)

    stub.handler = handler
    client = open_client(kind, stub.address)
    try:
        with pytest.raises(ClientConnectionError, match="protocol error"):
            client.ping()
    finally:
        client.close()


def test_result_missing_required_fields_is_a_protocol_violation(
    kind: str, stub: StubServer
) -> None:
    def handler(conn: StubConnection, request: Request) -> None:
        if request.op == "GET_INSTANCE":
            conn.reply(request, {"machine": "m"})
        else:
            default_handler(conn, request)

    stub.handler = handler
    client = open_client(kind, stub.address)
    try:
        with pytest.raises(ProtocolViolation):
            client.get_instance("x")
    finally:
        client.close()


def _event(sub_id: str, offset: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": "event",
        "subscription_id": sub_id,
        "instance_id": "i-1",
        "machine": "m",
        "version": 1,
        "wal_offset": offset,
        "from_state": "a",
        "to_state": "b",
        "event": "GO",
        "payload": None,
        **extra,
    }


class WatchScript:
    """Answers WATCH_ALL with a fresh id and pushes the events it is told to."""

    def __init__(self) -> None:
        self.count = 0
        self.watches: list[dict[str, Any]] = []
        self.after_watch: list[dict[str, Any]] = []

    def __call__(self, conn: StubConnection, request: Request) -> None:
        if request.op != "WATCH_ALL":
            if request.op == "UNWATCH":
                conn.reply(request, {"subscription_id": "x", "removed": True})
                return
            default_handler(conn, request)
            return
        self.count += 1
        sub_id = f"sub-{self.count}"
        self.watches.append(dict(request.params))
        conn.reply(request, {"subscription_id": sub_id, "wal_offset": 100})
        for message in self.after_watch:
            conn.push({**message, "subscription_id": sub_id})


def test_events_are_typed_and_duplicates_dropped(kind: str, stub: StubServer) -> None:
    script = WatchScript()
    script.after_watch = [
        _event("", 100, payload={"n": 1}, ctx={"k": 1}),
        _event("", 100),  # a repeat of the same offset
        _event("", 120),
    ]
    stub.handler = script
    client = open_client(kind, stub.address)
    try:
        sub = client.watch_all(machines=["m"])
        first = sub.get(5)
        assert isinstance(first, Event)
        assert (first.wal_offset, first.payload, first.ctx) == (100, {"n": 1}, {"k": 1})
        assert first.to_dict()["type"] == "event"
        assert sub.get(5).wal_offset == 120
        with pytest.raises(TimeoutError):
            sub.get(0.2)
        assert sub.unwatch() is True
        assert list(sub) == []
    finally:
        client.close()
    assert script.watches[0] == {"machines": ["m"], "include_ctx": True}


class SilentUnwatch(WatchScript):
    """Never answers UNWATCH."""

    def __call__(self, conn: StubConnection, request: Request) -> None:
        if request.op != "UNWATCH":
            super().__call__(conn, request)


def test_unwatch_waits_at_most_its_timeout_and_still_ends_the_stream(
    kind: str, stub: StubServer
) -> None:
    stub.handler = SilentUnwatch()
    client = open_client(kind, stub.address)
    try:
        sub = client.watch_all(machines=["m"])
        started = time.monotonic()
        assert sub.unwatch(timeout=0.3) is False  # not confirmed
        assert 0.25 < time.monotonic() - started < 3
        assert list(sub) == []
        assert "UNWATCH" in stub.ops()
    finally:
        client.close()


def test_an_interrupted_blocking_wait_loses_no_event(stub: StubServer) -> None:
    """Ctrl+C during ``next(sub)`` cancels that wait: the next event goes to the next call."""
    stub.handler = WatchScript()
    client = open_client("sync", stub.address)
    main = threading.main_thread().ident
    assert main is not None
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        sub = client.watch_all(machines=["m"])
        timer = threading.Timer(0.3, signal.pthread_kill, (main, signal.SIGINT))
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            next(sub)
        timer.join()
        (conn,) = stub.connections
        stub.call(lambda: conn.push(_event("sub-1", 140)))
        assert sub.get(5).wal_offset == 140
    finally:
        signal.signal(signal.SIGINT, previous)
        client.close()


def test_notices_reach_the_callback_or_become_warnings(kind: str, stub: StubServer) -> None:
    notice = {"type": "notice", "code": "HISTORY_LOST", "lost_from": 100, "resumed_at": 300}
    script = WatchScript()
    script.after_watch = [notice, _event("", 300)]
    stub.handler = script
    seen: list[Notice] = []
    client = open_client(kind, stub.address)
    try:
        sub = client.watch_all(from_offset=100, on_notice=seen.append)
        assert sub.get(5).wal_offset == 300
        assert seen == [Notice("sub-1", "HISTORY_LOST", 100, 300)]
        assert sub.notices == seen
        with pytest.warns(HistoryLostWarning, match="from offset 100 up to 300"):
            other = client.watch_all(from_offset=100)
            assert other.get(5).wal_offset == 300
    finally:
        client.close()


def test_unknown_and_oversized_notices_keep_the_connection(kind: str, stub: StubServer) -> None:
    script = WatchScript()
    script.after_watch = [
        {"type": "notice", "code": "EVENT_TOO_LARGE", "wal_offset": 100, "size": 99},
        {"type": "notice", "code": "SOMETHING_NEW"},
        _event("", 130),
    ]
    stub.handler = script
    client = open_client(kind, stub.address)
    try:
        with pytest.warns(SubscriptionWarning) as warned:
            sub = client.watch_all()
            assert sub.get(5).wal_offset == 130
        ours = [w for w in warned if issubclass(w.category, SubscriptionWarning)]
        assert "EVENT_TOO_LARGE" in str(ours[0].message)
        assert [n.code for n in sub.notices] == ["EVENT_TOO_LARGE", "SOMETHING_NEW"]
        assert client.ping() is True
    finally:
        client.close()


def test_resubscribes_from_the_offset_after_the_last_event(kind: str, stub: StubServer) -> None:
    script = WatchScript()
    script.after_watch = [_event("", 100), _event("", 150)]
    stub.handler = script
    client = open_client(kind, stub.address, reconnect=True, backoff_initial=0.01)
    try:
        sub = client.watch_all()
        assert [sub.get(5).wal_offset for _ in range(2)] == [100, 150]
        script.after_watch = [_event("", 150), _event("", 200)]  # 150 again must be dropped
        stub.call(lambda: stub.connections[0].close())
        assert sub.get(5).wal_offset == 200
        assert sub.resume_offset == 201
    finally:
        client.close()
    assert script.watches[0] == {"include_ctx": True}
    assert script.watches[1] == {"include_ctx": True, "from_offset": 151}


def test_lost_connection_without_reconnect_ends_the_subscription(
    kind: str, stub: StubServer
) -> None:
    script = WatchScript()
    stub.handler = script
    client = open_client(kind, stub.address)
    try:
        sub = client.watch_all()
        stub.call(lambda: stub.connections[0].close())
        with pytest.raises(ClientConnectionError, match="connection lost"):
            sub.get(5)
    finally:
        client.close()


def test_unencodable_params_are_a_bad_request(kind: str, stub: StubServer) -> None:
    from pyrstmdb.errors import BadRequest

    client = open_client(kind, stub.address)
    try:
        with pytest.raises(BadRequest, match="not JSON"):
            client.create_instance("m", 1, initial_ctx={"when": object()})
        assert client.ping() is True
    finally:
        client.close()

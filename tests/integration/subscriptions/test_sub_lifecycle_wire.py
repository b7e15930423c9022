"""Subscriptions end with their connection: disconnect (clean or reset), BYE and the idle
timeout drop them, a repeated HELLO does not. Read from the server's own gauges
(``rstmdb_subscriptions_active``) and counters (``rstmdb_events_forwarded_total``) on its
metrics endpoint.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Callable

import pytest
from server_harness import RawClient, ServerProcess
from sub_wire import (
    TOGGLE,
    WireClient,
    active_subscriptions,
    forwarded,
    put_machines,
    scrape,
    until_active,
)

from pyrstmdb.protocol import Event, Response

METRICS = {"RSTMDB_METRICS_ENABLED": "true", "RSTMDB_METRICS_BIND": "127.0.0.1:0"}


async def prepare(server: ServerProcess, instances: list[str]) -> None:
    client = await WireClient.open(server.host, server.port)
    await put_machines(client, [("toggle", 1, TOGGLE)])
    for instance_id in instances:
        await client.call(
            "CREATE_INSTANCE", {"machine": "toggle", "version": 1, "instance_id": instance_id}
        )
    await client.close()


@pytest.fixture(scope="module")
def server(rstmdb_module_server: Callable[..., ServerProcess]) -> ServerProcess:
    server = rstmdb_module_server(env=METRICS)
    asyncio.run(prepare(server, ["L1", "L2"]))
    return server


def watch_three(client: RawClient) -> list[str]:
    """Two WATCH_ALL and one WATCH_INSTANCE on ``client``; their ids."""
    ids = []
    for op, params in (
        ("WATCH_ALL", {}),
        ("WATCH_ALL", {"machines": ["toggle"]}),
        ("WATCH_INSTANCE", {"instance_id": "L1"}),
    ):
        response = client.call(op, params)
        assert response.ok and response.result is not None
        ids.append(response.result["subscription_id"])
    return ids


def apply(server: ServerProcess, instance_id: str = "L1") -> int:
    with server.raw() as writer:
        response = writer.call("APPLY_EVENT", {"instance_id": instance_id, "event": "GO"})
        assert response.ok and response.result is not None
        offset: int = response.result["wal_offset"]
        return offset


def scrape_connections(server: ServerProcess) -> int:
    return int(scrape(server)["rstmdb_connections_active"])


def wait_active(server: ServerProcess, expected: tuple[int, int]) -> None:
    asyncio.run(until_active(server, expected))


def assert_nothing_forwarded_after_drop(server: ServerProcess) -> None:
    before = forwarded(server)
    apply(server)
    time.sleep(0.1)
    assert forwarded(server) == before


@pytest.mark.parametrize("how", ["close", "reset", "half-close"])
def test_disconnect_drops_the_connections_subscriptions(server: ServerProcess, how: str) -> None:
    with server.raw() as keeper:
        (kept,) = [keeper.call("WATCH_INSTANCE", {"instance_id": "L2"}).result["subscription_id"]]  # type: ignore[index]
        client = server.raw()
        watch_three(client)
        wait_active(server, (2, 2))
        if how == "reset":  # RST instead of FIN
            client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        if how == "half-close":
            client.sock.shutdown(socket.SHUT_WR)
            assert client.closed_by_server()
        client.close()
        wait_active(server, (1, 0))
        assert_nothing_forwarded_after_drop(server)
        offset = apply(server, "L2")  # the other connection's subscription lives on
        message = keeper.receive()
        assert isinstance(message, Event)
        assert (message.fields["subscription_id"], message.fields["wal_offset"]) == (kept, offset)
    wait_active(server, (0, 0))


def test_bye_drops_the_connections_subscriptions(server: ServerProcess) -> None:
    with server.raw() as client:
        watch_three(client)
        wait_active(server, (1, 2))
        request_id = client.send("BYE")
        message = client.receive()
        assert isinstance(message, Response) and message.id == request_id
        assert message.result == {"goodbye": True}
        assert client.closed_by_server()
        wait_active(server, (0, 0))
    assert_nothing_forwarded_after_drop(server)


def test_repeated_hello_keeps_subscriptions(server: ServerProcess) -> None:
    with server.raw() as client:
        subs = watch_three(client)
        hello = client.call("HELLO", {"protocol_version": 1, "wire_modes": ["binary_json"]})
        assert hello.ok
        assert active_subscriptions(server) == (1, 2)
        offset = apply(server)
        events = [client.receive() for _ in range(3)]
        assert all(isinstance(e, Event) and e.fields["wal_offset"] == offset for e in events)
        assert sorted(e.fields["subscription_id"] for e in events) == sorted(subs)  # type: ignore[union-attr]
    wait_active(server, (0, 0))


@pytest.mark.slow
def test_idle_timeout_drops_subscriptions_but_events_keep_a_watcher_alive(
    rstmdb_server: Callable[..., ServerProcess],
) -> None:
    server = rstmdb_server(env={**METRICS, "RSTMDB_IDLE_TIMEOUT": "1"})
    asyncio.run(prepare(server, ["L1"]))
    with server.raw() as busy, server.raw() as quiet:
        watched = busy.call("WATCH_INSTANCE", {"instance_id": "L1"})
        assert watched.ok
        assert quiet.call("WATCH_ALL", {"machines": ["nothing"]}).ok
        assert active_subscriptions(server) == (1, 1)
        offsets = []
        for _ in range(8):  # 2.4 s of events every 0.3 s: longer than the timeout
            offsets.append(apply(server))
            time.sleep(0.3)
        assert quiet.closed_by_server(timeout=0.1)  # received nothing: closed long ago
        assert active_subscriptions(server) == (1, 0)
        received = [busy.receive() for _ in offsets]
        assert [m.fields["wal_offset"] for m in received] == offsets  # type: ignore[union-attr]
        started = time.monotonic()
        assert busy.closed_by_server(timeout=5)
        assert time.monotonic() - started < 3
        wait_active(server, (0, 0))


@pytest.mark.slow
def test_idle_timeout_ends_a_stalled_subscriber_that_left_events_unread(
    rstmdb_server: Callable[..., ServerProcess],
) -> None:
    """Waiting to flush what a peer never reads would keep its connection and subscriptions
    forever: after the idle timeout the server cuts it off."""
    server = rstmdb_server(env={**METRICS, "RSTMDB_IDLE_TIMEOUT": "1"})
    asyncio.run(prepare(server, ["L1"]))
    stalled = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    stalled.settimeout(10)
    stalled.connect((server.host, server.port))
    client = RawClient(server.host, server.port, sock=stalled)
    try:
        assert client.call("WATCH_ALL", {}).ok
        assert client.call("WATCH_INSTANCE", {"instance_id": "L1"}).ok
        assert active_subscriptions(server) == (1, 1)
        go = {"op": "APPLY_EVENT", "params": {"instance_id": "L1", "event": "GO"}}
        pad = {"payload": {"pad": "p" * 4000}}
        with server.raw() as writer:
            for _ in range(40):  # about 16 MB of events owed, far more than the buffers hold
                ops = [{**go, "params": {**go["params"], **pad}}] * 50
                assert writer.call("BATCH", {"mode": "atomic", "ops": ops}).ok
        wait_active(server, (0, 0))
        assert scrape_connections(server) == 0
        assert client.closed_by_server()  # what the kernel held arrives, then the end
    finally:
        client.close()

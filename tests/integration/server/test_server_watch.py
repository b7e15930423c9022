"""WATCH_INSTANCE, WATCH_ALL and UNWATCH through the official client against the real server."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from rstmdb import Client, Operation, ServerError, StreamEvent
from server_harness import ServerProcess

ORDER = {
    "states": ["created", "paid", "shipped"],
    "initial": "created",
    "transitions": [
        {"from": "created", "event": "PAY", "to": "paid"},
        {"from": "paid", "event": "SHIP", "to": "shipped"},
    ],
}


@pytest.fixture(scope="module")
def server(rstmdb_module_server: Callable[..., ServerProcess]) -> ServerProcess:
    server = rstmdb_module_server(
        env={"RSTMDB_METRICS_ENABLED": "true", "RSTMDB_METRICS_BIND": "127.0.0.1:0"}
    )

    async def setup() -> None:
        async with Client(server.host, server.port) as client:
            await client.put_machine("order", 1, ORDER)
            await client.put_machine("other", 1, ORDER)

    asyncio.run(setup())
    return server


async def next_event(client: Client, timeout: float = 5.0) -> StreamEvent:
    return await asyncio.wait_for(client._conn._events.get(), timeout)


def no_event_queued(client: Client) -> bool:
    return client._conn._events.empty()


def run_pair(server: ServerProcess, body: Callable[[Client, Client], Any]) -> None:
    async def main() -> None:
        async with (
            Client(server.host, server.port) as watcher,
            Client(server.host, server.port) as writer,
        ):
            await body(watcher, writer)

    asyncio.run(main())


def test_watch_instance_events_in_order(server: ServerProcess) -> None:
    async def body(watcher: Client, writer: Client) -> None:
        created = await writer.create_instance("order", 1, instance_id="w1", initial_ctx={"c": 1})
        watch = await watcher.watch_instance("w1")
        assert watch.subscription_id.startswith("sub-")
        assert (watch.instance_id, watch.current_state) == ("w1", "created")
        assert watch.current_wal_offset == created.wal_offset
        paid = await writer.apply_event("w1", "PAY", payload={"amount": 5})
        shipped = await writer.apply_event("w1", "SHIP")
        first, second = await next_event(watcher), await next_event(watcher)
        assert (first.from_state, first.to_state, first.event) == ("created", "paid", "PAY")
        assert first.payload == {"amount": 5} and first.ctx == {"c": 1, "amount": 5}
        assert (first.machine, first.version, first.instance_id) == ("order", 1, "w1")
        assert first.subscription_id == watch.subscription_id
        assert [first.wal_offset, second.wal_offset] == [paid.wal_offset, shipped.wal_offset]
        assert second.payload is None and second.to_state == "shipped"

    run_pair(server, body)


def test_watch_all_filters_and_include_ctx(server: ServerProcess) -> None:
    async def body(watcher: Client, writer: Client) -> None:
        watch = await watcher.watch_all(
            machines=["order"], to_states=["shipped"], include_ctx=False
        )
        assert watch.wal_offset > 0
        for iid, machine in (("f1", "order"), ("f2", "other")):
            await writer.create_instance(machine, 1, instance_id=iid)
            await writer.apply_event(iid, "PAY")
            await writer.apply_event(iid, "SHIP")
        event = await next_event(watcher)
        assert (event.instance_id, event.to_state, event.ctx) == ("f1", "shipped", None)
        await writer.ping()
        await asyncio.sleep(0.2)
        assert no_event_queued(watcher)

    run_pair(server, body)


def test_unwatch_stops_delivery(server: ServerProcess) -> None:
    async def body(watcher: Client, writer: Client) -> None:
        await writer.create_instance("order", 1, instance_id="u1")
        await writer.create_instance("order", 1, instance_id="u2")
        first = await watcher.watch_instance("u1")
        second = await watcher.watch_instance("u2")
        removed = await watcher.unwatch(first.subscription_id)
        assert removed.removed is True and removed.subscription_id == first.subscription_id
        assert (await watcher.unwatch(first.subscription_id)).removed is False
        assert (await writer.unwatch(second.subscription_id)).removed is False  # not its own
        await writer.apply_event("u1", "PAY")
        await writer.apply_event("u2", "PAY")
        event = await next_event(watcher)
        assert (event.instance_id, event.subscription_id) == ("u2", second.subscription_id)

    run_pair(server, body)


def test_watch_errors(server: ServerProcess) -> None:
    async def body(watcher: Client, writer: Client) -> None:
        with pytest.raises(ServerError) as missing:
            await watcher.watch_instance("no-such-instance")
        assert missing.value.code.value == "INSTANCE_NOT_FOUND"
        await writer.create_instance("order", 1, instance_id="gone")
        await writer.delete_instance("gone")
        with pytest.raises(ServerError) as deleted:
            await watcher.watch_instance("gone")
        assert deleted.value.code.value == "INSTANCE_NOT_FOUND"

    run_pair(server, body)


def test_events_iterator_and_reconnect(server: ServerProcess) -> None:
    async def body(watcher: Client, writer: Client) -> None:
        await writer.create_instance("order", 1, instance_id="it1")
        await watcher.watch_instance("it1")
        await writer.apply_event("it1", "PAY")
        stream = watcher.events()
        event = await asyncio.wait_for(stream.__anext__(), 5)
        assert (event.instance_id, event.to_state) == ("it1", "paid")
        await writer.reconnect()
        assert writer.is_connected and await writer.ping()
        assert (await writer.get_instance("it1")).state == "paid"

    run_pair(server, body)


def test_watch_all_replays_from_offset(server: ServerProcess) -> None:
    async def body(watcher: Client, writer: Client) -> None:
        await writer.create_instance("other", 1, instance_id="r1")
        paid = await writer.apply_event("r1", "PAY", payload={"k": 1})
        response = await watcher._conn.request(
            Operation.WATCH_ALL,
            {"machines": ["other"], "from_offset": paid.wal_offset, "include_ctx": True},
        )
        assert response.status == "ok"
        shipped = await writer.apply_event("r1", "SHIP")
        replayed, live = await next_event(watcher), await next_event(watcher)
        assert (replayed.wal_offset, replayed.payload) == (paid.wal_offset, {"k": 1})
        assert live.wal_offset == shipped.wal_offset

    run_pair(server, body)


def scrape(server: ServerProcess) -> str:
    url = f"http://127.0.0.1:{server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text: str = response.read().decode()
    return text


def test_subscription_metrics_follow_connections(server: ServerProcess) -> None:
    async def main() -> None:
        async with Client(server.host, server.port) as watcher:
            await watcher.watch_all(machines=["nothing"])
            await watcher.watch_all(machines=["nothing"])
            assert 'rstmdb_subscriptions_active{type="all"} 2.0' in scrape(server)
        for _ in range(100):
            if 'rstmdb_subscriptions_active{type="all"} 0.0' in scrape(server):
                break
            await asyncio.sleep(0.02)
        text = scrape(server)
        assert 'rstmdb_subscriptions_active{type="all"} 0.0' in text
        assert 'rstmdb_requests_total{operation="WATCH_ALL"}' in text
        assert 'rstmdb_events_forwarded_total{type="instance"}' in text

    asyncio.run(main())

"""Helpers of the subscription integration tests: machines, a pipelining raw asyncio client,
metric scraping and process memory.

:class:`WireClient` speaks the binary frame protocol over a plain asyncio
connection and hands back every server message as the raw decoded JSON
object: responses resolve the future of their request id, everything else
(``event`` and ``notice`` messages) is appended to :attr:`WireClient.pushed` in
arrival order. Requests can be pipelined freely (``send`` returns a future
without waiting). Nothing here interprets subscription semantics; the tests do.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from rstmdb import Client
from server_harness import ServerProcess

from pyrstmdb.protocol import StreamSplitter, encode_frame, request_message

Json = dict[str, Any]

ORDER: Json = {
    "states": ["created", "paid", "shipped"],
    "initial": "created",
    "transitions": [
        {"from": "created", "event": "PAY", "to": "paid"},
        {"from": "paid", "event": "SHIP", "to": "shipped"},
        {"from": "paid", "event": "REFUND", "to": "created"},
        {"from": "created", "event": "BIG", "to": "paid", "guard": "ctx.amount > 100"},
    ],
}
TICKET: Json = {
    "states": ["open", "paid", "closed"],
    "initial": "open",
    "transitions": [
        {"from": "open", "event": "PAY", "to": "paid"},
        {"from": "paid", "event": "CLOSE", "to": "closed"},
        {"from": "closed", "event": "REOPEN", "to": "open"},
    ],
}
TOGGLE: Json = {
    "states": ["a", "b"],
    "initial": "a",
    "transitions": [
        {"from": "a", "event": "GO", "to": "b"},
        {"from": "b", "event": "GO", "to": "a"},
    ],
}
EVENT_KEYS = {
    "type",
    "subscription_id",
    "instance_id",
    "machine",
    "version",
    "wal_offset",
    "from_state",
    "to_state",
    "event",
    "payload",
}


class ServerFailed(Exception):
    """A request expected to succeed got an error response."""


class WireClient(asyncio.Protocol):
    """A raw, pipelining client: ``await WireClient.open(host, port)``."""

    def __init__(self) -> None:
        self._splitter = StreamSplitter()
        self._waiting: dict[str, asyncio.Future[Json]] = {}
        self._next_id = 0
        self._transport: asyncio.Transport | None = None
        self.pushed: list[Json] = []  # events and notices, in arrival order
        self.trace: list[Json] = []  # every message, responses included, in arrival order
        self.arrived = asyncio.Event()  # set whenever a pushed message arrives
        self.closed = asyncio.Event()

    @classmethod
    async def open(cls, host: str, port: int) -> WireClient:
        loop = asyncio.get_running_loop()
        _, client = await loop.create_connection(cls, host, port)
        return client

    # -- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        for payload in self._splitter.feed(data):
            message = orjson.loads(payload)
            self.trace.append(message)
            if message.get("type") == "response":
                future = self._waiting.pop(message["id"], None)
                if future is not None and not future.done():
                    future.set_result(message)
            else:
                self.pushed.append(message)
                self.arrived.set()

    def connection_lost(self, exc: Exception | None) -> None:
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(ConnectionError("server closed the connection"))
        self._waiting.clear()
        self.closed.set()

    # -- requests ------------------------------------------------------------------------
    def send(self, op: str, params: Json | None = None) -> asyncio.Future[Json]:
        """Write one request now; the future gets its raw response."""
        assert self._transport is not None
        self._next_id += 1
        request_id = str(self._next_id)
        future: asyncio.Future[Json] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        frame = encode_frame(orjson.dumps(request_message(request_id, op, params or {})))
        self._transport.write(frame)
        return future

    async def request(self, op: str, params: Json | None = None, timeout: float = 10.0) -> Json:
        """The raw response to one request."""
        return await asyncio.wait_for(self.send(op, params), timeout)

    async def call(self, op: str, params: Json | None = None, timeout: float = 10.0) -> Json:
        """The ``result`` of one request; raises :class:`ServerFailed` on an error response."""
        response = await self.request(op, params, timeout)
        if response["status"] != "ok":
            raise ServerFailed(response["error"])
        result: Json = response["result"]
        return result

    def write_raw(self, data: bytes) -> None:
        assert self._transport is not None
        self._transport.write(data)

    # -- pushed messages ---------------------------------------------------------------
    async def wait_until(self, done: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait (re-checking on every pushed message) until ``done()`` holds."""
        deadline = time.monotonic() + timeout
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"condition not met; {len(self.pushed)} messages pushed")
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), min(remaining, 0.5))

    async def wait_pushed(self, count: int, timeout: float = 10.0) -> list[Json]:
        """Wait until at least ``count`` messages were pushed; returns all of them."""
        await self.wait_until(lambda: len(self.pushed) >= count, timeout)
        return self.pushed

    async def close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()
        await asyncio.wait_for(self.closed.wait(), 10)


async def put_machines(client: WireClient, machines: Iterable[tuple[str, int, Json]]) -> None:
    for name, version, definition in machines:
        await client.call(
            "PUT_MACHINE", {"machine": name, "version": version, "definition": definition}
        )


async def apply_all(client: WireClient, requests: list[Json]) -> list[Json]:
    """Pipeline APPLY_EVENT requests on one connection; their raw responses in order."""
    futures = [client.send("APPLY_EVENT", params) for params in requests]
    return list(await asyncio.wait_for(asyncio.gather(*futures), 60))


async def next_official_event(client: Client, timeout: float = 5.0) -> Any:
    """The next event the official client queued (its ``events()`` iterator ends on cancel)."""
    return await asyncio.wait_for(client._conn._events.get(), timeout)


def official_queue_empty(client: Client) -> bool:
    return client._conn._events.empty()


# -- metrics and memory -----------------------------------------------------------------------
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


def scrape(server: ServerProcess) -> dict[str, float]:
    """Every sample of the server's ``/metrics`` as ``{'name{labels}': value}``."""
    url = f"http://127.0.0.1:{server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        found = _SAMPLE.match(line)
        if found:
            samples[found.group(1) + (found.group(2) or "")] = float(found.group(3))
    return samples


def active_subscriptions(server: ServerProcess) -> tuple[int, int]:
    """(WATCH_INSTANCE, WATCH_ALL) subscriptions the server holds now."""
    samples = scrape(server)
    return (
        int(samples['rstmdb_subscriptions_active{type="instance"}']),
        int(samples['rstmdb_subscriptions_active{type="all"}']),
    )


def forwarded(server: ServerProcess) -> int:
    samples = scrape(server)
    return int(
        samples['rstmdb_events_forwarded_total{type="instance"}']
        + samples['rstmdb_events_forwarded_total{type="all"}']
    )


async def until_active(
    server: ServerProcess, expected: tuple[int, int], timeout: float = 5.0
) -> None:
    """Poll the gauges until they read ``expected``; fails with the last reading."""
    deadline = time.monotonic() + timeout
    seen = await asyncio.to_thread(active_subscriptions, server)
    while seen != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        seen = await asyncio.to_thread(active_subscriptions, server)
    assert seen == expected


def rss_bytes(pid: int) -> int:
    """Resident set size of process ``pid`` (``VmRSS`` of ``/proc/<pid>/status``)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")

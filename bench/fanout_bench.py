"""Subscription fan-out over loopback TCP with the real server, and replay.

* fan-out over TCP: the ``rstmdb`` server process (``every_write``) with 100
  WATCH_ALL subscriber connections while 8 writer connections apply durable
  events, one request in flight each. Rates: durable events written per second,
  and events delivered per second summed over all subscribers (until every
  subscriber has received every event). The same writers without subscribers
  give the baseline write rate.
* lag, over every (event, subscriber) pair, p50 and p99: from the moment the
  writer received its APPLY_EVENT response to the moment the subscriber had
  decoded the event (negative when the event arrives first: the server hands
  the events of an fsync batch to the subscribers before it answers the
  writers), and from the moment the writer sent the request. All timestamps
  are taken in this process with one clock.
* replay over TCP: after the fan-out, one more connection subscribes from
  offset 0 and receives the whole log (every event written above).
* replay in process: the ``Hub`` over a durable ``Database`` replaying a log of
  20,000 applied events from disk, to one in-process sink and then to 100 at
  once (shared reads); the sinks encode each message with orjson as a
  connection would, but write no socket.

Writers and subscribers are raw asyncio protocols using
:class:`pyrstmdb.protocol.ClientCodec` (not the official client, whose
pure-Python CRC would be the bottleneck); they share this process's core, the
server has the other one of a two-core machine.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from array import array
from typing import Any

import orjson

from bench.server_process import start_server
from pyrstmdb import Database
from pyrstmdb.protocol import ClientCodec, Event, Response, encode_frame, request_message
from pyrstmdb.subscriptions import Hub

SUBSCRIBERS = 100
WRITERS = 8
SECONDS = 5.0
BASELINE_SECONDS = 3.0
DRAIN_LIMIT = 60.0
REPLAY_EVENTS = 20_000
TOGGLE = {
    "states": ["a", "b"],
    "initial": "a",
    "transitions": [
        {"from": "a", "event": "GO", "to": "b"},
        {"from": "b", "event": "GO", "to": "a"},
    ],
}

Row = tuple[str, float, str]


# -- the server process -------------------------------------------------------------------------


def _frame(request_id: str, op: str, params: dict[str, Any]) -> bytes:
    return encode_frame(orjson.dumps(request_message(request_id, op, params)))


# -- raw asyncio peers ----------------------------------------------------------------------------


class _Peer(asyncio.Protocol):
    """Decodes what arrives; responses complete ``self.answer`` one at a time."""

    def __init__(self) -> None:
        self.codec = ClientCodec()
        self.transport: asyncio.Transport | None = None
        self.answer: asyncio.Future[Response] | None = None
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(ConnectionError("server closed the connection"))

    def respond(self, response: Response) -> None:
        if self.answer is not None and not self.answer.done():
            self.answer.set_result(response)

    async def call(self, op: str, params: dict[str, Any]) -> dict[str, Any]:
        assert self.transport is not None
        self.answer = asyncio.get_running_loop().create_future()
        self.transport.write(_frame("1", op, params))
        response = await asyncio.wait_for(self.answer, 30)
        if not response.ok or response.result is None:
            raise RuntimeError(f"{op} failed: {response.error}")
        return response.result

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class _Subscriber(_Peer):
    """Remembers the offset of every event and when it was decoded."""

    def __init__(self) -> None:
        super().__init__()
        self.offsets = array("q")
        self.times = array("d")
        self.arrived = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        for message in self.codec.feed(data):
            if type(message) is Event:
                self.offsets.append(message.fields["wal_offset"])
                self.times.append(now)
            elif type(message) is Response:
                self.respond(message)
        self.arrived.set()

    async def received(self, last: int, deadline: float) -> None:
        """Wait until the event at offset ``last`` has arrived (or ``deadline`` passed)."""
        while (not self.offsets or self.offsets[-1] < last) and time.perf_counter() < deadline:
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), deadline - time.perf_counter())
            except TimeoutError:
                return


class _Writer(_Peer):
    """Applies ``GO`` to one instance, one request in flight, until ``until``."""

    def __init__(self, instance_id: str, acks: dict[int, float], sent: dict[int, float]) -> None:
        super().__init__()
        self.instance_id = instance_id
        self.acks = acks
        self.sent = sent
        self.sent_at = 0.0
        self.until = 0.0
        self.n = 0
        self.done: asyncio.Future[int] | None = None

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        for message in self.codec.feed(data):
            if type(message) is not Response:
                continue
            if self.done is None:
                self.respond(message)
                continue
            if not message.ok or message.result is None:
                self.done.set_exception(RuntimeError(f"APPLY_EVENT failed: {message.error}"))
                return
            offset = message.result["wal_offset"]
            self.acks[offset] = now
            self.sent[offset] = self.sent_at
            self.n += 1
            if now < self.until:
                self._send()
            else:
                self.done.set_result(self.n)

    def _send(self) -> None:
        assert self.transport is not None
        params = {"instance_id": self.instance_id, "event": "GO", "payload": {"n": self.n}}
        self.sent_at = time.perf_counter()
        self.transport.write(_frame(str(self.n), "APPLY_EVENT", params))

    async def run(self, seconds: float) -> int:
        self.n = 0
        self.until = time.perf_counter() + seconds
        self.done = asyncio.get_running_loop().create_future()
        self._send()
        written = await self.done
        self.done = None
        return written


async def _connect(factory: type[_Peer] | Any, port: int) -> Any:
    _, peer = await asyncio.get_running_loop().create_connection(factory, "127.0.0.1", port)
    return peer


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def _write(writers: list[_Writer], seconds: float) -> int:
    return sum(await asyncio.gather(*(w.run(seconds) for w in writers)))


async def _wire(port: int) -> list[Row]:
    setup = await _connect(_Subscriber, port)
    await setup.call("PUT_MACHINE", {"machine": "toggle", "version": 1, "definition": TOGGLE})
    acks: dict[int, float] = {}
    sent: dict[int, float] = {}
    writers: list[_Writer] = []
    for i in range(WRITERS):
        await setup.call(
            "CREATE_INSTANCE", {"machine": "toggle", "version": 1, "instance_id": f"w{i}"}
        )
        writers.append(await _connect(lambda i=i: _Writer(f"w{i}", acks, sent), port))
    started = time.perf_counter()
    baseline = await _write(writers, BASELINE_SECONDS) / (time.perf_counter() - started)
    acks.clear()

    subscribers: list[_Subscriber] = [await _connect(_Subscriber, port) for _ in range(SUBSCRIBERS)]
    for sub in subscribers:
        await sub.call("WATCH_ALL", {})
    started = time.perf_counter()
    written = await _write(writers, SECONDS)
    write_elapsed = time.perf_counter() - started
    last = max(acks)
    deadline = time.perf_counter() + DRAIN_LIMIT
    await asyncio.gather(*(sub.received(last, deadline) for sub in subscribers))
    elapsed = time.perf_counter() - started
    delivered = sum(len(sub.offsets) for sub in subscribers)
    if delivered != written * SUBSCRIBERS:
        raise RuntimeError(f"delivered {delivered} events, expected {written * SUBSCRIBERS}")
    from_ack: list[float] = []
    from_send: list[float] = []
    for sub in subscribers:
        for o, t in zip(sub.offsets, sub.times, strict=True):
            from_ack.append((t - acks[o]) * 1000)
            from_send.append((t - sent[o]) * 1000)

    replayer = await _connect(_Subscriber, port)
    started = time.perf_counter()
    await replayer.call("WATCH_ALL", {"from_offset": 0})
    await replayer.received(last, time.perf_counter() + DRAIN_LIMIT)
    replayed = len(replayer.offsets)
    replay_rate = replayed / (time.perf_counter() - started)
    for peer in [setup, replayer, *writers, *subscribers]:
        peer.close()

    label = f"{SUBSCRIBERS} WATCH_ALL conns, {WRITERS} writer conns"
    tcp = "fan-out over TCP:"
    return [
        (
            f"{tcp} durable events written, {WRITERS} writer conns, no subscribers",
            baseline,
            "events/s",
        ),
        (f"{tcp} durable events written, {label}", written / write_elapsed, "events/s"),
        (f"{tcp} events delivered (all subscribers), {label}", delivered / elapsed, "events/s"),
        (f"{tcp} lag writer's ack -> subscriber decoded, p50", _percentile(from_ack, 0.5), "ms"),
        (f"{tcp} lag writer's ack -> subscriber decoded, p99", _percentile(from_ack, 0.99), "ms"),
        (f"{tcp} lag write sent -> subscriber decoded, p50", _percentile(from_send, 0.5), "ms"),
        (f"{tcp} lag write sent -> subscriber decoded, p99", _percentile(from_send, 0.99), "ms"),
        (
            f"replay over TCP from offset 0, 1 subscriber, {replayed:,} events",
            replay_rate,
            "events/s",
        ),
    ]


def _wire_rows(data_dir: str) -> list[Row]:
    proc, port = start_server(data_dir)
    try:
        return asyncio.run(_wire(port))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- replay in process ----------------------------------------------------------------------------


class _TimingSink:
    """Encodes every message as a connection would and counts them."""

    def __init__(self) -> None:
        self.count = 0
        self.bytes = 0

    def send_event(self, message: dict[str, Any]) -> None:
        self.bytes += len(orjson.dumps(message))
        self.count += 1

    def writable(self) -> bool:
        return True


def _history(path: str) -> Database:
    """A durable log of REPLAY_EVENTS applied events, written in batches."""
    db = Database(path)
    db.put_machine("toggle", 1, TOGGLE)
    for i in range(100):
        db.create_instance("toggle", 1, instance_id=f"r{i}")
    for n in range(REPLAY_EVENTS // 100):
        ops = [
            {
                "op": "APPLY_EVENT",
                "params": {"instance_id": f"r{i}", "event": "GO", "payload": {"n": n}},
            }
            for i in range(100)
        ]
        db.batch(ops)
    return db


async def _replay(db: Database, subscribers: int, expected: int) -> float:
    hub = Hub(db.core, asyncio.get_running_loop())
    start = time.perf_counter()
    sinks = []
    for _ in range(subscribers):
        sink = _TimingSink()
        result = hub.watch_all(sink, [], [], [], [], True, 0)
        hub.activate(sink, result["subscription_id"])
        sinks.append(sink)
    deadline = start + DRAIN_LIMIT
    while any(s.count < expected for s in sinks) and time.perf_counter() < deadline:
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - start
    assert all(s.count == expected for s in sinks)
    await hub.close()
    return subscribers * expected / elapsed


def _replay_rows(path: str) -> list[Row]:
    db = _history(path)
    try:
        one = asyncio.run(_replay(db, 1, REPLAY_EVENTS))
        many = asyncio.run(_replay(db, SUBSCRIBERS, REPLAY_EVENTS))
    finally:
        db.close()
    return [
        (f"replay in process from disk, 1 subscriber, {REPLAY_EVENTS:,} events", one, "events/s"),
        (
            f"replay in process from disk, {SUBSCRIBERS} subscribers at once (shared reads)",
            many,
            "events/s",
        ),
    ]


def run(tmpdir: str) -> list[Row]:
    return _wire_rows(os.path.join(tmpdir, "wire")) + _replay_rows(os.path.join(tmpdir, "replay"))

"""Subscription fan-out and replay through the ``Hub`` over a durable store.

* fan-out: 100 WATCH_ALL subscribers while 8 asyncio writer tasks apply durable
  events (``every_write``, group commit): events delivered per second over all
  subscribers, and the lag from the moment a write can be acknowledged (its fsync
  completed, timed on the fsync thread) to each delivery, p50 and p99; the same
  writers without subscribers give the baseline write rate. The sinks are
  in-process fakes that encode each message with orjson, as the server's
  connections do, but write no socket.
* replay: one subscriber, then 100 subscribers at once (reads shared), replaying
  a log of 20,000 applied events from offset 0 from disk.
"""

from __future__ import annotations

import asyncio
import os
import time
from array import array
from typing import Any

import orjson

from pyrstmdb import Database
from pyrstmdb.aio import DurabilityWaiter
from pyrstmdb.core import Core
from pyrstmdb.engine.commands import ApplyEvent
from pyrstmdb.subscriptions import Hub

SUBSCRIBERS = 100
WRITERS = 8
SECONDS = 5.0
BASELINE_SECONDS = 3.0
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


class TimingSink:
    """Encodes every message and remembers when each offset arrived."""

    def __init__(self) -> None:
        self.offsets = array("q")
        self.times = array("d")
        self.bytes = 0

    def send_event(self, message: dict[str, Any]) -> None:
        self.bytes += len(orjson.dumps(message))
        self.offsets.append(message["wal_offset"])
        self.times.append(time.perf_counter())

    def writable(self) -> bool:
        return True


def _watch(hub: Hub, from_offset: int | None = None) -> TimingSink:
    sink = TimingSink()
    result = hub.watch_all(sink, [], [], [], [], True, from_offset)
    hub.activate(sink, result["subscription_id"])
    return sink


def _acknowledged(acks: dict[int, float], offset: int) -> Any:
    def done(error: object) -> None:
        acks[offset] = time.perf_counter()  # on the fsync thread, as soon as it is durable

    return done


async def _write(core: Core, acks: dict[int, float], seconds: float) -> int:
    waiter = DurabilityWaiter(core, asyncio.get_running_loop())
    stop = time.perf_counter() + seconds
    count = 0

    async def writer(name: str) -> None:
        nonlocal count
        n = 0
        while time.perf_counter() < stop:
            _result, offset = core.apply_event(ApplyEvent(name, "GO", {"n": n, "who": name}))
            core.when_visible(offset, _acknowledged(acks, offset))
            await waiter.visible(offset)
            n += 1
            count += 1

    await asyncio.gather(*(writer(f"w{i}") for i in range(WRITERS)))
    return count


async def _drain(hub: Hub, sinks: list[TimingSink], expected: int) -> None:
    deadline = time.perf_counter() + 60
    while any(len(s.offsets) < expected for s in sinks) and time.perf_counter() < deadline:
        await asyncio.sleep(0.005)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def _baseline(db: Database) -> float:
    start = time.perf_counter()
    written = await _write(db.core, {}, BASELINE_SECONDS)
    return written / (time.perf_counter() - start)


async def _fanout(db: Database) -> list[Row]:
    hub = Hub(db.core, asyncio.get_running_loop())
    sinks = [_watch(hub) for _ in range(SUBSCRIBERS)]
    acks: dict[int, float] = {}
    start = time.perf_counter()
    written = await _write(db.core, acks, SECONDS)
    await _drain(hub, sinks, written)
    elapsed = time.perf_counter() - start
    delivered = sum(len(s.offsets) for s in sinks)
    lags = [(t - acks[o]) * 1000 for s in sinks for o, t in zip(s.offsets, s.times, strict=True)]
    await hub.close()
    label = f"{SUBSCRIBERS} WATCH_ALL, {WRITERS} writers (in-process sinks)"
    return [
        (f"fan-out: durable events written, {label}", written / elapsed, "events/s"),
        (f"fan-out: events delivered, {label}", delivered / elapsed, "events/s"),
        ("fan-out: lag durable (acknowledgeable) -> delivered, p50", _percentile(lags, 0.5), "ms"),
        ("fan-out: lag durable (acknowledgeable) -> delivered, p99", _percentile(lags, 0.99), "ms"),
    ]


async def _replay(db: Database, subscribers: int, expected: int) -> float:
    hub = Hub(db.core, asyncio.get_running_loop())
    start = time.perf_counter()
    sinks = [_watch(hub, 0) for _ in range(subscribers)]
    await _drain(hub, sinks, expected)
    elapsed = time.perf_counter() - start
    assert all(len(s.offsets) == expected for s in sinks)
    await hub.close()
    return subscribers * expected / elapsed


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


def _fanout_rows(path: str) -> list[Row]:
    db = Database(path)
    db.put_machine("toggle", 1, TOGGLE)
    for i in range(WRITERS):
        db.create_instance("toggle", 1, instance_id=f"w{i}")
    try:
        baseline = asyncio.run(_baseline(db))
        rows = asyncio.run(_fanout(db))
    finally:
        db.close()
    label = f"durable events written, {WRITERS} writers, no subscribers"
    return [(label, baseline, "events/s"), *rows]


def _replay_rows(path: str) -> list[Row]:
    db = _history(path)
    try:
        one = asyncio.run(_replay(db, 1, REPLAY_EVENTS))
        many = asyncio.run(_replay(db, SUBSCRIBERS, REPLAY_EVENTS))
    finally:
        db.close()
    return [
        (f"replay from disk, 1 subscriber, {REPLAY_EVENTS:,} events", one, "events/s"),
        (f"replay from disk, {SUBSCRIBERS} subscribers at once (shared reads)", many, "events/s"),
    ]


def run(tmpdir: str) -> list[Row]:
    return _fanout_rows(os.path.join(tmpdir, "fanout")) + _replay_rows(
        os.path.join(tmpdir, "replay")
    )

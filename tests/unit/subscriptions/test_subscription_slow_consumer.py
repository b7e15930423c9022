"""A subscriber blocked while 100,000 durable events are written gets all of them, in order,
while the hub's memory for it stays bounded: the backlog is re-read from disk."""

from __future__ import annotations

import asyncio
import os
import tracemalloc
from array import array
from pathlib import Path
from typing import Any

import pytest
from hub_testkit import TOGGLE, settle

from pyrstmdb import Database
from pyrstmdb.subscriptions import Hub

INSTANCES = 100
BATCHES = 1000  # x INSTANCES events
BUFFER = 1024
EVENTS = ("GO", "BACK")


class CountingSink:
    """Keeps only the offsets (in a compact array) and checks their order as they come."""

    def __init__(self) -> None:
        self.offsets = array("q")
        self.is_writable = False

    def send_event(self, message: dict[str, Any]) -> None:
        assert message["type"] == "event"
        offset = message["wal_offset"]
        assert not self.offsets or offset > self.offsets[-1]
        self.offsets.append(offset)

    def writable(self) -> bool:
        return self.is_writable


def write_batches(db: Database, first: int, last: int) -> list[int]:
    written: list[int] = []
    for b in range(first, last):
        ops = [
            {
                "op": "APPLY_EVENT",
                "params": {"instance_id": f"i{i}", "event": EVENTS[b % 2], "payload": {"b": b}},
            }
            for i in range(INSTANCES)
        ]
        for item in db.batch(ops).results:
            written.append(item.result.wal_offset)  # type: ignore[union-attr]
    return written


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def hub_bytes() -> int:
    snapshot = tracemalloc.take_snapshot()
    mine = snapshot.filter_traces([tracemalloc.Filter(True, "*pyrstmdb/subscriptions/*")])
    return sum(stat.size for stat in mine.statistics("filename"))


async def watch_memory(hub: Hub, done: asyncio.Event, peaks: dict[str, int]) -> None:
    base = rss_bytes()
    while not done.is_set():
        peaks["buffer"] = max(peaks["buffer"], hub.stats()["buffer_max"])
        peaks["rss_growth"] = max(peaks["rss_growth"], rss_bytes() - base)
        await asyncio.sleep(0.005)


async def traced_window(
    hub: Hub, db: Database, first: int, last: int
) -> tuple[list[int], int, int]:
    """Write batches ``first..last`` under tracemalloc; (offsets, total growth, hub bytes)."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        written = await asyncio.to_thread(write_batches, db, first, last)
        await settle(hub, db)
        return written, tracemalloc.get_traced_memory()[0] - base, hub_bytes()
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_blocked_subscriber_receives_100k_durable_events_with_bounded_memory(
    tmp_path: Path,
) -> None:
    # Instance history keeps the newest entries of each instance (allocated inside the traced
    # window, so counted there although the older entries they replace are freed); this test
    # measures the hub, so history is off. tests/unit/engine/test_history.py bounds history.
    db = Database(str(tmp_path / "db"), history_per_instance=0)
    db.put_machine("toggle", 1, TOGGLE)
    for i in range(INSTANCES):
        db.create_instance("toggle", 1, instance_id=f"i{i}")

    async def main() -> None:
        hub = Hub(db.core, asyncio.get_running_loop(), buffer_events=BUFFER)
        sink = CountingSink()
        result = hub.watch_all(sink, [], [], [], [])
        hub.activate(sink, result["subscription_id"])
        peaks = {"buffer": 0, "rss_growth": 0}
        done = asyncio.Event()
        monitor = asyncio.create_task(watch_memory(hub, done, peaks))
        written = await asyncio.to_thread(write_batches, db, 0, 700)
        # 15,000 more events under tracemalloc: their backlog alone would be about 9 MB.
        more, traced_growth, retained = await traced_window(hub, db, 700, 850)
        written += more
        written += await asyncio.to_thread(write_batches, db, 850, BATCHES)
        await settle(hub, db)
        done.set()
        await monitor
        assert len(written) == INSTANCES * BATCHES and len(sink.offsets) == 0
        stats = hub.stats()
        assert stats["catching_up"] == 1 and stats["buffered"] == 0
        assert peaks["buffer"] <= BUFFER
        assert traced_growth < 2 * 1024 * 1024, traced_growth
        assert retained < 256 * 1024, retained
        # The whole 100,000-event backlog would need well over 50 MB.
        assert peaks["rss_growth"] < 32 * 1024 * 1024, peaks
        sink.is_writable = True
        hub.resume(sink)
        await settle(hub, db, timeout=30)
        assert list(sink.offsets) == written
        assert hub.stats()["catching_up"] == 0
        await hub.close()

    try:
        asyncio.run(main())
    finally:
        db.close()

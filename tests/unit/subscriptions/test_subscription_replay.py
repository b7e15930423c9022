"""Replay from ``from_offset``, catch-up of slow subscribers, and lost history."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hub_testkit import TOGGLE, FakeSink, applied_offsets, settle

from pyrstmdb import Database
from pyrstmdb.storage.store import FIRST_OFFSET, Logged
from pyrstmdb.subscriptions import HISTORY_LOST, Hub

EVENTS = ("GO", "BACK")


def toggle_db(path: Path | None = None, **kw: Any) -> Database:
    db = Database(None if path is None else str(path), **kw)
    db.put_machine("toggle", 1, TOGGLE)
    return db


def flip(db: Database, instance: str, times: int, start: int = 0) -> list[int]:
    """Apply GO/BACK alternately (``start`` transitions already done); return the offsets."""
    return [
        db.apply_event(instance, EVENTS[(start + n) % 2], payload={"n": start + n}).wal_offset
        for n in range(times)
    ]


def watch(hub: Hub, sink: FakeSink, from_offset: int | None, **kw: Any) -> dict[str, Any]:
    args = {"machines": [], "from_states": [], "to_states": [], "events": [], **kw}
    result = hub.watch_all(sink, from_offset=from_offset, **args)
    hub.activate(sink, result["subscription_id"])
    return result


def test_replay_sends_history_with_the_ctx_of_the_time_then_live() -> None:
    db = toggle_db()
    db.create_instance("toggle", 1, instance_id="t", initial_ctx={"n": -1})
    past = flip(db, "t", 5)

    async def main() -> None:
        hub = Hub(db.core, asyncio.get_running_loop())
        sink = FakeSink()
        result = watch(hub, sink, past[2])
        assert result["history_start"] == FIRST_OFFSET and result["history_truncated"] is False
        live = flip(db, "t", 3, start=5)
        await settle(hub, db)
        assert sink.offsets() == past[2:] + live
        assert [m["ctx"] for m in sink.events()] == [{"n": n} for n in range(2, 8)]
        assert [m["payload"] for m in sink.events()] == [{"n": n} for n in range(2, 8)]
        await hub.close()

    asyncio.run(main())


@pytest.mark.parametrize("where", ["zero", "first", "between", "head", "future"])
def test_from_offset_is_inclusive_wherever_it_points(where: str) -> None:
    db = toggle_db()
    db.create_instance("toggle", 1, instance_id="t")
    past = flip(db, "t", 4)
    head = db.wal_stats().latest_offset
    from_offset = {
        "zero": 0,
        "first": past[0],
        "between": past[1] + 1,  # no record starts here in a durable log; here it is past[2]
        "head": head,
        "future": head + 3,
    }[where]

    async def main() -> None:
        hub = Hub(db.core, asyncio.get_running_loop(), read_chunk_records=2)
        sink = FakeSink()
        watch(hub, sink, from_offset)
        live = flip(db, "t", 6, start=4)
        await settle(hub, db)
        assert sink.offsets() == [o for o in past + live if o >= from_offset]
        await hub.close()

    asyncio.run(main())


def test_watch_instance_replays_its_own_history() -> None:
    db = toggle_db()
    db.create_instance("toggle", 1, instance_id="t")
    db.create_instance("toggle", 1, instance_id="u")
    mine = flip(db, "t", 2)
    flip(db, "u", 2)

    async def main() -> None:
        hub = Hub(db.core, asyncio.get_running_loop())
        sink = FakeSink()
        result = hub.watch_instance(sink, "t", from_offset=0)
        assert result["current_wal_offset"] == mine[-1] and result["history_truncated"] is False
        flip(db, "u", 1, start=2)
        await settle(hub, db)
        assert sink.messages == []  # nothing before activate
        hub.activate(sink, result["subscription_id"])
        mine.extend(flip(db, "t", 2, start=2))
        await settle(hub, db)
        assert sink.offsets() == mine
        await hub.close()

    asyncio.run(main())


def test_replay_during_concurrent_writers_has_no_gap_or_duplicate() -> None:
    db = toggle_db()
    names = [f"t{i}" for i in range(4)]
    for name in names:
        db.create_instance("toggle", 1, instance_id=name)
    for name in names:
        flip(db, name, 50)

    def writer(name: str) -> None:
        flip(db, name, 200, start=50)

    async def main() -> None:
        hub = Hub(db.core, asyncio.get_running_loop(), buffer_events=16, read_chunk_records=7)
        threads = [threading.Thread(target=writer, args=(n,)) for n in names]
        for t in threads:
            t.start()
        sinks: list[tuple[FakeSink, int]] = []
        for i in range(12):
            await asyncio.sleep(0.001)
            sink = FakeSink()
            from_offset = FIRST_OFFSET + 17 * i
            watch(hub, sink, from_offset, events=["GO"] if i % 3 == 0 else [])
            sinks.append((sink, from_offset))
        while any(t.is_alive() for t in threads):
            await asyncio.sleep(0.005)
        await settle(hub, db)
        for i, (sink, from_offset) in enumerate(sinks):
            keep = (lambda e: e["event"] == "GO") if i % 3 == 0 else None
            assert sink.offsets() == applied_offsets(db, keep, from_offset)
        await hub.close()

    asyncio.run(main())


def test_many_subscribers_replaying_the_same_range_share_reads() -> None:
    db = toggle_db()
    db.create_instance("toggle", 1, instance_id="t")
    past = flip(db, "t", 400)
    calls: list[int] = []
    store = db.core.store  # the core may be compiled: count at the (interpreted) store
    original = store.logged_from

    def counting(from_offset: int, end: int) -> Iterator[Logged]:
        calls.append(from_offset)
        return original(from_offset, end)

    store.logged_from = counting  # type: ignore[method-assign]

    async def main() -> None:
        hub = Hub(db.core, asyncio.get_running_loop(), read_chunk_records=100)
        sinks = [FakeSink() for _ in range(20)]
        for sink in sinks:
            watch(hub, sink, past[0])
        await settle(hub, db)
        for sink in sinks:
            assert sink.offsets() == past
        assert len(calls) <= 2 * 4  # four chunks, shared by all twenty subscribers
        await hub.close()

    asyncio.run(main())


# -- slow subscribers ----------------------------------------------------------------------


def test_a_blocked_subscriber_falls_back_to_the_log_and_gets_everything() -> None:
    db = toggle_db()
    db.create_instance("toggle", 1, instance_id="t")

    async def main() -> None:
        hub = Hub(db.core, asyncio.get_running_loop(), buffer_events=8, read_chunk_records=16)
        slow, fast = FakeSink(writable=False), FakeSink()
        watch(hub, slow, None)
        watch(hub, fast, None)
        offsets: list[int] = []
        for n in range(0, 300, 10):
            offsets += flip(db, "t", 10, start=n)
            await asyncio.sleep(0)
            assert hub.stats()["buffer_max"] <= 8
        await settle(hub, db)
        assert slow.messages == []
        assert hub.stats()["catching_up"] == 1 and hub.stats()["buffered"] == 0
        slow.is_writable = True
        hub.resume(slow)
        await settle(hub, db)
        assert slow.offsets() == offsets
        assert fast.offsets() == offsets
        stats = hub.stats()
        assert stats["catching_up"] == 0 and stats["fell_behind"] == 1
        more = flip(db, "t", 3, start=300)
        await settle(hub, db)
        assert slow.offsets()[-3:] == more
        await hub.close()

    asyncio.run(main())


def test_a_sink_that_blocks_mid_catch_up_resumes_where_it_stopped() -> None:
    class Choppy(FakeSink):
        """Turns unwritable after every ``burst`` messages until resumed."""

        def __init__(self, burst: int) -> None:
            super().__init__()
            self.burst = burst

        def send_event(self, message: dict[str, Any]) -> None:
            super().send_event(message)
            if len(self.messages) % self.burst == 0:
                self.is_writable = False

    db = toggle_db()
    db.create_instance("toggle", 1, instance_id="t")
    past = flip(db, "t", 200)

    async def main() -> None:
        hub = Hub(db.core, asyncio.get_running_loop(), buffer_events=4, read_chunk_records=32)
        sink = Choppy(burst=9)
        watch(hub, sink, 0)
        live: list[int] = []
        for round_ in range(60):
            live += flip(db, "t", 2, start=200 + 2 * round_)
            await asyncio.sleep(0.001)
            sink.is_writable = True
            if round_ % 2:
                hub.resume(sink)  # otherwise the next batch finds the sink writable
        sink.is_writable = True
        hub.resume(sink)
        await settle(hub, db)
        assert sink.offsets() == past + live
        await hub.close()

    asyncio.run(main())


def test_a_subscription_unwatched_while_its_read_is_in_flight_gets_nothing() -> None:
    db = toggle_db()
    db.create_instance("toggle", 1, instance_id="t")
    flip(db, "t", 50)

    async def main() -> None:
        hub = Hub(db.core, asyncio.get_running_loop())
        sink = FakeSink()
        result = watch(hub, sink, 0)
        assert hub.stats()["reads_in_flight"] == 1
        assert hub.unwatch(sink, result["subscription_id"]) is True
        await settle(hub, db)
        assert sink.messages == []
        await hub.close()

    asyncio.run(main())


# -- lost history -----------------------------------------------------------------------------


def test_watch_below_compacted_history_says_so_in_its_result() -> None:
    db = toggle_db()
    db.create_instance("toggle", 1, instance_id="t")
    flip(db, "t", 5)
    db.compact()
    kept = flip(db, "t", 3, start=5)

    async def main() -> None:
        hub = Hub(db.core, asyncio.get_running_loop())
        sink = FakeSink()
        result = watch(hub, sink, 0)
        assert result["history_truncated"] is True
        assert result["history_start"] == kept[0] == db.core.store.history_start
        instance = hub.watch_instance(sink, "t", from_offset=kept[1])
        assert instance["history_truncated"] is False
        hub.activate(sink, instance["subscription_id"])
        await settle(hub, db)
        assert sink.offsets(result["subscription_id"]) == kept
        assert sink.offsets(instance["subscription_id"]) == kept[1:]
        assert sink.notices() == []
        await hub.close()

    asyncio.run(main())


def test_a_subscriber_whose_owed_history_was_compacted_gets_a_notice() -> None:
    db = toggle_db()
    db.create_instance("toggle", 1, instance_id="t")

    async def main() -> None:
        hub = Hub(db.core, asyncio.get_running_loop(), buffer_events=4)
        sink = FakeSink(writable=False)
        sub_id = watch(hub, sink, None)["subscription_id"]
        lost = flip(db, "t", 10)
        await settle(hub, db)
        db.compact()
        after = flip(db, "t", 3, start=10)
        sink.is_writable = True
        hub.resume(sink)
        await settle(hub, db)
        assert sink.messages[0] == {
            "type": "notice",
            "subscription_id": sub_id,
            "code": HISTORY_LOST,
            "lost_from": lost[0],
            "resumed_at": after[0],
        }
        assert sink.offsets() == after
        assert hub.stats()["history_lost"] == 1
        await hub.close()

    asyncio.run(main())


# -- durable store ------------------------------------------------------------------------------


def test_replay_after_a_restart_comes_from_disk(tmp_path: Path) -> None:
    db = toggle_db(tmp_path / "db")
    db.create_instance("toggle", 1, instance_id="t", initial_ctx={"n": -1})
    before = flip(db, "t", 20)
    db.close()
    db = Database(str(tmp_path / "db"))

    async def main() -> None:
        hub = Hub(db.core, asyncio.get_running_loop(), read_chunk_records=8)
        sink = FakeSink()
        watch(hub, sink, 0, include_ctx=True)
        after = flip(db, "t", 5, start=20)
        await settle(hub, db)
        assert sink.offsets() == before + after
        assert [m["ctx"]["n"] for m in sink.events()] == list(range(25))
        await hub.close()

    try:
        asyncio.run(main())
    finally:
        db.close()


def test_durable_compaction_under_a_lagging_subscriber(tmp_path: Path) -> None:
    db = toggle_db(tmp_path / "db", wal_segment_size_mb=1)
    db.create_instance("toggle", 1, instance_id="t")
    blob = "x" * 2000

    def bulk(start: int, count: int) -> list[int]:
        ops = [
            {
                "op": "APPLY_EVENT",
                "params": {
                    "instance_id": "t",
                    "event": EVENTS[(start + n) % 2],
                    "payload": {"b": blob},
                },
            }
            for n in range(count)
        ]
        return [item.result.wal_offset for item in db.batch(ops).results]  # type: ignore[union-attr]

    async def main() -> None:
        hub = Hub(db.core, asyncio.get_running_loop(), buffer_events=16)
        sink = FakeSink(writable=False)
        sub_id = watch(hub, sink, None)["subscription_id"]
        lost: list[int] = []
        for n in range(0, 1000, 100):  # about 2 MB: the log rolls over to new segments
            lost += bulk(n, 100)
        await settle(hub, db)
        assert db.compact(force_snapshot=True).segments_deleted >= 1
        start = db.core.store.history_start
        assert start > lost[0]
        sink.is_writable = True
        hub.resume(sink)
        await settle(hub, db)
        (notice,) = sink.notices()
        assert (notice["subscription_id"], notice["lost_from"]) == (sub_id, lost[0])
        assert notice["resumed_at"] == start
        assert sink.offsets() == [o for o in lost if o >= start]
        result = watch(hub, FakeSink(), 0)
        assert (result["history_start"], result["history_truncated"]) == (start, True)
        await hub.close()

    try:
        asyncio.run(main())
    finally:
        db.close()

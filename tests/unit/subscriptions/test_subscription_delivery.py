"""The hub's live delivery: event fields, filters, watch/unwatch/drop, activation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hub_testkit import TOGGLE, FakeSink, settle

from pyrstmdb import Database, GuardFailed, InstanceNotFound, InvalidTransition
from pyrstmdb.subscriptions import Hub

Scenario = Callable[[Database, Hub], Awaitable[None]]


@pytest.fixture
def db(order_machine: dict[str, Any], approval_machine: dict[str, Any]) -> Database:
    database = Database()
    database.put_machine("order", 1, order_machine)
    database.put_machine("order", 2, order_machine)
    database.put_machine("approval", 1, approval_machine)
    database.put_machine("toggle", 1, TOGGLE)
    return database


def run(db: Database, scenario: Scenario) -> None:
    async def main() -> None:
        hub = Hub(db.core, asyncio.get_running_loop())
        try:
            await scenario(db, hub)
        finally:
            await hub.close()

    asyncio.run(main())


def watch_all(hub: Hub, sink: FakeSink, **kw: Any) -> str:
    args = {"machines": [], "from_states": [], "to_states": [], "events": [], **kw}
    result = hub.watch_all(sink, **args)
    hub.activate(sink, result["subscription_id"])
    sub_id: str = result["subscription_id"]
    return sub_id


# -- message shape -----------------------------------------------------------------------


def test_event_message_fields_are_exact(db: Database) -> None:
    async def scenario(db: Database, hub: Hub) -> None:
        db.create_instance("order", 1, instance_id="o-1", initial_ctx={"customer": "alice"})
        sink = FakeSink()
        result = hub.watch_all(sink, [], [], [], [])
        assert set(result) == {"subscription_id", "wal_offset"}
        assert result["wal_offset"] == db.wal_stats().latest_offset
        sub_id = result["subscription_id"]
        assert sub_id.startswith("sub-") and len(sub_id) == 40
        hub.activate(sink, sub_id)
        applied = db.apply_event("o-1", "PAY", payload={"amount": 10})
        await settle(hub, db)
        assert sink.messages == [
            {
                "type": "event",
                "subscription_id": sub_id,
                "instance_id": "o-1",
                "machine": "order",
                "version": 1,
                "wal_offset": applied.wal_offset,
                "from_state": "created",
                "to_state": "paid",
                "event": "PAY",
                "payload": {"amount": 10},
                "ctx": {"customer": "alice", "amount": 10},
            }
        ]
        assert list(sink.messages[0]) == [
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
            "ctx",
        ]

    run(db, scenario)


def test_payload_is_null_without_one_and_ctx_absent_without_include_ctx(db: Database) -> None:
    async def scenario(db: Database, hub: Hub) -> None:
        db.create_instance("order", 2, instance_id="o-1", initial_ctx={"k": 1})
        with_ctx, without_ctx = FakeSink(), FakeSink()
        watch_all(hub, with_ctx)
        watch_all(hub, without_ctx, include_ctx=False)
        db.apply_event("o-1", "PAY")
        await settle(hub, db)
        (full,) = with_ctx.events()
        (bare,) = without_ctx.events()
        assert full["payload"] is None and full["ctx"] == {"k": 1} and full["version"] == 2
        assert bare["payload"] is None and "ctx" not in bare
        assert {k: v for k, v in full.items() if k not in ("ctx", "subscription_id")} == {
            k: v for k, v in bare.items() if k != "subscription_id"
        }

    run(db, scenario)


# -- filters -------------------------------------------------------------------------------


def _traffic(db: Database) -> dict[str, int]:
    """A fixed mix of transitions; returns name -> offset."""
    db.create_instance("order", 1, instance_id="o1")
    db.create_instance("order", 2, instance_id="o2")
    db.create_instance("approval", 1, instance_id="a1", initial_ctx={"amount": 5})
    db.create_instance("approval", 1, instance_id="a2", initial_ctx={"amount": 5})
    db.create_instance("toggle", 1, instance_id="t1")
    steps = [
        ("o1_pay", "o1", "PAY"),
        ("o2_pay", "o2", "PAY"),
        ("o1_ship", "o1", "SHIP"),
        ("a1_approve", "a1", "APPROVE"),
        ("a2_reject", "a2", "REJECT"),
        ("t1_go", "t1", "GO"),
        ("t1_back", "t1", "BACK"),
        ("o2_ship", "o2", "SHIP"),
    ]
    return {name: db.apply_event(i, e).wal_offset for name, i, e in steps}


FILTER_CASES: list[tuple[dict[str, list[str]], list[str]]] = [
    ({}, ["o1_pay", "o2_pay", "o1_ship", "a1_approve", "a2_reject", "t1_go", "t1_back", "o2_ship"]),
    ({"machines": ["order"]}, ["o1_pay", "o2_pay", "o1_ship", "o2_ship"]),
    ({"machines": ["approval", "toggle"]}, ["a1_approve", "a2_reject", "t1_go", "t1_back"]),
    ({"machines": ["nope"]}, []),
    ({"from_states": ["paid"]}, ["o1_ship", "o2_ship"]),
    ({"from_states": ["created", "b"]}, ["o1_pay", "o2_pay", "t1_back"]),
    ({"to_states": ["rejected", "approved"]}, ["a1_approve", "a2_reject"]),
    ({"to_states": ["a"]}, ["t1_back"]),
    ({"events": ["SHIP"]}, ["o1_ship", "o2_ship"]),
    ({"events": ["GO", "APPROVE"]}, ["a1_approve", "t1_go"]),
    ({"machines": ["order"], "events": ["PAY"]}, ["o1_pay", "o2_pay"]),
    (
        {"machines": ["order"], "from_states": ["paid"], "to_states": ["shipped"]},
        ["o1_ship", "o2_ship"],
    ),
    ({"machines": ["toggle"], "events": ["PAY"]}, []),
    (
        {"machines": ["order", "toggle"], "from_states": ["a", "paid"], "events": ["GO", "SHIP"]},
        ["o1_ship", "t1_go", "o2_ship"],
    ),
    ({"from_states": ["pending"], "to_states": ["approved"], "events": ["REJECT"]}, []),
]


@pytest.mark.parametrize(("filters", "expected"), FILTER_CASES)
def test_watch_all_filters(
    db: Database, filters: dict[str, list[str]], expected: list[str]
) -> None:
    async def scenario(db: Database, hub: Hub) -> None:
        sink = FakeSink()
        sub_id = watch_all(hub, sink, **filters)
        offsets = _traffic(db)
        await settle(hub, db)
        assert sink.offsets(sub_id) == [offsets[name] for name in expected]

    run(db, scenario)


def test_watch_instance_sees_only_its_instance(db: Database) -> None:
    async def scenario(db: Database, hub: Hub) -> None:
        db.create_instance("order", 1, instance_id="o1", initial_ctx={"c": 1})
        db.create_instance("order", 1, instance_id="o2")
        paid = db.apply_event("o1", "PAY")
        sink = FakeSink()
        result = hub.watch_instance(sink, "o1")
        assert result == {
            "subscription_id": result["subscription_id"],
            "instance_id": "o1",
            "current_state": "paid",
            "current_wal_offset": paid.wal_offset,
        }
        hub.activate(sink, result["subscription_id"])
        db.apply_event("o2", "PAY")
        shipped = db.apply_event("o1", "SHIP", payload={"carrier": "x"})
        db.apply_event("o2", "SHIP")
        await settle(hub, db)
        (event,) = sink.events()
        assert event["wal_offset"] == shipped.wal_offset
        assert (event["instance_id"], event["event"], event["ctx"]) == (
            "o1",
            "SHIP",
            {"c": 1, "carrier": "x"},
        )
        assert hub.stats()["instance"] == 1 and hub.stats()["events_instance"] == 1

    run(db, scenario)


def test_watch_instance_refuses_unknown_and_deleted(db: Database) -> None:
    async def scenario(db: Database, hub: Hub) -> None:
        db.create_instance("order", 1, instance_id="gone")
        db.delete_instance("gone")
        sink = FakeSink()
        with pytest.raises(InstanceNotFound):
            hub.watch_instance(sink, "nope")
        with pytest.raises(InstanceNotFound):
            hub.watch_instance(sink, "gone")
        assert hub.stats()["instance"] == 0

    run(db, scenario)


# -- what produces events --------------------------------------------------------------------


def test_only_applied_apply_events_are_published(db: Database) -> None:
    async def scenario(db: Database, hub: Hub) -> None:
        sink = FakeSink()
        watch_all(hub, sink)
        db.create_instance("order", 1, instance_id="o1")
        db.create_instance("approval", 1, instance_id="big", initial_ctx={"amount": 5000})
        first = db.apply_event("o1", "PAY", idempotency_key="k1")
        again = db.apply_event("o1", "PAY", idempotency_key="k1")
        assert again.applied is False and again.wal_offset == first.wal_offset
        with pytest.raises(InvalidTransition):
            db.apply_event("o1", "PAY")
        with pytest.raises(GuardFailed):
            db.apply_event("big", "APPROVE")
        with pytest.raises(Exception):  # noqa: B017 - any failure: nothing is written
            db.batch(
                [
                    {"op": "APPLY_EVENT", "params": {"instance_id": "o1", "event": "SHIP"}},
                    {"op": "APPLY_EVENT", "params": {"instance_id": "o1", "event": "PAY"}},
                ]
            )
        batch = db.batch(
            [
                {"op": "APPLY_EVENT", "params": {"instance_id": "o1", "event": "SHIP"}},
                {"op": "APPLY_EVENT", "params": {"instance_id": "big", "event": "REJECT"}},
                {"op": "CREATE_INSTANCE", "params": {"machine": "toggle", "version": 1}},
            ]
        )
        db.delete_instance("o1")
        db.put_machine("toggle", 2, TOGGLE)
        await settle(hub, db)
        batch_offsets = [item.result.wal_offset for item in batch.results[:2]]  # type: ignore[union-attr]
        assert sink.offsets() == [first.wal_offset, *batch_offsets]
        assert [m["event"] for m in sink.events()] == ["PAY", "SHIP", "REJECT"]

    run(db, scenario)


def test_each_matching_subscription_gets_its_own_message(db: Database) -> None:
    async def scenario(db: Database, hub: Hub) -> None:
        db.create_instance("order", 1, instance_id="o1")
        sink = FakeSink()
        first = watch_all(hub, sink)
        second = watch_all(hub, sink, events=["PAY"])
        third = hub.watch_instance(sink, "o1")["subscription_id"]
        hub.activate(sink, third)
        other = watch_all(hub, sink, events=["SHIP"])
        paid = db.apply_event("o1", "PAY")
        await settle(hub, db)
        assert [m["subscription_id"] for m in sink.events()] == [first, second, third]
        assert sink.offsets() == [paid.wal_offset] * 3
        assert sink.events(other) == []
        assert len({first, second, third, other}) == 4
        stats = hub.stats()
        assert (stats["all"], stats["instance"], stats["events_all"], stats["events_instance"]) == (
            3,
            1,
            2,
            1,
        )

    run(db, scenario)


# -- lifecycle ---------------------------------------------------------------------------------


def test_unwatch_stops_delivery_and_a_second_unwatch_is_false(db: Database) -> None:
    async def scenario(db: Database, hub: Hub) -> None:
        db.create_instance("toggle", 1, instance_id="t")
        sink, stranger = FakeSink(), FakeSink()
        gone = watch_all(hub, sink)
        kept = watch_all(hub, sink)
        db.apply_event("t", "GO")
        await settle(hub, db)
        assert hub.unwatch(stranger, gone) is False
        assert hub.unwatch(sink, gone) is True
        assert hub.unwatch(sink, gone) is False
        assert hub.unwatch(sink, "sub-unknown") is False
        back = db.apply_event("t", "BACK")
        await settle(hub, db)
        assert len(sink.events(gone)) == 1
        assert sink.offsets(kept)[-1] == back.wal_offset
        assert hub.stats()["all"] == 1

    run(db, scenario)


def test_unwatch_discards_events_buffered_for_a_blocked_sink(db: Database) -> None:
    async def scenario(db: Database, hub: Hub) -> None:
        db.create_instance("toggle", 1, instance_id="t")
        sink = FakeSink(writable=False)
        sub_id = watch_all(hub, sink)
        db.apply_event("t", "GO")
        db.apply_event("t", "BACK")
        await settle(hub, db)
        assert hub.stats()["buffered"] == 2
        assert hub.unwatch(sink, sub_id) is True
        sink.is_writable = True
        hub.resume(sink)
        db.apply_event("t", "GO")
        await settle(hub, db)
        assert sink.messages == [] and hub.stats()["buffered"] == 0

    run(db, scenario)


def test_drop_removes_every_subscription_of_the_sink_only(db: Database) -> None:
    async def scenario(db: Database, hub: Hub) -> None:
        db.create_instance("toggle", 1, instance_id="t")
        sink, other = FakeSink(), FakeSink()
        ids = [watch_all(hub, sink), watch_all(hub, sink, machines=["toggle"])]
        instance_sub = hub.watch_instance(sink, "t")["subscription_id"]
        hub.activate(sink, instance_sub)
        other_id = watch_all(hub, other)
        hub.drop(sink)
        hub.drop(sink)  # twice is harmless
        go = db.apply_event("t", "GO")
        await settle(hub, db)
        assert sink.messages == []
        assert other.offsets(other_id) == [go.wal_offset]
        assert all(hub.unwatch(sink, i) is False for i in [*ids, instance_sub])
        assert (hub.stats()["all"], hub.stats()["instance"]) == (1, 0)

    run(db, scenario)


def test_nothing_is_sent_before_activate_and_then_in_order(db: Database) -> None:
    async def scenario(db: Database, hub: Hub) -> None:
        db.create_instance("toggle", 1, instance_id="t")
        sink = FakeSink()
        result = hub.watch_all(sink, [], [], [], [])
        offsets = [db.apply_event("t", e).wal_offset for e in ("GO", "BACK", "GO")]
        await settle(hub, db)
        assert sink.messages == []
        hub.activate(sink, "sub-not-mine")
        hub.activate(FakeSink(), result["subscription_id"])
        assert sink.messages == []
        hub.activate(sink, result["subscription_id"])
        assert sink.offsets() == offsets
        hub.activate(sink, result["subscription_id"])  # a second activate changes nothing
        assert sink.offsets() == offsets

    run(db, scenario)


def test_watch_instance_delivers_events_after_its_current_state(db: Database) -> None:
    """Records already in ``current_state`` but not yet handed to the hub are not repeated."""

    async def scenario(db: Database, hub: Hub) -> None:
        db.create_instance("toggle", 1, instance_id="t")
        # The write happens on the loop thread, so the hub has not processed it yet.
        go = db.apply_event("t", "GO")
        sink = FakeSink()
        result = hub.watch_instance(sink, "t")
        assert (result["current_state"], result["current_wal_offset"]) == ("b", go.wal_offset)
        hub.activate(sink, result["subscription_id"])
        back = db.apply_event("t", "BACK")
        await settle(hub, db)
        assert sink.offsets() == [back.wal_offset]

    run(db, scenario)


def test_watch_all_without_from_offset_misses_nothing_racing_it(db: Database) -> None:
    async def scenario(db: Database, hub: Hub) -> None:
        db.create_instance("toggle", 1, instance_id="t")
        sink = FakeSink()
        await settle(hub, db)
        racing = db.apply_event("t", "GO")  # not yet handed to the hub
        result = hub.watch_all(sink, [], [], [], [])
        assert result["wal_offset"] > racing.wal_offset
        hub.activate(sink, result["subscription_id"])
        later = db.apply_event("t", "BACK")
        await settle(hub, db)
        assert sink.offsets() == [racing.wal_offset, later.wal_offset]

    run(db, scenario)


def test_a_failing_sink_loses_its_subscriptions(db: Database) -> None:
    class Broken(FakeSink):
        def send_event(self, message: dict[str, Any]) -> None:
            raise ConnectionResetError("gone")

    async def scenario(db: Database, hub: Hub) -> None:
        db.create_instance("toggle", 1, instance_id="t")
        broken, fine = Broken(), FakeSink()
        watch_all(hub, broken)
        watch_all(hub, broken)
        fine_id = watch_all(hub, fine)
        go = db.apply_event("t", "GO")
        await settle(hub, db)
        assert hub.stats()["all"] == 1
        assert fine.offsets(fine_id) == [go.wal_offset]

    run(db, scenario)


def test_close_stops_everything(db: Database) -> None:
    async def main() -> None:
        hub = Hub(db.core, asyncio.get_running_loop())
        db.create_instance("toggle", 1, instance_id="t")
        sink = FakeSink()
        watch_all(hub, sink)
        await hub.close()
        await hub.close()
        db.apply_event("t", "GO")
        await asyncio.sleep(0.01)
        assert sink.messages == []
        assert hub.stats()["all"] == 0

    asyncio.run(main())
    db.apply_event("t", "BACK")  # the listener is gone: writes after the loop closed are fine

"""Subscription semantics over real TCP connections to the ``rstmdb`` process.

Filters (each kind alone, AND across kinds, OR within one), the exact PROTOCOL §5
event as it travels on the wire (with and without ``ctx``), several subscriptions
on one connection, UNWATCH in the middle of a stream, WATCH_INSTANCE on a
deleted instance, and which writes publish events at all. The official client
watches where it can; raw sockets check the bytes it would hide.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from rstmdb import Client, ServerError
from server_harness import RawClient, ServerProcess
from sub_wire import (
    EVENT_KEYS,
    ORDER,
    TICKET,
    TOGGLE,
    Json,
    WireClient,
    apply_all,
    next_official_event,
    official_queue_empty,
    put_machines,
)

from pyrstmdb.protocol import Event, Response


@pytest.fixture(scope="module")
def server(rstmdb_module_server: Callable[..., ServerProcess]) -> ServerProcess:
    server = rstmdb_module_server()

    async def setup() -> None:
        client = await WireClient.open(server.host, server.port)
        order_v2 = {**ORDER, "transitions": ORDER["transitions"][:2]}
        machines = [("order", 1, ORDER), ("order", 2, order_v2), ("ticket", 1, TICKET)]
        await put_machines(client, [*machines, ("toggle", 1, TOGGLE)])
        await client.close()

    asyncio.run(setup())
    return server


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# -- filters through the official client ---------------------------------------------------

# (instance, machine, version, events to apply in order)
SCRIPT: list[tuple[str, str, int, list[str]]] = [
    ("o1", "order", 1, ["PAY", "REFUND", "PAY", "SHIP"]),
    ("o2", "order", 2, ["PAY", "SHIP"]),
    ("t1", "ticket", 1, ["PAY", "CLOSE", "REOPEN"]),
]

Predicate = Callable[[str, str, str, str], bool]  # machine, from, to, event

FILTERS: list[tuple[str, dict[str, list[str]], Predicate]] = [
    ("machines", {"machines": ["order"]}, lambda m, f, t, e: m == "order"),
    ("machines-other", {"machines": ["ticket"]}, lambda m, f, t, e: m == "ticket"),
    ("from_states", {"from_states": ["paid"]}, lambda m, f, t, e: f == "paid"),
    ("to_states", {"to_states": ["paid"]}, lambda m, f, t, e: t == "paid"),
    ("events", {"events": ["SHIP"]}, lambda m, f, t, e: e == "SHIP"),
    (
        "or-within",
        {"events": ["SHIP", "CLOSE", "REOPEN"]},
        lambda m, f, t, e: e in ("SHIP", "CLOSE", "REOPEN"),
    ),
    (
        "and-across",
        {"machines": ["order"], "to_states": ["paid"]},
        lambda m, f, t, e: m == "order" and t == "paid",
    ),
    (
        "or-and",
        {"from_states": ["paid", "closed"], "to_states": ["created", "open"]},
        lambda m, f, t, e: f in ("paid", "closed") and t in ("created", "open"),
    ),
    (
        "all-four",
        {
            "machines": ["ticket", "order"],
            "from_states": ["open", "paid"],
            "to_states": ["paid", "closed"],
            "events": ["PAY", "CLOSE"],
        },
        lambda m, f, t, e: f in ("open", "paid") and t in ("paid", "closed") and e != "SHIP",
    ),
    ("disjoint", {"machines": ["order"], "events": ["CLOSE"]}, lambda m, f, t, e: False),
    ("exact-case", {"machines": ["Order"], "to_states": ["PAID"]}, lambda m, f, t, e: False),
]


async def run_script(writer: Client, tag: str) -> list[dict[str, Any]]:
    """Apply ``SCRIPT`` on fresh instances; one dict per applied event, in write order."""
    done: list[dict[str, Any]] = []
    for name, machine, version, events in SCRIPT:
        instance_id = f"{tag}-{name}"
        await writer.create_instance(machine, version, instance_id=instance_id)
        for event in events:
            result = await writer.apply_event(instance_id, event)
            done.append(
                {
                    "instance_id": instance_id,
                    "machine": machine,
                    "version": version,
                    "from_state": result.from_state,
                    "to_state": result.to_state,
                    "event": event,
                    "wal_offset": result.wal_offset,
                }
            )
    return done


async def events_until(client: Client, sentinel_sub: str) -> list[Any]:
    """Every queued event up to the first one of ``sentinel_sub`` (excluded)."""
    seen: list[Any] = []
    while True:
        event = await next_official_event(client)
        if event.subscription_id == sentinel_sub:
            return seen
        seen.append(event)


@pytest.mark.parametrize(("name", "lists", "wanted"), FILTERS, ids=[f[0] for f in FILTERS])
def test_watch_all_filter(
    server: ServerProcess, name: str, lists: dict[str, list[str]], wanted: Predicate
) -> None:
    async def main() -> None:
        tag = unique(name)
        async with (
            Client(server.host, server.port) as watcher,
            Client(server.host, server.port) as writer,
        ):
            watch = await watcher.watch_all(**lists)
            sentinel_id = f"{tag}-sentinel"
            await writer.create_instance("toggle", 1, instance_id=sentinel_id)
            sentinel = await watcher.watch_instance(sentinel_id)
            done = await run_script(writer, tag)
            await writer.apply_event(sentinel_id, "GO")
            received = await events_until(watcher, sentinel.subscription_id)
            expected = [
                d for d in done if wanted(d["machine"], d["from_state"], d["to_state"], d["event"])
            ]
            assert [e.subscription_id for e in received] == [watch.subscription_id] * len(received)
            got = (
                [{key: getattr(e, key) for key in expected[0]} for e in received]
                if expected
                else []
            )
            assert got == expected
            assert received or not expected
            await asyncio.sleep(0.1)
            assert official_queue_empty(watcher)

    asyncio.run(main())


def test_each_matching_subscription_of_one_connection_gets_its_own_copy(
    server: ServerProcess,
) -> None:
    async def main() -> None:
        instance_id = unique("copies")
        async with (
            Client(server.host, server.port) as watcher,
            Client(server.host, server.port) as writer,
        ):
            await writer.create_instance("ticket", 1, instance_id=instance_id, initial_ctx={"k": 1})
            subs = [
                (await watcher.watch_all(machines=["ticket"])).subscription_id,
                (
                    await watcher.watch_all(events=["PAY", "CLOSE"], include_ctx=False)
                ).subscription_id,
                (await watcher.watch_instance(instance_id)).subscription_id,
            ]
            assert len(set(subs)) == 3
            paid = await writer.apply_event(instance_id, "PAY", payload={"a": 1})
            closed = await writer.apply_event(instance_id, "CLOSE", payload={"b": 2})
            received = [await next_official_event(watcher) for _ in range(6)]
            per_sub: dict[str, list[Any]] = {}
            for event in received:
                per_sub.setdefault(event.subscription_id, []).append(event)
            assert set(per_sub) == set(subs)
            for sub in subs:
                offsets = [e.wal_offset for e in per_sub[sub]]
                assert offsets == [paid.wal_offset, closed.wal_offset]
                assert [e.payload for e in per_sub[sub]] == [{"a": 1}, {"b": 2}]
            assert [e.ctx for e in per_sub[subs[0]]] == [paid.ctx, closed.ctx]
            assert [e.ctx for e in per_sub[subs[1]]] == [None, None]
            assert [e.ctx for e in per_sub[subs[2]]] == [{"k": 1, "a": 1}, {"k": 1, "a": 1, "b": 2}]
            await asyncio.sleep(0.1)
            assert official_queue_empty(watcher)

    asyncio.run(main())


def test_watch_instance_of_a_deleted_instance_is_refused(server: ServerProcess) -> None:
    async def main() -> None:
        instance_id = unique("deleted")
        async with (
            Client(server.host, server.port) as watcher,
            Client(server.host, server.port) as writer,
        ):
            await writer.create_instance("order", 1, instance_id=instance_id)
            watch = await watcher.watch_instance(instance_id)
            await writer.apply_event(instance_id, "PAY")
            await writer.delete_instance(instance_id)
            event = await next_official_event(watcher)
            assert (event.subscription_id, event.event) == (watch.subscription_id, "PAY")
            with pytest.raises(ServerError) as refused:
                await watcher.watch_instance(instance_id)
            assert refused.value.code.value == "INSTANCE_NOT_FOUND"
            await asyncio.sleep(0.1)
            assert official_queue_empty(watcher)  # the delete itself published nothing

    asyncio.run(main())
    with server.raw() as raw:
        response = raw.call("WATCH_INSTANCE", {"instance_id": "never-created"})
        assert not response.ok
        assert response.error == {
            "code": "INSTANCE_NOT_FOUND",
            "message": "core error: instance not found: never-created",
            "retryable": False,
            "details": {"instance_id": "never-created"},
        }


# -- the raw event on the wire ----------------------------------------------------------------


def raw_events(client: RawClient, count: int) -> list[Json]:
    events: list[Json] = []
    while len(events) < count:
        message = client.receive()
        assert isinstance(message, Event), message
        events.append(message.fields)
    return events


def assert_nothing_more(client: RawClient) -> None:
    """The next message is the answer to a PING, and nothing follows it for a while."""
    request_id = client.send("PING")
    message = client.receive()
    assert isinstance(message, Response) and message.id == request_id, message
    time.sleep(0.1)
    client.sock.settimeout(0.1)
    with pytest.raises(TimeoutError):
        client.receive()


def ok(response: Response) -> Json:
    assert response.ok, response
    assert response.result is not None
    return response.result


@pytest.mark.parametrize("include_ctx", [True, False, None], ids=["ctx", "no-ctx", "default"])
def test_raw_event_fields_are_exact(server: ServerProcess, include_ctx: bool | None) -> None:
    instance_id = unique("raw")
    with server.raw() as watcher, server.raw() as writer:
        ok(
            writer.call(
                "CREATE_INSTANCE",
                {
                    "machine": "order",
                    "version": 2,
                    "instance_id": instance_id,
                    "initial_ctx": {"c": {"deep": [1, 2]}},
                },
            )
        )
        params: Json = {"machines": ["order"]}
        if include_ctx is not None:
            params["include_ctx"] = include_ctx
        watch_all = ok(watcher.call("WATCH_ALL", params))
        watch_one = ok(
            watcher.call(
                "WATCH_INSTANCE",
                {
                    "instance_id": instance_id,
                    **({} if include_ctx is None else {"include_ctx": include_ctx}),
                },
            )
        )
        paid = ok(
            writer.call(
                "APPLY_EVENT",
                {"instance_id": instance_id, "event": "PAY", "payload": {"amount": 7, "c": "x"}},
            )
        )
        shipped = ok(writer.call("APPLY_EVENT", {"instance_id": instance_id, "event": "SHIP"}))
        events = raw_events(watcher, 4)
    with_ctx = include_ctx is not False
    keys = EVENT_KEYS | {"ctx"} if with_ctx else EVENT_KEYS
    for event in events:
        assert set(event) == keys
    subs = {watch_all["subscription_id"], watch_one["subscription_id"]}
    for sub in subs:
        mine = [e for e in events if e["subscription_id"] == sub]
        expected_paid: Json = {
            "type": "event",
            "subscription_id": sub,
            "instance_id": instance_id,
            "machine": "order",
            "version": 2,
            "wal_offset": paid["wal_offset"],
            "from_state": "created",
            "to_state": "paid",
            "event": "PAY",
            "payload": {"amount": 7, "c": "x"},
        }
        expected_shipped: Json = {
            **expected_paid,
            "wal_offset": shipped["wal_offset"],
            "from_state": "paid",
            "to_state": "shipped",
            "event": "SHIP",
            "payload": None,
        }
        if with_ctx:
            expected_paid["ctx"] = {"c": "x", "amount": 7}
            expected_shipped["ctx"] = {"c": "x", "amount": 7}
            assert paid["ctx"] == expected_paid["ctx"]
        assert mine == [expected_paid, expected_shipped]


def test_only_applied_apply_events_publish(server: ServerProcess) -> None:
    x, y, z = unique("pub-x"), unique("pub-y"), unique("pub-z")
    machine = unique("pubm")
    with server.raw() as watcher, server.raw() as writer:
        ok(watcher.call("WATCH_ALL", {}))

        def call(op: str, params: Json) -> Response:
            return writer.call(op, params)

        published: list[int] = []
        ok(call("PUT_MACHINE", {"machine": machine, "version": 1, "definition": ORDER}))
        ok(call("CREATE_INSTANCE", {"machine": machine, "version": 1, "instance_id": x}))
        ok(
            call(
                "CREATE_INSTANCE",
                {"machine": machine, "version": 1, "instance_id": y, "initial_ctx": {"amount": 5}},
            )
        )
        first = ok(
            call("APPLY_EVENT", {"instance_id": x, "event": "PAY", "idempotency_key": f"k-{x}"})
        )
        published.append(first["wal_offset"])
        replay = ok(
            call("APPLY_EVENT", {"instance_id": x, "event": "PAY", "idempotency_key": f"k-{x}"})
        )
        assert (replay["applied"], replay["wal_offset"]) == (False, first["wal_offset"])
        failures = [
            ({"instance_id": x, "event": "SHIP", "expected_state": "created"}, "CONFLICT"),
            ({"instance_id": x, "event": "NOPE"}, "INVALID_TRANSITION"),
            ({"instance_id": y, "event": "BIG"}, "GUARD_FAILED"),
            ({"instance_id": "absent", "event": "PAY"}, "INSTANCE_NOT_FOUND"),
        ]
        for params, code in failures:
            response = call("APPLY_EVENT", params)
            assert not response.ok and response.error is not None
            assert response.error["code"] == code
        pay_y = {"op": "APPLY_EVENT", "params": {"instance_id": y, "event": "PAY"}}
        bad_y = {"op": "APPLY_EVENT", "params": {"instance_id": y, "event": "NOPE"}}
        atomic = call("BATCH", {"mode": "atomic", "ops": [pay_y, bad_y]})
        assert not atomic.ok
        best = ok(call("BATCH", {"mode": "best_effort", "ops": [pay_y, bad_y]}))
        assert [r["status"] for r in best["results"]] == ["ok", "error"]
        published.append(best["results"][0]["result"]["wal_offset"])
        ok(call("DELETE_INSTANCE", {"instance_id": y}))
        created_z = {
            "op": "CREATE_INSTANCE",
            "params": {"machine": machine, "version": 1, "instance_id": z},
        }
        pay_z = {
            "op": "APPLY_EVENT",
            "params": {"instance_id": z, "event": "PAY", "payload": {"n": 1}},
        }
        both = ok(call("BATCH", {"mode": "atomic", "ops": [created_z, pay_z]}))
        published.append(both["results"][1]["result"]["wal_offset"])
        last = ok(call("APPLY_EVENT", {"instance_id": x, "event": "SHIP"}))
        published.append(last["wal_offset"])
        events = raw_events(watcher, 4)
        assert [e["wal_offset"] for e in events] == published
        assert [(e["instance_id"], e["event"]) for e in events] == [
            (x, "PAY"),
            (y, "PAY"),
            (z, "PAY"),
            (x, "SHIP"),
        ]
        assert_nothing_more(watcher)


def test_unwatch_mid_stream_sends_nothing_for_it_after_the_response(
    server: ServerProcess,
) -> None:
    count = 2000

    async def main() -> None:
        instance_id = unique("mid")
        watcher = await WireClient.open(server.host, server.port)
        writer = await WireClient.open(server.host, server.port)
        await writer.call(
            "CREATE_INSTANCE", {"machine": "toggle", "version": 1, "instance_id": instance_id}
        )
        gone = (await watcher.call("WATCH_ALL", {"machines": ["toggle"]}))["subscription_id"]
        kept = (await watcher.call("WATCH_INSTANCE", {"instance_id": instance_id}))[
            "subscription_id"
        ]
        applies = [
            {"instance_id": instance_id, "event": "GO", "payload": {"n": n}} for n in range(count)
        ]
        writing = asyncio.ensure_future(apply_all(writer, applies))
        await watcher.wait_until(lambda: len(watcher.pushed) >= 40)
        unwatched = await watcher.call("UNWATCH", {"subscription_id": gone})
        assert unwatched == {"subscription_id": gone, "removed": True}
        responses = await writing
        offsets = [r["result"]["wal_offset"] for r in responses]
        await watcher.wait_until(
            lambda: sum(m["subscription_id"] == kept for m in watcher.pushed) >= count
        )
        await asyncio.sleep(0.1)
        trace = watcher.trace
        cut = next(i for i, m in enumerate(trace) if m.get("result") == unwatched)
        assert all(m.get("subscription_id") != gone for m in trace[cut:])
        before = [m["wal_offset"] for m in trace[:cut] if m.get("subscription_id") == gone]
        assert before == offsets[: len(before)] and len(before) >= 20
        assert [m["wal_offset"] for m in watcher.pushed if m["subscription_id"] == kept] == offsets
        await watcher.close()
        await writer.close()

    asyncio.run(main())


def test_watch_instance_reports_no_state_before_it_is_durable(server: ServerProcess) -> None:
    """Like GET_INSTANCE, WATCH_INSTANCE names the current state only once it is durable.

    One connection pipelines two large BATCHes (about 24 MB to write and fsync) and
    then a small APPLY_EVENT; another polls WATCH_INSTANCE until it reports the new
    state. That answer must not come before the write is acknowledged (a few ms of
    slack for this process's scheduling); without the durability wait it arrives as
    soon as the transition is applied in memory, the whole fsync earlier.
    """
    pad = "p" * 1_000_000
    create = {"op": "CREATE_INSTANCE", "params": {"machine": "toggle", "version": 1}}
    big = {
        "mode": "atomic",
        "ops": [{**create, "params": {**create["params"], "initial_ctx": {"pad": pad}}}] * 12,
    }

    async def main() -> list[float]:
        watcher = await WireClient.open(server.host, server.port)
        writer = await WireClient.open(server.host, server.port)
        early: list[float] = []
        for round_ in range(3):
            instance_id = unique(f"durable{round_}")
            created = await writer.call(
                "CREATE_INSTANCE", {"machine": "toggle", "version": 1, "instance_id": instance_id}
            )
            bulk = [writer.send("BATCH", big) for _ in range(2)]
            applied = writer.send("APPLY_EVENT", {"instance_id": instance_id, "event": "GO"})
            while True:
                seen = await watcher.call("WATCH_INSTANCE", {"instance_id": instance_id})
                answered = time.perf_counter()
                if seen["current_wal_offset"] != created["wal_offset"]:
                    break
            result = (await applied)["result"]
            acknowledged = time.perf_counter()
            assert (seen["current_state"], seen["current_wal_offset"]) == (
                "b",
                result["wal_offset"],
            )
            early.append((acknowledged - answered) * 1000)
            await asyncio.gather(*bulk)
        await watcher.close()
        await writer.close()
        return early

    early = asyncio.run(main())
    assert sorted(early)[len(early) // 2] < 3.0, f"answered {early} ms before the acknowledgement"

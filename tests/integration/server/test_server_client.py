"""The official ``rstmdb`` Python client (0.2.1) against the real server process."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from rstmdb import Client, Operation, ServerError
from server_harness import ServerProcess

T = TypeVar("T")

ORDER = {
    "states": ["created", "paid", "shipped"],
    "initial": "created",
    "transitions": [
        {"from": "created", "event": "PAY", "to": "paid"},
        {"from": "paid", "event": "SHIP", "to": "shipped"},
    ],
}
APPROVAL = {
    "states": ["pending", "approved", "rejected"],
    "initial": "pending",
    "transitions": [
        {"from": "pending", "event": "APPROVE", "to": "approved", "guard": "ctx.amount <= 1000"},
        {"from": "pending", "event": "REJECT", "to": "rejected"},
    ],
}
HEX64 = re.compile(r"[0-9a-f]{64}")


@pytest.fixture(scope="module")
def server(rstmdb_module_server: Callable[..., ServerProcess]) -> ServerProcess:
    return rstmdb_module_server()


def with_client(server: ServerProcess, body: Callable[[Client], Awaitable[T]]) -> T:
    async def main() -> T:
        async with Client(server.host, server.port) as client:
            return await body(client)

    return asyncio.run(main())


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def error_code(call: Awaitable[Any]) -> str:
    with pytest.raises(ServerError) as caught:
        await call
    return str(caught.value.code.value)


async def raw(client: Client, op: Operation, params: dict[str, Any]) -> Any:
    return await client._conn.request(op, params)


def test_ping_and_info(server: ServerProcess) -> None:
    async def body(c: Client) -> None:
        assert await c.ping() is True
        info = await c.info()
        assert info["server_name"] == "rstmdb"
        assert isinstance(info["server_version"], str)
        assert info["protocol_version"] == 1
        assert info["max_frame_bytes"] == 16777216
        assert info["max_batch_ops"] == 100
        assert set(info["features"]) == {"idempotency", "batch", "wal_read"}

    with_client(server, body)


def test_machines(server: ServerProcess) -> None:
    name = unique("order")

    async def body(c: Client) -> None:
        first = await c.put_machine(name, 1, ORDER)
        assert (first.machine, first.version, first.created) == (name, 1, True)
        assert HEX64.fullmatch(first.stored_checksum)
        reordered = {key: ORDER[key] for key in reversed(list(ORDER))}
        again = await c.put_machine(name, 1, reordered)
        assert again.created is False and again.stored_checksum == first.stored_checksum
        other = {**ORDER, "initial": "paid"}
        assert await error_code(c.put_machine(name, 1, other)) == "MACHINE_VERSION_EXISTS"
        await c.put_machine(name, 0, ORDER)
        got = await c.get_machine(name, 1)
        assert got.checksum == first.stored_checksum
        assert got.definition["initial"] == "created"
        assert await error_code(c.get_machine(name, 7)) == "MACHINE_NOT_FOUND"
        items = await c.list_machines()
        names = [item["machine"] for item in items]
        assert names == sorted(names)
        assert {"machine": name, "versions": [0, 1]} in items
        bad = {**ORDER, "transitions": [{"from": "created", "event": "X", "to": "nowhere"}]}
        assert await error_code(c.put_machine(name, 2, bad)) == "BAD_REQUEST"
        guard = {**APPROVAL, "transitions": [{**APPROVAL["transitions"][0], "guard": "ctx.a >"}]}
        assert await error_code(c.put_machine(name, 3, guard)) == "BAD_REQUEST"

    with_client(server, body)


def test_instance_lifecycle(server: ServerProcess) -> None:
    name = unique("order")
    iid = unique("o")

    async def body(c: Client) -> None:
        await c.put_machine(name, 1, ORDER)
        created = await c.create_instance(name, 1, instance_id=iid, initial_ctx={"customer": "a"})
        assert (created.instance_id, created.state) == (iid, "created")
        assert await error_code(c.create_instance(name, 1, instance_id=iid)) == "INSTANCE_EXISTS"
        assert await error_code(c.create_instance(unique("none"), 1)) == "MACHINE_NOT_FOUND"
        generated = await c.create_instance(name, 1)
        assert re.fullmatch(
            r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", generated.instance_id
        )
        applied = await c.apply_event(iid, "PAY", payload={"amount": 10})
        assert (applied.from_state, applied.to_state, applied.applied) == ("created", "paid", True)
        assert applied.ctx == {"customer": "a", "amount": 10}
        assert applied.wal_offset > created.wal_offset
        got = await c.get_instance(iid)
        assert (got.machine, got.version, got.state) == (name, 1, "paid")
        assert got.ctx == {"customer": "a", "amount": 10}
        assert got.last_wal_offset == applied.wal_offset
        deleted = await c.delete_instance(iid)
        assert deleted["deleted"] is True and deleted["instance_id"] == iid
        assert deleted["wal_offset"] > applied.wal_offset
        assert await error_code(c.get_instance(iid)) == "INSTANCE_NOT_FOUND"
        assert await error_code(c.apply_event(iid, "SHIP")) == "INSTANCE_NOT_FOUND"
        assert await error_code(c.delete_instance(unique("none"))) == "INSTANCE_NOT_FOUND"
        listed = await c.list_instances(machine=name)
        assert [i.id for i in listed.instances] == [generated.instance_id]

    with_client(server, body)


def test_guards_transitions_and_conflicts(server: ServerProcess) -> None:
    name = unique("approval")

    async def body(c: Client) -> None:
        await c.put_machine(name, 1, APPROVAL)
        await c.create_instance(name, 1, instance_id=f"{name}-big", initial_ctx={"amount": 5000})
        await c.create_instance(name, 1, instance_id=f"{name}-ok", initial_ctx={"amount": 10})
        assert await error_code(c.apply_event(f"{name}-big", "APPROVE")) == "GUARD_FAILED"
        assert await error_code(c.apply_event(f"{name}-big", "SHIP")) == "INVALID_TRANSITION"
        conflict = c.apply_event(f"{name}-ok", "APPROVE", expected_state="approved")
        assert await error_code(conflict) == "CONFLICT"
        stale = await raw(
            c,
            Operation.APPLY_EVENT,
            {"instance_id": f"{name}-ok", "event": "APPROVE", "expected_wal_offset": 1},
        )
        assert stale.status == "error" and stale.error.code.value == "CONFLICT"
        assert stale.error.retryable is False
        ok = await c.apply_event(f"{name}-ok", "APPROVE", expected_state="pending")
        assert ok.to_state == "approved"
        bad = await raw(c, Operation.APPLY_EVENT, {"instance_id": f"{name}-ok", "event": 5})
        assert bad.error.code.value == "BAD_REQUEST" and "event" in bad.error.message

    with_client(server, body)


def test_idempotency_replays(server: ServerProcess) -> None:
    name = unique("order")

    async def body(c: Client) -> None:
        await c.put_machine(name, 1, ORDER)
        first = await c.create_instance(name, 1, idempotency_key=f"{name}-c")
        again = await c.create_instance(name, 1, idempotency_key=f"{name}-c")
        assert again.instance_id == first.instance_id and again.wal_offset == first.wal_offset
        iid = first.instance_id
        entries = (await c.wal_stats()).entry_count
        applied = await c.apply_event(iid, "PAY", idempotency_key=f"{name}-a")
        replay = await c.apply_event(iid, "PAY", idempotency_key=f"{name}-a")
        assert applied.applied is True and replay.applied is False
        assert replay.wal_offset == applied.wal_offset and replay.to_state == "paid"
        assert (await c.wal_stats()).entry_count == entries + 1
        deleted = await c.delete_instance(iid, idempotency_key=f"{name}-d")
        repeated = await c.delete_instance(iid, idempotency_key=f"{name}-d")
        assert repeated["wal_offset"] == deleted["wal_offset"]

    with_client(server, body)


def test_list_instances_pagination(server: ServerProcess) -> None:
    name = unique("order")

    async def body(c: Client) -> None:
        await c.put_machine(name, 1, ORDER)
        ids = [f"{name}-{n:02d}" for n in range(25)]
        for iid in ids:
            await c.create_instance(name, 1, instance_id=iid)
        for iid in ids[:5]:
            await c.apply_event(iid, "PAY")
        seen: list[str] = []
        for offset, more in ((0, True), (10, True), (20, False)):
            page = await c.list_instances(machine=name, limit=10, offset=offset)
            assert page.total == 25 and page.has_more is more
            seen += [item.id for item in page.instances]
            assert all(item.created_at <= item.updated_at for item in page.instances)
        assert seen == ids
        paid = await c.list_instances(machine=name, state="paid")
        assert [i.id for i in paid.instances] == ids[:5] and paid.has_more is False

    with_client(server, body)


def test_batch_atomic_and_best_effort(server: ServerProcess) -> None:
    name = unique("order")

    async def body(c: Client) -> None:
        await c.put_machine(name, 1, ORDER)
        ops = [
            {
                "op": "CREATE_INSTANCE",
                "params": {"machine": name, "version": 1, "instance_id": "x"},
            },
            {"op": "APPLY_EVENT", "params": {"instance_id": "x", "event": "PAY"}},
        ]
        ops = [{**op, "params": {**op["params"]}} for op in ops]
        ops[0]["params"]["instance_id"] = ops[1]["params"]["instance_id"] = f"{name}-x"
        done = await raw(c, Operation.BATCH, {"mode": "atomic", "ops": ops})
        assert done.status == "ok"
        assert [r["status"] for r in done.result["results"]] == ["ok", "ok"]
        assert done.result["results"][1]["result"]["to_state"] == "paid"
        failing = [
            {
                "op": "CREATE_INSTANCE",
                "params": {"machine": name, "version": 1, "instance_id": f"{name}-y"},
            },
            {"op": "APPLY_EVENT", "params": {"instance_id": f"{name}-x", "event": "PAY"}},
        ]
        failed = await raw(c, Operation.BATCH, {"mode": "atomic", "ops": failing})
        assert failed.status == "error" and failed.error.code.value == "BAD_REQUEST"
        assert failed.error.details["index"] == 1
        assert await error_code(c.get_instance(f"{name}-y")) == "INSTANCE_NOT_FOUND"
        mixed = await raw(c, Operation.BATCH, {"mode": "best_effort", "ops": failing})
        statuses = [
            (r["status"], r["error"] and r["error"]["code"]) for r in mixed.result["results"]
        ]
        assert statuses == [("ok", None), ("error", "INVALID_TRANSITION")]
        assert (await c.get_instance(f"{name}-y")).state == "created"
        too_many = [{"op": "APPLY_EVENT", "params": {"instance_id": "z", "event": "E"}}] * 101
        big = await raw(c, Operation.BATCH, {"ops": too_many})
        assert big.error.code.value == "BAD_REQUEST" and "101" in big.error.message

    with_client(server, body)


def test_wal_read_paging_and_stats(server: ServerProcess) -> None:
    name = unique("order")

    async def body(c: Client) -> None:
        await c.put_machine(name, 1, ORDER)
        for n in range(6):
            await c.create_instance(name, 1, instance_id=f"{name}-{n}")
        everything = await c.wal_read(0)
        offsets = [r["offset"] for r in everything["records"]]
        assert offsets == sorted(set(offsets)) and len(offsets) >= 7
        assert everything["next_offset"] == offsets[-1] + 1
        paged: list[int] = []
        start = 0
        while True:
            page = await c.wal_read(start, limit=3)
            if not page["records"]:
                assert page["next_offset"] is None
                break
            assert len(page["records"]) <= 3
            paged += [r["offset"] for r in page["records"]]
            start = page["next_offset"]
        assert paged[: len(offsets)] == offsets
        last = everything["records"][-1]
        assert last["entry"]["type"] == "create_instance"
        assert last["entry"]["instance_id"] == f"{name}-5"
        stats = await c.wal_stats()
        assert stats.entry_count >= len(offsets)
        assert stats.latest_offset is not None and stats.latest_offset >= offsets[-1]
        assert stats.segment_count >= 1 and stats.total_size_bytes > 0
        assert stats.io_stats.writes >= len(offsets) and stats.io_stats.fsyncs >= 1

    with_client(server, body)


def test_compact_and_snapshot(server: ServerProcess) -> None:
    name = unique("order")

    async def body(c: Client) -> None:
        await c.put_machine(name, 1, ORDER)
        await c.create_instance(name, 1, instance_id=f"{name}-s", initial_ctx={"k": 1})
        snap = await raw(c, Operation.SNAPSHOT_INSTANCE, {"instance_id": f"{name}-s"})
        assert snap.status == "ok"
        assert snap.result["snapshot_id"].startswith("snap-")
        assert snap.result["instance_id"] == f"{name}-s"
        assert HEX64.fullmatch(snap.result["checksum"]) and snap.result["size_bytes"] > 0
        missing = await raw(c, Operation.SNAPSHOT_INSTANCE, {"instance_id": unique("none")})
        assert missing.error.code.value == "INSTANCE_NOT_FOUND"
        result = await c.compact(force_snapshot=True)
        assert set(result) == {
            "snapshots_created",
            "segments_deleted",
            "bytes_reclaimed",
            "total_snapshots",
            "wal_segments",
        }
        assert result["total_snapshots"] >= 1
        assert (await c.get_instance(f"{name}-s")).ctx == {"k": 1}

    with_client(server, body)


def test_flush_all_refused_by_default(server: ServerProcess) -> None:
    async def body(c: Client) -> None:
        with pytest.raises(ServerError) as caught:
            await c.flush_all()
        assert caught.value.code.value == "BAD_REQUEST"
        assert "storage.allow_flush_all" in caught.value.message
        assert await c.ping()

    with_client(server, body)


@pytest.mark.slow
def test_flush_all_enabled_is_durable(rstmdb_server: Callable[..., ServerProcess]) -> None:
    server = rstmdb_server(env={"RSTMDB_ALLOW_FLUSH_ALL": "true"})

    async def fill(c: Client) -> Any:
        await c.put_machine("order", 1, ORDER)
        await c.put_machine("order", 2, ORDER)
        await c.create_instance("order", 1, instance_id="a")
        await c.create_instance("order", 1, instance_id="b")
        await c.delete_instance("b")
        return await c.flush_all()

    flushed = with_client(server, fill)
    assert (flushed.flushed, flushed.instances_removed, flushed.machines_removed) == (True, 2, 2)
    server.restart()

    async def check(c: Client) -> None:
        assert await c.list_machines() == []
        assert (await c.list_instances()).total == 0
        assert await error_code(c.get_instance("a")) == "INSTANCE_NOT_FOUND"
        await c.put_machine("order", 1, ORDER)
        assert (await c.create_instance("order", 1, instance_id="b")).state == "created"

    with_client(server, check)

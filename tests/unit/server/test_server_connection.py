"""Connection + dispatch + handlers over a fake transport: order, closing rules, backpressure."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from pyrstmdb import Database
from pyrstmdb.aio import DurabilityWaiter
from pyrstmdb.protocol import ClientCodec, Operation, Response, encode_frame, request_message
from pyrstmdb.server import connection as connection_module
from pyrstmdb.server import dispatch as dispatch_module
from pyrstmdb.server.connection import Connection, Shared
from pyrstmdb.server.dispatch import Dispatcher
from pyrstmdb.server.handlers.base import Settings

ORDER = {
    "states": ["a", "b"],
    "initial": "a",
    "transitions": [
        {"from": "a", "event": "GO", "to": "b"},
        {"from": "b", "event": "BACK", "to": "a"},
    ],
}


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.data = bytearray()
        self.closed = False
        self.aborted = False
        self.reading = True

    def write(self, data: Any) -> None:
        assert not self.closed, "write after close"
        self.data += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 5555) if name == "peername" else default


class Registry:
    def __init__(self, limit: int = 10) -> None:
        self.open: set[Connection] = set()
        self.limit = limit

    def add(self, conn: Connection) -> bool:
        if len(self.open) >= self.limit:
            return False
        self.open.add(conn)
        return True

    def remove(self, conn: Connection) -> None:
        self.open.discard(conn)


class Harness:
    def __init__(self, db: Database, loop: asyncio.AbstractEventLoop, **settings: Any) -> None:
        self.shared = Shared(
            core=db.core,
            waiter=DurabilityWaiter(db.core, loop),
            dispatcher=Dispatcher(None),
            settings=Settings("test", settings.get("allow_flush_all", False)),
            auth_required=False,
            token_hashes=frozenset(),
            hub=None,
            metrics=None,
            registry=settings.get("registry", Registry()),
            loop=loop,
        )
        self.conn = Connection(self.shared)
        self.transport = FakeTransport()
        self.conn.connection_made(self.transport)
        self.codec = ClientCodec()
        self.seen = 0

    def send(self, *requests: tuple[str, str, dict[str, Any]]) -> None:
        frames = b"".join(
            encode_frame(orjson.dumps(request_message(i, op, params))) for i, op, params in requests
        )
        self.conn.data_received(frames)

    def responses(self) -> list[Response]:
        fresh = bytes(self.transport.data[self.seen :])
        self.seen = len(self.transport.data)
        return [m for m in self.codec.feed(fresh) if isinstance(m, Response)]

    async def settle(self, rounds: int = 200) -> None:
        for _ in range(rounds):
            await asyncio.sleep(0.005)
            if not self.conn.busy:
                return


@pytest.fixture
def durable_db(tmp_path: Path) -> Iterator[Database]:
    db = Database(tmp_path / "db")
    db.put_machine("m", 1, ORDER)
    yield db
    db.close()


def run(body: Callable[[asyncio.AbstractEventLoop], Awaitable[None]]) -> None:
    async def main() -> None:
        await body(asyncio.get_running_loop())

    asyncio.run(main())


def test_responses_keep_request_order_while_writes_wait(durable_db: Database) -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> None:
        h = Harness(durable_db, loop)
        h.send(
            ("1", "CREATE_INSTANCE", {"machine": "m", "version": 1, "instance_id": "i"}),
            ("2", "PING", {}),
            ("3", "APPLY_EVENT", {"instance_id": "i", "event": "GO"}),
            ("4", "GET_INSTANCE", {"instance_id": "i"}),
            ("5", "INFO", {}),
        )
        assert h.conn.busy  # the create waits for its fsync, so nothing after it is sent yet
        assert h.responses() == []
        await h.settle()
        answers = h.responses()
        assert [r.id for r in answers] == ["1", "2", "3", "4", "5"]
        assert answers[3].result is not None and answers[3].result["state"] == "b"

    run(body)


def test_hello_switches_mode_from_its_own_response(durable_db: Database) -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> None:
        h = Harness(durable_db, loop)
        h.send(
            ("1", "CREATE_INSTANCE", {"machine": "m", "version": 1, "instance_id": "j"}),
            ("2", "HELLO", {"protocol_version": 1, "wire_modes": ["jsonl"]}),
            ("3", "PING", {}),
        )
        await h.settle()
        data = bytes(h.transport.data)
        assert data.startswith(b"RCPX")
        lines = data[data.index(b'{"type":"response","id":"2"') :].splitlines()
        assert [orjson.loads(line)["id"] for line in lines] == ["2", "3"]

    run(body)


def test_framing_fault_answers_earlier_requests_then_closes() -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> None:
        h = Harness(Database(), loop)
        ping = encode_frame(orjson.dumps(request_message("1", "PING", {})))
        h.conn.data_received(ping + b"XXXX" + ping)
        assert [r.id for r in h.responses()] == ["1"]
        assert h.transport.closed and not h.transport.reading
        h.conn.data_received(ping)  # late bytes are ignored
        assert h.responses() == []

    run(body)


def test_bye_closes_after_its_response_and_ignores_the_rest() -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> None:
        h = Harness(Database(), loop)
        h.send(("1", "BYE", {}), ("2", "PING", {}))
        answers = h.responses()
        assert [(r.id, r.result) for r in answers] == [("1", {"goodbye": True})]
        assert h.transport.closed
        h.conn.connection_lost(None)
        assert h.shared.registry.open == set()  # type: ignore[attr-defined]

    run(body)


def test_write_backpressure_pauses_reading() -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> None:
        h = Harness(Database(), loop)
        h.conn.pause_writing()
        assert not h.transport.reading and not h.conn.writable()
        h.conn.resume_writing()
        assert h.transport.reading and h.conn.writable()

    run(body)


def test_too_many_responses_in_flight_pause_reading(
    durable_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connection_module, "MAX_IN_FLIGHT", 4)
    monkeypatch.setattr(connection_module, "RESUME_IN_FLIGHT", 2)

    async def body(loop: asyncio.AbstractEventLoop) -> None:
        h = Harness(durable_db, loop)
        h.send(
            *[
                (str(n), "CREATE_INSTANCE", {"machine": "m", "version": 1, "instance_id": f"k{n}"})
                for n in range(6)
            ]
        )
        assert not h.transport.reading
        await h.settle()
        assert h.transport.reading
        assert [r.id for r in h.responses()] == [str(n) for n in range(6)]

    run(body)


def test_connection_beyond_the_limit_is_closed_at_once() -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> None:
        registry = Registry(limit=1)
        first = Harness(Database(), loop, registry=registry)
        second = Harness(Database(), loop, registry=registry)
        assert not first.transport.closed
        assert second.transport.closed and second.transport.data == b""
        second.conn.connection_lost(None)
        assert registry.open == {first.conn}

    run(body)


def test_oversized_response_becomes_a_final_error() -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> None:
        db = Database()
        db.put_machine("m", 1, ORDER)
        db.create_instance("m", 1, instance_id="big")
        # A context stored before the size limits existed (the log replays it as it is).
        state = db.core.state
        state.instances["big"] = state.instances["big"]._replace(
            ctx={"x": "y" * (16 * 1024 * 1024)}
        )
        h = Harness(db, loop)
        h.send(("big-1", "GET_INSTANCE", {"instance_id": "big"}), ("2", "PING", {}))
        first, second = h.responses()
        assert first.id == "big-1" and first.error is not None
        assert first.error["code"] == "INTERNAL_ERROR"
        assert first.error["details"]["limit"] == 16 * 1024 * 1024
        # Final: had the request been a write, a retry would have repeated it.
        assert first.error["retryable"] is False
        assert "carried out" in first.error["message"]
        assert second.result == {"pong": True}

    run(body)


def test_batch_results_stay_within_one_frame() -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> None:
        db = Database()
        db.put_machine("m", 1, ORDER)
        db.create_instance("m", 1, instance_id="big", initial_ctx={"x": "y" * (5 * 1024 * 1024)})
        h = Harness(db, loop)
        ops = [
            {"op": "APPLY_EVENT", "params": {"instance_id": "big", "event": event}}
            for event in ("GO", "BACK", "GO", "BACK")
        ]  # each result carries the 5 MiB ctx: 20 MiB in all
        h.send(("b-1", "BATCH", {"ops": ops, "mode": "best_effort"}))
        h.send(("b-2", "BATCH", {"ops": ops, "mode": "atomic"}))
        best_effort, atomic = h.responses()
        assert best_effort.result is not None
        statuses = [item["status"] for item in best_effort.result["results"]]
        assert statuses == ["ok", "ok", "error", "error"]
        assert best_effort.result["results"][2]["error"]["details"]["limit"] == 8 * 1024 * 1024
        assert atomic.error is not None and atomic.error["code"] == "BAD_REQUEST"
        assert atomic.error["details"]["index"] == 2
        assert db.wal_stats().entry_count == 4  # machine, create, two applies
        assert db.get_instance("big").state == "a"

    run(body)


def test_unexpected_exception_is_internal_error_and_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(ctx: Any, params: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setitem(dispatch_module.HANDLERS, Operation.INFO, broken)

    async def body(loop: asyncio.AbstractEventLoop) -> None:
        h = Harness(Database(), loop)
        with caplog.at_level(logging.ERROR, logger="pyrstmdb.server.dispatch"):
            h.send(("1", "INFO", {}), ("2", "PING", {}))
        first, second = h.responses()
        assert first.error is not None and first.error["code"] == "INTERNAL_ERROR"
        assert first.error["retryable"] is True
        assert "boom" not in first.error["message"]
        assert second.ok
        assert any("boom" in (r.exc_text or "") or r.exc_info for r in caplog.records)

    run(body)


def test_flush_all_gate_and_thread_ops() -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> None:
        db = Database()
        db.put_machine("m", 1, ORDER)
        db.create_instance("m", 1, instance_id="x")
        off = Harness(db, loop)
        off.send(("1", "FLUSH_ALL", {}))
        (refused,) = off.responses()
        assert refused.error is not None and refused.error["details"] == {
            "setting": "storage.allow_flush_all"
        }
        on = Harness(db, loop, allow_flush_all=True)
        on.send(("2", "WAL_READ", {"from_offset": 0, "limit": 1}), ("3", "FLUSH_ALL", {}))
        await on.settle()
        read, flushed = on.responses()
        assert read.result is not None and len(read.result["records"]) == 1
        assert flushed.result == {"flushed": True, "instances_removed": 1, "machines_removed": 1}

    run(body)

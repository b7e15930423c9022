"""PostgreSQL (``fsync=on``, ``synchronous_commit=on``): one transaction per create or event.

Two client styles over asyncpg, one connection per client:

* ``function``: one round trip, ``SELECT order_apply($1, $2, $3)``, a PL/pgSQL
  function that locks the row, looks the transition up in ``transitions``,
  checks the guard, updates the row and inserts a ``log`` row;
* ``statements``: the same steps as client-side statements in a transaction
  (BEGIN, SELECT ... FOR UPDATE, UPDATE, INSERT, COMMIT), deciding in Python.

Records are ``log`` rows; fsyncs are ``pg_stat_wal.wal_sync``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import orjson

from bench.compare.pgserver import PostgresServer
from bench.compare.workload import (
    TRANSITIONS,
    AsyncSession,
    JsonObject,
    Refused,
    Target,
    decide,
    guard_instance,
)

SCHEMA = """
CREATE TABLE instances (id text PRIMARY KEY, state text NOT NULL, ctx jsonb NOT NULL);
CREATE TABLE transitions (
    from_state text, event text, to_state text NOT NULL, max_amount numeric,
    PRIMARY KEY (from_state, event)
);
CREATE TABLE log (
    seq bigserial PRIMARY KEY, instance_id text NOT NULL, event text,
    from_state text, to_state text NOT NULL, payload jsonb
);
CREATE FUNCTION order_create(p_id text, p_ctx jsonb) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO instances VALUES (p_id, 'created', p_ctx);
    INSERT INTO log (instance_id, to_state, payload) VALUES (p_id, 'created', p_ctx);
    RETURN 'created';
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'INSTANCE_EXISTS';
END $$;
CREATE FUNCTION order_apply(p_id text, p_event text, p_payload jsonb)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    cur instances%ROWTYPE;
    step transitions%ROWTYPE;
BEGIN
    SELECT * INTO cur FROM instances WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN RAISE EXCEPTION 'INSTANCE_NOT_FOUND'; END IF;
    SELECT * INTO step FROM transitions WHERE from_state = cur.state AND event = p_event;
    IF NOT FOUND THEN RAISE EXCEPTION 'INVALID_TRANSITION'; END IF;
    IF step.max_amount IS NOT NULL AND NOT coalesce(
        jsonb_typeof(cur.ctx -> 'amount') = 'number'
        AND (cur.ctx ->> 'amount')::numeric <= step.max_amount, false) THEN
        RAISE EXCEPTION 'GUARD_FAILED';
    END IF;
    UPDATE instances SET state = step.to_state, ctx = cur.ctx || coalesce(p_payload, '{}')
        WHERE id = p_id;
    INSERT INTO log (instance_id, event, from_state, to_state, payload)
        VALUES (p_id, p_event, cur.state, step.to_state, p_payload);
    RETURN step.to_state;
END $$;
"""

_CODES = ("INSTANCE_EXISTS", "INSTANCE_NOT_FOUND", "INVALID_TRANSITION", "GUARD_FAILED")


def _refused(err: asyncpg.PostgresError) -> Refused:
    message = str(err)
    code = next((c for c in _CODES if c in message), "POSTGRES_ERROR")
    return Refused(code, message)


class _FunctionSession:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def create(self, instance_id: str, ctx: JsonObject) -> None:
        try:
            await self._db.fetchval("SELECT order_create($1, $2)", instance_id, _json(ctx))
        except asyncpg.RaiseError as err:
            raise _refused(err) from None

    async def apply(self, instance_id: str, event: str, payload: JsonObject | None) -> None:
        body = None if payload is None else _json(payload)
        try:
            await self._db.fetchval("SELECT order_apply($1, $2, $3)", instance_id, event, body)
        except asyncpg.RaiseError as err:
            raise _refused(err) from None

    async def close(self) -> None:
        await self._db.close()


class _StatementSession(_FunctionSession):
    async def create(self, instance_id: str, ctx: JsonObject) -> None:
        text = _json(ctx)
        try:
            async with self._db.transaction():
                await self._db.execute(
                    "INSERT INTO instances VALUES ($1, 'created', $2)", instance_id, text
                )
                await self._db.execute(
                    "INSERT INTO log (instance_id, to_state, payload) VALUES ($1, 'created', $2)",
                    instance_id,
                    text,
                )
        except asyncpg.UniqueViolationError:
            raise Refused("INSTANCE_EXISTS", instance_id) from None

    async def apply(self, instance_id: str, event: str, payload: JsonObject | None) -> None:
        body = None if payload is None else _json(payload)
        async with self._db.transaction():
            row = await self._db.fetchrow(
                "SELECT state, ctx FROM instances WHERE id = $1 FOR UPDATE", instance_id
            )
            if row is None:
                raise Refused("INSTANCE_NOT_FOUND", instance_id)
            target = decide(row[0], event, orjson.loads(row[1]))
            await self._db.execute(
                "UPDATE instances SET state = $2, ctx = ctx || coalesce($3::jsonb, '{}')"
                " WHERE id = $1",
                instance_id,
                target,
                body,
            )
            await self._db.execute(
                "INSERT INTO log (instance_id, event, from_state, to_state, payload)"
                " VALUES ($1, $2, $3, $4, $5)",
                instance_id,
                event,
                row[0],
                target,
                body,
            )


def _json(value: JsonObject) -> str:
    return orjson.dumps(value).decode()


async def create_schema(server: PostgresServer) -> None:
    """Tables, functions and the transition table (once per cluster)."""
    connection = await asyncpg.connect(server.dsn())
    try:
        await connection.execute(SCHEMA)
        rows = [(t.source, t.event, t.target, t.max_amount) for t in TRANSITIONS]
        await connection.executemany("INSERT INTO transitions VALUES ($1, $2, $3, $4)", rows)
    finally:
        await connection.close()


class PostgresTarget(Target):
    def __init__(self, server: PostgresServer, control: Any, style: str) -> None:
        self._server = server
        self._control: asyncpg.Connection = control
        self._session = _FunctionSession if style == "function" else _StatementSession
        self.label = f"PostgreSQL, {style}"

    @classmethod
    async def connect(cls, server: PostgresServer, style: str) -> PostgresTarget:
        return cls(server, await asyncpg.connect(server.dsn()), style)

    async def prepare(self, prefix: str) -> None:
        over = guard_instance(prefix)
        await _FunctionSession(self._control).create(over, {"customer": over, "amount": 5000})

    async def record_count(self) -> int:
        count = await self._control.fetchval("SELECT count(*) FROM log")
        return int(count)

    async def fsyncs(self) -> int | None:
        # Backends report their WAL statistics when they exit: wait for the clients' to go.
        query = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
        for _ in range(100):
            if await self._control.fetchval(query) <= 1:
                break
            await asyncio.sleep(0.05)
        await self._control.execute("SELECT pg_stat_clear_snapshot()")
        return int(await self._control.fetchval("SELECT wal_sync FROM pg_stat_wal"))

    def server_pids(self) -> list[int]:
        return [self._server.pid]

    async def final_states(self, ids: list[str]) -> dict[str, tuple[str, JsonObject]]:
        rows = await self._control.fetch(
            "SELECT id, state, ctx::text FROM instances WHERE id = ANY($1::text[])", ids
        )
        return {r[0]: (r[1], orjson.loads(r[2])) for r in rows}

    async def open_async(self, count: int) -> list[AsyncSession]:
        connections = await asyncio.gather(
            *(asyncpg.connect(self._server.dsn()) for _ in range(count))
        )
        return [self._session(c) for c in connections]

    async def close(self) -> None:
        await self._control.close()

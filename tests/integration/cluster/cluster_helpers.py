"""Shared pieces of the cluster tests: an outside observer's queries and sample records."""

from __future__ import annotations

from typing import Any

import asyncpg

from pyrstmdb.engine.records import EventApplied, InstanceCreated, Record


async def fetch(dsn: str, query: str, *args: Any) -> list[Any]:
    """Rows of ``query`` on a connection of its own (an outside observer)."""
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def execute(dsn: str, statement: str, *args: Any) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(statement, *args)
    finally:
        await conn.close()


def created(n: int) -> Record:
    return InstanceCreated(f"i-{n}", "order", 1, "new", {"n": n}, None, False, 1000 + n)


def applied(n: int, key: str | None = None) -> Record:
    return EventApplied(f"i-{n}", "PAY", "new", "paid", {"amount": n}, {"n": n}, None, key, 2000)

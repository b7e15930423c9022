"""Partition ownership over a real PostgreSQL: leases by its clock, epochs that only grow."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
from cluster_helpers import fetch

from pyrstmdb.cluster.lease import safety_margin_ms
from pyrstmdb.cluster.ownership import Ownership
from pyrstmdb.cluster.schema import ensure_schema
from pyrstmdb.cluster.session import SessionSettings, connect, create_pool

LEASE_MS = 400


async def _nodes(dsn: str, partitions: int = 1) -> tuple[object, Ownership, Ownership]:
    pool = await create_pool(dsn, SessionSettings(lease_ms=LEASE_MS))
    async with pool.acquire() as conn:
        await ensure_schema(conn, partitions)
    n1 = Ownership(pool, "n1", "127.0.0.1:7401", LEASE_MS)
    n2 = Ownership(pool, "n2", "127.0.0.1:7402", LEASE_MS)
    return pool, n1, n2


def test_acquire_renew_expire_takeover_release(dsn: str) -> None:
    async def scenario() -> list[int]:
        pool, n1, n2 = await _nodes(dsn)
        epochs = []
        lease1 = await n1.acquire(0)
        assert lease1 is not None
        epochs.append(lease1.epoch)
        assert await n2.acquire(0) is None  # held
        renewed = await n1.renew(lease1)
        assert renewed is not None and renewed.epoch == lease1.epoch
        assert await n2.acquire(0) is None  # still held after the renewal
        await asyncio.sleep(LEASE_MS / 1000 + 0.1)  # n1 stops renewing: the lease expires
        lease2 = await n2.acquire(0)
        assert lease2 is not None
        epochs.append(lease2.epoch)
        assert await n1.renew(renewed) is None  # fenced: the epoch moved on
        assert not await n1.release(renewed)
        assert await n2.release(lease2)
        lease3 = await n1.acquire(0)  # released: taken at once, no expiry needed
        assert lease3 is not None
        epochs.append(lease3.epoch)
        lease4 = await n1.acquire(0)  # reclaim by the same node id: a new epoch
        assert lease4 is not None
        epochs.append(lease4.epoch)
        assert await n1.renew(lease3) is None  # the older process of the same id is fenced
        assert await n1.renew(lease4) is not None
        await pool.close()
        return epochs

    assert asyncio.run(scenario()) == [1, 2, 3, 4]
    rows = asyncio.run(fetch(dsn, "SELECT owner, epoch FROM rstmdb.partitions"))
    assert [tuple(r) for r in rows] == [("n1", 4)]


def test_lease_runs_on_the_monotonic_clock_from_when_the_renewal_was_sent(dsn: str) -> None:
    async def scenario() -> None:
        pool = await create_pool(dsn, SessionSettings(lease_ms=LEASE_MS))
        async with pool.acquire() as conn:
            await ensure_schema(conn, 1)
        ticks = iter([100.0, 250.0])
        node = Ownership(pool, "n1", "a:1", LEASE_MS, clock=lambda: next(ticks))
        lease = await node.acquire(0)
        assert lease is not None
        usable = (LEASE_MS - safety_margin_ms(LEASE_MS)) / 1000
        assert lease.valid_until == 100.0 + usable
        assert lease.valid(100.0 + usable - 0.001) and not lease.valid(100.0 + usable)
        renewed = await node.renew(lease)
        assert renewed is not None and renewed.valid_until == 250.0 + usable
        await pool.close()

    asyncio.run(scenario())


def test_acquire_with_a_live_lease_elsewhere_waits_for_postgres_clock(dsn: str) -> None:
    async def scenario() -> float:
        pool, n1, n2 = await _nodes(dsn)
        assert await n1.acquire(0) is not None
        started = time.monotonic()
        while await n2.acquire(0) is None:
            await asyncio.sleep(0.02)
        await pool.close()
        return time.monotonic() - started

    waited = asyncio.run(scenario())
    assert LEASE_MS / 1000 - 0.1 <= waited < LEASE_MS / 1000 + 1.0


def test_sessions_time_out_locks_and_idle_transactions_well_below_the_lease(dsn: str) -> None:
    async def scenario() -> tuple[str, str]:
        pool = await create_pool(dsn, SessionSettings(lease_ms=3000))
        async with pool.acquire() as conn:
            settings = (
                await conn.fetchval("SHOW lock_timeout"),
                await conn.fetchval("SHOW idle_in_transaction_session_timeout"),
            )
        await pool.close()
        return settings

    assert asyncio.run(scenario()) == ("1s", "1s")


def test_heartbeat_records_the_node_by_postgres_clock(dsn: str) -> None:
    async def scenario() -> None:
        pool, n1, n2 = await _nodes(dsn)
        await n1.heartbeat()
        await n2.heartbeat()
        await asyncio.sleep(0.3)
        await n1.heartbeat()
        await pool.close()

    asyncio.run(scenario())
    rows = asyncio.run(
        fetch(
            dsn,
            "SELECT node_id, advertise_addr, "
            "extract(epoch FROM clock_timestamp() - last_heartbeat) AS age "
            "FROM rstmdb.nodes ORDER BY node_id",
        )
    )
    assert [(r["node_id"], r["advertise_addr"]) for r in rows] == [
        ("n1", "127.0.0.1:7401"),
        ("n2", "127.0.0.1:7402"),
    ]
    assert rows[0]["age"] < rows[1]["age"]
    assert rows[1]["age"] >= 0.3


def test_a_frozen_transaction_does_not_hold_up_a_takeover(dsn: str) -> None:
    async def scenario() -> float:
        pool, n1, n2 = await _nodes(dsn)
        assert await n1.acquire(0) is not None
        # n1 freezes in the middle of a round, holding the partition's row lock.
        frozen = await connect(dsn, SessionSettings(lease_ms=LEASE_MS))
        await frozen.execute("BEGIN")
        await frozen.execute("UPDATE rstmdb.partitions SET head = head WHERE partition = 0")
        started = time.monotonic()
        while True:
            try:
                if await n2.acquire(0) is not None:
                    break
            except asyncpg.LockNotAvailableError:
                pass  # lock_timeout: n2's own statement gives up and tries again
            assert time.monotonic() - started < 10, "the takeover never happened"
            await asyncio.sleep(0.02)
        took = time.monotonic() - started
        assert frozen.is_closed() or await _closed_by_server(frozen)
        await pool.close()
        return took

    assert asyncio.run(scenario()) < LEASE_MS / 1000 + 2.0


async def _closed_by_server(conn: Any) -> bool:
    """PostgreSQL ended the idle transaction's session (idle_in_transaction_session_timeout)."""
    try:
        await conn.execute("SELECT 1")
    except (asyncpg.PostgresError, asyncpg.InterfaceError):
        return True
    return False

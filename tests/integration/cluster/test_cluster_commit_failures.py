"""A round whose connection dies: before COMMIT nothing is written; during COMMIT the
outcome is unknown and the log re-reads its head from PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
import pytest
from cluster_helpers import created, fetch

from pyrstmdb.cluster.errors import HeadMoved, OutcomeUnknown
from pyrstmdb.cluster.ownership import Ownership
from pyrstmdb.cluster.pglog import PartitionLog
from pyrstmdb.cluster.schema import ensure_schema
from pyrstmdb.cluster.session import SessionSettings, create_pool
from pyrstmdb.errors import WalIoError
from pyrstmdb.storage.store import FIRST_OFFSET

LEASE_MS = 30_000
_WAITING = """
SELECT pid FROM pg_stat_activity
 WHERE application_name = 'rstmdb' AND wait_event = $1
"""


async def _owner(dsn: str, timeout: float = 5.0) -> tuple[Any, PartitionLog]:
    pool = await create_pool(dsn, SessionSettings(lease_ms=LEASE_MS))
    async with pool.acquire() as conn:
        await ensure_schema(conn, 1)
    lease = await Ownership(pool, "n1", "a:1", LEASE_MS).acquire(0)
    assert lease is not None
    return pool, await PartitionLog.open(pool, 0, 1, lease.epoch, timeout=timeout)


@asynccontextmanager
async def _commits_never_confirmed(dsn: str) -> AsyncIterator[Any]:
    """A synchronous standby that never comes: every COMMIT waits (committed locally).

    Yields another connection, to watch and terminate sessions; the setting is reset after.
    """
    observer = await asyncpg.connect(dsn)
    await observer.execute("ALTER SYSTEM SET synchronous_standby_names = 'absent'")
    await observer.execute("SELECT pg_reload_conf()")
    await asyncio.sleep(0.5)
    try:
        yield observer
    finally:
        await observer.execute("ALTER SYSTEM RESET synchronous_standby_names")
        await observer.execute("SELECT pg_reload_conf()")
        await observer.close()


async def _terminate_backend_waiting_on(observer: Any, wait_event: str) -> None:
    deadline = time.monotonic() + 10
    while not (pids := await observer.fetch(_WAITING, wait_event)):
        assert time.monotonic() < deadline, f"no rstmdb session waiting on {wait_event}"
        await asyncio.sleep(0.02)
    assert len(pids) == 1
    await observer.execute("SELECT pg_terminate_backend($1)", pids[0]["pid"])


def test_connection_killed_during_commit_is_outcome_unknown(dsn: str) -> None:
    async def scenario() -> None:
        pool, log = await _owner(dsn)
        assert await log.append([created(1)]) == [FIRST_OFFSET]
        async with _commits_never_confirmed(dsn) as observer:
            pending = asyncio.create_task(log.append([created(2)]))
            await _terminate_backend_waiting_on(observer, "SyncRep")
            with pytest.raises(OutcomeUnknown) as caught:
                await pending
        assert caught.value.details == {"reason": "outcome_unknown", "partition": 0}
        assert caught.value.retryable
        # The log re-read its head: the round had in fact committed.
        assert await log.append([created(3)]) == [FIRST_OFFSET + 2]
        entries = await log.read_from(0, 10)
        assert [e.record for e in entries] == [created(1), created(2), created(3)]
        await pool.close()

    asyncio.run(scenario())
    rows = asyncio.run(fetch(dsn, "SELECT sequence FROM rstmdb.log ORDER BY sequence"))
    assert [r["sequence"] for r in rows] == [1, 2, 3]


def test_connection_killed_before_commit_writes_nothing(dsn: str) -> None:
    async def scenario() -> None:
        pool, log = await _owner(dsn)
        assert await log.append([created(1)]) == [FIRST_OFFSET]
        observer = await asyncpg.connect(dsn)
        holder = await asyncpg.connect(dsn)
        lock = holder.transaction()
        await lock.start()
        await holder.execute("SELECT 1 FROM rstmdb.partitions FOR UPDATE")
        pending = asyncio.create_task(log.append([created(2), created(3)]))
        await _terminate_backend_waiting_on(observer, "transactionid")
        with pytest.raises(WalIoError) as caught:
            await pending
        assert not isinstance(caught.value, OutcomeUnknown)
        assert caught.value.details["reason"] == "postgres"
        await lock.rollback()
        await holder.close()
        await observer.close()
        assert await log.append([created(4)]) == [FIRST_OFFSET + 1]
        await pool.close()

    asyncio.run(scenario())
    rows = asyncio.run(fetch(dsn, "SELECT sequence, entry::text FROM rstmdb.log ORDER BY 1"))
    assert [r["sequence"] for r in rows] == [1, 2]
    assert '"i-4"' in rows[1]["entry"]


@pytest.mark.slow
def test_commit_that_does_not_answer_in_time_is_outcome_unknown(dsn: str) -> None:
    async def scenario() -> float:
        pool, log = await _owner(dsn, timeout=0.5)
        assert await log.append([created(1)]) == [FIRST_OFFSET]
        async with _commits_never_confirmed(dsn):
            started = time.monotonic()
            with pytest.raises(OutcomeUnknown):
                await log.append([created(2)])
            waited = time.monotonic() - started
        await asyncio.sleep(0.5)
        offsets = await log.append([created(3)])
        entries = await log.read_from(0, 10)
        assert [e.offset for e in entries] == [FIRST_OFFSET, FIRST_OFFSET + 1, offsets[0]]
        assert offsets == [FIRST_OFFSET + 2]
        await pool.close()
        return waited

    assert asyncio.run(scenario()) < 3.0


def test_a_round_in_doubt_that_commits_late_is_not_a_fence(dsn: str) -> None:
    async def scenario() -> None:
        pool, log = await _owner(dsn)
        assert await log.append([created(1)]) == [FIRST_OFFSET]
        # What a round in doubt leaves when it commits after the log re-read its head:
        # the head moved under the log's own epoch.
        late = created(2).to_entry()
        await execute_late_round(dsn, orjson.dumps(late).decode())
        with pytest.raises(HeadMoved) as caught:
            await log.append([created(3)])
        assert caught.value.retryable and not log.fenced
        assert await log.append([created(3)]) == [FIRST_OFFSET + 2]
        entries = await log.read_from(0, 10)
        assert [e.record for e in entries] == [created(1), created(2), created(3)]
        await pool.close()

    asyncio.run(scenario())


async def execute_late_round(dsn: str, entry: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute("UPDATE rstmdb.partitions SET head = 2")
            await conn.execute(
                "INSERT INTO rstmdb.log VALUES (0, 2, 1, 2, $1::json)",
                entry,
            )
    finally:
        await conn.close()


def test_rereading_the_head_waits_for_a_round_still_in_doubt(dsn: str) -> None:
    async def scenario() -> None:
        pool, log = await _owner(dsn)
        assert await log.append([created(1)]) == [FIRST_OFFSET]
        doubt = await asyncpg.connect(dsn)  # a round whose COMMIT has not ended yet
        tx = doubt.transaction()
        await tx.start()
        await doubt.execute("UPDATE rstmdb.partitions SET head = 2")
        await doubt.execute(
            "INSERT INTO rstmdb.log VALUES (0, 2, 1, 2, $1::json)",
            orjson.dumps(created(2).to_entry()).decode(),
        )
        reread = asyncio.create_task(log.reload_head())
        await asyncio.sleep(0.3)
        assert not reread.done()
        await tx.commit()
        await doubt.close()
        await reread
        assert log.last_sequence == 2
        assert await log.append([created(3)]) == [FIRST_OFFSET + 2]
        await pool.close()

    asyncio.run(scenario())

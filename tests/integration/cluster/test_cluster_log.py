"""The PostgreSQL log of a partition: fenced rounds, group commit, reads, checkpoints."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from cluster_helpers import applied, created, execute, fetch

from pyrstmdb.cluster.errors import Fenced
from pyrstmdb.cluster.ownership import Ownership
from pyrstmdb.cluster.pglog import Checkpoint, PartitionLog
from pyrstmdb.cluster.schema import ensure_schema
from pyrstmdb.cluster.session import SessionSettings, create_pool
from pyrstmdb.errors import BadRequest
from pyrstmdb.storage.store import FIRST_OFFSET

LEASE_MS = 30_000  # long: these tests take partitions over explicitly

_ROUNDS = """
SELECT xmin::text AS tx, count(*) AS n, min(sequence) AS first
  FROM rstmdb.log WHERE partition = $1 GROUP BY xmin::text ORDER BY first
"""


async def _owner(
    dsn: str, partitions: int = 1, partition: int = 0, node: str = "n1", **options: Any
) -> tuple[Any, Ownership, PartitionLog]:
    pool = await create_pool(dsn, SessionSettings(lease_ms=LEASE_MS))
    async with pool.acquire() as conn:
        await ensure_schema(conn, partitions)
    ownership = Ownership(pool, node, "127.0.0.1:7401", LEASE_MS)
    lease = await ownership.acquire(partition)
    assert lease is not None
    log = await PartitionLog.open(pool, partition, partitions, lease.epoch, **options)
    return pool, ownership, log


def test_append_and_read_from_with_single_server_offsets(dsn: str) -> None:
    async def scenario() -> None:
        pool, _, log = await _owner(dsn)
        assert log.head == FIRST_OFFSET
        first = await log.append([created(1), applied(1)])
        second = await log.append([created(2)])
        assert first == [FIRST_OFFSET, FIRST_OFFSET + 1]
        assert second == [FIRST_OFFSET + 2]
        assert log.head == FIRST_OFFSET + 3
        everything = await log.read_from(0, 100)
        assert [(e.sequence, e.offset) for e in everything] == [
            (1, FIRST_OFFSET),
            (2, FIRST_OFFSET + 1),
            (3, FIRST_OFFSET + 2),
        ]
        assert [e.record for e in everything] == [created(1), applied(1), created(2)]
        middle = await log.read_from(FIRST_OFFSET + 1, 1)
        assert [e.record for e in middle] == [applied(1)]
        assert await log.read_from(log.head, 10) == []
        await log.close()
        await pool.close()

    asyncio.run(scenario())
    rows = asyncio.run(fetch(dsn, "SELECT sequence, epoch, type, entry FROM rstmdb.log"))
    # The entry is stored exactly as the local WAL writes it (compact, keys in order).
    assert rows[1]["entry"] == (
        '{"type":"apply_event","instance_id":"i-1","event":"PAY","from_state":"new",'
        '"to_state":"paid","payload":{"amount":1},"ctx":{"n":1},"ts":2000}'
    )
    assert [(r["sequence"], r["epoch"], r["type"]) for r in rows] == [
        (1, 1, 2),
        (2, 1, 3),
        (3, 1, 2),
    ]
    heads = asyncio.run(fetch(dsn, "SELECT head FROM rstmdb.partitions"))
    assert heads[0]["head"] == 3


def test_offsets_of_a_partition_when_there_are_several(dsn: str) -> None:
    async def scenario() -> None:
        pool, _, log = await _owner(dsn, partitions=4, partition=3)
        offsets = await log.append([created(1), created(2), created(3)])
        assert offsets == [(1 << 12) | 3, (2 << 12) | 3, (3 << 12) | 3]
        # An offset names its partition in its low bits; reading resumes inclusively.
        assert [e.sequence for e in await log.read_from((2 << 12) | 3, 10)] == [2, 3]
        # An offset of a lower partition of the same sequence: that sequence comes next.
        assert [e.sequence for e in await log.read_from((2 << 12) | 1, 10)] == [2, 3]
        assert [e.sequence for e in await log.read_from(0, 10)] == [1, 2, 3]
        await pool.close()

    asyncio.run(scenario())


def test_group_commit_batches_what_arrives_during_a_round(dsn: str) -> None:
    async def scenario() -> list[list[int]]:
        pool, _, log = await _owner(dsn)
        blocker = await pool.acquire()
        blocked = blocker.transaction()
        await blocked.start()
        await blocker.execute("SELECT * FROM rstmdb.partitions WHERE partition = 0 FOR UPDATE")
        first = asyncio.create_task(log.append([created(0)]))
        await asyncio.sleep(0.3)  # round 1 waits on the row lock, in flight
        later = [asyncio.create_task(log.append([created(n), applied(n)])) for n in range(1, 21)]
        await asyncio.sleep(0.1)
        assert not first.done() and not any(t.done() for t in later)
        await blocked.rollback()
        await pool.release(blocker)
        results = [await first] + [await t for t in later]
        assert log.rounds == 2
        await pool.close()
        return results

    results = asyncio.run(scenario())
    flat = [o for offsets in results for o in offsets]
    assert flat == list(range(FIRST_OFFSET, FIRST_OFFSET + 41))
    rounds = asyncio.run(fetch(dsn, _ROUNDS, 0))
    assert [(r["n"], r["first"]) for r in rounds] == [(1, 1), (40, 2)]


def test_many_concurrent_appenders_share_rounds(dsn: str) -> None:
    async def scenario() -> tuple[int, list[list[int]]]:
        pool, _, log = await _owner(dsn)
        results = await asyncio.gather(*(log.append([created(n)]) for n in range(200)))
        await pool.close()
        return log.rounds, results

    rounds, results = asyncio.run(scenario())
    assert sorted(o for r in results for o in r) == list(range(FIRST_OFFSET, FIRST_OFFSET + 200))
    transactions = asyncio.run(fetch(dsn, _ROUNDS, 0))
    assert len(transactions) == rounds < 200
    assert sum(r["n"] for r in transactions) == 200


def test_fenced_append_writes_nothing_and_the_log_stays_fenced(dsn: str) -> None:
    async def scenario() -> None:
        pool, _, old = await _owner(dsn)
        await old.append([created(1)])
        # n1's process freezes; its lease runs out and n2 takes the partition over.
        await execute(dsn, "UPDATE rstmdb.partitions SET lease_expires = clock_timestamp()")
        n2 = Ownership(pool, "n2", "127.0.0.1:7402", LEASE_MS)
        lease = await n2.acquire(0)
        assert lease is not None and lease.epoch == 2
        new = await PartitionLog.open(pool, 0, 1, lease.epoch)
        # The head has not moved: only the epoch tells the old owner it lost the partition.
        with pytest.raises(Fenced) as caught:
            await old.append([created(99), created(100)])
        assert await new.append([created(2)]) == [FIRST_OFFSET + 1]
        assert caught.value.details == {"reason": "fenced", "partition": 0}
        assert caught.value.retryable
        assert old.fenced
        with pytest.raises(Fenced):
            await old.append([created(101)])
        with pytest.raises(Fenced):
            await old.save_checkpoint(FIRST_OFFSET, b"stale")
        assert await new.append([created(3)]) == [FIRST_OFFSET + 2]
        await pool.close()

    asyncio.run(scenario())
    rows = asyncio.run(fetch(dsn, "SELECT sequence, epoch, entry::text FROM rstmdb.log"))
    assert [(r["sequence"], r["epoch"]) for r in rows] == [(1, 1), (2, 2), (3, 2)]
    assert not any('"i-99"' in r["entry"] or '"i-101"' in r["entry"] for r in rows)
    assert asyncio.run(fetch(dsn, "SELECT count(*) AS n FROM rstmdb.checkpoints"))[0]["n"] == 0


def test_open_with_an_old_epoch_is_fenced(dsn: str) -> None:
    async def scenario() -> None:
        pool, ownership, log = await _owner(dsn)
        assert await ownership.acquire(0) is not None  # a restarted n1 reclaims: epoch 2
        with pytest.raises(Fenced):
            await PartitionLog.open(pool, 0, 1, log.epoch)
        await pool.close()

    asyncio.run(scenario())


def test_checkpoint_and_drop_keep_the_retained_tail(dsn: str) -> None:
    async def scenario() -> None:
        pool, _, log = await _owner(dsn, retention=5)
        offsets = await log.append([created(n) for n in range(30)])
        assert await log.load_checkpoint() is None
        assert await log.drop_before(log.head) == 0  # nothing dropped without a checkpoint
        await log.save_checkpoint(offsets[20], b"state through 20")
        assert await log.load_checkpoint() == Checkpoint(offsets[20], b"state through 20")
        # Only what the checkpoint covers goes, whatever the caller asks for.
        assert await log.drop_before(log.head) == 20
        assert (await log.read_from(0, 1))[0].offset == offsets[20]
        await log.save_checkpoint(log.head, b"state through 29")
        # Now the checkpoint covers everything, but the last 5 entries stay.
        assert await log.drop_before(log.head) == 5
        kept = await log.read_from(0, 100)
        assert [e.offset for e in kept] == offsets[25:]
        with pytest.raises(ValueError):
            await log.save_checkpoint(log.head + 1, b"the future")
        assert (await log.append([created(31)]))[0] == FIRST_OFFSET + 30
        await pool.close()

    asyncio.run(scenario())


def test_a_record_that_is_not_json_is_refused_alone(dsn: str) -> None:
    async def scenario() -> None:
        pool, _, log = await _owner(dsn)
        bad = created(1)._replace(initial_ctx={"x": {1, 2}})
        with pytest.raises(BadRequest):
            await log.append([bad])
        assert await log.append([created(2)]) == [FIRST_OFFSET]
        await pool.close()

    asyncio.run(scenario())

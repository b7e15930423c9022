"""One round of a partition's log: a single fenced transaction (CLUSTER §2).

``BEGIN; UPDATE partitions SET head = new WHERE partition, epoch and head
match; INSERT the round's entries; COMMIT``. The ``UPDATE`` matching no row
means another node took the partition over: nothing is written
(:class:`Fenced`). A failure before ``COMMIT`` was sent leaves nothing behind
(:class:`WalIoError`); losing the connection, or giving up waiting, while
``COMMIT`` is on its way leaves the outcome unknown (:class:`OutcomeUnknown`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import asyncpg

from pyrstmdb.cluster.errors import Fenced, HeadMoved, OutcomeUnknown
from pyrstmdb.errors import WalIoError

#: (type code, entry as compact JSON text)
Row = tuple[int, str]

_ADVANCE = """
UPDATE rstmdb.partitions SET head = $4
 WHERE partition = $1 AND epoch = $2 AND head = $3
RETURNING head
"""
_INSERT = """
INSERT INTO rstmdb.log (partition, sequence, epoch, type, entry)
SELECT $1, $3 + u.n - 1, $2, u.t, u.e::json
  FROM unnest($4::smallint[], $5::text[]) WITH ORDINALITY AS u(t, e, n)
"""
_EPOCH = "SELECT epoch FROM rstmdb.partitions WHERE partition = $1"
#: SQLSTATE classes after which the server may have gone on without us.
_CONNECTION_CLASSES = ("08", "57")


async def commit_round(
    pool: Any, partition: int, epoch: int, last: int, rows: Sequence[Row], timeout: float
) -> None:
    """Append ``rows`` as sequences ``last + 1 …``; raise Fenced, OutcomeUnknown or WalIoError."""
    try:
        async with pool.acquire(timeout=timeout) as conn:
            await _round(conn, partition, epoch, last, rows, timeout)
    except WalIoError:
        raise
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
        raise WalIoError(
            f"partition {partition}: PostgreSQL round failed, nothing written "
            f"({type(exc).__name__}: {exc})",
            {"reason": "postgres", "partition": partition},
        ) from exc


async def _round(
    conn: Any, partition: int, epoch: int, last: int, rows: Sequence[Row], timeout: float
) -> None:
    tx = conn.transaction()
    await tx.start()
    try:
        new_head = last + len(rows)
        if await conn.fetchval(_ADVANCE, partition, epoch, last, new_head) is None:
            if await conn.fetchval(_EPOCH, partition) == epoch:
                raise HeadMoved(partition, last)
            raise Fenced(partition, epoch)
        types = [row[0] for row in rows]
        entries = [row[1] for row in rows]
        await conn.execute(_INSERT, partition, epoch, last + 1, types, entries)
    except BaseException:
        with contextlib.suppress(Exception):
            await tx.rollback()
        raise
    try:
        await asyncio.wait_for(tx.commit(), timeout)
    except Exception as exc:
        if _refused(exc):
            raise
        with contextlib.suppress(Exception):
            conn.terminate()  # its state is unknown: the pool replaces it
        raise OutcomeUnknown(partition, exc) from exc


def _refused(exc: Exception) -> bool:
    """Did the server answer COMMIT with an error of its own (so nothing committed)?

    A lost connection (asyncpg's ``InterfaceError``s, OS errors), a timeout, or an
    error of the connection or shutdown classes (the server going away, a backend
    terminated while waiting for a synchronous standby) leaves the outcome unknown.
    """
    if not isinstance(exc, asyncpg.PostgresError):
        return False
    sqlstate = str(getattr(exc, "sqlstate", "") or "")
    return sqlstate[:2] not in _CONNECTION_CLASSES

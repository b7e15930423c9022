"""Partition ownership: acquire, renew, release, and node heartbeats (CLUSTER §2–§3).

Every decision is one ``UPDATE`` on ``rstmdb.partitions`` judged by
PostgreSQL's clock (``clock_timestamp()``), so nodes never compare their own
clocks. Acquiring bumps the epoch in the same statement; renewing and
releasing only match while the epoch is still ours. What this node may
believe is a :class:`~pyrstmdb.cluster.lease.Lease` timed from when the
statement was *sent*, on the monotonic clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pyrstmdb.cluster.lease import Lease, safety_margin_ms

_ACQUIRE = """
UPDATE rstmdb.partitions
   SET owner = $2, epoch = epoch + 1,
       lease_expires = clock_timestamp() + $3 * interval '1 millisecond'
 WHERE partition = $1
   AND (owner IS NULL OR owner = $2 OR lease_expires IS NULL
        OR lease_expires <= clock_timestamp())
RETURNING epoch
"""
_RENEW = """
UPDATE rstmdb.partitions
   SET lease_expires = clock_timestamp() + $4 * interval '1 millisecond'
 WHERE partition = $1 AND owner = $2 AND epoch = $3
RETURNING epoch
"""
_RELEASE = """
UPDATE rstmdb.partitions SET owner = NULL, lease_expires = NULL
 WHERE partition = $1 AND owner = $2 AND epoch = $3
RETURNING epoch
"""
_HEARTBEAT = """
INSERT INTO rstmdb.nodes (node_id, advertise_addr, last_heartbeat)
VALUES ($1, $2, clock_timestamp())
ON CONFLICT (node_id) DO UPDATE
   SET advertise_addr = EXCLUDED.advertise_addr, last_heartbeat = EXCLUDED.last_heartbeat
"""


class Ownership:
    """One node's view of partition ownership, over a pool (or a connection)."""

    def __init__(
        self,
        db: Any,
        node_id: str,
        advertise_addr: str,
        lease_ms: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self.node_id = node_id
        self.advertise_addr = advertise_addr
        self.lease_ms = lease_ms
        self.margin_ms = safety_margin_ms(lease_ms)
        self._clock = clock

    async def acquire(self, partition: int) -> Lease | None:
        """Take ``partition`` if it has no owner, its lease expired, or it was ours.

        Returns the lease with the new epoch, or ``None`` when another node holds it.
        """
        sent_at = self._clock()
        epoch = await self._db.fetchval(_ACQUIRE, partition, self.node_id, self.lease_ms)
        return None if epoch is None else self._granted(partition, epoch, sent_at)

    async def renew(self, lease: Lease) -> Lease | None:
        """Extend ``lease``; ``None`` when the partition is no longer ours (fenced)."""
        sent_at = self._clock()
        epoch = await self._db.fetchval(
            _RENEW, lease.partition, self.node_id, lease.epoch, self.lease_ms
        )
        return None if epoch is None else self._granted(lease.partition, epoch, sent_at)

    async def release(self, lease: Lease) -> bool:
        """Give ``lease`` up so another node can take it at once; False if it was not ours."""
        epoch = await self._db.fetchval(_RELEASE, lease.partition, self.node_id, lease.epoch)
        return epoch is not None

    async def heartbeat(self) -> None:
        """Record that this node is alive (``nodes.last_heartbeat``, PostgreSQL's clock)."""
        await self._db.execute(_HEARTBEAT, self.node_id, self.advertise_addr)

    def _granted(self, partition: int, epoch: int, sent_at: float) -> Lease:
        return Lease.granted(partition, epoch, sent_at, self.lease_ms, self.margin_ms)

"""Connections to the cluster's PostgreSQL, with the session settings leases need.

A node that freezes in the middle of a transaction must not hold row locks
that a takeover waits for: every session sets
``idle_in_transaction_session_timeout`` and ``lock_timeout`` to a third of the
lease (CLUSTER §2), so PostgreSQL ends such a transaction well before a new
owner's lease would be delayed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg


@dataclass(frozen=True, slots=True)
class SessionSettings:
    lease_ms: int = 3000
    application_name: str = "rstmdb"

    @property
    def timeout_ms(self) -> int:
        """``idle_in_transaction_session_timeout`` and ``lock_timeout``: a third of the lease."""
        return max(50, self.lease_ms // 3)

    def server_settings(self) -> dict[str, str]:
        timeout = str(self.timeout_ms)
        return {
            "application_name": self.application_name,
            "idle_in_transaction_session_timeout": timeout,
            "lock_timeout": timeout,
        }


async def connect(dsn: str, settings: SessionSettings | None = None) -> Any:
    """One ``asyncpg.Connection`` with the session settings."""
    settings = settings or SessionSettings()
    return await asyncpg.connect(dsn, server_settings=settings.server_settings())


async def create_pool(
    dsn: str, settings: SessionSettings | None = None, *, max_size: int = 4
) -> Any:
    """An ``asyncpg.Pool`` whose every connection has the session settings."""
    settings = settings or SessionSettings()
    return await asyncpg.create_pool(
        dsn, min_size=1, max_size=max_size, server_settings=settings.server_settings()
    )

"""Helpers for the subscription hub tests: a recording sink and settling the loop."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pyrstmdb import Database
from pyrstmdb.subscriptions import Hub

TOGGLE: dict[str, Any] = {
    "states": ["a", "b"],
    "initial": "a",
    "transitions": [
        {"from": "a", "event": "GO", "to": "b"},
        {"from": "b", "event": "BACK", "to": "a"},
    ],
}


class FakeSink:
    """Records every message; ``is_writable`` plays the transport's high-water mark."""

    def __init__(self, writable: bool = True) -> None:
        self.messages: list[dict[str, Any]] = []
        self.is_writable = writable

    def send_event(self, message: dict[str, Any]) -> None:
        self.messages.append(message)

    def writable(self) -> bool:
        return self.is_writable

    def events(self, subscription_id: str | None = None) -> list[dict[str, Any]]:
        return [
            m
            for m in self.messages
            if m["type"] == "event"
            and (subscription_id is None or m["subscription_id"] == subscription_id)
        ]

    def offsets(self, subscription_id: str | None = None) -> list[int]:
        return [m["wal_offset"] for m in self.events(subscription_id)]

    def notices(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == "notice"]


async def settle(hub: Hub, db: Database, timeout: float = 10.0) -> None:
    """Wait until every visible record reached the hub and no log read is in flight.

    A batch the write path has published is queued on the loop at once, so a few quiet
    loop iterations after the write path's queue is empty mean the hub has seen it.
    """
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 3:
        await asyncio.sleep(0.002)
        stats = hub.stats()
        done = (
            not db.core._unpublished  # test-only peek at the write path
            and db.core.store.visible_end == db.core.store.head
            and stats["reads_in_flight"] == 0
            and not _catching_up_ready(hub)
        )
        quiet = quiet + 1 if done else 0
        assert time.monotonic() < deadline, f"hub did not settle: {stats}"


def _catching_up_ready(hub: Hub) -> bool:
    return any(
        not sub.live and sub.active and sub.sink.writable()
        for sub in hub._subs.all()  # test-only peek at the cursors
    )


def applied_offsets(db: Database, keep: Any = None, from_offset: int = 0) -> list[int]:
    """Offsets of the logged apply_event records at or after ``from_offset`` passing ``keep``."""
    return [
        r.offset
        for r in db.wal_read(0).records
        if r.entry["type"] == "apply_event"
        and r.offset >= from_offset
        and (keep is None or keep(r.entry))
    ]

"""Waiting for durability from asyncio without blocking the event loop.

``Core`` reports that a record became visible (or that its fsync failed)
through callbacks run on the store's fsync thread. ``LoopWaiter`` turns them
into awaitables: completions are collected under a small lock and handed to
the loop with a single ``call_soon_threadsafe`` per batch, so one fsync that
covers hundreds of writes wakes the loop once, not hundreds of times.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from pyrstmdb.core import Core
from pyrstmdb.errors import WalIoError

Done = Callable[[WalIoError | None], None]


class LoopWaiter:
    """``await waiter.visible(offset)``: returns once the record at ``offset`` is visible."""

    def __init__(self, core: Core, loop: asyncio.AbstractEventLoop) -> None:
        self._core = core
        self._loop = loop
        self._lock = threading.Lock()
        self._ready: list[tuple[asyncio.Future[None], WalIoError | None]] = []
        self._scheduled = False

    async def visible(self, offset: int) -> None:
        """Wait until ``offset`` is visible; raises ``WalIoError`` if its fsync failed."""
        if offset < 0 or offset < self._core.store.visible_end:
            return
        future: asyncio.Future[None] = self._loop.create_future()
        self._core.when_visible(offset, self._completion(future))
        await future

    def _completion(self, future: asyncio.Future[None]) -> Done:
        def done(error: WalIoError | None) -> None:
            with self._lock:
                self._ready.append((future, error))
                if self._scheduled:
                    return
                self._scheduled = True
            self._loop.call_soon_threadsafe(self._drain)

        return done

    def _drain(self) -> None:
        with self._lock:
            ready, self._ready = self._ready, []
            self._scheduled = False
        for future, error in ready:
            if future.done():
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

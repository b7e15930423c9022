"""Asyncio helpers: the event loop to run on, and durability waits as futures.

``run`` runs a coroutine on uvloop when it is installed (a C event loop that
cuts per-request overhead), else on the standard loop.

``Core.when_visible(offset, callback)`` calls ``callback`` from the store's fsync
thread (or at once) with ``None`` or a ``WalIoError``. :class:`DurabilityWaiter`
turns each wait into an ``asyncio.Future``; completions are queued under a small
lock and the loop is woken with **one** ``call_soon_threadsafe`` per batch, so an
fsync that covers many requests costs one wake-up, not one per request.

Raises nothing itself; a failed fsync surfaces as the future's ``WalIoError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from pyrstmdb.core import Core
from pyrstmdb.errors import WalIoError

Completion = tuple[asyncio.Future[None], WalIoError | None]
T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on the fastest event loop available (uvloop where installed)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop
        return asyncio.run(main)
    return uvloop.run(main)


class DurabilityWaiter:
    """One per event loop: ``wait(offset)`` -> a future, or ``None`` when already visible."""

    def __init__(self, core: Core, loop: asyncio.AbstractEventLoop) -> None:
        self._core = core
        self._loop = loop
        self._lock = threading.Lock()
        self._done: list[Completion] = []
        self._wake_pending = False

    async def visible(self, offset: int) -> None:
        """Return once the record at ``offset`` is visible; raises ``WalIoError`` if it failed."""
        future = self.wait(offset)
        if future is not None:
            await future

    def wait(self, offset: int) -> asyncio.Future[None] | None:
        """A future resolved once the record at ``offset`` is visible; ``None`` if it is."""
        if offset < 0 or offset < self._core.store.visible_end:
            return None
        future: asyncio.Future[None] = self._loop.create_future()
        self._core.when_visible(offset, self._callback(future))
        return future

    def _callback(self, future: asyncio.Future[None]) -> Callable[[WalIoError | None], None]:
        def complete(error: WalIoError | None) -> None:
            with self._lock:
                self._done.append((future, error))
                if self._wake_pending:
                    return
                self._wake_pending = True
            # A closed loop raises RuntimeError: nobody is waiting any more then.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._resolve)

        return complete

    def _resolve(self) -> None:
        with self._lock:
            done, self._done = self._done, []
            self._wake_pending = False
        for future, error in done:
            if future.done():
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

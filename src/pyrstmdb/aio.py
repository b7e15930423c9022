"""Asyncio helpers: the event loop to run on, and durability waits as futures.

``run`` runs a coroutine on uvloop when it is installed (a C event loop that
cuts per-request overhead), else on the standard loop.

:class:`DurabilityWaiter` turns "wait until the record at this offset is
visible" into an ``asyncio.Future``. The futures live on the loop, in a queue
ordered by offset; the store's fsync thread does no per-request work at all.
It only calls the waiter's visibility watcher once per round (or after a
roll-back), which wakes the loop with **one** ``call_soon_threadsafe``; the
loop then resolves every future below the new visible end. A future whose
record was discarded by a roll-back fails with that fsync's ``WalIoError``
(the log never reuses a discarded offset, so this is exact).

Raises nothing itself; a failed fsync surfaces as the future's ``WalIoError``.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

from pyrstmdb.aio_rounds import LoopRounds
from pyrstmdb.errors import WalIoError
from pyrstmdb.storage.wal.offload import RoundOffload

Pending = tuple[int, asyncio.Future[None]]  # offset, future
T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on the fastest event loop available (uvloop where installed)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop
        return asyncio.run(main)
    return uvloop.run(main)


class VisibilitySource(Protocol):
    """What the waiter needs from the database (``Core`` provides it)."""

    @property
    def waits_for_disk(self) -> bool: ...
    @property
    def visible_end(self) -> int: ...
    @property
    def rollbacks(self) -> int: ...
    def discarded(self, offset: int) -> WalIoError | None: ...
    def add_visibility_watcher(self, fn: Callable[[int, int], None]) -> None: ...
    def remove_visibility_watcher(self, fn: Callable[[int, int], None]) -> None: ...
    def fsync_offload(self) -> RoundOffload | None: ...


#: Futures resolved per loop callback; the rest in the next one, so that the woken writers
#: come back in groups and an fsync round can start while the others are still running.
RESOLVE_CHUNK = 16


def _offset_of(item: Pending) -> int:
    return item[0]


class DurabilityWaiter:
    """One per event loop: ``wait(offset)`` -> a future, or ``None`` when already visible.

    ``wait`` and the futures belong to the loop's thread; only :meth:`_changed` is called
    from other threads. Call :meth:`close` when the loop stops using it.
    """

    def __init__(self, core: VisibilitySource, loop: asyncio.AbstractEventLoop) -> None:
        self._core = core
        self._loop = loop
        self._waits = core.waits_for_disk
        #: (offset, future) ordered by offset: appends from this loop come in log order,
        #: so a new wait almost always goes at the end.
        self._pending: deque[Pending] = deque()
        self._wake_pending = False
        self._watcher = self._changed  # one bound method: added and removed by equality
        core.add_visibility_watcher(self._watcher)
        # Read after registering: the watcher may only ever move these forward.
        self._end = core.visible_end
        self._rollbacks = core.rollbacks
        self._rollbacks_seen = self._rollbacks
        #: Under every_write this loop runs the fsync rounds (fdatasync in a helper
        #: process) when the store allows it; else the store's flusher thread does.
        offload = core.fsync_offload() if self._waits else None
        self._rounds = None if offload is None else LoopRounds.start(offload, loop)

    @property
    def runs_fsync_rounds(self) -> bool:
        """Whether this loop runs the store's fsync rounds (see ``aio_rounds``)."""
        return self._rounds is not None

    def close(self) -> None:
        """Stop listening to the core (rounds go back to the flusher); cancel pending futures."""
        if self._rounds is not None:
            self._rounds.close()
        self._core.remove_visibility_watcher(self._watcher)
        pending, self._pending = self._pending, deque()
        for _offset, future in pending:
            future.cancel()

    async def visible(self, offset: int) -> None:
        """Return once the record at ``offset`` is visible; raises ``WalIoError`` if it failed."""
        future = self.wait(offset)
        if future is not None:
            await future

    def wait(self, offset: int) -> asyncio.Future[None] | None:
        """A future resolved once the record at ``offset`` is visible; ``None`` if it is."""
        if offset < 0 or not self._waits:
            return None
        if self._rollbacks:
            err = self._core.discarded(offset)
            if err is not None:
                failed: asyncio.Future[None] = self._loop.create_future()
                failed.set_exception(err)
                return failed
        if offset < self._end:
            return None
        future: asyncio.Future[None] = self._loop.create_future()
        pending = self._pending
        if not pending or pending[-1][0] <= offset:
            pending.append((offset, future))
        else:  # written by another thread or task before ours: keep the order
            pending.insert(bisect.bisect_right(pending, offset, key=_offset_of), (offset, future))
        # Re-check after queueing: a round or roll-back that finished in between found no
        # future to wake the loop for.
        if not self._wake_pending and (
            offset < self._end or self._rollbacks != self._rollbacks_seen
        ):
            self._wake_pending = True
            self._loop.call_soon(self._resolve)
        return future

    def _changed(self, end: int, rollbacks: int) -> None:
        """The visible end moved or memory was rolled back (called from any thread)."""
        self._end = end
        self._rollbacks = rollbacks
        if self._wake_pending or not self._pending:
            return
        self._wake_pending = True
        # A closed loop raises RuntimeError: nobody is waiting any more then.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._resolve)

    def _resolve(self) -> None:
        self._wake_pending = False  # before reading the end: a later change wakes us again
        end = self._end
        rollbacks = self._rollbacks
        pending = self._pending
        discarded = self._core.discarded if rollbacks else None
        budget = RESOLVE_CHUNK
        while pending and pending[0][0] < end:
            if budget == 0:  # the rest in the next callback (see RESOLVE_CHUNK)
                self._wake_pending = True
                self._loop.call_soon(self._resolve)
                return
            budget -= 1
            offset, future = pending.popleft()
            if future.done():
                continue
            err = None if discarded is None else discarded(offset)
            if err is None:
                future.set_result(None)
            else:
                future.set_exception(err)
        if rollbacks != self._rollbacks_seen:
            self._rollbacks_seen = rollbacks
            self._fail_discarded()

    def _fail_discarded(self) -> None:
        """Fail the futures of records a roll-back discarded that the end has not passed."""
        core = self._core
        kept: deque[Pending] = deque()
        for item in self._pending:
            err = core.discarded(item[0])
            if err is None:
                kept.append(item)
            elif not item[1].done():
                item[1].set_exception(err)
        self._pending = kept

"""Reading past applied events back from the log, one bounded chunk at a time.

``read_chunk`` runs in a worker thread (the durable store reads from disk). It
examines at most ``limit`` records with ``start <= offset < end`` and returns
the applied events among them, resolved to their machine and version, plus
where the next chunk starts. The hub only asks for ``end <= published_end``, so
every record in range is durable and can never be taken back.

History can shrink underneath a read: compaction drops the oldest segments and
the in-memory store forgets its oldest records. A read is trusted only if
``history_start`` did not move while it ran; otherwise it is retried, and if
history keeps moving the chunk comes back unsettled (nothing read, try later),
never with a silent hole. ``Chunk.history_start > start`` tells the caller that
``[start, history_start)`` is gone.

``HistoryReader`` runs these reads on a small thread pool, at most one per
start offset: subscriptions that need the same chunk share it. Store errors
(``WalIoError``, ``CorruptionError``) reach the callback as a failed read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice, takewhile
from typing import NamedTuple

from pyrstmdb.core import Core
from pyrstmdb.engine.records import EventApplied
from pyrstmdb.storage.store import Logged

from .filters import Target, resolve
from .subscription import Subscription

log = logging.getLogger("pyrstmdb.subscriptions")

ATTEMPTS = 5
READ_WORKERS = 2


class Chunk(NamedTuple):
    start: int
    end: int  # every record in [start, end) was examined; the next chunk starts here
    history_start: int  # oldest record held during the read
    events: list[Target]
    settled: bool  # False: history moved on every attempt; nothing was read


def read_chunk(core: Core, start: int, end: int, limit: int) -> Chunk:
    """Applied events in ``[start, end)``, examining at most ``limit`` records."""
    store = core.store
    for attempt in range(ATTEMPTS):
        first = store.history_start
        logged = _read(core, max(start, first), end, limit)
        if store.history_start == first:
            return _chunk(core, start, end, first, logged, limit)
        time.sleep(0.001 * (attempt + 1))
    return Chunk(start, start, start, [], False)


def _read(core: Core, begin: int, end: int, limit: int) -> list[Logged]:
    """Up to ``limit`` records with ``begin <= offset < end``.

    The durable log can only stop reading at a record boundary and ``end`` (one past the
    last published offset) usually lies inside a record, so the read runs towards the
    visible end, which is a boundary and not below ``end``, and stops at ``end``.
    """
    source = core.logged_from(begin, max(end, core.store.visible_end))
    try:
        return list(islice(takewhile(lambda item: item.offset < end, source), limit))
    finally:
        if isinstance(source, Generator):
            source.close()


def _chunk(core: Core, start: int, end: int, first: int, logged: list[Logged], limit: int) -> Chunk:
    stop = logged[-1].offset + 1 if len(logged) >= limit else end
    instances = core.state.instances
    events: list[Target] = []
    for item in logged:
        record = item.record
        if type(record) is EventApplied:
            target = resolve(instances, item.offset, record)
            if target is not None:
                events.append(target)
    return Chunk(start, max(stop, start), first, events, True)


Delivery = Callable[[Subscription, Chunk | None], None]  # ``None``: the read failed


class _Read:
    __slots__ = ("start", "waiters")

    def __init__(self, start: int, first: Subscription) -> None:
        self.start = start
        self.waiters = [first]


class HistoryReader:
    """Chunk reads in worker threads, shared by subscriptions at the same offset."""

    def __init__(
        self, core: Core, loop: asyncio.AbstractEventLoop, limit: int, deliver: Delivery
    ) -> None:
        self._core = core
        self._loop = loop
        self._limit = limit
        self._deliver = deliver
        self._reads: dict[int, _Read] = {}
        self._futures: set[asyncio.Future[Chunk]] = set()
        self._executor = ThreadPoolExecutor(READ_WORKERS, thread_name_prefix="pyrstmdb-hub-read")

    @property
    def in_flight(self) -> int:
        return len(self._reads)

    def request(self, sub: Subscription, end: int) -> None:
        """Read the chunk at ``sub.next`` (up to ``end``); ``deliver`` gets it on the loop."""
        sub.reading = True
        shared = self._reads.get(sub.next)
        if shared is not None:
            shared.waiters.append(sub)
            return
        job = _Read(sub.next, sub)
        self._reads[job.start] = job
        future = self._loop.run_in_executor(
            self._executor, read_chunk, self._core, job.start, end, self._limit
        )
        self._futures.add(future)
        future.add_done_callback(lambda done: self._done(job, done))

    def _done(self, job: _Read, future: asyncio.Future[Chunk]) -> None:
        self._futures.discard(future)
        if self._reads.get(job.start) is job:
            del self._reads[job.start]
        chunk: Chunk | None = None
        if not future.cancelled():
            error = future.exception()
            if error is None:
                chunk = future.result()
            else:
                log.error("reading subscription history failed: %r", error)
        for sub in job.waiters:  # one callback each, so other work can run in between
            self._loop.call_soon(self._hand_over, sub, chunk)

    def _hand_over(self, sub: Subscription, chunk: Chunk | None) -> None:
        sub.reading = False
        self._deliver(sub, chunk)

    async def close(self) -> None:
        """Wait for the reads in flight, then stop the workers."""
        if self._futures:
            await asyncio.gather(*self._futures, return_exceptions=True)
        self._executor.shutdown(wait=False)
